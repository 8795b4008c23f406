//! `rtp-floor`: what the kernel alone costs per RTP tick on this host.
//!
//! Two threads in this process, the *caller* side (the engine's media thread)
//! and the *callee* side (the farm's), exchange N streams over loopback: each
//! side sends every stream one 172-byte packet (12-byte RTP header + 160
//! bytes of G.711) every 20 ms and reads what the other side sent, with no
//! other work (no codec, no jitter buffer, no detector, no heap of
//! deadlines). Each side's CPU time is read with `getrusage(RUSAGE_THREAD)`
//! over a measured window after a warm-up, so the figure is CPU time, not
//! wall time, and mostly independent of what else runs on the machine. One
//! *tick* is one stream's 20 ms on one side: one packet sent and one
//! received.
//!
//! This module owns the simulated streams, their sockets, the variants' send
//! and receive loops ([`Variant`]), the demultiplexing of a shared socket
//! ([`DemuxTable`]) and the report ([`FloorReport`]). It shares no code with
//! the media crate; the per-socket variant mirrors what
//! `dialcast_media`'s scheduler does (`scheduler.rs`, `recv_batch.rs`):
//! unconnected sockets with `SO_TIMESTAMPNS`, on each stream's tick one
//! `recvmmsg(MSG_DONTWAIT)` of up to 8 datagrams then one `sendto`, and a
//! thread that sleeps to its next deadline rounded up to the millisecond
//! (mio's `epoll_wait` timeout).
//!
//! Not here: `io_uring` (not measured). UDP GSO (`UDP_SEGMENT`) carries
//! many segments to *one* destination, so it cannot help a socket per
//! stream, but with one socket on each side every packet of a wake-up goes
//! to the same address: variants d (GSO sends) and e (GSO sends, GRO
//! receives) measure what that saves.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

/// The packet interval of every stream.
pub const PERIOD: Duration = Duration::from_millis(20);
/// RTP header + 20 ms of G.711.
pub const PACKET: usize = 172;
const RTP_HEADER: usize = 12;
/// Receive buffer per datagram, as the media crate's (larger are truncated).
const RECV_BUF: usize = 2048;
/// Datagrams per `recvmmsg` on a per-stream socket, as the media crate's.
const PER_SOCKET_RECV_BATCH: usize = 8;
/// Room for one `SCM_TIMESTAMPNS` control message, in u64s for alignment.
const CONTROL_WORDS: usize = 8;
/// A tick this late (after its deadline) counts as late in `late_ratio`.
pub const LATE: Duration = Duration::from_millis(5);
/// SSRC bases of the two sides (stream `i` has `base + i`).
const CALLER_SSRC: u32 = 0x1000_0000;
const CALLEE_SSRC: u32 = 0x2000_0000;

/// How the packets go through the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Variant {
    /// (a) One unconnected socket per stream; per tick one `recvmmsg` then
    /// one `sendto`: what the media crate does now.
    PerSocketSendto,
    /// (a') As (a), but each socket `connect`ed to its peer and `send`
    /// (the kernel keeps the route; symmetric RTP would have to reconnect
    /// when the peer's address changes).
    PerSocketConnected,
    /// (b) As (a), sending with `sendmmsg`: per socket, so a batch holds the
    /// one packet that socket has per tick.
    PerSocketSendmmsg,
    /// (c) One socket per side carrying all streams, demultiplexed by
    /// (remote address, SSRC); a wake-up's packets go out in `sendmmsg`
    /// batches and come in through `recvmmsg` batches.
    SharedSocket,
    /// (d) As (c), but the packets of a batch that go to one destination
    /// leave as one UDP GSO send (`UDP_SEGMENT`): the kernel carries them
    /// through the stack as one buffer and cuts it into datagrams at the
    /// receiving socket. Applies when the peer also uses one port for many
    /// streams (the farm, a media server with a shared port).
    SharedSocketGso,
    /// (e) As (d), and each side's socket asks for UDP GRO: a GSO buffer
    /// arrives whole (one receive, one copy) and is cut into packets here
    /// by the segment size the kernel reports.
    SharedSocketGsoGro,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::PerSocketSendto => "a",
            Variant::PerSocketConnected => "a-connected",
            Variant::PerSocketSendmmsg => "b",
            Variant::SharedSocket => "c",
            Variant::SharedSocketGso => "d",
            Variant::SharedSocketGsoGro => "e",
        }
    }

    fn shared(self) -> bool {
        matches!(
            self,
            Variant::SharedSocket | Variant::SharedSocketGso | Variant::SharedSocketGsoGro
        )
    }

    fn gso(self) -> bool {
        matches!(self, Variant::SharedSocketGso | Variant::SharedSocketGsoGro)
    }
}

impl FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> Result<Variant, String> {
        match s {
            "a" => Ok(Variant::PerSocketSendto),
            "a-connected" => Ok(Variant::PerSocketConnected),
            "b" => Ok(Variant::PerSocketSendmmsg),
            "c" => Ok(Variant::SharedSocket),
            "d" => Ok(Variant::SharedSocketGso),
            "e" => Ok(Variant::SharedSocketGsoGro),
            _ => Err(format!(
                "unknown variant {s:?} (one of a, a-connected, b, c, d, e)"
            )),
        }
    }
}

/// One run.
#[derive(Clone, Debug)]
pub struct FloorBench {
    pub variant: Variant,
    pub streams: usize,
    /// The measured window.
    pub seconds: f64,
    /// Before the window: sockets warm, every stream running.
    pub warmup: f64,
    /// (c) Datagrams per `sendmmsg` / `recvmmsg`.
    pub batch: usize,
    /// Kernel receive timestamps (`SO_TIMESTAMPNS`), as the media crate asks.
    pub timestamps: bool,
    /// (c) Receive buffer of the shared sockets, bytes (forced when allowed).
    pub shared_rcvbuf: usize,
}

/// One side's figures over the measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SideReport {
    pub side: &'static str,
    pub ticks: u64,
    /// Streams × window ÷ 20 ms: what keeping the pace means.
    pub ticks_expected: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub received: u64,
    /// Datagrams whose (address, SSRC) matched no stream.
    pub received_unknown: u64,
    pub received_stamped: u64,
    pub send_syscalls: u64,
    pub recv_syscalls: u64,
    pub wakeups: u64,
    pub cpu_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    /// CPU per tick (one sent + one received), microseconds.
    pub us_per_tick: f64,
    /// Share of ticks run more than [`LATE`] after their deadline.
    pub late_ratio: f64,
    pub lateness_p50_ms: f64,
    pub lateness_p99_ms: f64,
    pub lateness_max_ms: f64,
    /// Receive buffer of (one of) this side's sockets as the kernel set it.
    pub rcvbuf_bytes: usize,
}

/// The machine over the same window (`/proc/stat`, `/proc/net/snmp`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct MachineWindow {
    /// All CPUs' busy time (user, nice, system, irq, softirq, steal) in CPU-seconds.
    pub busy_s: f64,
    /// Of which counted as softirq (tick-sampled; on this kernel, without
    /// IRQ time accounting, softirq run in a thread's context is also in
    /// that thread's CPU).
    pub softirq_s: f64,
    pub steal_s: f64,
    /// CPU of the ksoftirqd threads: deferred packet delivery, not in our
    /// threads' figures.
    pub ksoftirqd_s: f64,
    /// Busy CPU not ours: `busy_s` − both sides − ksoftirqd.
    pub other_s: f64,
    /// UDP datagrams dropped on a full receive buffer (`RcvbufErrors`).
    pub udp_rcvbuf_errors: u64,
}

/// One JSON line per run.
#[derive(Clone, Debug, Serialize)]
pub struct FloorReport {
    pub bench: &'static str,
    pub variant: &'static str,
    pub streams: usize,
    pub seconds: f64,
    pub packets_per_s_per_direction: f64,
    pub batch: Option<usize>,
    pub timestamps: bool,
    pub started_unix_s: u64,
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub caller: SideReport,
    pub callee: SideReport,
    /// Both sides' CPU per tick, plus ksoftirqd's share, µs.
    pub us_per_tick_both: f64,
    pub machine: MachineWindow,
}

/// Maps (remote address, SSRC) to a stream: how a socket shared by many
/// streams tells them apart. The address alone does not do when the peer
/// also sends every stream from one socket.
#[derive(Debug, Default)]
pub struct DemuxTable {
    map: HashMap<(SocketAddrV4, u32), usize>,
}

impl DemuxTable {
    pub fn with_capacity(n: usize) -> DemuxTable {
        DemuxTable {
            map: HashMap::with_capacity(n),
        }
    }

    /// Returns the stream the key was mapped to before, if any.
    pub fn insert(&mut self, from: SocketAddrV4, ssrc: u32, stream: usize) -> Option<usize> {
        self.map.insert((from, ssrc), stream)
    }

    /// The stream of a datagram from `from`, if it is RTP of a known stream.
    pub fn lookup(&self, from: SocketAddrV4, packet: &[u8]) -> Option<usize> {
        let ssrc = ssrc_of(packet)?;
        self.map.get(&(from, ssrc)).copied()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The SSRC of an RTP packet (version 2, at least a header long).
pub fn ssrc_of(packet: &[u8]) -> Option<u32> {
    if packet.len() < RTP_HEADER || packet[0] >> 6 != 2 {
        return None;
    }
    let b: [u8; 4] = packet[8..12].try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Writes a PCMU packet of `PACKET` bytes: header, then μ-law silence.
pub fn write_packet(buf: &mut [u8; PACKET], seq: u16, timestamp: u32, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = 0; // PCMU
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[RTP_HEADER..].fill(0xFF);
}

/// When in each 20 ms period stream `i` of `n` ticks: evenly spread, as
/// calls that start at different moments are, and in stream order (the
/// side's loop walks the streams in that order).
pub fn phase(i: usize, n: usize) -> Duration {
    let n = n.max(1) as u128;
    let period = PERIOD.as_nanos();
    let offset = (i as u128 % n) * period / n;
    Duration::from_nanos(u64::try_from(offset).unwrap_or(0))
}

/// Lateness of ticks in 100 µs buckets up to 100 ms (the last bucket holds
/// everything later).
#[derive(Clone, Debug)]
pub struct Lateness {
    buckets: Vec<u64>,
    max: Duration,
    late: u64,
    count: u64,
}

const LATENESS_BUCKET_US: u128 = 100;
const LATENESS_BUCKETS: usize = 1001;

impl Default for Lateness {
    fn default() -> Lateness {
        Lateness {
            buckets: vec![0; LATENESS_BUCKETS],
            max: Duration::ZERO,
            late: 0,
            count: 0,
        }
    }
}

impl Lateness {
    pub fn record(&mut self, late_by: Duration) {
        let b = usize::try_from(late_by.as_micros() / LATENESS_BUCKET_US)
            .unwrap_or(usize::MAX)
            .min(LATENESS_BUCKETS - 1);
        self.buckets[b] += 1;
        self.max = self.max.max(late_by);
        self.count += 1;
        if late_by > LATE {
            self.late += 1;
        }
    }

    /// The upper edge of the bucket holding quantile `q` (0..=1), in ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                if i == LATENESS_BUCKETS - 1 {
                    return self.max.as_secs_f64() * 1e3;
                }
                return ((i as u128 + 1) * LATENESS_BUCKET_US) as f64 / 1e3;
            }
        }
        self.max.as_secs_f64() * 1e3
    }

    pub fn late_ratio(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.late as f64 / self.count as f64
        }
    }
}

/// Run one variant at one stream count; blocks for warm-up + window.
pub fn run(bench: &FloorBench) -> anyhow::Result<FloorReport> {
    anyhow::ensure!(bench.streams > 0, "--streams must be positive");
    anyhow::ensure!(bench.seconds > 0.0, "--seconds must be positive");
    anyhow::ensure!(bench.batch > 0, "--batch must be positive");
    raise_fd_limit(2 * bench.streams + 64);
    let (caller, callee) = sockets(bench).context("cannot open the sockets")?;
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let t0 = Instant::now() + Duration::from_millis(50);
    let measure_from = t0 + Duration::from_secs_f64(bench.warmup);
    let until = measure_from + Duration::from_secs_f64(bench.seconds);
    let ksoftirqd = ksoftirqd_pids();

    let spawn = |side: SideSockets, name: &'static str| {
        let bench = bench.clone();
        std::thread::Builder::new()
            .name(format!("floor-{name}"))
            .spawn(move || run_side(&bench, side, t0, measure_from, until))
    };
    let caller = spawn(caller, "caller").context("cannot start the caller thread")?;
    let callee = spawn(callee, "callee").context("cannot start the callee thread")?;

    std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
    let stat0 = read_proc_stat();
    let snmp0 = udp_rcvbuf_errors();
    let soft0 = cpu_of(&ksoftirqd);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let stat1 = read_proc_stat();
    let snmp1 = udp_rcvbuf_errors();
    let soft1 = cpu_of(&ksoftirqd);

    let caller = caller
        .join()
        .map_err(|_| anyhow::anyhow!("the caller thread panicked"))??;
    let callee = callee
        .join()
        .map_err(|_| anyhow::anyhow!("the callee thread panicked"))??;

    let mut machine = MachineWindow {
        udp_rcvbuf_errors: snmp1.saturating_sub(snmp0),
        ksoftirqd_s: (soft1 - soft0).max(0.0),
        ..MachineWindow::default()
    };
    if let (Some(a), Some(b)) = (stat0, stat1) {
        let hz = clock_ticks();
        let d = |i: usize| {
            b.get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(a.get(i).copied().unwrap_or(0)) as f64
                / hz
        };
        // user nice system idle iowait irq softirq steal
        machine.busy_s = d(0) + d(1) + d(2) + d(5) + d(6) + d(7);
        machine.softirq_s = d(6);
        machine.steal_s = d(7);
    }
    machine.other_s = machine.busy_s - caller.cpu_s - callee.cpu_s - machine.ksoftirqd_s;
    let ticks = (caller.ticks + callee.ticks).max(1) as f64;
    let us_per_tick_both = 2.0 * (caller.cpu_s + callee.cpu_s + machine.ksoftirqd_s) / ticks * 1e6;
    let host = crate::Machine::describe();
    Ok(FloorReport {
        bench: "rtp-floor",
        variant: bench.variant.name(),
        streams: bench.streams,
        seconds: bench.seconds,
        packets_per_s_per_direction: bench.streams as f64 / PERIOD.as_secs_f64(),
        batch: bench.variant.shared().then_some(bench.batch),
        timestamps: bench.timestamps,
        started_unix_s,
        cpu_model: host.cpu_model,
        cpus: host.cpus,
        kernel: host.kernel,
        caller,
        callee,
        us_per_tick_both,
        machine,
    })
}

/// One side's sockets and where each stream's packets go.
struct SideSockets {
    name: &'static str,
    /// One per stream, or one for all (variant c).
    sockets: Vec<UdpSocket>,
    /// The peer's address of each stream.
    dests: Vec<SocketAddrV4>,
    ssrc_base: u32,
    /// How much later than the other side's this side's period starts.
    shift: Duration,
    /// (c) The peer's (address, SSRC) of each stream.
    demux: DemuxTable,
}

fn bind_loopback(timestamps: bool) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    s.set_nonblocking(true)?;
    if timestamps {
        sys::set_int_option(&s, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
    }
    Ok(s)
}

fn v4(addr: SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::other("expected an IPv4 socket")),
    }
}

fn sockets(bench: &FloorBench) -> io::Result<(SideSockets, SideSockets)> {
    let n = bench.streams;
    let (a, b) = if bench.variant.shared() {
        let a = bind_loopback(bench.timestamps)?;
        let b = bind_loopback(bench.timestamps)?;
        for s in [&a, &b] {
            let size = libc::c_int::try_from(bench.shared_rcvbuf).unwrap_or(libc::c_int::MAX);
            // Forcing needs CAP_NET_ADMIN; otherwise rmem_max caps the size.
            if sys::set_int_option(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
                sys::set_int_option(s, libc::SOL_SOCKET, libc::SO_RCVBUF, size)?;
            }
            if bench.variant == Variant::SharedSocketGsoGro {
                sys::set_int_option(s, libc::SOL_UDP, libc::UDP_GRO, 1)?;
            }
        }
        (vec![a], vec![b])
    } else {
        let mut a = Vec::with_capacity(n);
        let mut b = Vec::with_capacity(n);
        for _ in 0..n {
            a.push(bind_loopback(bench.timestamps)?);
            b.push(bind_loopback(bench.timestamps)?);
        }
        (a, b)
    };
    let addrs = |v: &[UdpSocket]| -> io::Result<Vec<SocketAddrV4>> {
        v.iter().map(|s| s.local_addr().and_then(v4)).collect()
    };
    let a_addrs = addrs(&a)?;
    let b_addrs = addrs(&b)?;
    let per = |addrs: &[SocketAddrV4], i: usize| addrs[if addrs.len() == 1 { 0 } else { i }];
    let mut a_demux = DemuxTable::default();
    let mut b_demux = DemuxTable::default();
    if bench.variant.shared() {
        a_demux = DemuxTable::with_capacity(n);
        b_demux = DemuxTable::with_capacity(n);
        for i in 0..n {
            let offset = u32::try_from(i).unwrap_or(u32::MAX);
            a_demux.insert(per(&b_addrs, i), CALLEE_SSRC.wrapping_add(offset), i);
            b_demux.insert(per(&a_addrs, i), CALLER_SSRC.wrapping_add(offset), i);
        }
    }
    if bench.variant == Variant::PerSocketConnected {
        for i in 0..n {
            a[i].connect(b_addrs[i])?;
            b[i].connect(a_addrs[i])?;
        }
    }
    let a_dests = (0..n).map(|i| per(&b_addrs, i)).collect();
    let b_dests = (0..n).map(|i| per(&a_addrs, i)).collect();
    Ok((
        SideSockets {
            name: "caller",
            sockets: a,
            dests: a_dests,
            ssrc_base: CALLER_SSRC,
            shift: Duration::ZERO,
            demux: a_demux,
        },
        SideSockets {
            name: "callee",
            sockets: b,
            dests: b_dests,
            ssrc_base: CALLEE_SSRC,
            // The farm's ticks are not in step with the engine's.
            shift: Duration::from_micros(7_300),
            demux: b_demux,
        },
    ))
}

struct Counters {
    ticks: u64,
    sent: u64,
    send_errors: u64,
    received: u64,
    received_unknown: u64,
    received_stamped: u64,
    send_syscalls: u64,
    recv_syscalls: u64,
    wakeups: u64,
    lateness: Lateness,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            ticks: 0,
            sent: 0,
            send_errors: 0,
            received: 0,
            received_unknown: 0,
            received_stamped: 0,
            send_syscalls: 0,
            recv_syscalls: 0,
            wakeups: 0,
            lateness: Lateness::default(),
        }
    }
}

fn run_side(
    bench: &FloorBench,
    side: SideSockets,
    t0: Instant,
    measure_from: Instant,
    until: Instant,
) -> anyhow::Result<SideReport> {
    let n = bench.streams;
    let variant = bench.variant;
    let recv_cap = if variant.shared() {
        bench.batch
    } else {
        PER_SOCKET_RECV_BATCH
    };
    let gro = variant == Variant::SharedSocketGsoGro;
    // With GRO a datagram may hold up to GSO_SEGMENTS packets.
    let mut rx = if gro {
        sys::MmsgRecv::new(recv_cap.min(64), sys::GRO_BUF)
    } else {
        sys::MmsgRecv::new(recv_cap, RECV_BUF)
    };
    let mut tx = sys::MmsgSend::new(if variant.shared() { bench.batch } else { 1 });
    tx.set_gso(variant.gso());
    let phases: Vec<Duration> = (0..n).map(|i| phase(i, n)).collect();
    let mut seq = vec![0u16; n];
    let mut packet = [0u8; PACKET];
    let mut c = Counters::new();
    let mut ru0 = None;
    // The other side's ticks are not in step with this one's.
    let mut period_start = t0 + side.shift;
    let mut cursor = 0usize;

    loop {
        let mut now = Instant::now();
        if now >= until {
            break;
        }
        if ru0.is_none() && now >= measure_from {
            c = Counters::new();
            ru0 = Some(sys::thread_rusage()?);
        }
        c.wakeups += 1;
        if variant.shared() {
            drain_shared(&side, &mut rx, &mut c);
        }
        let mut batch_count = 0u32;
        loop {
            let deadline = period_start + phases[cursor];
            if deadline > now {
                now = Instant::now();
                if deadline > now {
                    break;
                }
            }
            c.lateness.record(now - deadline);
            c.ticks += 1;
            batch_count += 1;
            if batch_count & 31 == 0 {
                now = Instant::now();
            }
            let s = seq[cursor];
            seq[cursor] = s.wrapping_add(1);
            let ssrc = side
                .ssrc_base
                .wrapping_add(u32::try_from(cursor).unwrap_or(u32::MAX));
            let timestamp = u32::from(s).wrapping_mul(160);
            match variant {
                Variant::SharedSocket | Variant::SharedSocketGso | Variant::SharedSocketGsoGro => {
                    write_packet(tx.next_buf(), s, timestamp, ssrc);
                    tx.push(side.dests[cursor]);
                    if tx.is_full() {
                        flush(&side.sockets[0], &mut tx, &mut c);
                    }
                }
                _ => {
                    let socket = &side.sockets[cursor];
                    drain_one(socket, &mut rx, &mut c);
                    write_packet(&mut packet, s, timestamp, ssrc);
                    c.send_syscalls += 1;
                    let sent = match variant {
                        Variant::PerSocketSendto => {
                            socket.send_to(&packet, side.dests[cursor]).is_ok()
                        }
                        Variant::PerSocketConnected => socket.send(&packet).is_ok(),
                        _ => {
                            tx.next_buf().copy_from_slice(&packet);
                            tx.push(side.dests[cursor]);
                            matches!(tx.flush(socket.as_raw_fd()), Ok(1))
                        }
                    };
                    if sent {
                        c.sent += 1;
                    } else {
                        c.send_errors += 1;
                    }
                }
            }
            cursor += 1;
            if cursor == n {
                cursor = 0;
                period_start += PERIOD;
            }
            if now >= until {
                break;
            }
        }
        if variant.shared() && !tx.is_empty() {
            flush(&side.sockets[0], &mut tx, &mut c);
        }
        let next = period_start + phases[cursor];
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            // As mio's epoll_wait: the timeout rounded up to whole milliseconds.
            let ms = wait.as_nanos().div_ceil(1_000_000);
            std::thread::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(20)));
        }
    }
    let ru1 = sys::thread_rusage()?;
    let (user0, sys0) = ru0.unwrap_or((0.0, 0.0));
    let user_s = ru1.0 - user0;
    let sys_s = ru1.1 - sys0;
    let window = until.saturating_duration_since(measure_from).as_secs_f64();
    let rcvbuf_bytes = side
        .sockets
        .first()
        .and_then(|s| sys::get_int_option(s, libc::SOL_SOCKET, libc::SO_RCVBUF).ok())
        .map_or(0, |v| usize::try_from(v).unwrap_or(0));
    Ok(SideReport {
        side: side.name,
        ticks: c.ticks,
        ticks_expected: (n as f64 * window / PERIOD.as_secs_f64()).round() as u64,
        sent: c.sent,
        send_errors: c.send_errors,
        received: c.received,
        received_unknown: c.received_unknown,
        received_stamped: c.received_stamped,
        send_syscalls: c.send_syscalls,
        recv_syscalls: c.recv_syscalls,
        wakeups: c.wakeups,
        cpu_s: user_s + sys_s,
        user_s,
        sys_s,
        us_per_tick: (user_s + sys_s) / c.ticks.max(1) as f64 * 1e6,
        late_ratio: c.lateness.late_ratio(),
        lateness_p50_ms: c.lateness.quantile_ms(0.5),
        lateness_p99_ms: c.lateness.quantile_ms(0.99),
        lateness_max_ms: c.lateness.max.as_secs_f64() * 1e3,
        rcvbuf_bytes,
    })
}

/// Reads what a per-stream socket holds (normally the one packet of the
/// last 20 ms), as the media crate's `drain_socket`.
fn drain_one(socket: &UdpSocket, rx: &mut sys::MmsgRecv, c: &mut Counters) {
    loop {
        c.recv_syscalls += 1;
        let Ok(got) = rx.recv(socket.as_raw_fd()) else {
            return;
        };
        c.received += got as u64;
        for i in 0..got {
            let d = rx.datagram(i);
            if d.stamped {
                c.received_stamped += 1;
            }
            if d.from.is_none() || ssrc_of(d.data).is_none() {
                c.received_unknown += 1;
            }
        }
        if got < rx.capacity() {
            return;
        }
    }
}

/// Reads everything queued on the shared socket and tells the streams apart.
fn drain_shared(side: &SideSockets, rx: &mut sys::MmsgRecv, c: &mut Counters) {
    let Some(socket) = side.sockets.first() else {
        return;
    };
    loop {
        c.recv_syscalls += 1;
        let Ok(got) = rx.recv(socket.as_raw_fd()) else {
            return;
        };
        for i in 0..got {
            let d = rx.datagram(i);
            let segment = d.segment.unwrap_or(d.data.len()).max(1);
            for packet in d.data.chunks(segment) {
                c.received += 1;
                if d.stamped {
                    c.received_stamped += 1;
                }
                let known = d.from.and_then(|from| side.demux.lookup(from, packet));
                if known.is_none() {
                    c.received_unknown += 1;
                }
            }
        }
        if got < rx.capacity() {
            return;
        }
    }
}

fn flush(socket: &UdpSocket, tx: &mut sys::MmsgSend, c: &mut Counters) {
    let queued = tx.len() as u64;
    let before = tx.calls();
    let sent = tx.flush(socket.as_raw_fd()).unwrap_or(0) as u64;
    c.send_syscalls += tx.calls() - before;
    c.sent += sent;
    c.send_errors += queued - sent;
}

fn raise_fd_limit(want: usize) {
    let want = libc::rlim_t::try_from(want).unwrap_or(libc::rlim_t::MAX);
    if let Some((cur, max)) = sys::nofile_limit() {
        if cur < want {
            sys::set_nofile_limit(want.min(max), max);
        }
    }
}

/// The `cpu` line of `/proc/stat` in clock ticks.
fn read_proc_stat() -> Option<Vec<u64>> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect(),
    )
}

/// `Udp: ... RcvbufErrors` of `/proc/net/snmp` (0 if unreadable).
/// UDP datagrams dropped on full receive buffers since boot, machine-wide.
pub(crate) fn udp_rcvbuf_errors() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn ksoftirqd_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("ksoftirqd"))
        })
        .collect()
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|p| crate::procstat::sample(*p))
        .map(|s| s.cpu.as_secs_f64())
        .sum()
}

fn clock_ticks() -> f64 {
    sys::clock_ticks()
}

/// The system calls, each wrapped with its safety argument.
#[allow(unsafe_code)]
mod sys {
    use super::{CONTROL_WORDS, PACKET};
    use std::io;
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::os::fd::{AsRawFd, RawFd};

    fn socklen_of<T>() -> libc::socklen_t {
        libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
    }

    pub(super) fn set_int_option(
        s: &impl AsRawFd,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
    ) -> io::Result<()> {
        // SAFETY: the option takes an int; we pass a pointer to one and its size.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                level,
                name,
                std::ptr::from_ref(&value).cast(),
                socklen_of::<libc::c_int>(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn get_int_option(
        s: &impl AsRawFd,
        level: libc::c_int,
        name: libc::c_int,
    ) -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = socklen_of::<libc::c_int>();
        // SAFETY: the kernel writes at most `len` bytes into `value`.
        let rc = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                level,
                name,
                std::ptr::from_mut(&mut value).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            Ok(value)
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// This thread's (user, system) CPU seconds.
    pub(super) fn thread_rusage() -> io::Result<(f64, f64)> {
        // SAFETY: rusage is a plain C struct; all zeros is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is valid for writes.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok((secs(ru.ru_utime), secs(ru.ru_stime)))
    }

    pub(super) fn nofile_limit() -> Option<(libc::rlim_t, libc::rlim_t)> {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is valid for writes.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
        (rc == 0).then_some((r.rlim_cur, r.rlim_max))
    }

    pub(super) fn set_nofile_limit(cur: libc::rlim_t, max: libc::rlim_t) {
        let r = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: `r` is a valid rlimit; failure leaves the limit as it was
        // and the socket that does not fit fails with EMFILE.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    }

    pub(super) fn clock_ticks() -> f64 {
        // SAFETY: sysconf only reads a configuration value.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            t as f64
        } else {
            100.0
        }
    }

    fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }

    pub(super) struct Datagram<'a> {
        pub(super) data: &'a [u8],
        pub(super) from: Option<SocketAddrV4>,
        pub(super) stamped: bool,
        /// With UDP GRO: the size of each packet the datagram holds.
        pub(super) segment: Option<usize>,
    }

    /// `recvmmsg` of up to `cap` datagrams with their senders and control
    /// messages, into buffers allocated once. The headers point into the
    /// boxed slices, which never move or grow.
    pub(super) struct MmsgRecv {
        bufs: Box<[u8]>,
        buf_size: usize,
        names: Box<[libc::sockaddr_in]>,
        controls: Box<[[u64; CONTROL_WORDS]]>,
        iovs: Box<[libc::iovec]>,
        hdrs: Box<[libc::mmsghdr]>,
        got: usize,
    }

    impl MmsgRecv {
        pub(super) fn new(cap: usize, buf_size: usize) -> MmsgRecv {
            let cap = cap.max(1);
            let mut r = MmsgRecv {
                bufs: vec![0u8; cap * buf_size].into_boxed_slice(),
                buf_size,
                names: vec![sockaddr_in(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); cap]
                    .into_boxed_slice(),
                controls: vec![[0u64; CONTROL_WORDS]; cap].into_boxed_slice(),
                // SAFETY: iovec and mmsghdr are plain C structs for which
                // all zeros (null pointers, zero lengths) is valid.
                iovs: (0..cap).map(|_| unsafe { std::mem::zeroed() }).collect(),
                hdrs: (0..cap).map(|_| unsafe { std::mem::zeroed() }).collect(),
                got: 0,
            };
            for i in 0..cap {
                r.iovs[i].iov_base = r.bufs[i * buf_size..].as_mut_ptr().cast();
                r.iovs[i].iov_len = buf_size;
                let h = &mut r.hdrs[i].msg_hdr;
                h.msg_name = std::ptr::from_mut(&mut r.names[i]).cast();
                h.msg_iov = std::ptr::from_mut(&mut r.iovs[i]);
                h.msg_iovlen = 1;
                h.msg_control = r.controls[i].as_mut_ptr().cast();
            }
            r
        }

        pub(super) fn capacity(&self) -> usize {
            self.hdrs.len()
        }

        /// Reads what is queued, without waiting; `Err(WouldBlock)` if nothing.
        pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
            for h in self.hdrs.iter_mut() {
                // The kernel wrote the last call's lengths back: reset them.
                h.msg_hdr.msg_namelen = socklen_of::<libc::sockaddr_in>();
                h.msg_hdr.msg_controllen = std::mem::size_of::<[u64; CONTROL_WORDS]>() as _;
                h.msg_hdr.msg_flags = 0;
                h.msg_len = 0;
            }
            let cap = libc::c_uint::try_from(self.hdrs.len()).unwrap_or(libc::c_uint::MAX);
            // SAFETY: every header points at buffers owned by `self` (boxed,
            // never moved while it lives) with the lengths given beside them.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.hdrs.as_mut_ptr(),
                    cap,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                self.got = 0;
                return Err(io::Error::last_os_error());
            }
            self.got = usize::try_from(n).unwrap_or(0).min(self.hdrs.len());
            Ok(self.got)
        }

        /// Datagram `i` of the last `recv` (`i` below what it returned).
        pub(super) fn datagram(&self, i: usize) -> Datagram<'_> {
            let h = &self.hdrs[i.min(self.got.saturating_sub(1))];
            let len = (h.msg_len as usize).min(self.buf_size);
            let start = i * self.buf_size;
            let name = &self.names[i];
            let from = (h.msg_hdr.msg_namelen >= socklen_of::<libc::sockaddr_in>()
                && i32::from(name.sin_family) == libc::AF_INET)
                .then(|| {
                    SocketAddrV4::new(
                        Ipv4Addr::from(u32::from_be(name.sin_addr.s_addr)),
                        u16::from_be(name.sin_port),
                    )
                });
            let (stamped, segment) = read_control(&h.msg_hdr);
            Datagram {
                data: &self.bufs[start..start + len],
                from,
                stamped,
                segment,
            }
        }
    }

    /// Whether a received header carries `SCM_TIMESTAMPNS` (reading it, as
    /// the media crate does, so the cost of the walk is in the figure), and
    /// the GRO segment size when the datagram holds several packets.
    fn read_control(hdr: &libc::msghdr) -> (bool, Option<usize>) {
        let mut stamped = false;
        let mut segment = None;
        // SAFETY: `hdr` was filled by recvmmsg: msg_control points at our
        // aligned control buffer and msg_controllen is what the kernel wrote,
        // so the CMSG walk stays inside it; the timespec is read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    stamped = ts.tv_sec > 0;
                } else if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO
                {
                    let size: libc::c_int = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    segment = usize::try_from(size).ok().filter(|&s| s > 0);
                }
                cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
            }
        }
        (stamped, segment)
    }

    /// Receive buffer per datagram with GRO: room for a whole GSO send.
    pub(super) const GRO_BUF: usize = GSO_SEGMENTS * PACKET;

    /// Segments per GSO send: the kernel's `UDP_MAX_SEGMENTS` was 64 until
    /// Linux 5.5 (128 since); more is refused with EINVAL.
    const GSO_SEGMENTS: usize = 64;

    /// A batch of packets for `sendmmsg`, each with its own destination.
    pub(super) struct MmsgSend {
        bufs: Box<[[u8; PACKET]]>,
        names: Box<[libc::sockaddr_in]>,
        iovs: Box<[libc::iovec]>,
        hdrs: Box<[libc::mmsghdr]>,
        len: usize,
        calls: u64,
        gso: bool,
    }

    impl MmsgSend {
        pub(super) fn new(cap: usize) -> MmsgSend {
            let cap = cap.max(1);
            let mut s = MmsgSend {
                bufs: vec![[0u8; PACKET]; cap].into_boxed_slice(),
                names: vec![sockaddr_in(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); cap]
                    .into_boxed_slice(),
                // SAFETY: as in MmsgRecv::new.
                iovs: (0..cap).map(|_| unsafe { std::mem::zeroed() }).collect(),
                hdrs: (0..cap).map(|_| unsafe { std::mem::zeroed() }).collect(),
                len: 0,
                calls: 0,
                gso: false,
            };
            for i in 0..cap {
                s.iovs[i].iov_base = s.bufs[i].as_mut_ptr().cast();
                s.iovs[i].iov_len = PACKET;
                let h = &mut s.hdrs[i].msg_hdr;
                h.msg_name = std::ptr::from_mut(&mut s.names[i]).cast();
                h.msg_namelen = socklen_of::<libc::sockaddr_in>();
                h.msg_iov = std::ptr::from_mut(&mut s.iovs[i]);
                h.msg_iovlen = 1;
            }
            s
        }

        /// The buffer of the next packet (written, then [`MmsgSend::push`]ed).
        pub(super) fn next_buf(&mut self) -> &mut [u8; PACKET] {
            let i = self.len.min(self.bufs.len() - 1);
            &mut self.bufs[i]
        }

        pub(super) fn push(&mut self, dest: SocketAddrV4) {
            if self.len < self.bufs.len() {
                self.names[self.len] = sockaddr_in(dest);
                self.len += 1;
            }
        }

        pub(super) fn len(&self) -> usize {
            self.len
        }

        pub(super) fn is_empty(&self) -> bool {
            self.len == 0
        }

        pub(super) fn is_full(&self) -> bool {
            self.len == self.bufs.len()
        }

        pub(super) fn calls(&self) -> u64 {
            self.calls
        }

        /// Send runs of packets to one destination as one GSO buffer.
        pub(super) fn set_gso(&mut self, on: bool) {
            self.gso = on;
        }

        /// Sends the batch (several calls if the kernel takes part of it);
        /// returns how many went. The batch is empty afterwards.
        pub(super) fn flush(&mut self, fd: RawFd) -> io::Result<usize> {
            if self.gso {
                return self.flush_gso(fd);
            }
            let mut done = 0;
            let total = self.len;
            self.len = 0;
            while done < total {
                let left = libc::c_uint::try_from(total - done).unwrap_or(libc::c_uint::MAX);
                self.calls += 1;
                // SAFETY: headers `done..total` point at buffers owned by
                // `self` with their lengths; the kernel only reads them and
                // writes `msg_len`.
                let n = unsafe {
                    libc::sendmmsg(fd, self.hdrs[done..].as_mut_ptr(), left, libc::MSG_DONTWAIT)
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    if done == 0 {
                        return Err(e);
                    }
                    break;
                }
                if n == 0 {
                    break;
                }
                done += usize::try_from(n).unwrap_or(0);
            }
            Ok(done)
        }

        /// Each run of packets to the same destination in one `sendmsg`
        /// with a `UDP_SEGMENT` control message (every packet is
        /// [`PACKET`] bytes, so each iovec is one segment).
        fn flush_gso(&mut self, fd: RawFd) -> io::Result<usize> {
            let total = self.len;
            self.len = 0;
            let same = |a: &libc::sockaddr_in, b: &libc::sockaddr_in| {
                a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port
            };
            let mut sent = 0;
            let mut start = 0;
            while start < total {
                let mut end = start + 1;
                while end < total
                    && end - start < GSO_SEGMENTS
                    && same(&self.names[start], &self.names[end])
                {
                    end += 1;
                }
                let mut control = [0u64; 4];
                // SAFETY: msghdr is a plain C struct; all zeros is valid.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_name = std::ptr::from_mut(&mut self.names[start]).cast();
                msg.msg_namelen = socklen_of::<libc::sockaddr_in>();
                msg.msg_iov = self.iovs[start..end].as_mut_ptr();
                msg.msg_iovlen = end - start;
                if end - start > 1 {
                    msg.msg_control = control.as_mut_ptr().cast();
                    // SAFETY: CMSG_SPACE only computes a size.
                    msg.msg_controllen =
                        unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
                    // SAFETY: msg_control points at 32 zeroed, aligned bytes,
                    // room for one cmsg carrying a u16.
                    unsafe {
                        let cmsg = libc::CMSG_FIRSTHDR(&msg);
                        (*cmsg).cmsg_level = libc::SOL_UDP;
                        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                        (*cmsg).cmsg_len =
                            libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
                        std::ptr::write_unaligned(
                            libc::CMSG_DATA(cmsg).cast::<u16>(),
                            PACKET as u16,
                        );
                    }
                }
                self.calls += 1;
                // SAFETY: msg points at our names, iovecs and control buffer,
                // all alive for the call; the kernel only reads them.
                let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
                if n < 0 && std::env::var_os("FLOOR_DEBUG").is_some() {
                    eprintln!(
                        "gso send of {}: {}",
                        end - start,
                        io::Error::last_os_error()
                    );
                }
                if n >= 0 {
                    sent += end - start;
                } else if sent == 0 && end == total {
                    return Err(io::Error::last_os_error());
                }
                start = end;
            }
            Ok(sent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_tells_streams_apart_by_address_and_ssrc() {
        let peer: SocketAddrV4 = "127.0.0.1:40000".parse().expect("addr");
        let other: SocketAddrV4 = "127.0.0.1:40002".parse().expect("addr");
        let mut t = DemuxTable::with_capacity(4);
        assert!(t.is_empty());
        assert_eq!(t.insert(peer, 7, 0), None);
        assert_eq!(t.insert(peer, 8, 1), None);
        assert_eq!(t.insert(other, 7, 2), None);
        assert_eq!(t.len(), 3);
        let mut p = [0u8; PACKET];
        write_packet(&mut p, 1, 160, 8);
        assert_eq!(t.lookup(peer, &p), Some(1));
        write_packet(&mut p, 1, 160, 7);
        assert_eq!(t.lookup(peer, &p), Some(0));
        assert_eq!(t.lookup(other, &p), Some(2));
        // Unknown SSRC, unknown address, too short, not RTP version 2.
        write_packet(&mut p, 1, 160, 9);
        assert_eq!(t.lookup(peer, &p), None);
        write_packet(&mut p, 1, 160, 7);
        let stranger: SocketAddrV4 = "127.0.0.1:1".parse().expect("addr");
        assert_eq!(t.lookup(stranger, &p), None);
        assert_eq!(t.lookup(peer, &p[..11]), None);
        p[0] = 0x40;
        assert_eq!(t.lookup(peer, &p), None);
        // Re-inserting a key says what it replaced.
        assert_eq!(t.insert(peer, 7, 5), Some(0));
    }

    #[test]
    fn packet_is_pcmu_with_its_header() {
        let mut p = [0u8; PACKET];
        write_packet(&mut p, 0x0102, 0x0304_0506, 0x0708_090a);
        assert_eq!(&p[..12], &[0x80, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert!(p[12..].iter().all(|b| *b == 0xFF));
        assert_eq!(ssrc_of(&p), Some(0x0708_090a));
    }

    #[test]
    fn phases_spread_over_the_period_in_order() {
        let n = 5000;
        let mut last = Duration::ZERO;
        for i in 0..n {
            let p = phase(i, n);
            assert!(p < PERIOD);
            assert!(p >= last, "stream {i} ticks before stream {}", i - 1);
            last = p;
        }
        assert_eq!(phase(0, n), Duration::ZERO);
        assert_eq!(phase(n / 2, n), Duration::from_millis(10));
        assert_eq!(phase(0, 0), Duration::ZERO);
    }

    #[test]
    fn lateness_quantiles_and_late_ratio() {
        let mut l = Lateness::default();
        assert_eq!(l.quantile_ms(0.99), 0.0);
        for _ in 0..98 {
            l.record(Duration::from_micros(250));
        }
        l.record(Duration::from_millis(6));
        l.record(Duration::from_secs(2));
        assert_eq!(l.quantile_ms(0.5), 0.3);
        assert_eq!(l.quantile_ms(0.99), 6.1);
        assert_eq!(l.quantile_ms(1.0), 2000.0);
        assert!((l.late_ratio() - 0.02).abs() < 1e-12);
    }

    #[test]
    fn variants_parse_by_name() {
        for v in [
            Variant::PerSocketSendto,
            Variant::PerSocketConnected,
            Variant::PerSocketSendmmsg,
            Variant::SharedSocket,
            Variant::SharedSocketGso,
            Variant::SharedSocketGsoGro,
        ] {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
        }
        assert!("f".parse::<Variant>().is_err());
    }

    #[test]
    fn a_short_run_of_each_variant_delivers_every_stream() {
        for variant in [
            Variant::PerSocketSendto,
            Variant::PerSocketConnected,
            Variant::PerSocketSendmmsg,
            Variant::SharedSocket,
            Variant::SharedSocketGso,
            Variant::SharedSocketGsoGro,
        ] {
            let r = run(&FloorBench {
                variant,
                streams: 20,
                seconds: 0.3,
                warmup: 0.1,
                batch: 64,
                timestamps: true,
                shared_rcvbuf: 1 << 20,
            })
            .expect("run");
            for side in [&r.caller, &r.callee] {
                assert!(side.ticks > 0, "{variant:?} {side:?}");
                assert_eq!(side.send_errors, 0, "{variant:?} {side:?}");
                assert_eq!(side.received_unknown, 0, "{variant:?} {side:?}");
                assert!(side.received > 0, "{variant:?} {side:?}");
                assert_eq!(side.received, side.received_stamped);
                // 20 streams: on time bar the millisecond the sleep rounds
                // to (a side that walked its streams out of phase order once
                // had a third of its ticks 20 ms late).
                assert!(side.late_ratio < 0.25, "{variant:?} {side:?}");
            }
        }
    }
}
