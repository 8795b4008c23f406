//! One RTP socket per scheduler thread (`RtpSocketMode::PerThread`) on
//! 127.0.0.1: engines in that mode talking to each other, to an engine with a
//! socket per call, and to raw UDP peers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use dialcast_media::{
    Codec, MediaConfig, MediaEngine, MediaEvent, MediaSession, RemoteMedia, RtpHeader,
    RtpSocketMode,
};

fn engine(base: u16, mode: RtpSocketMode, threads: usize) -> MediaEngine {
    engine_with(base, mode, threads, true)
}

fn engine_with(base: u16, mode: RtpSocketMode, threads: usize, udp_offload: bool) -> MediaEngine {
    MediaEngine::start_with_threads(
        MediaConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: base,
            port_max: base + 199,
            inactivity_timeout: Duration::from_secs(30),
            send_silence: true,
            metrics: false,
            rtp_socket: mode,
            udp_offload,
        },
        threads,
    )
    .expect("engine starts")
}

fn remote(addr: SocketAddr, ssrc: Option<u32>) -> RemoteMedia {
    RemoteMedia {
        addr,
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
        ssrc,
    }
}

async fn first_packet(session: &mut MediaSession) -> bool {
    let wait = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(ev) = session.next_event().await {
            if ev == MediaEvent::FirstPacket {
                return true;
            }
        }
        false
    });
    wait.await.unwrap_or(false)
}

/// Pairs `n` calls between `a` and `b`, optionally announcing SSRCs to each
/// other, runs them for `run`, and returns each side's final stats.
async fn pairs(
    a: &MediaEngine,
    b: &MediaEngine,
    n: usize,
    announce: bool,
    run: Duration,
) -> Vec<(dialcast_media::MediaStats, dialcast_media::MediaStats)> {
    let mut calls = Vec::new();
    for _ in 0..n {
        let x = a.open_session().expect("a session");
        let y = b.open_session().expect("b session");
        let ssrc = |s: &MediaSession| announce.then_some(s.ssrc());
        x.set_remote(remote(y.local_addr(), ssrc(&y)));
        y.set_remote(remote(x.local_addr(), ssrc(&x)));
        x.start_sending();
        y.start_sending();
        calls.push((x, y));
    }
    for (x, y) in &mut calls {
        assert!(first_packet(x).await, "a heard its peer");
        assert!(first_packet(y).await, "b heard its peer");
    }
    tokio::time::sleep(run).await;
    // Both stop sending (hold), then close once the last packets landed, so
    // neither receives anything after its peer closed.
    for (x, y) in &calls {
        x.set_hold(true);
        y.set_hold(true);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut out = Vec::new();
    for (x, y) in calls {
        out.push((x.close().await, y.close().await));
    }
    out
}

#[tokio::test]
async fn calls_on_two_shared_sockets_are_told_apart_by_announced_ssrc() {
    // UDP GSO and GRO on (the default): a wake-up's packets for b's one
    // port leave together and arrive as one datagram, cut up again here.
    told_apart(42000, 42400, true).await;
}

#[tokio::test]
async fn without_udp_offload_each_packet_travels_alone_and_nothing_changes() {
    told_apart(46000, 46400, false).await;
}

async fn told_apart(a_base: u16, b_base: u16, udp_offload: bool) {
    let a = engine_with(a_base, RtpSocketMode::PerThread, 2, udp_offload);
    let b = engine_with(b_base, RtpSocketMode::PerThread, 1, udp_offload);
    let probe = a.open_session().expect("probe");
    let probe2 = a.open_session().expect("probe 2");
    let probe3 = a.open_session().expect("probe 3");
    // Two threads: sessions alternate between two ports, never a new one.
    assert_ne!(probe.local_addr(), probe2.local_addr());
    assert_eq!(probe.local_addr(), probe3.local_addr());
    assert_ne!(probe.ssrc(), probe3.ssrc());
    drop((probe, probe2, probe3));
    let stats = pairs(&a, &b, 40, true, Duration::from_millis(600)).await;
    for (sx, sy) in &stats {
        // Every packet a call received was its peer's: none lost, none
        // foreign (a foreign stream would show as a sequence jump or loss).
        assert!(sx.rtp_received >= 25, "{sx:?}");
        assert!(sy.rtp_received >= 25, "{sy:?}");
        assert_eq!((sx.rtp_lost, sy.rtp_lost), (0, 0), "{sx:?} {sy:?}");
        assert_eq!(sx.rtp_received, sy.rtp_sent, "x got all y sent");
        assert_eq!(sy.rtp_received, sx.rtp_sent, "y got all x sent");
        assert_eq!((sx.rtp_send_errors, sy.rtp_send_errors), (0, 0));
    }
    tokio::time::sleep(Duration::from_millis(250)).await; // housekeeping
    assert_eq!(a.unmatched_datagrams(), 0);
    assert_eq!(b.unmatched_datagrams(), 0);
}

#[tokio::test]
async fn a_shared_socket_talks_to_a_socket_per_call_peer_without_ssrcs() {
    let a = engine(42800, RtpSocketMode::PerThread, 1);
    let b = engine(43000, RtpSocketMode::PerCall, 1);
    // b's calls each have a port: a tells them apart by address; b's ports
    // tell a's calls apart though they all come from one address.
    let stats = pairs(&a, &b, 20, false, Duration::from_millis(400)).await;
    for (sx, sy) in &stats {
        assert_eq!(sx.rtp_received, sy.rtp_sent, "{sx:?} {sy:?}");
        assert_eq!(sy.rtp_received, sx.rtp_sent, "{sx:?} {sy:?}");
        assert_eq!((sx.rtp_lost, sy.rtp_lost), (0, 0));
        assert!(sy.rtp_received >= 20, "{sy:?}");
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(a.unmatched_datagrams(), 0);
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + 160];
    RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc,
    }
    .write(&[0xff; 160], &mut buf)
    .expect("fits");
    buf
}

#[tokio::test]
async fn strangers_are_dropped_and_counted_and_unannounced_ssrcs_are_learned_one_at_a_time() {
    let a = engine(43200, RtpSocketMode::PerThread, 1);
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    peer.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let peer_addr = peer.local_addr().expect("addr");
    let mut s1 = a.open_session().expect("s1");
    let mut s2 = a.open_session().expect("s2");
    let shared = s1.local_addr();
    assert_eq!(s2.local_addr(), shared);
    // A packet before any remote is set: it waits for its call.
    peer.send_to(&rtp(0, 7), shared).expect("send");
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Both calls' remote is the same peer socket, announcing nothing:
    // which one SSRC 7 is for is unknown, so it keeps waiting.
    s1.set_remote(remote(peer_addr, None));
    s2.set_remote(remote(peer_addr, None));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // s2 is told its peer's SSRC (a re-INVITE announcing it): now 7 can
    // only be s1's (the waiting packet goes to it), and 9 is s2's.
    s2.set_remote(remote(peer_addr, Some(9)));
    assert!(first_packet(&mut s1).await, "the parked packet reached s1");
    peer.send_to(&rtp(0, 9), shared).expect("send");
    assert!(first_packet(&mut s2).await);
    for seq in 1..6 {
        peer.send_to(&rtp(seq, 7), shared).expect("send");
    }
    // A stranger waits, then is dropped and counted.
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("stranger");
    stranger.send_to(&rtp(0, 1234), shared).expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.unmatched_datagrams(), 0, "still waiting");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(a.unmatched_datagrams(), 1);
    // Symmetric RTP: s1 sends to its peer, from the shared port.
    s1.start_sending();
    let mut buf = [0u8; 512];
    let (_, from) = peer.recv_from(&mut buf).expect("s1 sends to its peer");
    assert_eq!(from, shared);
    let st1 = s1.close().await;
    let st2 = s2.close().await;
    assert_eq!((st1.rtp_received, st1.rtp_lost), (6, 0), "{st1:?}");
    assert_eq!(st2.rtp_received, 1, "{st2:?}");
}
