//! The baseline of the campaign benchmark: the bare dialer. It places the
//! same calls as the campaign with the `sip` and `media` crates alone — no
//! store, no script, no campaign — the way the `dialer` benchmark's dialcast
//! side does, and holds each answered call for the talk time the engine had
//! on the same record, sending a tone all along.
//!
//! It runs in a child process (`dialcast-loadtest bare-dialer`, hidden), so
//! its CPU is measured from outside exactly like `dialcast serve`'s, without
//! the callee farm that lives in the benchmark's own process. The protocol on
//! its standard streams: it prints `ready` once its SIP endpoint, media engine
//! and prompt are up; waits for a line on stdin; dials; prints one JSON
//! [`BareOutcome`] line; then waits for stdin to close before it exits, so the
//! parent takes its last CPU sample of an idle process.
//!
//! Pacing is the engine's: a channel semaphore of `channels` permits taken
//! before each call, and evenly spaced starts one every `ceil(1 s / cps)`
//! that never burst to catch up (`engine/src/campaign/pacing.rs`).

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dialcast_media::{
    Codec as MediaCodec, MediaConfig, MediaEngine, MediaEvent, Prompt, RemoteMedia,
};
use dialcast_sip::sdp::{Codec, LocalMedia, NegotiatedMedia};
use dialcast_sip::{CallEvent, CallRequest, EndCause, SipConfig, SipEndpoint, Transport};
use serde::{Deserialize, Serialize};

use super::child::{self, Proc};
use super::watch::{FarmWatch, FARM_SAMPLE};
use super::SideReport;
use crate::farm::Farm;

/// The caller ID both sides present.
pub const CALLER_ID: &str = "+31201234567";
/// How long the child may take to start its endpoint and media engine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the child's CPU and memory are read during the run.
const PROC_SAMPLE: Duration = Duration::from_secs(1);
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// One call for the bare dialer.
#[derive(Clone, Debug, PartialEq)]
pub struct BareCall {
    pub number: String,
    /// Hang up this long after the answer.
    pub hold: Duration,
    /// The status that counts as completed (the farm behaviour's).
    pub expected: String,
}

/// Settings of the child.
#[derive(Clone, Debug)]
pub struct BareArgs {
    pub target: SocketAddr,
    pub calls_file: PathBuf,
    pub cps: u32,
    pub channels: u32,
    pub ring_timeout: Duration,
    pub rtp_ports: (u16, u16),
    /// Tokio's multi-thread runtime (as `dialcast serve`) or one thread.
    pub multi_thread: bool,
}

/// What the child reports (one JSON line).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BareOutcome {
    pub calls: u64,
    pub completed: u64,
    pub failed: u64,
    pub answered: u64,
    /// Answer to end, summed over answered calls.
    pub talk_s_total: f64,
    /// Calls per status, in the engine's vocabulary.
    pub statuses: BTreeMap<String, u64>,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    pub rtp_late: u64,
}

// ---------------------------------------------------------------- parent side

/// Where and how the parent runs the child.
pub struct BareSide<'a> {
    pub exe: &'a Path,
    pub dir: &'a Path,
    pub cps: u32,
    pub channels: u32,
    pub ring_timeout_s: u64,
    pub rtp_ports: (u16, u16),
    pub multi_thread: bool,
    pub progress: bool,
}

/// Runs the bare dialer against `farm` and measures it. The report's
/// peer-side fields (peak channels, RTP the callee received) are filled in by
/// the caller from the farm's final stats.
pub fn run(side: &BareSide<'_>, farm: &Farm, calls: &[BareCall]) -> anyhow::Result<SideReport> {
    let calls_file = side.dir.join("bare-calls.txt");
    write_calls(&calls_file, calls)?;
    let mut child = spawn(side, farm.local_addr(), &calls_file)?;
    let lines = stdout_lines(&mut child)?;
    wait_for_ready(&lines, &mut child)?;
    let load_before = child::load_average();
    let cpu_before = child.sample()?;
    let threads_before = child.threads();
    let window = crate::procstat::Window::start();
    let mut stdin = child
        .child_mut()
        .stdin
        .take()
        .context("the bare dialer has no stdin")?;
    writeln!(stdin, "go").context("cannot start the bare dialer")?;
    let started = Instant::now();
    let mut watch = FarmWatch::default();
    let outcome = wait_for_outcome(&lines, &mut child, farm, &mut watch, side, calls.len())?;
    let cpu_after = child.sample()?;
    let threads_after = child.threads();
    let own = window.finish();
    let load_after = child::load_average();
    drop(stdin);
    child.wait(Duration::from_secs(30))?;
    let cpu_s = (cpu_after.cpu - cpu_before.cpu).as_secs_f64();
    let now = Instant::now();
    Ok(SideReport {
        calls: outcome.calls,
        completed: outcome.completed,
        failed: outcome.failed,
        answered: outcome.answered,
        achieved_cps: watch.achieved_cps(),
        cpu_s,
        cpu_s_per_call: cpu_s / outcome.calls.max(1) as f64,
        rss_mb_peak: cpu_after.rss_peak_mb,
        mean_talk_s: outcome.talk_s_total / outcome.answered.max(1) as f64,
        wall_s: watch.wall_s(now),
        run_s: started.elapsed().as_secs_f64(),
        cpu_s_by_thread: crate::procstat::threads_delta(&threads_before, &threads_after),
        statuses: outcome.statuses,
        load_before,
        load_after,
        farm_cpu_s: own.own_cpu_s,
        farm_cpu_s_by_thread: own.own_cpu_s_by_thread,
        machine_steal_s: own.machine_steal_s,
        machine_busy_ratio: own.machine_busy_ratio,
        udp_rcvbuf_errors: own.udp_rcvbuf_errors,
        ..SideReport::default()
    })
}

fn write_calls(path: &Path, calls: &[BareCall]) -> anyhow::Result<()> {
    let mut text = String::with_capacity(calls.len() * 40);
    for c in calls {
        text.push_str(&format!(
            "{};{};{}\n",
            c.number,
            c.hold.as_millis(),
            c.expected
        ));
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn spawn(side: &BareSide<'_>, target: SocketAddr, calls_file: &Path) -> anyhow::Result<Proc> {
    let log = side.dir.join("bare-dialer.log");
    let mut command = Command::new(side.exe);
    command
        .arg("bare-dialer")
        .arg("--target")
        .arg(target.to_string())
        .arg("--calls-file")
        .arg(calls_file)
        .arg("--cps")
        .arg(side.cps.to_string())
        .arg("--channels")
        .arg(side.channels.to_string())
        .arg("--ring-timeout-s")
        .arg(side.ring_timeout_s.to_string())
        .arg("--rtp-ports")
        .arg(format!("{}-{}", side.rtp_ports.0, side.rtp_ports.1))
        .arg("--runtime")
        .arg(if side.multi_thread {
            "multi"
        } else {
            "current"
        })
        // Its own quiet default (errors only), whatever this process was given.
        .env_remove("DIALCAST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(child::log_file(&log)?);
    Proc::spawn("the bare dialer", &mut command, &log)
}

/// The child's stdout, line by line, read on a thread of its own.
fn stdout_lines(child: &mut Proc) -> anyhow::Result<std::sync::mpsc::Receiver<String>> {
    let stdout = child
        .child_mut()
        .stdout
        .take()
        .context("the bare dialer has no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

fn wait_for_ready(
    lines: &std::sync::mpsc::Receiver<String>,
    child: &mut Proc,
) -> anyhow::Result<()> {
    match lines.recv_timeout(READY_TIMEOUT) {
        Ok(line) if line.trim() == "ready" => Ok(()),
        Ok(line) => anyhow::bail!("the bare dialer said {line:?} instead of ready"),
        Err(_) => {
            child.sample()?;
            anyhow::bail!(
                "the bare dialer was not ready within {READY_TIMEOUT:?}; see {}",
                child.log.display()
            )
        }
    }
}

fn wait_for_outcome(
    lines: &std::sync::mpsc::Receiver<String>,
    child: &mut Proc,
    farm: &Farm,
    watch: &mut FarmWatch,
    side: &BareSide<'_>,
    total: usize,
) -> anyhow::Result<BareOutcome> {
    let started = Instant::now();
    let mut next_sample = started;
    let mut next_progress = started;
    loop {
        let now = Instant::now();
        let stats = farm.stats();
        watch.sample(&stats, now);
        if now >= next_sample {
            child.sample()?;
            next_sample = now + PROC_SAMPLE;
        }
        if side.progress && now >= next_progress {
            next_progress = now + PROGRESS_EVERY;
            eprintln!(
                "[{:>6.1}s] bare dialer: {}/{total} calls placed, {} live at the farm",
                (now - started).as_secs_f64(),
                stats.total().calls,
                stats.active
            );
        }
        match lines.recv_timeout(FARM_SAMPLE) {
            Ok(line) => {
                return serde_json::from_str(&line)
                    .with_context(|| format!("the bare dialer's report {line:?}"))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                child.sample()?;
                anyhow::bail!(
                    "the bare dialer closed its output without a report; see {}",
                    child.log.display()
                );
            }
        }
    }
}

// ----------------------------------------------------------------- child side

/// The `bare-dialer` command: see the module documentation for its protocol.
pub fn child_main(args: &BareArgs) -> anyhow::Result<()> {
    let calls = read_calls(&args.calls_file)?;
    let runtime = crate::runtime(args.multi_thread)?;
    let stack = runtime.block_on(Stack::start(args))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line)?;
    let outcome = runtime.block_on(dial_all(&stack, args, calls));
    writeln!(out, "{}", serde_json::to_string(&outcome)?)?;
    out.flush()?;
    // Stay (idle) until the parent has taken its last sample.
    while stdin.read_line(&mut line)? > 0 {}
    stack.endpoint.shutdown();
    Ok(())
}

fn read_calls(path: &Path) -> anyhow::Result<Vec<BareCall>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| parse_call(line).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

/// `number;hold_ms;expected_status`.
fn parse_call(line: &str) -> anyhow::Result<BareCall> {
    let mut fields = line.split(';').map(str::trim);
    let (Some(number), Some(hold), Some(expected)) = (fields.next(), fields.next(), fields.next())
    else {
        anyhow::bail!("expected number;hold_ms;expected_status, got {line:?}");
    };
    let hold: u64 = hold
        .parse()
        .with_context(|| format!("bad hold_ms {hold:?}"))?;
    Ok(BareCall {
        number: number.to_string(),
        hold: Duration::from_millis(hold),
        expected: expected.to_string(),
    })
}

/// The SIP endpoint, media engine and prompt every call shares.
struct Stack {
    endpoint: SipEndpoint,
    media: MediaEngine,
    tone: Arc<Prompt>,
}

impl Stack {
    async fn start(args: &BareArgs) -> anyhow::Result<Stack> {
        let (endpoint, _inbound) = SipEndpoint::start(SipConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tcp: false,
            ..SipConfig::default()
        })
        .await?;
        // As `dialcast serve` configures its media engine.
        let media = MediaEngine::start(MediaConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: args.rtp_ports.0,
            port_max: args.rtp_ports.1,
            inactivity_timeout: Duration::from_secs(30),
            send_silence: true,
            metrics: true,
            ..MediaConfig::default()
        })?;
        Ok(Stack {
            endpoint,
            media,
            tone: Arc::new(Prompt::from_pcm(&crate::dialer::tone_8k(1000))),
        })
    }
}

#[derive(Default)]
struct Tally {
    completed: AtomicU64,
    answered: AtomicU64,
    talk_ms: AtomicU64,
    rtp_sent: AtomicU64,
    rtp_received: AtomicU64,
    rtp_late: AtomicU64,
    statuses: Mutex<BTreeMap<String, u64>>,
}

async fn dial_all(stack: &Stack, args: &BareArgs, calls: Vec<BareCall>) -> BareOutcome {
    let channels = Arc::new(tokio::sync::Semaphore::new(args.channels.max(1) as usize));
    let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(args.cps.max(1))));
    let tally = Arc::new(Tally::default());
    let total = calls.len() as u64;
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_free: Option<tokio::time::Instant> = None;
    for call in calls {
        let Ok(permit) = Arc::clone(&channels).acquire_owned().await else {
            break;
        };
        let now = tokio::time::Instant::now();
        let slot = next_free.filter(|f| *f > now).unwrap_or(now);
        next_free = Some(slot + interval);
        tokio::time::sleep_until(slot).await;
        let endpoint = stack.endpoint.clone();
        let media = stack.media.clone();
        let tone = Arc::clone(&stack.tone);
        let tally = Arc::clone(&tally);
        let target = format!("sip:{}@{}", call.number, args.target);
        let ring_timeout = args.ring_timeout;
        tasks.spawn(async move {
            let status = match one_call(
                &endpoint,
                &media,
                &target,
                &call,
                ring_timeout,
                tone,
                &tally,
            )
            .await
            {
                Ok(status) => status,
                Err(e) => format!("error: {e}"),
            };
            if status == call.expected {
                tally.completed.fetch_add(1, Ordering::Relaxed);
            }
            let mut statuses = tally.statuses.lock().unwrap_or_else(|p| p.into_inner());
            *statuses.entry(status).or_default() += 1;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let completed = tally.completed.load(Ordering::Relaxed);
    let statuses = tally
        .statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    BareOutcome {
        calls: total,
        completed,
        failed: total.saturating_sub(completed),
        answered: tally.answered.load(Ordering::Relaxed),
        talk_s_total: tally.talk_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        statuses,
        rtp_sent: tally.rtp_sent.load(Ordering::Relaxed),
        rtp_received: tally.rtp_received.load(Ordering::Relaxed),
        rtp_late: tally.rtp_late.load(Ordering::Relaxed),
    }
}

fn remote_media(m: &NegotiatedMedia) -> RemoteMedia {
    RemoteMedia {
        addr: m.remote,
        codec: match m.codec {
            Codec::Pcmu => MediaCodec::Pcmu,
            Codec::Pcma => MediaCodec::Pcma,
        },
        payload_type: m.payload_type,
        dtmf_payload_type: m.dtmf_payload_type,
        ssrc: m.ssrc,
    }
}

/// One call: ring, answer, send the tone for `call.hold`, hang up. Returns
/// its status in the engine's vocabulary: `success` when we hung up after the
/// hold (the bare dialer's point of success), `answered_no_success` when the
/// callee hung up first, else the SIP outcome (`busy`, `no_answer`, ...).
async fn one_call(
    endpoint: &SipEndpoint,
    media: &MediaEngine,
    target: &str,
    call: &BareCall,
    ring_timeout: Duration,
    tone: Arc<Prompt>,
    tally: &Tally,
) -> anyhow::Result<String> {
    let mut session = media.open_session()?;
    let local = LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: session.local_addr().port(),
        ssrc: Some(session.ssrc()),
    };
    let mut sip_call = endpoint
        .place_call(CallRequest {
            target: target.to_string(),
            transport: Transport::Udp,
            caller_id: Some(CALLER_ID.into()),
            username: None,
            password: None,
            local_media: local,
            ring_timeout,
            extra_headers: Vec::new(),
        })
        .await?;
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let mut answered_at: Option<Instant> = None;
    let end = loop {
        let hangup = async {
            match hangup_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = sip_call.next_event() => match event {
                Some(CallEvent::EarlyMedia(m) | CallEvent::MediaUpdated(m)) => {
                    session.set_remote(remote_media(&m));
                    session.set_hold(m.on_hold);
                }
                Some(CallEvent::Answered(m)) => {
                    answered_at = Some(Instant::now());
                    if let Some(m) = m {
                        session.set_remote(remote_media(&m));
                        session.set_hold(m.on_hold);
                        session.start_sending();
                        session.play(Arc::clone(&tone));
                        hangup_at = Some(tokio::time::Instant::now() + call.hold);
                    } else {
                        sip_call.hangup().await;
                    }
                }
                Some(CallEvent::Ended(end)) => break Some(end),
                Some(_) => {}
                None => break None,
            },
            event = session.next_event() => {
                if event == Some(MediaEvent::PlaybackFinished) {
                    session.play(Arc::clone(&tone));
                }
            }
            _ = hangup => {
                hangup_at = None;
                sip_call.hangup().await;
            }
        }
    };
    let stats = session.close().await;
    tally.rtp_sent.fetch_add(stats.rtp_sent, Ordering::Relaxed);
    tally
        .rtp_received
        .fetch_add(stats.rtp_received, Ordering::Relaxed);
    tally.rtp_late.fetch_add(stats.rtp_late, Ordering::Relaxed);
    if let Some(at) = answered_at {
        tally.answered.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        tally.talk_ms.fetch_add(ms, Ordering::Relaxed);
    }
    let Some(end) = end else {
        return Ok("failed".to_string());
    };
    Ok(match (answered_at, end.cause) {
        (Some(_), EndCause::LocalHangup) => "success".to_string(),
        (Some(_), _) => "answered_no_success".to_string(),
        (None, _) => end.status.as_str().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_lines_round_trip() {
        let dir = std::env::temp_dir().join(format!("bare-calls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("calls.txt");
        let calls = vec![
            BareCall {
                number: "+31610000001".into(),
                hold: Duration::from_millis(12_300),
                expected: "success".into(),
            },
            BareCall {
                number: "+31612000001".into(),
                hold: Duration::ZERO,
                expected: "busy".into(),
            },
        ];
        write_calls(&path, &calls).expect("written");
        assert_eq!(read_calls(&path).expect("read"), calls);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_bad_call_line_is_refused() {
        assert!(parse_call("+31610000001;abc;success").is_err());
        assert!(parse_call("+31610000001;100").is_err());
    }
}
