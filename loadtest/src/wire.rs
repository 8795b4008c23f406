//! RTP pacing seen on the wire, measured the same way for both sides of a
//! benchmark: `tcpdump` captures the packets going to the echoing callee for a
//! few seconds of steady state, and we count, per RTP stream (SSRC), the
//! packets that left more than 25 ms after the previous one (at least 5 ms
//! behind a 20 ms cadence). SIPp reports nothing about its own pacing, so this
//! is the only figure both sides share.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

/// What the capture showed.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct WirePacing {
    pub seconds: f64,
    pub streams: usize,
    pub gaps: u64,
    /// Gaps over 25 ms ÷ gaps.
    pub gap_over_25ms_ratio: f64,
    pub spacing_p50_ms: f64,
    pub spacing_p99_ms: f64,
}

/// Captures UDP packets to `port` on loopback into `path` for `duration`,
/// starting after `delay`, on a thread of its own.
pub fn capture_later(
    port: u16,
    delay: Duration,
    duration: Duration,
    path: &Path,
) -> std::thread::JoinHandle<anyhow::Result<()>> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut child: Child = Command::new("tcpdump")
            .args(["-i", "lo", "-n", "-s", "64", "-w"])
            .arg(&path)
            .arg(format!("udp dst port {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start tcpdump (apt-get install -y tcpdump)")?;
        std::thread::sleep(duration);
        child.kill().ok();
        child.wait().ok();
        Ok(())
    })
}

/// Reads a pcap file of Ethernet-framed IPv4/UDP/RTP packets (what `tcpdump -i
/// lo` writes on Linux) and measures the pacing of each RTP stream.
pub fn analyze(path: &Path) -> anyhow::Result<WirePacing> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = data.get(..24).context("pcap file too short")?;
    let magic = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let nanos = match magic {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        other => anyhow::bail!(
            "{}: not a little-endian pcap file (magic {other:#x})",
            path.display()
        ),
    };
    let linktype = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let link_len = match linktype {
        1 => 14,   // Ethernet
        113 => 16, // Linux cooked
        other => anyhow::bail!("{}: unsupported link type {other}", path.display()),
    };
    let mut streams: HashMap<u32, Vec<f64>> = HashMap::new();
    let mut at = 24;
    let (mut first, mut last) = (f64::MAX, 0f64);
    while at + 16 <= data.len() {
        let rec = &data[at..at + 16];
        let secs = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]) as f64;
        let frac = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]) as f64;
        let caplen = u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize;
        let time = secs + if nanos { frac / 1e9 } else { frac / 1e6 };
        let packet = data.get(at + 16..at + 16 + caplen).unwrap_or_default();
        at += 16 + caplen;
        // IPv4 header length from IHL, then UDP (8 bytes), then RTP: SSRC at 8..12.
        let Some(ip) = packet.get(link_len..) else {
            continue;
        };
        let Some(&vihl) = ip.first() else { continue };
        if vihl >> 4 != 4 {
            continue;
        }
        let rtp_at = usize::from(vihl & 0x0f) * 4 + 8;
        let Some(rtp) = ip.get(rtp_at..rtp_at + 12) else {
            continue;
        };
        if rtp[0] >> 6 != 2 {
            continue;
        }
        let ssrc = u32::from_be_bytes([rtp[8], rtp[9], rtp[10], rtp[11]]);
        streams.entry(ssrc).or_default().push(time);
        first = first.min(time);
        last = last.max(time);
    }
    let mut spacing: Vec<f64> = Vec::new();
    for times in streams.values() {
        spacing.extend(times.windows(2).map(|w| w[1] - w[0]));
    }
    spacing.sort_by(f64::total_cmp);
    let over = spacing.iter().filter(|s| **s > 0.025).count();
    let quantile = |q: f64| {
        spacing
            .get(((spacing.len() as f64) * q) as usize)
            .map_or(0.0, |s| s * 1000.0)
    };
    Ok(WirePacing {
        seconds: (last - first).max(0.0),
        streams: streams.len(),
        gaps: spacing.len() as u64,
        gap_over_25ms_ratio: over as f64 / spacing.len().max(1) as f64,
        spacing_p50_ms: quantile(0.5),
        spacing_p99_ms: quantile(0.99),
    })
}
