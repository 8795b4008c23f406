//! Test media written at run time instead of checked in: WAV prompts of a
//! given length, and pcap captures of RTP that SIPp replays with
//! `play_pcap_audio` (PCMU audio, RFC 4733 telephone events).
//!
//! SIPp only reads the UDP payload and the destination port of each captured
//! packet (it sends the payload from its own media port to the address in the
//! peer's SDP) and paces packets by their capture timestamps; the addresses in
//! the Ethernet and IPv4 headers written here are placeholders.

use std::f64::consts::PI;
use std::io::Write as _;
use std::path::Path;

/// Samples per second of every file written here.
pub const RATE: u32 = 8000;
/// One RTP packet carries 20 ms: 160 samples at 8 kHz.
pub const SAMPLES_PER_PACKET: u32 = 160;
/// Packets per second at 20 ms packetisation.
pub const PACKETS_PER_SECOND: u32 = RATE / SAMPLES_PER_PACKET;

/// Writes `millis` ms of a 440 Hz tone as a mono 16-bit PCM WAV at 8 kHz.
pub fn write_prompt_wav(path: &Path, millis: u32) {
    let samples = tone(millis * RATE / 1000);
    let data_len = u32::try_from(samples.len() * 2).expect("a short prompt");
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, out).expect("write the prompt WAV");
}

/// The channel count and length in ms of a PCM WAV file, from its header
/// (the `fmt ` chunk and the size of the `data` chunk).
pub fn wav_duration_ms(path: &Path) -> Result<(u16, u64), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".to_string());
    }
    let mut format: Option<(u16, u32)> = None; // channels, bytes per second
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let body = at + 8;
        if id == b"fmt " && body + 12 <= bytes.len() {
            let channels = u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]);
            let byte_rate = u32::from_le_bytes([
                bytes[body + 8],
                bytes[body + 9],
                bytes[body + 10],
                bytes[body + 11],
            ]);
            format = Some((channels, byte_rate));
        }
        if id == b"data" {
            let (channels, byte_rate) = format.ok_or("the data chunk comes before fmt")?;
            if byte_rate == 0 {
                return Err("the fmt chunk says 0 bytes per second".to_string());
            }
            // A writer killed mid-call may leave the size unset: count what is there.
            let size = if size == 0 || size == u32::MAX {
                (bytes.len() - body) as u64
            } else {
                u64::from(size)
            };
            return Ok((channels, size * 1000 / u64::from(byte_rate)));
        }
        at = body + size as usize + (size as usize % 2);
    }
    Err("no data chunk".to_string())
}

/// The number of 20 ms packets a prompt of `millis` ms makes.
pub fn packets_for(millis: u32) -> u32 {
    millis.div_ceil(20)
}

/// Writes `millis` ms of a 440 Hz tone as PCMU RTP (payload type 0), one
/// packet per 20 ms.
pub fn write_pcmu_pcap(path: &Path, millis: u32) {
    let samples = tone(packets_for(millis) * SAMPLES_PER_PACKET);
    let mut rtp = RtpWriter::new(0x5171_7a01);
    let mut pcap = Pcap::new();
    for (index, frame) in samples.chunks(SAMPLES_PER_PACKET as usize).enumerate() {
        let index = u32::try_from(index).expect("a short clip");
        let payload: Vec<u8> = frame.iter().map(|&s| ulaw(s)).collect();
        let packet = rtp.packet(0, index == 0, index * SAMPLES_PER_PACKET, &payload);
        pcap.push(index * 20_000, &packet);
    }
    pcap.write(path);
}

/// Writes `digits` as RFC 4733 telephone events on `payload_type`, the way a
/// phone sends them: per digit, 200 ms of event packets every 20 ms (marker
/// on the first, growing duration, same timestamp), the end packet three
/// times, then 200 ms of nothing before the next digit.
pub fn write_dtmf_pcap(path: &Path, digits: &str, payload_type: u8) {
    const TONE_PACKETS: u32 = 10;
    const GAP_MICROS: u32 = 200_000;
    let mut rtp = RtpWriter::new(0x5171_7a02);
    let mut pcap = Pcap::new();
    let mut micros = 0u32;
    for digit in digits.chars() {
        let event = event_code(digit);
        let timestamp = micros / 125; // 8 kHz: one sample per 125 us
        for n in 1..=TONE_PACKETS {
            let duration = n * SAMPLES_PER_PACKET;
            let payload = event_payload(event, false, duration);
            pcap.push(
                micros,
                &rtp.packet(payload_type, n == 1, timestamp, &payload),
            );
            micros += 20_000;
        }
        let payload = event_payload(event, true, TONE_PACKETS * SAMPLES_PER_PACKET);
        for _ in 0..3 {
            pcap.push(
                micros,
                &rtp.packet(payload_type, false, timestamp, &payload),
            );
            micros += 1_000;
        }
        micros += GAP_MICROS;
    }
    pcap.write(path);
}

/// Writes one key as RFC 4733 events on `payload_type` (200 ms, end packet
/// three times), then, `gap_millis` after it, `millis` ms of the 440 Hz tone
/// as PCMU, on one RTP stream: a callee who presses a key and then talks.
pub fn write_key_then_talk_pcap(
    path: &Path,
    digit: char,
    payload_type: u8,
    gap_millis: u32,
    millis: u32,
) {
    const TONE_PACKETS: u32 = 10;
    let mut rtp = RtpWriter::new(0x5171_7a03);
    let mut pcap = Pcap::new();
    let event = event_code(digit);
    let mut micros = 0u32;
    for n in 1..=TONE_PACKETS {
        let payload = event_payload(event, false, n * SAMPLES_PER_PACKET);
        pcap.push(micros, &rtp.packet(payload_type, n == 1, 0, &payload));
        micros += 20_000;
    }
    let payload = event_payload(event, true, TONE_PACKETS * SAMPLES_PER_PACKET);
    for _ in 0..3 {
        pcap.push(micros, &rtp.packet(payload_type, false, 0, &payload));
        micros += 1_000;
    }
    micros += gap_millis * 1000;
    let first_timestamp = micros / 125;
    let samples = tone(packets_for(millis) * SAMPLES_PER_PACKET);
    for (index, frame) in samples.chunks(SAMPLES_PER_PACKET as usize).enumerate() {
        let index = u32::try_from(index).expect("a short clip");
        let payload: Vec<u8> = frame.iter().map(|&s| ulaw(s)).collect();
        let timestamp = first_timestamp + index * SAMPLES_PER_PACKET;
        pcap.push(micros, &rtp.packet(0, index == 0, timestamp, &payload));
        micros += 20_000;
    }
    pcap.write(path);
}

/// Writes `digits` in band: per digit 100 ms of its two Q.23 tones, then
/// 100 ms of silence, as PCMU (payload type 0), the way a phone without
/// RFC 4733 sends keys.
pub fn write_inband_dtmf_pcap(path: &Path, digits: &str) {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLUMNS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let mut samples: Vec<i16> = Vec::new();
    for digit in digits.chars() {
        let (row, column) = KEYS
            .iter()
            .enumerate()
            .find_map(|(r, keys)| keys.find(digit).map(|c| (ROWS[r], COLUMNS[c])))
            .unwrap_or_else(|| panic!("{digit:?} is not a DTMF digit"));
        for n in 0..RATE / 10 {
            let t = f64::from(n) / f64::from(RATE);
            let s = (2.0 * PI * row * t).sin() * 6000.0 + (2.0 * PI * column * t).sin() * 6000.0;
            samples.push(s as i16);
        }
        samples.extend(std::iter::repeat_n(0i16, (RATE / 10) as usize));
    }
    let mut rtp = RtpWriter::new(0x5171_7a04);
    let mut pcap = Pcap::new();
    for (index, frame) in samples.chunks(SAMPLES_PER_PACKET as usize).enumerate() {
        let index = u32::try_from(index).expect("a short clip");
        let payload: Vec<u8> = frame.iter().map(|&s| ulaw(s)).collect();
        let packet = rtp.packet(0, index == 0, index * SAMPLES_PER_PACKET, &payload);
        pcap.push(index * 20_000, &packet);
    }
    pcap.write(path);
}

/// The RFC 4733 event code of a DTMF digit.
fn event_code(digit: char) -> u8 {
    match digit {
        '0'..='9' => digit as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => digit as u8 - b'A' + 12,
        other => panic!("{other:?} is not a DTMF digit"),
    }
}

/// An RFC 4733 event payload: event, E bit and volume (-10 dBm0), duration.
fn event_payload(event: u8, end: bool, duration: u32) -> [u8; 4] {
    let duration = u16::try_from(duration).expect("a short event");
    let [high, low] = duration.to_be_bytes();
    let end_bit = if end { 0x80 } else { 0 };
    [event, end_bit | 10, high, low]
}

/// 16-bit samples of a 440 Hz tone at a third of full scale.
fn tone(count: u32) -> Vec<i16> {
    (0..count)
        .map(|n| {
            let phase = 2.0 * PI * 440.0 * f64::from(n) / f64::from(RATE);
            (phase.sin() * 10_000.0) as i16
        })
        .collect()
}

/// G.711 mu-law encoding of one linear sample (ITU-T G.711, with the usual
/// bias of 0x84 and clipping at 32635).
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let value = i32::from(sample);
    let sign = if value < 0 { 0x80 } else { 0 };
    let magnitude = value.abs().min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let exponent = (0..8)
        .rev()
        .find(|e| magnitude & (0x80 << e) != 0)
        .unwrap_or(0);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// Consecutive RTP packets of one stream (one SSRC, running sequence number).
struct RtpWriter {
    ssrc: u32,
    sequence: u16,
}

impl RtpWriter {
    fn new(ssrc: u32) -> RtpWriter {
        RtpWriter {
            ssrc,
            sequence: 1000,
        }
    }

    fn packet(
        &mut self,
        payload_type: u8,
        marker: bool,
        timestamp: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut packet = Vec::with_capacity(12 + payload.len());
        packet.push(0x80); // version 2, no padding, no extension, no CSRC
        let marker = if marker { 0x80 } else { 0 };
        packet.push(marker | (payload_type & 0x7f));
        packet.extend_from_slice(&self.sequence.to_be_bytes());
        packet.extend_from_slice(&timestamp.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        packet.extend_from_slice(payload);
        self.sequence = self.sequence.wrapping_add(1);
        packet
    }
}

/// A classic libpcap capture (microsecond timestamps, Ethernet link type) of
/// IPv4 UDP datagrams to port 6000.
struct Pcap {
    bytes: Vec<u8>,
}

impl Pcap {
    fn new() -> Pcap {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic
        bytes.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes()); // GMT offset
        bytes.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
        bytes.extend_from_slice(&65_535u32.to_le_bytes()); // snapshot length
        bytes.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        Pcap { bytes }
    }

    /// Appends one datagram carrying `payload`, captured at `micros`.
    fn push(&mut self, micros: u32, payload: &[u8]) {
        let udp_len = u16::try_from(8 + payload.len()).expect("a small datagram");
        let ip_len = 20 + udp_len;
        let mut frame = Vec::with_capacity(14 + usize::from(ip_len));
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]); // destination MAC
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]); // source MAC
        frame.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
        frame.extend_from_slice(&[0x45, 0]); // version 4, 20-byte header
        frame.extend_from_slice(&ip_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0x40, 0]); // id, don't fragment
        frame.extend_from_slice(&[64, 17, 0, 0]); // TTL, UDP, checksum unset
        frame.extend_from_slice(&[192, 0, 2, 1]); // TEST-NET-1 source
        frame.extend_from_slice(&[192, 0, 2, 2]); // TEST-NET-1 destination
        frame.extend_from_slice(&4000u16.to_be_bytes()); // source port
        frame.extend_from_slice(&6000u16.to_be_bytes()); // destination port
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum
        frame.extend_from_slice(payload);

        let frame_len = u32::try_from(frame.len()).expect("a small frame");
        self.bytes
            .extend_from_slice(&(micros / 1_000_000).to_le_bytes());
        self.bytes
            .extend_from_slice(&(micros % 1_000_000).to_le_bytes());
        self.bytes.extend_from_slice(&frame_len.to_le_bytes()); // captured
        self.bytes.extend_from_slice(&frame_len.to_le_bytes()); // on the wire
        self.bytes.extend_from_slice(&frame);
    }

    fn write(&self, path: &Path) {
        let mut file = std::fs::File::create(path).expect("create the pcap");
        file.write_all(&self.bytes).expect("write the pcap");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_matches_known_codes() {
        // Values from the G.711 mu-law table: silence, extremes, a mid value.
        assert_eq!(ulaw(0), 0xff);
        assert_eq!(ulaw(-1), 0x7f);
        assert_eq!(ulaw(32_767), 0x80);
        assert_eq!(ulaw(-32_768), 0x00);
        assert_eq!(ulaw(1000), 0xce);
    }
}
