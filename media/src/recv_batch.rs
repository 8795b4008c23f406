//! Batched, kernel-timestamped receive for the RTP sockets: `recvmmsg` with
//! `SO_TIMESTAMPNS`.
//!
//! The scheduler reads each session's socket once per 20 ms tick (see
//! `scheduler.rs`), so two things matter:
//!
//! * **One syscall per tick.** A tick normally finds one datagram; with
//!   `recv_from` that costs the read plus a second read that returns
//!   `EAGAIN`. `recvmmsg` with `MSG_DONTWAIT` returns whatever is queued (up
//!   to [`RECV_BATCH`]) in one call.
//! * **The real arrival time.** A datagram read at the tick arrived up to
//!   20 ms earlier. Jitter (RFC 3550) and the inactivity timer must see when
//!   it arrived, not when we looked, so the kernel stamps each datagram
//!   (`SO_TIMESTAMPNS`, wall clock) and [`ArrivalClock`] maps the stamp onto
//!   the monotonic clock the sessions use.
//!
//! Why our own wrapper rather than `nix::sys::socket::recvmmsg`: the kernel
//! writes each message's address and control lengths back into the headers,
//! and nix's preallocated headers keep those written-back lengths for the
//! next call, so one datagram that came without a timestamp would silently
//! switch timestamps off for that slot from then on. Here every header is
//! built afresh for each call (on the stack; no allocation), which also
//! keeps the struct free of raw pointers, so the scheduler stays `Send`.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Datagrams read per call. A tick normally finds one; a peer with 10 ms
/// packets, or one that bursts after a network stall, finds a few.
pub(crate) const RECV_BATCH: usize = 8;
/// Larger datagrams are truncated (RTP with G.711 at 20 ms is 172 bytes).
pub(crate) const RECV_BUF: usize = 2048;
/// Room for one `SCM_TIMESTAMPNS` message (CMSG_SPACE of a timespec is 32
/// on 64-bit Linux) and one `UDP_GRO` (24), in u64s so it is aligned for
/// `cmsghdr`.
const CONTROL_WORDS: usize = 8;
/// Receive buffer of a socket that asked for UDP GRO: a datagram may then
/// hold up to 64 KiB of packets of one size (a peer's GSO send, or
/// packets the NIC merged), and a smaller buffer would cut it.
pub(crate) const GRO_BUF: usize = 65_536;

/// Datagrams read per call on a shared socket (one per scheduler thread),
/// which holds a whole wake-up's worth: at 5,000 calls about 250 a
/// millisecond. The rtp-floor benchmark found 64 as cheap per packet as 1,024.
pub(crate) const SHARED_RECV_BATCH: usize = 64;

/// Receive buffers for one thread: `N` × `B` bytes of data plus addresses
/// and control space, allocated once.
pub(crate) struct RecvBatch<const N: usize = RECV_BATCH, const B: usize = RECV_BUF> {
    bufs: Box<[[u8; B]]>,
    names: [libc::sockaddr_storage; N],
    controls: [[u64; CONTROL_WORDS]; N],
    lens: [usize; N],
    name_lens: [libc::socklen_t; N],
    stamps: [Option<SystemTime>; N],
    segments: [Option<usize>; N],
}

/// One datagram of the last [`RecvBatch::recv`].
pub(crate) struct Datagram<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) from: Option<SocketAddr>,
    /// When the kernel queued it (wall clock), if it said.
    pub(crate) stamp: Option<SystemTime>,
    /// With UDP GRO: the datagram holds several packets of this size (the
    /// last may be shorter).
    pub(crate) segment: Option<usize>,
}

impl Datagram<'_> {
    /// The packets the datagram holds: itself, or its GRO segments.
    pub(crate) fn packets(&self) -> std::slice::Chunks<'_, u8> {
        let size = self.segment.unwrap_or(self.data.len()).max(1);
        self.data.chunks(size)
    }
}

impl<const N: usize, const B: usize> RecvBatch<N, B> {
    pub(crate) fn new() -> RecvBatch<N, B> {
        RecvBatch {
            bufs: vec![[0; B]; N].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain old data; all zeros is a valid
            // (AF_UNSPEC) value.
            names: [unsafe_zeroed_storage(); N],
            controls: [[0; CONTROL_WORDS]; N],
            lens: [0; N],
            name_lens: [0; N],
            stamps: [None; N],
            segments: [None; N],
        }
    }

    /// Read what `socket` holds, up to `N` datagrams, without waiting.
    /// `Err(WouldBlock)` when nothing was queued.
    #[allow(unsafe_code)]
    pub(crate) fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        let fd: RawFd = socket.as_raw_fd();
        // SAFETY (for the zeroed values): iovec, msghdr and mmsghdr are plain
        // C structs for which all zeros is valid (null pointers, zero lengths).
        let mut iovs: [libc::iovec; N] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; N] = unsafe { std::mem::zeroed() };
        for i in 0..N {
            iovs[i].iov_base = self.bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = B;
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = std::ptr::from_mut(&mut self.names[i]).cast();
            h.msg_namelen = socklen_of::<libc::sockaddr_storage>();
            h.msg_iov = std::ptr::from_mut(&mut iovs[i]);
            h.msg_iovlen = 1;
            h.msg_control = self.controls[i].as_mut_ptr().cast();
            h.msg_controllen = std::mem::size_of::<[u64; CONTROL_WORDS]>() as _;
        }
        // SAFETY: every header points at buffers owned by `self` or by this
        // stack frame, each with the length given beside it, and all of them
        // outlive the call; the kernel writes at most those lengths.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                N as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = usize::try_from(n).unwrap_or(0).min(N);
        for (i, h) in hdrs.iter().enumerate().take(n) {
            self.lens[i] = (h.msg_len as usize).min(B);
            self.name_lens[i] = h.msg_hdr.msg_namelen;
            (self.stamps[i], self.segments[i]) = control_of(&h.msg_hdr);
        }
        Ok(n)
    }

    /// Datagram `i` of the last `recv` (`i` below what it returned).
    pub(crate) fn datagram(&self, i: usize) -> Datagram<'_> {
        Datagram {
            data: &self.bufs[i][..self.lens[i]],
            from: socket_addr(&self.names[i], self.name_lens[i]),
            stamp: self.stamps[i],
            segment: self.segments[i],
        }
    }
}

/// Ask the kernel to hand `socket` the packets of a GSO send (or packets
/// the NIC merged) as one datagram with their segment size (`UDP_GRO`).
/// Its reads then need [`GRO_BUF`]-sized buffers.
pub(crate) fn enable_gro(socket: &impl AsRawFd) -> io::Result<()> {
    switch_on(socket, libc::SOL_UDP, libc::UDP_GRO)
}

/// Ask the kernel to stamp every datagram `socket` receives.
pub(crate) fn enable_timestamps(socket: &impl AsRawFd) -> io::Result<()> {
    switch_on(socket, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)
}

/// Sets the int flag `name` of `level` on `socket` to 1.
#[allow(unsafe_code)]
fn switch_on(socket: &impl AsRawFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the options set here take an int flag; we pass a pointer to
    // one and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&on).cast(),
            socklen_of::<libc::c_int>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Maps kernel wall-clock stamps onto `Instant`s: taken once per batch of
/// ticks, so the two clocks are read together and the cost is not per packet.
#[derive(Clone, Copy)]
pub(crate) struct ArrivalClock {
    mono: Instant,
    wall: SystemTime,
}

impl ArrivalClock {
    pub(crate) fn now() -> ArrivalClock {
        ArrivalClock {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// When a datagram stamped `stamp` arrived, on the monotonic clock; `now`
    /// when there is no stamp, or it is from the future or more than a
    /// second old (the wall clock was stepped).
    pub(crate) fn arrival(&self, stamp: Option<SystemTime>, now: Instant) -> Instant {
        let Some(stamp) = stamp else { return now };
        match self.wall.duration_since(stamp) {
            Ok(age) if age <= Duration::from_secs(1) => {
                self.mono.checked_sub(age).unwrap_or(self.mono).min(now)
            }
            _ => now,
        }
    }
}

#[allow(unsafe_code)]
const fn unsafe_zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: see RecvBatch::new.
    unsafe { std::mem::zeroed() }
}

fn socklen_of<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

/// The `SCM_TIMESTAMPNS` and `UDP_GRO` messages of a received header.
#[allow(unsafe_code)]
fn control_of(hdr: &libc::msghdr) -> (Option<SystemTime>, Option<usize>) {
    let mut stamp = None;
    let mut segment = None;
    // SAFETY: `hdr` was filled by recvmmsg: msg_control points at our
    // aligned control buffer and msg_controllen is what the kernel wrote
    // there, so the CMSG_* walk stays inside it; the timespec is read
    // unaligned from the message's data.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = u64::try_from(ts.tv_sec)
                    .ok()
                    .zip(u32::try_from(ts.tv_nsec).ok())
                    .and_then(|(secs, nanos)| UNIX_EPOCH.checked_add(Duration::new(secs, nanos)));
            } else if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                segment = usize::try_from(size).ok().filter(|&s| s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    (stamp, segment)
}

/// The sender's address as the kernel wrote it (IPv4 or IPv6).
#[allow(unsafe_code)]
fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is larger and at least as aligned.
            let sin = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind rx");
        rx.set_nonblocking(true).expect("nonblocking");
        enable_timestamps(&rx).expect("SO_TIMESTAMPNS");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind tx");
        tx.connect(rx.local_addr().expect("addr")).expect("connect");
        (rx, tx)
    }

    #[test]
    fn empty_socket_would_block() {
        let (rx, _tx) = pair();
        let mut batch = RecvBatch::<RECV_BATCH>::new();
        let err = batch.recv(&rx).expect_err("nothing queued");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn reads_queued_datagrams_with_sender_and_stamp_in_one_call() {
        let (rx, tx) = pair();
        let before = SystemTime::now();
        for i in 0..3u8 {
            tx.send(&[i; 20]).expect("send");
        }
        let mut batch = RecvBatch::<RECV_BATCH>::new();
        let n = batch.recv(&rx).expect("three queued");
        assert_eq!(n, 3);
        for i in 0..3 {
            let d = batch.datagram(i);
            assert_eq!(d.data, &[i as u8; 20][..]);
            assert_eq!(d.from, Some(tx.local_addr().expect("addr")));
            let stamp = d.stamp.expect("kernel stamp");
            assert!(
                stamp >= before - Duration::from_millis(5),
                "stamp {stamp:?}"
            );
            assert!(stamp <= SystemTime::now());
        }
        // Drained: the next call finds nothing, and a later datagram still
        // comes with its stamp (headers are rebuilt for every call).
        assert!(batch.recv(&rx).is_err());
        tx.send(b"again").expect("send");
        assert_eq!(batch.recv(&rx).expect("one"), 1);
        assert!(batch.datagram(0).stamp.is_some());
    }

    #[test]
    fn more_than_a_batch_comes_in_several_calls() {
        let (rx, tx) = pair();
        for i in 0..(RECV_BATCH as u8 + 3) {
            tx.send(&[i]).expect("send");
        }
        let mut batch = RecvBatch::<RECV_BATCH>::new();
        assert_eq!(batch.recv(&rx).expect("first"), RECV_BATCH);
        assert_eq!(batch.recv(&rx).expect("rest"), 3);
        assert_eq!(batch.datagram(2).data, &[RECV_BATCH as u8 + 2][..]);
    }

    #[test]
    fn with_gro_a_gso_send_arrives_as_one_datagram_of_its_packets() {
        use crate::send_batch::SendBatch;
        let (rx, tx) = pair();
        enable_gro(&rx).expect("UDP_GRO");
        let dest = rx.local_addr().expect("addr");
        let mut batch = SendBatch::<u8>::new();
        batch.set_gso(true);
        for i in 0..5u8 {
            batch.next_buf()[..172].fill(i);
            batch.commit(172, dest, i);
        }
        assert_eq!(batch.flush(&tx, |_| panic!("nothing fails")), 1);
        let mut rb = RecvBatch::<4, GRO_BUF>::new();
        assert_eq!(rb.recv(&rx).expect("one datagram"), 1);
        let d = rb.datagram(0);
        assert_eq!(d.segment, Some(172));
        assert!(d.stamp.is_some());
        let packets: Vec<&[u8]> = d.packets().collect();
        assert_eq!(packets.len(), 5);
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(*p, &[i as u8; 172][..]);
        }
        // A plain datagram on the same socket: one packet, no segment size.
        tx.send(&[9; 30]).expect("send");
        assert_eq!(rb.recv(&rx).expect("one"), 1);
        let d = rb.datagram(0);
        assert_eq!(d.segment, None);
        assert_eq!(d.packets().collect::<Vec<_>>(), vec![&[9u8; 30][..]]);
    }

    #[test]
    fn arrival_maps_stamps_onto_the_monotonic_clock() {
        let clock = ArrivalClock::now();
        let now = clock.mono + Duration::from_millis(1);
        let ten_ms_ago = clock.wall - Duration::from_millis(10);
        let at = clock.arrival(Some(ten_ms_ago), now);
        assert_eq!(clock.mono - at, Duration::from_millis(10));
        // No stamp, a stamp from the future or a stepped clock: now.
        assert_eq!(clock.arrival(None, now), now);
        assert_eq!(
            clock.arrival(Some(clock.wall + Duration::from_secs(5)), now),
            now
        );
        assert_eq!(
            clock.arrival(Some(clock.wall - Duration::from_secs(30)), now),
            now
        );
    }
}
