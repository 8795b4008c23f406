//! The dialer benchmark: our UAC (the `sip` and `media` crates, as the engine uses
//! them) against a SIPp UAS on loopback, and in the same run SIPp's own UAC against
//! the same kind of UAS as the baseline.
//!
//! Both sides are measured the same way: calls that were answered and ended by our
//! BYE count as completed; CPU is the caller process's user+system time from
//! `/proc`, divided by the calls placed; memory is the caller's peak RSS;
//! `achieved_cps` is completed calls over (wall time − hold time).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dialcast_media::{
    AmdConfig, Codec as MediaCodec, MediaConfig, MediaEngine, MediaEvent, Prompt, RemoteMedia,
};
use dialcast_sip::sdp::{Codec, LocalMedia};
use dialcast_sip::{CallEvent, CallRequest, EndCause, SipConfig, SipEndpoint, Transport};
use serde::Serialize;

use crate::procstat;
use crate::sipp::{self, Sipp};

/// What to run.
#[derive(Clone, Debug)]
pub struct DialerBench {
    pub calls: u64,
    pub cps: f64,
    pub hold: Duration,
    pub rtp: bool,
    /// Skip the SIPp baseline (to profile our side alone).
    pub skip_baseline: bool,
    /// Run our side on tokio's multi-thread runtime instead of one thread.
    pub multi_thread: bool,
    /// Rounds to run (each side's median round is reported).
    pub repeat: u32,
    /// With RTP: capture this many seconds of steady state with tcpdump and
    /// measure both sides' pacing on the wire.
    pub capture_secs: Option<u64>,
    /// With RTP: every answered call runs the answering-machine detector
    /// (default configuration) on the echoed audio, as a campaign with AMD on.
    pub amd: bool,
    /// With RTP: every answered call records both directions to a stereo
    /// WAV in this folder, from the answer to the end of the call, as a
    /// voicelog policy of `all` does.
    pub voicelogs: Option<std::path::PathBuf>,
    /// With RTP: media scheduler threads, the sessions spread over them.
    pub media_threads: usize,
    /// With `rtp`: a socket per call or one per media thread.
    pub rtp_socket: dialcast_media::RtpSocketMode,
    /// With a socket per thread: UDP GSO sends and GRO receives.
    pub udp_offload: bool,
    /// With RTP: the audio both callers send, looped (a WAV or other file
    /// the media crate decodes); `None` sends a 440 Hz tone. A recorded
    /// greeting makes the echo speech, so the detector does its full work.
    pub prompt: Option<std::path::PathBuf>,
    pub work_dir: std::path::PathBuf,
}

/// The audio our calls send (and SIPp's baseline streams): `bench.prompt`
/// decoded at 8 kHz, else one second of tone.
fn caller_audio(bench: &DialerBench) -> anyhow::Result<Prompt> {
    match &bench.prompt {
        Some(path) => Prompt::load(path).with_context(|| format!("--prompt {}", path.display())),
        None => Ok(Prompt::from_pcm(&tone_8k(1000))),
    }
}

/// One side's figures (the JSON contract of `dialcast-loadtest dialer`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SideReport {
    pub calls: u64,
    pub completed: u64,
    pub failed: u64,
    pub achieved_cps: f64,
    pub peak_concurrent: u64,
    /// Late packets / sent packets; null when RTP was off or not measurable.
    pub rtp_late_ratio: Option<f64>,
    pub cpu_s_per_call: f64,
    pub rss_mb_peak: f64,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    /// Packets our sockets refused to send (dialcast only).
    pub rtp_send_errors: u64,
    /// Why calls failed, by cause.
    pub failures: BTreeMap<String, u64>,
    /// RTP pacing seen on the wire (with `--capture-secs`), same method both sides.
    pub wire: Option<crate::wire::WirePacing>,
    /// With `--amd` (dialcast only): the detector's verdicts, by label, and
    /// beeps reported.
    pub amd: Option<AmdTally>,
    /// With `--voicelogs` (dialcast only): the recordings against talk time.
    pub voicelogs: Option<VoicelogTally>,
    /// CPU seconds the hypervisor took from this machine (both processors)
    /// during the side's run (`/proc/stat` steal): on a VM, time in which
    /// no thread of ours could run however urgent; null where unknown.
    pub machine_steal_s: Option<f64>,
    /// Datagrams our shared RTP sockets received that matched no call
    /// (`--rtp-socket per_thread`; 0 with a socket per call).
    pub rtp_unmatched: Option<u64>,
    /// UDP datagrams the kernel dropped on a full receive buffer during the
    /// run, machine-wide (`RcvbufErrors`: our sockets and SIPp's alike).
    pub udp_rcvbuf_errors: Option<u64>,
}

/// What the detector said over a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AmdTally {
    pub verdicts: BTreeMap<&'static str, u64>,
    pub beeps: u64,
}

/// The recordings of a run, each compared with its call's talk time (the
/// instant of the answer to the instant the call ended, as the engine
/// records voicelogs); the WAV's length is read from its size.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VoicelogTally {
    /// WAV files found after their session closed.
    pub files: u64,
    /// Recordings that could not start or whose file is missing.
    pub errors: u64,
    pub bytes: u64,
    pub talk_s_total: f64,
    /// |WAV length − talk time|, mean and maximum, in milliseconds.
    pub length_error_ms_mean: f64,
    pub length_error_ms_max: f64,
    /// Recordings off by more than one 20 ms frame.
    pub over_one_frame: u64,
    /// 20 ms frames written as silence because their audio never reached the writer.
    pub frames_filled: u64,
    /// Blocks the media thread dropped on a full recorder queue.
    pub blocks_dropped: u64,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct DialerReport {
    pub benchmark: &'static str,
    pub calls: u64,
    pub cps: f64,
    pub hold_ms: u64,
    pub rtp: bool,
    /// Whether our calls ran the answering-machine detector.
    pub amd: bool,
    /// Whether our calls were recorded.
    pub voicelogs: bool,
    /// The file both callers looped instead of the tone (`--prompt`).
    pub prompt: Option<String>,
    /// With `rtp`: `per_call` or `per_thread` sockets.
    pub rtp_socket: &'static str,
    /// With `per_thread`: UDP GSO / GRO on.
    pub udp_offload: bool,
    pub runtime: &'static str,
    pub machine: crate::Machine,
    pub dialcast: SideReport,
    pub sipp: Option<SideReport>,
    /// CPU per call of every round, in order.
    pub rounds: Vec<Round>,
    /// dialcast / SIPp, per figure (for CPU and memory, lower is better).
    pub ratios: BTreeMap<&'static str, f64>,
}

/// CPU per call of one round: (dialcast, SIPp or 0 when skipped).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Round {
    pub dialcast_cpu_s_per_call: f64,
    pub sipp_cpu_s_per_call: f64,
}

/// Runs the benchmark `bench.repeat` times, our side then the baseline each
/// round, each against a fresh UAS; reports each side's round with the median
/// CPU per call (the machine is shared and one round's figures vary by ±10 %).
pub fn run(bench: &DialerBench) -> anyhow::Result<DialerReport> {
    let mut ours_runs = Vec::new();
    let mut baseline_runs = Vec::new();
    for _ in 0..bench.repeat.max(1) {
        ours_runs.push(run_dialcast(bench)?);
        if !bench.skip_baseline {
            baseline_runs.push(run_sipp_baseline(bench)?);
        }
    }
    let rounds = ours_runs
        .iter()
        .enumerate()
        .map(|(i, o)| Round {
            dialcast_cpu_s_per_call: o.cpu_s_per_call,
            sipp_cpu_s_per_call: baseline_runs.get(i).map_or(0.0, |b| b.cpu_s_per_call),
        })
        .collect();
    let ours = median_by_cpu(ours_runs).context("no run")?;
    let baseline = median_by_cpu(baseline_runs);
    let mut ratios = BTreeMap::new();
    if let Some(b) = &baseline {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        ratios.insert("achieved_cps", ratio(ours.achieved_cps, b.achieved_cps));
        ratios.insert(
            "cpu_s_per_call",
            ratio(ours.cpu_s_per_call, b.cpu_s_per_call),
        );
        ratios.insert("rss_mb_peak", ratio(ours.rss_mb_peak, b.rss_mb_peak));
        if let (Some(a), Some(c)) = (ours.rtp_late_ratio, b.rtp_late_ratio) {
            ratios.insert("rtp_late_ratio", ratio(a, c));
        }
        if let (Some(a), Some(c)) = (ours.wire, b.wire) {
            ratios.insert(
                "wire_gap_over_25ms_ratio",
                ratio(a.gap_over_25ms_ratio, c.gap_over_25ms_ratio),
            );
        }
    }
    Ok(DialerReport {
        benchmark: "dialer",
        calls: bench.calls,
        cps: bench.cps,
        hold_ms: u64::try_from(bench.hold.as_millis()).unwrap_or(u64::MAX),
        rtp: bench.rtp,
        amd: bench.amd,
        voicelogs: bench.voicelogs.is_some(),
        prompt: bench.prompt.as_ref().map(|p| p.display().to_string()),
        rtp_socket: crate::campaign::engine_side::rtp_socket_name(bench.rtp_socket),
        udp_offload: bench.udp_offload,
        runtime: if bench.multi_thread {
            "multi"
        } else {
            "current"
        },
        machine: crate::Machine::describe(),
        dialcast: ours,
        sipp: baseline,
        rounds,
        ratios,
    })
}

type Capture = Option<(
    std::thread::JoinHandle<anyhow::Result<()>>,
    std::path::PathBuf,
)>;

/// Starts a tcpdump of the RTP going to the callee once the run reaches its
/// steady state (all calls up: after one hold time), if asked for.
fn start_capture(bench: &DialerBench, media_port: u16, side: &str) -> Capture {
    let secs = bench.capture_secs.filter(|_| bench.rtp)?;
    let path = bench.work_dir.join(format!("{side}-rtp.pcap"));
    let delay = bench.hold + Duration::from_millis(300);
    let handle = crate::wire::capture_later(media_port, delay, Duration::from_secs(secs), &path);
    Some((handle, path))
}

fn finish_capture(capture: Capture) -> anyhow::Result<Option<crate::wire::WirePacing>> {
    let Some((handle, path)) = capture else {
        return Ok(None);
    };
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the capture thread panicked"))??;
    crate::wire::analyze(&path).map(Some)
}

/// The run with the median CPU per call (the upper one of two middles).
fn median_by_cpu(mut runs: Vec<SideReport>) -> Option<SideReport> {
    runs.sort_by(|a, b| a.cpu_s_per_call.total_cmp(&b.cpu_s_per_call));
    let middle = runs.len() / 2;
    runs.into_iter().nth(middle)
}

/// Starts the SIPp callee on a free port; returns it and its address.
fn start_uas(bench: &DialerBench, name: &str) -> anyhow::Result<(Sipp, SocketAddr, u16)> {
    let port = sipp::free_udp_port()?;
    let media_port = sipp::free_udp_port()?;
    let mut args = sipp::base_args(
        &sipp::scenario("uas-answer-until-bye.xml"),
        port,
        media_port,
    );
    if bench.rtp {
        args.push("-rtp_echo".into());
        // One socket echoes every call's RTP: give it room for bursts.
        args.push("-rtp_buffsize".into());
        args.push("4194304".into());
    }
    let uas = Sipp::spawn(&args, &bench.work_dir.join(name))?;
    // Give it a moment to bind.
    std::thread::sleep(Duration::from_millis(300));
    Ok((
        uas,
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        media_port,
    ))
}

fn run_dialcast(bench: &DialerBench) -> anyhow::Result<SideReport> {
    let (mut uas, target, media_port) = start_uas(bench, "dialcast-uas")?;
    let capture = start_capture(bench, media_port, "dialcast");
    // Call control runs on one thread (the media engine has its own), as in
    // the dialer; `--runtime multi` measures a work-stealing runtime instead.
    let runtime = crate::runtime(bench.multi_thread)?;
    let cpu_before = procstat::sample(std::process::id()).context("no /proc/self")?;
    let steal_before = procstat::machine_steal();
    let started = Instant::now();
    let drops_before = crate::rtp_floor::udp_rcvbuf_errors();
    let (mut report, media) = runtime.block_on(drive(bench, target))?;
    report.udp_rcvbuf_errors =
        Some(crate::rtp_floor::udp_rcvbuf_errors().saturating_sub(drops_before));
    report.machine_steal_s = steal_since(steal_before);
    report.wall_s = started.elapsed().as_secs_f64();
    drop(runtime);
    let cpu_after = procstat::sample(std::process::id()).context("no /proc/self")?;
    report.cpu_s = (cpu_after.cpu - cpu_before.cpu).as_secs_f64();
    report.cpu_s_per_call = report.cpu_s / bench.calls.max(1) as f64;
    report.rss_mb_peak = cpu_after.rss_peak_mb;
    report.wire = finish_capture(capture)?;
    report.achieved_cps =
        report.completed as f64 / (report.wall_s - bench.hold.as_secs_f64()).max(0.001);
    if let Some(media) = media {
        // Outside the measured window: let parked datagrams expire (500 ms)
        // and the media thread's housekeeping count them.
        if bench.rtp_socket == dialcast_media::RtpSocketMode::PerThread {
            std::thread::sleep(Duration::from_millis(700));
        }
        report.rtp_unmatched = Some(media.unmatched_datagrams());
    }
    if !uas.is_running() {
        anyhow::bail!(
            "the SIPp callee died during the run; see its logs in {}",
            uas.work_dir.display()
        );
    }
    Ok(report)
}

#[derive(Default)]
struct Counters {
    completed: AtomicU64,
    failed: AtomicU64,
    active: AtomicU64,
    peak: AtomicU64,
    rtp_sent: AtomicU64,
    rtp_received: AtomicU64,
    rtp_late: AtomicU64,
    rtp_send_errors: AtomicU64,
    failures: Mutex<BTreeMap<String, u64>>,
    amd: Mutex<AmdTally>,
    voicelogs: Mutex<VoicelogTally>,
}

impl Counters {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        *f.entry(why).or_default() += 1;
    }

    fn amd(&self) -> std::sync::MutexGuard<'_, AmdTally> {
        self.amd.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn voicelogs(&self) -> std::sync::MutexGuard<'_, VoicelogTally> {
        self.voicelogs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a call's recording goes and the span it must cover.
struct Recording {
    path: std::path::PathBuf,
    from: std::time::Instant,
    until: Option<std::time::Instant>,
}

impl Recording {
    /// After the session closed: compares the file with the call's talk time.
    fn account(&self, stats: &dialcast_media::MediaStats, counters: &Counters) {
        use dialcast_media::wav::{FRAME_BYTES, HEADER_LEN};
        let bytes = std::fs::metadata(&self.path).map(|m| m.len());
        let mut tally = counters.voicelogs();
        let (Ok(bytes), Some(until)) = (bytes, self.until) else {
            tally.errors += 1;
            return;
        };
        // 20 ms per frame of FRAME_BYTES.
        let wav_ms = bytes.saturating_sub(HEADER_LEN) as f64 * 20.0 / FRAME_BYTES as f64;
        let talk_ms = until.saturating_duration_since(self.from).as_secs_f64() * 1000.0;
        let error = (wav_ms - talk_ms).abs();
        let n = tally.files as f64;
        tally.length_error_ms_mean = (tally.length_error_ms_mean * n + error) / (n + 1.0);
        tally.length_error_ms_max = tally.length_error_ms_max.max(error);
        tally.files += 1;
        tally.bytes += bytes;
        tally.talk_s_total += talk_ms / 1000.0;
        if error > 20.0 {
            tally.over_one_frame += 1;
        }
        tally.frames_filled += stats.record_filled;
        tally.blocks_dropped += stats.record_dropped;
    }
}

/// Places the calls; returns the report and the media engine (its last
/// counts are read after the measured window).
async fn drive(
    bench: &DialerBench,
    target: SocketAddr,
) -> anyhow::Result<(SideReport, Option<MediaEngine>)> {
    let (endpoint, _inbound) = SipEndpoint::start(SipConfig {
        bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        tcp: false,
        ..SipConfig::default()
    })
    .await?;
    let media = if bench.rtp {
        Some(MediaEngine::start_with_threads(
            MediaConfig {
                bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port_min: 20000,
                port_max: 39999,
                inactivity_timeout: Duration::from_secs(10),
                send_silence: true,
                metrics: true,
                rtp_socket: bench.rtp_socket,
                udp_offload: bench.udp_offload,
            },
            bench.media_threads.max(1),
        )?)
    } else {
        None
    };
    // Real audio (a tone or --prompt), so the echo carries it back; looped
    // by replaying when it ends.
    let tone: Arc<Prompt> = Arc::new(caller_audio(bench)?);
    let counters = Arc::new(Counters::default());
    let uri = format!("sip:bench@{target}");
    let t0 = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(dir) = &bench.voicelogs {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("voicelog folder {}", dir.display()))?;
    }
    for i in 0..bench.calls {
        let due = t0 + Duration::from_secs_f64(i as f64 / bench.cps);
        tokio::time::sleep_until(due).await;
        let endpoint = endpoint.clone();
        let media = media.clone();
        let counters = counters.clone();
        let uri = uri.clone();
        let hold = bench.hold;
        let tone = tone.clone();
        let options = CallOptions {
            hold,
            amd: bench.amd,
            voicelog: bench
                .voicelogs
                .as_ref()
                .map(|dir| dir.join(format!("call-{i}.wav"))),
        };
        tasks.spawn(async move {
            if let Err(e) =
                one_call(&endpoint, media.as_ref(), &uri, &options, tone, &counters).await
            {
                counters.fail(format!("error: {e}"));
            }
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    endpoint.shutdown();
    let sent = counters.rtp_sent.load(Ordering::Relaxed);
    let failures = counters
        .failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let report = SideReport {
        calls: bench.calls,
        completed: counters.completed.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        peak_concurrent: counters.peak.load(Ordering::Relaxed),
        rtp_late_ratio: bench
            .rtp
            .then(|| counters.rtp_late.load(Ordering::Relaxed) as f64 / sent.max(1) as f64),
        rtp_sent: sent,
        rtp_received: counters.rtp_received.load(Ordering::Relaxed),
        rtp_send_errors: counters.rtp_send_errors.load(Ordering::Relaxed),
        failures,
        amd: bench.amd.then(|| counters.amd().clone()),
        voicelogs: bench
            .voicelogs
            .is_some()
            .then(|| counters.voicelogs().clone()),
        ..SideReport::default()
    };
    Ok((report, media))
}

/// What each of our calls does once answered, besides the tone.
struct CallOptions {
    hold: Duration,
    amd: bool,
    /// Record to this file.
    voicelog: Option<std::path::PathBuf>,
}

async fn one_call(
    endpoint: &SipEndpoint,
    media: Option<&MediaEngine>,
    uri: &str,
    options: &CallOptions,
    tone: Arc<Prompt>,
    counters: &Counters,
) -> anyhow::Result<()> {
    let mut session = match media {
        Some(m) => Some(m.open_session()?),
        None => None,
    };
    let local = LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        // Without RTP nobody listens there; the callee does not send any.
        port: session.as_ref().map_or(9, |s| s.local_addr().port()),
        ssrc: session.as_ref().map(|s| s.ssrc()),
    };
    let mut call = endpoint
        .place_call(CallRequest {
            target: uri.to_string(),
            transport: Transport::Udp,
            caller_id: Some("+31200000000".into()),
            username: None,
            password: None,
            local_media: local,
            ring_timeout: Duration::from_secs(30),
            extra_headers: Vec::new(),
        })
        .await?;
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let mut answered = false;
    let mut recording: Option<Recording> = None;
    loop {
        let media_event = async {
            match session.as_mut() {
                Some(s) => s.next_event().await,
                None => std::future::pending().await,
            }
        };
        let hangup = async {
            match hangup_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = call.next_event() => match event {
                Some(CallEvent::Answered(m)) => {
                    let answer = std::time::Instant::now();
                    answered = true;
                    let now_active = counters.active.fetch_add(1, Ordering::Relaxed) + 1;
                    counters.peak.fetch_max(now_active, Ordering::Relaxed);
                    if let (Some(s), Some(m)) = (session.as_ref(), m) {
                        s.set_remote(RemoteMedia {
                            addr: m.remote,
                            codec: match m.codec { Codec::Pcmu => MediaCodec::Pcmu, Codec::Pcma => MediaCodec::Pcma },
                            payload_type: m.payload_type,
                            dtmf_payload_type: m.dtmf_payload_type,
                            ssrc: m.ssrc,
                        });
                        s.start_sending();
                        s.play(tone.clone());
                        if options.amd {
                            s.detect(AmdConfig::default());
                        }
                        if let Some(path) = &options.voicelog {
                            // As the engine does: from the answer on the media clock.
                            match s.record_from(path, answer) {
                                Ok(()) => recording = Some(Recording {
                                    path: path.clone(),
                                    from: answer,
                                    until: None,
                                }),
                                Err(e) => {
                                    tracing::warn!("voicelog {} not started: {e}", path.display());
                                    counters.voicelogs().errors += 1;
                                }
                            }
                        }
                    }
                    hangup_at = Some(tokio::time::Instant::now() + options.hold);
                }
                Some(CallEvent::Ended(end)) => {
                    if let (Some(r), Some(s)) = (recording.as_mut(), session.as_ref()) {
                        // Nothing after the end of the call is recorded.
                        let until = std::time::Instant::now();
                        s.stop_recording_at(until);
                        r.until = Some(until);
                    }
                    if answered {
                        counters.active.fetch_sub(1, Ordering::Relaxed);
                    }
                    if answered && end.cause == EndCause::LocalHangup {
                        counters.completed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.fail(format!("{} {} {:?}", end.status, end.sip_code, end.cause));
                    }
                    break;
                }
                Some(_) => {}
                None => break,
            },
            event = media_event => match (event, session.as_ref()) {
                (Some(MediaEvent::PlaybackFinished), Some(s)) => s.play(tone.clone()),
                (Some(MediaEvent::Amd(decision)), _) => {
                    *counters.amd().verdicts.entry(decision.verdict.as_str()).or_default() += 1;
                }
                (Some(MediaEvent::Beep { .. }), _) => counters.amd().beeps += 1,
                _ => {}
            },
            _ = hangup => {
                hangup_at = None;
                call.hangup().await;
            }
        }
    }
    if let Some(s) = session {
        let stats = s.close().await;
        counters
            .rtp_sent
            .fetch_add(stats.rtp_sent, Ordering::Relaxed);
        counters
            .rtp_received
            .fetch_add(stats.rtp_received, Ordering::Relaxed);
        counters
            .rtp_late
            .fetch_add(stats.rtp_late, Ordering::Relaxed);
        counters
            .rtp_send_errors
            .fetch_add(stats.rtp_send_errors, Ordering::Relaxed);
        if let Some(r) = &recording {
            r.account(&stats, counters);
        }
    }
    Ok(())
}

/// A 440 Hz tone of `ms` milliseconds at 8 kHz (what our callers send).
pub(crate) fn tone_8k(ms: usize) -> Vec<i16> {
    (0..ms * 8)
        .map(|n| {
            let t = n as f64 / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
        })
        .collect()
}

fn run_sipp_baseline(bench: &DialerBench) -> anyhow::Result<SideReport> {
    let (mut uas, target, media_port) = start_uas(bench, "sipp-uas")?;
    let capture = start_capture(bench, media_port, "sipp");
    let dir = bench.work_dir.join("sipp-uac");
    std::fs::create_dir_all(&dir)?;
    let scenario = if bench.rtp {
        // SIPp streams a raw PCMU file; write one from the same audio and
        // point the scenario at it (rtp_stream takes a literal path).
        let raw = dir.join("tone.pcmu");
        let prompt = caller_audio(bench)?;
        let bytes: Vec<u8> = prompt
            .frames(MediaCodec::Pcmu)
            .iter()
            .flat_map(|f| f.iter().copied())
            .collect();
        std::fs::write(&raw, bytes)?;
        let text = std::fs::read_to_string(sipp::scenario("uac-baseline-rtp.xml"))?
            .replace("[rtp_file]", &raw.display().to_string());
        let path = dir.join("uac-baseline-rtp.xml");
        std::fs::write(&path, text)?;
        path
    } else {
        sipp::scenario("uac-baseline.xml")
    };
    let port = sipp::free_udp_port()?;
    let media_port = sipp::free_udp_port()?;
    let mut args = sipp::base_args(&scenario, port, media_port);
    args.extend([
        // -r calls per -rp milliseconds: calls per second.
        "-r".to_string(),
        bench.cps.to_string(),
        "-rp".into(),
        "1000".into(),
        "-m".into(),
        bench.calls.to_string(),
        "-d".into(),
        bench.hold.as_millis().to_string(),
        "-trace_stat".into(),
        "-fd".into(),
        "1".into(),
        "-stf".into(),
        "stat.csv".into(),
        target.to_string(),
    ]);
    let started = Instant::now();
    let steal_before = procstat::machine_steal();
    let mut uac = Sipp::spawn(&args, &dir)?;
    let limit =
        Duration::from_secs_f64(bench.calls as f64 / bench.cps + bench.hold.as_secs_f64() + 120.0);
    let (code, sample) = uac.wait(limit)?;
    let wall = started.elapsed().as_secs_f64();
    let machine_steal_s = steal_since(steal_before);
    let stats = read_sipp_stats(&dir.join("stat.csv"))?;
    if !uas.is_running() {
        anyhow::bail!("the SIPp callee died during the baseline run");
    }
    let mut failures = BTreeMap::new();
    if stats.failed > 0 || code != 0 {
        failures.insert(format!("sipp exit {code}"), stats.failed);
    }
    let wire = finish_capture(capture)?;
    Ok(SideReport {
        wire,
        calls: bench.calls,
        completed: stats.successful,
        failed: stats.failed,
        achieved_cps: stats.successful as f64 / (wall - bench.hold.as_secs_f64()).max(0.001),
        peak_concurrent: stats.peak_concurrent,
        // SIPp does not report its own send lateness, and capturing 75k packets/s
        // to compute it would load the machine more than the thing measured.
        rtp_late_ratio: None,
        cpu_s_per_call: sample.cpu.as_secs_f64() / bench.calls.max(1) as f64,
        rss_mb_peak: sample.rss_peak_mb,
        wall_s: wall,
        cpu_s: sample.cpu.as_secs_f64(),
        rtp_sent: 0,
        rtp_received: 0,
        rtp_send_errors: 0,
        failures,
        amd: None,
        voicelogs: None,
        machine_steal_s,
        rtp_unmatched: None,
        udp_rcvbuf_errors: None,
    })
}

/// Steal seconds since `before` (see [`SideReport::machine_steal_s`]).
fn steal_since(before: Option<Duration>) -> Option<f64> {
    Some((procstat::machine_steal()?.checked_sub(before?)?).as_secs_f64())
}

struct SippStats {
    successful: u64,
    failed: u64,
    peak_concurrent: u64,
}

/// Reads SIPp's `-trace_stat` CSV (`;`-separated, header row, cumulative columns).
fn read_sipp_stats(path: &Path) -> anyhow::Result<SippStats> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("no SIPp statistics at {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty SIPp statistics")?
        .split(';')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (ok, failed, current) = (
        col("SuccessfulCall(C)").context("no SuccessfulCall(C) column")?,
        col("FailedCall(C)").context("no FailedCall(C) column")?,
        col("CurrentCall").context("no CurrentCall column")?,
    );
    let mut stats = SippStats {
        successful: 0,
        failed: 0,
        peak_concurrent: 0,
    };
    for line in lines {
        let fields: Vec<&str> = line.split(';').collect();
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        stats.successful = stats.successful.max(num(ok));
        stats.failed = stats.failed.max(num(failed));
        stats.peak_concurrent = stats.peak_concurrent.max(num(current));
    }
    Ok(stats)
}
