//! The engine side of the campaign benchmark, driven only through the
//! `dialcast` binary's public commands: it writes a `dialcast.toml` and an
//! import file into the work directory, runs `dialcast import`, starts
//! `dialcast serve` as a child, `dialcast campaign start`, polls
//! `dialcast campaign status --json` every [`STATUS_EVERY`] until the
//! campaign is `finished`, waits for the result file the service writes, and
//! stops the service with SIGTERM.
//!
//! CPU is the serve process's user + system time from `/proc`, from just
//! before `campaign start` to just after the result file is written: the
//! service's start-up (loading the audio catalogue and the clips) is left
//! out, as the bare dialer's is; the campaign's own work (claims, outcomes and
//! events in SQLite, pacing, the script, the result file) is in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Deserialize;

use super::child::{self, Proc};
use super::records::{self, BenchRecord};
use super::result_file::{self, CallRows};
use super::watch::{FarmWatch, FARM_SAMPLE};
use super::SideReport;
use crate::farm::Farm;
use crate::procstat;
use dialcast_media::RtpSocketMode;

/// How often `dialcast campaign status` is run during the campaign (each run
/// is a process of its own that reads the database, so not too often).
pub const STATUS_EVERY: Duration = Duration::from_secs(2);
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// A campaign whose done count has not moved for this long has stalled.
const STALL_LIMIT: Duration = Duration::from_secs(180);
/// How long to wait for the service to say it serves, and for its result file.
const SERVE_READY: Duration = Duration::from_secs(60);
const RESULT_FILE_WAIT: Duration = Duration::from_secs(120);
/// The name of the benchmark's campaign.
pub const CAMPAIGN: &str = "loadtest";

/// The `dialcast` binary next to this one (`target/release/dialcast` beside
/// `target/release/dialcast-loadtest`), unless given.
pub fn find_dialcast(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()
            .context("cannot tell where dialcast-loadtest is")?
            .with_file_name("dialcast"),
    };
    anyhow::ensure!(
        path.is_file(),
        "the dialcast binary is not at {}: build it into the same target directory with \
         `cargo build --release -p dialcast-portal-api`, or pass --dialcast PATH",
        path.display()
    );
    Ok(path)
}

/// Everything the service's configuration file holds.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub database: PathBuf,
    pub results_dir: PathBuf,
    pub scripts_dir: PathBuf,
    /// `dialcast serve` only dials out: any free port does.
    pub sip_port: u16,
    pub rtp_ports: (u16, u16),
    pub farm: std::net::SocketAddr,
    pub cps: u32,
    pub channels: u32,
    pub ring_timeout_s: u64,
    pub amd: bool,
    /// `[voicelogs] policy`; recordings go to `voicelogs/` beside the database.
    pub voicelogs: String,
    /// `[media] threads`.
    pub media_threads: usize,
    /// `[media] rtp_socket`.
    pub rtp_socket: RtpSocketMode,
    /// `[media] udp_offload`.
    pub udp_offload: bool,
}

/// The configuration's name of a socket mode.
pub fn rtp_socket_name(mode: RtpSocketMode) -> &'static str {
    match mode {
        RtpSocketMode::PerCall => "per_call",
        RtpSocketMode::PerThread => "per_thread",
    }
}

/// A TOML string (basic string; JSON's escapes are TOML's).
fn toml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The `dialcast.toml` text (every key of `engine/dialcast.example.toml`).
pub fn config_text(c: &ServiceConfig) -> String {
    format!(
        r#"# Written by dialcast-loadtest campaign.
[storage]
database = {database}

[sip]
bind = "127.0.0.1:{sip_port}"
tcp = false

[media]
bind_ip = "127.0.0.1"
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
inactivity_timeout_s = 30
threads = {media_threads}
rtp_socket = "{rtp_socket}"
{udp_offload}
[organisation]
name = "Dialcast loadtest"
default_country = "NL"
time_zone = "UTC"
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

[audio]
roots = []

[scripts]
dir = {scripts}

[results]
dir = {results}

[[trunks]]
name = "farm"
uri = "sip:{farm}"
transport = "udp"
max_cps = {cps}
max_channels = {channels}
caller_id = "{caller_id}"

[campaign]
trunk = "farm"
max_attempts = 1
retry_delay_s = 60
ring_timeout_s = {ring}
max_call_s = 300
amd = {amd}
max_attempts_per_day = 0

# A benchmark runs at any hour.
[campaign.windows]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]

[voicelogs]
policy = "{voicelogs}"
"#,
        database = toml_string(&c.database.display().to_string()),
        sip_port = c.sip_port,
        rtp_min = c.rtp_ports.0,
        rtp_max = c.rtp_ports.1,
        scripts = toml_string(&c.scripts_dir.display().to_string()),
        results = toml_string(&c.results_dir.display().to_string()),
        farm = c.farm,
        cps = c.cps,
        channels = c.channels,
        caller_id = super::bare::CALLER_ID,
        ring = c.ring_timeout_s,
        amd = c.amd,
        voicelogs = c.voicelogs,
        media_threads = c.media_threads,
        rtp_socket = rtp_socket_name(c.rtp_socket),
        // Written only when off (the default is on), so that a `dialcast`
        // built before the key existed still reads the configuration.
        udp_offload = if c.udp_offload {
            ""
        } else {
            "udp_offload = false\n"
        },
    )
}

/// `dialcast campaign status --json`, the fields the benchmark reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Status {
    pub state: String,
    pub records: u64,
    #[serde(default)]
    pub dialing: u64,
    pub done: u64,
    pub attempts: u64,
    #[serde(default)]
    pub statuses: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub success: u64,
}

/// `dialcast import --json`, the fields the benchmark reads.
#[derive(Clone, Debug, Deserialize)]
struct ImportSummary {
    inserted: u64,
    #[serde(default)]
    without_valid_number: u64,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// Settings of the engine side.
pub struct EngineSide<'a> {
    pub dialcast: &'a Path,
    pub dir: &'a Path,
    pub scripts_dir: &'a Path,
    /// The script the records name (one in `scripts_dir`).
    pub script: &'a str,
    pub cps: u32,
    pub channels: u32,
    pub ring_timeout_s: u64,
    pub amd: bool,
    pub rtp_ports: (u16, u16),
    pub seed: u64,
    pub progress: bool,
    /// The voicelog policy (`none`: nothing recorded, nothing measured).
    pub voicelogs: &'a str,
    /// The service's RTP scheduler threads (`[media] threads`).
    pub media_threads: usize,
    /// The service's `[media] rtp_socket`.
    pub rtp_socket: RtpSocketMode,
    /// The service's `[media] udp_offload`.
    pub udp_offload: bool,
}

/// What the engine side measured, and each record's first call.
pub struct EngineOutcome {
    pub report: SideReport,
    pub rows: CallRows,
    pub status: Status,
    pub voicelogs: Option<super::voicelogs::VoicelogAccuracy>,
}

impl EngineSide<'_> {
    fn config_path(&self) -> PathBuf {
        self.dir.join("dialcast.toml")
    }

    /// Runs `dialcast ARGS… --config FILE`; returns its standard output.
    fn dialcast(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(self.dialcast)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.dialcast.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "`dialcast {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn status(&self) -> anyhow::Result<Status> {
        let text = self.dialcast(&["campaign", "status", CAMPAIGN, "--json"])?;
        serde_json::from_str(text.trim()).with_context(|| {
            format!("unexpected `dialcast campaign status --json` output {text:?}")
        })
    }

    /// Writes the configuration and the import file, and imports it.
    fn prepare(&self, farm: &Farm, records: &[BenchRecord]) -> anyhow::Result<()> {
        let config = ServiceConfig {
            database: self.dir.join("dialcast.db"),
            results_dir: self.dir.join("results"),
            scripts_dir: self.scripts_dir.to_path_buf(),
            sip_port: crate::sipp::free_udp_port()?,
            rtp_ports: self.rtp_ports,
            farm: farm.local_addr(),
            cps: self.cps,
            channels: self.channels,
            ring_timeout_s: self.ring_timeout_s,
            amd: self.amd,
            voicelogs: self.voicelogs.to_string(),
            media_threads: self.media_threads,
            rtp_socket: self.rtp_socket,
            udp_offload: self.udp_offload,
        };
        std::fs::write(self.config_path(), config_text(&config))
            .with_context(|| format!("cannot write {}", self.config_path().display()))?;
        let import_path = self.dir.join("records.csv");
        records::write_import_file(&import_path, records, self.seed, self.script)?;
        let import = import_path.display().to_string();
        let text = self.dialcast(&[
            "import",
            &import,
            "--script",
            self.script,
            "--campaign",
            CAMPAIGN,
            "--json",
        ])?;
        let summary: ImportSummary = serde_json::from_str(text.trim())
            .with_context(|| format!("unexpected `dialcast import --json` output {text:?}"))?;
        anyhow::ensure!(
            summary.inserted == records.len() as u64 && summary.without_valid_number == 0,
            "dialcast import stored {} of {} records ({} without a valid number; first errors: {:?})",
            summary.inserted,
            records.len(),
            summary.without_valid_number,
            summary.errors.iter().take(3).collect::<Vec<_>>()
        );
        Ok(())
    }

    fn start_serve(&self) -> anyhow::Result<Proc> {
        let log = self.dir.join("serve.log");
        let mut command = Command::new(self.dialcast);
        command
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            // Metrics and the portal API on, as in production, on any free
            // port.
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--portal-addr", "127.0.0.1:0"])
            .current_dir(self.dir)
            // The service's default logging, whatever this process was given.
            .env_remove("DIALCAST_LOG")
            .stdin(Stdio::null())
            .stdout(child::log_file(&self.dir.join("serve.out"))?)
            .stderr(child::log_file(&log)?);
        let mut serve = Proc::spawn("dialcast serve", &mut command, &log)?;
        wait_until_serving(&mut serve)?;
        Ok(serve)
    }

    /// Runs the campaign against `farm` and measures the service.
    pub fn run(&self, farm: &Farm, records: &[BenchRecord]) -> anyhow::Result<EngineOutcome> {
        self.prepare(farm, records)?;
        let mut serve = self.start_serve()?;
        let load_before = child::load_average();
        let cpu_before = serve.sample()?;
        let threads_before = serve.threads();
        let window = procstat::Window::start();
        self.dialcast(&["campaign", "start", CAMPAIGN])?;
        let started = Instant::now();
        let mut watch = FarmWatch::default();
        self.wait_until_finished(&mut serve, farm, &mut watch, started)?;
        let result_path =
            wait_for_result_file(&self.dir.join("results"), &mut serve, farm, &mut watch)?;
        let cpu_after = serve.sample()?;
        let threads_after = serve.threads();
        let own = window.finish();
        let load_after = child::load_average();
        let run_s = started.elapsed().as_secs_f64();
        let store_operations = store_operations(&serve.log)?;
        let stopped = serve.terminate(Duration::from_secs(60))?;
        anyhow::ensure!(
            stopped.success(),
            "dialcast serve exited with {stopped} on SIGTERM; see {}",
            serve.log.display()
        );
        let status = self.status()?;
        let text = std::fs::read_to_string(&result_path)
            .with_context(|| format!("cannot read {}", result_path.display()))?;
        let rows = result_file::parse(&text)?;
        let cpu_s = (cpu_after.cpu - cpu_before.cpu).as_secs_f64();
        let report = summarise(records, &rows, &status, cpu_s, cpu_after.rss_peak_mb);
        let voicelogs = if self.voicelogs == "none" {
            None
        } else {
            let listed =
                super::voicelogs::parse_list(&self.dialcast(&["voicelogs", "list", "--json"])?)?;
            let dir = self.dir.join("voicelogs");
            let measured: Vec<_> = listed
                .iter()
                .map(|log| super::voicelogs::measure_file(&dir, log))
                .collect();
            Some(super::voicelogs::summarise(self.voicelogs, &measured))
        };
        Ok(EngineOutcome {
            report: SideReport {
                achieved_cps: watch.achieved_cps(),
                wall_s: watch.wall_s(Instant::now()),
                run_s,
                cpu_s_by_thread: procstat::threads_delta(&threads_before, &threads_after),
                load_before,
                load_after,
                farm_cpu_s: own.own_cpu_s,
                farm_cpu_s_by_thread: own.own_cpu_s_by_thread,
                machine_steal_s: own.machine_steal_s,
                machine_busy_ratio: own.machine_busy_ratio,
                udp_rcvbuf_errors: own.udp_rcvbuf_errors,
                store_operations,
                ..report
            },
            rows,
            status,
            voicelogs,
        })
    }

    /// Polls the campaign until it is `finished` and the farm has no call
    /// left, sampling the farm every [`FARM_SAMPLE`].
    fn wait_until_finished(
        &self,
        serve: &mut Proc,
        farm: &Farm,
        watch: &mut FarmWatch,
        started: Instant,
    ) -> anyhow::Result<()> {
        let mut next_status = started;
        let mut progress = (u64::MAX, started);
        let mut next_progress = started;
        loop {
            let now = Instant::now();
            let stats = farm.stats();
            watch.sample(&stats, now);
            if now >= next_status {
                serve.sample()?;
                let status = self.status()?;
                if status.state == "finished" && stats.active == 0 {
                    return Ok(());
                }
                if status.done != progress.0 {
                    progress = (status.done, now);
                } else if now - progress.1 > STALL_LIMIT {
                    anyhow::bail!(
                        "the campaign stalled: {} of {} records done, {} dialing, state {}, for {:?}; see {}",
                        status.done,
                        status.records,
                        status.dialing,
                        status.state,
                        STALL_LIMIT,
                        serve.log.display()
                    );
                }
                if self.progress && now >= next_progress {
                    next_progress = now + PROGRESS_EVERY;
                    eprintln!(
                        "[{:>6.1}s] campaign: {}/{} records done, {} dialing, {} live at the farm",
                        (now - started).as_secs_f64(),
                        status.done,
                        status.records,
                        status.dialing,
                        stats.active
                    );
                }
                next_status = Instant::now() + STATUS_EVERY;
            }
            std::thread::sleep(FARM_SAMPLE);
        }
    }
}

/// Waits for `dialcast serve` to log that it serves (it runs with its
/// default log filter, which shows that line).
/// The store's operation times, scraped from the service's metrics
/// endpoint (its address is in the log: `metrics on http://ADDR/metrics`).
fn store_operations(
    log: &Path,
) -> anyhow::Result<BTreeMap<String, crate::scrape::HistogramSummary>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("cannot read {}", log.display()))?;
    let addr = text
        .lines()
        .find_map(|line| line.split_once("metrics on http://"))
        .and_then(|(_, rest)| rest.split('/').next())
        .with_context(|| format!("no `metrics on http://` line in {}", log.display()))?;
    let addr = addr
        .parse()
        .with_context(|| format!("bad metrics address {addr:?} in {}", log.display()))?;
    let body = crate::scrape::fetch(addr)?;
    Ok(crate::scrape::histograms_by(
        &body,
        "dialcast_store_operation_seconds",
        "operation",
    ))
}

fn wait_until_serving(serve: &mut Proc) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        serve.sample()?;
        let log = std::fs::read_to_string(&serve.log).unwrap_or_default();
        if log.contains("dialcast serving") {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < SERVE_READY,
            "dialcast serve did not say `dialcast serving` within {SERVE_READY:?}; see {}",
            serve.log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_result_file(
    dir: &Path,
    serve: &mut Proc,
    farm: &Farm,
    watch: &mut FarmWatch,
) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    loop {
        watch.sample(&farm.stats(), Instant::now());
        if let Some(path) = result_file::find(dir) {
            return Ok(path);
        }
        serve.sample()?;
        anyhow::ensure!(
            started.elapsed() < RESULT_FILE_WAIT,
            "the campaign finished but dialcast serve wrote no result file into {} within {:?}; see {}",
            dir.display(),
            RESULT_FILE_WAIT,
            serve.log.display()
        );
        std::thread::sleep(FARM_SAMPLE);
    }
}

/// The engine side's figures from the result file and the final status.
fn summarise(
    records: &[BenchRecord],
    rows: &CallRows,
    status: &Status,
    cpu_s: f64,
    rss_mb_peak: f64,
) -> SideReport {
    let completed = records
        .iter()
        .filter(|r| {
            rows.get(&r.record_id)
                .is_some_and(|row| row.status == r.behaviour.expected_status())
        })
        .count() as u64;
    let answered: Vec<f64> = rows
        .values()
        .filter(|r| r.talk_s > 0.0)
        .map(|r| r.talk_s)
        .collect();
    let calls = status.attempts;
    SideReport {
        calls,
        completed,
        failed: (records.len() as u64).saturating_sub(completed),
        answered: answered.len() as u64,
        cpu_s,
        cpu_s_per_call: cpu_s / calls.max(1) as f64,
        rss_mb_peak,
        mean_talk_s: answered.iter().sum::<f64>() / answered.len().max(1) as f64,
        statuses: status.statuses.clone(),
        ..SideReport::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_names_the_farm_and_the_limits() {
        let text = config_text(&ServiceConfig {
            database: PathBuf::from("/tmp/x \"y\"/dialcast.db"),
            results_dir: PathBuf::from("/tmp/x/results"),
            scripts_dir: PathBuf::from("/src/scripts/examples"),
            sip_port: 5077,
            rtp_ports: (40000, 49999),
            farm: "127.0.0.1:5090".parse().expect("addr"),
            cps: 150,
            channels: 1200,
            ring_timeout_s: 60,
            amd: false,
            voicelogs: "none".to_string(),
            media_threads: 2,
            rtp_socket: RtpSocketMode::PerThread,
            udp_offload: false,
        });
        assert!(
            text.contains(r#"database = "/tmp/x \"y\"/dialcast.db""#),
            "{text}"
        );
        assert!(text.contains("uri = \"sip:127.0.0.1:5090\""));
        assert!(text.contains("max_cps = 150\nmax_channels = 1200"));
        assert!(text.contains("max_attempts = 1"));
        assert!(text.contains("threads = 2"), "{text}");
        assert!(text.contains("rtp_socket = \"per_thread\""), "{text}");
        assert!(text.contains("udp_offload = false"), "{text}");
        assert!(text.contains("amd = false"));
        assert!(text.contains("rtp_port_min = 40000\nrtp_port_max = 49999"));
    }

    #[test]
    fn reads_the_status_json() {
        let text = r#"{"name":"loadtest","state":"finished","records":3,"pending":0,"dialing":0,"done":3,"attempts":3,"statuses":{"success":3},"success":3}"#;
        let s: Status = serde_json::from_str(text).expect("parses");
        assert_eq!(s.state, "finished");
        assert_eq!(s.statuses["success"], 3);
    }
}
