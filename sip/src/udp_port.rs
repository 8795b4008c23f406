//! The endpoint's UDP socket, and how the driver waits for datagrams on it:
//! woken by readiness while traffic is light, polled once a millisecond while
//! it is heavy.
//!
//! Why two modes: a thread that sleeps in `epoll_wait` and is woken by each
//! arriving datagram pays a context switch per datagram, and on the
//! development VM that switch (`finish_task_switch` under `epoll_wait`) was
//! the largest single cost of a call at 2,000 calls/s (20 % of the process's
//! CPU, about 2,200 sleeps a second). Reading every millisecond instead
//! collects what arrived meanwhile in one wake-up that the runtime shares with
//! its timers, and adds at most a millisecond to a message's handling, which
//! no SIP timer notices (T1 is 500 ms). While polled, the socket is taken out
//! of the runtime's epoll set: registered, every arrival would still wake the
//! thread even with nobody waiting for it. When traffic falls off, the socket
//! goes back to readiness, so an idle endpoint does not wake a thousand times
//! a second.
//!
//! Thresholds (from the rates, not tuned to a benchmark): polled from 800
//! readiness wake-ups a second (8 within 10 ms), back to readiness below 200
//! datagrams a second (fewer than 20 within 100 ms): the gap between them
//! keeps a steady load from flapping between modes.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

/// How often the socket is read while polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1);
/// Readiness wake-ups within [`BUSY_WINDOW`] that switch to polling.
const BUSY_WAKES: u32 = 8;
const BUSY_WINDOW: Duration = Duration::from_millis(10);
/// Fewer datagrams than this within [`QUIET_WINDOW`] switch back.
const QUIET_DATAGRAMS: u32 = 20;
const QUIET_WINDOW: Duration = Duration::from_millis(100);

enum Mode {
    /// In the runtime's epoll set: `ready` waits for readiness.
    Registered(tokio::net::UdpSocket),
    /// Out of it: `ready` waits for the next tick.
    Polled(std::net::UdpSocket, Interval),
    /// Only while switching; never seen outside `switch`.
    Switching,
}

/// Whether the port is read on readiness or on a clock.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortMode {
    Readiness,
    Polled,
}

pub struct UdpPort {
    mode: Mode,
    window_start: Instant,
    /// Readiness wake-ups (registered) or datagrams (polled) in this window.
    in_window: u32,
}

impl UdpPort {
    /// Starts in readiness mode. `socket` must be non-blocking (tokio's is).
    pub fn new(socket: tokio::net::UdpSocket) -> UdpPort {
        UdpPort {
            mode: Mode::Registered(socket),
            window_start: Instant::now(),
            in_window: 0,
        }
    }

    #[cfg(test)]
    pub fn mode(&self) -> PortMode {
        match self.mode {
            Mode::Polled(..) => PortMode::Polled,
            _ => PortMode::Readiness,
        }
    }

    /// Waits until datagrams may be waiting: readiness, or the next tick.
    /// Cancel-safe, so it can sit in a `select!`.
    pub async fn ready(&mut self) -> io::Result<()> {
        match &mut self.mode {
            Mode::Registered(socket) => socket.readable().await,
            Mode::Polled(_, ticks) => {
                ticks.tick().await;
                Ok(())
            }
            Mode::Switching => std::future::pending().await,
        }
    }

    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.mode {
            Mode::Registered(socket) => socket.try_recv_from(buf),
            Mode::Polled(socket, _) => socket.recv_from(buf),
            Mode::Switching => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Sends without waiting (`WouldBlock` when the send buffer is full).
    pub fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        match &self.mode {
            Mode::Registered(socket) => socket.try_send_to(buf, to),
            Mode::Polled(socket, _) => socket.send_to(buf, to),
            Mode::Switching => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Sends, waiting for room in the send buffer if it is full: for
    /// writability when registered, a poll interval at a time when polled
    /// (at most 100 of them: a buffer that stays full for 100 ms is a
    /// failure, like a network that drops).
    pub async fn send_to(&mut self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        for _ in 0..100 {
            match &self.mode {
                Mode::Registered(socket) => return socket.send_to(buf, to).await,
                Mode::Polled(socket, _) => match socket.send_to(buf, to) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        tokio::time::sleep(POLL_INTERVAL).await;
                    }
                    other => return other,
                },
                Mode::Switching => break,
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    /// Tell the port how many datagrams the last `ready` wake-up read; it
    /// switches mode when the rate crosses a threshold (see the module docs).
    pub fn after_wake(&mut self, datagrams: usize, now: Instant) {
        let polled = matches!(self.mode, Mode::Polled(..));
        let window = if polled { QUIET_WINDOW } else { BUSY_WINDOW };
        if now.saturating_duration_since(self.window_start) >= window {
            if polled && self.in_window < QUIET_DATAGRAMS {
                self.switch(false);
            }
            self.window_start = now;
            self.in_window = 0;
        }
        if polled {
            self.in_window = self
                .in_window
                .saturating_add(u32::try_from(datagrams).unwrap_or(u32::MAX));
        } else {
            self.in_window += 1;
            if self.in_window >= BUSY_WAKES {
                self.switch(true);
                self.window_start = now;
                self.in_window = 0;
            }
        }
    }

    /// Moves the socket in or out of the runtime's epoll set. If the runtime
    /// refuses to register it again (it has run out of resources), it stays
    /// polled: slower to go quiet, never deaf.
    fn switch(&mut self, to_polled: bool) {
        self.mode = match std::mem::replace(&mut self.mode, Mode::Switching) {
            Mode::Registered(socket) if to_polled => match socket.into_std() {
                Ok(std) => Mode::Polled(std, poll_interval()),
                Err(e) => {
                    tracing::error!(error = %e, "SIP UDP socket lost while leaving epoll");
                    Mode::Switching
                }
            },
            Mode::Polled(std, ticks) if !to_polled => {
                match std.try_clone().and_then(tokio::net::UdpSocket::from_std) {
                    Ok(socket) => {
                        drop(std);
                        Mode::Registered(socket)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "SIP socket stays polled");
                        Mode::Polled(std, ticks)
                    }
                }
            }
            other => other,
        };
    }
}

fn poll_interval() -> Interval {
    let mut ticks = tokio::time::interval(POLL_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn port() -> (UdpPort, std::net::UdpSocket) {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind peer");
        peer.connect(socket.local_addr().expect("addr"))
            .expect("connect");
        (UdpPort::new(socket), peer)
    }

    async fn read_all(port: &mut UdpPort) -> usize {
        port.ready().await.expect("ready");
        let mut buf = [0u8; 64];
        let mut n = 0;
        while port.try_recv_from(&mut buf).is_ok() {
            n += 1;
        }
        n
    }

    #[tokio::test]
    async fn busy_traffic_switches_to_polling_and_quiet_traffic_back() {
        let (mut port, peer) = port().await;
        assert_eq!(port.mode(), PortMode::Readiness);
        let t0 = Instant::now();
        // Eight wake-ups within 10 ms: busy.
        for i in 0..8 {
            peer.send(b"x").expect("send");
            let n = read_all(&mut port).await;
            port.after_wake(n, t0 + Duration::from_millis(i));
        }
        assert_eq!(port.mode(), PortMode::Polled);

        // Polled, datagrams are still read (on the tick) and replies go out.
        peer.send(b"polled").expect("send");
        assert_eq!(read_all(&mut port).await, 1);
        let me = peer.local_addr().expect("addr");
        port.try_send_to(b"reply", me).expect("send while polled");
        let mut buf = [0u8; 16];
        assert_eq!(peer.recv(&mut buf).expect("reply"), 5);

        // A 100 ms window with fewer than 20 datagrams: quiet again.
        port.after_wake(1, t0 + Duration::from_millis(20));
        port.after_wake(0, t0 + Duration::from_millis(130));
        assert_eq!(port.mode(), PortMode::Readiness);
        peer.send(b"woken").expect("send");
        assert_eq!(read_all(&mut port).await, 1);
    }

    #[tokio::test]
    async fn a_steady_busy_load_stays_polled() {
        let (mut port, _peer) = port().await;
        let t0 = Instant::now();
        for i in 0..8 {
            port.after_wake(1, t0 + Duration::from_millis(i));
        }
        assert_eq!(port.mode(), PortMode::Polled);
        // 30 datagrams per 100 ms (300 a second) is above the quiet line.
        for ms in (10..1000).step_by(10) {
            port.after_wake(3, t0 + Duration::from_millis(ms));
        }
        assert_eq!(port.mode(), PortMode::Polled);
    }

    #[tokio::test]
    async fn sparse_wake_ups_stay_on_readiness() {
        let (mut port, _peer) = port().await;
        let t0 = Instant::now();
        // One wake-up every 2 ms: 500 a second, under the busy line.
        for i in 0..100 {
            port.after_wake(1, t0 + Duration::from_millis(2 * i));
        }
        assert_eq!(port.mode(), PortMode::Readiness);
    }
}
