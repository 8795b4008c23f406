//! `dialcast-loadtest`: benchmarks that print one JSON object, the callee
//! farm, and the numbers that reach its callees.

/// The same allocator as the `dialcast` binary, so that the dialer measured
/// here (our SIP and media stacks, running in this process) allocates as it
/// does in production. The campaign benchmark's bare dialer and the callee
/// farm use it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dialcast_loadtest::campaign::bare::{self, BareArgs};
use dialcast_loadtest::campaign::{self, engine_side, CampaignBench};
use dialcast_loadtest::dialer::{self, DialerBench};
use dialcast_loadtest::farm::{self, Behaviour, Farm, FarmConfig, Mix};
use dialcast_loadtest::import;
use dialcast_loadtest::portal;
use dialcast_loadtest::rtp_floor::{self, FloorBench, Variant};
use dialcast_media::RtpSocketMode;

#[derive(Parser)]
#[command(
    name = "dialcast-loadtest",
    about = "Dialcast load drivers and benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The kernel's floor for RTP: N streams each way between two threads
    /// over loopback (172-byte packets every 20 ms, no other work), each
    /// variant in turn; prints one JSON object per run with each side's CPU
    /// per tick (one packet sent and one received) and whether the pace held.
    RtpFloor {
        /// Variants: a (socket per stream, sendto; as the media crate),
        /// a-connected, b (socket per stream, sendmmsg), c (one socket per
        /// side, sendmmsg/recvmmsg batches).
        #[arg(long, value_delimiter = ',', default_value = "a,c")]
        variants: Vec<Variant>,
        /// Stream counts, each run with every variant.
        #[arg(long, value_delimiter = ',', default_value = "2000,5000")]
        streams: Vec<usize>,
        /// The measured window of each run.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Warm-up before the window.
        #[arg(long, default_value_t = 3.0)]
        warmup: f64,
        /// (c) Datagrams per sendmmsg / recvmmsg.
        #[arg(long, default_value_t = 1024)]
        batch: usize,
        /// Do not ask for kernel receive timestamps (the media crate does).
        #[arg(long)]
        no_timestamps: bool,
        /// (c) Receive buffer of each shared socket, bytes.
        #[arg(long, default_value_t = 16 << 20)]
        shared_rcvbuf: usize,
    },
    /// Dial N calls at R calls/s against a SIPp UAS on loopback, then the same
    /// with SIPp's own UAC as the baseline, and compare.
    Dialer {
        #[arg(long)]
        calls: u64,
        #[arg(long)]
        cps: f64,
        #[arg(long, default_value_t = 1000)]
        hold_ms: u64,
        /// Two-way RTP: we send a tone, SIPp echoes it.
        #[arg(long)]
        rtp: bool,
        /// Print the JSON report only.
        #[arg(long)]
        json: bool,
        /// Run only our side.
        #[arg(long)]
        skip_baseline: bool,
        /// Rounds (ours, then SIPp's); each side's median round is reported.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// With --rtp: tcpdump this many seconds of steady state and measure
        /// both sides' RTP pacing on the wire (needs tcpdump).
        #[arg(long)]
        capture_secs: Option<u64>,
        /// With --rtp: run the answering-machine detector (default
        /// configuration) on every answered call, as a campaign with AMD on.
        #[arg(long)]
        amd: bool,
        /// With --rtp: record every answered call to a stereo WAV in DIR, from
        /// the answer to the end of the call, and compare each file's length
        /// with the call's talk time. The files are left in DIR.
        #[arg(long, value_name = "DIR")]
        voicelogs: Option<PathBuf>,
        /// Tokio runtime for our side: current (one thread, the default) or multi.
        #[arg(long, default_value = "current", value_parser = ["current", "multi"])]
        runtime: String,
        /// With --rtp: media scheduler threads (sessions spread round robin).
        #[arg(long, default_value_t = 1)]
        media_threads: usize,
        /// With --rtp: per_call (a socket per call) or per_thread (one per
        /// media thread, batched sends and receives).
        #[arg(long, default_value = "per_call", value_parser = parse_rtp_socket)]
        rtp_socket: RtpSocketMode,
        /// With --rtp-socket per_thread: UDP GSO sends and GRO receives
        /// (`[media] udp_offload`).
        #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
        udp_offload: bool,
        /// With --rtp: loop this audio file (e.g. a recorded greeting)
        /// instead of the tone, on both sides; SIPp echoes it, so --amd
        /// hears speech.
        #[arg(long, value_name = "FILE")]
        prompt: Option<PathBuf>,
        /// Where SIPp's logs go (default: a new temporary folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Run a campaign of N records with `dialcast serve` against the callee
    /// farm, then the bare dialer (our SIP and media crates alone) placing the
    /// same calls with the same talk times, and report the engine's CPU
    /// overhead per call. Needs the `dialcast` binary next to this one
    /// (`cargo build --release -p dialcast-portal-api`).
    Campaign {
        /// Records to import and dial (one call each).
        #[arg(long, default_value_t = 20_000)]
        records: usize,
        /// The trunk's max_cps (and the bare dialer's rate).
        #[arg(long, default_value_t = 200)]
        cps: u32,
        /// The trunk's max_channels (and the bare dialer's limit).
        #[arg(long, default_value_t = 2000)]
        channels: u32,
        /// The callees, as weights (see `numbers`).
        #[arg(long, default_value = "human=100")]
        mix: Mix,
        /// Seed of the numbers, the import file and the farm.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Detect answering machines in the campaign (the bare dialer does not).
        #[arg(long)]
        amd: bool,
        /// Both sides cancel a call that rings this long.
        #[arg(long, default_value_t = 60)]
        ring_timeout_s: u64,
        /// Print the JSON report only (no table, no progress).
        #[arg(long)]
        json: bool,
        /// Run only the campaign.
        #[arg(long)]
        skip_baseline: bool,
        /// Tokio runtime of the bare dialer: multi (as the dialcast binary,
        /// the default) or current (one thread, as the dialer benchmark).
        #[arg(long, default_value = "multi", value_parser = ["current", "multi"])]
        bare_runtime: String,
        /// Keep the work files (config, database, logs, result file) in DIR,
        /// which must be new or empty.
        #[arg(long, value_name = "DIR")]
        keep_dir: Option<PathBuf>,
        /// The dialcast binary (default: next to this program).
        #[arg(long)]
        dialcast: Option<PathBuf>,
        /// Where payment_reminder.toml is (default: the source tree's
        /// scripts/examples).
        #[arg(long)]
        scripts_dir: Option<PathBuf>,
        /// The script the records name: payment_reminder (about 17 s of
        /// prompts) or short_reminder (about 10 s: the message, then
        /// hang-up), or any script in --scripts-dir that reads the same
        /// fields.
        #[arg(long, default_value = "payment_reminder")]
        script: String,
        /// Record the campaign's calls under this voicelog policy (none,
        /// all, from_success, forwarded) and report each recording's length
        /// against its call's talk time.
        #[arg(long, default_value = "none", value_parser = ["none", "all", "from_success", "forwarded"])]
        voicelogs: String,
        /// The service's RTP scheduler threads (`[media] threads`).
        #[arg(long, default_value_t = 1)]
        media_threads: usize,
        /// RTP sockets of the service (`[media] rtp_socket`) and the farm:
        /// per_call, or per_thread (one per media thread, batched).
        #[arg(long, default_value = "per_call", value_parser = parse_rtp_socket)]
        rtp_socket: RtpSocketMode,
        /// The service's `[media] udp_offload` (UDP GSO sends and GRO
        /// receives on its per-thread sockets).
        #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
        engine_udp_offload: bool,
        /// The same for the callee farm: on makes the farm cheaper, so more
        /// of the machine is left to the engine; the engine's own cost is
        /// set by --engine-udp-offload.
        #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
        farm_udp_offload: bool,
    },
    /// Generate a delivery file of N rows and import it with the `dialcast`
    /// binary into a fresh SQLite database (validate-only first, then the
    /// import); prints rows/s and the child's peak RSS as one JSON object.
    Import {
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Keep the work files (file, config, database) in DIR, which must be
        /// new or empty.
        #[arg(long, value_name = "DIR")]
        keep_dir: Option<PathBuf>,
        /// The dialcast binary (default: next to this program).
        #[arg(long)]
        dialcast: Option<PathBuf>,
        /// Where payment_reminder.toml is (default: the source tree's
        /// scripts/examples).
        #[arg(long)]
        scripts_dir: Option<PathBuf>,
        /// Print the JSON report only.
        #[arg(long)]
        json: bool,
    },
    /// The portal API's dashboard and statistics endpoints under wrk, with a
    /// store holding a campaign history of N attempts (written by the portal
    /// crate's `fill_history` example through the engine's store API);
    /// prints one JSON object with each endpoint's latency percentiles.
    Portal {
        /// Attempts in the store's history.
        #[arg(long, default_value_t = 10_000_000)]
        attempts: u64,
        /// The history ends now and starts this many days before.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// wrk's run per endpoint, seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u32,
        /// wrk's open connections.
        #[arg(long, default_value_t = 8)]
        connections: u32,
        /// Keep the work files in DIR; a store already filled there is
        /// measured again without filling.
        #[arg(long, value_name = "DIR")]
        keep_dir: Option<PathBuf>,
        /// The dialcast binary (default: next to this program).
        #[arg(long)]
        dialcast: Option<PathBuf>,
        /// The fill_history example (default: examples/ next to this program;
        /// `cargo build --release -p dialcast-portal-api --example fill_history`).
        #[arg(long)]
        fill_history: Option<PathBuf>,
        /// Where payment_reminder.toml is (default: the source tree's
        /// scripts/examples).
        #[arg(long)]
        scripts_dir: Option<PathBuf>,
        /// Print the JSON report only.
        #[arg(long)]
        json: bool,
    },
    /// The campaign benchmark's baseline, run as its child process: dials
    /// the calls of a file (number;hold_ms;expected_status per line).
    #[command(hide = true)]
    BareDialer {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        calls_file: PathBuf,
        #[arg(long)]
        cps: u32,
        #[arg(long)]
        channels: u32,
        #[arg(long)]
        ring_timeout_s: u64,
        #[arg(long, value_parser = parse_port_range)]
        rtp_ports: (u16, u16),
        #[arg(long, default_value = "multi", value_parser = ["current", "multi"])]
        runtime: String,
    },
    /// Run the callee farm: a SIP UAS that answers like humans, voicemail,
    /// busy lines, ... chosen by the dialled number (see `numbers`), until
    /// Ctrl-C; prints its stats as one JSON line on exit.
    Farm {
        /// SIP address (UDP) to listen on.
        #[arg(long, default_value = "127.0.0.1:5090")]
        bind: SocketAddr,
        /// Also listen on TCP, same port.
        #[arg(long)]
        tcp: bool,
        /// RTP port range, MIN-MAX (RTP binds to the --bind address).
        #[arg(long, default_value = "20000-29999", value_parser = parse_port_range)]
        rtp_ports: (u16, u16),
        /// Print the stats as a JSON line every SECS seconds.
        #[arg(long, value_name = "SECS")]
        json_stats_every: Option<u64>,
        /// Behaviour of numbers that match no prefix.
        #[arg(long, default_value = "invalid")]
        unknown: Behaviour,
        /// DTMF keys presses_keys callees press (in-band).
        #[arg(long, default_value = "1")]
        keys: String,
        /// When presses_keys callees press them, in ms after the answer.
        #[arg(long, default_value_t = 6000)]
        keys_after_ms: u64,
        /// When hangup_halfway callees hang up, in ms after the answer.
        #[arg(long, default_value_t = 1500)]
        hangup_after_ms: u64,
        /// How long slow_answer callees ring, in ms.
        #[arg(long, default_value_t = 6000)]
        slow_ring_ms: u64,
        /// Where the clips are (default: the crate's audio/ folder).
        #[arg(long)]
        audio_dir: Option<PathBuf>,
        /// Write what voicemail callees hear after the beep, one WAV per call.
        #[arg(long)]
        record_dir: Option<PathBuf>,
        /// Seed of the per-call choices (ring time, greeting).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print `number,behaviour` lines: COUNT numbers of the farm in the
    /// proportions of MIX, the same for the same seed.
    Numbers {
        /// Weights, e.g. human=50,voicemail=15,busy=5.
        #[arg(long, default_value = farm::DEFAULT_MIX)]
        mix: Mix,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print a header line first (number,behaviour,expected_status) and
        /// add the status a script caller should record.
        #[arg(long)]
        with_status: bool,
    },
}

fn parse_on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?}: on or off")),
    }
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

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DIALCAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Dialer {
            calls,
            cps,
            hold_ms,
            rtp,
            json,
            skip_baseline,
            repeat,
            capture_secs,
            amd,
            voicelogs,
            media_threads,
            rtp_socket,
            udp_offload,
            prompt,
            runtime,
            work_dir,
        } => {
            if cps <= 0.0 || calls == 0 {
                anyhow::bail!("--calls and --cps must be positive");
            }
            if (amd || voicelogs.is_some() || prompt.is_some()) && !rtp {
                anyhow::bail!(
                    "--amd, --voicelogs and --prompt need --rtp (they work on the call's audio)"
                );
            }
            let work_dir = work_dir.unwrap_or_else(|| {
                std::env::temp_dir().join(format!("dialcast-loadtest-{}", std::process::id()))
            });
            let report = dialer::run(&DialerBench {
                calls,
                cps,
                hold: Duration::from_millis(hold_ms),
                rtp,
                skip_baseline,
                multi_thread: runtime == "multi",
                repeat,
                capture_secs,
                amd,
                voicelogs,
                media_threads,
                rtp_socket,
                udp_offload,
                prompt,
                work_dir,
            })?;
            let line = serde_json::to_string(&report)?;
            if !json {
                eprintln!("{}", serde_json::to_string_pretty(&report)?);
            }
            println!("{line}");
        }
        Command::Campaign {
            records,
            cps,
            channels,
            mix,
            seed,
            amd,
            ring_timeout_s,
            json,
            skip_baseline,
            bare_runtime,
            keep_dir,
            dialcast,
            scripts_dir,
            script,
            voicelogs,
            media_threads,
            rtp_socket,
            engine_udp_offload,
            farm_udp_offload,
        } => {
            if records == 0 || cps == 0 || channels == 0 {
                anyhow::bail!("--records, --cps and --channels must be positive");
            }
            let report = campaign::run(&CampaignBench {
                records,
                cps,
                channels,
                mix,
                seed,
                amd,
                ring_timeout_s,
                skip_baseline,
                bare_multi_thread: bare_runtime == "multi",
                dialcast: engine_side::find_dialcast(dialcast)?,
                loadtest_exe: std::env::current_exe()
                    .context("cannot tell where dialcast-loadtest is")?,
                scripts_dir: scripts_dir.unwrap_or_else(campaign::default_scripts_dir),
                script,
                keep_dir,
                progress: !json,
                voicelogs,
                media_threads,
                rtp_socket,
                engine_udp_offload,
                farm_udp_offload,
            })?;
            if !json {
                eprint!("{}", report.table());
            }
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Import {
            rows,
            seed,
            keep_dir,
            dialcast,
            scripts_dir,
            json,
        } => {
            anyhow::ensure!(rows > 0, "--rows must be positive");
            let report = import::run(&import::ImportBench {
                rows,
                seed,
                dialcast: engine_side::find_dialcast(dialcast)?,
                scripts_dir: scripts_dir.unwrap_or_else(campaign::default_scripts_dir),
                keep_dir,
                progress: !json,
            })?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Portal {
            attempts,
            days,
            seconds,
            connections,
            keep_dir,
            dialcast,
            fill_history,
            scripts_dir,
            json,
        } => {
            let fill_history = match fill_history {
                Some(path) => path,
                None => std::env::current_exe()?
                    .with_file_name("examples")
                    .join("fill_history"),
            };
            anyhow::ensure!(
                fill_history.is_file(),
                "no fill_history at {}: `cargo build --release -p dialcast-portal-api \
                 --example fill_history`, or pass --fill-history PATH",
                fill_history.display()
            );
            let report = portal::run(&portal::PortalBench {
                attempts,
                days,
                seconds,
                connections,
                dialcast: engine_side::find_dialcast(dialcast)?,
                fill_history,
                scripts_dir: scripts_dir.unwrap_or_else(campaign::default_scripts_dir),
                keep_dir,
                progress: !json,
            })?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::BareDialer {
            target,
            calls_file,
            cps,
            channels,
            ring_timeout_s,
            rtp_ports,
            runtime,
        } => bare::child_main(&BareArgs {
            target,
            calls_file,
            cps,
            channels,
            ring_timeout: Duration::from_secs(ring_timeout_s),
            rtp_ports,
            multi_thread: runtime == "multi",
        })?,
        Command::Farm {
            bind,
            tcp,
            rtp_ports,
            json_stats_every,
            unknown,
            keys,
            keys_after_ms,
            hangup_after_ms,
            slow_ring_ms,
            audio_dir,
            record_dir,
            seed,
        } => {
            let mut config = FarmConfig::new(bind);
            config.tcp = tcp;
            config.media.port_min = rtp_ports.0;
            config.media.port_max = rtp_ports.1;
            config.unknown = unknown;
            config.timings.keys = keys;
            config.timings.keys_after = Duration::from_millis(keys_after_ms);
            config.timings.hangup_after = Duration::from_millis(hangup_after_ms);
            config.timings.slow_ring = Duration::from_millis(slow_ring_ms);
            if let Some(dir) = audio_dir {
                config.audio_dir = dir;
            }
            config.record_dir = record_dir;
            config.seed = seed;
            let every = json_stats_every.filter(|s| *s > 0).map(Duration::from_secs);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?
                .block_on(run_farm(config, every))?;
        }
        Command::RtpFloor {
            variants,
            streams,
            seconds,
            warmup,
            batch,
            no_timestamps,
            shared_rcvbuf,
        } => {
            for &n in &streams {
                for &variant in &variants {
                    let report = rtp_floor::run(&FloorBench {
                        variant,
                        streams: n,
                        seconds,
                        warmup,
                        batch,
                        timestamps: !no_timestamps,
                        shared_rcvbuf,
                    })?;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{}", serde_json::to_string(&report)?)?;
                    out.flush()?;
                }
            }
        }
        Command::Numbers {
            mix,
            count,
            seed,
            with_status,
        } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if with_status {
                writeln!(out, "number,behaviour,expected_status")?;
            }
            for (number, behaviour) in farm::numbers(&mix, count, seed) {
                if with_status {
                    writeln!(out, "{number},{behaviour},{}", behaviour.expected_status())?;
                } else {
                    writeln!(out, "{number},{behaviour}")?;
                }
            }
            out.flush()?;
        }
    }
    Ok(())
}

/// Serves calls until Ctrl-C, printing stats every `every`, and once more
/// at the end.
async fn run_farm(config: FarmConfig, every: Option<Duration>) -> anyhow::Result<()> {
    let farm = Farm::start(config).await?;
    eprintln!(
        "dialcast-loadtest: callee farm listening on {}",
        farm.local_addr()
    );
    for (behaviour, prefix) in farm::PREFIXES {
        eprintln!(
            "  {prefix}NNNNNN  {behaviour:<16} (caller should record {})",
            behaviour.expected_status()
        );
    }
    let mut tick = every.map(|d| tokio::time::interval_at(tokio::time::Instant::now() + d, d));
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                signal.context("cannot wait for Ctrl-C")?;
                break;
            }
            _ = async {
                match tick.as_mut() {
                    Some(t) => { t.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => print_stats(&farm.stats())?,
        }
    }
    eprintln!("dialcast-loadtest: stopping the farm");
    let stats = farm.shutdown().await;
    eprintln!("{}", serde_json::to_string_pretty(&stats)?);
    print_stats(&stats)
}

fn print_stats(stats: &farm::FarmStats) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(stats)?)?;
    out.flush()?;
    Ok(())
}
