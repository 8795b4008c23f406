//! The portal benchmark: the dashboard and statistics endpoints of
//! `dialcast serve`'s portal API, with a store holding a campaign's history
//! of N attempts (issue 7: p99 under 50 ms with 10 million).
//!
//! Everything goes through public interfaces: `dialcast import` sets the
//! campaign up, the `fill_history` example of the portal crate writes the
//! history through the engine's store API (this crate cannot link the
//! engine: the engine's demo links our callee farm), `dialcast apikey
//! create` makes a manager key, `dialcast serve --portal-addr` serves the
//! API, and wrk (a load generator nobody here wrote; Debian package `wrk`)
//! measures each endpoint, closed loop, with its latency distribution.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

/// The target for every endpoint.
pub const TARGET_P99_MS: f64 = 50.0;
const SCRIPT: &str = "payment_reminder";
const CAMPAIGN: &str = "portal-bench";
/// The organisation `import::config_text` names.
const ORGANISATION: &str = "Dialcast loadtest";

/// What to run.
pub struct PortalBench {
    pub attempts: u64,
    pub days: u32,
    pub seconds: u32,
    pub connections: u32,
    pub dialcast: PathBuf,
    pub fill_history: PathBuf,
    pub scripts_dir: PathBuf,
    /// Reuse (or keep) the work directory: an existing filled store in it
    /// (dialcast.db with its history.json) is measured again without filling.
    pub keep_dir: Option<PathBuf>,
    pub progress: bool,
}

/// One endpoint under wrk.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointRun {
    pub path: String,
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Answers that were not 2xx or 3xx (must be 0).
    pub non_2xx: u64,
    pub met: bool,
}

/// The benchmark's report.
#[derive(Clone, Debug, Serialize)]
pub struct PortalReport {
    pub benchmark: &'static str,
    pub machine: crate::Machine,
    /// What `fill_history` printed (kept as history.json in the work
    /// directory, so a reused store reports it too).
    pub history: serde_json::Value,
    pub attempts_in_store: u64,
    pub database_mib: f64,
    pub connections: u32,
    pub seconds_per_endpoint: u32,
    pub endpoints: Vec<EndpointRun>,
    pub target_p99_ms: f64,
    pub met: bool,
    pub work_dir: Option<String>,
}

/// The endpoints measured, relative to the portal's address: the
/// dashboard, the two fixed days, and a custom range of the whole history
/// (`days` back from today, in the organisation's days).
pub fn endpoints(days: u32) -> Vec<String> {
    let today = today_utc();
    let from = today - i64::from(days);
    vec![
        "/api/v1/dashboard".to_string(),
        "/api/v1/statistics?period=yesterday".to_string(),
        "/api/v1/statistics?period=day_before".to_string(),
        format!(
            "/api/v1/statistics?period=custom&from={}&to={}",
            crate::campaign::records::iso_date(from),
            crate::campaign::records::iso_date(today + 1)
        ),
    ]
}

/// Today as days since 1970-01-01 (UTC; the benchmark's organisation is UTC).
fn today_utc() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

pub fn run(bench: &PortalBench) -> anyhow::Result<PortalReport> {
    let dir = bench.keep_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dialcast-portal-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join("dialcast.toml");
    let database = dir.join("dialcast.db");
    let history_file = dir.join("history.json");
    let history = if database.exists() {
        if bench.progress {
            eprintln!("reusing the store in {}", dir.display());
        }
        let printed = std::fs::read_to_string(&history_file)
            .with_context(|| format!("{}: what fill_history printed", history_file.display()))?;
        serde_json::from_str::<serde_json::Value>(printed.trim()).context("history.json")?
    } else {
        std::fs::write(
            &config,
            crate::import::config_text(&dir, &bench.scripts_dir),
        )?;
        let file = dir.join("one.csv");
        crate::import::write_file(&file, 1, 1)?;
        run_ok(
            Command::new(&bench.dialcast)
                .arg("import")
                .arg(&file)
                .args(["--script", SCRIPT, "--campaign", CAMPAIGN, "--config"])
                .arg(&config),
            "dialcast import",
        )?;
        if bench.progress {
            eprintln!(
                "filling {} attempts over {} days",
                bench.attempts, bench.days
            );
        }
        let started = Instant::now();
        let printed = run_ok(
            Command::new(&bench.fill_history)
                .arg("--db")
                .arg(&database)
                .args(["--campaign", CAMPAIGN])
                .args(["--attempts", &bench.attempts.to_string()])
                .args(["--days", &bench.days.to_string()])
                .stderr(if bench.progress {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                }),
            "fill_history",
        )?;
        if bench.progress {
            eprintln!("filled in {:.0} s", started.elapsed().as_secs_f64());
        }
        std::fs::write(&history_file, &printed)?;
        serde_json::from_str::<serde_json::Value>(printed.trim()).context("fill_history's JSON")?
    };
    let attempts_in_store = history["attempts"].as_u64().unwrap_or(0);
    let key = create_key(&bench.dialcast, &config)?;
    let portal = free_addr()?;
    let _serve = Serve::start(&bench.dialcast, &config, portal, &dir)?;
    let mut runs = Vec::new();
    for path in endpoints(bench.days) {
        if bench.progress {
            eprintln!("wrk {path}");
        }
        runs.push(wrk(portal, &path, &key, bench)?);
    }
    let met = runs.iter().all(|r| r.met);
    let keep = bench.keep_dir.is_some();
    let database_mib = std::fs::metadata(&database).map_or(0.0, |m| m.len() as f64 / 1048576.0);
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(PortalReport {
        benchmark: "portal",
        machine: crate::Machine::describe(),
        history,
        attempts_in_store,
        database_mib,
        connections: bench.connections,
        seconds_per_endpoint: bench.seconds,
        endpoints: runs,
        target_p99_ms: TARGET_P99_MS,
        met,
        work_dir: keep.then(|| dir.display().to_string()),
    })
}

/// A fresh manager key of the organisation, as `dialcast apikey create` prints it.
fn create_key(dialcast: &Path, config: &Path) -> anyhow::Result<String> {
    let printed = run_ok(
        Command::new(dialcast)
            .args([
                "apikey",
                "create",
                "--org",
                ORGANISATION,
                "--role",
                "manager",
            ])
            .arg("--config")
            .arg(config),
        "dialcast apikey create",
    )?;
    printed
        .split_whitespace()
        .find(|word| word.starts_with("dc_"))
        .map(str::to_string)
        .context("dialcast apikey create printed no key")
}

/// `dialcast serve` with the portal on `portal`, stopped when dropped.
struct Serve(Child);

impl Serve {
    fn start(
        dialcast: &Path,
        config: &Path,
        portal: SocketAddr,
        dir: &Path,
    ) -> anyhow::Result<Serve> {
        let log = std::fs::File::create(dir.join("serve.log"))?;
        let child = Command::new(dialcast)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--portal-addr", &portal.to_string()])
            .args(["--metrics-addr", &free_addr()?.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start dialcast serve")?;
        let serve = Serve(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&portal, Duration::from_millis(200)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the portal did not listen on {portal} (see {})",
                dir.join("serve.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(serve)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wrk(
    portal: SocketAddr,
    path: &str,
    key: &str,
    bench: &PortalBench,
) -> anyhow::Result<EndpointRun> {
    let url = format!("http://{portal}{path}");
    let printed = run_ok(
        Command::new("wrk")
            .args(["-t", "2", "-c", &bench.connections.to_string()])
            .args(["-d", &format!("{}s", bench.seconds)])
            .arg("--latency")
            .args(["-H", &format!("X-AUTH-TOKEN: {key}")])
            .arg(&url),
        "wrk (apt-get install -y wrk)",
    )?;
    let mut run =
        parse_wrk(&printed).with_context(|| format!("wrk's output for {url}:\n{printed}"))?;
    run.path = path.to_string();
    Ok(run)
}

/// Reads wrk's `--latency` report.
pub fn parse_wrk(text: &str) -> anyhow::Result<EndpointRun> {
    let percentile = |p: &str| -> anyhow::Result<f64> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.split_whitespace().next() == Some(p))
            .with_context(|| format!("no {p} line"))?;
        let value = line.split_whitespace().nth(1).context("no value")?;
        duration_ms(value)
    };
    let p50_ms = percentile("50%")?;
    let p90_ms = percentile("90%")?;
    let p99_ms = percentile("99%")?;
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no request count")?;
    let requests_per_s = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Requests/sec")?;
    let non_2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or(Ok(0), |v| v.trim().parse())
        .context("bad non-2xx count")?;
    Ok(EndpointRun {
        path: String::new(),
        requests,
        requests_per_s,
        p50_ms,
        p90_ms,
        p99_ms,
        non_2xx,
        met: p99_ms < TARGET_P99_MS && non_2xx == 0 && requests > 0,
    })
}

/// wrk's `635.00us`, `1.02ms`, `1.20s` in milliseconds.
fn duration_ms(value: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(v) = value.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = value.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = value.strip_suffix("m") {
        (v, 60_000.0)
    } else if let Some(v) = value.strip_suffix('s') {
        (v, 1000.0)
    } else {
        anyhow::bail!("no unit in {value:?}")
    };
    let n: f64 = number
        .parse()
        .with_context(|| format!("not a number: {value:?}"))?;
    Ok(n * scale)
}

fn run_ok(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 10s test @ http://127.0.0.1:8080/api/v1/dashboard
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.31us  300.12us  12.40ms   91.00%
    Req/Sec     4.91k   210.33     5.40k    70.50%
  Latency Distribution
     50%  760.00us
     75%    0.90ms
     90%    1.10ms
     99%    2.31ms
  97812 requests in 10.00s, 50.12MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   9779.12
Transfer/sec:      5.01MB
";

    #[test]
    fn wrk_latency_report_is_read_in_milliseconds() {
        let run = parse_wrk(WRK).expect("parsed");
        assert!((run.p50_ms - 0.76).abs() < 1e-9);
        assert!((run.p90_ms - 1.10).abs() < 1e-9);
        assert!((run.p99_ms - 2.31).abs() < 1e-9);
        assert_eq!(run.requests, 97_812);
        assert_eq!(run.non_2xx, 3);
        assert!(!run.met, "non-2xx answers fail the run");
        assert!((run.requests_per_s - 9779.12).abs() < 1e-9);
    }

    #[test]
    fn seconds_and_minutes_are_read_too() {
        assert_eq!(duration_ms("1.50s").expect("s"), 1500.0);
        assert_eq!(duration_ms("2.00m").expect("m"), 120_000.0);
        assert!(duration_ms("12").is_err());
    }
}
