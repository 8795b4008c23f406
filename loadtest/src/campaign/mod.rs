//! The campaign benchmark: a whole campaign of N records dialled by
//! `dialcast serve` against the callee farm, and in the same run the bare
//! dialer placing the same calls, to measure what the campaign engine adds to
//! the cost of a call (the target: under 25 % more CPU per call).
//!
//! * [`records`] — the generated records and import file (pure).
//! * [`engine_side`] — the engine, driven through the `dialcast` binary only.
//! * [`bare`] — the baseline, our SIP and media crates in a child process.
//! * [`watch`] — the farm's view of a run: rate and wall time, same for both.
//! * [`result_file`] — reading the engine's result file.
//! * [`child`] — child processes, SIGTERM, `/proc` samples, load average.
//! * [`voicelogs`] — with `--voicelogs`, each recording's length against its
//!   call's talk time.
//!
//! # Fairness
//!
//! * **Same calls.** The bare dialer dials the campaign's numbers in import
//!   order, so the farm plays the same callees, with the same ring timeout,
//!   the same `cps` (evenly spaced starts, as the engine's pacing) and the
//!   same channel limit.
//! * **Same talk time, same RTP.** Each bare call is held for exactly the
//!   talk time the engine's result file gives for the same record, sending a
//!   tone (one 20 ms frame every 20 ms, like the script's clips and the
//!   silence between them); the farm sends its greeting and then silence to
//!   both. The farm's RTP counters show that both sides sent the same number
//!   of packets.
//! * **Same process layout.** Each side is a process of its own, measured
//!   from outside through `/proc` the same way; the farm runs in the
//!   benchmark's process and is counted for neither (it is reported apart,
//!   `farm_cpu_s`, with the machine's busy share and steal over the same
//!   window: on one machine the farm takes from the same cores). The bare dialer uses
//!   tokio's multi-thread runtime like the `dialcast` binary (`--bare-runtime
//!   current` gives the `dialer` benchmark's one-thread set-up instead), the
//!   same media configuration, UDP only.
//! * **Same window.** CPU is counted from just before the first call can
//!   start (`campaign start`; the bare dialer's `go`) to the end: start-up
//!   (loading clips, binding sockets) is outside on both sides.
//! * **Same yardsticks.** `achieved_cps`, `wall_s` and `peak_channels` are the
//!   farm's: INVITEs per second between the first and the last, first INVITE
//!   to last call ended, most calls at once (ringing or answered).
//! * **Same machine.** Both sides run one after the other in one invocation,
//!   each against a fresh farm; the load average before and after each side
//!   is in the report.

pub mod bare;
pub mod child;
pub mod engine_side;
pub mod records;
pub mod result_file;
pub mod voicelogs;
pub mod watch;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use crate::farm::{Farm, FarmConfig, FarmStats, Mix};
use bare::{BareCall, BareSide};
use dialcast_media::RtpSocketMode;
use engine_side::EngineSide;
use records::BenchRecord;

/// The target: the engine adds under 25 % CPU per call.
pub const TARGET_OVERHEAD: f64 = 0.25;
/// RTP ports of the farm, of the engine and of the bare dialer (one side runs
/// at a time, so the two callers share a range).
pub const FARM_RTP_PORTS: (u16, u16) = (20000, 29999);
pub const CALLER_RTP_PORTS: (u16, u16) = (40000, 49999);
/// A pause between the two sides, for the machine to settle.
const SETTLE: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Clone, Debug)]
pub struct CampaignBench {
    pub records: usize,
    pub cps: u32,
    pub channels: u32,
    pub mix: Mix,
    pub seed: u64,
    pub amd: bool,
    pub ring_timeout_s: u64,
    pub skip_baseline: bool,
    /// The bare dialer on tokio's multi-thread runtime (as `dialcast`).
    pub bare_multi_thread: bool,
    /// The `dialcast` binary.
    pub dialcast: PathBuf,
    /// This program (the bare dialer is its hidden `bare-dialer` command).
    pub loadtest_exe: PathBuf,
    pub scripts_dir: PathBuf,
    /// The script the campaign runs (its name in `scripts_dir`).
    pub script: String,
    /// Keep the work files here (else a temporary folder, removed after a
    /// successful run).
    pub keep_dir: Option<PathBuf>,
    /// Progress lines on stderr.
    pub progress: bool,
    /// The voicelog policy of the campaign (`none`: nothing recorded).
    pub voicelogs: String,
    /// The service's RTP scheduler threads (`[media] threads`).
    pub media_threads: usize,
    /// RTP sockets of the service, the farm and the bare dialer.
    pub rtp_socket: RtpSocketMode,
    /// `[media] udp_offload` of the service.
    pub engine_udp_offload: bool,
    /// UDP GSO / GRO on the farm's (and the bare dialer's farm's) sockets.
    pub farm_udp_offload: bool,
}

/// Where the example scripts are in the source tree.
pub fn default_scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/examples")
}

/// One side's figures (the JSON contract of `dialcast-loadtest campaign`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SideReport {
    /// Calls placed (INVITEs; for the engine, dialled attempts).
    pub calls: u64,
    /// Records whose call ended with the status its callee's behaviour
    /// implies (`success` for humans).
    pub completed: u64,
    pub failed: u64,
    /// Calls answered by the farm.
    pub answered: u64,
    /// INVITEs per second the farm received, first to last.
    pub achieved_cps: f64,
    /// Most calls at once at the farm.
    pub peak_channels: u64,
    pub cpu_s_per_call: f64,
    pub rss_mb_peak: f64,
    /// Mean answer-to-end time of answered calls.
    pub mean_talk_s: f64,
    /// First INVITE to the end of the last call, at the farm.
    pub wall_s: f64,
    /// CPU (user + system) of the side's process over its window.
    pub cpu_s: f64,
    /// The measured window: start command to end of measurement.
    pub run_s: f64,
    /// `cpu_s` split by thread name (tokio workers, media scheduler, SQLite
    /// workers, ...); threads that ended inside the window are missing.
    pub cpu_s_by_thread: BTreeMap<String, f64>,
    /// Final statuses (engine: per record; bare: per call).
    pub statuses: BTreeMap<String, u64>,
    /// RTP packets the farm received from this side, and sent to it.
    pub callee_rtp_received: u64,
    pub callee_rtp_sent: u64,
    /// Load average (1, 5, 15 min) before and after the side ran.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    /// CPU of the benchmark's own process over the same window: the callee
    /// farm (its SIP runtime and RTP scheduler threads) and the benchmark's
    /// polling, which shares the machine with the side measured.
    pub farm_cpu_s: Option<f64>,
    pub farm_cpu_s_per_call: Option<f64>,
    pub farm_cpu_s_by_thread: BTreeMap<String, f64>,
    /// Hypervisor steal over the window, all processors (`/proc/stat`).
    pub machine_steal_s: Option<f64>,
    /// Busy share of all processors over the window (user, nice, system,
    /// irq, softirq ÷ everything counted; 1.0 = every processor busy).
    pub machine_busy_ratio: Option<f64>,
    /// UDP datagrams dropped on a full receive buffer over the window, all
    /// sockets of the machine (`/proc/net/snmp` `RcvbufErrors`).
    pub udp_rcvbuf_errors: u64,
    /// The service's store operations (claim, next_due, ...) from its
    /// `dialcast_store_operation_seconds` histogram at the end of the run;
    /// empty for the bare dialer, which has no store.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub store_operations: BTreeMap<String, crate::scrape::HistogramSummary>,
}

/// The RTP scheduler threads' names start so (`dialcast-media-<n>`, cut to
/// 15 characters by the kernel).
const MEDIA_THREADS: &str = "dialcast-media";

impl SideReport {
    /// CPU seconds outside the RTP scheduler threads.
    fn cpu_s_outside_media(&self) -> f64 {
        let media: f64 = self
            .cpu_s_by_thread
            .iter()
            .filter(|(name, _)| name.starts_with(MEDIA_THREADS))
            .map(|(_, s)| s)
            .sum();
        self.cpu_s - media
    }

    fn with_farm(mut self, stats: &FarmStats) -> SideReport {
        self.farm_cpu_s_per_call = self.farm_cpu_s.map(|s| s / self.calls.max(1) as f64);
        self.peak_channels = stats.peak_active as u64;
        self.callee_rtp_received = stats.rtp.received;
        self.callee_rtp_sent = stats.rtp.sent;
        self
    }
}

/// The machine and its load.
#[derive(Clone, Debug, Serialize)]
pub struct MachineLoad {
    pub nproc: usize,
    #[serde(flatten)]
    pub machine: crate::Machine,
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct CampaignReport {
    pub benchmark: &'static str,
    pub records: usize,
    pub cps: u32,
    pub channels: u32,
    pub mix: String,
    /// The script the campaign ran.
    pub script: String,
    pub amd: bool,
    /// `per_call` or `per_thread`, on the engine and the farm.
    pub rtp_socket: &'static str,
    /// UDP GSO / GRO on the per-thread sockets of the service and the farm.
    pub engine_udp_offload: bool,
    pub farm_udp_offload: bool,
    pub media_threads: usize,
    pub bare_runtime: &'static str,
    pub machine: MachineLoad,
    pub campaign: SideReport,
    pub bare_dialer: Option<SideReport>,
    /// Campaign CPU per call ÷ bare CPU per call − 1.
    pub engine_overhead_ratio: Option<f64>,
    /// The same without the RTP scheduler threads (`dialcast-media-*`),
    /// which do the same work on both sides but vary by ±10 % from run to
    /// run on a shared machine: (campaign − bare) CPU per call outside them,
    /// ÷ bare CPU per call. A steadier estimate of what the engine adds.
    pub overhead_outside_media_ratio: Option<f64>,
    pub target_overhead: f64,
    pub met: Option<bool>,
    /// Whether the two sides did the same work (null without a baseline).
    pub fairness: Option<Fairness>,
    /// Where the work files are, when kept.
    pub work_dir: Option<String>,
    /// With `--voicelogs`: how long the recordings are against the calls.
    pub voicelogs: Option<voicelogs::VoicelogAccuracy>,
}

/// How far apart two figures that should match may be (5 %).
pub const FAIRNESS_TOLERANCE: f64 = 0.05;
/// G.711 at 20 ms frames: packets per second of one direction of a call.
const PACKETS_PER_SECOND: f64 = 50.0;

/// Checks that both sides did the same work; on an overloaded machine they
/// do not (calls stretch, frames are dropped), and the CPU ratio then
/// compares different work.
#[derive(Clone, Debug, Serialize)]
pub struct Fairness {
    /// Bare mean talk time ÷ campaign mean talk time.
    pub talk_ratio: f64,
    /// RTP the farm received from the bare dialer ÷ from the campaign.
    pub callee_rtp_ratio: f64,
    /// RTP the farm received per second of talk, per side (50 when no frame
    /// was lost; less when a caller skipped frames it was too late for).
    pub campaign_rtp_per_talk_s: f64,
    pub bare_rtp_per_talk_s: f64,
    /// All of the above within 5 %, and neither side's farm peak above the
    /// channel limit by more than 5 %.
    pub comparable: bool,
    /// What was out of tolerance.
    pub problems: Vec<String>,
}

impl Fairness {
    fn check(campaign: &SideReport, bare: &SideReport, channels: u32) -> Fairness {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let rate = |s: &SideReport| {
            ratio(
                s.callee_rtp_received as f64,
                s.answered as f64 * s.mean_talk_s,
            )
        };
        let talk_ratio = ratio(bare.mean_talk_s, campaign.mean_talk_s);
        let callee_rtp_ratio = ratio(
            bare.callee_rtp_received as f64,
            campaign.callee_rtp_received as f64,
        );
        let campaign_rate = rate(campaign);
        let bare_rate = rate(bare);
        // NaN (a side with no answered call) is out of tolerance too.
        let off = |x: f64, target: f64| {
            (x / target - 1.0).abs().partial_cmp(&FAIRNESS_TOLERANCE)
                != Some(std::cmp::Ordering::Less)
        };
        let mut problems = Vec::new();
        if off(talk_ratio, 1.0) {
            problems.push(format!(
                "mean talk time differs: bare/campaign = {talk_ratio:.3}"
            ));
        }
        if off(callee_rtp_ratio, 1.0) {
            problems.push(format!(
                "RTP the farm received differs: bare/campaign = {callee_rtp_ratio:.3}"
            ));
        }
        for (side, r) in [("campaign", campaign_rate), ("bare dialer", bare_rate)] {
            if off(r, PACKETS_PER_SECOND) {
                problems.push(format!(
                    "{side}: {r:.1} RTP packets per talk second reached the farm (50 expected): frames were lost"
                ));
            }
        }
        let limit = f64::from(channels) * (1.0 + FAIRNESS_TOLERANCE);
        for (side, s) in [("campaign", campaign), ("bare dialer", bare)] {
            if s.peak_channels as f64 > limit {
                problems.push(format!(
                    "{side}: the farm saw {} calls at once for a limit of {channels}: it lagged behind",
                    s.peak_channels
                ));
            }
        }
        Fairness {
            talk_ratio,
            callee_rtp_ratio,
            campaign_rtp_per_talk_s: campaign_rate,
            bare_rtp_per_talk_s: bare_rate,
            comparable: problems.is_empty(),
            problems,
        }
    }
}

/// Runs the benchmark: the campaign, then (unless skipped) the bare dialer.
pub fn run(bench: &CampaignBench) -> anyhow::Result<CampaignReport> {
    let (dir, keep) = match &bench.keep_dir {
        Some(d) => (d.clone(), true),
        None => (
            std::env::temp_dir().join(format!("dialcast-campaign-bench-{}", std::process::id())),
            false,
        ),
    };
    prepare_dir(&dir)?;
    let result = run_in(bench, &dir);
    match result {
        Ok(mut report) => {
            if keep {
                report.work_dir = Some(dir.display().to_string());
            } else {
                std::fs::remove_dir_all(&dir).ok();
            }
            Ok(report)
        }
        Err(e) => Err(e.context(format!("the work files are in {}", dir.display()))),
    }
}

/// The work directory must be new or empty (the database is created fresh).
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        anyhow::ensure!(
            entries.next().is_none(),
            "{} is not empty: choose a new or empty directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn run_in(bench: &CampaignBench, dir: &Path) -> anyhow::Result<CampaignReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the farm's runtime")?;
    let records = records::generate(&bench.mix, bench.records, bench.seed);
    let load_before = child::load_average();

    let farm = runtime.block_on(start_farm(bench))?;
    let engine = EngineSide {
        dialcast: &bench.dialcast,
        dir,
        scripts_dir: &bench.scripts_dir,
        script: &bench.script,
        cps: bench.cps,
        channels: bench.channels,
        ring_timeout_s: bench.ring_timeout_s,
        amd: bench.amd,
        rtp_ports: CALLER_RTP_PORTS,
        seed: bench.seed,
        progress: bench.progress,
        voicelogs: &bench.voicelogs,
        media_threads: bench.media_threads,
        rtp_socket: bench.rtp_socket,
        udp_offload: bench.engine_udp_offload,
    };
    let outcome = engine.run(&farm, &records);
    let farm_stats = runtime.block_on(farm.shutdown());
    let outcome = outcome?;
    let campaign = outcome.report.with_farm(&farm_stats);

    let bare_dialer = if bench.skip_baseline {
        None
    } else {
        std::thread::sleep(SETTLE);
        let calls = bare_calls(&records, &outcome.rows, campaign.mean_talk_s);
        let farm = runtime.block_on(start_farm(bench))?;
        let side = BareSide {
            exe: &bench.loadtest_exe,
            dir,
            cps: bench.cps,
            channels: bench.channels,
            ring_timeout_s: bench.ring_timeout_s,
            rtp_ports: CALLER_RTP_PORTS,
            multi_thread: bench.bare_multi_thread,
            progress: bench.progress,
        };
        let report = bare::run(&side, &farm, &calls);
        let farm_stats = runtime.block_on(farm.shutdown());
        Some(report?.with_farm(&farm_stats))
    };

    let ratio = bare_dialer
        .as_ref()
        .filter(|b| b.cpu_s_per_call > 0.0)
        .map(|b| campaign.cpu_s_per_call / b.cpu_s_per_call - 1.0);
    let fairness = bare_dialer
        .as_ref()
        .map(|b| Fairness::check(&campaign, b, bench.channels));
    let outside_media = bare_dialer
        .as_ref()
        .filter(|b| b.cpu_s_per_call > 0.0)
        .map(|b| {
            let per_call = |s: &SideReport| s.cpu_s_outside_media() / s.calls.max(1) as f64;
            (per_call(&campaign) - per_call(b)) / b.cpu_s_per_call
        });
    Ok(CampaignReport {
        benchmark: "campaign",
        records: bench.records,
        cps: bench.cps,
        channels: bench.channels,
        mix: bench.mix.to_string(),
        script: bench.script.clone(),
        amd: bench.amd,
        rtp_socket: engine_side::rtp_socket_name(bench.rtp_socket),
        engine_udp_offload: bench.engine_udp_offload,
        farm_udp_offload: bench.farm_udp_offload,
        media_threads: bench.media_threads,
        bare_runtime: if bench.bare_multi_thread {
            "multi"
        } else {
            "current"
        },
        machine: MachineLoad {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            machine: crate::Machine::describe(),
            load_before,
            load_after: child::load_average(),
        },
        campaign,
        bare_dialer,
        engine_overhead_ratio: ratio,
        overhead_outside_media_ratio: outside_media,
        target_overhead: TARGET_OVERHEAD,
        met: ratio.map(|r| r < TARGET_OVERHEAD),
        fairness,
        work_dir: None,
        voicelogs: outcome.voicelogs,
    })
}

async fn start_farm(bench: &CampaignBench) -> anyhow::Result<Farm> {
    let mut config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    config.media.rtp_socket = bench.rtp_socket;
    config.media.udp_offload = bench.farm_udp_offload;
    config.media.port_min = FARM_RTP_PORTS.0;
    config.media.port_max = FARM_RTP_PORTS.1;
    config.seed = bench.seed;
    Farm::start(config)
        .await
        .context("cannot start the callee farm")
}

/// The bare dialer's calls: the campaign's records in import order, each
/// held for the talk time the engine had on it (the mean if the result file
/// has no row for it).
fn bare_calls(
    records: &[BenchRecord],
    rows: &result_file::CallRows,
    mean_talk_s: f64,
) -> Vec<BareCall> {
    records
        .iter()
        .map(|r| {
            let talk_s = rows.get(&r.record_id).map_or(mean_talk_s, |row| row.talk_s);
            BareCall {
                number: r.number.clone(),
                hold: Duration::from_secs_f64(talk_s.max(0.0)),
                expected: r.behaviour.expected_status().to_string(),
            }
        })
        .collect()
}

impl CampaignReport {
    /// The short human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let c = &self.campaign;
        let b = self.bare_dialer.as_ref();
        let _ = writeln!(
            out,
            "campaign benchmark: {} records, script {}, mix {}, cps {}, channels {}, bare runtime {}",
            self.records, self.script, self.mix, self.cps, self.channels, self.bare_runtime
        );
        let _ = writeln!(out, "{:<22} {:>12} {:>12}", "", "campaign", "bare dialer");
        type Cell = fn(&SideReport) -> String;
        let rows: [(&str, Cell); 13] = [
            ("calls", |s| s.calls.to_string()),
            ("completed", |s| s.completed.to_string()),
            ("failed", |s| s.failed.to_string()),
            ("achieved calls/s", |s| format!("{:.1}", s.achieved_cps)),
            ("peak channels", |s| s.peak_channels.to_string()),
            ("CPU per call (ms)", |s| {
                format!("{:.3}", s.cpu_s_per_call * 1000.0)
            }),
            ("farm CPU per call (ms)", |s| {
                s.farm_cpu_s_per_call
                    .map_or("-".to_string(), |v| format!("{:.3}", v * 1000.0))
            }),
            ("machine busy", |s| {
                s.machine_busy_ratio
                    .map_or("-".to_string(), |v| format!("{:.1} %", v * 100.0))
            }),
            ("steal (s)", |s| {
                s.machine_steal_s
                    .map_or("-".to_string(), |v| format!("{v:.2}"))
            }),
            ("peak RSS (MB)", |s| format!("{:.1}", s.rss_mb_peak)),
            ("mean talk (s)", |s| format!("{:.2}", s.mean_talk_s)),
            ("wall (s)", |s| format!("{:.1}", s.wall_s)),
            ("load 1 min before/after", |s| {
                format!("{:.2}/{:.2}", s.load_before[0], s.load_after[0])
            }),
        ];
        for (name, value) in rows {
            let _ = writeln!(
                out,
                "{name:<22} {:>12} {:>12}",
                value(c),
                b.map_or("-".to_string(), value)
            );
        }
        let mut threads: Vec<&String> = c.cpu_s_by_thread.keys().collect();
        if let Some(b) = b {
            threads.extend(b.cpu_s_by_thread.keys());
        }
        threads.sort();
        threads.dedup();
        for name in threads {
            let cell = |s: &SideReport| {
                s.cpu_s_by_thread
                    .get(name)
                    .map_or("-".to_string(), |v| format!("{v:.1}"))
            };
            let _ = writeln!(
                out,
                "{:<22} {:>12} {:>12}",
                format!("  CPU s {name}"),
                cell(c),
                b.map_or("-".to_string(), cell)
            );
        }
        match (self.engine_overhead_ratio, self.met) {
            (Some(r), Some(met)) => {
                let _ = writeln!(
                    out,
                    "engine overhead: {:+.1} % CPU per call (target < {:.0} %): {}",
                    r * 100.0,
                    self.target_overhead * 100.0,
                    if met { "met" } else { "NOT met" }
                );
            }
            _ => {
                let _ = writeln!(out, "engine overhead: no baseline");
            }
        }
        if let Some(r) = self.overhead_outside_media_ratio {
            let _ = writeln!(
                out,
                "  of which outside the RTP threads: {:+.1} % (the RTP threads do the same work on both sides)",
                r * 100.0
            );
        }
        if let Some(f) = &self.fairness {
            let _ = writeln!(
                out,
                "same work on both sides: {} (talk {:.3}, farm RTP {:.3}, RTP/talk-s {:.1} / {:.1})",
                if f.comparable { "yes" } else { "NO" },
                f.talk_ratio,
                f.callee_rtp_ratio,
                f.campaign_rtp_per_talk_s,
                f.bare_rtp_per_talk_s
            );
            for p in &f.problems {
                let _ = writeln!(out, "  ! {p}");
            }
        }
        let m = &self.machine;
        let _ = writeln!(
            out,
            "machine: {} CPUs ({}), load before {:?}, after {:?}",
            m.nproc, m.machine.cpu_model, m.load_before, m.load_after
        );
        if let Some(v) = &self.voicelogs {
            let _ = writeln!(
                out,
                "voicelogs ({}): {} recordings, |wav - talk| mean {:.1} ms, p99 {:.1} ms, max {:.1} ms, {} over one frame, bias {:+.1} ms; {} frames filled with silence ({:.4} %), {} blocks dropped, {} bad files",
                v.policy,
                v.recordings,
                v.mean_abs_error_ms,
                v.p99_abs_error_ms,
                v.max_abs_error_ms,
                v.over_one_frame,
                v.mean_error_ms,
                v.frames_filled,
                v.filled_ratio * 100.0,
                v.blocks_dropped,
                v.bad_files
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::farm::Behaviour;

    #[test]
    fn bare_calls_hold_the_engine_talk_time() {
        let records = vec![
            BenchRecord {
                record_id: "LT-000001".into(),
                number: "+31610000001".into(),
                behaviour: Behaviour::Human,
            },
            BenchRecord {
                record_id: "LT-000002".into(),
                number: "+31612000001".into(),
                behaviour: Behaviour::Busy,
            },
        ];
        let mut rows = result_file::CallRows::new();
        rows.insert(
            "LT-000001".into(),
            result_file::CallRow {
                status: "success".into(),
                talk_s: 12.3,
            },
        );
        let calls = bare_calls(&records, &rows, 9.0);
        assert_eq!(calls[0].hold, Duration::from_millis(12_300));
        assert_eq!(calls[0].expected, "success");
        assert_eq!(calls[1].hold, Duration::from_secs(9));
        assert_eq!(calls[1].expected, "busy");
    }

    #[test]
    fn the_table_shows_the_overhead() {
        let side = SideReport {
            calls: 10,
            completed: 10,
            cpu_s_per_call: 0.01,
            ..SideReport::default()
        };
        let report = CampaignReport {
            benchmark: "campaign",
            records: 10,
            cps: 5,
            channels: 20,
            mix: "human=100".into(),
            script: "payment_reminder".into(),
            amd: false,
            rtp_socket: "per_call",
            engine_udp_offload: true,
            farm_udp_offload: true,
            media_threads: 1,
            bare_runtime: "multi",
            machine: MachineLoad {
                nproc: 2,
                machine: crate::Machine {
                    cpus: 2,
                    cpu_model: "test".into(),
                    kernel: String::new(),
                    sipp_version: String::new(),
                },
                load_before: [0.0; 3],
                load_after: [0.0; 3],
            },
            campaign: SideReport {
                cpu_s_per_call: 0.012,
                ..side.clone()
            },
            bare_dialer: Some(side),
            engine_overhead_ratio: Some(0.2),
            overhead_outside_media_ratio: None,
            target_overhead: TARGET_OVERHEAD,
            met: Some(true),
            fairness: None,
            work_dir: None,
            voicelogs: None,
        };
        let table = report.table();
        assert!(table.contains("+20.0 % CPU per call"), "{table}");
        assert!(table.contains("12.000"), "{table}");
        assert!(!table.contains("same work"), "{table}");
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["machine"]["nproc"], 2);
        assert_eq!(json["bare_dialer"]["calls"], 10);
    }

    fn side(talk: f64, rtp: u64, peak: u64) -> SideReport {
        SideReport {
            calls: 100,
            answered: 100,
            mean_talk_s: talk,
            callee_rtp_received: rtp,
            peak_channels: peak,
            ..SideReport::default()
        }
    }

    #[test]
    fn equal_work_is_comparable() {
        let f = Fairness::check(&side(10.0, 50_000, 90), &side(10.1, 50_400, 91), 100);
        assert!(f.comparable, "{f:?}");
        assert!((f.campaign_rtp_per_talk_s - 50.0).abs() < 1e-9);
    }

    #[test]
    fn lost_frames_and_a_lagging_farm_are_flagged() {
        let f = Fairness::check(&side(10.0, 50_000, 90), &side(11.0, 40_000, 130), 100);
        assert!(!f.comparable);
        assert_eq!(f.problems.len(), 4, "{:?}", f.problems);
    }

    #[test]
    fn overhead_outside_the_media_threads() {
        let with_threads = |total: f64, media: f64| SideReport {
            cpu_s: total,
            cpu_s_by_thread: BTreeMap::from([
                ("dialcast-media-".to_string(), media),
                ("tokio-rt-worker".to_string(), total - media),
            ]),
            ..SideReport::default()
        };
        assert!((with_threads(10.0, 7.0).cpu_s_outside_media() - 3.0).abs() < 1e-9);
        assert!((with_threads(10.0, 0.0).cpu_s_outside_media() - 10.0).abs() < 1e-9);
    }
}
