//! Batched sends on a shared RTP socket: the packets of one wake-up's ticks,
//! each to its own destination, leave in `sendmmsg` calls of up to
//! [`SEND_BATCH`].
//!
//! **UDP GSO.** When several packets of a batch go to one address with one
//! length (a peer that also takes many calls on one port, such as another
//! Dialcast or its callee farm), they leave as one `sendmsg` with a
//! `UDP_SEGMENT` control message: the kernel takes them through its stack as
//! one buffer and cuts them into datagrams only at the receiving socket (or
//! the NIC), and a receiver that asked for UDP GRO gets them back as one
//! datagram. The rtp-floor benchmark (loadtest RESULTS.md) measured 0.9 µs
//! per tick and side instead of 5.2 on the AMD host. Packets whose address
//! or length is unique in the batch (a trunk with a port per call) still
//! leave through `sendmmsg`. If the kernel or route refuses GSO, the batch's
//! packets go the plain way and GSO stays off for the socket.
//!
//! Used only with one socket per scheduler thread
//! ([`RtpSocketMode::PerThread`](crate::RtpSocketMode)): with a socket per
//! call each socket has one packet per tick and a batch would hold one
//! datagram. Sessions write their packet straight into the batch's next
//! buffer ([`SendBatch::next_buf`]), so nothing is copied. As in
//! `recv_batch.rs`, the kernel headers are built on the stack for each call,
//! which keeps the struct free of raw pointers (the scheduler stays `Send`).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::SockAddr;

use crate::session::MAX_PACKET;

/// Packets per `sendmmsg`. The rtp-floor benchmark (loadtest/RESULTS.md)
/// found batches of 64 as cheap per packet as batches of 1,024.
pub(crate) const SEND_BATCH: usize = 64;

/// Segments per GSO send: Linux refuses more than `UDP_MAX_SEGMENTS` (64
/// before 5.5, 128 since).
const GSO_SEGMENTS: usize = 64;

/// Up to [`SEND_BATCH`] packets waiting to be sent, each with a tag naming
/// its session (to charge a failed send to it).
pub(crate) struct SendBatch<T> {
    bufs: Box<[[u8; MAX_PACKET]]>,
    lens: [usize; SEND_BATCH],
    dests: Vec<SockAddr>,
    addrs: Vec<SocketAddr>,
    tags: Vec<T>,
    /// Send runs to one address as one GSO buffer (see the module doc).
    gso: bool,
    /// Packets sent in GSO buffers, not yet reported.
    gso_packets: u64,
}

impl<T: Copy> SendBatch<T> {
    pub(crate) fn new() -> SendBatch<T> {
        SendBatch {
            bufs: vec![[0; MAX_PACKET]; SEND_BATCH].into_boxed_slice(),
            lens: [0; SEND_BATCH],
            dests: Vec::with_capacity(SEND_BATCH),
            addrs: Vec::with_capacity(SEND_BATCH),
            tags: Vec::with_capacity(SEND_BATCH),
            gso: false,
            gso_packets: 0,
        }
    }

    /// Send runs of packets to one address as one GSO buffer.
    pub(crate) fn set_gso(&mut self, on: bool) {
        self.gso = on;
    }

    /// Packets sent in GSO buffers since the last call.
    pub(crate) fn take_gso_packets(&mut self) -> u64 {
        std::mem::take(&mut self.gso_packets)
    }

    /// The buffer the next packet is to be written into.
    pub(crate) fn next_buf(&mut self) -> &mut [u8; MAX_PACKET] {
        let i = self.tags.len().min(SEND_BATCH - 1);
        &mut self.bufs[i]
    }

    /// Queue the packet written into [`next_buf`](Self::next_buf). Returns
    /// true when the batch is full and must be flushed before the next one.
    pub(crate) fn commit(&mut self, len: usize, dest: SocketAddr, tag: T) -> bool {
        let i = self.tags.len();
        if i < SEND_BATCH {
            self.lens[i] = len.min(MAX_PACKET);
            self.dests.push(SockAddr::from(dest));
            self.addrs.push(dest);
            self.tags.push(tag);
        }
        self.tags.len() >= SEND_BATCH
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Send everything queued; a packet the kernel refuses (full buffer,
    /// unreachable destination) is skipped and its tag handed to `failed`.
    /// Returns the number of system calls made.
    pub(crate) fn flush(&mut self, socket: &impl AsRawFd, mut failed: impl FnMut(T)) -> usize {
        let n = self.tags.len();
        if n == 0 {
            return 0;
        }
        let mut order: Vec<usize> = (0..n).collect();
        let mut calls = 0;
        if self.gso && n > 1 {
            // Runs of one (address, length), in queue order within a run.
            order.sort_by_key(|&i| (self.addrs[i], self.lens[i]));
            let mut rest = Vec::with_capacity(n);
            let mut start = 0;
            while start < n {
                let key = (self.addrs[order[start]], self.lens[order[start]]);
                let mut end = start + 1;
                while end < n
                    && end - start < GSO_SEGMENTS
                    && (self.addrs[order[end]], self.lens[order[end]]) == key
                {
                    end += 1;
                }
                let run = &order[start..end];
                if run.len() == 1 {
                    rest.push(run[0]);
                } else {
                    calls += 1;
                    match self.send_segments(socket, run) {
                        Ok(()) => self.gso_packets += run.len() as u64,
                        Err(e) if gso_unsupported(&e) => {
                            tracing::info!(error = %e, "UDP GSO refused; RTP batches go without it");
                            self.gso = false;
                            rest.extend_from_slice(run);
                        }
                        Err(_) => run.iter().for_each(|&i| failed(self.tags[i])),
                    }
                }
                start = end;
            }
            rest.sort_unstable();
            order = rest;
        }
        calls += self.send_each(socket, &order, &mut failed);
        self.dests.clear();
        self.addrs.clear();
        self.tags.clear();
        calls
    }

    /// One `sendmsg` carrying the packets `run` (one address, one length) as
    /// `UDP_SEGMENT`s of that length.
    #[allow(unsafe_code)]
    fn send_segments(&mut self, socket: &impl AsRawFd, run: &[usize]) -> io::Result<()> {
        let first = run[0];
        let segment = u16::try_from(self.lens[first]).unwrap_or(u16::MAX);
        // SAFETY: iovec and msghdr are plain C structs for which all zeros
        // is valid (null pointers, zero lengths).
        let mut iovs: [libc::iovec; GSO_SEGMENTS] = unsafe { std::mem::zeroed() };
        for (iov, &i) in iovs.iter_mut().zip(run) {
            iov.iov_base = self.bufs[i].as_mut_ptr().cast();
            iov.iov_len = self.lens[i];
        }
        let mut control = [0u64; 4];
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = self.dests[first].as_ptr().cast_mut().cast();
        msg.msg_namelen = self.dests[first].len();
        msg.msg_iov = iovs.as_mut_ptr();
        msg.msg_iovlen = run.len().min(GSO_SEGMENTS) as _;
        msg.msg_control = control.as_mut_ptr().cast();
        let value_len = std::mem::size_of::<u16>() as u32;
        // SAFETY: CMSG_SPACE / CMSG_LEN only compute sizes; the control
        // buffer (32 bytes, 8-aligned) has room for one cmsghdr and a u16,
        // so CMSG_FIRSTHDR is non-null and its data in bounds.
        unsafe {
            msg.msg_controllen = libc::CMSG_SPACE(value_len) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_UDP;
            (*cmsg).cmsg_type = libc::UDP_SEGMENT;
            (*cmsg).cmsg_len = libc::CMSG_LEN(value_len) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
        }
        loop {
            // SAFETY: msg points at an address, iovecs and control data that
            // live in `self` or this frame for the whole call.
            let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_DONTWAIT) };
            if sent >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The packets `order` each as its own message, in `sendmmsg` calls.
    #[allow(unsafe_code)]
    fn send_each(
        &mut self,
        socket: &impl AsRawFd,
        order: &[usize],
        failed: &mut impl FnMut(T),
    ) -> usize {
        let n = order.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: iovec and mmsghdr are plain C structs for which all zeros
        // is valid (null pointers, zero lengths).
        let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
        for (k, &i) in order.iter().enumerate() {
            iovs[k].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovs[k].iov_len = self.lens[i];
            let h = &mut hdrs[k].msg_hdr;
            h.msg_name = self.dests[i].as_ptr().cast_mut().cast();
            h.msg_namelen = self.dests[i].len();
            h.msg_iov = std::ptr::from_mut(&mut iovs[k]);
            h.msg_iovlen = 1;
        }
        let fd = socket.as_raw_fd();
        let mut start = 0;
        let mut calls = 0;
        while start < n {
            calls += 1;
            // SAFETY: headers start..n point at buffers and addresses owned
            // by `self` or this frame, with their lengths, alive for the call.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[start..].as_mut_ptr(),
                    (n - start) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent > 0 {
                start += usize::try_from(sent).unwrap_or(1);
            } else if sent < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            } else {
                // The first message of the rest failed: skip it.
                failed(self.tags[order[start]]);
                start += 1;
            }
        }
        calls
    }
}

/// Errors that say GSO cannot be used on this socket or route (an old
/// kernel, a device without checksum offload, an IPsec route), as opposed
/// to a full buffer or an unreachable peer.
fn gso_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_batch_goes_to_each_destination_and_failures_are_charged_to_their_tag() {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("tx");
        let a = UdpSocket::bind("127.0.0.1:0").expect("a");
        let b = UdpSocket::bind("127.0.0.1:0").expect("b");
        let mut batch = SendBatch::<u32>::new();
        assert!(batch.is_empty());
        for (i, dest) in [&a, &b, &a].iter().enumerate() {
            let buf = batch.next_buf();
            buf[..3].copy_from_slice(&[i as u8; 3]);
            let full = batch.commit(3, dest.local_addr().expect("addr"), i as u32);
            assert!(!full);
        }
        // An IPv6 destination on an IPv4 socket fails: charged to tag 9.
        let buf = batch.next_buf();
        buf[0] = 9;
        batch.commit(1, "[::1]:9".parse().expect("v6"), 9);
        let buf = batch.next_buf();
        buf[..3].copy_from_slice(&[4; 3]);
        batch.commit(3, b.local_addr().expect("addr"), 4);
        let mut failed = Vec::new();
        let calls = batch.flush(&tx, |t| failed.push(t));
        assert_eq!(failed, vec![9]);
        assert!(calls >= 2 && batch.is_empty());
        let mut got = [0u8; 8];
        for (sock, want) in [(&a, 0u8), (&a, 2), (&b, 1), (&b, 4)] {
            let (n, from) = sock.recv_from(&mut got).expect("datagram");
            assert_eq!(
                (&got[..n], from),
                (&[want; 3][..], tx.local_addr().expect("tx"))
            );
        }
    }

    #[test]
    fn with_gso_packets_for_one_address_go_together_and_arrive_one_by_one() {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("tx");
        let a = UdpSocket::bind("127.0.0.1:0").expect("a");
        let b = UdpSocket::bind("127.0.0.1:0").expect("b");
        let (a_addr, b_addr) = (a.local_addr().expect("a"), b.local_addr().expect("b"));
        let mut batch = SendBatch::<u32>::new();
        batch.set_gso(true);
        // Five 172-byte packets to a, interleaved with two to b and one
        // shorter one to a (a run of its own length).
        let plan: [(SocketAddr, usize); 8] = [
            (a_addr, 172),
            (b_addr, 172),
            (a_addr, 172),
            (a_addr, 20),
            (a_addr, 172),
            (b_addr, 172),
            (a_addr, 172),
            (a_addr, 172),
        ];
        for (i, &(dest, len)) in plan.iter().enumerate() {
            batch.next_buf()[..len].fill(i as u8);
            batch.commit(len, dest, i as u32);
        }
        let mut failed = Vec::new();
        let calls = batch.flush(&tx, |t| failed.push(t));
        assert!(failed.is_empty(), "{failed:?}");
        // One GSO send to a (5), one to b (2), the lone short one: 3 calls.
        assert_eq!(calls, 3);
        assert_eq!(batch.take_gso_packets(), 7);
        assert_eq!(batch.take_gso_packets(), 0);
        let mut got = [0u8; 256];
        let mut read = |sock: &UdpSocket| {
            let (n, _) = sock.recv_from(&mut got).expect("datagram");
            (got[0], n)
        };
        let mut at_a: Vec<(u8, usize)> = (0..6).map(|_| read(&a)).collect();
        at_a.sort_unstable();
        assert_eq!(
            at_a,
            vec![(0, 172), (2, 172), (3, 20), (4, 172), (6, 172), (7, 172)]
        );
        assert_eq!((read(&b), read(&b)), ((1, 172), (5, 172)));
    }

    #[test]
    fn a_gso_run_keeps_the_queue_order() {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("tx");
        let rx = UdpSocket::bind("127.0.0.1:0").expect("rx");
        let dest = rx.local_addr().expect("rx");
        let mut batch = SendBatch::<u32>::new();
        batch.set_gso(true);
        for i in 0..SEND_BATCH {
            batch.next_buf()[..12].fill(i as u8);
            batch.commit(12, dest, i as u32);
        }
        assert_eq!(batch.flush(&tx, |_| panic!("nothing fails")), 1);
        let mut got = [0u8; 64];
        for i in 0..SEND_BATCH {
            let (n, _) = rx.recv_from(&mut got).expect("datagram");
            assert_eq!((n, got[0]), (12, i as u8));
        }
    }

    #[test]
    fn commit_says_when_the_batch_is_full() {
        let mut batch = SendBatch::<usize>::new();
        let dest: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        for i in 0..SEND_BATCH - 1 {
            assert!(!batch.commit(12, dest, i));
        }
        assert!(batch.commit(12, dest, SEND_BATCH));
    }
}
