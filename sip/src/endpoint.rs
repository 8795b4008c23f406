//! The SIP endpoint: one per process. Binds the UDP socket and the TCP listener
//! on the same port, starts the driver task that runs the SIP core
//! (`crate::core`), and hands out calls: [`SipEndpoint::place_call`] for
//! outbound ones, [`InboundCalls`] for inbound ones. Also OPTIONS probes and the
//! trunk monitor built on them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::core::{Peer, SipCore, Timers};
use crate::driver::{serve_tcp, Driver, DriverCommand, Shared, COMMAND_QUEUE};
use crate::error::SipError;
use crate::trunk::TrunkHealth;
use crate::uas::InboundCall;
use crate::udp_port::UdpPort;
use crate::Transport;

/// How many new inbound calls may wait for the application before we answer 503.
pub const INBOUND_QUEUE_CAPACITY: usize = 256;

/// Configuration of the endpoint.
#[derive(Clone, Debug)]
pub struct SipConfig {
    /// Where to listen for UDP, and for TCP on the same port when `tcp` is set.
    /// Port 0 picks a free port (UDP first, then the same port for TCP).
    pub bind: SocketAddr,
    /// Also listen on TCP.
    pub tcp: bool,
    /// User-Agent header value.
    pub user_agent: String,
    /// RFC 3261 timer T1; the others keep their defaults.
    pub t1: Duration,
    /// Kernel receive buffer for the UDP socket (bursts of thousands of
    /// messages must not be dropped before we read them).
    pub udp_receive_buffer: usize,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            tcp: true,
            user_agent: format!("Dialcast/{}", env!("CARGO_PKG_VERSION")),
            t1: Duration::from_millis(500),
            udp_receive_buffer: 4 * 1024 * 1024,
        }
    }
}

/// Counters of what the endpoint has seen. Plain atomics: read them for metrics.
#[derive(Debug, Default)]
pub struct SipCounters {
    /// Datagrams or frames the parser could not read (dropped).
    pub unparseable: AtomicU64,
    /// Requests that failed validation and were answered with 4xx/5xx.
    pub malformed_requests: AtomicU64,
    /// Responses that failed validation and were dropped.
    pub malformed_responses: AtomicU64,
    /// New INVITEs refused with 503 because the inbound queue was full.
    pub inbound_overflow: AtomicU64,
    /// Messages the socket refused to send.
    pub send_failures: AtomicU64,
    /// Call events dropped because the call's owner did not read them.
    pub events_dropped: AtomicU64,
    /// Messages of calls resent by their retransmission timers (the
    /// driver copies the core's count after each batch of work).
    pub retransmissions: AtomicU64,
}

/// A snapshot of [`SipCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SipCountersSnapshot {
    pub unparseable: u64,
    pub malformed_requests: u64,
    pub malformed_responses: u64,
    pub inbound_overflow: u64,
    pub send_failures: u64,
    pub events_dropped: u64,
    pub retransmissions: u64,
}

impl SipCounters {
    pub fn snapshot(&self) -> SipCountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SipCountersSnapshot {
            unparseable: get(&self.unparseable),
            malformed_requests: get(&self.malformed_requests),
            malformed_responses: get(&self.malformed_responses),
            inbound_overflow: get(&self.inbound_overflow),
            send_failures: get(&self.send_failures),
            events_dropped: get(&self.events_dropped),
            retransmissions: get(&self.retransmissions),
        }
    }
}

/// A running SIP endpoint. Cheap to clone.
#[derive(Clone)]
pub struct SipEndpoint {
    pub(crate) shared: Arc<Shared>,
}

/// New inbound calls, in arrival order.
pub struct InboundCalls {
    rx: mpsc::Receiver<InboundCall>,
}

impl InboundCalls {
    /// The next inbound call, or `None` once the endpoint has shut down.
    pub async fn next(&mut self) -> Option<InboundCall> {
        self.rx.recv().await
    }
}

/// The answer to an OPTIONS probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub code: u16,
    pub retry_after: Option<Duration>,
    pub rtt: Duration,
}

impl SipEndpoint {
    /// Binds the sockets and starts serving. Returns the endpoint and the stream
    /// of inbound calls (when it is dropped, inbound calls get 503).
    pub async fn start(config: SipConfig) -> Result<(SipEndpoint, InboundCalls), SipError> {
        let bind_error = |addr: SocketAddr, e: std::io::Error| SipError::Bind {
            addr,
            reason: e.to_string(),
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(config.bind),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .map_err(|e| bind_error(config.bind, e))?;
        // Best effort: the kernel caps it at net.core.rmem_max.
        socket.set_recv_buffer_size(config.udp_receive_buffer).ok();
        socket
            .set_nonblocking(true)
            .map_err(|e| bind_error(config.bind, e))?;
        socket
            .bind(&config.bind.into())
            .map_err(|e| bind_error(config.bind, e))?;
        let socket = tokio::net::UdpSocket::from_std(socket.into())
            .map_err(|e| bind_error(config.bind, e))?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| bind_error(config.bind, e))?;

        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            commands: commands_tx,
            local_addr,
            counters: Arc::new(SipCounters::default()),
            next_handle: AtomicU64::new(1),
            calls_in_core: AtomicUsize::new(0),
            cancel: cancel.clone(),
        });
        if config.tcp {
            let listener = tokio::net::TcpListener::bind(local_addr)
                .await
                .map_err(|e| bind_error(local_addr, e))?;
            tokio::spawn(accept_tcp(listener, shared.clone()));
        }
        let core = SipCore::new(
            local_addr,
            config.user_agent.clone(),
            Timers {
                t1: config.t1,
                ..Timers::default()
            },
        );
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE_CAPACITY);
        let driver = Driver::new(core, UdpPort::new(socket), shared.clone(), inbound_tx);
        tokio::spawn(driver.run(commands_rx));
        info!(%local_addr, tcp = config.tcp, "SIP endpoint listening");
        Ok((SipEndpoint { shared }, InboundCalls { rx: inbound_rx }))
    }

    /// The address the endpoint listens on (UDP, and TCP when enabled).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    pub fn counters(&self) -> SipCountersSnapshot {
        self.shared.counters.snapshot()
    }

    /// Calls the SIP core holds: live ones, and ended ones kept for 64·T1 to
    /// absorb retransmissions.
    pub fn dialog_count(&self) -> usize {
        self.shared.calls_in_core.load(Ordering::Relaxed)
    }

    /// Stops the driver and the listeners.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }

    /// Sends one out-of-dialog OPTIONS to `target` and waits up to `timeout` for
    /// its final response. `Ok(None)` means no answer in time.
    pub async fn send_options(
        &self,
        target: SocketAddr,
        transport: Transport,
        timeout: Duration,
    ) -> Result<Option<ProbeAnswer>, SipError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let peer = Peer {
            addr: target,
            transport,
        };
        let started = Instant::now();
        self.shared
            .commands
            .send(DriverCommand::Probe(peer, reply_tx))
            .await
            .map_err(|_| SipError::Stopped)?;
        match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(Some((code, retry_after)))) => Ok(Some(ProbeAnswer {
                code,
                retry_after,
                rtt: started.elapsed(),
            })),
            Ok(Ok(None)) | Err(_) => Ok(None),
            Ok(Err(_)) => Err(SipError::Stopped),
        }
    }

    /// Keeps probing `target` with OPTIONS and feeds the answers into `health`
    /// until the endpoint shuts down or `stop` is cancelled.
    pub fn monitor_trunk(
        &self,
        target: SocketAddr,
        transport: Transport,
        health: Arc<std::sync::Mutex<TrunkHealth>>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let endpoint = self.clone();
        tokio::spawn(async move {
            loop {
                let sent = Instant::now();
                let timeout = lock(&health).config().probe_timeout;
                let answer = endpoint.send_options(target, transport, timeout).await;
                let next = {
                    let mut h = lock(&health);
                    match answer {
                        Ok(Some(a)) => h.on_probe_response(a.code, a.retry_after, Instant::now()),
                        Ok(None) => h.on_probe_timeout(),
                        Err(e) => {
                            debug!(error = %e, %target, "OPTIONS probe failed");
                            h.on_probe_timeout();
                        }
                    }
                    h.next_probe_after(sent)
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => {}
                    _ = stop.cancelled() => return,
                    _ = endpoint.shared.cancel.cancelled() => return,
                }
            }
        })
    }
}

/// Locks a std mutex, recovering the data if a holder panicked (the health
/// machine stays consistent after any single update).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_tcp(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.cancel.cancelled() => return,
        };
        match accepted {
            Ok((stream, remote)) => {
                tokio::spawn(serve_tcp(
                    stream,
                    remote,
                    shared.commands.clone(),
                    shared.cancel.clone(),
                ));
            }
            Err(e) => {
                debug!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
