//! The sans-IO media session: one call's RTP state, driven by the scheduler
//! (or a test) with datagrams, ticks and the current time; no sockets, no
//! clock of its own.
//!
//! ```text
//!   set_remote ──► 20 ms clock runs (one `on_tick` per deadline)
//!                     │  sending = start_sending && !on_hold && destination known
//!                     ▼
//!   each tick: frame = key press (RFC 4733 event or in-band tone) | pause
//!              between keys | next prompt frame | silence (send_silence) | nothing
//!              timestamp += 160 whether or not a packet leaves
//!              marker on the first packet of a stream, after a gap, on the
//!              first prompt frame after silence (start of a talk spurt), and
//!              on the first packet of each RFC 4733 event
//!   each datagram: parse → count/drop malformed → latch destination (symmetric
//!              RTP) → loss, jitter → audio into the receive ring | DTMF
//!   each tick, when recording or detecting: one 20 ms frame out of the ring
//!              (silence while it is empty) → recorder block and/or detectors
//! ```
//!
//! Keys ([`SessionCore::send_dtmf`]) follow RFC 4733 §2.5 on the negotiated
//! telephone-event payload type (see `crate::dtmf` for the packets of one
//! key); without one they are sent in band, as ITU-T Q.23 tone pairs encoded
//! with the audio codec. Either way they replace the audio of their ticks:
//! a playing prompt pauses from the first key to the end of the pause after
//! the last one, then resumes where it was.
//!
//! Nothing here allocates per packet: prompts are shared pre-encoded frames,
//! the receive ring and event queue are preallocated, and the answering
//! machine / beep detector is boxed once when detection starts
//! ([`SessionCore::start_detection`]). The detectors see the received audio
//! on our 20 ms clock, after the 40 ms jitter allowance; a lost or late packet
//! is silence to them, and frames skipped after a stalled clock are not seen
//! (their times then run behind the wall clock by the stall).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::amd::{AmdDecision, AmdDetector, BeepEvent};
use crate::bridge::{BridgeEnd, PcmFrame};
use crate::codec::{Codec, FRAME_SAMPLES, SAMPLE_RATE};
use crate::dtmf::{parse_telephone_event, tone_samples, DtmfFrame, DtmfReceiver, DtmfSender};
use crate::inband::InbandDtmf;
use crate::prompt::Prompt;
use crate::rtp::{parse_rtp, RtpHeader, RTP_HEADER_LEN};

/// Packet interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// A packet sent later than this after its deadline counts as `rtp_late`.
pub const LATE_THRESHOLD: Duration = Duration::from_millis(5);
/// If the clock falls further behind than this (a stalled thread), frames are
/// skipped rather than sent in a burst; the timestamp still advances.
pub const MAX_CATCH_UP: Duration = Duration::from_millis(200);
/// Largest packet we build: header + one G.711 frame.
pub const MAX_PACKET: usize = RTP_HEADER_LEN + FRAME_SAMPLES;
/// Received audio buffered for the recorder and detectors (6 frames = 120 ms);
/// older samples are overwritten if the peer sends faster than our clock.
const RX_RING: usize = FRAME_SAMPLES * 6;
/// Received audio waits until this much is buffered before the recorder and
/// detectors take it, so packets arriving just after our tick do not leave
/// holes.
const RX_PRIME: usize = FRAME_SAMPLES * 2;
/// Sequence jumps larger than this are a restart, not a loss.
const MAX_SEQ_JUMP: u16 = 3000;

/// Where and how to send, as negotiated in SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    pub addr: SocketAddr,
    pub codec: Codec,
    pub payload_type: u8,
    /// The negotiated telephone-event payload type (101, 96, ...), if any.
    pub dtmf_payload_type: Option<u8>,
    /// The SSRC the peer announced in its SDP (`a=ssrc`, RFC 5576), if it
    /// did: tells its calls apart when they all come from one address
    /// (see `crate::demux`). Not used with a socket per call.
    pub ssrc: Option<u32>,
}

/// What a session reports to its call.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The first valid RTP packet from the peer arrived.
    FirstPacket,
    /// A DTMF key press (RFC 4733, or in band when that detection is on;
    /// `duration_ms` is 0 for in-band keys), reported once.
    Dtmf { digit: char, duration_ms: u32 },
    /// The last frame of a prompt was sent.
    PlaybackFinished,
    /// A `stop_playback` took effect: the queue was dropped. Every
    /// `PlaybackFinished` before this one belongs to the stopped playback,
    /// none after it does.
    PlaybackStopped,
    /// No RTP for `inactivity_timeout` (reported once).
    InactivityTimeout,
    /// The answering-machine detector decided (once per
    /// [`SessionCore::start_detection`]); times in ms from the first received
    /// audio after detection started.
    Amd(AmdDecision),
    /// A voicemail beep ended; speak from `end_ms` on. Times in ms from the
    /// first received audio after detection started. Every beep heard while
    /// listening is reported.
    Beep { start_ms: u32, end_ms: u32 },
}

/// Per-session counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MediaStats {
    pub rtp_sent: u64,
    pub rtp_received: u64,
    /// Packets sent more than 5 ms after their deadline (plus frames skipped
    /// after a stall longer than 200 ms).
    pub rtp_late: u64,
    /// From sequence gaps, less late arrivals that filled a gap.
    pub rtp_lost: u64,
    pub rtp_malformed: u64,
    /// RFC 3550 §6.4.1 interarrival jitter, in milliseconds.
    pub jitter_ms: f64,
    /// Digits received, in order.
    pub dtmf: String,
    /// Events not delivered because the call's event channel was full.
    pub events_dropped: u64,
    /// 20 ms recording blocks dropped because the recorder fell behind
    /// (written as silence: the recording keeps its length).
    pub record_dropped: u64,
    /// Frames the recording spans on the media clock (set at close).
    pub record_frames: u64,
    /// Frames the recorder wrote as silence because their block was dropped
    /// or skipped by a stalled media thread (set at close).
    pub record_filled: u64,
    /// Packets the socket refused to send (counted in `rtp_sent` too).
    pub rtp_send_errors: u64,
    /// Frames of a bridged peer's audio sent (see `crate::bridge`).
    pub bridged_frames: u64,
}

/// Session settings taken from `MediaConfig`.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub send_silence: bool,
    pub inactivity_timeout: Duration,
}

/// What one tick produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickOutput {
    /// A packet of this length was written to the buffer, for this address.
    pub transmit: Option<(usize, SocketAddr)>,
    /// A stereo block (left ours, right theirs) was written for the recorder.
    pub recorded: bool,
    /// The block's frame number on the recording's media clock, from 0.
    pub record_frame: u32,
}

/// The part of the media clock a recording covers: frame `n` is the tick
/// whose deadline lies in `[from + n·20 ms, from + (n+1)·20 ms)`.
#[derive(Debug, Clone, Copy)]
struct RecordWindow {
    /// `None`: from the next tick's deadline.
    from: Option<Instant>,
    /// Ticks at or after this are not recorded.
    until: Option<Instant>,
}

/// The tick being run: its audio timestamp, where packets go, how late it is.
#[derive(Debug, Clone, Copy)]
struct Tick {
    timestamp: u32,
    dest: SocketAddr,
    behind: Duration,
}

#[derive(Debug)]
struct RxSeq {
    ssrc: u32,
    expected: u16,
    last_arrival: f64,
    last_ts: u32,
}

/// One call's media state.
#[derive(Debug)]
pub struct SessionCore {
    config: SessionConfig,
    epoch: Instant,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    remote: Option<RemoteMedia>,
    destination: Option<SocketAddr>,
    latched: bool,
    sending: bool,
    on_hold: bool,
    next_tick: Option<Instant>,
    marker_pending: bool,
    last_was_prompt: bool,
    queue: VecDeque<Arc<Prompt>>,
    play_pos: usize,
    stats: MediaStats,
    jitter: f64,
    rx: Option<RxSeq>,
    first_packet_seen: bool,
    last_rx: Instant,
    inactivity_fired: bool,
    dtmf: DtmfReceiver,
    dtmf_tx: DtmfSender,
    events: VecDeque<MediaEvent>,
    record: Option<RecordWindow>,
    ring: Box<[i16; RX_RING]>,
    ring_start: usize,
    ring_len: usize,
    /// The ring holds enough to play out (a 40 ms jitter allowance).
    ring_primed: bool,
    /// Answering-machine and beep detection, while enabled.
    detector: Option<Box<AmdDetector>>,
    /// Received audio has reached the ring since detection started. Until
    /// then the detector is not fed: the zeros we would hand it are "no
    /// packet yet", not the line's background, and a noise floor taken from
    /// them makes the line's hiss, when it arrives, look like speech.
    detector_heard: bool,
    /// In-band DTMF detection, while enabled and no RFC 4733 event has come.
    inband: Option<Box<InbandDtmf>>,
    /// The peer has sent an RFC 4733 event: in-band detection stays off.
    rfc4733_seen: bool,
    /// Bridged to another session: its audio is sent instead of prompts.
    bridge: Option<BridgeEnd>,
}

impl SessionCore {
    /// A session with random SSRC, sequence and timestamp origin.
    pub fn new(config: SessionConfig, now: Instant) -> SessionCore {
        Self::with_origin(config, now, rand::random(), rand::random(), rand::random())
    }

    /// A session with a chosen SSRC, first sequence number and timestamp (tests).
    pub fn with_origin(
        config: SessionConfig,
        now: Instant,
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
    ) -> SessionCore {
        SessionCore {
            config,
            epoch: now,
            ssrc,
            sequence,
            timestamp,
            remote: None,
            destination: None,
            latched: false,
            sending: false,
            on_hold: false,
            next_tick: None,
            marker_pending: true,
            last_was_prompt: false,
            queue: VecDeque::with_capacity(4),
            play_pos: 0,
            stats: MediaStats::default(),
            jitter: 0.0,
            rx: None,
            first_packet_seen: false,
            last_rx: now,
            inactivity_fired: false,
            dtmf: DtmfReceiver::default(),
            dtmf_tx: DtmfSender::default(),
            events: VecDeque::with_capacity(8),
            record: None,
            ring: Box::new([0; RX_RING]),
            ring_start: 0,
            ring_len: 0,
            ring_primed: false,
            detector_heard: false,
            inband: None,
            rfc4733_seen: false,
            bridge: None,
            detector: None,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Set or change the peer (early media, answer, re-INVITE). Starts the
    /// 20 ms clock and the inactivity timer on first use; re-arms latching.
    pub fn set_remote(&mut self, remote: RemoteMedia, now: Instant) {
        self.destination = Some(remote.addr);
        self.latched = false;
        self.remote = Some(remote);
        if self.next_tick.is_none() {
            self.next_tick = Some(now);
            self.last_rx = now;
        }
    }

    pub fn start_sending(&mut self) {
        if !self.sending {
            self.sending = true;
            self.marker_pending = true;
        }
    }

    pub fn play(&mut self, prompt: Arc<Prompt>) {
        self.queue.push_back(prompt);
    }

    /// Drop the queue without `PlaybackFinished`.
    pub fn stop_playback(&mut self) {
        self.queue.clear();
        self.play_pos = 0;
        self.events.push_back(MediaEvent::PlaybackStopped);
    }

    /// Queue the keys of `digits` (`0-9`, `*`, `#`, `A-D`), each held
    /// `duration` (rounded up to whole 20 ms frames), after the keys already
    /// queued, with 60 ms of audio between keys. Sent as RFC 4733 events on
    /// the remote's telephone-event payload type, or, when none was
    /// negotiated, as in-band DTMF tones in place of the audio frames; keys
    /// go out only while sending (like audio). Characters that are not keys
    /// are skipped, as are keys beyond [`MAX_QUEUED_DIGITS`] waiting.
    /// Returns how many keys were queued.
    ///
    /// [`MAX_QUEUED_DIGITS`]: crate::dtmf::MAX_QUEUED_DIGITS
    pub fn send_dtmf(&mut self, digits: &str, duration: Duration) -> usize {
        self.dtmf_tx.queue(digits, duration)
    }

    /// Whether keys from [`send_dtmf`](Self::send_dtmf) are still being sent.
    pub fn is_sending_dtmf(&self) -> bool {
        self.dtmf_tx.is_active()
    }

    /// On hold we send nothing (the prompt position is kept) and the
    /// inactivity timer is paused, since a held peer may send nothing.
    pub fn set_hold(&mut self, on_hold: bool, now: Instant) {
        if self.on_hold && !on_hold {
            self.marker_pending = true;
            self.last_rx = now;
        }
        self.on_hold = on_hold;
    }

    /// Record from the next tick on (`true`), or not at all.
    pub fn set_recording(&mut self, on: bool) {
        if on {
            self.start_recording(None);
        } else {
            self.record = None;
        }
    }

    /// Record the ticks from `from` on (from the next tick when `None`);
    /// ticks between `from` and now that were not recorded are silence to
    /// the recorder, so the recording starts at `from` on the media clock.
    pub fn start_recording(&mut self, from: Option<Instant>) {
        self.record = Some(RecordWindow { from, until: None });
        if self.detector.is_none() {
            self.ring_len = 0;
            self.ring_primed = false;
        }
    }

    /// Feed every received 20 ms frame, from the next tick on, to `detector`
    /// (replacing a running one): [`MediaEvent::Amd`] once, and
    /// [`MediaEvent::Beep`] for each beep. Detection ends at a `human`,
    /// `silence` or `fax` decision; after a `machine` or `unknown` one it
    /// goes on listening for beeps until `beep.listen_ms` from the start (if
    /// not 0), or until [`stop_detection`]. The box is the only allocation;
    /// it is freed when detection ends.
    ///
    /// [`stop_detection`]: SessionCore::stop_detection
    pub fn start_detection(&mut self, detector: Box<AmdDetector>) {
        if self.record.is_none() && self.detector.is_none() {
            self.ring_len = 0;
            self.ring_primed = false;
        }
        self.detector = Some(detector);
        self.detector_heard = false;
    }

    pub fn stop_detection(&mut self) {
        self.detector = None;
    }

    pub fn is_detecting(&self) -> bool {
        self.detector.is_some()
    }

    /// Listen for DTMF tones in the received audio (the fallback for peers
    /// without RFC 4733), or stop. Ignored once the peer has sent an RFC 4733
    /// event: its keys come that way.
    pub fn set_inband_dtmf(&mut self, on: bool) {
        if on && !self.rfc4733_seen {
            if self.inband.is_none() {
                self.inband = Some(Box::default());
            }
        } else {
            self.inband = None;
        }
    }

    /// Whether in-band DTMF detection runs.
    pub fn is_detecting_inband_dtmf(&self) -> bool {
        self.inband.is_some()
    }

    /// Relay audio with another session through `end` (see
    /// [`crate::bridge`]): from now on the peer's audio is sent instead of
    /// prompts, and what we receive goes to the peer. `None` ends the bridge.
    pub fn set_bridge(&mut self, end: Option<BridgeEnd>) {
        self.bridge = end;
    }

    pub fn is_recording(&self) -> bool {
        self.record.is_some()
    }

    /// End the recording at `until`: later ticks are not recorded, and the
    /// recording spans `from..until` rounded to whole frames.
    pub fn stop_recording(&mut self, until: Instant) {
        if let Some(w) = self.record.as_mut() {
            w.until = Some(until);
        }
    }

    /// The frames the recording spans on the media clock: `from..until`
    /// rounded to whole frames once stopped, else every frame from `from`
    /// up to the next tick (skipped frames of a stall included).
    pub fn record_frames(&self) -> u64 {
        let Some(w) = self.record else { return 0 };
        let Some(from) = w.from else { return 0 };
        let ptime = PTIME.as_nanos();
        match (w.until, self.next_tick) {
            (Some(until), _) => {
                let span = until.saturating_duration_since(from).as_nanos();
                ((span + ptime / 2) / ptime) as u64
            }
            (None, Some(next)) => (next.saturating_duration_since(from).as_nanos() / ptime) as u64,
            (None, None) => 0,
        }
    }

    /// The frame number of the tick at `deadline`, if the recording covers it.
    fn record_frame(&mut self, deadline: Instant) -> Option<u32> {
        let w = self.record.as_mut()?;
        let from = *w.from.get_or_insert(deadline);
        if deadline < from || w.until.is_some_and(|until| deadline >= until) {
            return None;
        }
        let n = deadline.duration_since(from).as_nanos() / PTIME.as_nanos();
        u32::try_from(n).ok()
    }

    /// The deadline of the next frame, once the clock runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_tick
    }

    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    pub fn stats_mut(&mut self) -> &mut MediaStats {
        &mut self.stats
    }

    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Process one received datagram.
    pub fn handle_datagram(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        let pkt = match parse_rtp(data) {
            Ok(p) => p,
            Err(_) => {
                self.stats.rtp_malformed += 1;
                return;
            }
        };
        let remote = self.remote.as_ref();
        let dtmf_pt = remote.and_then(|r| r.dtmf_payload_type);
        let audio_codec = match remote {
            Some(r) if r.payload_type == pkt.payload_type => Some(r.codec),
            _ => Codec::from_payload_type(pkt.payload_type),
        };
        let is_dtmf = dtmf_pt == Some(pkt.payload_type);
        if audio_codec.is_none() && !is_dtmf {
            // Comfort noise or a payload type we did not negotiate: counted, not used.
            self.stats.rtp_received += 1;
            self.last_rx = now;
            return;
        }
        self.stats.rtp_received += 1;
        self.last_rx = now;
        if !self.first_packet_seen {
            self.first_packet_seen = true;
            self.events.push_back(MediaEvent::FirstPacket);
        }
        if self.remote.is_some() && !self.latched {
            self.latched = true;
            self.destination = Some(from);
        }
        self.track_sequence(pkt.ssrc, pkt.sequence);
        if is_dtmf {
            self.rfc4733_seen = true;
            self.inband = None;
            if let Ok(ev) = parse_telephone_event(pkt.payload) {
                for d in self
                    .dtmf
                    .handle(pkt.timestamp, ev, SAMPLE_RATE)
                    .into_iter()
                    .flatten()
                {
                    self.stats.dtmf.push(d.digit);
                    self.events.push_back(MediaEvent::Dtmf {
                        digit: d.digit,
                        duration_ms: d.duration_ms,
                    });
                }
            }
            return;
        }
        self.update_jitter(pkt.timestamp, now);
        let wanted = self.record.is_some() || self.detector.is_some() || self.inband.is_some();
        if let (true, Some(codec)) = (wanted, audio_codec) {
            for b in pkt.payload.iter().take(RX_RING) {
                self.ring_push(codec.decode_sample(*b));
            }
        }
        if let (Some(bridge), Some(codec)) = (&self.bridge, audio_codec) {
            for chunk in pkt
                .payload
                .chunks(FRAME_SAMPLES)
                .take(RX_RING / FRAME_SAMPLES)
            {
                let mut frame: PcmFrame = [0; FRAME_SAMPLES];
                for (s, b) in frame.iter_mut().zip(chunk) {
                    *s = codec.decode_sample(*b);
                }
                bridge.send(frame);
            }
        }
    }

    fn track_sequence(&mut self, ssrc: u32, seq: u16) {
        match &mut self.rx {
            Some(rx) if rx.ssrc == ssrc => {
                let gap = seq.wrapping_sub(rx.expected);
                if gap == 0 {
                    rx.expected = seq.wrapping_add(1);
                } else if gap < MAX_SEQ_JUMP {
                    self.stats.rtp_lost += u64::from(gap);
                    rx.expected = seq.wrapping_add(1);
                } else if gap > u16::MAX - MAX_SEQ_JUMP {
                    // Late (reordered) packet: it fills a gap counted earlier.
                    self.stats.rtp_lost = self.stats.rtp_lost.saturating_sub(1);
                } else {
                    rx.expected = seq.wrapping_add(1); // the sender restarted
                }
            }
            _ => {
                self.rx = Some(RxSeq {
                    ssrc,
                    expected: seq.wrapping_add(1),
                    last_arrival: f64::NAN,
                    last_ts: 0,
                });
            }
        }
    }

    fn update_jitter(&mut self, ts: u32, now: Instant) {
        let Some(rx) = self.rx.as_mut() else { return };
        let arrival =
            now.saturating_duration_since(self.epoch).as_secs_f64() * f64::from(SAMPLE_RATE);
        if !rx.last_arrival.is_nan() {
            let d = (arrival - rx.last_arrival) - f64::from(ts.wrapping_sub(rx.last_ts) as i32);
            self.jitter += (d.abs() - self.jitter) / 16.0;
            self.stats.jitter_ms = self.jitter * 1000.0 / f64::from(SAMPLE_RATE);
        }
        rx.last_arrival = arrival;
        rx.last_ts = ts;
    }

    fn ring_push(&mut self, s: i16) {
        let mut idx = self.ring_start + self.ring_len;
        if idx >= RX_RING {
            idx -= RX_RING;
        }
        self.ring[idx] = s;
        if self.ring_len == RX_RING {
            self.ring_start += 1;
            if self.ring_start == RX_RING {
                self.ring_start = 0;
            }
        } else {
            self.ring_len += 1;
        }
    }

    /// Fill `out` from the ring, oldest first; silence for what is missing.
    fn ring_pop_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) {
        let n = self.ring_len.min(FRAME_SAMPLES);
        let first = n.min(RX_RING - self.ring_start);
        out[..first].copy_from_slice(&self.ring[self.ring_start..self.ring_start + first]);
        out[first..n].copy_from_slice(&self.ring[..n - first]);
        out[n..].fill(0);
        self.ring_start += n;
        if self.ring_start >= RX_RING {
            self.ring_start -= RX_RING;
        }
        self.ring_len -= n;
    }

    /// Fire the inactivity timeout if due. Call at least every few hundred ms.
    pub fn check_timeout(&mut self, now: Instant) {
        if self.inactivity_fired || self.on_hold || self.next_tick.is_none() {
            return;
        }
        if now.saturating_duration_since(self.last_rx) >= self.config.inactivity_timeout {
            self.inactivity_fired = true;
            self.events.push_back(MediaEvent::InactivityTimeout);
        }
    }

    /// Run the frame whose deadline is `next_deadline()`. `now` should be at
    /// or after it; call again while the deadline is still in the past.
    /// Writes the packet into `packet` and, when recording, a stereo block
    /// (interleaved left/right) into `record`.
    pub fn on_tick(
        &mut self,
        now: Instant,
        packet: &mut [u8; MAX_PACKET],
        record: &mut [i16; 2 * FRAME_SAMPLES],
    ) -> TickOutput {
        let mut out = TickOutput::default();
        let Some(deadline) = self.next_tick else {
            return out;
        };
        let behind = now.saturating_duration_since(deadline);
        if behind > MAX_CATCH_UP {
            // Stalled: jump the clock to now, keep the timestamp on wall time.
            let frames = (behind.as_nanos() / PTIME.as_nanos()) as u32;
            self.timestamp = self
                .timestamp
                .wrapping_add(frames.wrapping_mul(FRAME_SAMPLES as u32));
            self.next_tick = Some(deadline + PTIME * frames);
            self.marker_pending = true;
            if self.sending && !self.on_hold {
                self.stats.rtp_late += u64::from(frames);
                self.dtmf_tx.skip(frames);
            }
            return out;
        }
        self.next_tick = Some(deadline + PTIME);
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);

        let mut sent_codec = None;
        if let (true, false, Some(dest), Some(remote)) = (
            self.sending,
            self.on_hold,
            self.destination,
            self.remote.as_ref(),
        ) {
            let (codec, payload_type) = (remote.codec, remote.payload_type);
            let keys = self.dtmf_tx.next_frame(timestamp, remote.dtmf_payload_type);
            let tick = Tick {
                timestamp,
                dest,
                behind,
            };
            match keys {
                DtmfFrame::Idle => {
                    sent_codec = self.send_audio(tick, codec, payload_type, packet, &mut out)
                }
                // Between keys the prompt waits: silence (or nothing) goes out.
                DtmfFrame::Pause => {
                    sent_codec = self.send_silence(tick, codec, payload_type, packet, &mut out)
                }
                DtmfFrame::Event {
                    payload_type,
                    timestamp,
                    marker,
                    payload,
                } => {
                    let header = RtpHeader {
                        marker,
                        payload_type,
                        sequence: self.sequence,
                        timestamp,
                        ssrc: self.ssrc,
                    };
                    self.emit(header, &payload, tick, packet, &mut out);
                    self.last_was_prompt = false;
                }
                DtmfFrame::Tone {
                    event,
                    first_sample,
                    length,
                } => {
                    let mut pcm = [0i16; FRAME_SAMPLES];
                    tone_samples(event, first_sample, length, &mut pcm);
                    let mut frame = [0u8; FRAME_SAMPLES];
                    codec.encode(&pcm, &mut frame);
                    // A tone after silence starts a talk spurt, like a prompt.
                    let header = RtpHeader {
                        marker: self.marker_pending || !self.last_was_prompt,
                        payload_type,
                        sequence: self.sequence,
                        timestamp,
                        ssrc: self.ssrc,
                    };
                    if self.emit(header, &frame, tick, packet, &mut out) {
                        sent_codec = Some(codec);
                    }
                    self.last_was_prompt = true;
                }
            }
        }

        if self.record.is_some() || self.detector.is_some() || self.inband.is_some() {
            let mut theirs = [0i16; FRAME_SAMPLES];
            if self.ring_len >= RX_PRIME {
                self.ring_primed = true;
            }
            if self.ring_primed {
                self.ring_pop_frame(&mut theirs);
            }
            if self.ring_len == 0 {
                self.ring_primed = false;
            }
            if let Some(frame) = self.record_frame(deadline) {
                out.record_frame = frame;
                let ours = &packet[RTP_HEADER_LEN..MAX_PACKET];
                for (i, t) in theirs.iter().enumerate() {
                    record[2 * i] = sent_codec.map_or(0, |c| c.decode_sample(ours[i]));
                    record[2 * i + 1] = *t;
                }
                out.recorded = true;
            }
            self.detector_heard |= self.ring_primed;
            if self.detector_heard {
                self.detect(&theirs);
            }
            if let Some(key) = self.inband.as_mut().and_then(|d| d.process(&theirs)) {
                self.stats.dtmf.push(key);
                self.events.push_back(MediaEvent::Dtmf {
                    digit: key,
                    duration_ms: 0,
                });
            }
        }
        out
    }

    /// Writes one packet for this tick and accounts for it. Returns whether
    /// it fit the buffer (it always does: payloads are at most one frame).
    fn emit(
        &mut self,
        header: RtpHeader,
        payload: &[u8],
        tick: Tick,
        packet: &mut [u8; MAX_PACKET],
        out: &mut TickOutput,
    ) -> bool {
        let written = header.write(payload, packet);
        self.account(written, tick, out)
    }

    /// Counts a packet of `written` bytes (if any) as this tick's.
    fn account(&mut self, written: Option<usize>, tick: Tick, out: &mut TickOutput) -> bool {
        let Some(len) = written else {
            return false;
        };
        out.transmit = Some((len, tick.dest));
        self.sequence = self.sequence.wrapping_add(1);
        self.stats.rtp_sent += 1;
        if tick.behind > LATE_THRESHOLD {
            self.stats.rtp_late += 1;
        }
        self.marker_pending = false;
        true
    }

    /// The audio of a tick without keys: the next prompt frame, else silence
    /// (or nothing, without `send_silence`). Returns the codec of what went out.
    fn send_audio(
        &mut self,
        tick: Tick,
        codec: Codec,
        payload_type: u8,
        packet: &mut [u8; MAX_PACKET],
        out: &mut TickOutput,
    ) -> Option<Codec> {
        if let Some(bridge) = &self.bridge {
            // Bridged: the peer's audio, else silence; prompts wait.
            let Some(pcm) = bridge.receive() else {
                return self.send_silence(tick, codec, payload_type, packet, out);
            };
            self.stats.bridged_frames += 1;
            let mut frame = [0u8; FRAME_SAMPLES];
            codec.encode(&pcm, &mut frame);
            let header = RtpHeader {
                marker: self.marker_pending || !self.last_was_prompt,
                payload_type,
                sequence: self.sequence,
                timestamp: tick.timestamp,
                ssrc: self.ssrc,
            };
            self.last_was_prompt = true;
            return self
                .emit(header, &frame, tick, packet, out)
                .then_some(codec);
        }
        // Skip prompts with no frames.
        while self
            .queue
            .front()
            .is_some_and(|p| p.frames(codec).is_empty())
        {
            self.queue.pop_front();
            self.events.push_back(MediaEvent::PlaybackFinished);
        }
        let Some(prompt) = self.queue.front() else {
            return self.send_silence(tick, codec, payload_type, packet, out);
        };
        let frames = prompt.frames(codec);
        let header = RtpHeader {
            // The first prompt frame after silence starts a talk spurt.
            marker: self.marker_pending || !self.last_was_prompt,
            payload_type,
            sequence: self.sequence,
            timestamp: tick.timestamp,
            ssrc: self.ssrc,
        };
        let written = match frames.get(self.play_pos) {
            Some(frame) => header.write(frame, packet),
            None => header.write(&codec.silence_frame(), packet),
        };
        let done = self.play_pos + 1 >= frames.len();
        let sent = self.account(written, tick, out);
        self.last_was_prompt = true;
        self.play_pos += 1;
        if done {
            self.queue.pop_front();
            self.play_pos = 0;
            self.events.push_back(MediaEvent::PlaybackFinished);
        }
        sent.then_some(codec)
    }

    /// A tick with nothing to say: a silence frame with `send_silence`, else
    /// no packet (and the next one starts a talk spurt).
    fn send_silence(
        &mut self,
        tick: Tick,
        codec: Codec,
        payload_type: u8,
        packet: &mut [u8; MAX_PACKET],
        out: &mut TickOutput,
    ) -> Option<Codec> {
        self.last_was_prompt = false;
        if !self.config.send_silence {
            self.marker_pending = true;
            return None;
        }
        let header = RtpHeader {
            marker: self.marker_pending,
            payload_type,
            sequence: self.sequence,
            timestamp: tick.timestamp,
            ssrc: self.ssrc,
        };
        self.emit(header, &codec.silence_frame(), tick, packet, out)
            .then_some(codec)
    }

    /// Feed one received frame to the detector, if detecting.
    fn detect(&mut self, frame: &[i16; FRAME_SAMPLES]) {
        let Some(det) = self.detector.as_mut() else {
            return;
        };
        let out = det.process(frame);
        if let Some(d) = out.decision {
            self.events.push_back(MediaEvent::Amd(d));
        }
        if let Some(BeepEvent::Ended { start_ms, end_ms }) = out.beep {
            self.events.push_back(MediaEvent::Beep { start_ms, end_ms });
        }
        // Beeps matter only while a machine (or we are not sure) is talking.
        let done = !det.wants_audio();
        if done {
            self.detector = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: SessionConfig = SessionConfig {
        send_silence: true,
        inactivity_timeout: Duration::from_secs(2),
    };

    fn remote(port: u16, dtmf: Option<u8>) -> RemoteMedia {
        RemoteMedia {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            codec: Codec::Pcmu,
            payload_type: 0,
            dtmf_payload_type: dtmf,
            ssrc: None,
        }
    }

    struct Bufs {
        pkt: [u8; MAX_PACKET],
        rec: [i16; 2 * FRAME_SAMPLES],
    }

    fn bufs() -> Bufs {
        Bufs {
            pkt: [0; MAX_PACKET],
            rec: [0; 2 * FRAME_SAMPLES],
        }
    }

    /// Run ticks on a virtual clock, returning parsed (marker, seq, ts, pt, first byte).
    fn run(core: &mut SessionCore, t0: Instant, from: u32, to: u32) -> Vec<(bool, u16, u32, u8)> {
        let mut b = bufs();
        let mut v = Vec::new();
        for i in from..to {
            let now = t0 + PTIME * i;
            while core.next_deadline().is_some_and(|d| d <= now) {
                let out = core.on_tick(now, &mut b.pkt, &mut b.rec);
                if let Some((len, _)) = out.transmit {
                    let p = parse_rtp(&b.pkt[..len]).expect("own packet parses");
                    v.push((p.marker, p.sequence, p.timestamp, p.payload[0]));
                }
            }
        }
        v
    }

    #[test]
    fn ten_minute_call_does_not_drift_when_ticks_run_late() {
        // The scheduler wakes late by a varying amount (0-4 ms, now and then
        // 15 ms). Deadlines are absolute, so after 10 minutes the session has
        // sent exactly 30,000 frames and its next deadline is t0 + 30,000 x 20 ms.
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 7, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        let mut b = bufs();
        let frames: u32 = 10 * 60 * 50;
        let mut sent = 0u32;
        let mut last_ts = None;
        for i in 0..frames {
            let lateness_us = if i % 97 == 0 {
                15_000
            } else {
                u64::from(i * 7919 % 4000)
            };
            let now = t0 + PTIME * i + Duration::from_micros(lateness_us);
            while core.next_deadline().is_some_and(|d| d <= now) {
                let out = core.on_tick(now, &mut b.pkt, &mut b.rec);
                if let Some((len, _)) = out.transmit {
                    let p = parse_rtp(&b.pkt[..len]).expect("own packet parses");
                    if let Some(prev) = last_ts {
                        assert_eq!(p.timestamp, u32::wrapping_add(prev, 160), "frame {sent}");
                    }
                    last_ts = Some(p.timestamp);
                    sent += 1;
                }
            }
        }
        assert_eq!(sent, frames);
        assert_eq!(core.next_deadline(), Some(t0 + PTIME * frames));
        assert_eq!(last_ts, Some((frames - 1) * 160));
        assert_eq!(
            core.stats().rtp_late,
            u64::from(frames.div_ceil(97)),
            "only the 15 ms wake-ups are late"
        );
    }

    #[test]
    fn a_stop_is_confirmed_after_what_the_stopped_prompts_reported() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 42, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        core.play(Arc::new(Prompt::from_pcm(&[8000; 160])));
        core.play(Arc::new(Prompt::from_pcm(&[8000; 320])));
        run(&mut core, t0, 0, 1);
        core.stop_playback();
        // The first prompt ended before the stop; the second, cut short,
        // reports nothing.
        assert_eq!(core.poll_event(), Some(MediaEvent::PlaybackFinished));
        assert_eq!(core.poll_event(), Some(MediaEvent::PlaybackStopped));
        run(&mut core, t0, 1, 4);
        assert_eq!(core.poll_event(), None);
    }

    #[test]
    fn sequence_timestamp_marker_progression() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 42, 65534, u32::MAX - 160);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        let pkts = run(&mut core, t0, 0, 5);
        assert_eq!(pkts.len(), 5);
        assert_eq!(pkts[0], (true, 65534, u32::MAX - 160, 0xff));
        assert_eq!(pkts[1], (false, 65535, u32::MAX - 160 + 160, 0xff));
        assert_eq!(pkts[2].1, 0, "sequence wraps");
        assert_eq!(pkts[2].2, 159, "timestamp wraps");
        assert!(pkts[1..].iter().all(|p| !p.0));

        // A prompt starts: marker on its first frame only.
        core.play(Arc::new(Prompt::from_pcm(&[8000; 320])));
        let pkts = run(&mut core, t0, 5, 9);
        assert_eq!(
            pkts.iter().map(|p| p.0).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        assert_ne!(pkts[0].3, 0xff);
        assert_eq!(core.poll_event(), Some(MediaEvent::PlaybackFinished));

        // Hold: nothing sent, timestamp still runs; resume sets the marker.
        core.set_hold(true, t0 + PTIME * 9);
        assert!(run(&mut core, t0, 9, 19).is_empty());
        core.set_hold(false, t0 + PTIME * 19);
        let pkts = run(&mut core, t0, 19, 20);
        assert_eq!(pkts.len(), 1);
        assert!(pkts[0].0);
        assert_eq!(pkts[0].2, (u32::MAX - 160).wrapping_add(19 * 160));
    }

    #[test]
    fn silence_suppression_marks_next_talk_spurt() {
        let t0 = Instant::now();
        let cfg = SessionConfig {
            send_silence: false,
            ..CFG
        };
        let mut core = SessionCore::with_origin(cfg, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        assert!(run(&mut core, t0, 0, 3).is_empty());
        core.play(Arc::new(Prompt::from_pcm(&[500; 160])));
        let pkts = run(&mut core, t0, 3, 6);
        assert_eq!(
            pkts,
            vec![(true, 0, 3 * 160, Codec::Pcmu.encode_sample(500))]
        );
    }

    #[test]
    fn late_and_stall_accounting() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        let mut b = bufs();
        core.on_tick(t0 + Duration::from_millis(3), &mut b.pkt, &mut b.rec);
        core.on_tick(t0 + Duration::from_millis(27), &mut b.pkt, &mut b.rec);
        assert_eq!(core.stats().rtp_late, 1);
        // Stall of one second: frames skipped, timestamp keeps wall time,
        // the first packet after the gap carries the marker.
        let now = t0 + Duration::from_millis(1040);
        let mut sent = Vec::new();
        while core.next_deadline().is_some_and(|d| d <= now) {
            if let Some((len, _)) = core.on_tick(now, &mut b.pkt, &mut b.rec).transmit {
                let p = parse_rtp(&b.pkt[..len]).expect("parse");
                sent.push((p.marker, p.timestamp));
            }
        }
        assert_eq!(sent, vec![(true, 52 * 160)]);
        assert_eq!(core.stats().rtp_late, 1 + 50);
        assert_eq!(core.next_deadline(), Some(t0 + Duration::from_millis(1060)));
        let out = core.on_tick(t0 + Duration::from_millis(1060), &mut b.pkt, &mut b.rec);
        assert!(out.transmit.is_some());
        let p = parse_rtp(&b.pkt).expect("parse");
        assert_eq!(p.timestamp, 53 * 160);
        assert!(!p.marker);
    }

    fn rtp(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 12 + payload.len()];
        RtpHeader {
            marker,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: 77,
        }
        .write(payload, &mut buf)
        .expect("fits");
        buf
    }

    #[test]
    fn receive_latch_loss_malformed() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        let real = SocketAddr::from(([127, 0, 0, 1], 5555));
        core.handle_datagram(&[1, 2, 3], real, t0);
        core.handle_datagram(&[0x40; 40], real, t0);
        assert_eq!(core.stats().rtp_malformed, 2);
        assert_eq!(core.poll_event(), None, "malformed is not a first packet");
        for (i, seq) in [10u16, 11, 14, 13, 15].iter().enumerate() {
            let now = t0 + PTIME * i as u32;
            core.handle_datagram(
                &rtp(0, *seq, u32::from(*seq) * 160, false, &[0xff; 160]),
                real,
                now,
            );
        }
        assert_eq!(core.poll_event(), Some(MediaEvent::FirstPacket));
        assert_eq!(core.poll_event(), None);
        assert_eq!(core.stats().rtp_received, 5);
        assert_eq!(core.stats().rtp_lost, 1, "12 lost; 13 arrived late");
        let mut b = bufs();
        let out = core.on_tick(t0, &mut b.pkt, &mut b.rec);
        assert_eq!(out.transmit.map(|t| t.1), Some(real), "latched");
    }

    #[test]
    fn jitter_zero_for_perfect_stream_and_grows_with_delay_variation() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        for i in 0..50u32 {
            core.handle_datagram(
                &rtp(0, i as u16, i * 160, false, &[0xff; 160]),
                from,
                t0 + PTIME * i,
            );
        }
        assert!(core.stats().jitter_ms < 0.01, "{}", core.stats().jitter_ms);
        for i in 50..100u32 {
            let wobble = Duration::from_millis(if i % 2 == 0 { 10 } else { 0 });
            core.handle_datagram(
                &rtp(0, i as u16, i * 160, false, &[0xff; 160]),
                from,
                t0 + PTIME * i + wobble,
            );
        }
        let j = core.stats().jitter_ms;
        assert!((8.0..=10.5).contains(&j), "jitter {j}");
    }

    #[test]
    fn dtmf_on_negotiated_payload_type_96() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, Some(96)), t0);
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        let mut seq = 0;
        let mut send = |core: &mut SessionCore, pt: u8, ts: u32, ev: u8, end: bool, dur: u16| {
            let d = dur.to_be_bytes();
            let flags = if end { 0x80 | 10 } else { 10 };
            core.handle_datagram(&rtp(pt, seq, ts, false, &[ev, flags, d[0], d[1]]), from, t0);
            seq += 1;
        };
        for (end, dur) in [
            (false, 160),
            (false, 320),
            (true, 960),
            (true, 960),
            (true, 960),
        ] {
            send(&mut core, 96, 8000, 7, end, dur);
        }
        // Same event on 101 is not DTMF for this session (and is ignored).
        send(&mut core, 101, 16000, 3, true, 800);
        assert_eq!(core.poll_event(), Some(MediaEvent::FirstPacket));
        assert_eq!(
            core.poll_event(),
            Some(MediaEvent::Dtmf {
                digit: '7',
                duration_ms: 120
            })
        );
        assert_eq!(core.poll_event(), None);
        assert_eq!(core.stats().dtmf, "7");
    }

    #[test]
    fn inactivity_fires_once_and_not_on_hold() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.check_timeout(t0 + Duration::from_secs(10));
        assert_eq!(
            core.poll_event(),
            None,
            "clock not running before set_remote"
        );
        core.set_remote(remote(4000, None), t0);
        core.set_hold(true, t0);
        core.check_timeout(t0 + Duration::from_secs(3));
        assert_eq!(core.poll_event(), None);
        core.set_hold(false, t0 + Duration::from_secs(3));
        core.check_timeout(t0 + Duration::from_millis(4900));
        assert_eq!(core.poll_event(), None);
        core.check_timeout(t0 + Duration::from_secs(5));
        assert_eq!(core.poll_event(), Some(MediaEvent::InactivityTimeout));
        core.check_timeout(t0 + Duration::from_secs(9));
        assert_eq!(core.poll_event(), None);
    }

    /// 20 ms PCMU payloads of `pcm` (padded with silence).
    fn pcmu_frames(pcm: &[i16]) -> Vec<[u8; FRAME_SAMPLES]> {
        pcm.chunks(FRAME_SAMPLES)
            .map(|c| {
                let mut f = [Codec::Pcmu.encode_sample(0); FRAME_SAMPLES];
                for (o, s) in f.iter_mut().zip(c) {
                    *o = Codec::Pcmu.encode_sample(*s);
                }
                f
            })
            .collect()
    }

    #[test]
    fn detection_reports_amd_and_beep_on_our_clock() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        let mut config = crate::AmdConfig::default();
        config.beep.listen_ms = 3000;
        core.start_detection(Box::new(AmdDetector::new(config)));
        assert!(core.is_detecting());
        // 400 ms of nothing, a 500 ms 1 kHz beep, then silence.
        let mut pcm = vec![0i16; 8 * 400];
        pcm.extend((0..8 * 500).map(|i| {
            ((i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 8000.0).sin() * 6000.0) as i16
        }));
        pcm.extend(vec![0i16; 8 * 3000]);
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        let mut b = bufs();
        let mut events = Vec::new();
        for (i, f) in pcmu_frames(&pcm).iter().enumerate() {
            let now = t0 + PTIME * i as u32;
            let seq = i as u16;
            core.handle_datagram(&rtp(0, seq, u32::from(seq) * 160, false, f), from, now);
            let out = core.on_tick(now, &mut b.pkt, &mut b.rec);
            assert!(!out.recorded, "not recording");
            events.extend(std::iter::from_fn(|| core.poll_event()));
        }
        // Times count from the first received audio, so the beep that starts
        // 400 ms into the packets is at 400 ms.
        let beep = events.iter().find_map(|e| match e {
            MediaEvent::Beep { start_ms, end_ms } => Some((*start_ms, *end_ms)),
            _ => None,
        });
        let (start, end) = beep.expect("beep reported");
        assert!(
            start.abs_diff(400) <= 10 && end.abs_diff(900) <= 10,
            "{events:?}"
        );
        let amd = events.iter().find_map(|e| match e {
            MediaEvent::Amd(d) => Some(*d),
            _ => None,
        });
        let amd = amd.expect("decided");
        assert_eq!(
            (amd.verdict, amd.reason),
            (crate::AmdVerdict::Machine, "beep")
        );
        assert!(!core.is_detecting(), "stopped after listen_ms");
    }

    #[test]
    fn inband_dtmf_is_heard_until_the_peer_sends_rfc_4733() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, Some(101)), t0);
        core.start_sending();
        core.set_inband_dtmf(true);
        assert!(core.is_detecting_inband_dtmf());
        // 100 ms of the key 5 (770 + 1336 Hz), then 200 ms of silence.
        let mut pcm: Vec<i16> = (0..8 * 100)
            .map(|i| {
                let t = i as f64 / 8000.0;
                let w = 2.0 * std::f64::consts::PI;
                ((w * 770.0 * t).sin() * 5000.0 + (w * 1336.0 * t).sin() * 5000.0) as i16
            })
            .collect();
        pcm.extend(vec![0i16; 8 * 200]);
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        let mut b = bufs();
        let mut keys = Vec::new();
        for (i, f) in pcmu_frames(&pcm).iter().enumerate() {
            let now = t0 + PTIME * i as u32;
            let seq = i as u16;
            core.handle_datagram(&rtp(0, seq, u32::from(seq) * 160, false, f), from, now);
            core.on_tick(now, &mut b.pkt, &mut b.rec);
            keys.extend(
                std::iter::from_fn(|| core.poll_event()).filter_map(|e| match e {
                    MediaEvent::Dtmf { digit, .. } => Some(digit),
                    _ => None,
                }),
            );
        }
        assert_eq!(keys, ['5']);
        assert_eq!(core.stats().dtmf, "5");
        // An RFC 4733 event turns the in-band detector off for good.
        core.handle_datagram(&rtp(101, 100, 16000, true, &[1, 10, 0, 160]), from, t0);
        assert!(!core.is_detecting_inband_dtmf());
        core.set_inband_dtmf(true);
        assert!(!core.is_detecting_inband_dtmf());
    }

    #[test]
    fn a_bridge_relays_audio_both_ways_across_codecs() {
        let t0 = Instant::now();
        let mut a = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        let mut b = SessionCore::with_origin(CFG, t0, 2, 0, 0);
        a.set_remote(remote(4000, None), t0);
        let mut pcma = remote(4002, None);
        pcma.codec = Codec::Pcma;
        pcma.payload_type = 8;
        b.set_remote(pcma, t0);
        a.start_sending();
        b.start_sending();
        let (end_a, end_b) = BridgeEnd::pair();
        a.set_bridge(Some(end_a));
        b.set_bridge(Some(end_b));
        let from_a = SocketAddr::from(([127, 0, 0, 1], 4000));
        let from_b = SocketAddr::from(([127, 0, 0, 1], 4002));
        a.handle_datagram(
            &rtp(0, 1, 0, false, &[Codec::Pcmu.encode_sample(3000); 160]),
            from_a,
            t0,
        );
        b.handle_datagram(
            &rtp(8, 1, 0, false, &[Codec::Pcma.encode_sample(-1000); 160]),
            from_b,
            t0,
        );
        let mut bufs_a = bufs();
        let mut bufs_b = bufs();
        let out_b = b.on_tick(t0, &mut bufs_b.pkt, &mut bufs_b.rec);
        let (len, _) = out_b.transmit.expect("b sends");
        let pkt = parse_rtp(&bufs_b.pkt[..len]).expect("parses");
        assert_eq!(pkt.payload_type, 8);
        assert!((Codec::Pcma.decode_sample(pkt.payload[0]) - 3000).abs() < 100);
        let out_a = a.on_tick(t0, &mut bufs_a.pkt, &mut bufs_a.rec);
        let (len, _) = out_a.transmit.expect("a sends");
        let pkt = parse_rtp(&bufs_a.pkt[..len]).expect("parses");
        assert!((Codec::Pcmu.decode_sample(pkt.payload[0]) + 1000).abs() < 60);
        // Nothing waiting: silence, and prompts stay queued while bridged.
        let out_a = a.on_tick(t0 + PTIME, &mut bufs_a.pkt, &mut bufs_a.rec);
        let (len, _) = out_a.transmit.expect("silence");
        let pkt = parse_rtp(&bufs_a.pkt[..len]).expect("parses");
        assert_eq!(pkt.payload[0], Codec::Pcmu.silence_frame()[0]);
    }

    #[test]
    fn detection_and_recording_share_the_received_frames() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.set_recording(true);
        core.start_detection(Box::new(AmdDetector::new(crate::AmdConfig::default())));
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        let theirs = Codec::Pcmu.encode_sample(-2000);
        core.handle_datagram(&rtp(0, 1, 0, false, &[theirs; 160]), from, t0);
        core.handle_datagram(&rtp(0, 2, 160, false, &[theirs; 160]), from, t0);
        let mut b = bufs();
        assert!(core.on_tick(t0, &mut b.pkt, &mut b.rec).recorded);
        assert!(
            (b.rec[1] + 2000).abs() < 80,
            "recorder still gets their audio"
        );
        core.stop_detection();
        assert!(!core.is_detecting());
        assert!(core.on_tick(t0 + PTIME, &mut b.pkt, &mut b.rec).recorded);
        assert!((b.rec[1] + 2000).abs() < 80, "second frame");
    }

    #[test]
    fn ring_keeps_the_newest_120_ms_in_order_across_the_wrap() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        // 7 frames into a 6-frame ring: the first is overwritten.
        for i in 0..7 * FRAME_SAMPLES {
            core.ring_push(i as i16);
        }
        let mut out = [0i16; FRAME_SAMPLES];
        core.ring_pop_frame(&mut out);
        assert_eq!((out[0], out[159]), (160, 319));
        for i in 7 * FRAME_SAMPLES..7 * FRAME_SAMPLES + 100 {
            core.ring_push(i as i16);
        }
        for k in 2..7 {
            core.ring_pop_frame(&mut out);
            let first = (k * FRAME_SAMPLES) as i16;
            assert_eq!((out[0], out[159]), (first, first + 159), "frame {k}");
        }
        core.ring_pop_frame(&mut out);
        assert_eq!((out[0], out[99], out[100], out[159]), (1120, 1219, 0, 0));
        assert_eq!(core.ring_len, 0);
    }

    #[test]
    fn recording_blocks_pair_ours_and_theirs() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        core.set_recording(true);
        core.play(Arc::new(Prompt::from_pcm(&[1000; 160])));
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        let theirs = Codec::Pcmu.encode_sample(-2000);
        core.handle_datagram(&rtp(0, 1, 0, false, &[theirs; 160]), from, t0);
        core.handle_datagram(&rtp(0, 2, 160, false, &[theirs; 160]), from, t0);
        let mut b = bufs();
        let out = core.on_tick(t0, &mut b.pkt, &mut b.rec);
        assert!(out.recorded);
        let l = b.rec[0];
        let r = b.rec[1];
        assert!((l - 1000).abs() < 40, "{l}");
        assert!((r + 2000).abs() < 80, "{r}");
        let out = core.on_tick(t0 + PTIME, &mut b.pkt, &mut b.rec);
        assert!(out.recorded);
        assert_eq!(b.rec[0], 0, "silence sent");
        assert!((b.rec[1] + 2000).abs() < 80, "second buffered frame");
        core.on_tick(t0 + PTIME * 2, &mut b.pkt, &mut b.rec);
        assert_eq!(b.rec[1], 0, "nothing left");
    }

    #[test]
    fn recording_frames_follow_the_media_clock_through_a_stall() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, None), t0);
        core.start_sending();
        // Asked 30 ms before the first recorded tick (command latency):
        // frame 0 is the tick at t0 - 30 ms + [0, 20 ms) -> none was run,
        // so the first block is frame 1 and frame 0 becomes silence.
        core.start_recording(Some(t0 - Duration::from_millis(30)));
        let mut b = bufs();
        let mut frames = Vec::new();
        let mut now = t0;
        for _ in 0..3 {
            let out = core.on_tick(now, &mut b.pkt, &mut b.rec);
            assert!(out.recorded);
            frames.push(out.record_frame);
            now += PTIME;
        }
        assert_eq!(frames, vec![1, 2, 3]);
        // The thread stalls for 500 ms: the skipped frames leave a gap in
        // the frame numbers, which the recorder fills with silence.
        let stalled = now + Duration::from_millis(500);
        assert!(!core.on_tick(stalled, &mut b.pkt, &mut b.rec).recorded);
        let next = core.next_deadline().expect("clock runs");
        let out = core.on_tick(next, &mut b.pkt, &mut b.rec);
        assert_eq!(out.record_frame, 4 + 25);
        // Running: the recording spans every frame up to the next tick.
        assert_eq!(core.record_frames(), 30);
        // Stopped at a time: exactly from..until, rounded to whole frames,
        // and no tick at or after `until` is recorded.
        let until = t0 - Duration::from_millis(30) + Duration::from_millis(611);
        core.stop_recording(until);
        assert_eq!(core.record_frames(), 31);
        let mut after = core.next_deadline().expect("clock");
        while after < until {
            assert!(core.on_tick(after, &mut b.pkt, &mut b.rec).recorded);
            after = core.next_deadline().expect("clock");
        }
        assert!(!core.on_tick(after, &mut b.pkt, &mut b.rec).recorded);
    }

    /// One packet as the tests look at it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Sent {
        tick: u32,
        marker: bool,
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: Vec<u8>,
    }

    /// Ticks `from..to` on a virtual clock, keeping every packet whole.
    fn run_full(core: &mut SessionCore, t0: Instant, from: u32, to: u32) -> Vec<Sent> {
        let mut b = bufs();
        let mut v = Vec::new();
        for tick in from..to {
            let now = t0 + PTIME * tick;
            while core.next_deadline().is_some_and(|d| d <= now) {
                if let Some((len, _)) = core.on_tick(now, &mut b.pkt, &mut b.rec).transmit {
                    let p = parse_rtp(&b.pkt[..len]).expect("own packet parses");
                    v.push(Sent {
                        tick,
                        marker: p.marker,
                        payload_type: p.payload_type,
                        sequence: p.sequence,
                        timestamp: p.timestamp,
                        ssrc: p.ssrc,
                        payload: p.payload.to_vec(),
                    });
                }
            }
        }
        v
    }

    #[test]
    fn dtmf_events_replace_audio_packets_per_rfc_4733() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 42, 65530, 0);
        core.set_remote(remote(4000, Some(101)), t0);
        core.start_sending();
        // A prompt of 10 frames plays; 2 ticks in, two keys of 60 ms.
        core.play(Arc::new(Prompt::from_pcm(&[4000; 1600])));
        let mut sent = run_full(&mut core, t0, 0, 2);
        assert_eq!(core.send_dtmf("1x#", Duration::from_millis(50)), 2);
        assert!(core.is_sending_dtmf());
        sent.extend(run_full(&mut core, t0, 2, 40));
        assert!(!core.is_sending_dtmf());
        // One packet a tick, one SSRC, sequence numbers without a gap.
        assert_eq!(sent.len(), 40);
        for (i, p) in sent.iter().enumerate() {
            assert_eq!(p.tick as usize, i);
            assert_eq!(p.ssrc, 42);
            assert_eq!(p.sequence, 65530u16.wrapping_add(i as u16));
        }
        let kinds: String = sent
            .iter()
            .map(|p| match p.payload_type {
                101 => 'E',
                0 if p.payload[0] == Codec::Pcmu.silence_byte() => '.',
                0 => 'p',
                _ => '?',
            })
            .collect();
        // Key 1: 3 frames (50 ms rounded up) and 2 more end packets; 60 ms
        // of silence; key #; the pause; then the prompt resumes where it was.
        assert_eq!(kinds, "ppEEEEE...EEEEE...pppppppp..............");
        let events: Vec<_> = sent
            .iter()
            .filter(|p| p.payload_type == 101)
            .map(|p| {
                let e = parse_telephone_event(&p.payload).expect("event");
                assert_eq!(e.volume, 10);
                (p.tick, p.marker, p.timestamp, e.event, e.end, e.duration)
            })
            .collect();
        assert_eq!(
            events,
            vec![
                (2, true, 320, 1, false, 160),
                (3, false, 320, 1, false, 320),
                (4, false, 320, 1, true, 480),
                (5, false, 320, 1, true, 480),
                (6, false, 320, 1, true, 480),
                (10, true, 1600, 11, false, 160),
                (11, false, 1600, 11, false, 320),
                (12, false, 1600, 11, true, 480),
                (13, false, 1600, 11, true, 480),
                (14, false, 1600, 11, true, 480),
            ]
        );
        // The audio timestamp kept running underneath the events.
        for p in sent.iter().filter(|p| p.payload_type == 0) {
            assert_eq!(p.timestamp, p.tick * 160, "tick {}", p.tick);
        }
        // The prompt was paused, not cut: all 10 frames went out, then it ended.
        assert_eq!(kinds.matches('p').count(), 10);
        assert_eq!(core.poll_event(), Some(MediaEvent::PlaybackFinished));
        assert!(sent[18].marker, "the resumed prompt starts a talk spurt");
    }

    #[test]
    fn dtmf_we_send_is_what_our_receiver_reports() {
        let t0 = Instant::now();
        let mut tx = SessionCore::with_origin(CFG, t0, 7, 0, 5000);
        tx.set_remote(remote(4000, Some(96)), t0);
        tx.start_sending();
        tx.send_dtmf("123#", Duration::from_millis(100));
        let mut rx = SessionCore::with_origin(CFG, t0, 8, 0, 0);
        rx.set_remote(remote(5000, Some(96)), t0);
        let from = SocketAddr::from(([127, 0, 0, 1], 4000));
        let mut buf = vec![0u8; MAX_PACKET];
        for p in run_full(&mut tx, t0, 0, 60) {
            let header = RtpHeader {
                marker: p.marker,
                payload_type: p.payload_type,
                sequence: p.sequence,
                timestamp: p.timestamp,
                ssrc: p.ssrc,
            };
            let len = header.write(&p.payload, &mut buf).expect("fits");
            rx.handle_datagram(&buf[..len], from, t0 + PTIME * p.tick);
        }
        let digits: Vec<_> = std::iter::from_fn(|| rx.poll_event())
            .filter_map(|e| match e {
                MediaEvent::Dtmf { digit, duration_ms } => Some((digit, duration_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(digits, [('1', 100), ('2', 100), ('3', 100), ('#', 100)]);
        assert_eq!(rx.stats().rtp_lost, 0);
    }

    /// Power of `pcm` at `freq` (Goertzel) relative to its total power.
    fn relative_power(pcm: &[i16], freq: f64) -> f64 {
        let coeff = 2.0 * (std::f64::consts::TAU * freq / 8000.0).cos();
        let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
        for &x in pcm {
            let x = f64::from(x);
            energy += x * x;
            let s = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (energy * pcm.len() as f64 / 2.0)
    }

    #[test]
    fn without_telephone_event_keys_are_tones_in_the_audio() {
        let t0 = Instant::now();
        let cfg = SessionConfig {
            send_silence: false,
            ..CFG
        };
        let mut core = SessionCore::with_origin(cfg, t0, 9, 10, 0);
        core.set_remote(
            RemoteMedia {
                codec: Codec::Pcma,
                payload_type: 8,
                ..remote(4000, None)
            },
            t0,
        );
        core.start_sending();
        assert!(
            run_full(&mut core, t0, 0, 3).is_empty(),
            "silence suppressed"
        );
        core.send_dtmf("5", Duration::from_millis(100));
        let sent = run_full(&mut core, t0, 3, 20);
        // Five tone frames on the audio payload type, then nothing (the
        // pause is silence, and silence is suppressed).
        assert_eq!(sent.len(), 5);
        assert!(sent.iter().all(|p| p.payload_type == 8 && p.ssrc == 9));
        assert_eq!(
            sent.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [true, false, false, false, false]
        );
        assert_eq!(sent[0].sequence, 10);
        assert_eq!(sent[0].timestamp, 3 * 160);
        let pcm: Vec<i16> = sent
            .iter()
            .flat_map(|p| p.payload.iter().map(|b| Codec::Pcma.decode_sample(*b)))
            .collect();
        assert!(relative_power(&pcm, 770.0) > 0.3, "row tone of 5");
        assert!(relative_power(&pcm, 1336.0) > 0.3, "column tone of 5");
        assert!(relative_power(&pcm, 697.0) < 0.05);
        assert!(!core.is_sending_dtmf());
    }

    #[test]
    fn keys_wait_while_on_hold() {
        let t0 = Instant::now();
        let mut core = SessionCore::with_origin(CFG, t0, 1, 0, 0);
        core.set_remote(remote(4000, Some(101)), t0);
        core.start_sending();
        core.set_hold(true, t0);
        core.send_dtmf("7", Duration::from_millis(20));
        assert!(run_full(&mut core, t0, 0, 10).is_empty());
        assert!(core.is_sending_dtmf(), "nothing sent, nothing lost");
        core.set_hold(false, t0 + PTIME * 10);
        let sent = run_full(&mut core, t0, 10, 11);
        assert_eq!(sent[0].payload_type, 101);
        assert_eq!(sent[0].timestamp, 10 * 160);
    }
}
