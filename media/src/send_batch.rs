//! Batched sends on a shared RTP socket: the packets of one wake-up's ticks,
//! each to its own destination, leave in `sendmmsg` calls of up to
//! [`SEND_BATCH`].
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

/// Up to [`SEND_BATCH`] packets waiting to be sent, each with a tag naming
/// its session (to charge a failed send to it).
pub(crate) struct SendBatch<T> {
    bufs: Box<[[u8; MAX_PACKET]]>,
    lens: [usize; SEND_BATCH],
    dests: Vec<SockAddr>,
    tags: Vec<T>,
}

impl<T: Copy> SendBatch<T> {
    pub(crate) fn new() -> SendBatch<T> {
        SendBatch {
            bufs: vec![[0; MAX_PACKET]; SEND_BATCH].into_boxed_slice(),
            lens: [0; SEND_BATCH],
            dests: Vec::with_capacity(SEND_BATCH),
            tags: Vec::with_capacity(SEND_BATCH),
        }
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
            self.tags.push(tag);
        }
        self.tags.len() >= SEND_BATCH
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Send everything queued; a packet the kernel refuses (full buffer,
    /// unreachable destination) is skipped and its tag handed to `failed`.
    /// Returns the number of `sendmmsg` calls made.
    #[allow(unsafe_code)]
    pub(crate) fn flush(&mut self, socket: &impl AsRawFd, mut failed: impl FnMut(T)) -> usize {
        let n = self.tags.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: iovec and mmsghdr are plain C structs for which all zeros
        // is valid (null pointers, zero lengths).
        let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = self.lens[i];
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = self.dests[i].as_ptr().cast_mut().cast();
            h.msg_namelen = self.dests[i].len();
            h.msg_iov = std::ptr::from_mut(&mut iovs[i]);
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
                failed(self.tags[start]);
                start += 1;
            }
        }
        self.dests.clear();
        self.tags.clear();
        calls
    }
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
    fn commit_says_when_the_batch_is_full() {
        let mut batch = SendBatch::<usize>::new();
        let dest: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        for i in 0..SEND_BATCH - 1 {
            assert!(!batch.commit(12, dest, i));
        }
        assert!(batch.commit(12, dest, SEND_BATCH));
    }
}
