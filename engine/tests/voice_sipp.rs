//! Issue 5 against SIPp: scripts that use answering-machine detection,
//! DTMF, forwarding to a call centre and its pause, each call a campaign
//! of the engine dialling a SIPp UAS that nobody here wrote.
//!
//! - Clips of the AMD dev corpus streamed by SIPp (`rtp_stream`) as the
//!   callee's audio: the engine's verdict over RTP is the one `dialcast amd
//!   classify` gives on the same file, and machines hear the voicemail block.
//! - A callee pressing 1 (RFC 4733) is forwarded to a second SIPp, the call
//!   centre, which gets the record's reference in a header; audio crosses
//!   the bridge both ways; the call counts as forwarded.
//! - With forwarding paused, the same key runs the closed branch; with the
//!   call centre busy, the failed branch. In REFER mode the trunk (SIPp) is
//!   asked to transfer, reports success by NOTIFY, and we leave the call.
//! - A gather step collects "159*" ended by "#" (RFC 4733) and queues a
//!   confirmation SMS, and collects "42" ended by "#" from a peer that sends
//!   its keys only as tones in the audio.
//!
//! Run with `cargo test -p dialcast-engine --features interop --test
//! voice_sipp`. `play_pcap_audio` needs root or CAP_NET_RAW (see
//! `tests/sipp/README.md`); the AMD test skips when the corpus is missing.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::campaigns::any_hour;
use common::media::{
    write_dtmf_pcap, write_inband_dtmf_pcap, write_key_then_talk_pcap, write_pcmu_pcap,
};
use common::{dialcast, ports, sipp, Verdict, Workdir};
use dialcast_engine::campaign::now_ms;
use dialcast_engine::campaign::voice::{
    ForwardMode, ForwardTarget, VoiceSettings, VoiceTuning, DEFAULT_REFERENCE_HEADER,
};
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::loopback::start_engine_tuned;
use dialcast_engine::results::ResultRow;
use dialcast_engine::service::{prepare_campaign, CampaignSetup};
use dialcast_engine::store::{
    CampaignSettings, CampaignState, OrganisationCalendar, SqliteStore, Store, TrunkSettings,
};
use tokio_util::sync::CancellationToken;

const SCRIPT: &str = "voice_test";

/// A person hears a goodbye; a machine the voicemail block.
const AMD_SCRIPT: &str = r#"name = "voice_test"
default_language = "en"

[[steps]]
step = "play"
prompt = "goodbye"

[[blocks.voicemail]]
step = "play"
prompt = "appointment_call_us"
"#;

/// Press 1 to speak to someone.
const FORWARD_SCRIPT: &str = r#"name = "voice_test"
default_language = "en"

[[steps]]
step = "menu"
prompt = "notice_menu"
options = { 1 = "agent" }
timeout_ms = 5000
retries = 0

[[steps]]
step = "play"
prompt = "goodbye"

[[blocks.agent]]
step = "forward"
closed = "closed"
failed = "failed"

[[blocks.closed]]
step = "output"
key = "forward"
value = "closed"

[[blocks.failed]]
step = "output"
key = "forward"
value = "failed"
"#;

/// An account number: up to four keys, `#` ends it; a confirmation SMS is
/// queued for a valid one.
const GATHER_SCRIPT: &str = r##"name = "voice_test"
default_language = "en"

[[steps]]
step = "gather"
prompt = "notice_menu"
key = "account"
max_digits = 4
terminator = "#"
then = "thanks"

[[steps]]
step = "hangup"

[[blocks.thanks]]
step = "sms"
template = "account_confirmation"

[[blocks.thanks]]
step = "play"
prompt = "goodbye"

[templates.account_confirmation]
channel = "sms"
text.en = "We have your account number. Reference {IDENTIFICATION_CLIENT_REFERENCE}."
"##;

fn record(reference: &str) -> ImportedRecord {
    let number = "+31610009999".to_string();
    let mut fields = BTreeMap::new();
    for (k, v) in [
        ("IDENTIFICATION_RECORD_ID", "V1"),
        ("IDENTIFICATION_CLIENT_REFERENCE", reference),
        ("PERSON_LANGUAGE", "en"),
        ("CONTACT_PHONE_1", number.as_str()),
    ] {
        fields.insert(k.to_string(), v.to_string());
    }
    ImportedRecord {
        line: 2,
        record_id: "V1".to_string(),
        client_reference: Some(reference.to_string()),
        script: SCRIPT.to_string(),
        fields,
        phones: vec![number],
        rejected_phones: Vec::new(),
        invalid_number: false,
    }
}

/// What one campaign of one record left behind.
struct Ran {
    row: Option<ResultRow>,
    status: Option<String>,
    /// The `attempt_ended` events' payloads.
    ended_events: Vec<serde_json::Value>,
    /// Templates and texts of the queued SMS (`sms_outbox`), `name: text`.
    sms: Vec<String>,
}

/// Runs `script` for one record against the SIPp UAS at `trunk`.
async fn run_one(
    work: &Workdir,
    trunk: SocketAddr,
    script: &str,
    settings: CampaignSettings,
    voice: VoiceSettings,
    forwarding_paused: bool,
) -> Ran {
    let db = work.file("dialcast.sqlite");
    let store = Arc::new(SqliteStore::open(&db).await.expect("store"));
    let campaign = prepare_campaign(
        &*store,
        &CampaignSetup {
            organisation: "Test",
            default_country: "NL",
            calendar: &OrganisationCalendar::every_day("Europe/Amsterdam"),
            trunk: &TrunkSettings {
                name: "trunk".into(),
                uri: format!("sip:{trunk}"),
                transport: "udp".into(),
                max_cps: 5,
                max_channels: 5,
                caller_id: Some("+31201234567".into()),
            },
            settings: &settings,
            script_name: SCRIPT,
            script_file: "voice_test.toml",
            script_source: script,
            campaign: SCRIPT,
        },
    )
    .await
    .expect("campaign");
    let started = now_ms();
    store
        .insert_records(campaign, &[record("REF-42")], started)
        .await
        .expect("records");
    if forwarding_paused {
        store
            .set_forwarding_paused(campaign, true, started)
            .await
            .expect("pause forwarding");
    }
    store
        .set_campaign_state(campaign, CampaignState::Running, started)
        .await
        .expect("running");
    let rtp = ports::block(20);
    let (engine, sip, _inbound) = start_engine_tuned(
        Arc::clone(&store),
        (rtp, rtp + 19),
        Default::default(),
        VoiceTuning::new(voice, []),
    )
    .await
    .expect("engine");
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    tokio::time::timeout(
        Duration::from_secs(60),
        engine.run_campaign(running, CancellationToken::new()),
    )
    .await
    .expect("finishes in time")
    .expect("runs");
    sip.shutdown();
    let rows = store
        .result_rows(campaign, started - 60_000, now_ms() + 60_000)
        .await
        .expect("results");
    let finals = store.record_finals(campaign).await.expect("finals");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("read the store");
    let ended_events: Vec<String> = sqlx::query_scalar(
        "SELECT payload_json FROM events WHERE kind = 'attempt_ended' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    let sms: Vec<String> = sqlx::query_scalar(
        "SELECT template || ': ' || COALESCE(body, '') FROM sms_outbox WHERE state = 'queued' \
         ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("sms outbox");
    Ran {
        sms,
        row: rows.into_iter().next(),
        status: finals.into_iter().next().and_then(|f| f.final_status),
        ended_events: ended_events
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect(),
    }
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("DIALCAST_AMD_CORPUS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/amd-corpus/dev"),
    }
}

/// The WAV's samples as raw mu-law bytes, as SIPp's `rtp_stream` sends them.
fn write_ulaw(wav: &Path, out: &Path) {
    let samples = dialcast_media::amd::read_wav_8k(wav).expect("read the clip");
    let bytes: Vec<u8> = samples
        .iter()
        .map(|s| dialcast_media::Codec::Pcmu.encode_sample(*s))
        .collect();
    std::fs::write(out, bytes).expect("write clip.ulaw");
}

/// `dialcast amd classify --json` on one file: its label.
fn classify(work: &Workdir, wav: &Path, verdict: &mut Verdict) -> Option<String> {
    let run = dialcast::spawn(
        work,
        "classify",
        &[
            "amd".to_string(),
            "classify".to_string(),
            "--json".to_string(),
            wav.display().to_string(),
        ],
    )
    .finish(Duration::from_secs(30));
    run.check_exit(verdict);
    let lines = run.json_lines();
    let label = lines
        .first()
        .and_then(|l| l.get("label"))
        .and_then(|l| l.as_str())
        .map(str::to_string);
    verdict.check(label.is_some(), || {
        format!("no label from classify: {lines:?}")
    });
    label
}

/// One clip of each kind with a clear decision well before the clip ends
/// (after its end SIPp sends nothing, where the file simply ends).
const CLIPS: &[&str] = &[
    "dev-003.wav", // human: "Hello?" then silence
    "dev-048.wav", // human: "Speaking."
    "dev-014.wav", // machine: greeting and a beep at 1.8 s
    "dev-082.wav", // machine: a beep at 0.4 s
    "dev-110.wav", // silence: hiss with handset clicks
    "dev-008.wav", // fax: calling tone
    "dev-026.wav", // fax: answer tone
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_over_rtp_decides_as_amd_classify_does_and_machines_get_the_voicemail_block() {
    sipp::require_sipp();
    let corpus = corpus_dir();
    if !corpus.join(CLIPS[0]).exists() {
        eprintln!("skipped: no AMD corpus at {}", corpus.display());
        return;
    }
    let mut verdict = Verdict::new("AMD over RTP from SIPp's rtp_stream");
    for clip in CLIPS {
        let work = Workdir::new("voice_sipp_amd");
        let wav = corpus.join(clip);
        let expected = classify(&work, &wav, &mut verdict);
        write_ulaw(&wav, &work.file("clip.ulaw"));
        let mut server = sipp::uas(&work, "uas-200-rtp-stream-clip-expect-bye.xml").start();
        let ran = run_one(
            &work,
            server.addr(),
            AMD_SCRIPT,
            any_hour(1, 0, 10_000, true),
            VoiceSettings::default(),
            false,
        )
        .await;
        let call = ran.row.as_ref().and_then(|r| r.calls.first());
        let heard = call.and_then(|c| c.amd.clone());
        eprintln!(
            "{clip}: amd classify {expected:?}, over RTP {heard:?}, status {:?}, voicemail left {:?}",
            ran.status,
            call.map(|c| c.voicemail_left)
        );
        verdict.check(heard.is_some() && heard == expected, || {
            format!("{clip}: the engine decided {heard:?} over RTP, amd classify {expected:?}")
        });
        if expected.as_deref() == Some("machine") {
            verdict.check(
                ran.status.as_deref() == Some("voicemail") && call.is_some_and(|c| c.voicemail_left),
                || format!("{clip}: a machine should end voicemail with the message left: {:?} {call:?}", ran.status),
            );
        }
        let ended = server.wait(Duration::from_secs(30));
        server.check_passed(ended, &mut verdict);
        if verdict.failed() {
            server.attach_logs(&mut verdict);
            break;
        }
    }
    verdict.finish();
}

fn forward_to(centre: SocketAddr) -> VoiceSettings {
    VoiceSettings {
        forward: Some(ForwardTarget {
            uri: format!("sip:agent@{centre}"),
            mode: ForwardMode::Bridge,
            reference_header: DEFAULT_REFERENCE_HEADER.to_string(),
            ring_timeout_ms: 10_000,
            opening_hours: None,
        }),
        ..VoiceSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_pressing_1_is_bridged_to_the_call_centre_with_audio_both_ways() {
    sipp::require_sipp();
    let work = Workdir::new("voice_sipp_forward");
    let centre_work = Workdir::new("voice_sipp_forward_centre");
    write_key_then_talk_pcap(&work.file("press-1-then-talk.pcap"), '1', 101, 1_500, 5_000);
    write_pcmu_pcap(&centre_work.file("agent-audio.pcap"), 3_000);
    let mut centre = sipp::uas(
        &centre_work,
        "uas-200-call-centre-reference-talk-then-bye.xml",
    )
    .start();
    let mut callee = sipp::uas(&work, "uas-200-press-1-then-talk-expect-bye.xml").start();
    let ran = run_one(
        &work,
        callee.addr(),
        FORWARD_SCRIPT,
        any_hour(1, 0, 10_000, false),
        forward_to(centre.addr()),
        false,
    )
    .await;
    let mut verdict = Verdict::new("a callee pressing 1 is forwarded to the call centre");
    verdict.check(ran.status.as_deref() == Some("forwarded"), || {
        format!("record ended {:?}, expected forwarded", ran.status)
    });
    let call = ran.row.as_ref().and_then(|r| r.calls.first());
    verdict.check(
        call.is_some_and(|c| c.forwarded && c.dtmf.contains('1')),
        || format!("result call: {call:?}"),
    );
    let bridge = ran
        .ended_events
        .first()
        .and_then(|e| e.get("forwarded"))
        .cloned()
        .unwrap_or_default();
    let frames = |key: &str| bridge.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
    // The agent talks 3 s; the callee about 2.5 s of the bridge's 4 s.
    verdict.check(frames("to_callee_frames") >= 100, || {
        format!("too little of the agent's audio reached the callee: {bridge}")
    });
    verdict.check(frames("to_centre_frames") >= 75, || {
        format!("too little of the callee's audio reached the agent: {bridge}")
    });
    let ended = centre.wait(Duration::from_secs(30));
    centre.check_passed(ended, &mut verdict);
    let seen = std::fs::read_to_string(centre_work.file("sipp-messages.log")).unwrap_or_default();
    verdict.check(seen.contains("X-Dialcast-Reference: REF-42"), || {
        "the call centre's INVITE did not carry X-Dialcast-Reference: REF-42".to_string()
    });
    let ended = callee.wait(Duration::from_secs(30));
    callee.check_passed(ended, &mut verdict);
    if verdict.failed() {
        centre.attach_logs(&mut verdict);
        callee.attach_logs(&mut verdict);
    }
    verdict.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_refer_mode_the_trunk_is_asked_to_transfer_and_we_leave_on_its_success() {
    sipp::require_sipp();
    let work = Workdir::new("voice_sipp_refer");
    write_key_then_talk_pcap(&work.file("press-1-then-talk.pcap"), '1', 101, 1_500, 2_000);
    let mut trunk = sipp::uas(&work, "uas-200-press-1-refer-202-notify-200-expect-bye.xml").start();
    let mut voice = forward_to(SocketAddr::from(([127, 0, 0, 1], 5099)));
    if let Some(target) = voice.forward.as_mut() {
        target.mode = ForwardMode::Refer;
    }
    let ran = run_one(
        &work,
        trunk.addr(),
        FORWARD_SCRIPT,
        any_hour(1, 0, 10_000, false),
        voice,
        false,
    )
    .await;
    let mut verdict = Verdict::new("forwarding by REFER");
    verdict.check(ran.status.as_deref() == Some("forwarded"), || {
        format!("record ended {:?}, expected forwarded", ran.status)
    });
    let referred = ran
        .ended_events
        .first()
        .and_then(|e| e.pointer("/forwarded/referred"))
        .and_then(|v| v.as_bool());
    verdict.check(referred == Some(true), || {
        format!("attempt_ended events: {:?}", ran.ended_events)
    });
    finish_with(verdict, &mut [&mut trunk]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_call_centre_runs_the_failed_branch() {
    sipp::require_sipp();
    let work = Workdir::new("voice_sipp_centre_busy");
    let centre_work = Workdir::new("voice_sipp_centre_busy_centre");
    write_key_then_talk_pcap(&work.file("press-1-then-talk.pcap"), '1', 101, 1_500, 2_000);
    let mut centre = sipp::uas(&centre_work, "uas-486-busy.xml").start();
    let mut callee = sipp::uas(&work, "uas-200-press-1-then-talk-expect-bye.xml").start();
    let ran = run_one(
        &work,
        callee.addr(),
        FORWARD_SCRIPT,
        any_hour(1, 0, 10_000, false),
        forward_to(centre.addr()),
        false,
    )
    .await;
    let mut verdict = Verdict::new("a busy call centre: the failed branch runs");
    let custom = custom_results(&ran);
    verdict.check(
        custom.contains(&("forward".to_string(), "failed".to_string())),
        || format!("outputs {custom:?}, expected forward = failed"),
    );
    verdict.check(ran.status.as_deref() != Some("forwarded"), || {
        format!("record ended {:?}", ran.status)
    });
    finish_with(verdict, &mut [&mut centre, &mut callee]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_forwarding_paused_the_key_runs_the_closed_branch() {
    sipp::require_sipp();
    let work = Workdir::new("voice_sipp_paused");
    write_key_then_talk_pcap(&work.file("press-1-then-talk.pcap"), '1', 101, 1_500, 2_000);
    let mut callee = sipp::uas(&work, "uas-200-press-1-then-talk-expect-bye.xml").start();
    // Nobody listens there: a forward that went ahead would fail, not close.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], ports::one()));
    let ran = run_one(
        &work,
        callee.addr(),
        FORWARD_SCRIPT,
        any_hour(1, 0, 10_000, false),
        forward_to(nowhere),
        true,
    )
    .await;
    let mut verdict = Verdict::new("forwarding paused: the closed branch runs");
    let custom = custom_results(&ran);
    verdict.check(
        custom.contains(&("forward".to_string(), "closed".to_string())),
        || format!("outputs {custom:?}, expected forward = closed"),
    );
    verdict.check(ran.status.as_deref() != Some("forwarded"), || {
        format!("record ended {:?}", ran.status)
    });
    finish_with(verdict, &mut [&mut callee]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gather_step_collects_the_keys_up_to_the_terminator() {
    sipp::require_sipp();
    let work = Workdir::new("voice_sipp_gather");
    write_dtmf_pcap(&work.file("dtmf-159star-hash.pcap"), "159*#", 101);
    let mut callee = sipp::uas(&work, "uas-200-dtmf-159star-hash.xml").start();
    let ran = run_one(
        &work,
        callee.addr(),
        GATHER_SCRIPT,
        any_hour(1, 0, 10_000, false),
        VoiceSettings::default(),
        false,
    )
    .await;
    let mut verdict = Verdict::new("gather: 159* ended by #");
    let custom = custom_results(&ran);
    verdict.check(
        custom == [("account".to_string(), "159*".to_string())],
        || format!("outputs {custom:?}, expected account = 159*"),
    );
    let expected = "account_confirmation: We have your account number. Reference REF-42.";
    verdict.check(ran.sms == [expected], || {
        format!("queued SMS {:?}, expected [{expected:?}]", ran.sms)
    });
    finish_with(verdict, &mut [&mut callee]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gather_step_hears_keys_sent_in_band() {
    sipp::require_sipp();
    let work = Workdir::new("voice_sipp_gather_inband");
    write_inband_dtmf_pcap(&work.file("inband-42-hash.pcap"), "42#");
    let mut callee = sipp::uas(&work, "uas-200-inband-dtmf-42-hash.xml").start();
    let ran = run_one(
        &work,
        callee.addr(),
        GATHER_SCRIPT,
        any_hour(1, 0, 10_000, false),
        VoiceSettings::default(),
        false,
    )
    .await;
    let mut verdict = Verdict::new("gather: 42 ended by #, in band");
    let custom = custom_results(&ran);
    verdict.check(
        custom == [("account".to_string(), "42".to_string())],
        || format!("outputs {custom:?}, expected account = 42"),
    );
    finish_with(verdict, &mut [&mut callee]);
}

/// Waits for each SIPp peer to end, requires that each went through its
/// scenario, attaches every peer's logs when anything failed, and reports.
fn finish_with(mut verdict: Verdict, peers: &mut [&mut sipp::Sipp]) {
    for peer in peers.iter_mut() {
        let ended = peer.wait(Duration::from_secs(30));
        peer.check_passed(ended, &mut verdict);
    }
    if verdict.failed() {
        for peer in peers.iter() {
            peer.attach_logs(&mut verdict);
        }
    }
    verdict.finish();
}

/// The `CUSTOMRESULTS` the attempt stored (none without a result row).
fn custom_results(ran: &Ran) -> Vec<(String, String)> {
    ran.row
        .as_ref()
        .map(|r| r.custom.clone())
        .unwrap_or_default()
}
