//! `dialcast-loadtest`: benchmarks that print one JSON object.

use std::path::PathBuf;

use std::time::Duration;

use clap::{Parser, Subcommand};
use dialcast_loadtest::dialer::{self, DialerBench};

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
        /// Tokio runtime for our side: current (one thread, the default) or multi.
        #[arg(long, default_value = "current", value_parser = ["current", "multi"])]
        runtime: String,
        /// Where SIPp's logs go (default: a new temporary folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
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
            runtime,
            work_dir,
        } => {
            if cps <= 0.0 || calls == 0 {
                anyhow::bail!("--calls and --cps must be positive");
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
                work_dir,
            })?;
            let line = serde_json::to_string(&report)?;
            if !json {
                eprintln!("{}", serde_json::to_string_pretty(&report)?);
            }
            println!("{line}");
        }
    }
    Ok(())
}
