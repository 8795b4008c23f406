//! An endpoint whose last transaction is over goes quiet: its driver sleeps
//! until the next command or datagram instead of spinning on a timer that
//! already fired. (It once spun at a full core after the last call of a
//! campaign: the timer had elapsed and nothing re-armed it while the core
//! had no deadline.) Its own test binary, so the process's CPU is this
//! endpoint's alone.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use dialcast_sip::{SipConfig, SipEndpoint, Transport};

/// User + system CPU of this process, in clock ticks (`/proc/self/stat`).
fn process_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Answers the first OPTIONS it gets with 200, echoing the headers a
/// response must carry.
fn answer_one_options(peer: UdpSocket) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let (n, from) = peer.recv_from(&mut buf).expect("OPTIONS arrives");
        let request = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(request.starts_with("OPTIONS "), "{request}");
        let mut response = String::from("SIP/2.0 200 OK\r\n");
        for line in request.lines() {
            let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
            if ["via", "v", "from", "f", "call-id", "i", "cseq"].contains(&name.as_str()) {
                response.push_str(line);
                response.push_str("\r\n");
            } else if name == "to" || name == "t" {
                response.push_str(line);
                response.push_str(";tag=idle\r\n");
            }
        }
        response.push_str("Content-Length: 0\r\n\r\n");
        peer.send_to(response.as_bytes(), from).expect("200 sent");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_last_transaction_the_endpoint_uses_no_cpu() {
    let (endpoint, _inbound) = SipEndpoint::start(SipConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        tcp: false,
        ..SipConfig::default()
    })
    .await
    .expect("endpoint starts");
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    let peer_addr = peer.local_addr().expect("peer addr");
    let responder = answer_one_options(peer);
    let answer = endpoint
        .send_options(peer_addr, Transport::Udp, Duration::from_secs(2))
        .await
        .expect("probe");
    assert_eq!(answer.map(|a| a.code), Some(200));
    responder.join().expect("responder");
    // The probe's retransmission timer (T1, 500 ms) still fires once, finds
    // the probe answered, and leaves the core with no deadline at all.
    tokio::time::sleep(Duration::from_millis(800)).await;

    let ticks_per_s = 100.0; // USER_HZ on Linux
    let before = process_cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used_s = (process_cpu_ticks() - before) as f64 / ticks_per_s;
    assert!(
        used_s < 0.2,
        "an idle endpoint used {used_s:.2} s of CPU in 1 s"
    );
    endpoint.shutdown();
}
