//! Final call status: maps how an outbound INVITE ended onto the call statuses of
//! the result file layout (`../shared/formats/README.md`), keeping the SIP code.
//!
//! Pure: no I/O, no clock. The engine later refines `Answered` into `success`,
//! `answered_no_success`, `voicemail` or `forwarded` from what the script saw.

use serde::Serialize;

/// How a call attempt ended, at the SIP level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// A 2xx was received (any 2xx, not only 200).
    Answered,
    /// 486 Busy Here, 600 Busy Everywhere.
    Busy,
    /// 404, 410, 484, 604: the number does not exist.
    InvalidNumber,
    /// 603 Decline.
    Rejected,
    /// 480 Temporarily Unavailable, 503 Service Unavailable.
    Unavailable,
    /// Nobody answered: our ring timeout (CANCEL, 487) or a 408 from the far end.
    NoAnswer,
    /// Anything else: our side, the trunk, or a response we cannot classify.
    Failed,
}

impl CallStatus {
    /// The status name used in result files and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Answered => "answered",
            CallStatus::Busy => "busy",
            CallStatus::InvalidNumber => "invalid_number",
            CallStatus::Rejected => "rejected",
            CallStatus::Unavailable => "unavailable",
            CallStatus::NoAnswer => "no_answer",
            CallStatus::Failed => "failed",
        }
    }

    /// Classifies the final response code of an INVITE that we received from the
    /// network. `487` only arrives after a CANCEL, and we only CANCEL when our ring
    /// timeout expires (or the caller hangs up first), so it counts as not answered.
    pub fn from_final_response(code: u16) -> CallStatus {
        match code {
            200..=299 => CallStatus::Answered,
            486 | 600 => CallStatus::Busy,
            404 | 410 | 484 | 604 => CallStatus::InvalidNumber,
            603 => CallStatus::Rejected,
            480 | 503 => CallStatus::Unavailable,
            408 | 487 => CallStatus::NoAnswer,
            _ => CallStatus::Failed,
        }
    }
}

impl std::fmt::Display for CallStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a final response asks the trunk to slow down (RFC 3261 §21.5.4 and
/// §21.4.18: 503 with or without Retry-After; we also treat 480 as a sign of an
/// overloaded or unreachable route, as carriers commonly use it that way).
pub fn is_backoff_response(code: u16) -> bool {
    matches!(code, 480 | 503)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_documented_codes() {
        let cases = [
            (200, CallStatus::Answered),
            (202, CallStatus::Answered),
            (486, CallStatus::Busy),
            (600, CallStatus::Busy),
            (404, CallStatus::InvalidNumber),
            (410, CallStatus::InvalidNumber),
            (484, CallStatus::InvalidNumber),
            (604, CallStatus::InvalidNumber),
            (603, CallStatus::Rejected),
            (480, CallStatus::Unavailable),
            (503, CallStatus::Unavailable),
            (487, CallStatus::NoAnswer),
            (408, CallStatus::NoAnswer),
            (500, CallStatus::Failed),
            (302, CallStatus::Failed),
            (488, CallStatus::Failed),
        ];
        for (code, status) in cases {
            assert_eq!(CallStatus::from_final_response(code), status, "code {code}");
        }
    }

    #[test]
    fn status_names_match_the_result_file_layout() {
        assert_eq!(CallStatus::InvalidNumber.as_str(), "invalid_number");
        assert_eq!(CallStatus::NoAnswer.as_str(), "no_answer");
        assert_eq!(CallStatus::Unavailable.to_string(), "unavailable");
    }

    #[test]
    fn backoff_codes() {
        assert!(is_backoff_response(503));
        assert!(is_backoff_response(480));
        assert!(!is_backoff_response(486));
    }
}
