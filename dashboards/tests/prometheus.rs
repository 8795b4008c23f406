//! The dashboards and alert rules against a real Prometheus (feature
//! `prometheus`; run by `.ci/run` as its own step).
//!
//! - promtool checks the scrape config and the rules and runs the rules'
//!   unit tests;
//! - a real `dialcast serve` dials a campaign against the callee farm
//!   (SIP and RTP on loopback) while a real Prometheus on loopback scrapes
//!   it every second with the alert rules loaded; then every query of every
//!   panel of every dashboard (template variables substituted, once with
//!   "All" and once with the real script and trunk) must succeed and return
//!   data (except the metrics listed in [`MAY_BE_ABSENT`], reported), every
//!   rule must evaluate without error, and the Overview's 5-minute colour
//!   bars must agree with the engine's own 5-minute buckets
//!   (`dialcast stats --buckets --json`): equal totals, equal buckets except
//!   where an attempt ended within a scrape of an edge, and there running
//!   totals within that scrape (see `overview_bars_equal_engine_buckets`).
//!
//! Needs `prometheus` and `promtool` on PATH (Debian package `prometheus`)
//! and the `dialcast` binary: DIALCAST_BIN, or target/release/dialcast
//! (`cargo build --release -p dialcast-portal-api` first). DIALCAST_DASHBOARDS_KEEP=DIR
//! keeps the run, Prometheus's TSDB included, for tools/plot_panels.py.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dialcast_dashboards::grafana::{self, substitute};
use dialcast_dashboards::prometheus::{result, sample, Client};
use dialcast_dashboards::root;
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};
use serde_json::Value;

const SCRIPT: &str = "payment_reminder";
const TRUNK: &str = "farm";
/// Records, all with farm numbers: red bars come from the farm's 404s.
/// (A record whose number is not a phone number is reported
/// `invalid_number` by the import itself, in the engine's bucket of the
/// import; `dialcast import` is a separate, unscraped process, so such
/// reports are in no `/metrics` of `serve`.)
const RECORDS: usize = 40;
const MIX: &str = "human=10,voicemail=3,busy=2,no_answer=1,invalid=2,rejected=1,hangup_halfway=1";
/// RTP ports of this test (the engine's tests use 41000–53999).
const FARM_RTP: (u16, u16) = (54000, 54999);
const ENGINE_RTP: (u16, u16) = (55000, 55999);
/// The campaign's ring timeout and longest call, seconds.
const RING_TIMEOUT_S: i64 = 6;
const MAX_CALL_S: i64 = 60;
/// Longest from an attempt's end to a scrape that sees it: the store's
/// commit after the end, then the next 1 s scrape, with margin.
const END_TO_SCRAPE_S: i64 = 3;
/// Statistics buckets, seconds.
const BUCKET_S: i64 = 300;
/// What Grafana would put for its own variables with a 1 s scrape
/// interval and a short time range.
const GRAFANA_VARIABLES: [(&str, &str); 3] = [
    ("__rate_interval", "30s"),
    ("__interval", "15s"),
    ("__range", "15m"),
];
/// Metrics a panel query may find no series of in this run, and why; such
/// a query is listed, not failed. Each entry is a gap in the engine's
/// metrics, to be removed when the engine closes it.
const MAY_BE_ABSENT: [(&str, &str); 0] = [
    // Empty: every metric the panels use is registered at 0 when the
    // process or the campaign starts, so a panel without data is a failure.
    // A metric the engine cannot export yet goes here, with the reason.
];
/// The Overview's colours, as the `colour` label and the stats JSON name them.
const COLOURS: [&str; 4] = ["green", "yellow", "red", "other"];

// ---------------------------------------------------------------- promtool

#[test]
fn promtool_accepts_the_config_and_the_rules_pass_their_unit_tests() {
    let prometheus = root().join("prometheus");
    promtool(&["check", "config"], &[prometheus.join("prometheus.yml")]);
    promtool(
        &["check", "rules"],
        &[prometheus.join("rules/dialcast.rules.yml")],
    );
    let mut tests: Vec<PathBuf> = std::fs::read_dir(prometheus.join("tests"))
        .expect("prometheus/tests")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    tests.sort();
    assert!(tests.len() >= 2, "{tests:?}");
    promtool(&["test", "rules"], &tests);
}

fn promtool(args: &[&str], files: &[PathBuf]) {
    let out = Command::new("promtool")
        .args(args)
        .args(files)
        .output()
        .expect("promtool runs (Debian package prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    println!("promtool {}: {}", args.join(" "), text.trim());
}

// ------------------------------------------------- a live engine, scraped

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_returns_data_and_the_overview_bars_equal_the_engine_buckets() {
    // DIALCAST_DASHBOARDS_KEEP=DIR keeps the run (Prometheus's TSDB in
    // DIR/tsdb, for tools/plot_panels.py), else a temporary directory.
    let keep = std::env::var_os("DIALCAST_DASHBOARDS_KEEP").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dialcast-dashboards-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");

    let metrics_addr = free_addr();
    let prometheus = start_prometheus(&dir, metrics_addr);
    let client = prometheus.client;

    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = FARM_RTP.0;
    farm_config.media.port_max = FARM_RTP.1;
    let farm = Farm::start(farm_config).await.expect("farm");
    let config = write_config(&dir, farm.local_addr());
    let records = write_records(&dir);
    let imported = run_ok(
        dialcast()
            .arg("import")
            .arg(&records)
            .args(["--script", SCRIPT, "--json", "--config"])
            .arg(&config),
    );
    assert!(
        imported.contains(&format!("\"inserted\":{RECORDS}")),
        "{imported}"
    );
    run_ok(
        dialcast()
            .args(["campaign", "start", SCRIPT, "--config"])
            .arg(&config),
    );

    let started = unix_now();
    let serve_log = dir.join("serve.log");
    let _serve = Running::spawn(
        dialcast()
            .args(["serve", "--config"])
            .arg(&config)
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(["--portal-addr", "127.0.0.1:0"]),
        &serve_log,
        "dialcast serve",
    );

    // The campaign runs to its end while Prometheus scrapes every second.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status: Value = serde_json::from_str(&run_ok(
            dialcast()
                .args(["campaign", "status", SCRIPT, "--json", "--config"])
                .arg(&config),
        ))
        .expect("status JSON");
        if status["state"] == "finished" {
            println!("campaign finished: {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the campaign did not finish: {status}\n{}",
            tail(&serve_log)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A few more scrapes, so that the last counts are in Prometheus.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let at = unix_now();
    let up = client.query(r#"up{job="dialcast"}"#, Some(at)).expect("up");
    assert_eq!(
        result(&up)
            .first()
            .and_then(|s| sample(&s["value"]))
            .map(|(_, v)| v),
        Some(1.0),
        "Prometheus scrapes the engine: {up}\n{}",
        tail(&serve_log)
    );

    let mut failures = every_panel_returns_data(&client, at);
    failures.extend(every_rule_evaluates(&client));
    failures.extend(overview_bars_equal_engine_buckets(
        &client, &config, started, at,
    ));
    failures.extend(voicelog_writer_latency_was_measured(&client, at));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let _ = farm.shutdown().await;
    match keep {
        Some(dir) => println!("kept the run in {}", dir.display()),
        None => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Every call is recorded, so the voicelog writer's queue had blocks
/// waiting: its latency gauge must have shown a wait above zero (it is at
/// least the writer's sleep between passes) and below a second (a writer
/// that far behind would be a fault at this load).
fn voicelog_writer_latency_was_measured(client: &Client, at: f64) -> Vec<String> {
    let expr = r#"max_over_time(dialcast_queue_oldest_wait_seconds{queue="voicelog_writer"}[15m])"#;
    let answer = match client.query(expr, Some(at)) {
        Ok(answer) => answer,
        Err(e) => return vec![format!("{expr}: {e}")],
    };
    let longest = result(&answer)
        .first()
        .and_then(|s| sample(&s["value"]))
        .map(|(_, v)| v);
    match longest {
        Some(v) if v > 0.0 && v < 1.0 => Vec::new(),
        other => vec![format!(
            "the voicelog writer's longest wait should be in (0, 1) s, was {other:?}: {answer}"
        )],
    }
}

/// Every query of every panel, with the variables set to "All" and to the
/// real script and trunk, succeeds and returns at least one series.
fn every_panel_returns_data(client: &Client, at: f64) -> Vec<String> {
    let dashboards = grafana::load_all(&root().join("grafana")).expect("dashboards");
    let mut failures = Vec::new();
    let mut waiting = Vec::new();
    let mut queries = 0;
    for (script, trunk) in [(".*", ".*"), (SCRIPT, TRUNK)] {
        let mut values: BTreeMap<&str, &str> = GRAFANA_VARIABLES.into_iter().collect();
        values.insert("script", script);
        values.insert("trunk", trunk);
        values.insert("job", "dialcast");
        for query in dashboards.iter().flat_map(|d| d.queries()) {
            queries += 1;
            let expr = substitute(&query.expr, &values);
            let place = format!(
                "{} / {} ({}) with script={script}, trunk={trunk}",
                query.dashboard, query.panel_title, query.ref_id
            );
            match client.query(&expr, Some(at)) {
                Ok(data) if result(&data).is_empty() => {
                    if let Some((_, why)) = MAY_BE_ABSENT.iter().find(|(m, _)| expr.contains(m)) {
                        waiting.push(format!("{place} ({why}): {expr}"));
                    } else {
                        failures.push(format!("{place}: no data for {expr}"));
                    }
                }
                Ok(data) => {
                    let values: Vec<String> = result(&data)
                        .iter()
                        .filter_map(|s| sample(&s["value"]))
                        .map(|(_, v)| format!("{v:.3}"))
                        .collect();
                    println!("ok  {place}: {}", values.join(" "));
                }
                Err(e) => failures.push(format!("{place}: {e} for {expr}")),
            }
        }
    }
    if !waiting.is_empty() {
        println!(
            "{} panel queries found no series of a metric the engine does not export yet \
             or creates on first use:\n{}",
            waiting.len(),
            waiting.join("\n")
        );
    }
    if failures.is_empty() {
        println!(
            "{} of {queries} panel queries returned data, the other {} are listed above",
            queries - waiting.len(),
            waiting.len()
        );
        return Vec::new();
    }
    vec![format!(
        "{} of {queries} panel queries failed or returned nothing:\n{}",
        failures.len(),
        failures.join("\n")
    )]
}

/// Prometheus loaded the alert rules, and each evaluated without error on
/// the engine's real series.
fn every_rule_evaluates(client: &Client) -> Vec<String> {
    let (status, body) = client.get("/api/v1/rules").expect("rules");
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).expect("rules JSON");
    let rules: Vec<&Value> = reply["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    let mut failures = Vec::new();
    if rules.len() < 7 {
        failures.push(format!("only {} rules loaded: {body}", rules.len()));
    }
    for rule in rules {
        if rule["health"] != "ok" {
            failures.push(format!("rule {} does not evaluate: {rule}", rule["name"]));
        }
    }
    failures
}

/// The Overview's bars against `dialcast stats --buckets --json`.
///
/// Each bar at time t is `V(t) - V(t - 5m)`, V being the colour's counter
/// as last scraped at or before t: the attempts that *ended* in
/// [t - 5m, t). The engine's bucket [t - 5m, t) counts the attempts that
/// ended in it too (engine/src/store/sqlite/stats.rs); only one that ended
/// between the last scrape before an edge and the edge (or whose commit
/// came after the edge) is in the engine's earlier bucket and the later
/// bar. Hence:
/// - the panel must be exactly the scraped counter's differences;
/// - the totals must be equal;
/// - at each edge b the engine's running total (attempts ended before b)
///   must lie between V at b (a scrape at or before b saw only attempts
///   that had ended) and V at b + [`END_TO_SCRAPE_S`];
/// - a bucket must be equal to its bar when no attempt ended within those
///   few seconds around its edges.
fn overview_bars_equal_engine_buckets(
    client: &Client,
    config: &Path,
    started: f64,
    at: f64,
) -> Vec<String> {
    let overview = grafana::load(&root().join("grafana/overview.json")).expect("overview");
    let bars = &overview.queries()[0];
    let values = BTreeMap::from([("script", ".*")]);
    let expr = substitute(&bars.expr, &values);

    let first = (started as i64).div_euclid(BUCKET_S) * BUCKET_S - BUCKET_S;
    let end = ((at as i64) + BUCKET_S - 1).div_euclid(BUCKET_S) * BUCKET_S;
    let edges: Vec<i64> = (first..=end).step_by(BUCKET_S as usize).collect();

    // The engine's buckets.
    let rfc3339 = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .expect("time")
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let stats: Value = serde_json::from_str(&run_ok(
        dialcast()
            .args(["stats", SCRIPT, "--buckets", "--json", "--from"])
            .arg(rfc3339(first))
            .arg("--to")
            .arg(rfc3339(end))
            .arg("--config")
            .arg(config),
    ))
    .expect("stats JSON");
    let mut engine: BTreeMap<(i64, &str), f64> = BTreeMap::new();
    for bucket in stats["buckets"].as_array().expect("buckets") {
        let start = bucket["start_ms"].as_i64().expect("start_ms") / 1000;
        for colour in COLOURS {
            // The bucket's counters are flattened into it.
            let n = bucket[colour].as_f64().unwrap_or(0.0);
            engine.insert((start, colour), n);
        }
    }

    // The panel, as Grafana asks for it: one step per bucket end.
    let panel = client
        .query_range(
            &expr,
            (first + BUCKET_S) as f64,
            end as f64,
            BUCKET_S as f64,
        )
        .expect("the overview bars");
    let mut bar: BTreeMap<(i64, String), f64> = BTreeMap::new();
    for series in result(&panel) {
        let colour = series["metric"]["colour"].as_str().unwrap_or("").to_owned();
        for (t, v) in series["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(sample)
        {
            bar.insert((t as i64 - BUCKET_S, colour.clone()), v);
        }
    }

    // The scraped counters, sample by sample.
    let raw = client
        .query(
            r#"dialcast_call_attempts_total{script=~".*"}[15m]"#,
            Some(at),
        )
        .expect("raw samples");
    let mut scraped: BTreeMap<String, Vec<Vec<(f64, f64)>>> = BTreeMap::new();
    for series in result(&raw) {
        let colour = series["metric"]["colour"].as_str().unwrap_or("").to_owned();
        let samples = series["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(sample)
            .collect();
        scraped.entry(colour).or_default().push(samples);
    }
    // Last value at or before t (0 before the first sample), and first
    // value at or after t (the last value when there is none).
    let before = |colour: &str, t: f64| -> f64 {
        scraped
            .get(colour)
            .into_iter()
            .flatten()
            .map(|s| {
                s.iter()
                    .rev()
                    .find(|(ts, _)| *ts <= t)
                    .map_or(0.0, |(_, v)| *v)
            })
            .sum()
    };
    let after = |colour: &str, t: f64| -> f64 {
        scraped
            .get(colour)
            .into_iter()
            .flatten()
            .map(|s| {
                s.iter()
                    .find(|(ts, _)| *ts >= t)
                    .or(s.last())
                    .map_or(0.0, |(_, v)| *v)
            })
            .sum()
    };

    let mut table = vec![format!(
        "{:<22} {:<7} {:>10} {:>7}",
        "bucket (UTC)", "colour", "prometheus", "engine"
    )];
    let mut failures = Vec::new();
    let mut shown = 0.0;
    for colour in COLOURS {
        let mut engine_total = 0.0;
        for pair in edges.windows(2) {
            let (b, e) = (pair[0], pair[1]);
            let p = bar.get(&(b, colour.to_owned())).copied().unwrap_or(0.0);
            let n = engine.get(&(b, colour)).copied().unwrap_or(0.0);
            shown += p;
            table.push(format!("{:<22} {colour:<7} {p:>10} {n:>7}", rfc3339(b)));
            // The panel is exactly the counter's difference over the bucket.
            let difference = before(colour, e as f64) - before(colour, b as f64);
            if p != difference {
                failures.push(format!(
                    "{} {colour}: the panel shows {p}, the scraped counter moved by {difference}",
                    rfc3339(b)
                ));
            }
            // The engine's running total at each edge lies between the
            // scraped total at the edge and a few seconds after it (the
            // commit and the next scrape of attempts that ended just
            // before the edge).
            let window = |edge: i64| {
                (
                    before(colour, edge as f64),
                    after(colour, (edge + END_TO_SCRAPE_S) as f64),
                )
            };
            let quiet = |edge: i64| {
                let (low, high) = window(edge);
                low == high
            };
            for (edge, total) in [(b, engine_total), (e, engine_total + n)] {
                let (low, high) = window(edge);
                if total < low || total > high {
                    failures.push(format!(
                        "{colour}: at {} the engine counted {total}, Prometheus between {low} and {high}",
                        rfc3339(edge)
                    ));
                }
            }
            if quiet(b) && quiet(e) && p != n {
                failures.push(format!(
                    "{} {colour}: the panel shows {p}, the engine's bucket {n}",
                    rfc3339(b)
                ));
            }
            engine_total += n;
        }
        let scraped_total = before(colour, at + BUCKET_S as f64);
        if scraped_total != engine_total {
            failures.push(format!(
                "{colour}: Prometheus counted {scraped_total} in all, the engine {engine_total}"
            ));
        }
    }
    println!("{}", table.join("\n"));
    if shown < RECORDS as f64 {
        failures.push(format!(
            "the bars show {shown} attempts for {RECORDS} records"
        ));
    }
    if failures.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "the Overview bars do not match the engine's buckets:\n{}\n{}",
        failures.join("\n"),
        table.join("\n")
    )]
}

// ----------------------------------------------------------------- helpers

/// A child process killed when dropped.
struct Running {
    child: Child,
}

impl Running {
    fn spawn(command: &mut Command, log: &Path, what: &str) -> Running {
        let log = std::fs::File::create(log).expect("log file");
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        Running { child }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Prometheus {
    _process: Running,
    client: Client,
}

/// A Prometheus on a free loopback port with a fresh TSDB in `dir`,
/// scraping `target` every second, with the alert rules loaded.
fn start_prometheus(dir: &Path, target: SocketAddr) -> Prometheus {
    let addr = free_addr();
    let config = dir.join("prometheus.yml");
    let rules = root().join("prometheus/rules/dialcast.rules.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: dialcast\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: [\"{target}\"]\n",
            rules = rules.display()
        ),
    )
    .expect("prometheus.yml");
    let log = dir.join("prometheus.log");
    let process = Running::spawn(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn"),
        &log,
        "prometheus (Debian package prometheus)",
    );
    let client = Client::new(addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.ready() {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not get ready:\n{}",
            tail(&log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Prometheus {
        _process: process,
        client,
    }
}

fn dialcast_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DIALCAST_BIN") {
        return PathBuf::from(bin);
    }
    // <target>/<profile>/deps/prometheus-<hash>
    let exe = std::env::current_exe().expect("test binary");
    let target = exe.ancestors().nth(3).expect("target dir");
    let bin = target.join("release/dialcast");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release -p dialcast-portal-api` or set DIALCAST_BIN",
        bin.display()
    );
    bin
}

fn dialcast() -> Command {
    Command::new(dialcast_bin())
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("dialcast runs");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("free port");
    listener.local_addr().expect("addr")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn write_config(dir: &Path, farm: SocketAddr) -> PathBuf {
    let examples = root().join("../scripts/examples");
    let config = format!(
        r#"
[storage]
database = "{db}"
[sip]
bind = "127.0.0.1:0"
tcp = false
[media]
bind_ip = "127.0.0.1"
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
inactivity_timeout_s = 30
[organisation]
name = "Dashboards test"
default_country = "NL"
time_zone = "UTC"
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
[scripts]
dir = "{scripts}"
[results]
dir = "{results}"
[voicelogs]
dir = "{voicelogs}"
policy = "all"
[[trunks]]
name = "{TRUNK}"
uri = "sip:{farm}"
transport = "udp"
max_cps = 10
max_channels = 20
caller_id = "+31201234567"
[campaign]
trunk = "{TRUNK}"
max_attempts = 2
retry_delay_s = 1
ring_timeout_s = {RING_TIMEOUT_S}
max_call_s = {MAX_CALL_S}
amd = true
max_attempts_per_day = 0
[campaign.windows]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]
"#,
        db = dir.join("dialcast.db").display(),
        rtp_min = ENGINE_RTP.0,
        rtp_max = ENGINE_RTP.1,
        scripts = examples.display(),
        results = dir.join("results").display(),
        voicelogs = dir.join("voicelogs").display(),
    );
    let path = dir.join("dialcast.toml");
    std::fs::write(&path, config).expect("config");
    path
}

fn write_records(dir: &Path) -> PathBuf {
    let mix: Mix = MIX.parse().expect("mix");
    let mut csv = String::from(
        "IDENTIFICATION_RECORD_ID;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;INVOICE_DUE_DATE\n",
    );
    for (i, (number, _)) in numbers(&mix, RECORDS, 11).iter().enumerate() {
        csv.push_str(&format!("D{i:03};en;{number};{}.50;2026-12-31\n", 20 + i));
    }
    let path = dir.join("records.csv");
    std::fs::write(&path, csv).expect("records");
    path
}
