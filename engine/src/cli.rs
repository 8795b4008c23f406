//! The `dialcast` command line: every engine command (`dial`, `listen`,
//! `probe`, `demo`, `serve`, `import`, `blocklist`, `campaign`, `stats`,
//! `results`, `voicelogs`, `amd`), defined once, with an [`Extension`]
//! point for what lives above the engine.
//!
//! Why the definition is in the library and not in a binary of this crate:
//! the shipped `dialcast` binary also serves the portal API and has the
//! `user` and `apikey` commands, and the portal (`dialcast-portal-api`)
//! depends on the engine, never the reverse. So the binary is built by the
//! portal crate (`portal-api/src/bin/dialcast/`), which wires the two together through
//! [`Extension`]: extra subcommands, extra arguments of `serve` and `demo`,
//! and something started beside the engine by each. The engine's own
//! `dialcast-engine` binary is [`main`] with [`NoExtension`]: the same
//! commands minus the portal, kept so that this crate's integration tests
//! can run the commands through `CARGO_BIN_EXE_dialcast-engine` (cargo only
//! builds and names binaries of the package under test).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::campaign::control::{self, Control};
use crate::campaign::now_ms;
use crate::config::Config;
use crate::result_files::{self, ResultFileSettings};
use crate::single_call::{self, CallOutcome, DialOptions};
use crate::stats::{self, range, StatsFeed};
use crate::store::{
    BlocklistStore as _, CampaignState, ImportStatus, ImportStore as _, SqliteStore,
    StatsStore as _, Store as _,
};
use crate::{blocklist, demo, imports, metrics, service};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use dialcast_media::{MediaConfig, MediaEngine, Prompt, RtpSocketMode};
use dialcast_sip::trunk::{Trunk, TrunkHealthConfig, TrunkState};
use dialcast_sip::{SipConfig, SipEndpoint, Transport};
use tokio_util::sync::CancellationToken;

/// What a binary adds to the engine's commands (see the module doc).
pub trait Extension: Sized + 'static {
    /// Extra top-level subcommands.
    type Command: Subcommand + Send;
    /// Extra arguments of `serve` and `demo` (the same ones for both).
    type ServeArgs: Args + Send;

    /// Default `DIALCAST_LOG` filter directives for the extension's crates,
    /// e.g. `"dialcast_portal_api=info"`.
    const LOG_DIRECTIVES: &'static str = "";

    /// Runs one of the extra subcommands.
    fn run(command: Self::Command) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// `dialcast serve`: starts what is served beside the engine, on the
    /// configured database, before the engine starts; `stats` is the feed
    /// the engine will announce committed buckets on. It must stop when
    /// `cancel` is cancelled (after the engine has stopped).
    fn serve(
        args: Self::ServeArgs,
        config: &Config,
        stats: &StatsFeed,
        cancel: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Running>> + Send;

    /// `dialcast demo`: the same once the demo's fresh store is filled
    /// (before the first call); it keeps serving through `--linger` and
    /// stops when `cancel` is cancelled.
    fn demo(
        args: Self::ServeArgs,
        demo: &demo::Prepared,
        cancel: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Running>> + Send;
}

/// What an [`Extension`] started beside the engine.
#[derive(Default)]
pub struct Running {
    /// Fields added to `dialcast demo --json`'s summary.
    pub summary: serde_json::Map<String, serde_json::Value>,
    /// Lines for standard output after the demo's table (without `--json`).
    pub report: Vec<String>,
    /// Ends once what was started has stopped after the cancellation.
    pub stopped: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn stopped(self) {
        if let Some(task) = self.stopped {
            if let Err(e) = task.await {
                tracing::error!("a task beside the engine failed: {e}");
            }
        }
    }
}

/// No extra commands.
#[derive(Subcommand)]
pub enum NoCommand {}

/// No extra arguments.
#[derive(Args)]
pub struct NoArgs {}

/// The engine's commands alone: the `dialcast-engine` binary.
pub struct NoExtension;

impl Extension for NoExtension {
    type Command = NoCommand;
    type ServeArgs = NoArgs;

    async fn run(command: NoCommand) -> anyhow::Result<()> {
        match command {}
    }

    async fn serve(
        _: NoArgs,
        _: &Config,
        _: &StatsFeed,
        _: CancellationToken,
    ) -> anyhow::Result<Running> {
        Ok(Running::default())
    }

    async fn demo(_: NoArgs, _: &demo::Prepared, _: CancellationToken) -> anyhow::Result<Running> {
        Ok(Running::default())
    }
}

#[derive(Parser)]
#[command(
    name = "dialcast",
    version,
    about = "Dialcast telephony and messaging campaign engine"
)]
struct Cli<X: Extension> {
    #[command(subcommand)]
    command: Command<X>,
}

#[derive(Subcommand)]
enum Command<X: Extension> {
    /// Place one call, play a prompt once answered, hang up and print the outcome.
    Dial(DialArgs),
    /// Answer inbound calls, play a prompt, hang up and print each outcome.
    Listen(ListenArgs),
    /// Send OPTIONS keep-alives to a trunk and print its health after each.
    Probe(ProbeArgs),
    /// Run a demo campaign on the embedded store against a simulated callee farm.
    Demo(DemoArgs<X>),
    /// Run the engine as a service: dial every running campaign of the store.
    Serve(ServeArgs<X>),
    /// Import a CSV file of records into a script's campaign (validate, then
    /// import), or manage earlier imports (list, show, confirm, cancel,
    /// download).
    Import(ImportArgs),
    /// The organisation's blocklist: numbers that are never dialled.
    Blocklist(BlocklistArgs),
    /// Start a campaign, or show its status.
    Campaign(CampaignArgs),
    /// A campaign's statistics over a local day or a range.
    Stats(StatsArgs),
    /// The result files written.
    Results(ResultsArgs),
    /// Call recordings: list them, fetch one.
    Voicelogs(VoicelogsArgs),
    /// Answering-machine detection on recordings.
    Amd(AmdArgs),
    #[command(flatten)]
    Extension(X::Command),
}

#[derive(Args)]
struct AmdArgs {
    #[command(subcommand)]
    action: AmdAction,
}

#[derive(Subcommand)]
enum AmdAction {
    /// Run the answering-machine detector on WAV files as if each were the
    /// first seconds of a call (from the answer): the same detector, and the
    /// same tuning, as live calls.
    #[command(
        after_help = "Input: WAV, any sample format; other rates are resampled to \
                  8 kHz, several channels are mixed (averaged) to mono. \
                  With --json, one JSON object per file and line: file, label \
                  (human|machine|silence|fax|unknown), decision_ms (when it decided, ms \
                  from the start of the file), beep_ms (where the first voicemail beep \
                  starts, or null), cause (the rule that decided). A file that cannot \
                  be read is named on stderr and the others are still classified. \
                  Exit status: 0 when every file was classified, 1 otherwise."
    )]
    Classify {
        /// The recordings.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// One JSON object per file.
        #[arg(long)]
        json: bool,
        /// Take the detector tuning from this configuration ([amd]).
        #[arg(long)]
        config: Option<PathBuf>,
        /// With --config: the tuning of this script
        /// ([script_settings.<NAME>.amd] over [amd]).
        #[arg(long, requires = "config")]
        script: Option<String>,
    },
}

#[derive(Args)]
struct StatsArgs {
    /// The campaign.
    name: String,
    #[arg(long, default_value = "dialcast.toml")]
    config: PathBuf,
    /// today, yesterday, day-before or YYYY-MM-DD: a local day of
    /// organisation.time_zone (default: today).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    day: Option<String>,
    /// Start of a range: RFC 3339, or local YYYY-MM-DDTHH:MM or YYYY-MM-DD.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// End of the range (excluded), written like --from.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// List the 5-minute buckets too.
    #[arg(long)]
    buckets: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ResultsArgs {
    #[command(subcommand)]
    action: ResultsAction,
}

#[derive(Subcommand)]
enum ResultsAction {
    /// List the result files written, newest day first, with size and time.
    List {
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        /// Print one JSON object: {"files": [...]}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct VoicelogsArgs {
    #[command(subcommand)]
    action: VoicelogsAction,
}

#[derive(Subcommand)]
enum VoicelogsAction {
    /// List recordings, newest first, with record, attempt, script and length.
    List {
        /// Only this script's recordings.
        #[arg(long)]
        script: Option<String>,
        /// Only this record's (its RECORD_ID).
        #[arg(long)]
        record: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        /// Print one JSON object: {"voicelogs": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Copy one recording (a stereo WAV: left ours, right theirs) to a file,
    /// or to standard output without --out.
    Get {
        id: i64,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        /// Print the recording's row as JSON (on standard error with no --out).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct DemoArgs<X: Extension> {
    /// How many records to generate and dial.
    #[arg(long, default_value_t = 200)]
    records: usize,
    /// Where the demo's database, import file and result file go (emptied first).
    #[arg(long, default_value = "dialcast-demo")]
    dir: PathBuf,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// End with one JSON object (records, attempts, statuses, success, result_file).
    #[arg(long)]
    json: bool,
    /// Where to serve Prometheus metrics (http://ADDR/metrics); port 0 picks
    /// a free port (the summary's metrics_url tells which).
    #[arg(long, default_value = crate::metrics::DEFAULT_ADDR)]
    metrics_addr: SocketAddr,
    /// Keep serving metrics (and what else the command serves) this many
    /// seconds after the summary is printed.
    #[arg(long, default_value_t = 0)]
    linger: u64,
    #[command(flatten)]
    extension: X::ServeArgs,
}

#[derive(Args)]
struct ServeArgs<X: Extension> {
    /// The configuration file (see engine/dialcast.example.toml).
    #[arg(long)]
    config: PathBuf,
    /// Where to serve Prometheus metrics (http://ADDR/metrics).
    #[arg(long, default_value = crate::metrics::DEFAULT_ADDR)]
    metrics_addr: SocketAddr,
    #[command(flatten)]
    extension: X::ServeArgs,
}

/// `dialcast import FILE --script NAME [...]` uploads, validates and imports
/// a file in one go; `dialcast import <list|show|confirm|cancel|download>`
/// works on earlier imports. (A file named like a subcommand is given as
/// `./list`.)
#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Exit status: 0 when the file was validated (--validate-only) or imported; \
                  1 when nothing was imported (rows fail without --accept-partial, or an error). \
                  With --json, once the file was read, the report is one JSON object on stdout either way: records, \
                  will_import, will_fail, inserted, duplicates, blocklisted, invalid_numbers, \
                  errors and warnings as {row, column, reason}, row being the line the row \
                  starts on (header = 1)."
)]
struct ImportArgs {
    #[command(subcommand)]
    action: Option<ImportAction>,
    /// The CSV file (layout: shared formats README).
    #[arg(required = true)]
    file: Option<PathBuf>,
    /// The script the records are for: <scripts.dir>/<NAME>.toml.
    #[arg(long, required = true)]
    script: Option<String>,
    /// The campaign to add them to (default: the script's name).
    #[arg(long)]
    campaign: Option<String>,
    #[arg(long, default_value = "dialcast.toml")]
    config: PathBuf,
    /// Only validate: print the report, import nothing (the import stays
    /// `validated`; `dialcast import confirm ID` imports it later).
    #[arg(long)]
    validate_only: bool,
    /// Import the rows that pass even when other rows fail.
    #[arg(long, conflicts_with = "validate_only")]
    accept_partial: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ImportAction {
    /// List the organisation's imports, newest first.
    List {
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show one import with its last validation report.
    Show {
        id: i64,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Import a validated import's rows (checked again).
    Confirm {
        id: i64,
        /// Import the rows that pass even when other rows fail.
        #[arg(long)]
        accept_partial: bool,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Cancel an import that was not confirmed.
    Cancel {
        id: i64,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
    },
    /// Write the import's original file to OUT.
    Download {
        id: i64,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
    },
}

#[derive(Args)]
struct BlocklistArgs {
    #[command(subcommand)]
    action: BlocklistAction,
}

#[derive(Subcommand)]
enum BlocklistAction {
    /// Block a number; pending records left without a number to dial become
    /// done with status `blocked` at once.
    Add {
        /// The number; without a country code it is read with
        /// organisation.default_country.
        number: String,
        #[arg(long)]
        reason: String,
        /// Who blocked it.
        #[arg(long)]
        by: Option<String>,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Unblock a number (records already blocked stay so).
    Remove {
        number: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The blocked numbers.
    List {
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct CampaignArgs {
    #[command(subcommand)]
    action: CampaignAction,
}

#[derive(Subcommand)]
enum CampaignAction {
    /// Let a running `dialcast serve` dial the campaign.
    Start {
        name: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
    },
    /// Write the result files of the campaign's script for a day (default:
    /// today) into the configured results directory (and outbox); a day
    /// without calls gives a header-only file.
    Results {
        name: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        /// The day, YYYY-MM-DD, a local day of organisation.time_zone.
        #[arg(long)]
        day: Option<chrono::NaiveDate>,
    },
    /// Stop starting calls at once (calls in progress finish); the campaign
    /// shows as paused.
    Pause {
        name: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
    },
    /// Dial again after a pause; within the same call window the campaign
    /// speeds up to finish its remaining attempts before the window closes.
    Resume {
        name: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
    },
    /// Stop forwarding callees to the call centre: the script takes its
    /// "outside opening hours" branch (CALL_FORWARDING_OPEN = N).
    PauseForwarding {
        name: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
    },
    /// Forward callees again.
    ResumeForwarding {
        name: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
    },
    /// Show a campaign's records and outcomes.
    Status {
        name: String,
        #[arg(long, default_value = "dialcast.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ProbeArgs {
    /// The trunk, e.g. sip:trunk.example.net:5060
    uri: String,
    #[arg(long, default_value = "udp")]
    transport: Transport,
    /// How many probes to send.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Milliseconds between probes.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Milliseconds to wait for each answer.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Local SIP address.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// One JSON object per probe.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CommonArgs {
    /// Local SIP address (UDP, and TCP on the same port). Port 0 picks one.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// RTP port range, MIN-MAX.
    #[arg(long, default_value = "20000-39999", value_parser = parse_port_range)]
    rtp_ports: (u16, u16),
    /// per_call (a socket and SDP port per call) or per_thread (one socket
    /// for all calls, told apart by source address and SSRC; see
    /// `[media] rtp_socket` in dialcast.example.toml).
    #[arg(long, default_value = "per_call", value_parser = parse_rtp_socket)]
    rtp_socket: RtpSocketMode,
    /// A WAV/MP3/OGG/FLAC file to play once the call is up.
    #[arg(long)]
    prompt: Option<PathBuf>,
    /// Milliseconds to stay on the line after the prompt ended.
    #[arg(long, default_value_t = 500)]
    linger_ms: u64,
    /// Hang up after this many seconds of talk time at the latest.
    #[arg(long, default_value_t = 600)]
    max_talk: u64,
    /// End the call when no RTP arrives for this many seconds.
    #[arg(long, default_value_t = 30)]
    rtp_timeout: u64,
    /// Print the outcome as one JSON object per call.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DialArgs {
    /// Whom to call, e.g. sip:+31201234567@trunk.example.net:5060
    uri: String,
    #[arg(long, default_value = "udp")]
    transport: Transport,
    /// Digest username for 401/407 challenges.
    #[arg(long)]
    username: Option<String>,
    /// Digest password (better: the DIALCAST_SIP_PASSWORD environment variable,
    /// which other users of the machine cannot read from the process list).
    #[arg(long, env = "DIALCAST_SIP_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// The number to present (From and P-Asserted-Identity).
    #[arg(long)]
    caller_id: Option<String>,
    /// Record both directions to this stereo WAV (left ours, right theirs).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Seconds to let it ring before cancelling.
    #[arg(long, default_value_t = 30)]
    ring_timeout: u64,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args)]
struct ListenArgs {
    /// Only TCP is affected: UDP is always served.
    #[arg(long, default_value = "udp")]
    transport: Transport,
    /// Exit after this many calls (0: serve until interrupted).
    #[arg(long, default_value_t = 0)]
    calls: u64,
    #[command(flatten)]
    common: CommonArgs,
}

fn parse_rtp_socket(text: &str) -> Result<RtpSocketMode, String> {
    match text {
        "per_call" | "per-call" => Ok(RtpSocketMode::PerCall),
        "per_thread" | "per-thread" => Ok(RtpSocketMode::PerThread),
        _ => Err(format!("expected per_call or per_thread, not {text:?}")),
    }
}

fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let (min, max) = text
        .split_once('-')
        .ok_or_else(|| format!("expected MIN-MAX, got {text:?}"))?;
    let min: u16 = min.trim().parse().map_err(|e| format!("bad MIN: {e}"))?;
    let max: u16 = max.trim().parse().map_err(|e| format!("bad MAX: {e}"))?;
    if min > max || max - min < 2 {
        return Err(format!("the range {min}-{max} holds no RTP port pair"));
    }
    Ok((min, max))
}

/// Parses the command line, runs the command and returns its exit status.
pub fn main<X: Extension>() -> std::process::ExitCode {
    let cli = Cli::<X>::parse();
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        use tracing_subscriber::Layer as _;
        let filter =
            tracing_subscriber::EnvFilter::try_from_env("DIALCAST_LOG").unwrap_or_else(|_| {
                let mut directives = "warn,dialcast=info,dialcast_engine=info".to_string();
                if !X::LOG_DIRECTIVES.is_empty() {
                    directives = format!("{directives},{}", X::LOG_DIRECTIVES);
                }
                tracing_subscriber::EnvFilter::new(directives)
            });
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            // Errors are counted whatever DIALCAST_LOG shows.
            .with(metrics::ErrorCounter.with_filter(tracing::level_filters::LevelFilter::ERROR))
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dialcast: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dial(args) => run_dial(args).await,
            Command::Listen(args) => run_listen(args).await,
            Command::Probe(args) => run_probe(args).await,
            Command::Demo(args) => run_demo::<X>(args).await,
            Command::Serve(args) => run_serve::<X>(args).await,
            Command::Import(args) => run_import(args).await,
            Command::Blocklist(args) => run_blocklist(args).await,
            Command::Campaign(args) => run_campaign(args).await,
            Command::Stats(args) => run_stats(args).await,
            Command::Results(args) => run_results(args).await,
            Command::Voicelogs(args) => run_voicelogs(args).await,
            Command::Amd(args) => run_amd(args),
            Command::Extension(command) => X::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dialcast: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

struct Stack {
    endpoint: SipEndpoint,
    inbound: dialcast_sip::InboundCalls,
    media: MediaEngine,
    rtp_ip: IpAddr,
    prompt: Option<Arc<Prompt>>,
}

async fn start(common: &CommonArgs, tcp: bool) -> anyhow::Result<Stack> {
    let prompt = match &common.prompt {
        Some(path) => Some(Arc::new(Prompt::load(path)?)),
        None => None,
    };
    let (endpoint, inbound) = SipEndpoint::start(SipConfig {
        bind: common.bind,
        tcp,
        ..SipConfig::default()
    })
    .await?;
    let rtp_ip = common.bind.ip();
    let media = MediaEngine::start(MediaConfig {
        bind_ip: rtp_ip,
        port_min: common.rtp_ports.0,
        port_max: common.rtp_ports.1,
        inactivity_timeout: Duration::from_secs(common.rtp_timeout),
        rtp_socket: common.rtp_socket,
        send_silence: true,
        metrics: true,
        udp_offload: true,
    })
    .context("cannot start the media engine")?;
    Ok(Stack {
        endpoint,
        inbound,
        media,
        rtp_ip,
        prompt,
    })
}

async fn run_dial(args: DialArgs) -> anyhow::Result<()> {
    let stack = start(&args.common, args.transport == Transport::Tcp).await?;
    let options = DialOptions {
        target: args.uri,
        transport: args.transport,
        username: args.username,
        password: args.password,
        caller_id: args.caller_id,
        prompt: stack.prompt.clone(),
        record: args.record,
        ring_timeout: Duration::from_secs(args.ring_timeout),
        linger: Duration::from_millis(args.common.linger_ms),
        max_talk: Duration::from_secs(args.common.max_talk),
    };
    let outcome = single_call::dial(&stack.endpoint, &stack.media, stack.rtp_ip, options).await?;
    print_outcome(&outcome, args.common.json)?;
    // Let the last transactions (ACK, BYE retransmissions) settle before exiting.
    tokio::time::sleep(Duration::from_millis(50)).await;
    stack.endpoint.shutdown();
    Ok(())
}

async fn run_listen(args: ListenArgs) -> anyhow::Result<()> {
    let mut stack = start(&args.common, args.transport == Transport::Tcp).await?;
    eprintln!(
        "dialcast: listening on {} ({})",
        stack.endpoint.local_addr(),
        if args.transport == Transport::Tcp {
            "udp+tcp"
        } else {
            "udp"
        }
    );
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<anyhow::Result<CallOutcome>>(64);
    let mut accepted = 0u64;
    let mut finished = 0u64;
    loop {
        if args.calls > 0 && finished >= args.calls {
            break;
        }
        tokio::select! {
            call = stack.inbound.next(), if args.calls == 0 || accepted < args.calls => {
                let Some(call) = call else { break };
                accepted += 1;
                let media = stack.media.clone();
                let prompt = stack.prompt.clone();
                let done = done_tx.clone();
                let ip = stack.rtp_ip;
                let linger = Duration::from_millis(args.common.linger_ms);
                let max_talk = Duration::from_secs(args.common.max_talk);
                tokio::spawn(async move {
                    let outcome = single_call::answer(call, &media, ip, prompt, linger, max_talk).await;
                    done.send(outcome).await.ok();
                });
            }
            outcome = done_rx.recv() => {
                finished += 1;
                match outcome {
                    Some(Ok(outcome)) => print_outcome(&outcome, args.common.json)?,
                    Some(Err(e)) => eprintln!("dialcast: call failed: {e:#}"),
                    None => break,
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stack.endpoint.shutdown();
    Ok(())
}

async fn run_probe(args: ProbeArgs) -> anyhow::Result<()> {
    let uri = rsipstack_uri(&args.uri)?;
    let target = dialcast_sip::resolve::destination(&uri, args.transport).await?;
    let (endpoint, _inbound) = SipEndpoint::start(SipConfig {
        bind: args.bind,
        tcp: args.transport == Transport::Tcp,
        ..SipConfig::default()
    })
    .await?;
    let trunk = Trunk::new(
        args.uri.clone(),
        target,
        args.transport,
        TrunkHealthConfig::default(),
    );
    let timeout = Duration::from_millis(args.timeout_ms);
    for n in 1..=args.count {
        let answer = endpoint
            .send_options(target, args.transport, timeout)
            .await?;
        let now = std::time::Instant::now();
        {
            let health = trunk.health();
            let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
            match answer {
                Some(a) => health.on_probe_response(a.code, a.retry_after, now),
                None => health.on_probe_timeout(),
            }
        }
        let report = serde_json::json!({
            "probe": n,
            "code": answer.map(|a| a.code),
            "rtt_ms": answer.map(|a| a.rtt.as_secs_f64() * 1000.0),
            "state": trunk.state(),
            "backing_off_ms": trunk.backing_off_until(now).map(|t| (t - now).as_millis() as u64),
        });
        if args.json {
            println!("{report}");
        } else {
            println!(
                "probe {n}: {} -> trunk {}",
                answer.map_or("no answer".to_string(), |a| format!(
                    "{} in {:.1} ms",
                    a.code,
                    a.rtt.as_secs_f64() * 1000.0
                )),
                serde_json::to_string(&trunk.state())?.trim_matches('"'),
            );
        }
        if n < args.count {
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        }
    }
    endpoint.shutdown();
    if trunk.state() != TrunkState::Up {
        anyhow::bail!(
            "trunk {} is {}",
            args.uri,
            serde_json::to_string(&trunk.state())?.trim_matches('"')
        );
    }
    Ok(())
}

fn rsipstack_uri(text: &str) -> anyhow::Result<dialcast_sip::Uri> {
    text.try_into()
        .map_err(|e| anyhow::anyhow!("bad SIP URI {text:?}: {e}"))
}

fn print_outcome(outcome: &CallOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(outcome)?);
    } else {
        println!(
            "{} (SIP {}) ring {} ms, talk {} ms, RTP sent {} received {}, DTMF {:?}, hung up by {}",
            outcome.status,
            outcome.sip_code,
            outcome.ring_ms,
            outcome.talk_ms,
            outcome.rtp_sent,
            outcome.rtp_received,
            outcome.dtmf,
            outcome.hangup_by.unwrap_or("-"),
        );
    }
    Ok(())
}

async fn run_demo<X: Extension>(args: DemoArgs<X>) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    // Before the engine starts, so that it registers its SIP counters.
    let metrics = metrics::serve(args.metrics_addr, &cancel)
        .await
        .context("--metrics-addr")?;
    let progress = !args.json || std::io::IsTerminal::is_terminal(&std::io::stderr());
    if progress {
        eprintln!("metrics on {}", metrics.url());
    }
    let prepared = demo::prepare(demo::DemoOptions {
        records: args.records,
        dir: args.dir,
        seed: args.seed,
        progress,
        metrics_url: Some(metrics.url()),
    })
    .await?;
    let beside_cancel = CancellationToken::new();
    let beside = X::demo(args.extension, &prepared, beside_cancel.clone()).await?;
    let report = prepared.run().await?;
    print!("{}", report.table());
    if !args.json {
        for line in &beside.report {
            println!("{line}");
        }
    }
    if args.json {
        let mut summary = match serde_json::to_value(&report.summary)? {
            serde_json::Value::Object(map) => map,
            other => anyhow::bail!("the demo summary is not an object: {other}"),
        };
        summary.extend(beside.summary.clone());
        println!("{}", serde_json::Value::Object(summary));
    }
    if args.linger > 0 {
        if progress {
            eprintln!(
                "serving {} for {} s more (Ctrl-C ends it)",
                metrics.url(),
                args.linger
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.linger)) => {}
            _ = shutdown_signal() => {}
        }
    }
    beside_cancel.cancel();
    beside.stopped().await;
    metrics.shutdown().await;
    Ok(())
}

async fn run_serve<X: Extension>(args: ServeArgs<X>) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let cancel = CancellationToken::new();
    let metrics = metrics::serve(args.metrics_addr, &cancel)
        .await
        .context("--metrics-addr")?;
    // Stopped by its own token after the engine: it stays up while calls
    // in progress finish.
    let beside_cancel = CancellationToken::new();
    // Made before the engine, so what is served beside it can subscribe.
    let stats = StatsFeed::default();
    let beside = X::serve(args.extension, &config, &stats, beside_cancel.clone()).await?;
    let stop = cancel.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stop requested");
        stop.cancel();
    });
    let served = service::serve(config, stats, cancel).await;
    beside_cancel.cancel();
    beside.stopped().await;
    metrics.shutdown().await;
    served
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.ok();
}

async fn run_import(args: ImportArgs) -> anyhow::Result<()> {
    if let Some(action) = args.action {
        return run_import_action(action).await;
    }
    let (Some(file), Some(script)) = (args.file, args.script) else {
        anyhow::bail!("usage: dialcast import FILE --script NAME (see --help)");
    };
    let config = Config::load(&args.config)?;
    let store = service::open_store(&config).await?;
    let catalog = service::audio_catalog(&config.audio.roots)?;
    let trunk = config
        .trunk(&config.campaign.trunk)
        .context("the campaign trunk is not configured")?
        .settings();
    let script_path = config.scripts.dir.join(format!("{script}.toml"));
    let report = service::import_file(
        &*store,
        &catalog,
        &file,
        service::ImportTarget {
            organisation: &config.organisation.name,
            default_country: &config.organisation.default_country,
            trunk,
            calendar: config.organisation.calendar()?,
            settings: config.campaign_settings(&script),
            script_path: &script_path,
            campaign: args.campaign.as_deref(),
            archive_dir: &config.import_archive_dir(),
        },
        service::ImportMode {
            validate_only: args.validate_only,
            accept_partial: args.accept_partial,
        },
    )
    .await?;
    print_report(&report, args.json)?;
    refused(&report, args.validate_only)
}

/// Prints a report: issues on stderr, then the JSON object or the summary.
fn print_report(report: &imports::ValidationReport, json: bool) -> anyhow::Result<()> {
    for line in report.lines() {
        eprintln!("{line}");
    }
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        println!("{}", report.summary());
    }
    Ok(())
}

/// An error (exit status 1) when an import pass imported nothing because
/// rows fail.
fn refused(report: &imports::ValidationReport, validate_only: bool) -> anyhow::Result<()> {
    if validate_only || report.status == ImportStatus::Finished {
        return Ok(());
    }
    anyhow::bail!(
        "import {}: {} rows fail, so nothing was imported; fix the file and import it again, \
         or import the {} rows that pass with `dialcast import confirm {} --accept-partial`",
        report.import_id,
        report.will_fail,
        report.will_import,
        report.import_id
    )
}

async fn run_import_action(action: ImportAction) -> anyhow::Result<()> {
    match action {
        ImportAction::List { config, json } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let organisation = organisation_id(&store, &config).await?;
            let list = store.imports(organisation).await?;
            if json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                for i in &list {
                    println!(
                        "{:>6}  {:<10}  {:>9} rows  {:>9} imported  {:>7} failed  {}  → {}",
                        i.id,
                        i.status.as_str(),
                        i.records,
                        i.imported,
                        i.failed,
                        i.file_name,
                        i.campaign
                    );
                }
            }
        }
        ImportAction::Show { id, config, json } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let info = store.import_info(id).await?;
            if json {
                println!("{}", serde_json::to_string(&info)?);
            } else {
                println!(
                    "import {}: {} ({} bytes) into campaign {} with script {}: {}, {} rows, \
                     {} imported, {} failed{}",
                    info.id,
                    info.file_name,
                    info.file_size,
                    info.campaign,
                    info.script,
                    info.status.as_str(),
                    info.records,
                    info.imported,
                    info.failed,
                    info.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
            }
        }
        ImportAction::Confirm {
            id,
            accept_partial,
            config,
            json,
        } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let mut options = imports::PassOptions::new(&config.organisation.default_country);
            options.accept_partial = accept_partial;
            let report = imports::confirm(&*store, id, &options).await?;
            print_report(&report, json)?;
            refused(&report, false)?;
        }
        ImportAction::Cancel { id, config } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            imports::cancel(&*store, id).await?;
            println!("import {id} is cancelled");
        }
        ImportAction::Download { id, out, config } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let bytes = imports::download(&*store, id, &out).await?;
            println!("{} ({bytes} bytes)", out.display());
        }
    }
    Ok(())
}

/// The configured organisation's id (created if new).
async fn organisation_id(store: &SqliteStore, config: &Config) -> anyhow::Result<i64> {
    Ok(store
        .ensure_organisation(
            &config.organisation.name,
            &config.organisation.default_country,
        )
        .await?)
}

async fn run_blocklist(args: BlocklistArgs) -> anyhow::Result<()> {
    match args.action {
        BlocklistAction::Add {
            number,
            reason,
            by,
            config,
            json,
        } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let organisation = organisation_id(&store, &config).await?;
            let (number, outcome) = blocklist::add(
                &*store,
                organisation,
                &config.organisation.default_country,
                &number,
                &reason,
                by.as_deref(),
                now_ms(),
            )
            .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "number": number,
                        "added": outcome.added,
                        "records_blocked": outcome.records_blocked,
                    })
                );
            } else {
                println!(
                    "{number} is blocked{}; {} pending records stopped",
                    if outcome.added { "" } else { " (already was)" },
                    outcome.records_blocked
                );
            }
        }
        BlocklistAction::Remove {
            number,
            config,
            json,
        } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let organisation = organisation_id(&store, &config).await?;
            let (number, removed) = blocklist::remove(
                &*store,
                organisation,
                &config.organisation.default_country,
                &number,
            )
            .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "number": number, "removed": removed })
                );
            } else if removed {
                println!("{number} is no longer blocked");
            } else {
                println!("{number} was not blocked");
            }
        }
        BlocklistAction::List { config, json } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let organisation = organisation_id(&store, &config).await?;
            let list = store.blocklist(organisation).await?;
            if json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                for entry in &list {
                    println!("{}  {}", entry.number, entry.reason);
                }
            }
        }
    }
    Ok(())
}

/// The store of `config` (for writing) and the campaign called `name`.
/// Pauses or resumes a campaign or its forwarding under the same rules as
/// the portal's script controls (`campaign::control`).
async fn control_campaign(
    config: &std::path::Path,
    name: &str,
    control: Control,
) -> anyhow::Result<()> {
    let (store, campaign) = open_campaign(config, name).await?;
    control::apply(store.as_ref(), &campaign, control, now_ms()).await?;
    Ok(())
}

async fn open_campaign(
    config: &std::path::Path,
    name: &str,
) -> anyhow::Result<(Arc<SqliteStore>, crate::store::Campaign)> {
    let store = service::open_store(&Config::load(config)?).await?;
    let campaign = store.campaign_by_name(name).await?;
    Ok((store, campaign))
}

async fn run_campaign(args: CampaignArgs) -> anyhow::Result<()> {
    match args.action {
        CampaignAction::Start { name, config } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let campaign = store.campaign_by_name(&name).await?;
            store
                .set_campaign_state(campaign.id, CampaignState::Running, now_ms())
                .await?;
            println!("campaign {name} is running");
        }
        CampaignAction::Pause { name, config } => {
            control_campaign(&config, &name, Control::Pause).await?;
            println!("campaign {name} is paused: no new calls start; calls in progress finish");
        }
        CampaignAction::Resume { name, config } => {
            control_campaign(&config, &name, Control::Resume).await?;
            println!("campaign {name} is running again");
        }
        CampaignAction::PauseForwarding { name, config } => {
            control_campaign(&config, &name, Control::PauseForwarding).await?;
            println!("forwarding of campaign {name} is paused");
        }
        CampaignAction::ResumeForwarding { name, config } => {
            control_campaign(&config, &name, Control::ResumeForwarding).await?;
            println!("forwarding of campaign {name} is open again");
        }
        CampaignAction::Results { name, config, day } => {
            let config = Config::load(&config)?;
            let store = service::open_store(&config).await?;
            let campaign = store.campaign_by_name(&name).await?;
            let settings = ResultFileSettings::from_config(&config);
            let now = chrono::Utc::now();
            let day = day.unwrap_or_else(|| range::today(now, settings.time_zone));
            let script = store.script_of_campaign(campaign.id).await?;
            let files = result_files::write_script_day(
                &*store,
                &settings,
                &script,
                day,
                now.timestamp_millis(),
            )
            .await?;
            for file in files {
                println!("{}", file.path);
            }
        }
        CampaignAction::Status { name, config, json } => {
            let config = Config::load(&config)?;
            let store = service::open_store_read_only(&config).await?;
            let campaign = store.campaign_by_name(&name).await?;
            let status = store.campaign_status(campaign.id).await?;
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                println!(
                    "campaign {}: {} · {} records ({} pending, {} dialing, {} done) · {} attempts · {} reached the point of success",
                    status.name,
                    status.state,
                    status.records,
                    status.pending,
                    status.dialing,
                    status.done,
                    status.attempts,
                    status.success
                );
                for (state, count) in &status.statuses {
                    println!("  {state:<22} {count}");
                }
            }
        }
    }
    Ok(())
}

async fn run_stats(args: StatsArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let tz = config.organisation.time_zone.0;
    let now = chrono::Utc::now();
    let period = match (&args.day, &args.from, &args.to) {
        (_, Some(from), Some(to)) => range::instant_range(
            range::parse_time(from, tz).map_err(|e| anyhow::anyhow!("--from: {e}"))?,
            range::parse_time(to, tz).map_err(|e| anyhow::anyhow!("--to: {e}"))?,
        )
        .map_err(|e| anyhow::anyhow!(e))?,
        (day, _, _) => {
            let day = range::parse_day(day.as_deref().unwrap_or("today"), now, tz)
                .map_err(|e| anyhow::anyhow!("--day: {e}"))?;
            range::day_range(day, tz).with_context(|| format!("no range for day {day}"))?
        }
    };
    let store = service::open_store_read_only(&config).await?;
    let campaign = store.campaign_by_name(&args.name).await?;
    let report = stats::campaign_report(&*store, &campaign, period, tz, args.buckets)
        .await
        .context("cannot read the statistics (a database not yet opened by this version's serve or import has none)")?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "campaign {} (script {}) from {} to {}: {} attempts ({} dialled)",
        report.campaign, report.script, report.from, report.to, report.attempts, report.dialled
    );
    for (label, share) in [
        ("delivered", report.delivered),
        ("not reached", report.not_reached),
        ("invalid", report.invalid),
        ("other", report.other),
        ("forwarded", report.forwarded),
        ("called back", report.called_back),
    ] {
        println!("  {label:<12} {:>7} {:>6.1}%", share.count, share.percent);
    }
    let c = report.voice_completed;
    println!(
        "  voice completed {} of {} records ({:.1}%) · {} inbound · imported {:?}",
        c.done, c.records, c.percent, report.inbound, report.imported
    );
    for bucket in report.buckets.iter().flatten() {
        let n = &bucket.counters;
        println!(
            "  {} attempts {:>4} green {:>4} yellow {:>4} red {:>4} other {:>4}",
            bucket.start, n.attempts, n.green, n.yellow, n.red, n.other
        );
    }
    Ok(())
}

async fn run_results(args: ResultsArgs) -> anyhow::Result<()> {
    match args.action {
        ResultsAction::List { config, json } => {
            let config = Config::load(&config)?;
            let store = service::open_store_read_only(&config).await?;
            let files = store.result_files().await?;
            if json {
                println!("{}", serde_json::json!({ "files": files }));
                return Ok(());
            }
            let tz = config.organisation.time_zone.0;
            for file in files {
                let written = chrono::DateTime::from_timestamp_millis(file.written_at)
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                println!(
                    "{} {:<4} {:>10} B {:>6} rows  written {written}  {}",
                    file.day, file.format, file.size, file.rows, file.path
                );
            }
        }
    }
    Ok(())
}

async fn run_voicelogs(args: VoicelogsArgs) -> anyhow::Result<()> {
    use crate::store::VoicelogFilter;
    use crate::voicelog::access;
    match args.action {
        VoicelogsAction::List {
            script,
            record,
            limit,
            config,
            json,
        } => {
            let config = Config::load(&config)?;
            let store = service::open_store_read_only(&config).await?;
            let filter = VoicelogFilter {
                script,
                record_id: record,
                limit,
            };
            let logs = access::list(&*store, &filter).await?;
            if json {
                println!("{}", serde_json::json!({ "voicelogs": logs }));
                return Ok(());
            }
            let tz = config.organisation.time_zone.0;
            for log in logs {
                let started = chrono::DateTime::from_timestamp_millis(log.started_at)
                    .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                let secs = log
                    .duration_ms
                    .map_or("-".to_string(), |ms| format!("{:.2} s", ms as f64 / 1000.0));
                println!(
                    "{:>6}  {started}  {:<20} record {:<12} attempt {:>2}  {:>9}  {:<9} {}",
                    log.id, log.script, log.record_id, log.attempt_no, secs, log.state, log.path
                );
            }
        }
        VoicelogsAction::Get {
            id,
            out,
            config,
            json,
        } => {
            let config = Config::load(&config)?;
            let store = service::open_store_read_only(&config).await?;
            let dir = config.voicelog_dir();
            // Found and readable before an output file is created.
            let (_, source) = access::get(&*store, &dir, id)
                .await?
                .with_context(|| format!("no voicelog {id}"))?;
            std::fs::File::open(&source)
                .with_context(|| format!("cannot open {}", source.display()))?;
            let (info, bytes) = match &out {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    );
                    let copied = access::copy_to(&*store, &dir, id, &mut file).await?;
                    std::io::Write::flush(&mut file)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    copied
                }
                None => {
                    let mut stdout = std::io::stdout();
                    access::copy_to(&*store, &dir, id, &mut stdout).await?
                }
            };
            let line = serde_json::json!({ "voicelog": info, "bytes": bytes }).to_string();
            match (&out, json) {
                (Some(_), true) => println!("{line}"),
                (Some(path), false) => println!(
                    "voicelog {id} ({} record {}, attempt {}): {bytes} bytes to {}",
                    info.script,
                    info.record_id,
                    info.attempt_no,
                    path.display()
                ),
                (None, true) => eprintln!("{line}"),
                (None, false) => {}
            }
        }
    }
    Ok(())
}

fn run_amd(args: AmdArgs) -> anyhow::Result<()> {
    let AmdAction::Classify {
        files,
        json,
        config,
        script,
    } = args.action;
    let tuning = match &config {
        Some(path) => {
            let config = Config::load(path)?;
            config
                .amd_tuning()
                .for_script(script.as_deref().unwrap_or(""))
        }
        None => dialcast_media::AmdConfig::default(),
    };
    let mut failed = 0;
    for file in &files {
        match crate::amd_files::classify_file(tuning, file) {
            Ok(v) if json => println!("{}", serde_json::to_string(&v)?),
            Ok(v) => println!(
                "{}: {} at {} ms ({}){}",
                v.file,
                v.label,
                v.decision_ms,
                v.cause,
                v.beep_ms
                    .map_or(String::new(), |ms| format!("; beep at {ms} ms"))
            ),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "dialcast: {}",
                    anyhow::Error::from(e)
                        .chain()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(": ")
                );
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} files could not be classified",
        files.len()
    );
    Ok(())
}
