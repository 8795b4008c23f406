//! `dialcast demo` serves Prometheus metrics that `promtool check metrics`
//! accepts, while calls are in flight and after the campaign (`--linger`),
//! whose key series agree with the demo's JSON summary, and whose attempt
//! series count exactly what the campaign's 5-minute statistics buckets
//! count (the demo's unparseable numbers, reported `invalid_number` by the
//! import without a call, included).
//!
//! Needs promtool (Debian package `prometheus`). Without it the test is
//! skipped with a message, except under CI (`CI=true`), where it fails.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RECORDS: usize = 60;
/// Longest the demo may take (a debug build on a loaded 2-core machine).
const DEMO_LIMIT: Duration = Duration::from_secs(300);

/// The child is killed however the test ends (it lingers on purpose).
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn promtool_present() -> bool {
    Command::new("promtool")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// GET http://addr/metrics with a plain socket.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_string()
}

/// `promtool check metrics` on `text`: no complaint at all.
fn promtool_check(text: &str, when: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads the scrape");
    let out = child.wait_with_output().expect("promtool ends");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && complaints.trim().is_empty(),
        "promtool check metrics ({when}) says {}:\n{complaints}\n--- scrape ---\n{text}",
        out.status
    );
}

/// Sample values by series (`name{labels}`), comments left out.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Sum over every series of metric `name` whose labels contain `filter`.
fn sum(samples: &BTreeMap<String, f64>, name: &str, filter: &str) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let metric = series.split('{').next().unwrap_or("");
            metric == name && series.contains(filter)
        })
        .map(|(_, v)| v)
        .sum()
}

/// Today in Europe/Amsterdam (the demo's organisation calendar).
fn amsterdam_day() -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Amsterdam)
        .date_naive()
}

/// The demo campaign's statistics summed over all its buckets, read from
/// the demo's database (the demo lingers with it open; WAL allows readers).
fn bucket_totals(database: &std::path::Path) -> dialcast_engine::stats::Counters {
    use dialcast_engine::store::{SqliteStore, StatsStore as _, Store as _};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqliteStore::open_read_only(database)
            .await
            .expect("the demo's database");
        let campaign = store
            .campaign_by_name(dialcast_engine::demo::DEMO_SCRIPT)
            .await
            .expect("the demo campaign");
        store
            .stats_totals(campaign.id, 0, i64::MAX)
            .await
            .expect("bucket totals")
    })
}

#[test]
fn demo_metrics_pass_promtool_and_match_the_summary() {
    if !promtool_present() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("promtool is missing under CI (install the Debian package `prometheus`)");
        }
        eprintln!("SKIPPED: promtool not found (apt-get install prometheus); not under CI");
        return;
    }
    let day_at_start = amsterdam_day();
    let dir = tempfile::tempdir().expect("temporary directory");
    let child = Command::new(env!("CARGO_BIN_EXE_dialcast-engine"))
        .args(["demo", "--json", "--records", &RECORDS.to_string()])
        .arg("--dir")
        .arg(dir.path())
        .args(["--metrics-addr", "127.0.0.1:0", "--linger", "120"])
        .env("DIALCAST_LOG", "warn,dialcast_engine::metrics=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dialcast demo starts");
    let mut demo = Demo(child);

    // The endpoint's address from the log; the summary from stdout.
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let stderr = demo.0.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("metrics on http://").nth(1) {
                if let Some(addr) = rest.split('/').next().and_then(|a| a.parse().ok()) {
                    let _ = addr_tx.send(addr);
                }
            }
            eprintln!("demo: {line}");
        }
    });
    let (summary_tx, summary_rx) = mpsc::channel::<String>();
    let stdout = demo.0.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with('{') {
                let _ = summary_tx.send(line);
            }
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo logs where it serves metrics");

    // While calls are in flight.
    let started = Instant::now();
    let live = loop {
        assert!(
            started.elapsed() < DEMO_LIMIT,
            "no call in flight seen on /metrics"
        );
        if let Ok(Some(status)) = demo.0.try_wait() {
            panic!("the demo ended early: {status}");
        }
        let text = scrape(addr);
        let s = samples(&text);
        if sum(&s, "dialcast_active_calls", "") > 0.0
            && sum(&s, "dialcast_calls_started_total", "") > 0.0
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    promtool_check(&live, "while calls are in flight");
    let s = samples(&live);
    assert!(sum(&s, "dialcast_trunk_channels", "trunk=\"callee-farm\"") == 80.0);
    assert!(sum(&s, "dialcast_pacer_target_cps", "trunk=\"callee-farm\"") > 0.0);

    // After the campaign, lingering.
    let summary = summary_rx
        .recv_timeout(DEMO_LIMIT)
        .expect("the demo prints its JSON summary");
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("JSON summary");
    let url = format!("http://{addr}/metrics");
    assert_eq!(summary["metrics_url"], serde_json::Value::String(url));
    let after = scrape(addr);
    promtool_check(&after, "after the campaign");
    let s = samples(&after);
    let attempts = summary["attempts"].as_f64().expect("attempts");
    let success = summary["success"].as_f64().expect("success");
    assert!(attempts > 0.0, "{summary}");
    let started_total = sum(&s, "dialcast_calls_started_total", "script=\"");
    let ended_total = sum(&s, "dialcast_calls_ended_total", "script=\"");
    assert_eq!(started_total, attempts, "calls started vs. the summary");
    // The demo's import reports its unparseable numbers as undialled
    // `invalid_number` attempts; the buckets count them, so do the metrics.
    let invalid = summary["statuses"]["invalid_number"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        invalid >= 1.0,
        "the demo has unparseable numbers: {summary}"
    );
    let buckets = bucket_totals(&dir.path().join("dialcast-demo.db"));
    assert_eq!(buckets.dialled as f64, attempts, "dialled vs. the summary");
    assert!(buckets.attempts > buckets.dialled, "{buckets:?}");
    assert_eq!(
        ended_total, buckets.attempts as f64,
        "calls ended vs. the buckets"
    );
    assert_eq!(
        sum(&s, "dialcast_call_attempts_total", "colour=\""),
        buckets.attempts as f64,
        "colours add up to the attempts"
    );
    for (colour, n) in [
        ("green", buckets.green),
        ("yellow", buckets.yellow),
        ("red", buckets.red),
        ("other", buckets.other),
    ] {
        assert_eq!(
            sum(
                &s,
                "dialcast_call_attempts_total",
                &format!("colour=\"{colour}\"")
            ),
            n as f64,
            "colour {colour}: metric vs. bucket"
        );
    }
    assert!(buckets.red as f64 >= invalid, "{buckets:?}");
    for (status, n) in &buckets.statuses {
        assert_eq!(
            sum(
                &s,
                "dialcast_calls_ended_total",
                &format!("status=\"{status}\"")
            ),
            *n as f64,
            "status {status}: metric vs. bucket"
        );
    }
    assert_eq!(
        sum(&s, "dialcast_records_completed_total", ""),
        buckets.records_done as f64,
        "records completed vs. the buckets"
    );
    assert_eq!(sum(&s, "dialcast_success_points_total", ""), success);
    assert_eq!(sum(&s, "dialcast_active_calls", ""), 0.0);
    assert_eq!(
        sum(&s, "dialcast_calls_ended_total", "status=\"success\""),
        summary["statuses"]["success"].as_f64().unwrap_or(0.0),
        "a success is final: once per record"
    );
    let answered = sum(&s, "dialcast_calls_answered_total", "amd=\"");
    assert!(answered > 0.0 && answered <= attempts);
    assert_eq!(
        sum(&s, "dialcast_call_ring_seconds_count", ""),
        answered,
        "a ring time per answered call"
    );
    assert!(sum(&s, "dialcast_call_setup_seconds_count", "") > 0.0);
    assert!(sum(&s, "dialcast_trunk_responses_total", "code=\"2xx\"") > 0.0);
    assert_eq!(sum(&s, "dialcast_trunk_up", "trunk=\"callee-farm\""), 1.0);
    assert!(sum(&s, "dialcast_amd_decision_seconds_count", "") > 0.0);
    assert!(sum(&s, "dialcast_rtp_packets_sent_total", "") > 0.0);
    assert!(sum(&s, "dialcast_rtp_packets_received_total", "") > 0.0);
    assert!(sum(&s, "dialcast_rtp_jitter_seconds_count", "") > 0.0);
    assert!(
        sum(
            &s,
            "dialcast_store_operation_seconds_count",
            "operation=\"claim\""
        ) > 0.0
    );
    // Registered at 0 before anything happened to them.
    for series in [
        "dialcast_trunk_backoffs_total{trunk=\"callee-farm\",code=\"503\"}",
        "dialcast_trunk_backoffs_total{trunk=\"callee-farm\",code=\"480\"}",
        "dialcast_callbacks_total{outcome=\"unmatched\"}",
        "dialcast_imports_total{outcome=\"cancelled\"}",
        "dialcast_import_rows_total{result=\"duplicate\"}",
        "dialcast_errors_total{component=\"sip\"}",
        "dialcast_queue_depth{queue=\"voicelog_writer\"}",
        "dialcast_queue_depth{queue=\"sms_outbox\"}",
        "dialcast_queue_depth{queue=\"stats_feed\"}",
        "dialcast_records_today{service=\"sms\"}",
        "dialcast_records_today{service=\"email\"}",
    ] {
        assert!(s.contains_key(series), "no {series}");
    }
    for metric in [
        "dialcast_voicemail_left_total",
        "dialcast_forwards_total",
        "dialcast_calls_answered_total",
        "dialcast_success_points_total",
    ] {
        assert!(
            s.keys()
                .any(|k| k.starts_with(&format!("{metric}{{script=\""))),
            "no {metric} series"
        );
    }
    assert_eq!(
        s.keys()
            .filter(|k| k.starts_with("dialcast_call_attempts_total{"))
            .count(),
        4,
        "the four colours"
    );
    // The import ran just before the campaign, whose first check sampled
    // it: today in Europe/Amsterdam, the demo's calendar (unless the local
    // day changed during the run, when the last sample may have said 0).
    let today = sum(&s, "dialcast_records_today", "service=\"voice\"");
    if amsterdam_day() == day_at_start {
        assert_eq!(
            today,
            summary["records"].as_f64().expect("records"),
            "records today vs. {summary}"
        );
    }
    assert_eq!(
        sum(&s, "dialcast_import_rows_total", "result=\"accepted\""),
        summary["records"].as_f64().expect("records")
    );
    assert_eq!(
        sum(&s, "dialcast_imports_total", "outcome=\"confirmed\""),
        1.0
    );
    assert_eq!(
        sum(&s, "dialcast_result_files_written_total", "format=\"csv\""),
        1.0
    );
    assert_eq!(sum(&s, "dialcast_build_info", "version=\""), 1.0);
    assert!(sum(&s, "process_resident_memory_bytes", "") > 0.0);
    // Whole seconds (metrics-process): present, perhaps still 0.
    assert!(
        s.contains_key("process_cpu_seconds_total"),
        "no process_cpu_seconds_total"
    );
    // Every metric has its HELP text.
    for line in after.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).expect("a name");
        assert!(
            after.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
    }
}
