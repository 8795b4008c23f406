//! The example scripts against the shipped recordings: they load, they run,
//! they reach the success point quickly, and the recordings are in the
//! promised format.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dialcast_scripts::{
    default_audio_root, Action, AudioCatalog, ClipRef, Event, ForwardOutcome, Run, Script,
};

fn catalog() -> AudioCatalog {
    AudioCatalog::from_roots(&[default_audio_root()]).unwrap()
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.toml"))
}

fn load(name: &str) -> Arc<Script> {
    Arc::new(Script::load(&example(name), &catalog()).unwrap_or_else(|e| panic!("{e}")))
}

fn record(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The format and length of a WAV file: (rate, channels, bits, seconds).
fn wav_info(path: &Path) -> (u32, u16, u16, f64) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[0..4], b"RIFF", "{}", path.display());
    assert_eq!(&bytes[8..12], b"WAVE", "{}", path.display());
    let (mut pos, mut fmt, mut data) = (12, None, None);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            let format = u16::from_le_bytes([body[0], body[1]]);
            assert_eq!(format, 1, "PCM: {}", path.display());
            fmt = Some((
                u32::from_le_bytes(body[4..8].try_into().unwrap()),
                u16::from_le_bytes([body[2], body[3]]),
                u16::from_le_bytes([body[14], body[15]]),
            ));
        } else if id == b"data" {
            data = Some(len);
        }
        pos += 8 + len + (len & 1);
    }
    let (rate, channels, bits) = fmt.unwrap();
    let seconds =
        data.unwrap() as f64 / f64::from(rate * u32::from(channels) * u32::from(bits / 8));
    (rate, channels, bits, seconds)
}

/// Plays the run to its end, answering every playback and timer, pressing
/// `keys` at successive menu prompts. Returns the actions and the seconds of
/// audio before the success point (None if never reached).
fn play_through(
    run: &mut Run,
    catalog: &AudioCatalog,
    keys: &[char],
) -> (Vec<Action>, Option<f64>) {
    let mut keys = keys.iter();
    let mut actions = Vec::new();
    let mut seconds = 0.0;
    let mut success_at = None;
    run.handle(Event::Answered);
    for _ in 0..100 {
        let mut next = Vec::new();
        while let Some(action) = run.poll_action() {
            match &action {
                Action::Play(clips) => {
                    for clip in clips {
                        let path = catalog.path(clip).unwrap_or_else(|| panic!("no {clip}"));
                        seconds += wav_info(path).3;
                    }
                    next.push(Event::PlaybackFinished);
                }
                Action::StartTimer { id, .. } => next.push(Event::TimerFired { id: *id }),
                // The call centre is closed in these runs.
                Action::Forward => next.push(Event::ForwardResult(ForwardOutcome::Closed)),
                Action::SuccessPoint => success_at = Some(seconds),
                _ => {}
            }
            actions.push(action);
        }
        if run.is_finished() {
            return (actions, success_at);
        }
        for event in next {
            // A key instead of letting a menu prompt finish.
            if event == Event::PlaybackFinished {
                if let Some(Action::Play(clips)) = actions.last() {
                    if clips.iter().any(|c| c.name == "notice_menu") {
                        if let Some(k) = keys.next() {
                            run.handle(Event::Dtmf(*k));
                            continue;
                        }
                    }
                }
            }
            run.handle(event);
        }
    }
    panic!("the run did not end: {actions:?}");
}

fn names(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Play(clips) => clips
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn every_example_loads_in_both_languages() {
    for name in [
        "payment_reminder",
        "short_reminder",
        "appointment_reminder",
        "notice_with_menu",
        "notice_with_agent",
    ] {
        let script = load(name);
        assert_eq!(script.name(), name);
        assert_eq!(script.languages(), ["en", "nl"]);
        assert!(script.required_clips().count() > 10);
    }
}

#[test]
fn payment_reminder_demo() {
    let catalog = catalog();
    let script = load("payment_reminder");
    let rec = record(&[
        ("INVOICE_AMOUNT_OPEN", "49.95"),
        ("INVOICE_DUE_DATE", "2026-03-21"),
    ]);
    let mut run = Run::start(Arc::clone(&script), &rec);
    let (actions, success) = play_through(&mut run, &catalog, &[]);
    assert_eq!(
        names(&actions),
        [
            "payment_intro",
            "say/49 say/euros say/and say/95 say/cents",
            "payment_due_date",
            "say/the say/ordinal_21 say/of say/month_3",
            "SuccessPoint",
            "StartTimer { id: 1, ms: 400 }",
            "payment_closing",
            "Hangup",
            "Finished",
        ]
    );
    let seconds = success.unwrap();
    println!("payment_reminder, en, 49.95: {seconds:.2} s to the success point");
    assert!((4.0..=8.0).contains(&seconds), "{seconds}");

    let rec = record(&[
        ("INVOICE_AMOUNT_OPEN", "1.250,00"),
        ("INVOICE_DUE_DATE", "21-03-2026"),
        ("PERSON_LANGUAGE", "nl"),
    ]);
    let mut run = Run::start(script, &rec);
    let (actions, success) = play_through(&mut run, &catalog, &[]);
    assert_eq!(
        names(&actions),
        [
            "payment_intro",
            "say/thousand say/200 say/50 say/euro",
            "payment_due_date",
            "say/21 say/month_3",
            "SuccessPoint",
            "StartTimer { id: 1, ms: 400 }",
            "payment_arrangement",
            "Output { key: \"plan_offered\", value: \"Y\" }",
            "payment_closing",
            "Hangup",
            "Finished",
        ]
    );
    println!(
        "payment_reminder, nl, 1.250,00: {:.2} s to the success point",
        success.unwrap()
    );
}

/// Seconds of audio and pauses the actions play.
fn total_seconds(actions: &[Action], catalog: &AudioCatalog) -> f64 {
    actions
        .iter()
        .map(|action| match action {
            Action::Play(clips) => clips
                .iter()
                .map(|clip| wav_info(catalog.path(clip).expect("clip")).3)
                .sum(),
            Action::StartTimer { ms, .. } => f64::from(*ms) / 1000.0,
            _ => 0.0,
        })
        .sum()
}

#[test]
fn short_reminder_is_the_ten_second_message() {
    let catalog = catalog();
    let script = load("short_reminder");
    let english: &[(&str, &str)] = &[
        ("INVOICE_AMOUNT_OPEN", "49.95"),
        ("INVOICE_DUE_DATE", "2026-03-21"),
    ];
    let dutch: &[(&str, &str)] = &[
        ("INVOICE_AMOUNT_OPEN", "1.250,00"),
        ("INVOICE_DUE_DATE", "21-03-2026"),
        ("PERSON_LANGUAGE", "nl"),
    ];
    for pairs in [english, dutch] {
        let mut run = Run::start(Arc::clone(&script), &record(pairs));
        let (actions, success) = play_through(&mut run, &catalog, &[]);
        let names = names(&actions);
        assert_eq!(names.first().map(String::as_str), Some("payment_intro"));
        assert_eq!(names[names.len() - 2..], ["Hangup", "Finished"]);
        assert!(success.is_some(), "the success point is reached");
        let seconds = total_seconds(&actions, &catalog);
        println!("short_reminder {pairs:?}: {seconds:.2} s in all");
        assert!((7.0..=12.0).contains(&seconds), "{seconds}");
    }
}

#[test]
fn appointment_reminder_runs() {
    let catalog = catalog();
    let script = load("appointment_reminder");
    let rec = record(&[
        ("APPOINTMENT_DATE", "2026-03-21"),
        ("APPOINTMENT_TIME", "14:30"),
        ("APPOINTMENT_PHONE", "020 123"),
    ]);
    let mut run = Run::start(Arc::clone(&script), &rec);
    let (actions, success) = play_through(&mut run, &catalog, &[]);
    let n = names(&actions);
    assert_eq!(n[3], "say/2 say/30 say/pm");
    assert_eq!(n[6], "appointment_call_us");
    assert_eq!(n[7], "say/0 say/2 say/0 say/1 say/2 say/3");
    assert_eq!(n[n.len() - 2..], ["Hangup", "Finished"]);
    let seconds = success.unwrap();
    println!("appointment_reminder, en: {seconds:.2} s to the success point");
    assert!((4.0..=8.0).contains(&seconds), "{seconds}");

    let rec = record(&[
        ("APPOINTMENT_DATE", "2026-03-21"),
        ("APPOINTMENT_TIME", "14:30"),
        ("PERSON_LANGUAGE", "nl"),
    ]);
    let mut run = Run::start(script, &rec);
    let (actions, _) = play_through(&mut run, &catalog, &[]);
    let n = names(&actions);
    assert_eq!(n[1], "say/21 say/month_3");
    assert_eq!(n[3], "say/14 say/uur say/30");
    assert_eq!(n[6], "appointment_see_you");
}

#[test]
fn notice_with_menu_reports_the_choice() {
    let catalog = catalog();
    let script = load("notice_with_menu");
    let rec = record(&[("INVOICE_NUMBER", "2026-0042")]);
    for (keys, choice) in [
        (&['2'][..], "payment_plan"),
        (&['1'][..], "already_paid"),
        (&['9', '9', '9'][..], "none"),
        (&[][..], "none"),
    ] {
        let mut run = Run::start(Arc::clone(&script), &rec);
        let (actions, success) = play_through(&mut run, &catalog, keys);
        let output = actions.iter().find_map(|a| match a {
            Action::Output { key, value } if key == "choice" => Some(value.as_str()),
            _ => None,
        });
        assert_eq!(output, Some(choice), "{keys:?}: {actions:?}");
        if keys == ['2'] {
            let seconds = success.unwrap();
            println!("notice_with_menu, en: {seconds:.2} s to the success point");
            assert!((4.0..=8.0).contains(&seconds), "{seconds}");
        }
    }
}

#[test]
fn shipped_recordings_are_8khz_mono_16bit_and_small() {
    let catalog = catalog();
    let mut total = 0u64;
    for (clip, path) in catalog.clips() {
        let (rate, channels, bits, seconds) = wav_info(path);
        assert_eq!((rate, channels, bits), (8000, 1, 16), "{clip}");
        assert!(seconds > 0.1 && seconds < 8.0, "{clip}: {seconds}");
        total += std::fs::metadata(path).unwrap().len();
    }
    assert!(total < 6_000_000, "{total} bytes");
    for language in ["en", "nl"] {
        assert!(catalog.contains(&ClipRef::new(language, "say/99")));
        assert!(catalog.contains(&ClipRef::new(language, "goodbye")));
    }
}

#[test]
fn notice_with_agent_forwards_queues_a_text_and_speaks_to_machines() {
    let catalog = catalog();
    let script = load("notice_with_agent");
    let fields = record(&[("INVOICE_NUMBER", "42")]);

    let mut run = Run::start(Arc::clone(&script), &fields);
    let (actions, _) = play_through(&mut run, &catalog, &['2']);
    let heard = names(&actions);
    let forward = heard.iter().position(|a| a == "Forward").unwrap();
    assert_eq!(heard[forward + 1], "notice_thanks_plan", "{heard:?}");

    let mut run = Run::start(Arc::clone(&script), &fields);
    let (actions, _) = play_through(&mut run, &catalog, &['1']);
    let text = "Thank you. We will check the payment of invoice 42 and let you know.";
    assert!(
        actions.iter().any(
            |a| matches!(a, Action::QueueSms { template, message: Ok(m) }
            if template == "payment_check_confirmation" && m.text == text && m.subject.is_none())
        ),
        "{actions:?}"
    );
    let email = script
        .email_template()
        .unwrap()
        .render("nl", &fields)
        .unwrap();
    assert_eq!(email.subject.as_deref(), Some("Factuur 42 is niet betaald"));
    assert!(
        email
            .text
            .starts_with("Beste klant,\n\nFactuur 42 is nog niet"),
        "{}",
        email.text
    );

    let mut run = Run::start(script, &fields);
    run.handle(Event::MachineAnswered);
    let first: Vec<Action> = std::iter::from_fn(|| run.poll_action()).collect();
    assert_eq!(
        first,
        [Action::Play(vec![ClipRef::new("en", "notice_intro")])]
    );
}
