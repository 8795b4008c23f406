//! `dialcast demo`: a real campaign on one machine. It starts the callee farm
//! on loopback (a SIP UAS whose callees behave like people, voicemail boxes,
//! busy lines and wrong numbers), writes a generated import file, imports it
//! through the normal CSV import into the embedded SQLite store, and dials it
//! with the payment-reminder example script over SIP and RTP, showing a live
//! progress line; then it writes the result file and prints the outcomes.
//!
//! Nothing is simulated inside the engine: the farm is reached over UDP like
//! any trunk.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use dialcast_loadtest::campaign::records::{self, BenchRecord};
use dialcast_loadtest::farm::{Behaviour, Farm, FarmConfig, Mix, DEFAULT_MIX};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::campaign::now_ms;
use crate::loopback;
use crate::service::{self, ImportTarget};
use crate::stats::StatsFeed;
use crate::store::{
    CampaignSettings, CampaignState, OrganisationCalendar, ScheduleSettings, SqliteStore, Store,
    TrunkSettings,
};

/// The script the demo dials with.
pub const DEMO_SCRIPT: &str = records::SCRIPT;
/// The organisation the demo's records belong to.
pub const DEMO_ORGANISATION: &str = "Demo";
/// One record in this many gets a number that is not a phone number, to show
/// `invalid_number` without a call.
const UNPARSEABLE_EVERY: usize = 50;

/// What `dialcast demo` does.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub records: usize,
    pub dir: PathBuf,
    pub seed: u64,
    /// Show a live progress line on stderr.
    pub progress: bool,
    /// Where the process serves its Prometheus metrics, if it does.
    pub metrics_url: Option<String>,
}

/// The JSON summary of `dialcast demo --json` (a contract: keep the fields).
#[derive(Clone, Debug, Serialize)]
pub struct DemoSummary {
    pub records: u64,
    pub attempts: u64,
    pub statuses: BTreeMap<String, u64>,
    pub success: u64,
    pub result_file: String,
    pub elapsed_s: f64,
    pub peak_channels: u64,
    /// Records whose final status is the one their callee's behaviour implies.
    pub as_expected: u64,
    /// `http://ADDR/metrics` while the demo runs (and lingers); null when
    /// metrics are not served.
    pub metrics_url: Option<String>,
}

/// Everything the demo learned.
pub struct DemoReport {
    pub summary: DemoSummary,
    /// Per behaviour: records, expected status, records that ended so.
    pub behaviours: Vec<(String, u64, String, u64)>,
}

impl DemoReport {
    /// The table printed at the end.
    pub fn table(&self) -> String {
        let s = &self.summary;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nOutcomes ({} records, {} calls, {:.1} s, at most {} calls at once)",
            s.records, s.attempts, s.elapsed_s, s.peak_channels
        );
        let _ = writeln!(out, "  {:<22} {:>7}  colour", "status", "records");
        for (status, count) in &s.statuses {
            let _ = writeln!(out, "  {status:<22} {count:>7}  {}", colour(status));
        }
        let _ = writeln!(out, "  point of success reached by {} records", s.success);
        let _ = writeln!(
            out,
            "\nBy callee behaviour (the farm decides by number prefix)"
        );
        let _ = writeln!(
            out,
            "  {:<18} {:>7}  {:<20} {:>9}",
            "behaviour", "records", "expected status", "as such"
        );
        for (behaviour, records, expected, matched) in &self.behaviours {
            let _ = writeln!(
                out,
                "  {behaviour:<18} {records:>7}  {expected:<20} {matched:>9}"
            );
        }
        let _ = writeln!(out, "\nResult file: {}", s.result_file);
        out
    }
}

/// Dashboard colour class of a call status (formats README).
pub fn colour(status: &str) -> &'static str {
    match status {
        "success" | "forwarded" => "green",
        "invalid_number" => "red",
        "voicemail" => "green if a message was left, else yellow",
        _ => "yellow",
    }
}

/// Where the example scripts are (in the source tree).
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/examples")
}

/// The demo's records: farm numbers in the default mix, except one in
/// [`UNPARSEABLE_EVERY`] whose number is not a phone number (`None`: it must
/// be reported `invalid_number` without a call).
fn generate_records(
    count: usize,
    seed: u64,
) -> anyhow::Result<Vec<(BenchRecord, Option<Behaviour>)>> {
    let mix: Mix = DEFAULT_MIX
        .parse()
        .map_err(|e| anyhow::anyhow!("the default mix: {e}"))?;
    Ok(records::generate(&mix, count, seed)
        .into_iter()
        .enumerate()
        .map(|(i, mut record)| {
            if i % UNPARSEABLE_EVERY == UNPARSEABLE_EVERY - 1 {
                record.number = "06-123".to_string();
                (record, None)
            } else {
                let behaviour = record.behaviour;
                (record, Some(behaviour))
            }
        })
        .collect())
}

/// Runs the demo: [`prepare`], then [`Prepared::run`].
pub async fn run(options: DemoOptions) -> anyhow::Result<DemoReport> {
    prepare(options).await?.run().await
}

/// A demo whose store is filled and whose farm answers, before any call:
/// the point where the `dialcast` binary starts what it serves besides the
/// engine (the portal API) on the demo's fresh database.
pub struct Prepared {
    options: DemoOptions,
    started: Instant,
    database: PathBuf,
    organisation_id: i64,
    farm: Farm,
    store: Arc<SqliteStore>,
    generated: Vec<(BenchRecord, Option<Behaviour>)>,
    /// The feed the demo's engine will announce committed buckets on.
    stats: StatsFeed,
}

impl Prepared {
    /// The demo's SQLite file (emptied and filled by [`prepare`]).
    pub fn database(&self) -> &Path {
        &self.database
    }

    /// The store id of [`DEMO_ORGANISATION`].
    pub fn organisation_id(&self) -> i64 {
        self.organisation_id
    }

    /// Where the demo's engine announces committed buckets (subscribe
    /// before [`Prepared::run`] to hear every one).
    pub fn stats_feed(&self) -> &StatsFeed {
        &self.stats
    }
}

/// Empties the demo's directory, starts the callee farm, writes the import
/// file and imports it: everything before the first call.
pub async fn prepare(options: DemoOptions) -> anyhow::Result<Prepared> {
    let started = Instant::now();
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    let database = options.dir.join("dialcast-demo.db");
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", database.display()));
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the old {}", path.display()))?;
        }
    }

    // The callee farm: a separate SIP peer on loopback.
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = 30000;
    farm_config.media.port_max = 39999;
    farm_config.seed = options.seed;
    let farm = Farm::start(farm_config)
        .await
        .context("cannot start the callee farm")?;
    let farm_addr = farm.local_addr();

    let generated = generate_records(options.records, options.seed)?;
    let import_path = options.dir.join("demo-records.csv");
    let rows: Vec<BenchRecord> = generated.iter().map(|(r, _)| r.clone()).collect();
    records::write_import_file(&import_path, &rows, options.seed, records::SCRIPT)?;

    let store = Arc::new(SqliteStore::open(&database).await?);
    let catalog = service::audio_catalog(&[])?;
    let script_path = examples_dir().join(format!("{DEMO_SCRIPT}.toml"));
    let settings = CampaignSettings {
        max_attempts: 2,
        retry_delay_ms: 3_000,
        ring_timeout_ms: 10_000,
        max_call_ms: 60_000,
        amd: true,
        // The demo runs whenever it is started.
        schedule: ScheduleSettings::around_the_clock(),
    };
    let imported = service::import_file(
        &*store,
        &catalog,
        &import_path,
        ImportTarget {
            organisation: DEMO_ORGANISATION,
            default_country: "NL",
            calendar: OrganisationCalendar::every_day("Europe/Amsterdam"),
            trunk: TrunkSettings {
                name: "callee-farm".into(),
                uri: format!("sip:{farm_addr}"),
                transport: "udp".into(),
                max_cps: 25,
                max_channels: 80,
                caller_id: Some("+31201234567".into()),
            },
            settings,
            script_path: &script_path,
            campaign: None,
            archive_dir: &options.dir.join("imports"),
        },
        service::ImportMode {
            validate_only: false,
            accept_partial: true,
        },
    )
    .await?;
    for line in imported.lines() {
        eprintln!("{line}");
    }
    if options.progress {
        eprintln!(
            "imported {} records from {} ({} with an invalid number); calling the farm at {farm_addr}",
            imported.inserted, imported.file, imported.without_valid_number
        );
    }
    // The import created it; this only reads its id back.
    let organisation_id = store.ensure_organisation(DEMO_ORGANISATION, "NL").await?;
    Ok(Prepared {
        options,
        started,
        database,
        organisation_id,
        farm,
        store,
        generated,
        stats: StatsFeed::default(),
    })
}

impl Prepared {
    /// Dials the campaign to its end, writes the result file and reports.
    pub async fn run(self) -> anyhow::Result<DemoReport> {
        let Prepared {
            options,
            started,
            farm,
            store,
            generated,
            stats,
            ..
        } = self;

        let (engine, sip) =
            loopback::start_engine_with_stats(Arc::clone(&store), (20000, 29999), stats).await?;
        let campaign = store.campaign_by_name(DEMO_SCRIPT).await?;
        store
            .set_campaign_state(campaign.id, CampaignState::Running, now_ms())
            .await?;
        let campaign = store.campaign_by_name(DEMO_SCRIPT).await?;
        let campaign_id = campaign.id;
        let cancel = CancellationToken::new();
        let runner = {
            let engine = Arc::clone(&engine);
            let cancel = cancel.clone();
            tokio::spawn(async move { engine.run_campaign(campaign, cancel).await })
        };

        let is_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mut last_line = Instant::now();
        while !runner.is_finished() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if options.progress && (is_terminal || last_line.elapsed() >= Duration::from_secs(5)) {
                last_line = Instant::now();
                let status = store.campaign_status(campaign_id).await?;
                let reached = status.statuses.get("success").copied().unwrap_or(0);
                let line = format!(
                    "[{:>5.1}s] {}/{} records done · {} calls · {} live · {} successes",
                    started.elapsed().as_secs_f64(),
                    status.done,
                    status.records,
                    status.attempts,
                    engine.counters.in_flight.load(Ordering::Relaxed),
                    reached,
                );
                if is_terminal {
                    eprint!("\r{line}   ");
                    std::io::stderr().flush().ok();
                } else {
                    eprintln!("{line}");
                }
            }
        }
        if options.progress && is_terminal {
            eprintln!();
        }
        runner.await.context("the campaign task failed")??;

        let result_file = service::write_result_file(
            &*store,
            campaign_id,
            DEMO_SCRIPT,
            Utc::now().date_naive(),
            chrono_tz::Tz::UTC,
            &options.dir.join("results"),
        )
        .await?;
        farm.shutdown().await;
        sip.shutdown();

        let status = store.campaign_status(campaign_id).await?;
        let finals = store.record_finals(campaign_id).await?;
        let by_id: BTreeMap<&str, &crate::store::RecordFinal> =
            finals.iter().map(|f| (f.record_id.as_str(), f)).collect();
        let mut per_behaviour: BTreeMap<String, (u64, String, u64)> = BTreeMap::new();
        let mut as_expected = 0;
        for (record, behaviour) in &generated {
            let (name, expected) = match behaviour {
                Some(b) => (b.as_str().to_string(), b.expected_status().to_string()),
                None => (
                    "unparseable number".to_string(),
                    "invalid_number".to_string(),
                ),
            };
            let got = by_id
                .get(record.record_id.as_str())
                .and_then(|f| f.final_status.as_deref());
            let entry = per_behaviour
                .entry(name)
                .or_insert_with(|| (0, expected.clone(), 0));
            entry.0 += 1;
            if got == Some(expected.as_str()) {
                entry.2 += 1;
                as_expected += 1;
            }
        }
        Ok(DemoReport {
            summary: DemoSummary {
                records: status.records,
                attempts: status.attempts,
                statuses: status.statuses,
                success: status.success,
                result_file: result_file.display().to_string(),
                elapsed_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                peak_channels: engine.counters.peak_in_flight.load(Ordering::Relaxed),
                as_expected,
                metrics_url: options.metrics_url.clone(),
            },
            behaviours: per_behaviour
                .into_iter()
                .map(|(b, (n, expected, matched))| (b, n, expected, matched))
                .collect(),
        })
    }
}
