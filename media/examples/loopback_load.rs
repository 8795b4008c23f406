//! Load check without SIPp: N sessions in one engine, paired on loopback
//! (each sends one frame per 20 ms to its partner and receives the
//! partner's), so the engine carries exactly the packet rate of N calls with
//! an echoing far end. Prints late ratio, loss and CPU use.
//!
//! `cargo run --release -p dialcast-media --example loopback_load -- 1500 30 [threads]`

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialcast_media::{Codec, MediaConfig, MediaEngine, MediaStats, Prompt, RemoteMedia};

/// utime + stime of this process, in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat; index 11 and 12 after the comm field.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(1500), |a| a.parse())?;
    let secs: u64 = args.get(2).map_or(Ok(30), |a| a.parse())?;
    let threads: usize = args.get(3).map_or(Ok(1), |a| a.parse())?;
    let engine = MediaEngine::start_with_threads(
        MediaConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ..MediaConfig::default()
        },
        threads,
    )?;
    let prompt = Arc::new(Prompt::from_pcm(
        &(0..8000 * 5)
            .map(|i| ((f64::from(i) * 0.3).sin() * 8000.0) as i16)
            .collect::<Vec<_>>(),
    ));
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push(engine.open_session()?);
    }
    // Calls arrive over ~1 s, like a dialer ramping up: start times spread.
    for pair in sessions.chunks(2) {
        if let [a, b] = pair {
            for (s, other) in [(a, b), (b, a)] {
                s.set_remote(RemoteMedia {
                    addr: other.local_addr(),
                    codec: Codec::Pcma,
                    payload_type: 8,
                    dtmf_payload_type: Some(101),
                    ssrc: None,
                });
                s.start_sending();
                s.play(Arc::clone(&prompt));
            }
        }
        std::thread::sleep(Duration::from_micros(1_000_000 / n as u64 * 2));
    }
    std::thread::sleep(Duration::from_secs(1));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let base: Vec<MediaStats> = sessions.iter().map(|s| s.stats()).collect();
    std::thread::sleep(Duration::from_secs(secs));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mut total = MediaStats::default();
    for (s, b) in sessions.iter().zip(&base) {
        let st = s.stats();
        total.rtp_sent += st.rtp_sent - b.rtp_sent;
        total.rtp_received += st.rtp_received - b.rtp_received;
        total.rtp_late += st.rtp_late - b.rtp_late;
        total.rtp_lost += st.rtp_lost - b.rtp_lost;
        total.rtp_malformed += st.rtp_malformed;
        total.jitter_ms = total.jitter_ms.max(st.jitter_ms);
    }
    let expected = n as f64 * wall / 0.020;
    println!("sessions {n}, scheduler threads {threads}, window {wall:.1} s");
    println!(
        "sent {} ({:.0} pps, {:.2} % of expected), received {}, lost {}, malformed {}",
        total.rtp_sent,
        total.rtp_sent as f64 / wall,
        100.0 * total.rtp_sent as f64 / expected,
        total.rtp_received,
        total.rtp_lost,
        total.rtp_malformed
    );
    println!(
        "rtp_late {} → rtp_late_ratio {:.4} %, max jitter {:.2} ms",
        total.rtp_late,
        100.0 * total.rtp_late as f64 / total.rtp_sent.max(1) as f64,
        total.jitter_ms
    );
    println!("process CPU {:.1} % of one core", 100.0 * cpu / wall);
    drop(sessions);
    Ok(())
}
