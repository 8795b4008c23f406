//! Real sockets on 127.0.0.1: engines, sessions and raw UDP peers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialcast_media::{
    parse_rtp, AmdConfig, AmdVerdict, Codec, MediaConfig, MediaEngine, MediaEvent, MediaSession,
    Prompt, RemoteMedia, RtpHeader,
};

fn engine(base: u16, send_silence: bool, inactivity: Duration) -> MediaEngine {
    MediaEngine::start(MediaConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port_min: base,
        port_max: base + 99,
        inactivity_timeout: inactivity,
        send_silence,
        metrics: true,
        ..MediaConfig::default()
    })
    .expect("engine starts")
}

fn remote(addr: SocketAddr, codec: Codec, dtmf: Option<u8>) -> RemoteMedia {
    RemoteMedia {
        addr,
        codec,
        payload_type: codec.payload_type(),
        dtmf_payload_type: dtmf,
        ssrc: None,
    }
}

async fn next(session: &mut MediaSession, within: Duration) -> Option<MediaEvent> {
    tokio::time::timeout(within, session.next_event())
        .await
        .ok()
        .flatten()
}

fn tone(freq: f64, amplitude: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|i| ((i as f64 * 2.0 * std::f64::consts::PI * freq / 8000.0).sin() * amplitude) as i16)
        .collect()
}

fn peer() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

fn rtp_packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + payload.len()];
    RtpHeader {
        marker: seq == 0,
        payload_type: pt,
        sequence: seq,
        timestamp: ts,
        ssrc: 0x1234,
    }
    .write(payload, &mut buf)
    .expect("fits");
    buf
}

#[tokio::test]
async fn two_sessions_talk_and_counts_match() {
    let eng = engine(41000, false, Duration::from_secs(30));
    let mut a = eng.open_session().expect("a");
    let mut b = eng.open_session().expect("b");
    assert_eq!(eng.active_sessions(), 2);
    assert_ne!(a.local_addr().port(), b.local_addr().port());
    assert_eq!(a.local_addr().port() % 2, 0);
    a.set_remote(remote(b.local_addr(), Codec::Pcma, None));
    b.set_remote(remote(a.local_addr(), Codec::Pcma, None));
    a.start_sending();
    let prompt = Arc::new(Prompt::from_pcm(&tone(440.0, 8000.0, 160 * 25)));
    a.play(Arc::clone(&prompt));
    assert_eq!(
        next(&mut b, Duration::from_secs(2)).await,
        Some(MediaEvent::FirstPacket)
    );
    assert_eq!(
        next(&mut a, Duration::from_secs(2)).await,
        Some(MediaEvent::PlaybackFinished)
    );
    tokio::time::sleep(Duration::from_millis(150)).await; // let the last packet land
    let sa = a.close().await;
    let sb = b.close().await;
    assert_eq!(sa.rtp_sent, 25, "send_silence off: only prompt frames");
    assert_eq!(sb.rtp_received, 25);
    assert_eq!(sb.rtp_lost, 0);
    assert_eq!(sb.rtp_malformed, 0);
    assert_eq!(eng.active_sessions(), 0);
}

#[tokio::test]
async fn symmetric_rtp_latches_to_real_source() {
    let eng = engine(41200, true, Duration::from_secs(30));
    let mut s = eng.open_session().expect("session");
    let announced = peer();
    let real = peer();
    s.set_remote(remote(
        announced.local_addr().expect("addr"),
        Codec::Pcmu,
        None,
    ));
    s.start_sending();
    // The peer really sends from another port (NAT).
    for seq in 0..5u16 {
        real.send_to(
            &rtp_packet(0, seq, u32::from(seq) * 160, &[0xff; 160]),
            s.local_addr(),
        )
        .expect("send");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        next(&mut s, Duration::from_secs(1)).await,
        Some(MediaEvent::FirstPacket)
    );
    let mut buf = [0u8; 2048];
    let mut got = 0;
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        if let Ok((len, from)) = real.recv_from(&mut buf) {
            assert_eq!(from, s.local_addr());
            assert!(parse_rtp(&buf[..len]).is_ok());
            got += 1;
        }
    }
    assert!(got >= 10, "latched replies: {got}");
    // Drain what went to the announced address before latching, then check
    // nothing more arrives there.
    announced
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    while announced.recv_from(&mut buf).is_ok() {}
    announced
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    assert!(
        announced.recv_from(&mut buf).is_err(),
        "still sending to the announced port"
    );
    drop(s);
}

#[tokio::test]
async fn inactivity_timeout_fires() {
    let eng = engine(41400, true, Duration::from_millis(300));
    let mut s = eng.open_session().expect("session");
    let silent = peer();
    let started = Instant::now();
    s.set_remote(remote(
        silent.local_addr().expect("addr"),
        Codec::Pcmu,
        None,
    ));
    s.start_sending();
    assert_eq!(
        next(&mut s, Duration::from_secs(2)).await,
        Some(MediaEvent::InactivityTimeout)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_millis(1000),
        "{waited:?}"
    );
    let stats = s.close().await;
    assert!(stats.rtp_sent >= 10, "kept sending: {}", stats.rtp_sent);
}

#[tokio::test]
async fn dtmf_malformed_and_stats_through_the_engine() {
    let eng = engine(41600, true, Duration::from_secs(30));
    let mut s = eng.open_session().expect("session");
    let p = peer();
    s.set_remote(remote(p.local_addr().expect("addr"), Codec::Pcmu, Some(96)));
    let to = s.local_addr();
    p.send_to(&[0xde, 0xad], to).expect("send");
    p.send_to(&[0x00; 40], to).expect("send"); // version 0
    let mut seq = 0u16;
    for (digit, ts) in [(1u8, 1000u32), (11, 9000)] {
        for (end, dur) in [
            (false, 160u16),
            (false, 320),
            (true, 640),
            (true, 640),
            (true, 640),
        ] {
            let d = dur.to_be_bytes();
            let flags = if end { 0x8a } else { 0x0a };
            p.send_to(&rtp_packet(96, seq, ts, &[digit, flags, d[0], d[1]]), to)
                .expect("send");
            seq += 1;
        }
    }
    assert_eq!(
        next(&mut s, Duration::from_secs(1)).await,
        Some(MediaEvent::FirstPacket)
    );
    assert_eq!(
        next(&mut s, Duration::from_secs(1)).await,
        Some(MediaEvent::Dtmf {
            digit: '1',
            duration_ms: 80
        })
    );
    assert_eq!(
        next(&mut s, Duration::from_secs(1)).await,
        Some(MediaEvent::Dtmf {
            digit: '#',
            duration_ms: 80
        })
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let snap = s.stats();
    assert_eq!(snap.dtmf, "1#");
    assert_eq!(snap.rtp_malformed, 2);
    assert_eq!(snap.rtp_received, 10);
    let fin = s.close().await;
    assert_eq!(fin.dtmf, "1#");
}

#[tokio::test]
async fn pacing_matches_wall_clock() {
    let eng = engine(41800, true, Duration::from_secs(30));
    let s = eng.open_session().expect("session");
    let sink = peer();
    s.set_remote(remote(sink.local_addr().expect("addr"), Codec::Pcmu, None));
    s.start_sending();
    let mut buf = [0u8; 2048];
    let (len, _) = sink.recv_from(&mut buf).expect("first packet");
    let first = parse_rtp(&buf[..len]).expect("rtp");
    assert!(first.marker);
    let (seq0, ts0) = (first.sequence, first.timestamp);
    let t0 = Instant::now();
    let mut count = 1u32;
    let mut last = (seq0, ts0);
    while t0.elapsed() < Duration::from_secs(3) {
        let (len, _) = sink.recv_from(&mut buf).expect("packet");
        let p = parse_rtp(&buf[..len]).expect("rtp");
        assert_eq!(p.sequence, last.0.wrapping_add(1));
        assert_eq!(p.timestamp, last.1.wrapping_add(160));
        last = (p.sequence, p.timestamp);
        count += 1;
    }
    let elapsed = t0.elapsed();
    let expected = (elapsed.as_secs_f64() / 0.020) as i64 + 1;
    assert!(
        (i64::from(count) - expected).abs() <= 1,
        "{count} packets in {elapsed:?}"
    );
    let ts_span = last.1.wrapping_sub(ts0);
    assert_eq!(ts_span, (count - 1) * 160);
    let stats = s.close().await;
    // A shared CI machine can stall the thread; most packets must still be on time.
    assert!(
        stats.rtp_late * 10 < stats.rtp_sent,
        "late {} of {}",
        stats.rtp_late,
        stats.rtp_sent
    );
}

#[tokio::test]
async fn a_recording_window_is_as_long_as_from_until() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("window.wav");
    let eng = engine(42100, true, Duration::from_secs(30));
    let s = eng.open_session().expect("session");
    let p = peer();
    s.set_remote(remote(p.local_addr().expect("addr"), Codec::Pcmu, None));
    s.start_sending();
    // The window starts 55 ms before the command is even sent.
    let from = Instant::now() - Duration::from_millis(55);
    s.record_from(&path, from).expect("record");
    tokio::time::sleep(Duration::from_millis(730)).await;
    let until = Instant::now();
    s.stop_recording_at(until);
    // Frames after `until` are cut however long the close takes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = s.close().await;
    let want = ((until - from).as_secs_f64() / 0.020).round() as u64;
    assert_eq!(stats.record_frames, want);
    let r = hound::WavReader::open(&path).expect("final file");
    assert_eq!(u64::from(r.duration()), want * 160);
    assert!(
        stats.record_filled >= 2,
        "the 55 ms before the command are silence"
    );
}

#[tokio::test]
async fn recording_is_readable_mid_call_and_complete_at_close() {
    let dir = std::env::temp_dir().join(format!("dialcast-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("call.wav");
    let eng = engine(42000, true, Duration::from_secs(30));
    let s = eng.open_session().expect("session");
    let p = peer();
    s.set_remote(remote(p.local_addr().expect("addr"), Codec::Pcmu, None));
    s.record_to(&path).expect("record");
    s.start_sending();
    // Ours: a loud prompt; theirs: a quieter constant level.
    s.play(Arc::new(Prompt::from_pcm(&vec![6000i16; 8000 * 3])));
    let theirs = Codec::Pcmu.encode_sample(-1500);
    let to = s.local_addr();
    let t0 = Instant::now();
    let mut seq = 0u16;
    let mut checked_mid_call = false;
    while t0.elapsed() < Duration::from_millis(2500) {
        p.send_to(
            &rtp_packet(0, seq, u32::from(seq) * 160, &[theirs; 160]),
            to,
        )
        .expect("send");
        seq += 1;
        std::thread::sleep(Duration::from_millis(20));
        if !checked_mid_call && t0.elapsed() > Duration::from_millis(1700) {
            // Writer still open: the header must already describe the data.
            let r = hound::WavReader::open(&path).expect("readable mid-call");
            let spec = r.spec();
            assert_eq!(
                (spec.channels, spec.sample_rate, spec.bits_per_sample),
                (2, 8000, 16)
            );
            let n = r.len();
            assert!(n >= 2 * 8000 / 2, "only {n} samples after 1.7 s");
            let samples: Vec<i16> = r.into_samples().collect::<Result<_, _>>().expect("samples");
            assert_eq!(samples.len() as u32, n);
            checked_mid_call = true;
        }
    }
    assert!(checked_mid_call);
    let stats = s.close().await;
    assert!(stats.rtp_received > 100);
    let r = hound::WavReader::open(&path).expect("final file");
    let samples: Vec<i16> = r.into_samples().collect::<Result<_, _>>().expect("samples");
    let frames = samples.len() / 2;
    let secs = frames as f64 / 8000.0;
    assert!((2.3..3.0).contains(&secs), "recorded {secs} s");
    // Middle of the call: left ≈ +6000 (ours), right ≈ -1500 (theirs).
    let mid = &samples[frames / 2 * 2..frames / 2 * 2 + 2 * 800];
    let left: Vec<i16> = mid.iter().step_by(2).copied().collect();
    let right: Vec<i16> = mid.iter().skip(1).step_by(2).copied().collect();
    assert!(
        left.iter().all(|s| (5700..6300).contains(s)),
        "left {:?}",
        &left[..8]
    );
    let right_ok = right.iter().filter(|s| (-1600..-1400).contains(*s)).count();
    assert!(right_ok > right.len() * 9 / 10, "right {:?}", &right[..8]);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn port_range_exhaustion_and_reuse() {
    let eng = MediaEngine::start(MediaConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port_min: 42200,
        port_max: 42203,
        ..MediaConfig::default()
    })
    .expect("engine");
    let a = eng.open_session().expect("a");
    let b = eng.open_session().expect("b");
    assert!(matches!(
        eng.open_session(),
        Err(dialcast_media::MediaError::PortRangeExhausted { .. })
    ));
    let freed = a.local_addr().port();
    a.close().await;
    let c = eng.open_session().expect("port reused after close");
    assert_eq!(c.local_addr().port(), freed);
    drop(b);
    drop(c);
    assert_eq!(eng.active_sessions(), 0);
}

#[tokio::test]
async fn detection_hears_a_greeting_and_a_beep_over_rtp() {
    let eng = engine(42400, true, Duration::from_secs(30));
    let mut s = eng.open_session().expect("session");
    let p = peer();
    s.set_remote(remote(p.local_addr().expect("addr"), Codec::Pcmu, None));
    s.detect(AmdConfig::default());
    // 300 ms of silence, a 2.5 s "greeting" (a wobbling buzz), 400 ms of
    // silence, a 400 ms 850 Hz beep, silence: sent in real time.
    let mut pcm = vec![0i16; 8 * 300];
    pcm.extend((0..8 * 2500).map(|i| {
        let t = i as f64 / 8000.0;
        let f0 = 140.0 + 30.0 * (t * 3.0).sin();
        let v: f64 = (1..20)
            .map(|k| (t * f0 * k as f64 * std::f64::consts::TAU).sin() / k as f64)
            .sum();
        (v * 3000.0 * (0.6 + 0.4 * (t * 25.0).sin())) as i16
    }));
    pcm.extend(vec![0i16; 8 * 400]);
    pcm.extend(tone(850.0, 8000.0, 8 * 400));
    pcm.extend(vec![0i16; 8 * 600]);
    let to = s.local_addr();
    let start = Instant::now();
    for (i, chunk) in pcm.chunks(160).enumerate() {
        let payload: Vec<u8> = chunk
            .iter()
            .map(|x| Codec::Pcmu.encode_sample(*x))
            .collect();
        p.send_to(&rtp_packet(0, i as u16, i as u32 * 160, &payload), to)
            .expect("send");
        let due = start + Duration::from_millis(20 * (i as u64 + 1));
        tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
    }
    let mut amd = None;
    let mut beep = None;
    while let Some(ev) = next(&mut s, Duration::from_millis(500)).await {
        match ev {
            MediaEvent::Amd(d) => amd = Some(d),
            MediaEvent::Beep { start_ms, end_ms } => beep = Some((start_ms, end_ms)),
            _ => {}
        }
    }
    let amd = amd.expect("AMD decided");
    assert_eq!(amd.verdict, AmdVerdict::Machine, "{amd:?}");
    let (start, end) = beep.expect("beep heard");
    // On the session's clock: the beep starts 3.2 s into the audio; allow for
    // when detection started relative to the first packet, and scheduling.
    assert!((3100..=3400).contains(&start), "{start}");
    assert!(end.abs_diff(start + 400) <= 20, "{start}-{end}");
}

/// One session presses keys (RFC 4733 on payload type 101), the other
/// reports each once, in order, with its length.
#[tokio::test]
async fn a_session_sends_dtmf_another_receives_it() {
    let eng = engine(42600, true, Duration::from_secs(30));
    let a = eng.open_session().expect("a");
    let mut b = eng.open_session().expect("b");
    a.set_remote(remote(b.local_addr(), Codec::Pcmu, Some(101)));
    b.set_remote(remote(a.local_addr(), Codec::Pcmu, Some(101)));
    a.start_sending();
    b.start_sending();
    a.send_dtmf("123#", Duration::from_millis(80));
    let mut digits = Vec::new();
    let until = Instant::now() + Duration::from_secs(3);
    while digits.len() < 4 && Instant::now() < until {
        match next(&mut b, Duration::from_secs(1)).await {
            Some(MediaEvent::Dtmf { digit, duration_ms }) => digits.push((digit, duration_ms)),
            Some(_) => {}
            None => break,
        }
    }
    assert_eq!(digits, [('1', 80), ('2', 80), ('3', 80), ('#', 80)]);
    // Nothing the other way: b pressed nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sa = a.close().await;
    let sb = b.close().await;
    assert_eq!(sb.dtmf, "123#");
    assert_eq!(sa.dtmf, "");
    assert_eq!(sb.rtp_lost, 0);
}
