//! The one RTP socket of a scheduler thread in
//! [`RtpSocketMode::PerThread`](crate::RtpSocketMode): what the thread reads
//! from it (every wake-up, in `recvmmsg` batches), which call each datagram
//! is for ([`crate::demux`]), and the batch of packets its ticks send
//! (`sendmmsg`, [`crate::send_batch`]).
//!
//! **Parking.** A datagram that matches no call is kept (up to
//! [`PARK_CAPACITY`], for [`PARK_FOR`]) and offered again when a call's
//! remote is set with its source address: a callee's first packets often
//! arrive before its answer has been processed (`set_remote`), and with a
//! socket per call they would have waited in that call's socket. Only what
//! expires or is pushed out counts as unmatched.
//!
//! Why: with a socket per call every packet costs a system call of its own
//! on both sides, and the kernel was 84-87 % of the media threads in the
//! full reminder flow; one socket with batches brings the kernel's cost per
//! tick from 2.2-3.2 µs to 1.2-1.4 µs on this project's host (loadtest
//! RESULTS.md, "The kernel's floor for RTP").

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;

use crate::demux::{Demux, Route};
use crate::recv_batch::{enable_gro, ArrivalClock, RecvBatch, GRO_BUF, SHARED_RECV_BATCH};
use crate::rtp::peek_ssrc;
use crate::send_batch::SendBatch;

/// At most this many `recvmmsg` batches per wake-up, so a flood cannot
/// keep the thread from its ticks (64 × 64 datagrams: 16 ms of 5,000 calls).
const MAX_BATCHES_PER_DRAIN: usize = 64;

/// How long a datagram that matches no call waits for one that claims it.
pub(crate) const PARK_FOR: Duration = Duration::from_millis(500);
/// Datagrams kept waiting at most; the oldest is dropped for a new one.
pub(crate) const PARK_CAPACITY: usize = 1024;

/// A datagram waiting for its call.
struct Parked {
    from: SocketAddr,
    arrived: Instant,
    data: Box<[u8]>,
}

/// A call as the shared socket knows it: the scheduler's slot and the
/// session's id (a slot is reused after a close).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SlotKey {
    pub(crate) idx: usize,
    pub(crate) id: u64,
}

pub(crate) struct SharedSocket {
    socket: UdpSocket,
    pub(crate) demux: Demux<SlotKey>,
    rx: RecvBatch<SHARED_RECV_BATCH, GRO_BUF>,
    pub(crate) tx: SendBatch<SlotKey>,
    /// Datagrams that matched no call, dropped, not yet reported.
    pub(crate) unmatched: u64,
    parked: VecDeque<Parked>,
}

impl SharedSocket {
    /// `udp_offload`: send with UDP GSO and receive with UDP GRO where the
    /// kernel allows (`crate::send_batch`'s doc says when it helps).
    pub(crate) fn new(socket: UdpSocket, udp_offload: bool) -> SharedSocket {
        let mut tx = SendBatch::new();
        if udp_offload {
            tx.set_gso(true);
            if let Err(e) = enable_gro(&socket) {
                tracing::info!(error = %e, "UDP GRO refused; RTP datagrams come one by one");
            }
        }
        SharedSocket {
            socket,
            demux: Demux::default(),
            rx: RecvBatch::new(),
            tx,
            unmatched: 0,
            parked: VecDeque::new(),
        }
    }

    /// Read everything queued and hand each datagram that matches a call to
    /// `deliver` (with its kernel arrival time); count the rest. `deliver`
    /// returns false when the call is gone (the datagram then counts as
    /// unmatched too).
    pub(crate) fn drain(
        &mut self,
        mut deliver: impl FnMut(SlotKey, &[u8], SocketAddr, Instant) -> bool,
    ) {
        let now = Instant::now();
        let clock = ArrivalClock::now();
        for _ in 0..MAX_BATCHES_PER_DRAIN {
            let n = match self.rx.recv(&self.socket) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // WouldBlock: drained. Other errors (ICMP reports): next time.
                Err(_) => return,
            };
            for i in 0..n {
                let d = self.rx.datagram(i);
                let Some(from) = d.from else { continue };
                let arrived = clock.arrival(d.stamp, now);
                for packet in d.packets() {
                    match self.demux.route(from, peek_ssrc(packet)) {
                        Route::To(key) => {
                            if !deliver(key, packet, from, arrived) {
                                self.unmatched += 1;
                            }
                        }
                        Route::Unknown | Route::Ambiguous => {
                            if self.parked.len() >= PARK_CAPACITY {
                                self.parked.pop_front();
                                self.unmatched += 1;
                            }
                            self.parked.push_back(Parked {
                                from,
                                arrived,
                                data: packet.into(),
                            });
                        }
                    }
                }
            }
            if n < SHARED_RECV_BATCH {
                return;
            }
        }
    }

    /// A call's remote was set to `addr`: offer it (in arrival order) what
    /// waits from there.
    pub(crate) fn retry_parked(
        &mut self,
        addr: SocketAddr,
        mut deliver: impl FnMut(SlotKey, &[u8], SocketAddr, Instant) -> bool,
    ) {
        let SharedSocket {
            parked,
            demux,
            unmatched,
            ..
        } = self;
        parked.retain(|p| {
            if p.from != addr {
                return true;
            }
            match demux.route(p.from, peek_ssrc(&p.data)) {
                Route::To(key) => {
                    if !deliver(key, &p.data, p.from, p.arrived) {
                        *unmatched += 1;
                    }
                    false
                }
                Route::Unknown | Route::Ambiguous => true,
            }
        });
    }

    /// Drop (and count) what has waited longer than [`PARK_FOR`].
    pub(crate) fn expire_parked(&mut self, now: Instant) {
        while let Some(p) = self.parked.front() {
            if now.saturating_duration_since(p.arrived) < PARK_FOR {
                break;
            }
            self.parked.pop_front();
            self.unmatched += 1;
        }
    }

    /// Send the queued packets; `failed` is called for each one refused.
    pub(crate) fn flush(&mut self, failed: impl FnMut(SlotKey)) {
        self.tx.flush(&self.socket, failed);
    }
}
