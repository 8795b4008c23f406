//! The public face of the crate: [`MediaEngine`] (port allocation, the
//! scheduler and recorder threads) and [`MediaSession`] (one call's handle).
//!
//! A `MediaSession` holds no RTP state itself: it sends commands to the
//! scheduler thread that owns its socket and [`SessionCore`], and reads
//! events from a bounded channel. Dropping it unregisters the session and
//! frees its port (in [`RtpSocketMode::PerCall`]; in
//! [`RtpSocketMode::PerThread`] the port is the thread's and stays).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::amd::{AmdConfig, AmdDetector};
use crate::metrics::RtpTally;
use crate::prompt::Prompt;
use crate::recorder::{self, RecorderMsg};
use crate::scheduler::{self, Command, SchedulerHandle, SessionShared, Slot, EVENT_QUEUE};
use crate::session::{MediaEvent, MediaStats, RemoteMedia, SessionConfig, SessionCore};
use crate::MediaError;

/// How long `close` waits before offering the recorder a full queue the
/// final message again.
const FINISH_RETRY: Duration = Duration::from_millis(5);

/// How RTP sockets are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RtpSocketMode {
    /// A socket (and SDP port) per call: each datagram's port says whose it
    /// is, and any peer works, including one behind NAT whose SDP address
    /// is wrong (symmetric RTP latches to where its packets come from). One
    /// system call per packet each way.
    #[default]
    PerCall,
    /// One socket per scheduler thread, offered in the SDP of all its calls:
    /// datagrams are told apart by source address and SSRC
    /// (`crate::demux`, whose doc says what is ambiguous and dropped), and
    /// packets go out and come in in batches of 64 (`sendmmsg`,
    /// `recvmmsg`), about half the kernel's cost per packet. Needs peers
    /// that use a port per call (trunks, SBCs) or announce their SSRCs in
    /// SDP (`a=ssrc`, as Dialcast and its callee farm do) or echo ours.
    PerThread,
}

/// Media settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// First port of the RTP range (even ports are used; the odd port above
    /// each is left for RTCP).
    pub port_min: u16,
    pub port_max: u16,
    /// A call that receives no RTP for this long gets `InactivityTimeout`.
    pub inactivity_timeout: Duration,
    /// Send silence frames when no prompt plays (otherwise send nothing).
    pub send_silence: bool,
    /// Add this engine's RTP counts to the `metrics` facade (see
    /// [`crate::metrics`]); off for engines that stand in for a peer, such
    /// as the demo's callee farm, so the process's metrics are the dialler's.
    pub metrics: bool,
    /// A socket per call or one per scheduler thread.
    pub rtp_socket: RtpSocketMode,
    /// With one socket per thread: send packets bound for one address in
    /// one UDP GSO buffer and take them in with UDP GRO, where the kernel
    /// allows (`send_batch.rs` says when it helps). No effect per call.
    pub udp_offload: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port_min: 20000,
            port_max: 39999,
            inactivity_timeout: Duration::from_secs(30),
            send_silence: true,
            metrics: true,
            rtp_socket: RtpSocketMode::PerCall,
            udp_offload: true,
        }
    }
}

/// Hands out even ports of the range, round robin, skipping ports that we
/// use or that the OS refuses.
struct PortAllocator {
    min: u16,
    max: u16,
    next: u16,
    in_use: Vec<bool>,
}

impl PortAllocator {
    fn new(min: u16, max: u16) -> Result<PortAllocator, MediaError> {
        let min = min.saturating_add(min % 2);
        if min > max {
            return Err(MediaError::InvalidConfig {
                reason: "the RTP port range holds no even port",
            });
        }
        let count = usize::from((max - min) / 2) + 1;
        Ok(PortAllocator {
            min,
            max,
            next: min,
            in_use: vec![false; count],
        })
    }

    fn index(&self, port: u16) -> usize {
        usize::from((port - self.min) / 2)
    }

    fn bind_next(&mut self, ip: IpAddr) -> Result<(std::net::UdpSocket, u16), MediaError> {
        self.bind_next_with(ip, None)
    }

    /// `bind_next`, with socket buffers of `buffers` bytes.
    fn bind_next_with(
        &mut self,
        ip: IpAddr,
        buffers: Option<usize>,
    ) -> Result<(std::net::UdpSocket, u16), MediaError> {
        let mut last_err = None;
        for _ in 0..self.in_use.len() {
            let port = self.next;
            self.next = match port.checked_add(2) {
                Some(p) if p <= self.max => p,
                _ => self.min,
            };
            let idx = self.index(port);
            if self.in_use[idx] {
                continue;
            }
            match bind_with_buffers(SocketAddr::new(ip, port), buffers) {
                Ok(sock) => {
                    self.in_use[idx] = true;
                    return Ok((sock, port));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
                Err(e) => last_err = Some(e),
            }
        }
        match last_err {
            // Every port failed for a reason other than "in use": say why.
            Some(e) if self.in_use.iter().all(|u| !u) => Err(MediaError::Socket(e)),
            _ => Err(MediaError::PortRangeExhausted {
                min: self.min,
                max: self.max,
            }),
        }
    }

    fn free(&mut self, port: u16) {
        if (self.min..=self.max).contains(&port) {
            let idx = self.index(port);
            self.in_use[idx] = false;
        }
    }
}

/// Socket buffers of a shared socket. The kernel doubles the figure for its
/// bookkeeping; a 172-byte datagram takes about 1 KiB of it, so the receive
/// buffer holds ~16,000 datagrams: ~60 ms of 5,000 calls' packets if the
/// thread stalls (a socket per call holds 200 ms of its one call each). Set
/// with `SO_RCVBUFFORCE` where allowed (`CAP_NET_ADMIN`), else capped by
/// `net.core.rmem_max`.
const SHARED_SOCKET_BUFFER: usize = 8 << 20;

fn bind_with_buffers(
    addr: SocketAddr,
    buffers: Option<usize>,
) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if let Some(size) = buffers {
        set_buffers(&socket, size);
    }
    socket.bind(&addr.into())?;
    // Without stamps a datagram counts as arriving when its tick reads it:
    // jitter then reads up to 20 ms high, nothing else changes.
    if let Err(e) = crate::recv_batch::enable_timestamps(&socket) {
        tracing::debug!(error = %e, "no kernel receive timestamps on RTP socket");
    }
    Ok(socket.into())
}

/// Raise a shared socket's receive and send buffers to `size`, forcing past
/// the sysctl limits when the process may.
#[allow(unsafe_code)]
fn set_buffers(socket: &Socket, size: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        for option in [force, plain] {
            // SAFETY: both options take an int; we pass a pointer to one and its size.
            let rc = unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    std::ptr::from_ref(&value).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc == 0 {
                break;
            }
        }
    }
}

/// The SSRC of the `n`th session: a bijection of `n` (multiplying by an odd
/// constant), so the sessions of one engine never share one, salted so that
/// two engines rarely do. A peer whose calls all come from one of our
/// shared sockets tells them apart by it.
fn session_ssrc(salt: u32, n: u64) -> u32 {
    (n as u32).wrapping_mul(0x9E37_79B1) ^ salt
}

struct EngineInner {
    config: MediaConfig,
    ports: Arc<Mutex<PortAllocator>>,
    shards: Vec<SchedulerHandle>,
    /// Each shard's socket address, in `PerThread` mode.
    shard_addrs: Vec<SocketAddr>,
    next_shard: AtomicUsize,
    ssrc_salt: u32,
    unmatched: Arc<AtomicU64>,
    next_id: AtomicU64,
    active: AtomicUsize,
    recorder: std::sync::mpsc::SyncSender<RecorderMsg>,
    recorder_backlog: recorder::Backlog,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        for shard in &self.shards {
            shard.send(Command::Shutdown);
        }
        let _ = self.recorder.send(RecorderMsg::Shutdown);
        if let Ok(mut threads) = self.threads.lock() {
            for t in threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

/// The media engine: cheap to clone; the threads stop when the last clone
/// and the last session are dropped.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("config", &self.inner.config)
            .field("active_sessions", &self.active_sessions())
            .finish()
    }
}

impl MediaEngine {
    /// Start with one scheduler thread (right for a 2-core machine that also
    /// runs SIP; see BENCH.md).
    pub fn start(config: MediaConfig) -> Result<MediaEngine, MediaError> {
        Self::start_with_threads(config, 1)
    }

    /// Start with `threads` scheduler threads; sessions are spread round robin.
    pub fn start_with_threads(
        config: MediaConfig,
        threads: usize,
    ) -> Result<MediaEngine, MediaError> {
        if threads == 0 {
            return Err(MediaError::InvalidConfig {
                reason: "at least one media thread is needed",
            });
        }
        if config.inactivity_timeout.is_zero() {
            return Err(MediaError::InvalidConfig {
                reason: "inactivity_timeout must be above zero",
            });
        }
        let ports = Arc::new(Mutex::new(PortAllocator::new(
            config.port_min,
            config.port_max,
        )?));
        let (recorder, recorder_backlog, rec_thread) = recorder::spawn()?;
        let mut handles = vec![rec_thread];
        let mut shards = Vec::with_capacity(threads);
        let mut shard_addrs = Vec::new();
        let unmatched = Arc::new(AtomicU64::new(0));
        for i in 0..threads {
            let shared = match config.rtp_socket {
                RtpSocketMode::PerCall => None,
                RtpSocketMode::PerThread => {
                    let (socket, _) = ports
                        .lock()
                        .map_err(|_| MediaError::EngineStopped)?
                        .bind_next_with(config.bind_ip, Some(SHARED_SOCKET_BUFFER))?;
                    shard_addrs.push(socket.local_addr().map_err(MediaError::Socket)?);
                    Some(mio::net::UdpSocket::from_std(socket))
                }
            };
            let ports = Arc::clone(&ports);
            let free: scheduler::FreePort = Arc::new(move |port| {
                if let Ok(mut p) = ports.lock() {
                    p.free(port);
                }
            });
            let (handle, thread) = scheduler::spawn(
                i,
                recorder.clone(),
                free,
                config.metrics,
                shared,
                config.udp_offload,
                Arc::clone(&unmatched),
            )
            .map_err(MediaError::Thread)?;
            shards.push(handle);
            handles.push(thread);
        }
        Ok(MediaEngine {
            inner: Arc::new(EngineInner {
                config,
                ports,
                shards,
                shard_addrs,
                next_shard: AtomicUsize::new(0),
                ssrc_salt: rand::random(),
                unmatched,
                next_id: AtomicU64::new(1),
                active: AtomicUsize::new(0),
                recorder,
                recorder_backlog,
                threads: Mutex::new(handles),
            }),
        })
    }

    /// Messages (20 ms blocks mostly) the voicelog writer found queued in
    /// its last pass, at most [`crate::RECORDER_QUEUE`]; it passes every
    /// 15 ms. A cheap read, for a queue-depth gauge.
    pub fn recorder_backlog(&self) -> usize {
        self.inner.recorder_backlog.depth()
    }

    /// The longest a message can have waited for the voicelog writer since
    /// the previous call (an upper bound; zero when nothing was queued), for
    /// a queue-latency gauge. Resets it, so one reader should ask.
    pub fn recorder_longest_wait(&self) -> std::time::Duration {
        self.inner.recorder_backlog.take_longest_wait()
    }

    /// Register a session: with a socket per call, bind the next free even
    /// port of the range for it; else on the next thread's shared socket.
    pub fn open_session(&self) -> Result<MediaSession, MediaError> {
        let inner = &self.inner;
        let shard_index = inner.next_shard.fetch_add(1, Ordering::Relaxed) % inner.shards.len();
        let (own_socket, local_addr) = match inner.shard_addrs.get(shard_index) {
            Some(addr) => (None, *addr),
            None => {
                let (std_socket, port) = inner
                    .ports
                    .lock()
                    .map_err(|_| MediaError::EngineStopped)?
                    .bind_next(inner.config.bind_ip)?;
                match std_socket.local_addr() {
                    Ok(a) => (Some((mio::net::UdpSocket::from_std(std_socket), port)), a),
                    Err(e) => {
                        drop(std_socket);
                        if let Ok(mut p) = inner.ports.lock() {
                            p.free(port);
                        }
                        return Err(MediaError::Socket(e));
                    }
                }
            }
        };
        let own_port = own_socket.as_ref().map(|(_, port)| *port);
        let free_port = || {
            if let (Some(port), Ok(mut p)) = (own_port, inner.ports.lock()) {
                p.free(port);
            }
        };
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let ssrc = session_ssrc(inner.ssrc_salt, id);
        let shard = inner.shards[shard_index].clone();
        let (ev_tx, ev_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let shared = Arc::new(SessionShared {
            stats: Mutex::new(MediaStats::default()),
        });
        let core = SessionCore::with_origin(
            SessionConfig {
                send_silence: inner.config.send_silence,
                inactivity_timeout: inner.config.inactivity_timeout,
            },
            Instant::now(),
            ssrc,
            rand::random(),
            rand::random(),
        );
        let registered = shard.send(Command::Register(Box::new(Slot {
            id,
            own_socket,
            core: Box::new(core),
            events: ev_tx,
            shared: Arc::clone(&shared),
            reported: RtpTally::default(),
        })));
        if !registered {
            free_port();
            return Err(MediaError::EngineStopped);
        }
        inner.active.fetch_add(1, Ordering::Relaxed);
        Ok(MediaSession {
            id,
            ssrc,
            local_addr,
            shard,
            engine: Arc::clone(&self.inner),
            events: ev_rx,
            shared,
            recording: AtomicBool::new(false),
            closed: false,
        })
    }

    /// Sessions opened and not yet closed or dropped.
    pub fn active_sessions(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    /// Datagrams the shared sockets received that matched no call (always
    /// 0 with a socket per call), up to the last housekeeping round (100 ms).
    pub fn unmatched_datagrams(&self) -> u64 {
        self.inner.unmatched.load(Ordering::Relaxed)
    }
}

/// One call's media. Commands take effect on the scheduler thread within
/// microseconds. Dropping the session unregisters it and frees its port.
pub struct MediaSession {
    id: u64,
    ssrc: u32,
    local_addr: SocketAddr,
    shard: SchedulerHandle,
    engine: Arc<EngineInner>,
    events: tokio::sync::mpsc::Receiver<MediaEvent>,
    shared: Arc<SessionShared>,
    recording: AtomicBool,
    closed: bool,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("id", &self.id)
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl MediaSession {
    /// The bound address (the IP is `bind_ip`, possibly 0.0.0.0): the
    /// session's own socket, or its thread's shared one.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The SSRC of what we send, for SDP (`a=ssrc`, RFC 5576): a peer that
    /// receives all our calls on one address tells them apart by it.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Set or replace the peer (early media, answer, re-INVITE). Receiving
    /// runs from `open_session`; this also starts the 20 ms clock, the
    /// inactivity timer and re-arms symmetric-RTP latching.
    pub fn set_remote(&self, remote: RemoteMedia) {
        self.shard.send(Command::SetRemote {
            id: self.id,
            remote,
        });
    }

    /// From now on send one frame per 20 ms: prompt frames, else silence if
    /// `send_silence`.
    pub fn start_sending(&self) {
        self.shard.send(Command::StartSending { id: self.id });
    }

    /// Queue a prompt; `PlaybackFinished` follows its last frame.
    pub fn play(&self, prompt: Arc<Prompt>) {
        self.shard.send(Command::Play {
            id: self.id,
            prompt,
        });
    }

    /// Drop the playback queue (no `PlaybackFinished`).
    pub fn stop_playback(&self) {
        self.shard.send(Command::StopPlayback { id: self.id });
    }

    /// Press the keys of `digits` (`0-9`, `*`, `#`, `A-D`; other characters
    /// are skipped), each held `duration` (rounded up to whole 20 ms frames),
    /// after any keys still being sent, with 60 ms of audio between keys.
    ///
    /// On the negotiated telephone-event payload type
    /// ([`RemoteMedia::dtmf_payload_type`]) the keys go out as RFC 4733
    /// events that replace the audio packets of their ticks (same SSRC,
    /// sequence numbers continuing, the end packet sent three times). When
    /// none was negotiated they go out in band instead: DTMF tone pairs
    /// (ITU-T Q.23) encoded with the call's codec in place of the audio
    /// frames. Either way a playing prompt pauses while the keys are sent
    /// and resumes after them; nothing is sent before `start_sending` or
    /// while on hold.
    pub fn send_dtmf(&self, digits: &str, duration: Duration) {
        self.shard.send(Command::SendDtmf {
            id: self.id,
            digits: digits.into(),
            duration,
        });
    }

    /// The peer put us on hold (stop sending, keep receiving) or resumed.
    pub fn set_hold(&self, on_hold: bool) {
        self.shard.send(Command::SetHold {
            id: self.id,
            on_hold,
        });
    }

    /// Start answering-machine and beep detection on the received audio,
    /// from now (times in the events count from here). The session reports
    /// [`MediaEvent::Amd`] once and [`MediaEvent::Beep`] for every beep; after
    /// a `machine` or `unknown` decision it keeps listening for beeps until
    /// `config.beep.listen_ms` from the start (if not 0), after any other
    /// decision it stops. Calling it again starts over. Costs nothing until
    /// called: the detector (a few kB) is allocated here, once; then 0.2-1.2 µs
    /// per 20 ms frame while it runs (`BENCH.md`, `AMD.md`).
    pub fn detect(&self, config: AmdConfig) {
        self.shard.send(Command::Detect {
            id: self.id,
            detector: Some(Box::new(AmdDetector::new(config))),
        });
    }

    /// Listen for DTMF tones in the received audio as well as RFC 4733
    /// events (`crate::inband`), or stop. Costs about a microsecond per
    /// 20 ms frame while on, so turn it on only while keys are expected;
    /// it turns itself off for good when the peer sends an RFC 4733 event.
    pub fn detect_inband_dtmf(&self, on: bool) {
        self.shard.send(Command::InbandDtmf { id: self.id, on });
    }

    /// Relay audio both ways with `other` (another call's session): each
    /// sends what the other receives, instead of prompts, until
    /// [`MediaSession::unbridge`] or close. See [`crate::bridge`].
    pub fn bridge_with(&self, other: &MediaSession) {
        let (ours, theirs) = crate::bridge::BridgeEnd::pair();
        self.shard.send(Command::Bridge {
            id: self.id,
            end: Some(ours),
        });
        other.shard.send(Command::Bridge {
            id: other.id,
            end: Some(theirs),
        });
    }

    /// End this session's side of a bridge: it sends prompts or silence again.
    pub fn unbridge(&self) {
        self.shard.send(Command::Bridge {
            id: self.id,
            end: None,
        });
    }

    /// Stop detection (no further `Amd` or `Beep` events).
    pub fn stop_detect(&self) {
        self.shard.send(Command::Detect {
            id: self.id,
            detector: None,
        });
    }

    /// Record both directions to a stereo WAV (left = ours, right = theirs,
    /// 8 kHz 16-bit) from the next 20 ms tick on, header synced every
    /// second, finalized by `close` or drop.
    pub fn record_to(&self, path: &Path) -> Result<(), MediaError> {
        self.record(path, None)
    }

    /// Like [`record_to`](Self::record_to), but the recording starts at
    /// `from` on the media clock (e.g. the moment of answer): the frames
    /// between `from` and the command reaching the media thread are silence.
    /// With [`stop_recording_at`](Self::stop_recording_at) the file is as
    /// long as `from..until`, to the nearest 20 ms frame.
    ///
    /// The file is created here, on the caller's thread (a `create` and a
    /// 44-byte write); every later write happens on the recorder thread.
    pub fn record_from(&self, path: &Path, from: Instant) -> Result<(), MediaError> {
        self.record(path, Some(from))
    }

    fn record(&self, path: &Path, from: Option<Instant>) -> Result<(), MediaError> {
        if self.recording.load(Ordering::Relaxed) {
            return Err(MediaError::AlreadyRecording);
        }
        let file = recorder::create_file(path)?;
        // Blocks only while the recorder's queue is full (the writer is
        // behind by more than RECORDER_QUEUE blocks); never the media thread.
        self.engine
            .recorder
            .send(RecorderMsg::Open {
                id: self.id,
                file: Box::new(file),
            })
            .map_err(|_| MediaError::EngineStopped)?;
        self.recording.store(true, Ordering::Relaxed);
        self.shard.send(Command::Record { id: self.id, from });
        Ok(())
    }

    /// End the recording at `until` on the media clock (e.g. the moment the
    /// call ended): later frames are not recorded and `close` cuts or pads
    /// the file to `from..until`.
    pub fn stop_recording_at(&self, until: Instant) {
        if self.recording.load(Ordering::Relaxed) {
            self.shard.send(Command::StopRecord { id: self.id, until });
        }
    }

    /// Whether a recording was started on this session.
    pub fn is_recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    /// The next event; `None` once the session is closed or the engine stopped.
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        self.events.recv().await
    }

    /// A snapshot, at most 100 ms old.
    pub fn stats(&self) -> MediaStats {
        self.shared
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Unregister, free the port, finalize the recording and return the final
    /// stats. Waits (without blocking the thread) for the scheduler's answer
    /// and, when recording, for the recorder to write the WAV header.
    pub async fn close(mut self) -> MediaStats {
        self.closed = true;
        self.engine.active.fetch_sub(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stats = if self.shard.send(Command::Close {
            id: self.id,
            reply: Some(tx),
        }) {
            match rx.await {
                Ok(stats) => stats,
                Err(_) => self.stats(),
            }
        } else {
            self.stats()
        };
        let mut stats = stats;
        if self.recording.load(Ordering::Relaxed) {
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let mut msg = RecorderMsg::Finish {
                id: self.id,
                frames: (stats.record_frames > 0).then_some(stats.record_frames),
                done: done_tx,
            };
            // The queue may be full of blocks: wait for room without
            // holding the runtime's thread.
            loop {
                match self.engine.recorder.try_send(msg) {
                    Ok(()) => {
                        if let Ok(summary) = done_rx.await {
                            stats.record_frames = summary.frames;
                            stats.record_filled = summary.filled;
                        }
                        break;
                    }
                    Err(std::sync::mpsc::TrySendError::Full(back)) => {
                        msg = back;
                        tokio::time::sleep(FINISH_RETRY).await;
                    }
                    Err(std::sync::mpsc::TrySendError::Disconnected(_)) => break,
                }
            }
        }
        stats
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.engine.active.fetch_sub(1, Ordering::Relaxed);
        self.shard.send(Command::Close {
            id: self.id,
            reply: None,
        });
        if self.recording.load(Ordering::Relaxed) {
            let (done, _) = tokio::sync::oneshot::channel();
            let msg = RecorderMsg::Finish {
                id: self.id,
                frames: None,
                done,
            };
            if let Err(std::sync::mpsc::TrySendError::Full(msg)) =
                self.engine.recorder.try_send(msg)
            {
                // Rare (the writer is behind): a helper thread waits for room
                // so a drop never blocks the caller.
                let recorder = self.engine.recorder.clone();
                let _ = std::thread::Builder::new()
                    .name("dialcast-recorder-finish".into())
                    .spawn(move || {
                        let _ = recorder.send(msg);
                    });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_skips_busy_ports_and_wraps() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        // Find a free even port pair window and occupy its first port.
        let probe = std::net::UdpSocket::bind((ip, 0)).expect("probe");
        let base = probe.local_addr().expect("addr").port() & !1;
        drop(probe);
        let base = base.max(1024);
        let blocker = std::net::UdpSocket::bind((ip, base)).ok();
        let mut alloc = PortAllocator::new(base, base + 5).expect("range");
        let (_a, pa) = alloc.bind_next(ip).expect("first");
        let (_b, pb) = alloc.bind_next(ip).expect("second");
        if blocker.is_some() {
            assert_eq!((pa, pb), (base + 2, base + 4));
            assert!(matches!(
                alloc.bind_next(ip),
                Err(MediaError::PortRangeExhausted { .. })
            ));
        }
        alloc.free(pa);
        drop(_a);
        let (_c, pc) = alloc.bind_next(ip).expect("reuse");
        assert_eq!(pc, pa);
        assert!(pa % 2 == 0 && pb % 2 == 0);
    }

    #[test]
    fn odd_min_rounds_up_and_empty_range_is_rejected() {
        let a = PortAllocator::new(30001, 30003).expect("has 30002");
        assert_eq!((a.min, a.in_use.len()), (30002, 1));
        assert!(PortAllocator::new(30001, 30001).is_err());
    }
}
