//! The callee farm against SIPp (Debian package `sip-tester`) as the caller:
//! each test starts a farm on 127.0.0.1:0 with short timings, runs one SIPp
//! UAC scenario from `loadtest/scenarios/` (named for the outcome it expects)
//! against one of the farm's numbers, and checks both sides: SIPp's exit code
//! (0 only when every call went through the scenario to its end) and the
//! farm's stats.
//!
//! Run with `cargo test -p dialcast-loadtest --features interop --test
//! farm_sipp`. Set `DIALCAST_KEEP_WORKDIR=1` to keep SIPp's logs (a failing
//! test prints its error log and work dir either way).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use dialcast_loadtest::farm::{Behaviour, Farm, FarmConfig, FarmStats, Span, Timings};
use dialcast_loadtest::sipp::{self, Sipp};

/// How long one SIPp run may take before the test kills it.
const SIPP_LIMIT: Duration = Duration::from_secs(50);
/// RTP ports of the farms (shared by parallel tests: the media engine skips
/// ports in use).
const RTP_PORTS: (u16, u16) = (42000, 43999);

/// Timings short enough for a test, long enough to tell phases apart.
fn timings() -> Timings {
    Timings {
        ring: Span {
            min: Duration::from_millis(100),
            max: Duration::from_millis(300),
        },
        slow_ring: Duration::from_millis(1500),
        decline_after: Duration::from_millis(300),
        voicemail_cap: Duration::from_secs(1),
        hangup_after: Duration::from_millis(1500),
        keys_after: Duration::from_millis(500),
        keys: "19".to_string(),
        ..Timings::default()
    }
}

fn config() -> FarmConfig {
    let mut config = FarmConfig::new("127.0.0.1:0".parse().expect("address"));
    config.media.port_min = RTP_PORTS.0;
    config.media.port_max = RTP_PORTS.1;
    config.timings = timings();
    config
}

async fn start_farm() -> Farm {
    Farm::start(config()).await.expect("the farm starts")
}

/// One SIPp run and what the farm counted.
struct Run {
    code: i32,
    elapsed: Duration,
    stats: FarmStats,
    work_dir: PathBuf,
    report: String,
}

impl Run {
    /// Panics with SIPp's command and error log unless SIPp exited 0.
    fn assert_sipp_passed(&self) {
        assert_eq!(
            self.code,
            0,
            "SIPp failed (exit {}); work dir {}\n{}",
            self.code,
            self.work_dir.display(),
            self.report
        );
    }
}

/// Runs `scenario` with `calls` calls to `number` (SIPp's `-s`), plus
/// `extra` arguments, then waits for the farm to finish those calls.
async fn run_sipp(farm: &Farm, scenario: &str, number: &str, calls: u32, extra: &[&str]) -> Run {
    let port = sipp::free_udp_port().expect("a free port");
    let media_port = sipp::free_udp_port().expect("a free port");
    let mut args = sipp::base_args(&sipp::scenario(scenario), port, media_port);
    for a in ["-s", number, "-m", &calls.to_string(), "-timeout", "45s"] {
        args.push(a.to_string());
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push(farm.local_addr().to_string());
    let work_dir = std::env::temp_dir().join(format!(
        "dialcast-farm-sipp-{}-{}-{port}",
        std::process::id(),
        scenario.trim_end_matches(".xml")
    ));
    let started = Instant::now();
    let mut child =
        Sipp::spawn(&args, &work_dir).expect("sipp starts (apt-get install sip-tester)");
    let (code, _) = tokio::task::spawn_blocking(move || child.wait(SIPP_LIMIT))
        .await
        .expect("the waiting thread")
        .expect("sipp ends in time");
    let elapsed = started.elapsed();
    let stats = settled_stats(farm, calls).await;
    let mut report = format!("sipp {}\n", args.join(" "));
    if let Ok(entries) = std::fs::read_dir(&work_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with("_errors.log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                report.push_str(&format!("--- {name}\n{text}\n"));
            }
        }
    }
    report.push_str(&format!(
        "--- farm stats\n{}",
        serde_json::to_string_pretty(&stats).unwrap_or_default()
    ));
    if code == 0 && std::env::var_os("DIALCAST_KEEP_WORKDIR").is_none() {
        std::fs::remove_dir_all(&work_dir).ok();
    }
    Run {
        code,
        elapsed,
        stats,
        work_dir,
        report,
    }
}

/// The farm's stats once `calls` calls have been counted and none is active
/// (the farm may finish a call a moment after SIPp has).
async fn settled_stats(farm: &Farm, calls: u32) -> FarmStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = farm.stats();
        let done = stats.total().completed + stats.total().failed;
        if (stats.active == 0 && done >= u64::from(calls)) || Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn number(behaviour: Behaviour, serial: u32) -> String {
    behaviour.number(serial)
}

/// Checks the counters of `behaviour` against (calls, answered, completed,
/// by us, by caller) and that no other behaviour was played.
fn assert_counts(run: &Run, behaviour: Behaviour, expected: [u64; 5]) {
    let s = run.stats.of(behaviour);
    let got = [
        s.calls,
        s.answered,
        s.completed,
        s.hangups_by_us,
        s.hangups_by_caller,
    ];
    assert_eq!(
        got, expected,
        "{behaviour}: [calls, answered, completed, by us, by caller]\n{}",
        run.report
    );
    assert_eq!(s.failed, 0, "{}", run.report);
    assert_eq!(run.stats.total().calls, s.calls, "{}", run.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_answers_486() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-486-busy.xml",
        &number(Behaviour::Busy, 1),
        3,
        &[],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::Busy, [3, 0, 3, 0, 0]);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_answers_404() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-404.xml",
        &number(Behaviour::Invalid, 2),
        2,
        &[],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::Invalid, [2, 0, 2, 0, 0]);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_numbers_get_the_unknown_behaviour() {
    let farm = start_farm().await;
    let run = run_sipp(&farm, "uac-expects-404.xml", "4711", 1, &[]).await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::Invalid, [1, 0, 1, 0, 0]);
    assert_eq!(run.stats.unknown_numbers, 1);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_answers_480() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-480-unavailable.xml",
        &number(Behaviour::Unavailable, 3),
        1,
        &[],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::Unavailable, [1, 0, 1, 0, 0]);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rings_then_declines() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-180-then-603.xml",
        &number(Behaviour::Rejected, 4),
        1,
        &[],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::Rejected, [1, 0, 1, 0, 0]);
    assert!(
        run.elapsed >= Duration::from_millis(300),
        "{:?}",
        run.elapsed
    );
    farm.shutdown().await;
}

/// A caller that takes any provisional response sees 404 after the
/// announcement's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_404_ends_in_404() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-404.xml",
        &number(Behaviour::EarlyMedia404, 5),
        1,
        &[],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::EarlyMedia404, [1, 0, 1, 0, 0]);
    assert!(run.elapsed >= Duration::from_secs(3), "{:?}", run.elapsed);
    farm.shutdown().await;
}

/// 183 with an SDP answer, the announcement as early media (SIPp echoes it
/// back, so the farm receives what SIPp received), then 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_404_sends_183_with_sdp_then_404() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-183-then-404.xml",
        &number(Behaviour::EarlyMedia404, 6),
        1,
        &["-rtp_echo"],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::EarlyMedia404, [1, 0, 1, 0, 0]);
    // The announcement lasts 3.86 s: about 190 packets before the 404.
    assert!(run.elapsed >= Duration::from_secs(3), "{:?}", run.elapsed);
    let rtp = run.stats.rtp;
    assert!((150..=250).contains(&rtp.sent), "{}", run.report);
    assert!(rtp.received >= rtp.sent / 2, "{}", run.report);
    assert_eq!(rtp.send_errors, 0, "{}", run.report);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_rings_until_the_caller_cancels() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-cancel-after-ring.xml",
        &number(Behaviour::NoAnswer, 7),
        2,
        &["-d", "1000"],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::NoAnswer, [2, 0, 2, 0, 2]);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_answers_and_stays_until_the_caller_hangs_up() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-200-human.xml",
        &number(Behaviour::Human, 8),
        4,
        &["-d", "2000", "-rtp_echo", "-r", "20"],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::Human, [4, 4, 4, 0, 4]);
    assert!(run.stats.peak_active >= 2, "{}", run.report);
    // Greeting then silence, 50 packets a second for about 2 s a call, and
    // SIPp's echo of them.
    let rtp = run.stats.rtp;
    assert!(rtp.sent >= 4 * 80, "{}", run.report);
    assert!(rtp.received >= rtp.sent / 2, "{}", run.report);
    assert_eq!(rtp.send_errors, 0, "{}", run.report);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answer_rings_long_then_answers() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-200-human.xml",
        &number(Behaviour::SlowAnswer, 9),
        1,
        &["-d", "500", "-rtp_echo"],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::SlowAnswer, [1, 1, 1, 0, 1]);
    assert!(
        run.elapsed >= Duration::from_millis(2000),
        "ring 1.5 s + hold 0.5 s, took {:?}",
        run.elapsed
    );
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presses_keys_answers_then_presses_them() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-200-human.xml",
        &number(Behaviour::PressesKeys, 10),
        2,
        &["-d", "1500", "-rtp_echo"],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::PressesKeys, [2, 2, 2, 0, 2]);
    assert_eq!(run.stats.of(Behaviour::PressesKeys).dtmf_sent, 4);
    // SIPp offered telephone-event 101, so the keys went out as RFC 4733
    // events; its RTP echo sent them back and the farm's receiver decoded
    // each key once (2 calls of "19").
    assert_eq!(run.stats.rtp.dtmf_received, 4, "{}", run.report);
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_halfway_sends_bye_after_the_answer() {
    let farm = start_farm().await;
    let run = run_sipp(
        &farm,
        "uac-expects-callee-bye.xml",
        &number(Behaviour::HangupHalfway, 11),
        2,
        &["-rtp_echo"],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::HangupHalfway, [2, 2, 2, 2, 0]);
    assert!(
        run.elapsed >= Duration::from_millis(1500) && run.elapsed < Duration::from_secs(6),
        "{:?}",
        run.elapsed
    );
    farm.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_greets_beeps_records_then_hangs_up() {
    let record_dir =
        std::env::temp_dir().join(format!("dialcast-farm-voicemail-{}", std::process::id()));
    let farm = Farm::start(FarmConfig {
        record_dir: Some(record_dir.clone()),
        ..config()
    })
    .await
    .expect("the farm starts");
    let run = run_sipp(
        &farm,
        "uac-expects-callee-bye.xml",
        &number(Behaviour::Voicemail, 12),
        1,
        &["-rtp_echo"],
    )
    .await;
    run.assert_sipp_passed();
    assert_counts(&run, Behaviour::Voicemail, [1, 1, 1, 1, 0]);
    // The shortest greeting with its beep lasts 3.8 s, then 1 s of "recording".
    assert!(
        run.elapsed >= Duration::from_millis(4800),
        "{:?}",
        run.elapsed
    );
    farm.shutdown().await;
    // What it "recorded" after the beep: about 1 s of stereo 8 kHz 16-bit
    // (32,000 bytes a second) after a 44-byte header.
    let wav = record_dir.join("voicemail-000001.wav");
    let size = std::fs::metadata(&wav).map(|m| m.len()).unwrap_or(0);
    assert!(
        (16_000..=64_000).contains(&size),
        "{} has {size} bytes",
        wav.display()
    );
    std::fs::remove_dir_all(&record_dir).ok();
}

/// Shutting down sends BYE on answered calls: SIPp waiting for the callee's
/// BYE passes, and the farm counts the call as cut short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hangs_up_calls_in_progress() {
    let farm = start_farm().await;
    let addr = farm.local_addr();
    let port = sipp::free_udp_port().expect("a free port");
    let media_port = sipp::free_udp_port().expect("a free port");
    let mut args = sipp::base_args(
        &sipp::scenario("uac-expects-callee-bye.xml"),
        port,
        media_port,
    );
    for a in [
        "-s",
        &number(Behaviour::Human, 13),
        "-m",
        "1",
        "-timeout",
        "45s",
    ] {
        args.push(a.to_string());
    }
    args.push(addr.to_string());
    let work_dir = std::env::temp_dir().join(format!(
        "dialcast-farm-sipp-{}-shutdown",
        std::process::id()
    ));
    let mut child = Sipp::spawn(&args, &work_dir).expect("sipp starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while farm.stats().of(Behaviour::Human).answered == 0 {
        assert!(Instant::now() < deadline, "the call was never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = farm.shutdown().await;
    let (code, _) = tokio::task::spawn_blocking(move || child.wait(SIPP_LIMIT))
        .await
        .expect("the waiting thread")
        .expect("sipp ends in time");
    assert_eq!(code, 0, "SIPp failed; work dir {}", work_dir.display());
    let human = stats.of(Behaviour::Human);
    assert_eq!(
        (human.answered, human.hangups_by_us, human.failed),
        (1, 1, 1)
    );
    assert_eq!(stats.active, 0);
    std::fs::remove_dir_all(&work_dir).ok();
}

/// Hundreds of calls at once: every one answered and ended by the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_humans() {
    let farm = start_farm().await;
    let calls = 400;
    let run = run_sipp(
        &farm,
        "uac-expects-200-human.xml",
        &number(Behaviour::Human, 14),
        calls,
        &["-d", "2000", "-r", "200", "-rtp_echo"],
    )
    .await;
    run.assert_sipp_passed();
    let c = u64::from(calls);
    assert_counts(&run, Behaviour::Human, [c, c, c, 0, c]);
    assert!(run.stats.peak_active >= 200, "{}", run.report);
    assert_eq!(run.stats.sip.inbound_overflow, 0, "{}", run.report);
    farm.shutdown().await;
}
