//! Scores the answering-machine and beep detectors on the labelled dev clips
//! in `/work/shared/amd-corpus/dev` (or the folder named by
//! `DIALCAST_AMD_CORPUS`): confusion matrix, accuracy per label, decision
//! times, beep timing. Each clip goes through
//! [`dialcast_media::amd::classify_samples`], the code `dialcast amd
//! classify` runs: the live detector, stopped as the session stops it.
//! Skips, with a notice, when the folder is missing. Run with `--nocapture`
//! to see the report; figures are in `media/AMD.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dialcast_media::amd::{classify_samples, read_wav_8k};
use dialcast_media::{AmdConfig, AmdDetector, BeepEvent};

const LABELS: [&str; 4] = ["human", "machine", "silence", "fax"];
const VERDICTS: [&str; 5] = ["human", "machine", "silence", "fax", "unknown"];

/// Floors: what the detector achieves on the dev set with the default
/// configuration (in brackets), less one clip: one more error fails. The
/// dev set was used for tuning, so these are optimistic.
const MIN_ACCURACY: f64 = 0.945; // (0.950: 114/120)
const MIN_HUMAN_ACCURACY: f64 = 0.99; // (1.000: 50/50; a person hung up on fails)
const MIN_MACHINE_ACCURACY: f64 = 0.88; // (0.891: 49/55)
const MAX_HUMAN_MEDIAN_MS: u32 = 2490; // (2470; the target is < 2500)
/// Share of the clips with a labelled beep whose first reported beep starts
/// within 100 ms of it, listening as the session does (not after a `human`
/// decision) ...
const MIN_BEEP_WITHIN_100MS: f64 = 0.95; // (0.957: 44/46)
/// ... and with the detector listening to the whole clip.
const MIN_BEEP_DETECTOR_WITHIN_100MS: f64 = 0.95; // (0.957: 44/46)
const MAX_FALSE_BEEPS: usize = 2; // (2)

struct Clip {
    file: String,
    label: String,
    beep_start_ms: Option<u32>,
    beep_end_ms: Option<u32>,
    notes: String,
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("DIALCAST_AMD_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/amd-corpus/dev"),
    }
}

/// Splits one CSV line (double-quoted fields, `""` for a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// The beep's length from the notes: "NNN ms", "2 x A ms, G ms apart", or
/// the recorded Asterisk beep (425 ms).
fn beep_len_ms(notes: &str) -> Option<u32> {
    let beep = notes.split("beep:").nth(1)?.split(';').next()?;
    let num_before = |s: &str, pat: &str| -> Option<u32> {
        let i = s.find(pat)?;
        let head = s[..i].trim_end();
        let start = head
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |p| p + 1);
        head[start..].parse().ok()
    };
    if let Some(i) = beep.find("2 x ") {
        let rest = &beep[i + 4..];
        let on = num_before(rest, " ms")?;
        let gap_part = rest.split(',').nth(1)?;
        let gap = num_before(gap_part, " ms apart")?;
        return Some(2 * on + gap);
    }
    if beep.contains("425 ms") {
        return Some(425);
    }
    num_before(beep, " ms,")
}

fn load_clips(dir: &Path) -> Vec<Clip> {
    let text = std::fs::read_to_string(dir.join("labels.csv")).expect("labels.csv readable");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f = csv_fields(line);
            let beep_start_ms = f[2].parse().ok();
            let notes = f.get(5).cloned().unwrap_or_default();
            let beep_end_ms = beep_start_ms.and_then(|s: u32| beep_len_ms(&notes).map(|l| s + l));
            Clip {
                file: f[0].clone(),
                label: f[1].clone(),
                beep_start_ms,
                beep_end_ms,
                notes,
            }
        })
        .collect()
}

fn read_wav(path: &Path) -> Vec<i16> {
    read_wav_8k(path).expect("readable WAV")
}

struct Outcome {
    verdict: &'static str,
    at_ms: u32,
    reason: &'static str,
    measures: dialcast_media::AmdMeasures,
    /// The first beep reported (start, end).
    beep: Option<(u32, u32)>,
}

fn run(config: AmdConfig, samples: &[i16]) -> Outcome {
    let c = classify_samples(config, samples);
    Outcome {
        verdict: c.decision.verdict.as_str(),
        at_ms: c.decision.at_ms,
        reason: c.decision.reason,
        measures: c.decision.measures,
        beep: c.beep,
    }
}

/// The first beep the detector reports when it listens to the whole clip,
/// whatever it decided.
fn first_beep_heard(config: AmdConfig, samples: &[i16]) -> Option<(u32, u32)> {
    let mut det = AmdDetector::new(config);
    samples.chunks(160).find_map(|f| match det.process(f).beep {
        Some(BeepEvent::Ended { start_ms, end_ms }) => Some((start_ms, end_ms)),
        _ => None,
    })
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

fn mean(v: &[u32]) -> f64 {
    v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len().max(1) as f64
}

/// The value at quantile `q` (0..=1) of `v` (the median of an even count is
/// the mean of the middle two).
fn quantile(v: &[u32], q: f64) -> u32 {
    let mut v = v.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return 0;
    }
    let x = (v.len() - 1) as f64 * q;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    ((f64::from(v[lo]) + f64::from(v[hi])) / 2.0).round() as u32
}

fn load_all(dir: &Path) -> Vec<(Clip, Vec<i16>)> {
    load_clips(dir)
        .into_iter()
        .map(|c| {
            let s = read_wav(&dir.join(&c.file));
            (c, s)
        })
        .collect()
}

/// One line per configuration: accuracy overall and per label, the human
/// median decision time, beeps within 100 ms.
fn summary(clips: &[(Clip, Vec<i16>)], config: AmdConfig) -> (String, Vec<String>) {
    let (mut ok, mut h_ok, mut h, mut m_ok, mut m) = (0, 0, 0, 0, 0);
    let mut human_times = Vec::new();
    let mut errors = Vec::new();
    let (mut beeps, mut beeps_100) = (0, 0);
    for (clip, samples) in clips {
        let o = run(config, samples);
        let right = o.verdict == clip.label;
        ok += usize::from(right);
        if clip.label == "human" {
            h += 1;
            h_ok += usize::from(right);
            human_times.push(o.at_ms);
        }
        if clip.label == "machine" {
            m += 1;
            m_ok += usize::from(right);
        }
        if let Some(want) = clip.beep_start_ms {
            beeps += 1;
            beeps_100 += usize::from(o.beep.is_some_and(|b| b.0.abs_diff(want) <= 100));
        }
        if !right {
            errors.push(format!(
                "{} {}->{} at {} ms: {} (greeting {}, words {}, silence {})",
                clip.file,
                clip.label,
                o.verdict,
                o.at_ms,
                o.reason,
                o.measures.greeting_ms,
                o.measures.words,
                o.measures.silence_after_ms
            ));
        }
    }
    let line = format!(
        "all {:.3} ({ok}/{}) human {:.3} machine {:.3} human median {} ms beep<=100ms {beeps_100}/{beeps}",
        pct(ok, clips.len()),
        clips.len(),
        pct(h_ok, h),
        pct(m_ok, m),
        quantile(&human_times, 0.5)
    );
    (line, errors)
}

/// Sensitivity: each parameter moved alone, around the defaults.
/// `cargo test -p dialcast-media --test amd_corpus -- --ignored sweep --nocapture`
#[test]
#[ignore = "a tuning tool, not a check: prints accuracy as each parameter is moved"]
fn sweep() {
    let dir = corpus_dir();
    if !dir.join("labels.csv").exists() {
        println!("AMD corpus not found at {}; skipping", dir.display());
        return;
    }
    let clips = load_all(&dir);
    let base = AmdConfig::default();
    let mut configs = vec![("defaults".to_string(), base)];
    let mut add = |name: String, c: AmdConfig| configs.push((name, c));
    for v in [8.0, 12.0] {
        add(
            format!("speech_margin_db {v}"),
            AmdConfig {
                speech_margin_db: v,
                ..base
            },
        );
    }
    for v in [5.0, 6.0, 8.0, 9.0, 10.0, 1000.0] {
        add(
            format!("foreground_drop_db {v}"),
            AmdConfig {
                foreground_drop_db: v,
                ..base
            },
        );
    }
    for v in [500, 700, 800] {
        add(
            format!("after_greeting_silence_ms {v}"),
            AmdConfig {
                after_greeting_silence_ms: v,
                ..base
            },
        );
    }
    for v in [1000, 1200, 1800, 2000] {
        add(
            format!("short_greeting_ms {v}"),
            AmdConfig {
                short_greeting_ms: v,
                ..base
            },
        );
    }
    for v in [900, 1000, 1100, 1300, 1400, 1600] {
        add(
            format!("beep_wait_ms {v}"),
            AmdConfig {
                beep_wait_ms: v,
                ..base
            },
        );
    }
    for v in [5000, 6000, 7000] {
        add(
            format!("max_greeting_ms {v}"),
            AmdConfig {
                max_greeting_ms: v,
                ..base
            },
        );
    }
    for v in [60, 140] {
        add(
            format!("min_word_ms {v}"),
            AmdConfig {
                min_word_ms: v,
                ..base
            },
        );
    }
    for v in [3000, 4000] {
        add(
            format!("initial_silence_ms {v}"),
            AmdConfig {
                initial_silence_ms: v,
                ..base
            },
        );
    }
    for (name, config) in configs {
        println!("{name:<32} {}", summary(&clips, config).0);
    }
}

/// The halves of a split: clips whose position in `labels.csv` gives
/// `pick(i) == half`.
fn halves(n: usize, pick: fn(usize) -> bool) -> [Vec<usize>; 2] {
    let a: Vec<usize> = (0..n).filter(|i| pick(*i)).collect();
    let b: Vec<usize> = (0..n).filter(|i| !pick(*i)).collect();
    [a, b]
}

/// Overfitting check: for each tuned value, choose it on one half of the
/// clips (the candidate with the most clips right, ties to the middle of
/// the tied run) and score the other half with it, both ways, on two
/// splits (alternate clips; first and second half of `labels.csv`, whose
/// numbering is shuffled). Also scores each half with the shipped default.
/// `cargo test -p dialcast-media --test amd_corpus -- --ignored split_half --nocapture`
#[test]
#[ignore = "an overfitting check, not a floor: prints tune-on-one-half, score-on-the-other"]
fn split_half() {
    let dir = corpus_dir();
    if !dir.join("labels.csv").exists() {
        println!("AMD corpus not found at {}; skipping", dir.display());
        return;
    }
    let clips = load_all(&dir);
    let base = AmdConfig::default();
    type Knob = (&'static str, Vec<f32>, fn(&mut AmdConfig, f32));
    let knobs: Vec<Knob> = vec![
        (
            "beep_wait_ms",
            vec![800., 900., 1000., 1100., 1200., 1300., 1400., 1500., 1600.],
            |c, v| c.beep_wait_ms = v as u32,
        ),
        (
            "after_greeting_silence_ms",
            vec![400., 500., 600., 700., 800., 900.],
            |c, v| c.after_greeting_silence_ms = v as u32,
        ),
        (
            "foreground_drop_db",
            vec![4., 5., 6., 7., 8., 9., 10., 12.],
            |c, v| c.foreground_drop_db = v,
        ),
        (
            "max_greeting_ms",
            vec![5000., 5500., 6000., 6500., 7000., 7500.],
            |c, v| c.max_greeting_ms = v as u32,
        ),
    ];
    type Split = (&'static str, fn(usize) -> bool);
    let splits: [Split; 2] = [
        ("alternate clips", |i| i % 2 == 0),
        ("first / second 60", |i| i < 60),
    ];
    for (name, values, set) in &knobs {
        // Right or wrong, per clip, for each candidate value.
        let right: Vec<Vec<bool>> = values
            .iter()
            .map(|v| {
                let mut c = base;
                set(&mut c, *v);
                clips
                    .iter()
                    .map(|(clip, samples)| run(c, samples).verdict == clip.label)
                    .collect()
            })
            .collect();
        let default_right: Vec<bool> = clips
            .iter()
            .map(|(clip, samples)| run(base, samples).verdict == clip.label)
            .collect();
        let count = |r: &[bool], idx: &[usize]| idx.iter().filter(|i| r[**i]).count();
        println!("{name}: candidates {values:?}");
        for (split, pick) in splits {
            let [a, b] = halves(clips.len(), pick);
            for (tune, test, dir) in [(&a, &b, "A->B"), (&b, &a, "B->A")] {
                let scores: Vec<usize> = right.iter().map(|r| count(r, tune)).collect();
                let best = scores.iter().copied().max().unwrap_or(0);
                let tied: Vec<usize> = (0..values.len()).filter(|k| scores[*k] == best).collect();
                let chosen = tied[tied.len() / 2];
                println!(
                    "  {split} {dir}: tuned {}/{} at {} (tied: {:?}); other half {}/{} with it, {}/{} with the default",
                    best,
                    tune.len(),
                    values[chosen],
                    tied.iter().map(|k| values[*k]).collect::<Vec<_>>(),
                    count(&right[chosen], test),
                    test.len(),
                    count(&default_right, test),
                    test.len()
                );
            }
        }
    }
}

/// Tuning tool: `AMD_CONFIGS` holds one JSON `AmdConfig` (partial) per line;
/// prints the summary and the errors of each.
/// `AMD_CONFIGS='{"beep_wait_ms":1000}' cargo test -p dialcast-media --test amd_corpus -- --ignored explore --nocapture`
#[test]
#[ignore = "a tuning tool, not a check"]
fn explore() {
    let dir = corpus_dir();
    if !dir.join("labels.csv").exists() {
        println!("AMD corpus not found at {}; skipping", dir.display());
        return;
    }
    let clips = load_all(&dir);
    let lines = std::env::var("AMD_CONFIGS").unwrap_or_else(|_| "{}".into());
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let config: AmdConfig = serde_json::from_str(line).expect("config JSON");
        let (summary, errors) = summary(&clips, config);
        println!("{line}\n  {summary}");
        for e in errors {
            println!("    {e}");
        }
    }
}

#[test]
fn dev_corpus_scores() {
    let dir = corpus_dir();
    if !dir.join("labels.csv").exists() {
        println!("AMD corpus not found at {}; skipping", dir.display());
        return;
    }
    let clips = load_all(&dir);
    let config = AmdConfig::default();
    let mut confusion: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    // Decision times of all clips and of the right answers, per label.
    let mut times_all: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut times_right: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut causes: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    let (mut easy, mut easy_ok) = (0, 0);
    let mut beeps = 0usize;
    let mut start_errs: Vec<i64> = Vec::new();
    let mut end_errs: Vec<i64> = Vec::new();
    let mut beep_notes = Vec::new();
    let mut false_beeps = 0;
    let mut fax_tones = 0;
    let mut detector_beep_100 = 0;
    for (clip, samples) in &clips {
        let o = run(config, samples);
        if let Some(want) = clip.beep_start_ms {
            detector_beep_100 += usize::from(
                first_beep_heard(config, samples).is_some_and(|b| b.0.abs_diff(want) <= 100),
            );
        }
        let label = LABELS
            .iter()
            .copied()
            .find(|l| *l == clip.label)
            .expect("known label");
        *confusion.entry((label, o.verdict)).or_default() += 1;
        *causes.entry((o.verdict, o.reason)).or_default() += 1;
        times_all.entry(label).or_default().push(o.at_ms);
        let hard = clip.notes.contains("hard case");
        if !hard {
            easy += 1;
            easy_ok += usize::from(o.verdict == label);
        }
        if o.verdict == label {
            times_right.entry(label).or_default().push(o.at_ms);
        } else {
            wrong.push(format!(
                "{} {label:>7} -> {:<7} at {:>4} ms ({}; initial silence {}, greeting {}, words {}, silence after {}){}",
                clip.file,
                o.verdict,
                o.at_ms,
                o.reason,
                o.measures.initial_silence_ms,
                o.measures.greeting_ms,
                o.measures.words,
                o.measures.silence_after_ms,
                if hard { " [hard case]" } else { "" }
            ));
        }
        // The first beep reported is what a caller acting on the first
        // `Beep` event uses.
        match (clip.beep_start_ms, o.beep) {
            (Some(want), Some(b)) => {
                beeps += 1;
                let e = i64::from(b.0) - i64::from(want);
                start_errs.push(e);
                if let Some(want_end) = clip.beep_end_ms {
                    end_errs.push(i64::from(b.1) - i64::from(want_end));
                }
                if e.abs() > 100 {
                    false_beeps += usize::from(e < 0);
                    beep_notes.push(format!(
                        "{}: first beep reported at {}-{} ms, labelled {want}",
                        clip.file, b.0, b.1
                    ));
                }
            }
            (Some(want), None) => {
                beeps += 1;
                beep_notes.push(format!("{}: beep at {want} ms missed", clip.file));
            }
            (None, Some(b)) if label == "fax" => {
                fax_tones += 1;
                let _ = b;
            }
            (None, Some(b)) => {
                false_beeps += 1;
                beep_notes.push(format!(
                    "{}: beep {}-{} ms, none labelled",
                    clip.file, b.0, b.1
                ));
            }
            (None, None) => {}
        }
    }

    println!("\nAMD on {} clips in {}", clips.len(), dir.display());
    print!("{:>9}", "label\\got");
    for v in VERDICTS {
        print!("{v:>9}");
    }
    println!(
        "{:>10}   decision ms, all clips: mean / median / 90 %  (right answers only)",
        "accuracy"
    );
    let mut correct = 0;
    let mut per_label = BTreeMap::new();
    for l in LABELS {
        print!("{l:>9}");
        let mut row = 0;
        for v in VERDICTS {
            let n = confusion.get(&(l, v)).copied().unwrap_or(0);
            row += n;
            print!("{n:>9}");
        }
        let ok = confusion.get(&(l, l)).copied().unwrap_or(0);
        correct += ok;
        per_label.insert(l, (ok, row));
        let t = times_all.get(l).cloned().unwrap_or_default();
        let r = times_right.get(l).cloned().unwrap_or_default();
        println!(
            "{:>10.3}   {:>5.0} / {:>5} / {:>5}  ({:.0} / {} / {})",
            pct(ok, row),
            mean(&t),
            quantile(&t, 0.5),
            quantile(&t, 0.9),
            mean(&r),
            quantile(&r, 0.5),
            quantile(&r, 0.9)
        );
    }
    let accuracy = pct(correct, clips.len());
    let (h, m) = (per_label["human"], per_label["machine"]);
    println!(
        "overall accuracy {accuracy:.3} ({correct}/{}); human+machine {:.3}; clips not marked hard {:.3} ({easy_ok}/{easy})",
        clips.len(),
        pct(h.0 + m.0, h.1 + m.1),
        pct(easy_ok, easy)
    );
    println!("causes:");
    for ((verdict, reason), n) in &causes {
        println!("  {verdict:<8} {reason:<36} {n:>3}");
    }
    for w in &wrong {
        println!("  wrong: {w}");
    }

    let within = |v: &[i64], ms: i64| v.iter().filter(|e| e.abs() <= ms).count();
    let mean_abs =
        |v: &[i64]| v.iter().map(|e| e.abs() as f64).sum::<f64>() / v.len().max(1) as f64;
    let beep_100 = within(&start_errs, 100);
    println!(
        "beeps: {beeps} clips have a labelled beep; the first beep reported starts within 100 ms of it in {beep_100} ({:.3}), within 20 ms in {}, within 50 ms in {}",
        pct(beep_100, beeps),
        within(&start_errs, 20),
        within(&start_errs, 50)
    );
    println!(
        "  the beep detector listening to the whole clip (not stopped by a human decision): within 100 ms in {detector_beep_100}/{beeps} ({:.3})",
        pct(detector_beep_100, beeps)
    );
    let good: Vec<i64> = start_errs
        .iter()
        .copied()
        .filter(|e| e.abs() <= 100)
        .collect();
    let good_end: Vec<i64> = end_errs
        .iter()
        .copied()
        .filter(|e| e.abs() <= 100)
        .collect();
    println!(
        "  start error of those: mean |err| {:.1} ms, max {} ms; end error (end from the notes' beep length): mean |err| {:.1} ms, max {} ms",
        mean_abs(&good),
        good.iter().map(|e| e.abs()).max().unwrap_or(0),
        mean_abs(&good_end),
        good_end.iter().map(|e| e.abs()).max().unwrap_or(0)
    );
    println!("  start errors (ms): {start_errs:?}");
    println!("  end errors (ms): {end_errs:?}");
    println!(
        "  first beep reported where there is none or before the real one: {false_beeps}; \
         fax clips whose tone was also reported as a beep: {fax_tones}"
    );
    for n in &beep_notes {
        println!("  beep: {n}");
    }

    let human_median = quantile(&times_all["human"], 0.5);
    assert!(accuracy >= MIN_ACCURACY, "accuracy {accuracy:.3}");
    assert!(pct(h.0, h.1) >= MIN_HUMAN_ACCURACY, "human {h:?}");
    assert!(pct(m.0, m.1) >= MIN_MACHINE_ACCURACY, "machine {m:?}");
    assert!(
        human_median <= MAX_HUMAN_MEDIAN_MS,
        "human median decision {human_median} ms"
    );
    assert!(
        pct(beep_100, beeps) >= MIN_BEEP_WITHIN_100MS,
        "beeps within 100 ms {beep_100}/{beeps}"
    );
    assert!(
        pct(detector_beep_100, beeps) >= MIN_BEEP_DETECTOR_WITHIN_100MS,
        "beep detector within 100 ms {detector_beep_100}/{beeps}"
    );
    assert!(false_beeps <= MAX_FALSE_BEEPS, "false beeps {false_beeps}");
}
