//! The callee behaviours of the farm, their names, the number prefix that
//! selects each one, and the call status a caller should end up with.
//!
//! Pure: no I/O. The numbers are valid Dutch mobile numbers, so the engine's
//! number validation lets them through:
//!
//! ```text
//!   +31 6 CC SSSSSS      CC: the behaviour's two-digit code (10..=20)
//!                        SSSSSS: a serial number, any six digits
//!   +31 6 10 000042  →  human
//! ```
//!
//! [`behaviour_for`] maps a dialled number back to its behaviour whatever
//! form the caller put in the Request-URI (`+316…`, `316…`, `00316…`,
//! `06…`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// How a callee of the farm answers (or does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Rings 0.5–1.5 s, answers, says a short "hello?", then stays silent
    /// until the caller hangs up (or the safety cap).
    Human,
    /// Rings, answers, plays a voicemail greeting up to and including its
    /// beep, then "records" (silent) until the caller hangs up or the cap,
    /// then sends BYE.
    Voicemail,
    /// 486 Busy Here.
    Busy,
    /// 180 Ringing until the caller cancels (487), or 408 after the cap.
    NoAnswer,
    /// 404 Not Found.
    Invalid,
    /// 183 Session Progress with SDP, an intercept announcement as early
    /// media, then 404.
    #[serde(rename = "early_media_404")]
    EarlyMedia404,
    /// 480 Temporarily Unavailable, with Retry-After (60 s by default).
    Unavailable,
    /// Rings a moment, then 603 Decline.
    Rejected,
    /// Answers like a human, then sends BYE shortly after (before the
    /// caller's success point).
    HangupHalfway,
    /// Rings a long time, then behaves as a human.
    SlowAnswer,
    /// Answers like a human, then presses keys (DTMF: RFC 4733 events when
    /// the caller offered telephone-event, else in-band tones).
    PressesKeys,
}

/// Every behaviour with its two-digit number code: dial `+316<code><6 digits>`
/// to reach it. Codes never change once published (demos and injection files
/// depend on them).
pub const PREFIXES: [(Behaviour, &str); 11] = [
    (Behaviour::Human, "+31610"),
    (Behaviour::Voicemail, "+31611"),
    (Behaviour::Busy, "+31612"),
    (Behaviour::NoAnswer, "+31613"),
    (Behaviour::Invalid, "+31614"),
    (Behaviour::EarlyMedia404, "+31615"),
    (Behaviour::Unavailable, "+31616"),
    (Behaviour::Rejected, "+31617"),
    (Behaviour::HangupHalfway, "+31618"),
    (Behaviour::SlowAnswer, "+31619"),
    (Behaviour::PressesKeys, "+31620"),
];

/// Digits after the prefix: the serial number of a callee.
pub const SERIAL_DIGITS: usize = 6;
/// How many distinct numbers each behaviour has.
pub const SERIALS: u32 = 1_000_000;

impl Behaviour {
    /// Every behaviour, in the order of [`PREFIXES`].
    pub const ALL: [Behaviour; 11] = [
        Behaviour::Human,
        Behaviour::Voicemail,
        Behaviour::Busy,
        Behaviour::NoAnswer,
        Behaviour::Invalid,
        Behaviour::EarlyMedia404,
        Behaviour::Unavailable,
        Behaviour::Rejected,
        Behaviour::HangupHalfway,
        Behaviour::SlowAnswer,
        Behaviour::PressesKeys,
    ];

    /// The snake_case name used in mixes, CLI output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::Human => "human",
            Behaviour::Voicemail => "voicemail",
            Behaviour::Busy => "busy",
            Behaviour::NoAnswer => "no_answer",
            Behaviour::Invalid => "invalid",
            Behaviour::EarlyMedia404 => "early_media_404",
            Behaviour::Unavailable => "unavailable",
            Behaviour::Rejected => "rejected",
            Behaviour::HangupHalfway => "hangup_halfway",
            Behaviour::SlowAnswer => "slow_answer",
            Behaviour::PressesKeys => "presses_keys",
        }
    }

    /// The E.164 prefix of this behaviour's numbers (`+316` and its code).
    pub fn prefix(self) -> &'static str {
        // PREFIXES lists the behaviours in declaration order.
        PREFIXES[self as usize].1
    }

    /// The number of this behaviour with serial `serial` (taken modulo
    /// [`SERIALS`]), in E.164: `+316<code><serial, 6 digits>`.
    pub fn number(self, serial: u32) -> String {
        format!(
            "{}{:0width$}",
            self.prefix(),
            serial % SERIALS,
            width = SERIAL_DIGITS
        )
    }

    /// The final call status a caller that plays a voice script should
    /// record for this callee (the names of the result file layout):
    ///
    /// | behaviour | status |
    /// | --- | --- |
    /// | human | `success`, if the script runs past its success point before hanging up (the callee never hangs up first, short of the 120 s safety cap) |
    /// | voicemail | `voicemail` (answering machine and beep detected) |
    /// | busy | `busy` (486) |
    /// | no_answer | `no_answer` (the caller's ring timeout, CANCEL, 487) |
    /// | invalid | `invalid_number` (404) |
    /// | early_media_404 | `invalid_number` (404 after the announcement) |
    /// | unavailable | `unavailable` (480) |
    /// | rejected | `rejected` (603) |
    /// | hangup_halfway | `answered_no_success` (the callee hangs up 1.5 s after the answer, before any reasonable success point) |
    /// | slow_answer | `success` (as human, if the caller's ring timeout is above the 6 s ring) |
    /// | presses_keys | `success` (as human; the digits are extra input for the script) |
    pub fn expected_status(&self) -> &'static str {
        match self {
            Behaviour::Human | Behaviour::SlowAnswer | Behaviour::PressesKeys => "success",
            Behaviour::Voicemail => "voicemail",
            Behaviour::Busy => "busy",
            Behaviour::NoAnswer => "no_answer",
            Behaviour::Invalid | Behaviour::EarlyMedia404 => "invalid_number",
            Behaviour::Unavailable => "unavailable",
            Behaviour::Rejected => "rejected",
            Behaviour::HangupHalfway => "answered_no_success",
        }
    }

    /// Whether the callee answers (200 OK) at all.
    pub fn answers(self) -> bool {
        matches!(
            self,
            Behaviour::Human
                | Behaviour::Voicemail
                | Behaviour::HangupHalfway
                | Behaviour::SlowAnswer
                | Behaviour::PressesKeys
        )
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A behaviour name that is not one of [`Behaviour::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown behaviour {name:?}: expected one of {}", names())]
pub struct UnknownBehaviour {
    pub name: String,
}

fn names() -> String {
    Behaviour::ALL
        .iter()
        .map(|b| b.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Behaviour {
    type Err = UnknownBehaviour;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Behaviour::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownBehaviour {
                name: wanted.to_string(),
            })
    }
}

/// The behaviour a dialled number selects, or `None` when the number is not
/// one of the farm's. Accepts the user part of a Request-URI in E.164
/// (`+31610123456`), without the plus (`31610123456`), with the
/// international prefix (`0031610123456`) or national (`0610123456`);
/// visual separators (`-`, `.`, spaces, parentheses) are ignored.
pub fn behaviour_for(number: &str) -> Option<Behaviour> {
    // 11 digits once normalised; anything much longer is not ours.
    if number.len() > 32 {
        return None;
    }
    let mut digits = String::with_capacity(16);
    for (i, c) in number.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            '-' | '.' | ' ' | '(' | ')' => {}
            _ => return None,
        }
    }
    let national = if let Some(rest) = digits.strip_prefix("0031") {
        rest
    } else if let Some(rest) = digits.strip_prefix("31") {
        rest
    } else {
        digits.strip_prefix('0')?
    };
    // 6 CC SSSSSS
    if national.len() != 3 + SERIAL_DIGITS {
        return None;
    }
    let code = national.get(..3)?;
    PREFIXES
        .iter()
        .find(|(_, prefix)| prefix.get(3..) == Some(code))
        .map(|(b, _)| *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for b in Behaviour::ALL {
            assert_eq!(b.as_str().parse::<Behaviour>(), Ok(b));
            assert_eq!(b.to_string(), b.as_str());
            let json = serde_json::to_string(&b).expect("serialise");
            assert_eq!(json, format!("\"{}\"", b.as_str()));
        }
        assert_eq!(" No_Answer ".parse::<Behaviour>(), Ok(Behaviour::NoAnswer));
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "humann".parse::<Behaviour>().expect_err("not a behaviour");
        let text = err.to_string();
        assert!(text.contains("\"humann\""), "{text}");
        assert!(text.contains("early_media_404"), "{text}");
    }

    #[test]
    fn prefixes_are_in_declaration_order_and_distinct() {
        for (i, (b, prefix)) in PREFIXES.iter().enumerate() {
            assert_eq!(Behaviour::ALL[i], *b);
            assert_eq!(b.prefix(), *prefix);
            assert_eq!(prefix.len(), 6, "{prefix}");
            assert!(prefix.starts_with("+316"), "{prefix}");
        }
        let mut codes: Vec<_> = PREFIXES.iter().map(|(_, p)| *p).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), PREFIXES.len());
    }

    #[test]
    fn numbers_map_back_to_their_behaviour() {
        for b in Behaviour::ALL {
            for serial in [0, 1, 42, 999_999] {
                let number = b.number(serial);
                assert_eq!(number.len(), 12, "{number}");
                assert_eq!(behaviour_for(&number), Some(b), "{number}");
            }
        }
        assert_eq!(Behaviour::Busy.number(1_000_007), "+31612000007");
    }

    #[test]
    fn lookup_accepts_the_usual_forms() {
        let cases = [
            "+31612000001",
            "31612000001",
            "0031612000001",
            "0612000001",
            "06-12 00 00 01",
            "+31 (6) 12000001",
        ];
        for n in cases {
            assert_eq!(behaviour_for(n), Some(Behaviour::Busy), "{n}");
        }
    }

    #[test]
    fn lookup_rejects_other_numbers() {
        let cases = [
            "",
            "+",
            "sipp",
            "+3161200000",    // one digit short
            "+316120000011",  // one digit long
            "+31699000001",   // no behaviour with code 99
            "+32612000001",   // Belgium
            "+31201234567",   // Dutch landline
            "+3161200000a",   // a letter
            "1+31612000001",  // plus not first
            "+31612000001;x", // URI parameter left on
        ];
        for n in cases {
            assert_eq!(behaviour_for(n), None, "{n}");
        }
        assert_eq!(behaviour_for(&"9".repeat(100)), None);
    }

    #[test]
    fn statuses_are_result_file_names() {
        let expected = [
            (Behaviour::Human, "success"),
            (Behaviour::Voicemail, "voicemail"),
            (Behaviour::Busy, "busy"),
            (Behaviour::NoAnswer, "no_answer"),
            (Behaviour::Invalid, "invalid_number"),
            (Behaviour::EarlyMedia404, "invalid_number"),
            (Behaviour::Unavailable, "unavailable"),
            (Behaviour::Rejected, "rejected"),
            (Behaviour::HangupHalfway, "answered_no_success"),
            (Behaviour::SlowAnswer, "success"),
            (Behaviour::PressesKeys, "success"),
        ];
        for (b, status) in expected {
            assert_eq!(b.expected_status(), status, "{b}");
        }
    }
}
