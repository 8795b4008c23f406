//! The media scheduler: one OS thread that drives many [`SessionCore`]s.
//!
//! * **Ticks** — a binary heap of absolute deadlines (`Instant`, one entry
//!   per session, 20 ms apart from the session's first `set_remote`). The
//!   thread sleeps until the earliest deadline, then runs every due tick.
//!   Deadlines are `start + k·20 ms`, never `now + 20 ms`, so there is no
//!   drift; sessions start at different moments so their deadlines spread
//!   over the 20 ms period instead of bursting.
//! * **Receiving happens on the session's own tick**: each tick first drains
//!   the session's socket (what arrived in the last 20 ms, normally one
//!   packet), then builds and sends the outgoing frame. The sockets are not
//!   registered with epoll. A peer sends one packet per 20 ms, so reading
//!   once per 20 ms loses nothing (the socket buffer holds far more than a
//!   tick's worth) and adds at most one frame of delay, which the 40 ms
//!   receive ring already allows for. What it saves is the wake-up per
//!   arriving packet: with epoll, 1,500 echoed calls woke the thread for most
//!   of their 75,000 packets a second, and going to sleep and waking again
//!   (`finish_task_switch` under `epoll_wait`) was a quarter of the thread's
//!   CPU; now the thread wakes about once a millisecond, and the receive work
//!   is spread over the 20 ms period like the sends instead of arriving in
//!   bursts that hold the sends up.
//! * **Control** — sessions are registered, changed and closed through a
//!   bounded command channel ([`COMMAND_QUEUE`]) plus a `mio::Waker`, so a
//!   command takes effect within microseconds, not at the next tick.
//! * **Out** — events go to each call's bounded tokio channel with
//!   `try_send` ([`EVENT_QUEUE`]); stats are published to a per-session mutex
//!   every [`HOUSEKEEPING`] (not per packet), and so are the RTP counts to
//!   the `metrics` facade: the thread sums what every session counted since
//!   the last round into one [`RtpTally`] and adds it in five calls.
//!
//! * **Sockets** — in [`RtpSocketMode::PerCall`](crate::RtpSocketMode) each
//!   session has its own socket (its SDP port), drained on the session's
//!   tick as above, and each packet leaves with its own `sendto` (`sendmmsg`
//!   batches only on one socket, so a batch would hold one datagram). In
//!   `PerThread` the thread has one socket for all its sessions
//!   (`crate::shared_socket`): every wake-up first reads all that arrived
//!   (`recvmmsg`, 64 at a time) and hands each datagram to its session
//!   (`crate::demux`), then the due ticks write their packets into one
//!   batch that leaves in `sendmmsg` calls of 64.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Poll, Token, Waker};
use tokio::sync::mpsc::error::TrySendError;

use crate::amd::AmdDetector;
use crate::codec::FRAME_SAMPLES;
use crate::metrics::{observe_jitter, RtpTally};
use crate::prompt::Prompt;
use crate::recorder::{send_block, RecorderMsg};
use crate::recv_batch::{ArrivalClock, RecvBatch};
use crate::session::{MediaEvent, MediaStats, RemoteMedia, SessionCore, MAX_PACKET};
use crate::shared_socket::{SharedSocket, SlotKey};

/// Commands queued to one scheduler thread. The thread drains the queue on
/// every wake-up (and is woken for each command), so it fills only if the
/// thread is stuck; senders then block until there is room.
pub const COMMAND_QUEUE: usize = 4096;
/// Events queued per call. A call sees at most a handful per second (one
/// first packet, DTMF at human speed, playback ends, one timeout, one AMD
/// decision, the odd beep), so 64 is never reached by a live task; if it is
/// (the task stopped reading), further events are dropped and counted in
/// `events_dropped`.
pub const EVENT_QUEUE: usize = 64;
/// How often timeouts are checked and stats published.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);

const WAKER: Token = Token(usize::MAX);

pub(crate) struct SessionShared {
    pub(crate) stats: Mutex<MediaStats>,
}

pub(crate) enum Command {
    Register(Box<Slot>),
    SetRemote {
        id: u64,
        remote: RemoteMedia,
    },
    StartSending {
        id: u64,
    },
    Play {
        id: u64,
        prompt: Arc<Prompt>,
    },
    StopPlayback {
        id: u64,
    },
    SendDtmf {
        id: u64,
        digits: Box<str>,
        duration: Duration,
    },
    SetHold {
        id: u64,
        on_hold: bool,
    },
    /// Record from `from` on the media clock (the next tick when `None`).
    Record {
        id: u64,
        from: Option<Instant>,
    },
    /// Stop recording at `until` on the media clock.
    StopRecord {
        id: u64,
        until: Instant,
    },
    /// Start (with a detector boxed by the caller) or stop detection.
    Detect {
        id: u64,
        detector: Option<Box<AmdDetector>>,
    },
    InbandDtmf {
        id: u64,
        on: bool,
    },
    Bridge {
        id: u64,
        end: Option<crate::bridge::BridgeEnd>,
    },
    Close {
        id: u64,
        reply: Option<tokio::sync::oneshot::Sender<MediaStats>>,
    },
    Shutdown,
}

/// A handle to one scheduler thread.
#[derive(Clone)]
pub(crate) struct SchedulerHandle {
    tx: SyncSender<Command>,
    waker: Arc<Waker>,
}

impl SchedulerHandle {
    /// Queue a command and wake the thread. Returns false if it has stopped.
    pub(crate) fn send(&self, cmd: Command) -> bool {
        if self.tx.send(cmd).is_err() {
            return false;
        }
        // A failed wake only delays the command to the next tick.
        let _ = self.waker.wake();
        true
    }
}

/// Frees the port of a closed session.
pub(crate) type FreePort = Arc<dyn Fn(u16) + Send + Sync>;

/// One session as the scheduler holds it (and as `Command::Register` brings it).
pub(crate) struct Slot {
    pub(crate) id: u64,
    /// The session's own socket and port (`PerCall`); `None` when it uses
    /// the thread's shared socket.
    pub(crate) own_socket: Option<(UdpSocket, u16)>,
    pub(crate) core: Box<SessionCore>,
    pub(crate) events: tokio::sync::mpsc::Sender<MediaEvent>,
    pub(crate) shared: Arc<SessionShared>,
    /// RTP counts already added to the metrics facade.
    pub(crate) reported: RtpTally,
}

struct Scheduler {
    poll: Poll,
    commands: Receiver<Command>,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    by_id: HashMap<u64, usize>,
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    recorder: SyncSender<RecorderMsg>,
    free_port: FreePort,
    packet: [u8; MAX_PACKET],
    record: [i16; 2 * FRAME_SAMPLES],
    rx: RecvBatch,
    /// Report RTP counts to the metrics facade.
    metrics: bool,
    /// Counted since the last housekeeping round, not yet reported.
    rtp: RtpTally,
    /// The thread's one socket, in `PerThread` mode.
    shared: Option<SharedSocket>,
    /// Datagrams on the shared socket that matched no call, ever.
    unmatched: Arc<AtomicU64>,
}

/// Start one scheduler thread.
pub(crate) fn spawn(
    index: usize,
    recorder: SyncSender<RecorderMsg>,
    free_port: FreePort,
    metrics: bool,
    shared: Option<UdpSocket>,
    udp_offload: bool,
    unmatched: Arc<AtomicU64>,
) -> std::io::Result<(SchedulerHandle, std::thread::JoinHandle<()>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = std::sync::mpsc::sync_channel(COMMAND_QUEUE);
    let mut sched = Scheduler {
        poll,
        commands: rx,
        slots: Vec::new(),
        free_slots: Vec::new(),
        by_id: HashMap::new(),
        heap: BinaryHeap::new(),
        recorder,
        free_port,
        packet: [0; MAX_PACKET],
        record: [0; 2 * FRAME_SAMPLES],
        rx: RecvBatch::new(),
        metrics,
        rtp: RtpTally::default(),
        shared: shared.map(|s| SharedSocket::new(s, udp_offload)),
        unmatched,
    };
    let handle = std::thread::Builder::new()
        .name(format!("dialcast-media-{index}"))
        .spawn(move || sched.run())?;
    Ok((SchedulerHandle { tx, waker }, handle))
}

impl Scheduler {
    fn run(&mut self) {
        if !crate::priority::raise_current_thread() {
            tracing::debug!("media thread keeps normal priority (no CAP_SYS_NICE)");
        }
        let mut events = Events::with_capacity(8);
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
        loop {
            let now = Instant::now();
            let mut wake_at = next_housekeeping;
            if let Some(Reverse((deadline, _, _))) = self.heap.peek() {
                wake_at = wake_at.min(*deadline);
            }
            let timeout = wake_at.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    tracing::error!(error = %e, "media poll failed; scheduler stops");
                    return;
                }
            }
            // Only the waker is registered: events need no reading.
            self.drain_shared();
            self.run_due_ticks();
            if !self.drain_commands() {
                return;
            }
            let now = Instant::now();
            if now >= next_housekeeping {
                next_housekeeping = now + HOUSEKEEPING;
                self.housekeeping(now);
            }
        }
    }

    fn run_due_ticks(&mut self) {
        let mut now = Instant::now();
        let mut clock = ArrivalClock::now();
        let mut n = 0u32;
        while let Some(Reverse((deadline, idx, id))) = self.heap.peek().copied() {
            if deadline > now {
                // Refresh the clock: a long batch may have crossed more deadlines.
                now = Instant::now();
                if deadline > now {
                    break;
                }
            }
            self.heap.pop();
            let Some(slot) = self.slots.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            if slot.id != id || slot.core.next_deadline() != Some(deadline) {
                continue; // stale entry
            }
            n += 1;
            if n & 31 == 0 {
                now = Instant::now();
                clock = ArrivalClock::now();
            }
            let mut batch_full = false;
            let out = match (&mut self.shared, &slot.own_socket) {
                (Some(shared), _) => {
                    let out = slot
                        .core
                        .on_tick(now, shared.tx.next_buf(), &mut self.record);
                    if let Some((len, dest)) = out.transmit {
                        batch_full = shared.tx.commit(len, dest, SlotKey { idx, id });
                    }
                    out
                }
                (None, Some((socket, _))) => {
                    drain_socket(socket, &mut slot.core, &mut self.rx, &clock, now);
                    let out = slot.core.on_tick(now, &mut self.packet, &mut self.record);
                    if let Some((len, dest)) = out.transmit {
                        // A full send buffer or an unreachable peer loses this
                        // one packet; RTP tolerates that and the next tick
                        // tries again.
                        if socket.send_to(&self.packet[..len], dest).is_err() {
                            slot.core.stats_mut().rtp_send_errors += 1;
                        }
                    }
                    out
                }
                (None, None) => slot.core.on_tick(now, &mut self.packet, &mut self.record),
            };
            if out.recorded && !send_block(&self.recorder, slot.id, out.record_frame, &self.record)
            {
                slot.core.stats_mut().record_dropped += 1;
            }
            if let Some(next) = slot.core.next_deadline() {
                self.heap.push(Reverse((next, idx, id)));
            }
            deliver_events(slot);
            if batch_full {
                self.flush_shared();
            }
        }
        self.flush_shared();
    }

    /// Shared socket: hand everything that arrived since the last wake-up
    /// to its sessions, before their ticks take frames out of their rings.
    fn drain_shared(&mut self) {
        let Scheduler { shared, slots, .. } = self;
        let Some(shared) = shared.as_mut() else {
            return;
        };
        shared.drain(|key, data, from, arrived| deliver_datagram(slots, key, data, from, arrived));
    }

    /// Shared socket: a remote was set to `addr`; hand its sessions what
    /// arrived from there before.
    fn retry_parked(&mut self, addr: SocketAddr) {
        let Scheduler { shared, slots, .. } = self;
        if let Some(shared) = shared.as_mut() {
            shared.retry_parked(addr, |key, data, from, arrived| {
                deliver_datagram(slots, key, data, from, arrived)
            });
        }
    }

    /// Shared socket: send the packets the ticks queued.
    fn flush_shared(&mut self) {
        let Scheduler { shared, slots, .. } = self;
        let Some(shared) = shared.as_mut() else {
            return;
        };
        if shared.tx.is_empty() {
            return;
        }
        shared.flush(|key| {
            if let Some(slot) = slots
                .get_mut(key.idx)
                .and_then(Option::as_mut)
                .filter(|s| s.id == key.id)
            {
                slot.core.stats_mut().rtp_send_errors += 1;
            }
        });
    }

    /// Returns false on shutdown.
    fn drain_commands(&mut self) -> bool {
        loop {
            let cmd = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => {
                    self.close_all();
                    return false;
                }
            };
            let now = Instant::now();
            match cmd {
                Command::Register(slot) => self.register(*slot),
                Command::SetRemote { id, remote } => {
                    let Scheduler {
                        shared,
                        by_id,
                        slots,
                        heap,
                        ..
                    } = self;
                    let Some(&idx) = by_id.get(&id) else { continue };
                    if let Some(slot) = slots.get_mut(idx).and_then(Option::as_mut) {
                        if let Some(shared) = shared.as_mut() {
                            let key = SlotKey { idx, id };
                            let own = slot.core.ssrc();
                            shared.demux.set_remote(key, remote.addr, remote.ssrc, own);
                        }
                        let addr = remote.addr;
                        let was_running = slot.core.next_deadline().is_some();
                        slot.core.set_remote(remote, now);
                        if let (false, Some(d)) = (was_running, slot.core.next_deadline()) {
                            heap.push(Reverse((d, idx, id)));
                        }
                        self.retry_parked(addr);
                    }
                }
                Command::StartSending { id } => self.with(id, |c| c.start_sending()),
                Command::Play { id, prompt } => self.with(id, |c| c.play(prompt)),
                Command::StopPlayback { id } => self.with(id, |c| c.stop_playback()),
                Command::SendDtmf {
                    id,
                    digits,
                    duration,
                } => self.with(id, |c| {
                    c.send_dtmf(&digits, duration);
                }),
                Command::SetHold { id, on_hold } => self.with(id, |c| c.set_hold(on_hold, now)),
                Command::Record { id, from } => self.with(id, |c| c.start_recording(from)),
                Command::StopRecord { id, until } => self.with(id, |c| c.stop_recording(until)),
                Command::Detect { id, detector } => self.with(id, |c| match detector {
                    Some(d) => c.start_detection(d),
                    None => c.stop_detection(),
                }),
                Command::InbandDtmf { id, on } => self.with(id, |c| c.set_inband_dtmf(on)),
                Command::Bridge { id, end } => self.with(id, |c| c.set_bridge(end)),
                Command::Close { id, reply } => {
                    let stats = self.close(id);
                    if let Some(reply) = reply {
                        let _ = reply.send(stats.unwrap_or_default());
                    }
                }
                Command::Shutdown => {
                    self.close_all();
                    return false;
                }
            }
        }
    }

    fn slot(&mut self, id: u64) -> Option<(usize, &mut Slot)> {
        let idx = *self.by_id.get(&id)?;
        self.slots
            .get_mut(idx)
            .and_then(Option::as_mut)
            .map(|s| (idx, s))
    }

    fn with(&mut self, id: u64, f: impl FnOnce(&mut SessionCore)) {
        if let Some((_, slot)) = self.slot(id) {
            f(&mut slot.core);
        }
    }

    fn register(&mut self, slot: Slot) {
        let idx = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        self.by_id.insert(slot.id, idx);
        self.slots[idx] = Some(slot);
    }

    fn close(&mut self, id: u64) -> Option<MediaStats> {
        let idx = self.by_id.remove(&id)?;
        let slot = self.slots.get_mut(idx)?.take()?;
        self.free_slots.push(idx);
        if let Some(shared) = self.shared.as_mut() {
            shared.demux.remove(SlotKey { idx, id });
        }
        if let Some((socket, port)) = slot.own_socket {
            drop(socket);
            (self.free_port)(port);
        }
        let mut stats = slot.core.stats().clone();
        stats.record_frames = slot.core.record_frames();
        if self.metrics {
            let mut reported = slot.reported;
            self.rtp.add_since(&mut reported, RtpTally::of(&stats));
            observe_jitter(&stats);
        }
        if let Ok(mut s) = slot.shared.stats.lock() {
            s.clone_from(&stats);
        }
        Some(stats)
    }

    fn close_all(&mut self) {
        let ids: Vec<u64> = self.by_id.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
        if self.metrics {
            self.rtp.flush();
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        for slot in self.slots.iter_mut().flatten() {
            slot.core.check_timeout(now);
            deliver_events(slot);
            if let Ok(mut s) = slot.shared.stats.lock() {
                s.clone_from(slot.core.stats());
            }
            if self.metrics {
                let now = RtpTally::of(slot.core.stats());
                self.rtp.add_since(&mut slot.reported, now);
            }
        }
        if let Some(shared) = self.shared.as_mut() {
            shared.expire_parked(now);
            let gso = shared.tx.take_gso_packets();
            if self.metrics && gso > 0 {
                metrics::counter!(crate::metrics::RTP_PACKETS_GSO).increment(gso);
            }
            if shared.unmatched > 0 {
                self.unmatched
                    .fetch_add(shared.unmatched, Ordering::Relaxed);
                if self.metrics {
                    metrics::counter!(crate::metrics::RTP_DATAGRAMS_UNMATCHED)
                        .increment(shared.unmatched);
                }
                shared.unmatched = 0;
            }
        }
        if self.metrics {
            self.rtp.flush();
        }
    }
}

/// Reads everything the session's socket holds (normally the one packet of
/// the last 20 ms), each datagram with its kernel arrival time.
fn drain_socket(
    socket: &UdpSocket,
    core: &mut SessionCore,
    rx: &mut RecvBatch,
    clock: &ArrivalClock,
    now: Instant,
) {
    loop {
        let n = match rx.recv(socket) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // WouldBlock: drained. ICMP errors reported on the socket, etc.:
            // not RTP, try at the next tick.
            Err(_) => return,
        };
        for i in 0..n {
            let d = rx.datagram(i);
            let Some(from) = d.from else { continue };
            let arrived = clock.arrival(d.stamp, now);
            core.handle_datagram(d.data, from, arrived);
        }
        if n < crate::recv_batch::RECV_BATCH {
            return;
        }
    }
}

/// A datagram from the shared socket to its session; false if it is gone.
fn deliver_datagram(
    slots: &mut [Option<Slot>],
    key: SlotKey,
    data: &[u8],
    from: SocketAddr,
    arrived: Instant,
) -> bool {
    let Some(slot) = slots
        .get_mut(key.idx)
        .and_then(Option::as_mut)
        .filter(|s| s.id == key.id)
    else {
        return false;
    };
    slot.core.handle_datagram(data, from, arrived);
    if slot.core.has_events() {
        deliver_events(slot);
    }
    true
}

fn deliver_events(slot: &mut Slot) {
    while let Some(ev) = slot.core.poll_event() {
        match slot.events.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => slot.core.stats_mut().events_dropped += 1,
            Err(TrySendError::Closed(_)) => {}
        }
    }
}
