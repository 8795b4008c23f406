//! The tokio side of the SIP core: owns the UDP socket, the TCP connections, the
//! clock and the command channel, feeds [`SipCore`] and carries out what it asks
//! (send these bytes, tell this call that). One task for every call of the
//! process; the calls' owners talk to it through bounded channels.
//!
//! Queues: commands in `COMMAND_QUEUE` (senders wait when full); events to a call
//! in `CALL_EVENT_QUEUE` (a call sees a handful of events: if its owner stops
//! reading and the queue fills, further events are dropped and counted); new
//! inbound calls in `endpoint::INBOUND_QUEUE_CAPACITY` (full: 503).

use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::core::{CallHandle, Command, Event, Peer, SipCore, Transmit};
use crate::endpoint::SipCounters;
use crate::uac::CallEvent;
use crate::uas::{InboundCall, InboundEvent};
use crate::udp_port::UdpPort;
use crate::wire::ReadOutcome;
use crate::Transport;

/// Commands waiting for the driver.
pub const COMMAND_QUEUE: usize = 8192;
/// Events waiting for one call's owner.
pub const CALL_EVENT_QUEUE: usize = 64;
/// Messages waiting for one TCP connection's writer.
const TCP_WRITE_QUEUE: usize = 1024;
/// Largest SIP message we accept (UDP datagram or TCP frame).
const MAX_MESSAGE: usize = 65_535;
/// Commands handled per wake-up before the others get a turn.
const BATCH: usize = 64;
/// Datagrams read per wake-up before the others get a turn: a polled tick
/// (see `udp_port`) holds a millisecond of them.
const POLLED_BATCH: usize = 256;

/// Where the answer to an OPTIONS probe goes: status and Retry-After, or `None`.
pub type ProbeReply = oneshot::Sender<Option<(u16, Option<Duration>)>>;

/// What the calls' owners and the TCP tasks send to the driver.
pub enum DriverCommand {
    Core(Command),
    Dial(CallHandle, Box<crate::core::Dial>, mpsc::Sender<CallEvent>),
    Probe(Peer, ProbeReply),
    TcpOpened(SocketAddr, mpsc::Sender<Vec<u8>>),
    TcpClosed(SocketAddr),
    TcpFrame(SocketAddr, Vec<u8>),
}

/// What the public handles share with the driver.
pub struct Shared {
    pub commands: mpsc::Sender<DriverCommand>,
    pub local_addr: SocketAddr,
    pub counters: Arc<SipCounters>,
    pub next_handle: AtomicU64,
    pub calls_in_core: AtomicUsize,
    pub cancel: CancellationToken,
}

impl Shared {
    pub fn new_handle(&self) -> CallHandle {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }
}

/// The driver's state.
pub struct Driver {
    core: SipCore,
    udp: UdpPort,
    shared: Arc<Shared>,
    // Keyed by our own handles and probe ids: FxHash (see core/mod.rs).
    outbound: FxHashMap<CallHandle, mpsc::Sender<CallEvent>>,
    inbound: FxHashMap<CallHandle, mpsc::Sender<InboundEvent>>,
    inbound_queue: mpsc::Sender<InboundCall>,
    probes: FxHashMap<u64, ProbeReply>,
    next_probe: u64,
    tcp: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    tcp_pending: HashMap<SocketAddr, Vec<Vec<u8>>>,
}

impl Driver {
    pub fn new(
        core: SipCore,
        udp: UdpPort,
        shared: Arc<Shared>,
        inbound_queue: mpsc::Sender<InboundCall>,
    ) -> Self {
        Driver {
            core,
            udp,
            shared,
            outbound: FxHashMap::default(),
            inbound: FxHashMap::default(),
            inbound_queue,
            probes: FxHashMap::default(),
            next_probe: 1,
            tcp: HashMap::default(),
            tcp_pending: HashMap::default(),
        }
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<DriverCommand>) {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let cancel = self.shared.cancel.clone();
        // One timer, re-armed only when the core's next deadline moves: a new
        // Sleep per wake-up would cost a timer-wheel insert and removal each time.
        // `armed_for` is what it is set to (`Some(None)`: idle), `None` once it
        // fired: an elapsed Sleep stays ready, so it must be re-armed even when
        // the core has no deadline left (else the loop spins on it).
        let idle = Duration::from_secs(3600);
        let timer = tokio::time::sleep(idle);
        tokio::pin!(timer);
        let mut armed_for: Option<Option<Instant>> = Some(None);
        loop {
            let next = self.core.next_deadline();
            if armed_for != Some(next) {
                armed_for = Some(next);
                let at = next
                    .map(tokio::time::Instant::from_std)
                    .unwrap_or_else(|| tokio::time::Instant::now() + idle);
                timer.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                ready = self.udp.ready() => {
                    let mut read = 0;
                    if ready.is_ok() {
                        // Polled, a tick may hold a millisecond of datagrams.
                        while read < POLLED_BATCH {
                            match self.udp.try_recv_from(&mut buf) {
                                Ok((len, from)) => {
                                    read += 1;
                                    self.ingest(&buf[..len], Peer { addr: from, transport: Transport::Udp });
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    self.udp.after_wake(read, Instant::now());
                }
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    self.command(command);
                    for _ in 0..BATCH {
                        match commands.try_recv() {
                            Ok(command) => self.command(command),
                            Err(_) => break,
                        }
                    }
                }
                _ = &mut timer => {
                    armed_for = None;
                    self.core.handle_timeout(Instant::now());
                }
            }
            self.flush().await;
        }
    }

    fn ingest(&mut self, bytes: &[u8], from: Peer) {
        let counters = &self.shared.counters;
        match crate::wire::read_message(bytes) {
            ReadOutcome::Message(message) => {
                self.core.handle_message(*message, from, Instant::now())
            }
            ReadOutcome::Rejected { response, problem } => {
                counters.malformed_requests.fetch_add(1, Ordering::Relaxed);
                debug!(%problem, from = %from.addr, "malformed request answered");
                self.transmit(from, response);
            }
            ReadOutcome::DroppedRequest { problem } => {
                counters.malformed_requests.fetch_add(1, Ordering::Relaxed);
                debug!(%problem, from = %from.addr, "malformed request dropped");
            }
            ReadOutcome::DroppedResponse { problem } => {
                counters.malformed_responses.fetch_add(1, Ordering::Relaxed);
                debug!(%problem, from = %from.addr, "malformed response dropped");
            }
            ReadOutcome::Unparseable => {
                counters.unparseable.fetch_add(1, Ordering::Relaxed);
            }
            ReadOutcome::KeepAlive => {}
        }
    }

    fn command(&mut self, command: DriverCommand) {
        let now = Instant::now();
        match command {
            DriverCommand::Core(command) => self.core.handle_command(command, now),
            DriverCommand::Dial(handle, dial, events) => {
                self.outbound.insert(handle, events);
                self.core.handle_command(Command::Dial(handle, dial), now);
            }
            DriverCommand::Probe(peer, reply) => {
                let id = self.next_probe;
                self.next_probe += 1;
                self.probes.insert(id, reply);
                self.core.handle_command(Command::Options(id, peer), now);
            }
            DriverCommand::TcpOpened(addr, writer) => {
                for bytes in self.tcp_pending.remove(&addr).unwrap_or_default() {
                    writer.try_send(bytes).ok();
                }
                self.tcp.insert(addr, writer);
            }
            DriverCommand::TcpClosed(addr) => {
                self.tcp.remove(&addr);
                self.tcp_pending.remove(&addr);
            }
            DriverCommand::TcpFrame(addr, bytes) => {
                self.ingest(
                    &bytes,
                    Peer {
                        addr,
                        transport: Transport::Tcp,
                    },
                );
            }
        }
    }

    async fn flush(&mut self) {
        while let Some(Transmit { to, bytes }) = self.core.poll_transmit() {
            self.transmit_async(to, bytes).await;
        }
        while let Some(event) = self.core.poll_event() {
            self.route(event);
        }
        self.shared
            .calls_in_core
            .store(self.core.call_count(), Ordering::Relaxed);
        self.shared
            .counters
            .retransmissions
            .store(self.core.retransmissions(), Ordering::Relaxed);
    }

    /// Sends without waiting (used while handling input; UDP send buffers
    /// rarely fill, and a full one drops like the network would).
    fn transmit(&mut self, to: Peer, bytes: Vec<u8>) {
        match to.transport {
            Transport::Udp => {
                if self.udp.try_send_to(&bytes, to.addr).is_err() {
                    self.shared
                        .counters
                        .send_failures
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Transport::Tcp => self.tcp_send(to.addr, bytes),
        }
    }

    async fn transmit_async(&mut self, to: Peer, bytes: Vec<u8>) {
        match to.transport {
            Transport::Udp => match self.udp.try_send_to(&bytes, to.addr) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.udp.send_to(&bytes, to.addr).await.is_err() {
                        self.shared
                            .counters
                            .send_failures
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    self.shared
                        .counters
                        .send_failures
                        .fetch_add(1, Ordering::Relaxed);
                }
            },
            Transport::Tcp => self.tcp_send(to.addr, bytes),
        }
    }

    fn tcp_send(&mut self, addr: SocketAddr, bytes: Vec<u8>) {
        if let Some(writer) = self.tcp.get(&addr) {
            if writer.try_send(bytes).is_err() {
                self.shared
                    .counters
                    .send_failures
                    .fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let first = !self.tcp_pending.contains_key(&addr);
        self.tcp_pending.entry(addr).or_default().push(bytes);
        if first {
            let commands = self.shared.commands.clone();
            let cancel = self.shared.cancel.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => serve_tcp(stream, addr, commands, cancel).await,
                    _ => {
                        debug!(%addr, "TCP connect failed");
                        commands.send(DriverCommand::TcpClosed(addr)).await.ok();
                    }
                }
            });
        }
    }

    fn route(&mut self, event: Event) {
        match event {
            Event::Outbound(handle, event) => {
                let ended = matches!(event, CallEvent::Ended(_));
                deliver(
                    &mut self.outbound,
                    handle,
                    event,
                    ended,
                    &self.shared.counters,
                );
            }
            Event::Inbound(handle, event) => {
                let ended = matches!(event, InboundEvent::Ended(_));
                deliver(
                    &mut self.inbound,
                    handle,
                    event,
                    ended,
                    &self.shared.counters,
                );
            }
            Event::Offered(handle, offered) => {
                let (tx, rx) = mpsc::channel(CALL_EVENT_QUEUE);
                let call = InboundCall::new(handle, self.shared.clone(), offered, rx);
                match self.inbound_queue.try_send(call) {
                    Ok(()) => {
                        self.inbound.insert(handle, tx);
                    }
                    Err(refused) => {
                        self.shared
                            .counters
                            .inbound_overflow
                            .fetch_add(1, Ordering::Relaxed);
                        let call = match refused {
                            mpsc::error::TrySendError::Full(call)
                            | mpsc::error::TrySendError::Closed(call) => call,
                        };
                        call.disarm();
                        self.core
                            .handle_command(Command::Reject(handle, 503, None), Instant::now());
                    }
                }
            }
            Event::Probe(id, answer) => {
                if let Some(reply) = self.probes.remove(&id) {
                    reply.send(answer).ok();
                }
            }
        }
    }
}

/// Hands `event` to the call's owner without waiting (a full queue drops it
/// and counts the drop) and forgets the owner after the last event.
fn deliver<E>(
    owners: &mut FxHashMap<CallHandle, mpsc::Sender<E>>,
    handle: CallHandle,
    event: E,
    last: bool,
    counters: &SipCounters,
) {
    if let Some(sender) = owners.get(&handle) {
        if sender.try_send(event).is_err() {
            counters.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    if last {
        owners.remove(&handle);
    }
}

/// Reads and writes one TCP connection: frames go to the driver, the driver's
/// messages come back through the writer queue. TCP_NODELAY is set: SIP
/// messages are small and must not wait for Nagle's algorithm.
pub async fn serve_tcp(
    stream: TcpStream,
    addr: SocketAddr,
    commands: mpsc::Sender<DriverCommand>,
    cancel: CancellationToken,
) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(error = %e, "could not set TCP_NODELAY");
    }
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_WRITE_QUEUE);
    if commands
        .send(DriverCommand::TcpOpened(addr, tx))
        .await
        .is_err()
    {
        return;
    }
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut framer = crate::framing::StreamFramer::new(MAX_MESSAGE);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = reader.read(&mut chunk) => read,
            _ = cancel.cancelled() => break,
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        framer.push(&chunk[..n]);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    if commands
                        .send(DriverCommand::TcpFrame(addr, frame))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(%addr, error = %e, "closing TCP connection: bad framing");
                    write_task.abort();
                    commands.send(DriverCommand::TcpClosed(addr)).await.ok();
                    return;
                }
            }
        }
    }
    write_task.abort();
    commands.send(DriverCommand::TcpClosed(addr)).await.ok();
}
