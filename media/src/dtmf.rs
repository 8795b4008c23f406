//! RFC 4733 telephone-events: the 4-byte payload parser and a receiver that
//! turns a stream of event packets into one report per key press; and the
//! sender's side, [`DtmfSender`], which decides for each 20 ms tick of an
//! outgoing stream whether a key press replaces the audio packet.
//!
//! An event is identified by its RTP timestamp (RFC 4733 §2.5.1.3: every
//! packet of one event carries the timestamp of its start). The end packet is
//! sent three times; we report on the first end packet of a timestamp and
//! ignore the rest. If all end packets are lost, the event is reported when a
//! packet of a newer event arrives, with the last duration seen.
//!
//! Sending one key (RFC 4733 §2.5), one line per 20 ms tick:
//!
//! ```text
//!  tick  packet                         timestamp  M  E  duration
//!   1    event                          T          1  0  160
//!   2    event                          T          0  0  320
//!   ..
//!   n    event (last)                   T          0  1  n·160 (the length)
//!   n+1  the same end packet again      T          0  1  n·160
//!   n+2  the same end packet again      T          0  1  n·160
//!   then INTER_DIGIT_FRAMES ticks of audio (silence), then the next key
//! ```
//!
//! Every packet takes the next sequence number of the stream and its SSRC;
//! the audio timestamp keeps running underneath. Without a negotiated
//! telephone-event payload type the key is sent in band instead: its two
//! ITU-T Q.23 tones as audio frames of the same length, then the same pause.

use std::collections::VecDeque;
use std::time::Duration;

use crate::codec::{FRAME_SAMPLES, SAMPLE_RATE};

/// Why a telephone-event payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    #[error("telephone-event payload of {len} bytes, expected at least 4")]
    TooShort { len: usize },
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    /// In timestamp units (1/8000 s for 8 kHz audio).
    pub duration: u16,
}

/// Parse the first 4 bytes of a telephone-event payload (extra bytes, such as
/// redundant events, are ignored).
pub fn parse_telephone_event(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
    match payload {
        [event, flags, d0, d1, ..] => Ok(TelephoneEvent {
            event: *event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([*d0, *d1]),
        }),
        _ => Err(DtmfError::TooShort { len: payload.len() }),
    }
}

/// The DTMF character of event codes 0..=15, `None` for other events
/// (flash, tones).
pub fn event_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// The event code of a DTMF key (`0-9`, `*`, `#`, `A-D`, either case).
pub fn digit_event(digit: char) -> Option<u8> {
    Some(match digit.to_ascii_uppercase() {
        c @ '0'..='9' => c as u8 - b'0',
        '*' => 10,
        '#' => 11,
        c @ 'A'..='D' => c as u8 - b'A' + 12,
        _ => return None,
    })
}

/// The low and high frequency (Hz) of the key of event code 0..=15 (ITU-T
/// Q.23), for sending it in band.
pub fn event_frequencies(event: u8) -> Option<(f64, f64)> {
    const LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    // Row and column of each event code on the keypad.
    const KEYPAD: [(u8, u8); 16] = [
        (3, 1), // 0
        (0, 0), // 1
        (0, 1), // 2
        (0, 2), // 3
        (1, 0), // 4
        (1, 1), // 5
        (1, 2), // 6
        (2, 0), // 7
        (2, 1), // 8
        (2, 2), // 9
        (3, 0), // *
        (3, 2), // #
        (0, 3), // A
        (1, 3), // B
        (2, 3), // C
        (3, 3), // D
    ];
    let (row, col) = *KEYPAD.get(usize::from(event))?;
    Some((LOW[usize::from(row)], HIGH[usize::from(col)]))
}

/// A key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    pub digit: char,
    pub duration_ms: u32,
}

/// Per-session state of the telephone-event receiver.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    /// The event in progress: (timestamp, event code, last duration).
    current: Option<(u32, u8, u16)>,
    /// Timestamp of the last event reported, to drop retransmitted ends.
    last_reported: Option<u32>,
}

impl DtmfReceiver {
    /// Feed one telephone-event packet. Returns up to two digits: a previous
    /// event whose end packets were all lost, then this one if it ended.
    pub fn handle(
        &mut self,
        rtp_timestamp: u32,
        ev: TelephoneEvent,
        clock_rate: u32,
    ) -> [Option<DtmfDigit>; 2] {
        let mut out = [None, None];
        if self.last_reported == Some(rtp_timestamp) {
            return out; // retransmitted end packet, or a late update of a reported event
        }
        if let Some((ts, code, dur)) = self.current {
            if ts != rtp_timestamp {
                // A new event began before the old one's end arrived.
                out[0] = self.report(ts, code, dur, clock_rate);
            }
        }
        if ev.end {
            out[1] = self.report(rtp_timestamp, ev.event, ev.duration, clock_rate);
        } else {
            self.current = Some((rtp_timestamp, ev.event, ev.duration));
        }
        out
    }

    fn report(&mut self, ts: u32, code: u8, duration: u16, clock_rate: u32) -> Option<DtmfDigit> {
        self.current = None;
        self.last_reported = Some(ts);
        let digit = event_digit(code)?;
        let rate = clock_rate.max(1);
        Some(DtmfDigit {
            digit,
            duration_ms: u32::from(duration) * 1000 / rate,
        })
    }
}

/// Volume of the events we send (RFC 4733 §2.3.4: 10 means -10 dBm0).
pub const SEND_VOLUME: u8 = 10;
/// How often the end packet of an event is sent (RFC 4733 §2.5.1.4).
pub const END_PACKETS: u8 = 3;
/// Ticks (20 ms each) of audio between two keys we send, and after the last.
pub const INTER_DIGIT_FRAMES: u32 = 3;
/// Keys that may wait to be sent; further ones are dropped.
pub const MAX_QUEUED_DIGITS: usize = 64;
/// The longest key press we send: the most whole 20 ms frames the 16-bit
/// duration field holds (8.18 s at 8 kHz; RFC 4733 §2.5.2.1 would split a
/// longer one into segments, which no key press needs).
pub const MAX_PRESS_SAMPLES: u32 = (u16::MAX as u32 / FRAME_SAMPLES as u32) * FRAME_SAMPLES as u32;
const FRAME: u32 = FRAME_SAMPLES as u32;

/// What one 20 ms tick of an outgoing stream carries while keys are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfFrame {
    /// No key to send: the audio goes out as usual.
    Idle,
    /// Between keys (or after the last): silence on the audio payload type,
    /// while a prompt stays paused.
    Pause,
    /// An RFC 4733 packet in place of the audio packet.
    Event {
        payload_type: u8,
        /// The timestamp of the event's first tick, the same in all its packets.
        timestamp: u32,
        marker: bool,
        payload: [u8; 4],
    },
    /// A 20 ms frame of the key's in-band tones: samples `first_sample..+160`
    /// of a tone `length` samples long.
    Tone {
        event: u8,
        first_sample: u32,
        length: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Idle,
    Event {
        event: u8,
        payload_type: u8,
        timestamp: u32,
        length: u32,
        /// The duration of the last packet sent.
        elapsed: u32,
        ends_sent: u8,
    },
    Tone {
        event: u8,
        length: u32,
        elapsed: u32,
    },
    Pause {
        ticks_left: u32,
    },
}

/// The keys a session has to send and how far it is with the current one.
/// Pure and allocation-free per tick: the queue grows only in
/// [`DtmfSender::queue`].
#[derive(Debug)]
pub struct DtmfSender {
    /// Event code and length in samples (whole frames).
    queue: VecDeque<(u8, u32)>,
    state: TxState,
}

impl Default for DtmfSender {
    fn default() -> Self {
        DtmfSender {
            queue: VecDeque::new(),
            state: TxState::Idle,
        }
    }
}

impl DtmfSender {
    /// Queues the keys of `digits`, each held `press` (rounded up to whole
    /// 20 ms frames, at least one, at most [`MAX_PRESS_SAMPLES`]). Characters
    /// that are not keys are skipped, and so are keys beyond
    /// [`MAX_QUEUED_DIGITS`] waiting. Returns how many keys were queued.
    pub fn queue(&mut self, digits: &str, press: Duration) -> usize {
        let samples = press.as_micros() * u128::from(SAMPLE_RATE) / 1_000_000;
        let frames = samples.div_ceil(u128::from(FRAME)).max(1);
        let length = u32::try_from(frames * u128::from(FRAME))
            .unwrap_or(u32::MAX)
            .min(MAX_PRESS_SAMPLES);
        let mut queued = 0;
        for event in digits.chars().filter_map(digit_event) {
            if self.queue.len() >= MAX_QUEUED_DIGITS {
                break;
            }
            self.queue.push_back((event, length));
            queued += 1;
        }
        queued
    }

    /// Whether a key is being sent, or waits to be.
    pub fn is_active(&self) -> bool {
        self.state != TxState::Idle || !self.queue.is_empty()
    }

    /// Keys still waiting (not counting the one being sent).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// What the tick whose audio timestamp is `timestamp` carries.
    /// `payload_type` is the negotiated telephone-event type, if any: it
    /// decides, at the start of each key, between RFC 4733 and in-band tones.
    pub fn next_frame(&mut self, timestamp: u32, payload_type: Option<u8>) -> DtmfFrame {
        if self.state == TxState::Idle {
            let Some((event, length)) = self.queue.pop_front() else {
                return DtmfFrame::Idle;
            };
            self.state = match payload_type {
                Some(payload_type) => TxState::Event {
                    event,
                    payload_type,
                    timestamp,
                    length,
                    elapsed: 0,
                    ends_sent: 0,
                },
                None => TxState::Tone {
                    event,
                    length,
                    elapsed: 0,
                },
            };
        }
        let pause = TxState::Pause {
            ticks_left: INTER_DIGIT_FRAMES,
        };
        match &mut self.state {
            TxState::Idle => DtmfFrame::Idle,
            TxState::Event {
                event,
                payload_type,
                timestamp,
                length,
                elapsed,
                ends_sent,
            } => {
                let marker = *elapsed == 0;
                if *ends_sent == 0 {
                    *elapsed = (*elapsed + FRAME).min(*length);
                    if *elapsed >= *length {
                        *ends_sent = 1;
                    }
                } else {
                    *ends_sent += 1;
                }
                let end = if *ends_sent > 0 { 0x80 } else { 0 };
                // `length` is at most MAX_PRESS_SAMPLES, so it fits 16 bits.
                let duration = u16::try_from(*elapsed).unwrap_or(u16::MAX).to_be_bytes();
                let frame = DtmfFrame::Event {
                    payload_type: *payload_type,
                    timestamp: *timestamp,
                    marker,
                    payload: [*event, end | SEND_VOLUME, duration[0], duration[1]],
                };
                if *ends_sent >= END_PACKETS {
                    self.state = pause;
                }
                frame
            }
            TxState::Tone {
                event,
                length,
                elapsed,
            } => {
                let frame = DtmfFrame::Tone {
                    event: *event,
                    first_sample: *elapsed,
                    length: *length,
                };
                *elapsed += FRAME;
                if *elapsed >= *length {
                    self.state = pause;
                }
                frame
            }
            TxState::Pause { ticks_left } => {
                if *ticks_left <= 1 {
                    self.state = TxState::Idle;
                } else {
                    *ticks_left -= 1;
                }
                DtmfFrame::Pause
            }
        }
    }

    /// `ticks` ticks went by unsent (a stalled clock): the key in progress
    /// has lasted that much longer, a pause that much shorter.
    pub fn skip(&mut self, ticks: u32) {
        let by = ticks.saturating_mul(FRAME);
        match &mut self.state {
            TxState::Idle => {}
            TxState::Event {
                length,
                elapsed,
                ends_sent: 0,
                ..
            } => *elapsed = elapsed.saturating_add(by).min(*length),
            TxState::Event { .. } => {}
            TxState::Tone {
                length, elapsed, ..
            } => {
                *elapsed = elapsed.saturating_add(by);
                if *elapsed >= *length {
                    self.state = TxState::Pause {
                        ticks_left: INTER_DIGIT_FRAMES,
                    };
                }
            }
            TxState::Pause { ticks_left } => {
                *ticks_left = ticks_left.saturating_sub(ticks);
                if *ticks_left == 0 {
                    self.state = TxState::Idle;
                }
            }
        }
    }
}

/// Writes samples `first_sample..first_sample + out.len()` of the two tones
/// of `event`, `length` samples long, each at about -12 dBFS, with a 2 ms
/// ramp at both ends so the key starts and stops without a click. Samples
/// past `length` are silence.
pub fn tone_samples(event: u8, first_sample: u32, length: u32, out: &mut [i16]) {
    const LEVEL: f64 = 0.25 * i16::MAX as f64;
    const RAMP: u32 = 16;
    let Some((low, high)) = event_frequencies(event) else {
        out.fill(0);
        return;
    };
    let rate = f64::from(SAMPLE_RATE);
    let (wl, wh) = (
        std::f64::consts::TAU * low / rate,
        std::f64::consts::TAU * high / rate,
    );
    for (i, o) in out.iter_mut().enumerate() {
        let n = first_sample.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
        if n >= length {
            *o = 0;
            continue;
        }
        let edge = n.min(length - 1 - n);
        let gain = if edge >= RAMP {
            1.0
        } else {
            f64::from(edge) / f64::from(RAMP)
        };
        let t = f64::from(n);
        *o = (LEVEL * gain * ((wl * t).sin() + (wh * t).sin())) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    #[test]
    fn parses_payload() {
        let e = parse_telephone_event(&[11, 0x8a, 0x03, 0x20]).expect("valid");
        assert_eq!(e, ev(11, true, 800));
        assert_eq!(
            parse_telephone_event(&[1, 2, 3]),
            Err(DtmfError::TooShort { len: 3 })
        );
    }

    #[test]
    fn one_report_per_press_despite_retransmitted_ends() {
        let mut rx = DtmfReceiver::default();
        let mut got = Vec::new();
        // digit 5: three updates then three end packets, timestamp 1000
        for (end, dur) in [
            (false, 160),
            (false, 320),
            (false, 480),
            (true, 800),
            (true, 800),
            (true, 800),
        ] {
            got.extend(rx.handle(1000, ev(5, end, dur), 8000).into_iter().flatten());
        }
        // digit '#' with only end packets
        for _ in 0..3 {
            got.extend(
                rx.handle(5000, ev(11, true, 640), 8000)
                    .into_iter()
                    .flatten(),
            );
        }
        assert_eq!(
            got,
            vec![
                DtmfDigit {
                    digit: '5',
                    duration_ms: 100
                },
                DtmfDigit {
                    digit: '#',
                    duration_ms: 80
                }
            ]
        );
    }

    #[test]
    fn lost_end_reported_when_next_event_starts() {
        let mut rx = DtmfReceiver::default();
        let mut got = Vec::new();
        got.extend(
            rx.handle(100, ev(1, false, 400), 8000)
                .into_iter()
                .flatten(),
        );
        got.extend(
            rx.handle(9000, ev(2, false, 160), 8000)
                .into_iter()
                .flatten(),
        );
        got.extend(
            rx.handle(9000, ev(2, true, 480), 8000)
                .into_iter()
                .flatten(),
        );
        let digits: String = got.iter().map(|d| d.digit).collect();
        assert_eq!(digits, "12");
        assert_eq!(got[0].duration_ms, 50);
    }

    #[test]
    fn digits_map() {
        let s: String = (0..=16).filter_map(event_digit).collect();
        assert_eq!(s, "0123456789*#ABCD");
    }

    #[test]
    fn digit_events_invert_event_digits() {
        for event in 0..16u8 {
            let digit = event_digit(event).expect("a key");
            assert_eq!(digit_event(digit), Some(event));
            assert_eq!(digit_event(digit.to_ascii_lowercase()), Some(event));
        }
        assert_eq!(digit_event('x'), None);
        assert_eq!(event_frequencies(1), Some((697.0, 1209.0)));
        assert_eq!(event_frequencies(0), Some((941.0, 1336.0)));
        assert_eq!(event_frequencies(11), Some((941.0, 1477.0)));
        assert_eq!(event_frequencies(16), None);
    }

    /// Every frame until the sender is idle again.
    fn drain(tx: &mut DtmfSender, pt: Option<u8>) -> Vec<DtmfFrame> {
        let mut out = Vec::new();
        let mut ts = 1000u32;
        while tx.is_active() {
            out.push(tx.next_frame(ts, pt));
            ts = ts.wrapping_add(FRAME);
            assert!(out.len() < 1000, "runs away");
        }
        out
    }

    #[test]
    fn an_event_grows_ends_three_times_then_pauses() {
        let mut tx = DtmfSender::default();
        assert_eq!(tx.queue("5", Duration::from_millis(90)), 1);
        let frames = drain(&mut tx, Some(101));
        // 90 ms rounds up to 5 frames; 2 more end packets; a 3-tick pause.
        assert_eq!(frames.len(), 5 + 2 + 3);
        let events: Vec<_> = frames
            .iter()
            .filter_map(|f| match *f {
                DtmfFrame::Event {
                    payload_type,
                    timestamp,
                    marker,
                    payload,
                } => {
                    let e = parse_telephone_event(&payload).expect("ours parses");
                    Some((
                        payload_type,
                        timestamp,
                        marker,
                        e.end,
                        e.duration,
                        e.event,
                        e.volume,
                    ))
                }
                _ => None,
            })
            .collect();
        let expected: Vec<_> = [
            (true, false, 160),
            (false, false, 320),
            (false, false, 480),
            (false, false, 640),
            (false, true, 800),
            (false, true, 800),
            (false, true, 800),
        ]
        .into_iter()
        .map(|(m, e, d)| (101, 1000, m, e, d, 5, SEND_VOLUME))
        .collect();
        assert_eq!(events, expected);
        assert!(frames[7..].iter().all(|f| *f == DtmfFrame::Pause));
        assert_eq!(tx.next_frame(0, Some(101)), DtmfFrame::Idle);
    }

    #[test]
    fn keys_follow_each_other_with_new_timestamps() {
        let mut tx = DtmfSender::default();
        assert_eq!(tx.queue("1x#", Duration::from_millis(40)), 2, "x is no key");
        let starts: Vec<_> = drain(&mut tx, Some(96))
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f {
                DtmfFrame::Event {
                    marker: true,
                    timestamp,
                    payload,
                    ..
                } => Some((i, *timestamp, payload[0])),
                _ => None,
            })
            .collect();
        // Key 1 on ticks 0-3 (2 frames, 2 more ends), pause 4-6, key # from 7.
        assert_eq!(starts, vec![(0, 1000, 1), (7, 1000 + 7 * FRAME, 11)]);
    }

    #[test]
    fn without_a_payload_type_keys_go_in_band() {
        let mut tx = DtmfSender::default();
        tx.queue("9", Duration::from_millis(50));
        let frames = drain(&mut tx, None);
        assert_eq!(
            frames[..3],
            [0, 160, 320].map(|first_sample| DtmfFrame::Tone {
                event: 9,
                first_sample,
                length: 480
            })
        );
        assert_eq!(frames[3..], [DtmfFrame::Pause; 3]);
        let mut pcm = [0i16; 160];
        tone_samples(9, 160, 480, &mut pcm);
        assert!(pcm.iter().any(|s| s.unsigned_abs() > 6000));
        tone_samples(9, 0, 480, &mut pcm);
        assert_eq!(pcm[0], 0, "ramps up from silence");
        tone_samples(9, 400, 480, &mut pcm);
        assert!(pcm[80..].iter().all(|s| *s == 0), "silence past the end");
    }

    #[test]
    fn lengths_are_whole_frames_within_the_duration_field() {
        let mut tx = DtmfSender::default();
        tx.queue("1", Duration::ZERO);
        tx.queue("2", Duration::from_secs(60));
        let ends: Vec<_> = drain(&mut tx, Some(101))
            .iter()
            .filter_map(|f| match f {
                DtmfFrame::Event { payload, .. } if payload[1] & 0x80 != 0 => {
                    Some(u16::from_be_bytes([payload[2], payload[3]]))
                }
                _ => None,
            })
            .collect();
        assert_eq!(ends, vec![160, 160, 160, 65440, 65440, 65440]);
        let many = "1".repeat(MAX_QUEUED_DIGITS + 5);
        assert_eq!(
            tx.queue(&many, Duration::from_millis(40)),
            MAX_QUEUED_DIGITS
        );
    }

    #[test]
    fn a_stall_lengthens_the_key_and_shortens_the_pause() {
        let mut tx = DtmfSender::default();
        tx.queue("4", Duration::from_millis(200));
        tx.next_frame(0, Some(101));
        tx.skip(5);
        match tx.next_frame(7 * FRAME, Some(101)) {
            DtmfFrame::Event {
                timestamp, payload, ..
            } => {
                assert_eq!(timestamp, 0, "the event keeps its start");
                assert_eq!(u16::from_be_bytes([payload[2], payload[3]]), 7 * 160);
            }
            other => panic!("{other:?}"),
        }
        tx.skip(100);
        // Ends now: the duration is capped at the length.
        let rest = drain(&mut tx, Some(101));
        assert!(matches!(
            rest[0],
            DtmfFrame::Event { payload, .. } if payload[1] & 0x80 != 0
                && u16::from_be_bytes([payload[2], payload[3]]) == 1600
        ));
        tx.queue("4", Duration::from_millis(20));
        for _ in 0..3 {
            tx.next_frame(0, Some(101));
        }
        tx.skip(10);
        assert!(!tx.is_active(), "the pause is over");
    }
}
