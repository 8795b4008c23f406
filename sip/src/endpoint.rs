//! The SIP endpoint: one per process. Owns the rsipstack endpoint and dialog layer,
//! the UDP and TCP listeners, and the task that routes incoming requests:
//! new INVITEs become [`InboundCall`]s, in-dialog requests go to their dialog,
//! out-of-dialog OPTIONS are answered here, anything else gets the RFC 3261 answer.
//!
//! What we add on top of rsipstack, and why:
//! - TCP_NODELAY on every TCP connection, ours and accepted ones. rsipstack 0.7.14
//!   connects and accepts without it, so small SIP messages wait for Nagle's
//!   algorithm (tens of ms per message under load). We open the sockets ourselves
//!   and hand them to rsipstack with `TcpConnection::from_stream`.
//! - Validation of every incoming message (`crate::validate`) before the
//!   transaction layer sees it: malformed requests get a 400 (or 505) and are
//!   counted, malformed responses are dropped and counted.
//! - Answers to in-dialog re-INVITE/UPDATE/INFO/OPTIONS/NOTIFY (see
//!   `crate::in_dialog`); without them the stack would leave them unanswered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, SipMessage, StatusCode};
use rsipstack::transaction::endpoint::{EndpointOption, TransportEventInspector};
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::connection::TransportEvent;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rsipstack::transaction::endpoint::Endpoint;
use rsipstack::EndpointBuilder;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::SipError;
use crate::trunk::{parse_retry_after, TrunkHealth};
use crate::uas::InboundCall;
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
    /// User-Agent and Server header value.
    pub user_agent: String,
    /// RFC 3261 timer T1; the others follow from it.
    pub t1: Duration,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            tcp: true,
            user_agent: format!("Dialcast/{}", env!("CARGO_PKG_VERSION")),
            t1: Duration::from_millis(500),
        }
    }
}

/// Counters of what the endpoint has seen. Plain atomics: read them for metrics.
#[derive(Debug, Default)]
pub struct SipCounters {
    /// Requests that failed validation and were answered with 4xx/5xx.
    pub malformed_requests: AtomicU64,
    /// Responses that failed validation and were dropped.
    pub malformed_responses: AtomicU64,
    /// New INVITEs refused with 503 because the inbound queue was full.
    pub inbound_overflow: AtomicU64,
    /// Out-of-dialog requests answered 481 (no dialog) or 405 (method).
    pub stray_requests: AtomicU64,
}

/// A snapshot of [`SipCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SipCountersSnapshot {
    pub malformed_requests: u64,
    pub malformed_responses: u64,
    pub inbound_overflow: u64,
    pub stray_requests: u64,
}

impl SipCounters {
    pub fn snapshot(&self) -> SipCountersSnapshot {
        SipCountersSnapshot {
            malformed_requests: self.malformed_requests.load(Ordering::Relaxed),
            malformed_responses: self.malformed_responses.load(Ordering::Relaxed),
            inbound_overflow: self.inbound_overflow.load(Ordering::Relaxed),
            stray_requests: self.stray_requests.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct EndpointInner {
    pub(crate) endpoint: Endpoint,
    pub(crate) dialog_layer: Arc<DialogLayer>,
    pub(crate) local_addr: SocketAddr,
    pub(crate) counters: Arc<SipCounters>,
    cancel: CancellationToken,
    tcp_connections: Mutex<HashMap<SocketAddr, TcpConnection>>,
}

/// A running SIP endpoint. Cheap to clone.
#[derive(Clone)]
pub struct SipEndpoint {
    pub(crate) inner: Arc<EndpointInner>,
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

/// Checks each incoming message before the transaction layer sees it.
struct Validator {
    counters: Arc<SipCounters>,
}

#[async_trait::async_trait]
impl TransportEventInspector for Validator {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        let TransportEvent::Incoming(msg, connection, from) = event else {
            return Some(event);
        };
        match &msg {
            SipMessage::Request(req) => {
                if let Err(problem) = crate::validate::validate_request(req) {
                    self.counters
                        .malformed_requests
                        .fetch_add(1, Ordering::Relaxed);
                    debug!(%from, %problem, "malformed request");
                    // RFC 3261 §8.2: answer what can be answered; never ACK.
                    if req.method != Method::Ack {
                        if let Some(resp) = crate::request::error_response(
                            req,
                            crate::validate::response_status(&problem),
                        ) {
                            let dest = (!connection.is_reliable()).then_some(&from);
                            if let Err(e) = connection.send(resp.into(), dest).await {
                                debug!(error = %e, "could not answer a malformed request");
                            }
                        }
                    }
                    return None;
                }
            }
            SipMessage::Response(resp) => {
                if let Err(problem) = crate::validate::validate_response(resp) {
                    self.counters
                        .malformed_responses
                        .fetch_add(1, Ordering::Relaxed);
                    debug!(%from, %problem, "malformed response dropped");
                    return None;
                }
            }
        }
        Some(TransportEvent::Incoming(msg, connection, from))
    }
}

impl SipEndpoint {
    /// Binds the listeners and starts serving. Returns the endpoint and the stream
    /// of inbound calls (drop it to refuse all inbound calls with 503).
    pub async fn start(config: SipConfig) -> Result<(SipEndpoint, InboundCalls), SipError> {
        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.child_token());

        let udp = UdpConnection::create_connection(config.bind, None, Some(cancel.child_token()))
            .await
            .map_err(|source| SipError::Bind {
                addr: config.bind,
                reason: source.to_string(),
            })?;
        let udp_addr = udp
            .get_addr()
            .get_socketaddr()
            .map_err(|e| SipError::Bind {
                addr: config.bind,
                reason: e.to_string(),
            })?;
        transport_layer.add_transport(udp.into());
        let local_addr = udp_addr;

        let counters = Arc::new(SipCounters::default());
        let option = EndpointOption {
            t1: config.t1,
            t1x64: config.t1 * 64,
            // Plain UUID Call-IDs: the default suffix names the stack's vendor.
            callid_format: rsipstack::transaction::CallIdFormat::Uuid,
            ..EndpointOption::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_user_agent(&config.user_agent)
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.child_token())
            .with_option(option)
            .with_transport_inspector(Box::new(Validator {
                counters: counters.clone(),
            }))
            .build();
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;

        let inner = Arc::new(EndpointInner {
            endpoint,
            dialog_layer,
            local_addr,
            counters,
            cancel: cancel.clone(),
            tcp_connections: Mutex::new(HashMap::new()),
        });

        if config.tcp {
            let listener = tokio::net::TcpListener::bind(local_addr)
                .await
                .map_err(|e| SipError::Bind {
                    addr: local_addr,
                    reason: e.to_string(),
                })?;
            tokio::spawn(accept_tcp(inner.clone(), listener));
        }

        let serve = inner.endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = serve.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });

        let (tx, rx) = mpsc::channel(INBOUND_QUEUE_CAPACITY);
        tokio::spawn(route_incoming(inner.clone(), incoming, tx));
        info!(%local_addr, tcp = config.tcp, "SIP endpoint listening");
        Ok((SipEndpoint { inner }, InboundCalls { rx }))
    }

    /// The address the endpoint listens on (UDP, and TCP when enabled).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub fn counters(&self) -> SipCountersSnapshot {
        self.inner.counters.snapshot()
    }

    /// Dialogs currently known to the stack (confirmed calls and calls in setup).
    pub fn dialog_count(&self) -> usize {
        self.inner.dialog_layer.len()
    }

    /// Stops the listeners and all transactions.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    /// Makes sure a TCP connection with TCP_NODELAY to `target` is in rsipstack's
    /// connection cache, so that the stack reuses it instead of opening its own.
    pub(crate) async fn ensure_tcp(&self, target: SocketAddr) -> Result<(), SipError> {
        let mut connections = self.inner.tcp_connections.lock().await;
        if let Some(existing) = connections.get(&target) {
            let alive = existing
                .cancel_token()
                .is_none_or(|token| !token.is_cancelled());
            if alive {
                return Ok(());
            }
        }
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(target),
        )
        .await
        .map_err(|_| SipError::Connect {
            addr: target,
            reason: "timed out".into(),
        })?
        .map_err(|e| SipError::Connect {
            addr: target,
            reason: e.to_string(),
        })?;
        stream.set_nodelay(true).map_err(|e| SipError::Connect {
            addr: target,
            reason: e.to_string(),
        })?;
        let local = stream.local_addr().map_err(|e| SipError::Connect {
            addr: target,
            reason: e.to_string(),
        })?;
        let local = SipAddr {
            r#type: Some(rsipstack::sip::Transport::Tcp),
            addr: local.into(),
        };
        let connection =
            TcpConnection::from_stream(stream, local, Some(self.inner.cancel.child_token()))
                .map_err(|e| SipError::Connect {
                    addr: target,
                    reason: e.to_string(),
                })?;
        self.inner
            .endpoint
            .inner
            .transport_layer
            .add_connection(SipConnection::Tcp(connection.clone()));
        connections.insert(target, connection);
        Ok(())
    }

    /// Sends one out-of-dialog OPTIONS to `target` and waits up to `timeout` for
    /// its final response. `Ok(None)` means no answer in time.
    pub async fn send_options(
        &self,
        target: SocketAddr,
        transport: Transport,
        timeout: Duration,
    ) -> Result<Option<ProbeAnswer>, SipError> {
        if transport == Transport::Tcp {
            self.ensure_tcp(target).await?;
        }
        let mut tx = crate::request::out_of_dialog(self, Method::Options, target, transport)?;
        tx.send()
            .await
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let started = Instant::now();
        let wait = async {
            while let Some(msg) = tx.receive().await {
                if let SipMessage::Response(resp) = msg {
                    let code = resp.status_code.code();
                    if code >= 200 {
                        let retry_after = resp.headers.iter().find_map(|h| match h {
                            Header::RetryAfter(v) => parse_retry_after(v.value()),
                            _ => None,
                        });
                        return Some(ProbeAnswer {
                            code,
                            retry_after,
                            rtt: started.elapsed(),
                        });
                    }
                }
            }
            None
        };
        Ok(tokio::time::timeout(timeout, wait).await.ok().flatten())
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
                    _ = endpoint.inner.cancel.cancelled() => return,
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

/// The answer to an OPTIONS probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub code: u16,
    pub retry_after: Option<Duration>,
    pub rtt: Duration,
}

async fn accept_tcp(inner: Arc<EndpointInner>, listener: tokio::net::TcpListener) {
    let local = SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tcp),
        addr: inner.local_addr.into(),
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = inner.cancel.cancelled() => return,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            debug!(error = %e, %remote, "could not set TCP_NODELAY");
        }
        match TcpConnection::from_stream(stream, local.clone(), Some(inner.cancel.child_token())) {
            Ok(connection) => inner
                .endpoint
                .inner
                .transport_layer
                .add_connection(SipConnection::Tcp(connection)),
            Err(e) => debug!(error = %e, %remote, "TCP connection refused"),
        }
    }
}

async fn route_incoming(
    inner: Arc<EndpointInner>,
    mut incoming: TransactionReceiver,
    inbound: mpsc::Sender<InboundCall>,
) {
    while let Some(mut tx) = incoming.recv().await {
        let has_to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        match tx.original.method {
            Method::Invite if !has_to_tag => {
                let permit = match inbound.try_reserve() {
                    Ok(permit) => permit,
                    Err(_) => {
                        inner.counters.inbound_overflow.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            tx.reply(StatusCode::ServiceUnavailable).await.ok();
                        });
                        continue;
                    }
                };
                match InboundCall::accept_transaction(&inner, tx) {
                    Ok(call) => permit.send(call),
                    Err(e) => debug!(error = %e, "inbound INVITE refused"),
                }
            }
            Method::Options if !has_to_tag => {
                tokio::spawn(async move {
                    let headers = vec![
                        Header::Allow(crate::ALLOWED_METHODS.into()),
                        Header::Accept("application/sdp".into()),
                    ];
                    tx.reply_with(StatusCode::OK, headers, None).await.ok();
                });
            }
            _ => match inner.dialog_layer.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(e) = dialog.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                }
                None => {
                    inner.counters.stray_requests.fetch_add(1, Ordering::Relaxed);
                    let status = if has_to_tag || tx.original.method == Method::Bye {
                        StatusCode::CallTransactionDoesNotExist
                    } else {
                        StatusCode::MethodNotAllowed
                    };
                    tokio::spawn(async move {
                        tx.reply(status).await.ok();
                    });
                }
            },
        }
    }
}
