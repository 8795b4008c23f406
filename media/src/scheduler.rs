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
//! Why no `sendmmsg`: each session has its own socket (its SDP port, which
//! symmetric-RTP peers latch to) and sends one packet per 20 ms, and that
//! syscall batches only on one socket, so a batch would almost always hold
//! one datagram.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::ErrorKind;
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
    pub(crate) port: u16,
    pub(crate) socket: UdpSocket,
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
}

/// Start one scheduler thread.
pub(crate) fn spawn(
    index: usize,
    recorder: SyncSender<RecorderMsg>,
    free_port: FreePort,
    metrics: bool,
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
            drain_socket(slot, &mut self.rx, &clock, now);
            let out = slot.core.on_tick(now, &mut self.packet, &mut self.record);
            if let Some((len, dest)) = out.transmit {
                // A full send buffer or an unreachable peer loses this one
                // packet; RTP tolerates that and the next tick tries again.
                if slot.socket.send_to(&self.packet[..len], dest).is_err() {
                    slot.core.stats_mut().rtp_send_errors += 1;
                }
            }
            if out.recorded && !send_block(&self.recorder, slot.id, out.record_frame, &self.record)
            {
                slot.core.stats_mut().record_dropped += 1;
            }
            if let Some(next) = slot.core.next_deadline() {
                self.heap.push(Reverse((next, idx, id)));
            }
            deliver_events(slot);
        }
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
                    if let Some((idx, slot)) = self.slot(id) {
                        let was_running = slot.core.next_deadline().is_some();
                        slot.core.set_remote(remote, now);
                        if let (false, Some(d)) = (was_running, slot.core.next_deadline()) {
                            self.heap.push(Reverse((d, idx, id)));
                        }
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
        let port = slot.port;
        drop(slot.socket);
        (self.free_port)(port);
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
        if self.metrics {
            self.rtp.flush();
        }
    }
}

/// Reads everything the session's socket holds (normally the one packet of
/// the last 20 ms), each datagram with its kernel arrival time.
fn drain_socket(slot: &mut Slot, rx: &mut RecvBatch, clock: &ArrivalClock, now: Instant) {
    loop {
        let n = match rx.recv(&slot.socket) {
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
            slot.core.handle_datagram(d.data, from, arrived);
        }
        if n < crate::recv_batch::RECV_BATCH {
            return;
        }
    }
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
