//! Prometheus metrics of the engine: every metric name and HELP text of
//! this crate in one place ([`name`], [`describe`]), the exporter
//! ([`install`]: `metrics-exporter-prometheus` without default features,
//! recommended naming, real histograms with the buckets below), the
//! `/metrics` endpoint ([`serve`]: a small HTTP/1.1 responder on tokio, so
//! the exporter needs neither hyper nor its listener feature, and port 0
//! works), and the helpers the campaign code calls once per call (never per
//! packet).
//!
//! The names are a contract with the dashboards and alert rules (the
//! metric catalogue, which lists them as exposed: counters get `_total`
//! from the exporter); rename none without them. Labels are bounded:
//! script and trunk names from the configuration, statuses, colour classes,
//! fixed outcome words; never call ids, numbers or record ids.
//!
//! Without an installed recorder every facade call is a no-op, so library
//! users and tests that do not install one pay next to nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dialcast_sip::trunk::{TrunkHealth, TrunkHealthConfig, TrunkState};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::stats::counters::Counters;

/// The default `--metrics-addr`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";
/// The path the endpoint answers on.
pub const PATH: &str = "/metrics";
/// Scrapes served at once; more wait for a permit (Prometheus scrapes one
/// at a time, so this only bounds misbehaving clients).
const MAX_CONNECTIONS: usize = 8;
/// Longest time a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read; anything longer is answered 431.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How often histograms are compacted and process metrics read when no one
/// scrapes (a scrape does both itself).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Metric names as registered (counters without `_total`: the exporter's
/// recommended naming adds it).
pub mod name {
    pub const CALLS_STARTED: &str = "dialcast_calls_started";
    pub const CALLS_ENDED: &str = "dialcast_calls_ended";
    pub const CALL_ATTEMPTS: &str = "dialcast_call_attempts";
    pub const CALLS_ANSWERED: &str = "dialcast_calls_answered";
    pub const SUCCESS_POINTS: &str = "dialcast_success_points";
    pub const VOICEMAIL_LEFT: &str = "dialcast_voicemail_left";
    pub const FORWARDS: &str = "dialcast_forwards";
    pub const CALLBACKS: &str = "dialcast_callbacks";
    pub const ACTIVE_CALLS: &str = "dialcast_active_calls";
    pub const TRUNK_CHANNELS: &str = "dialcast_trunk_channels";
    pub const CALL_SETUP_SECONDS: &str = "dialcast_call_setup_seconds";
    pub const CALL_RING_SECONDS: &str = "dialcast_call_ring_seconds";
    pub const CALL_TALK_SECONDS: &str = "dialcast_call_talk_seconds";
    pub const TRUNK_UP: &str = "dialcast_trunk_up";
    pub const TRUNK_BACKOFFS: &str = "dialcast_trunk_backoffs";
    pub const TRUNK_RESPONSES: &str = "dialcast_trunk_responses";
    pub const PACER_TARGET_CPS: &str = "dialcast_pacer_target_cps";
    pub const PACER_DIALLED: &str = "dialcast_pacer_dialled";
    pub const SCRIPT_PAUSED: &str = "dialcast_script_paused";
    pub const FORWARDING_PAUSED: &str = "dialcast_forwarding_paused";
    pub const RECORDS_DUE: &str = "dialcast_records_due";
    pub const CALL_WINDOW_OPEN: &str = "dialcast_call_window_open";
    pub const RECORDS_COMPLETED: &str = "dialcast_records_completed";
    pub const RECORDS_TODAY: &str = "dialcast_records_today";
    pub const QUEUE_DEPTH: &str = "dialcast_queue_depth";
    pub const QUEUE_OLDEST_WAIT_SECONDS: &str = "dialcast_queue_oldest_wait_seconds";
    pub const IMPORT_ROWS: &str = "dialcast_import_rows";
    pub const IMPORTS: &str = "dialcast_imports";
    pub const RESULT_FILES_WRITTEN: &str = "dialcast_result_files_written";
    pub const STORE_OPERATION_SECONDS: &str = "dialcast_store_operation_seconds";
    pub const ERRORS: &str = "dialcast_errors";
    pub const BUILD_INFO: &str = "dialcast_build_info";
}

/// Histogram buckets (seconds), per histogram.
pub const SETUP_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
pub const RING_BUCKETS: &[f64] = &[0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];
pub const TALK_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];
pub const STORE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];

/// Every histogram of the process with its buckets (media's included).
pub fn histogram_buckets() -> [(&'static str, &'static [f64]); 6] {
    [
        (name::CALL_SETUP_SECONDS, SETUP_BUCKETS),
        (name::CALL_RING_SECONDS, RING_BUCKETS),
        (name::CALL_TALK_SECONDS, TALK_BUCKETS),
        (name::STORE_OPERATION_SECONDS, STORE_BUCKETS),
        (
            dialcast_media::metrics::RTP_JITTER_SECONDS,
            dialcast_media::metrics::JITTER_BUCKETS,
        ),
        (
            dialcast_media::metrics::AMD_DECISION_SECONDS,
            dialcast_media::metrics::AMD_BUCKETS,
        ),
    ]
}

/// The exporter's configuration: recommended naming and a bucket list for
/// each histogram (so each is a real Prometheus histogram, not a summary).
pub fn builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
    for (metric, buckets) in histogram_buckets() {
        builder = builder.set_buckets_for_metric(Matcher::Full(metric.to_string()), buckets)?;
    }
    Ok(builder)
}

/// Gives every metric of the process its HELP text: the engine's, media's
/// and sip's (call with a recorder installed).
pub fn describe() {
    use name::*;
    dialcast_media::metrics::describe();
    dialcast_sip::metrics::describe();
    describe_counter!(
        CALLS_STARTED,
        "Calls placed (INVITE sent) for a record attempt, by script and trunk."
    );
    describe_counter!(
        CALLS_ENDED,
        "Attempts ended, by script and call status, as the 5-minute statistics count them (undialled reports such as invalid_number and blocked included)."
    );
    describe_counter!(
        CALL_ATTEMPTS,
        "Attempts ended, by script and colour class (green, yellow, red, other), as the 5-minute statistics count them (undialled reports included)."
    );
    describe_counter!(
        CALLS_ANSWERED,
        "Answered calls by script and answering-machine result (human, machine, silence, fax, unknown, off)."
    );
    describe_counter!(
        SUCCESS_POINTS,
        "Calls whose script reached its point of success, by script."
    );
    describe_counter!(
        VOICEMAIL_LEFT,
        "Messages left on voicemail (the voicemail block spoken to its end), by script."
    );
    describe_counter!(
        FORWARDS,
        "Forwards to the call centre by script and outcome (bridged, referred, closed, paused, failed)."
    );
    describe_counter!(
        CALLBACKS,
        "Inbound calls by outcome: matched to a record dialled recently, or unmatched (refused)."
    );
    describe_gauge!(ACTIVE_CALLS, "Outbound calls in progress, by trunk.");
    describe_gauge!(TRUNK_CHANNELS, "Configured channel limit of the trunk.");
    describe_histogram!(
        CALL_SETUP_SECONDS,
        "Time from the INVITE to the first response (provisional, else final), by trunk."
    );
    describe_histogram!(
        CALL_RING_SECONDS,
        "Time from the INVITE to the answer of answered calls, by trunk."
    );
    describe_histogram!(
        CALL_TALK_SECONDS,
        "Time from the answer to the hang-up of answered calls, by script."
    );
    describe_gauge!(
        TRUNK_UP,
        "1 while the trunk answers (health fed by the final responses of calls), else 0."
    );
    describe_counter!(
        TRUNK_BACKOFFS,
        "Back-off windows opened on the trunk by a 503 or 480 final response, by code."
    );
    describe_counter!(
        TRUNK_RESPONSES,
        "Outcomes of INVITEs by trunk and final response class (2xx, 3xx, 4xx, 5xx, 6xx, timeout, local)."
    );
    describe_gauge!(
        PACER_TARGET_CPS,
        "Calls per second the pacer aims at on the trunk."
    );
    describe_counter!(
        PACER_DIALLED,
        "Calls released by the pacer, by trunk (rate() is the achieved calls per second)."
    );
    describe_gauge!(
        SCRIPT_PAUSED,
        "1 while the calls of the script are paused, else 0."
    );
    describe_gauge!(
        FORWARDING_PAUSED,
        "1 while forwarding of the script is paused, else 0."
    );
    describe_gauge!(
        RECORDS_DUE,
        "Records of the script due now (pending, not before now), sampled every 2 s while it runs."
    );
    describe_gauge!(
        CALL_WINDOW_OPEN,
        "1 while the script's call window is open, else 0."
    );
    describe_counter!(
        RECORDS_COMPLETED,
        "Records that got their final status (no more attempts), dialled or reported undialled, by script."
    );
    describe_gauge!(
        RECORDS_TODAY,
        "Records imported today (the organisation's local day), by service (voice, sms, email); sampled every 2 s."
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Items waiting in a bounded queue (voicelog_writer, sms_outbox, email_outbox, stats_feed); sampled every 2 s."
    );
    describe_gauge!(
        QUEUE_OLDEST_WAIT_SECONDS,
        "How long the oldest item of a queue has waited: for voicelog_writer the longest a block can have waited for the writer since the last sample, for sms_outbox and email_outbox the age of the oldest queued message, for stats_feed the age of the oldest update the slowest subscriber has not taken; 0 when none waits; sampled every 2 s."
    );
    describe_counter!(
        IMPORT_ROWS,
        "Imported rows by result (accepted, rejected, duplicate, blocked)."
    );
    describe_counter!(
        IMPORTS,
        "Imports by outcome (confirmed, failed, cancelled)."
    );
    describe_counter!(
        RESULT_FILES_WRITTEN,
        "Result files written, by format (csv, xml)."
    );
    describe_histogram!(
        STORE_OPERATION_SECONDS,
        "Latency of store operations on the call path, by operation."
    );
    describe_counter!(ERRORS, "Events logged at error level, by component.");
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label tells the running build."
    );
}

/// The installed exporter plus what is read at scrape time.
pub struct Metrics {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    collectors: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
}

impl Metrics {
    /// Adds a function run before each scrape (e.g. copying a SIP
    /// endpoint's counters into the facade).
    pub fn add_collector(&self, collect: impl Fn() + Send + Sync + 'static) {
        lock(&self.collectors).push(Box::new(collect));
    }

    /// The exposition text, with the process metrics and the collectors
    /// read just before.
    pub fn render(&self) -> String {
        self.collect();
        self.handle.render()
    }

    fn collect(&self) {
        self.process.collect();
        for collect in lock(&self.collectors).iter() {
            collect();
        }
    }
}

static INSTALLED: OnceLock<Arc<Metrics>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global recorder (once;
/// later calls return the same one) and describes every metric.
pub fn install() -> anyhow::Result<Arc<Metrics>> {
    if let Some(m) = INSTALLED.get() {
        return Ok(Arc::clone(m));
    }
    let handle = builder()
        .context("metrics: bad histogram buckets")?
        .install_recorder()
        .context("metrics: cannot install the Prometheus recorder")?;
    let process = metrics_process::Collector::default();
    process.describe();
    describe();
    gauge!(name::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    register_process_series();
    let metrics = Arc::new(Metrics {
        handle,
        process,
        collectors: Mutex::new(Vec::new()),
    });
    Ok(Arc::clone(INSTALLED.get_or_init(|| metrics)))
}

/// The installed metrics, if [`install`] ran.
pub fn installed() -> Option<Arc<Metrics>> {
    INSTALLED.get().cloned()
}

/// A running `/metrics` endpoint.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// The address it listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Stops listening and waits for the accept loop to end.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Installs the recorder (if not yet) and serves `/metrics` on `addr`
/// until the server is shut down or `cancel` fires.
pub async fn serve(addr: SocketAddr, cancel: &CancellationToken) -> anyhow::Result<MetricsServer> {
    let metrics = install()?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics: cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let stop = cancel.child_token();
    let task = tokio::spawn(accept_loop(listener, metrics, stop.clone()));
    tracing::info!("metrics on http://{addr}{PATH}");
    Ok(MetricsServer { addr, stop, task })
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut upkeep = tokio::time::interval(UPKEEP_EVERY);
    upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = upkeep.tick() => {
                metrics.handle.run_upkeep();
                continue;
            }
            _ = stop.cancelled() => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &metrics).await {
                tracing::debug!("metrics: scrape connection: {e}");
            }
            drop(permit);
        });
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `GET /metrics` (query ignored); `head` for a HEAD request.
    Metrics {
        head: bool,
    },
    NotFound,
    MethodNotAllowed,
    Bad,
}

/// Reads the request line of an HTTP/1.x request head. Pure.
fn parse_request(head: &[u8]) -> Request {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return Request::Bad;
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Request::Bad;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    if !version.starts_with("HTTP/1.") || parts.next().is_some() {
        return Request::Bad;
    }
    let path = target.split('?').next().unwrap_or(target);
    if path != PATH {
        return Request::NotFound;
    }
    match method {
        "GET" => Request::Metrics { head: false },
        "HEAD" => Request::Metrics { head: true },
        _ => Request::MethodNotAllowed,
    }
}

/// Answers one request and closes the connection.
async fn answer(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(REQUEST_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_REQUEST_HEAD {
                return Ok(false);
            }
        }
    })
    .await
    .unwrap_or(Ok(false))?;
    let (status, body, content_type) = if !complete {
        (
            "400 Bad Request",
            String::from("bad request\n"),
            "text/plain",
        )
    } else {
        match parse_request(&head) {
            Request::Metrics { head } => {
                let text = metrics.render();
                let body = if head { String::new() } else { text };
                ("200 OK", body, "text/plain; version=0.0.4; charset=utf-8")
            }
            Request::NotFound => (
                "404 Not Found",
                format!("not found: try {PATH}\n"),
                "text/plain",
            ),
            Request::MethodNotAllowed => (
                "405 Method Not Allowed",
                String::from("GET or HEAD only\n"),
                "text/plain",
            ),
            Request::Bad => (
                "400 Bad Request",
                String::from("bad request\n"),
                "text/plain",
            ),
        }
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---- What the campaign code records (once per call or per 2 s, never per packet).

/// A call was placed for a record attempt.
pub fn call_started(script: &str, trunk: &str) {
    counter!(name::CALLS_STARTED, "script" => script.to_string(), "trunk" => trunk.to_string())
        .increment(1);
    counter!(name::PACER_DIALLED, "trunk" => trunk.to_string()).increment(1);
    gauge!(name::ACTIVE_CALLS, "trunk" => trunk.to_string()).increment(1.0);
}

/// A call placed by [`call_started`] is over (its outcome is counted by
/// [`attempt_ended`]).
pub fn call_finished(trunk: &str) {
    gauge!(name::ACTIVE_CALLS, "trunk" => trunk.to_string()).decrement(1.0);
}

/// The call statuses the formats README lists, as label values of
/// `dialcast_calls_ended_total`; [`status_label`] maps anything else to
/// [`OTHER_STATUS`].
const STATUSES: [&str; 12] = [
    "success",
    "forwarded",
    "voicemail",
    "answered_no_success",
    "no_answer",
    "busy",
    "rejected",
    "unavailable",
    "invalid_number",
    "blocked",
    "failed",
    "interrupted",
];
const OTHER_STATUS: &str = "other";

/// The statuses the formats README lists, as label values; anything else
/// is `other` (so a bug can never make the label set unbounded).
pub fn status_label(status: &str) -> &'static str {
    STATUSES
        .iter()
        .find(|known| **known == status)
        .copied()
        .unwrap_or(OTHER_STATUS)
}

/// Label values known before anything happens, registered at 0 so that a
/// healthy system shows 0 rather than no series.
pub mod labels {
    /// `dialcast_call_attempts_total{colour}` (as `Colour::as_str`).
    pub const COLOURS: [&str; 4] = ["green", "yellow", "red", "other"];
    /// `dialcast_calls_answered_total{amd}`.
    pub const AMD: [&str; 6] = ["human", "machine", "silence", "fax", "unknown", "off"];
    /// `dialcast_forwards_total{outcome}`.
    pub const FORWARD_OUTCOMES: [&str; 5] = ["bridged", "referred", "closed", "paused", "failed"];
    /// `dialcast_callbacks_total{outcome}`.
    pub const CALLBACK_OUTCOMES: [&str; 2] = ["matched", "unmatched"];
    /// `dialcast_trunk_backoffs_total{code}`.
    pub const BACKOFF_CODES: [&str; 2] = ["503", "480"];
    /// `dialcast_import_rows_total{result}`.
    pub const IMPORT_ROW_RESULTS: [&str; 4] = ["accepted", "rejected", "duplicate", "blocked"];
    /// `dialcast_imports_total{outcome}`.
    pub const IMPORT_OUTCOMES: [&str; 3] = ["confirmed", "failed", "cancelled"];
}

/// Registers at 0 the process-wide series whose labels are fixed words:
/// callbacks, imports, import rows, errors by component, queue depths and
/// today's records per service (run by [`install`]).
pub fn register_process_series() {
    for outcome in labels::CALLBACK_OUTCOMES {
        let _ = counter!(name::CALLBACKS, "outcome" => outcome);
    }
    for outcome in labels::IMPORT_OUTCOMES {
        let _ = counter!(name::IMPORTS, "outcome" => outcome);
    }
    for result in labels::IMPORT_ROW_RESULTS {
        let _ = counter!(name::IMPORT_ROWS, "result" => result);
    }
    for component in COMPONENTS {
        let _ = counter!(name::ERRORS, "component" => component);
    }
    for queue in queue::ALL {
        let _ = gauge!(name::QUEUE_DEPTH, "queue" => queue);
        let _ = gauge!(name::QUEUE_OLDEST_WAIT_SECONDS, "queue" => queue);
    }
    for service in crate::stats::counters::SERVICES {
        let _ = gauge!(name::RECORDS_TODAY, "service" => service);
    }
}

/// Registers at 0 the per-script series of a script whose campaign starts
/// (answered calls per AMD result, forwards per outcome, voicemails,
/// success points), and the campaign's bucket series (see
/// [`BucketSeries`]).
pub fn script_started(campaign: i64, script: &str) {
    for amd in labels::AMD {
        let _ = counter!(name::CALLS_ANSWERED, "script" => script.to_string(), "amd" => amd);
    }
    for outcome in labels::FORWARD_OUTCOMES {
        let _ = counter!(name::FORWARDS, "script" => script.to_string(), "outcome" => outcome);
    }
    let _ = counter!(name::VOICEMAIL_LEFT, "script" => script.to_string());
    let _ = counter!(name::SUCCESS_POINTS, "script" => script.to_string());
    campaign_script(campaign, script);
}

/// The series that follow a campaign's 5-minute statistics buckets, by the
/// campaign's script: ended attempts per colour (registered at 0) and per
/// status (registered on first use), and records completed. Handles are
/// made once per campaign, so adding a bucket delta allocates nothing.
pub struct BucketSeries {
    colours: [metrics::Counter; 4],
    statuses: [OnceLock<metrics::Counter>; STATUSES.len() + 1],
    records_completed: metrics::Counter,
    script: String,
}

impl BucketSeries {
    /// Registers the series of `script` with the current recorder.
    pub fn register(script: &str) -> BucketSeries {
        let colour = |c: &'static str| counter!(name::CALL_ATTEMPTS, "script" => script.to_string(), "colour" => c);
        BucketSeries {
            colours: labels::COLOURS.map(colour),
            statuses: std::array::from_fn(|_| OnceLock::new()),
            records_completed: counter!(name::RECORDS_COMPLETED, "script" => script.to_string()),
            script: script.to_string(),
        }
    }

    /// Adds what a committed transaction added to a bucket: its ended
    /// attempts (dialled or not) by colour and status, and its records done.
    pub fn add(&self, counters: &Counters) {
        let by_colour = [
            counters.green,
            counters.yellow,
            counters.red,
            counters.other,
        ];
        for (counter, n) in self.colours.iter().zip(by_colour) {
            if n > 0 {
                counter.increment(n);
            }
        }
        for (status, n) in &counters.statuses {
            if *n > 0 {
                self.status(status).increment(*n);
            }
        }
        if counters.records_done > 0 {
            self.records_completed.increment(counters.records_done);
        }
    }

    fn status(&self, status: &str) -> &metrics::Counter {
        let label = status_label(status);
        let i = STATUSES
            .iter()
            .position(|s| *s == label)
            .unwrap_or(STATUSES.len());
        self.statuses[i].get_or_init(
            || counter!(name::CALLS_ENDED, "script" => self.script.clone(), "status" => label),
        )
    }
}

/// The bucket series of each campaign seen, by campaign id (a handful per
/// process; an entry is a few handles).
fn campaigns() -> &'static Mutex<HashMap<i64, Arc<BucketSeries>>> {
    static CAMPAIGNS: OnceLock<Mutex<HashMap<i64, Arc<BucketSeries>>>> = OnceLock::new();
    CAMPAIGNS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Makes the bucket series of `campaign`, whose script is `script`, if
/// not made yet (a no-op without an installed recorder).
pub fn campaign_script(campaign: i64, script: &str) {
    if INSTALLED.get().is_none() {
        return;
    }
    lock(campaigns())
        .entry(campaign)
        .or_insert_with(|| Arc::new(BucketSeries::register(script)));
}

/// Whether [`bucket_committed`] needs [`campaign_script`] first: a
/// recorder is installed and `campaign` has no series yet.
pub fn needs_campaign_script(campaign: i64) -> bool {
    INSTALLED.get().is_some() && !lock(campaigns()).contains_key(&campaign)
}

/// A transaction that added `counters` to a bucket of `campaign` has
/// committed: the same deltas go to `dialcast_call_attempts_total`,
/// `dialcast_calls_ended_total` and `dialcast_records_completed_total`, so
/// they count exactly what the 5-minute statistics count. The store calls
/// this after each such commit (`store::sqlite::stats::committed`);
/// nothing else increments those three.
pub fn bucket_committed(campaign: i64, counters: &Counters) {
    let series = lock(campaigns()).get(&campaign).cloned();
    if let Some(series) = series {
        series.add(counters);
    }
}

/// The class of a final response code: `2xx` .. `6xx`, or `timeout` when
/// the network never answered and `local` when we gave up ourselves.
pub fn response_class(code: u16, from_network: bool) -> &'static str {
    if !from_network {
        return if code == 408 { "timeout" } else { "local" };
    }
    match code {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        600..=699 => "6xx",
        _ => "local",
    }
}

/// What the per-call controller learned about one outbound call.
#[derive(Clone, Debug)]
pub struct CallSummary<'a> {
    pub script: &'a str,
    pub trunk: &'a str,
    pub sip_code: u16,
    pub from_network: bool,
    pub retry_after: Option<Duration>,
    /// INVITE to the first response (provisional or final), if any came.
    pub setup: Option<Duration>,
    /// INVITE to the answer, for answered calls.
    pub ring: Option<Duration>,
    /// Answer to hang-up, for answered calls.
    pub talk: Option<Duration>,
    /// The AMD verdict (`Some("off")` when detection was off), for answered calls.
    pub amd: Option<&'static str>,
    pub success: bool,
    pub voicemail_left: bool,
}

/// Records an outbound call's timings, AMD result and trunk response.
pub fn call_summary(call: &CallSummary<'_>) {
    let trunk = call.trunk.to_string();
    let script = call.script.to_string();
    if let Some(setup) = call.setup {
        histogram!(name::CALL_SETUP_SECONDS, "trunk" => trunk.clone()).record(setup.as_secs_f64());
    }
    if let Some(ring) = call.ring {
        histogram!(name::CALL_RING_SECONDS, "trunk" => trunk.clone()).record(ring.as_secs_f64());
    }
    if let Some(talk) = call.talk {
        histogram!(name::CALL_TALK_SECONDS, "script" => script.clone()).record(talk.as_secs_f64());
    }
    if let Some(amd) = call.amd {
        counter!(name::CALLS_ANSWERED, "script" => script.clone(), "amd" => amd).increment(1);
    }
    if call.success {
        counter!(name::SUCCESS_POINTS, "script" => script.clone()).increment(1);
    }
    if call.voicemail_left {
        counter!(name::VOICEMAIL_LEFT, "script" => script).increment(1);
    }
    counter!(
        name::TRUNK_RESPONSES,
        "trunk" => trunk.clone(),
        "code" => response_class(call.sip_code, call.from_network)
    )
    .increment(1);
    if call.from_network {
        trunk_response(call.trunk, call.sip_code, call.retry_after);
    }
}

/// Trunk health as the engine's calls see it: the sip crate's health
/// machine, fed with the final responses of calls (campaigns do not run the
/// OPTIONS monitor), one per trunk name.
fn trunk_health() -> &'static Mutex<HashMap<String, TrunkHealth>> {
    static HEALTH: OnceLock<Mutex<HashMap<String, TrunkHealth>>> = OnceLock::new();
    HEALTH.get_or_init(|| Mutex::new(HashMap::new()))
}

fn trunk_response(trunk: &str, code: u16, retry_after: Option<Duration>) {
    let (up, backoff) = {
        let mut all = lock(trunk_health());
        let health = all
            .entry(trunk.to_string())
            .or_insert_with(|| TrunkHealth::new(TrunkHealthConfig::default()));
        let before = health.backoffs_total();
        health.on_call_final(code, retry_after, Instant::now());
        (
            health.state() == TrunkState::Up,
            health.backoffs_total() > before,
        )
    };
    gauge!(name::TRUNK_UP, "trunk" => trunk.to_string()).set(if up { 1.0 } else { 0.0 });
    if backoff {
        let code = if code == 480 { "480" } else { "503" };
        counter!(name::TRUNK_BACKOFFS, "trunk" => trunk.to_string(), "code" => code).increment(1);
    }
}

/// A campaign starts on `trunk`: its limits and its pacer's target.
pub fn trunk_configured(trunk: &str, channels: u32) {
    gauge!(name::TRUNK_CHANNELS, "trunk" => trunk.to_string()).set(f64::from(channels));
    // Known from the start, even before a call ends (0 until one answers).
    let _ = gauge!(name::TRUNK_UP, "trunk" => trunk.to_string());
    let _ = gauge!(name::ACTIVE_CALLS, "trunk" => trunk.to_string());
    register_trunk(trunk);
}

/// Registers at 0 the trunk's back-off counters (503, 480); `serve` does
/// it for every configured trunk at start.
pub fn register_trunk(trunk: &str) {
    for code in labels::BACKOFF_CODES {
        let _ = counter!(name::TRUNK_BACKOFFS, "trunk" => trunk.to_string(), "code" => code);
    }
}

/// The pacer's target rate on `trunk`.
pub fn pacer_target(trunk: &str, cps: f64) {
    gauge!(name::PACER_TARGET_CPS, "trunk" => trunk.to_string()).set(cps);
}

/// A script's state, sampled while its campaign runs.
pub fn script_state(script: &str, paused: bool, forwarding_paused: bool, window_open: bool) {
    let flag = |on: bool| if on { 1.0 } else { 0.0 };
    gauge!(name::SCRIPT_PAUSED, "script" => script.to_string()).set(flag(paused));
    gauge!(name::FORWARDING_PAUSED, "script" => script.to_string()).set(flag(forwarding_paused));
    gauge!(name::CALL_WINDOW_OPEN, "script" => script.to_string()).set(flag(window_open));
}

/// Records due now for `script`.
pub fn records_due(script: &str, due: u64) {
    gauge!(name::RECORDS_DUE, "script" => script.to_string()).set(due as f64);
}

/// The queues whose depth `dialcast_queue_depth{queue}` reports.
pub mod queue {
    /// Blocks waiting for the voicelog writer thread (media's recorder
    /// queue, as the writer last found it).
    pub const VOICELOG_WRITER: &str = "voicelog_writer";
    /// Text messages queued in the store's SMS outbox.
    pub const SMS_OUTBOX: &str = "sms_outbox";
    /// E-mails queued in the store's e-mail outbox.
    pub const EMAIL_OUTBOX: &str = "email_outbox";
    /// Bucket updates the slowest statistics-feed subscriber has not taken.
    pub const STATS_FEED: &str = "stats_feed";
    pub const ALL: [&str; 4] = [VOICELOG_WRITER, SMS_OUTBOX, EMAIL_OUTBOX, STATS_FEED];
}

/// The depth of `queue` (one of [`queue::ALL`]).
pub fn queue_depth(queue: &'static str, depth: usize) {
    gauge!(name::QUEUE_DEPTH, "queue" => queue).set(depth as f64);
}

/// How long the oldest item of `queue` (one of [`queue::ALL`]) has waited.
pub fn queue_oldest_wait(queue: &'static str, wait: std::time::Duration) {
    gauge!(name::QUEUE_OLDEST_WAIT_SECONDS, "queue" => queue).set(wait.as_secs_f64());
}

/// Today's records per service; a service absent from `per_service` is 0.
pub fn records_today(per_service: &std::collections::BTreeMap<String, u64>) {
    for service in crate::stats::counters::SERVICES {
        let n = per_service.get(service).copied().unwrap_or(0);
        gauge!(name::RECORDS_TODAY, "service" => service).set(n as f64);
    }
}

/// A forward ended the way `outcome` says (bridged, referred, closed,
/// paused, failed).
pub fn forward(script: &str, outcome: &'static str) {
    counter!(name::FORWARDS, "script" => script.to_string(), "outcome" => outcome).increment(1);
}

/// An inbound call was `matched` to a record, or not.
pub fn callback(matched: bool) {
    let outcome = if matched { "matched" } else { "unmatched" };
    counter!(name::CALLBACKS, "outcome" => outcome).increment(1);
}

/// Rows of an import by result (accepted, rejected, duplicate, blocked).
pub fn import_rows(result: &'static str, rows: u64) {
    if rows > 0 {
        counter!(name::IMPORT_ROWS, "result" => result).increment(rows);
    }
}

/// An import ended (confirmed, failed, cancelled).
pub fn import_done(outcome: &'static str) {
    counter!(name::IMPORTS, "outcome" => outcome).increment(1);
}

/// A result file was written (csv, xml).
pub fn result_file_written(format: &'static str) {
    counter!(name::RESULT_FILES_WRITTEN, "format" => format).increment(1);
}

/// Runs a store operation and records how long it took.
pub async fn timed<T>(operation: &'static str, work: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = work.await;
    histogram!(name::STORE_OPERATION_SECONDS, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    out
}

/// Counts error-level events by component (a `tracing` layer).
pub struct ErrorCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() == tracing::Level::ERROR {
            counter!(name::ERRORS, "component" => component(event.metadata().target()))
                .increment(1);
        }
    }
}

/// Every value of `dialcast_errors_total{component}`: first the engine's
/// top modules that name a component of their own ([`ENGINE_MODULES`] of
/// them), then the rest.
pub const COMPONENTS: [&str; 18] = [
    "campaign",
    "store",
    "import",
    "imports",
    "inbox",
    "results",
    "result_files",
    "voicelog",
    "service",
    "demo",
    "metrics",
    "stats",
    "engine",
    "cli",
    "sip",
    "media",
    "scripts",
    "other",
];

/// How many of [`COMPONENTS`] are engine modules.
const ENGINE_MODULES: usize = 12;

/// The component of a `tracing` target: the engine's top module, or the
/// crate; a fixed set of words.
pub fn component(target: &str) -> &'static str {
    let mut parts = target.split("::");
    match parts.next() {
        Some("dialcast_engine") => {
            let module = parts.next().unwrap_or("");
            COMPONENTS[..ENGINE_MODULES]
                .iter()
                .find(|m| **m == module)
                .copied()
                .unwrap_or("engine")
        }
        Some("dialcast") => "cli",
        Some("dialcast_sip") => "sip",
        Some("dialcast_media") => "media",
        Some("dialcast_scripts") => "scripts",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_from_the_request_line() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            parse_request(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics { head: true }
        );
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Request::MethodNotAllowed
        );
        assert_eq!(parse_request(b"garbage\r\n\r\n"), Request::Bad);
        assert_eq!(
            parse_request(b"\xff\xfe /metrics HTTP/1.1\r\n\r\n"),
            Request::Bad
        );
    }

    #[test]
    fn response_classes() {
        assert_eq!(response_class(200, true), "2xx");
        assert_eq!(response_class(486, true), "4xx");
        assert_eq!(response_class(503, true), "5xx");
        assert_eq!(response_class(603, true), "6xx");
        assert_eq!(response_class(408, false), "timeout");
        assert_eq!(response_class(500, false), "local");
    }

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(status_label("busy"), "busy");
        assert_eq!(status_label("+31612345678"), "other");
        assert_eq!(component("dialcast_engine::campaign::call"), "campaign");
        assert_eq!(component("dialcast_engine::nothing_known"), "engine");
        assert_eq!(component("dialcast_engine::stats::feed"), "stats");
        assert_eq!(component("dialcast_sip::driver"), "sip");
        assert_eq!(component("hyper::proto"), "other");
    }

    /// The exposition of a local recorder: names as the catalogue lists
    /// them, HELP for each, histograms with their buckets.
    #[test]
    fn exposition_follows_the_naming_rules() {
        let recorder = builder().expect("buckets").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            call_started("reminder", "trunk-a");
            call_summary(&CallSummary {
                script: "reminder",
                trunk: "trunk-a",
                sip_code: 200,
                from_network: true,
                retry_after: None,
                setup: Some(Duration::from_millis(30)),
                ring: Some(Duration::from_secs(3)),
                talk: Some(Duration::from_secs(12)),
                amd: Some("human"),
                success: true,
                voicemail_left: false,
            });
            let bucket = BucketSeries::register("reminder");
            let mut ended = Counters::attempts_ended("success", false, true, 1);
            ended.records_done = 1;
            bucket.add(&ended);
            call_finished("trunk-a");
            dialcast_media::metrics::observe_amd_decision("human", 1200);
        });
        let text = handle.render();
        for line in [
            "dialcast_calls_started_total{script=\"reminder\",trunk=\"trunk-a\"} 1",
            "dialcast_calls_ended_total{script=\"reminder\",status=\"success\"} 1",
            "dialcast_call_attempts_total{script=\"reminder\",colour=\"green\"} 1",
            "dialcast_calls_answered_total{script=\"reminder\",amd=\"human\"} 1",
            "dialcast_success_points_total{script=\"reminder\"} 1",
            "dialcast_records_completed_total{script=\"reminder\"} 1",
            "dialcast_pacer_dialled_total{trunk=\"trunk-a\"} 1",
            "dialcast_trunk_responses_total{trunk=\"trunk-a\",code=\"2xx\"} 1",
            "dialcast_active_calls{trunk=\"trunk-a\"} 0",
            "dialcast_trunk_up{trunk=\"trunk-a\"} 1",
            "dialcast_call_setup_seconds_bucket{trunk=\"trunk-a\",le=\"0.05\"} 1",
            "dialcast_call_setup_seconds_bucket{trunk=\"trunk-a\",le=\"0.025\"} 0",
            "dialcast_call_ring_seconds_bucket{trunk=\"trunk-a\",le=\"4\"} 1",
            "dialcast_call_talk_seconds_count{script=\"reminder\"} 1",
            "dialcast_amd_decision_seconds_bucket{result=\"human\",le=\"1.5\"} 1",
            "# TYPE dialcast_calls_started_total counter",
            "# TYPE dialcast_call_setup_seconds histogram",
            "# HELP dialcast_calls_started_total Calls placed",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(line)),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    /// Series whose labels are known up front are exposed at 0 before
    /// anything happens.
    #[test]
    fn known_series_are_registered_at_zero() {
        let recorder = builder().expect("buckets").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            register_process_series();
            register_trunk("trunk-a");
            let _bucket = BucketSeries::register("reminder");
            // script_started's own series (its campaign registry needs the
            // global recorder, so only the local part is exercised here).
            for amd in labels::AMD {
                let _ = counter!(name::CALLS_ANSWERED, "script" => "reminder", "amd" => amd);
            }
        });
        let text = handle.render();
        let mut expected = vec![
            "dialcast_callbacks_total{outcome=\"unmatched\"} 0".to_string(),
            "dialcast_imports_total{outcome=\"cancelled\"} 0".to_string(),
            "dialcast_import_rows_total{result=\"duplicate\"} 0".to_string(),
            "dialcast_trunk_backoffs_total{trunk=\"trunk-a\",code=\"480\"} 0".to_string(),
            "dialcast_trunk_backoffs_total{trunk=\"trunk-a\",code=\"503\"} 0".to_string(),
            "dialcast_records_completed_total{script=\"reminder\"} 0".to_string(),
            "dialcast_calls_answered_total{script=\"reminder\",amd=\"off\"} 0".to_string(),
        ];
        expected.extend(labels::COLOURS.map(|c| {
            format!("dialcast_call_attempts_total{{script=\"reminder\",colour=\"{c}\"}} 0")
        }));
        expected
            .extend(COMPONENTS.map(|c| format!("dialcast_errors_total{{component=\"{c}\"}} 0")));
        for line in &expected {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        // Statuses appear with their first attempt, not before.
        assert!(!text.contains("dialcast_calls_ended_total"), "{text}");
    }

    /// A bucket delta reaches the colour, status and records-completed
    /// series, unknown statuses as `other`, undialled reports included.
    #[test]
    fn bucket_deltas_follow_the_statistics() {
        let recorder = builder().expect("buckets").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let bucket = BucketSeries::register("reminder");
            let mut import = crate::stats::ImportTally::default();
            import.undialled("invalid_number");
            import.undialled("blocked");
            bucket.add(import.counters());
            bucket.add(&Counters::attempts_ended("voicemail", true, true, 2));
            bucket.add(&Counters::attempts_ended("something_new", false, true, 1));
            // Non-attempt counters add nothing here.
            let mut event = Counters::default();
            event.add(crate::stats::counters::name::FORWARDS, 1);
            bucket.add(&event);
        });
        let text = handle.render();
        for line in [
            "dialcast_call_attempts_total{script=\"reminder\",colour=\"red\"} 1",
            "dialcast_call_attempts_total{script=\"reminder\",colour=\"other\"} 2",
            "dialcast_call_attempts_total{script=\"reminder\",colour=\"green\"} 2",
            "dialcast_call_attempts_total{script=\"reminder\",colour=\"yellow\"} 0",
            "dialcast_calls_ended_total{script=\"reminder\",status=\"invalid_number\"} 1",
            "dialcast_calls_ended_total{script=\"reminder\",status=\"blocked\"} 1",
            "dialcast_calls_ended_total{script=\"reminder\",status=\"voicemail\"} 2",
            "dialcast_calls_ended_total{script=\"reminder\",status=\"other\"} 1",
            "dialcast_records_completed_total{script=\"reminder\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn records_today_sets_every_service() {
        let recorder = builder().expect("buckets").build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            records_today(&[("sms".to_string(), 3), ("voice".to_string(), 7)].into());
            queue_depth(queue::SMS_OUTBOX, 2);
            queue_oldest_wait(queue::SMS_OUTBOX, std::time::Duration::from_millis(1500));
            queue_depth(queue::EMAIL_OUTBOX, 3);
        });
        let text = handle.render();
        for line in [
            "dialcast_records_today{service=\"voice\"} 7",
            "dialcast_records_today{service=\"sms\"} 3",
            "dialcast_records_today{service=\"email\"} 0",
            "dialcast_queue_depth{queue=\"sms_outbox\"} 2",
            "dialcast_queue_oldest_wait_seconds{queue=\"sms_outbox\"} 1.5",
            "dialcast_queue_depth{queue=\"email_outbox\"} 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
    }
}
