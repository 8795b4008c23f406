//! Per-packet and per-tick costs of the media hot path. Results and the
//! machine they ran on are in `media/BENCH.md`.

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dialcast_media::session::MAX_PACKET;
use dialcast_media::{
    parse_rtp, AmdConfig, AmdDetector, Codec, Prompt, RemoteMedia, RtpHeader, SessionConfig,
    SessionCore,
};

const CFG: SessionConfig = SessionConfig {
    send_silence: true,
    inactivity_timeout: Duration::from_secs(30),
};

fn packet() -> Vec<u8> {
    let mut buf = vec![0u8; MAX_PACKET];
    RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: 1234,
        timestamp: 987_654,
        ssrc: 0xdead_beef,
    }
    .write(&[0x55; 160], &mut buf)
    .expect("fits");
    buf
}

fn core_to(addr: SocketAddr, now: Instant) -> SessionCore {
    let mut core = SessionCore::new(CFG, now);
    core.set_remote(
        RemoteMedia {
            addr,
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: Some(101),
            ssrc: None,
        },
        now,
    );
    core.start_sending();
    core
}

fn parsing(c: &mut Criterion) {
    let pkt = packet();
    c.bench_function("rtp_parse", |b| b.iter(|| parse_rtp(black_box(&pkt))));
    let pcm = [1234i16; 160];
    let mut out = [0u8; 160];
    c.bench_function("g711_encode_frame_pcma", |b| {
        b.iter(|| Codec::Pcma.encode(black_box(&pcm), &mut out))
    });
    let mut dec = [0i16; 160];
    c.bench_function("g711_decode_frame_pcmu", |b| {
        b.iter(|| Codec::Pcmu.decode(black_box(&out), &mut dec))
    });
}

fn session_core(c: &mut Criterion) {
    let now = Instant::now();
    let peer = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut core = core_to(peer, now);
    let prompt = Arc::new(Prompt::from_pcm(&vec![1000i16; 8000 * 60]));
    core.play(prompt);
    let mut pkt = [0u8; MAX_PACKET];
    let mut rec = [0i16; 320];
    c.bench_function("session_on_tick_prompt_frame", |b| {
        b.iter(|| {
            let deadline = core.next_deadline().unwrap_or(now);
            black_box(core.on_tick(deadline, &mut pkt, &mut rec))
        })
    });
    let mut rx = core_to(peer, now);
    let mut data = packet();
    let mut seq = 0u16;
    c.bench_function("session_handle_datagram", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            data[2..4].copy_from_slice(&seq.to_be_bytes());
            rx.handle_datagram(black_box(&data), peer, now);
        })
    });
    // A packet in and a tick out with detection on: decode into the ring,
    // one frame to the detector (a steady level, below the noise floor after
    // 2.5 s: the quiet path). Detection is kept from ending.
    let mut det = core_to(peer, now);
    let mut config = AmdConfig::default();
    config.beep.listen_ms = 0;
    det.start_detection(Box::new(AmdDetector::new(config)));
    let mut data = packet();
    let mut seq = 0u16;
    c.bench_function("session_rx_and_tick_detecting", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            data[2..4].copy_from_slice(&seq.to_be_bytes());
            det.handle_datagram(black_box(&data), peer, now);
            let deadline = det.next_deadline().unwrap_or(now);
            black_box(det.on_tick(deadline, &mut pkt, &mut rec))
        })
    });
}

/// One scheduler tick for N sessions: build each session's frame and
/// `send_to` it from its own socket over loopback — the work the scheduler
/// thread does every 20 ms.
fn tick_send(c: &mut Criterion) {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
    sink.set_nonblocking(true).expect("nonblocking");
    let dest = sink.local_addr().expect("addr");
    let mut group = c.benchmark_group("tick_send_loopback");
    group.sample_size(20);
    for n in [100usize, 1500] {
        let now = Instant::now();
        let mut sessions: Vec<(UdpSocket, SessionCore)> = (0..n)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
                s.set_nonblocking(true).expect("nonblocking");
                (s, core_to(dest, now))
            })
            .collect();
        let mut pkt = [0u8; MAX_PACKET];
        let mut rec = [0i16; 320];
        let mut drain = [0u8; 2048];
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                for (sock, core) in sessions.iter_mut() {
                    let deadline = core.next_deadline().unwrap_or(now);
                    if let Some((len, to)) = core.on_tick(deadline, &mut pkt, &mut rec).transmit {
                        let _ = sock.send_to(&pkt[..len], to);
                    }
                }
                // Keep the sink's buffer from filling (the kernel would drop
                // silently, which is cheaper than the real receive path).
                while sink.recv_from(&mut drain).is_ok() {}
            })
        });
    }
    group.finish();
}

/// The answering-machine detector per 20 ms frame, averaged over 2 s of
/// audio played in a loop: line hiss (energy and noise floor only), and
/// speech-like bursts, 400 ms on and 200 ms off (two thirds of the frames
/// also pay for the 256-point spectrum).
fn amd(c: &mut Criterion) {
    let hiss = |i: u32| ((i.wrapping_mul(2_654_435_761) >> 20) as i16 & 0x3f) - 32;
    let quiet: Vec<i16> = (0..16_000u32).map(hiss).collect();
    let bursts: Vec<i16> = (0..16_000u32)
        .map(|i| {
            if i % 4800 >= 3200 {
                return hiss(i);
            }
            let t = f64::from(i) / 8000.0;
            let f0 = 130.0 + 20.0 * (t * 5.0).sin();
            let v: f64 = (1..16)
                .map(|k| (t * f0 * f64::from(k) * std::f64::consts::TAU).sin() / f64::from(k))
                .sum();
            (v * 4000.0) as i16
        })
        .collect();
    // A whole answered call, 8 s (400 frames): 0.5 s of hiss, a 3 s
    // greeting of the bursts above, 0.5 s of hiss, a 1 kHz beep of 0.4 s,
    // then hiss, through a fresh boxed detector (built as the session
    // builds it), every frame (it decides "machine" at the beep and goes on
    // listening for beeps): the cost of detection for one call.
    let beep = |i: u32| {
        let t = f64::from(i) / 8000.0;
        ((t * 1000.0 * std::f64::consts::TAU).sin() * 6000.0) as i16
    };
    let call: Vec<i16> = (0..64_000u32)
        .map(|i| match i {
            0..4_000 => hiss(i),
            4_000..28_000 => bursts[(i - 4_000) as usize % bursts.len()],
            28_000..32_000 => hiss(i),
            32_000..35_200 => beep(i),
            _ => hiss(i),
        })
        .collect();
    for (name, audio) in [("amd_frame_hiss", &quiet), ("amd_frame_speech", &bursts)] {
        let mut det = AmdDetector::new(AmdConfig::default());
        let mut frames = audio.chunks(160).cycle();
        c.bench_function(name, |b| {
            b.iter(|| {
                let f = frames.next().unwrap_or(&[]);
                black_box(det.process(black_box(f)))
            })
        });
    }
    let config = AmdConfig {
        beep: dialcast_media::BeepConfig {
            listen_ms: 8_000,
            ..Default::default()
        },
        ..AmdConfig::default()
    };
    c.bench_function("amd_call_8s", |b| {
        b.iter(|| {
            let mut det = Box::new(AmdDetector::new(config));
            let mut decision = None;
            for f in call.chunks(160) {
                decision = decision.or(det.process(black_box(f)).decision);
            }
            black_box(decision)
        })
    });
    // As the media thread sees them: 1,000 calls detecting at once, one
    // speech frame for each in turn (a 20 ms round), each detector's state
    // cold by the time its turn comes again. Per round; ÷ 1,000 per frame.
    let mut dets: Vec<Box<AmdDetector>> = (0..1_000)
        .map(|_| Box::new(AmdDetector::new(AmdConfig::default())))
        .collect();
    let mut frames = bursts.chunks(160).cycle();
    c.bench_function("amd_round_1000_calls", |b| {
        b.iter(|| {
            let f = frames.next().unwrap_or(&[]);
            for d in dets.iter_mut() {
                black_box(d.process(black_box(f)));
            }
        })
    });
}

criterion_group!(benches, parsing, session_core, tick_send, amd);
criterion_main!(benches);
