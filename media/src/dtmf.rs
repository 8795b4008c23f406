//! RFC 4733 telephone-events: the 4-byte payload parser and a receiver that
//! turns a stream of event packets into one report per key press.
//!
//! An event is identified by its RTP timestamp (RFC 4733 §2.5.1.3: every
//! packet of one event carries the timestamp of its start). The end packet is
//! sent three times; we report on the first end packet of a timestamp and
//! ignore the rest. If all end packets are lost, the event is reported when a
//! packet of a newer event arrives, with the last duration seen.

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
}
