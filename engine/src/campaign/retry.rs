//! Which call statuses end a record and which are tried again: a pure rule,
//! tested without a clock or a database. Not reached (no_answer, busy,
//! unavailable, answered_no_success: hung up before the point of success),
//! failed and interrupted are tried again until the campaign's attempts are
//! used; when the next one may start is [`super::schedule`]'s call.

use crate::store::{EpochMs, NextStep};

/// Statuses after which the record is finished whatever attempts are left: the
/// person was reached, or there is nobody to reach at that number.
pub fn is_final_status(status: &str) -> bool {
    matches!(
        status,
        "success" | "forwarded" | "voicemail" | "invalid_number" | "rejected" | "blocked"
    )
}

/// What happens after attempt `attempt_no` (1-based) ended with `status`.
pub fn next_step(
    status: &str,
    attempt_no: u32,
    max_attempts: u32,
    retry_delay_ms: i64,
    now: EpochMs,
) -> NextStep {
    if is_final_status(status) || attempt_no >= max_attempts {
        NextStep::Final
    } else {
        NextStep::RetryAt(now.saturating_add(retry_delay_ms.max(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reached_and_invalid_are_final() {
        for status in ["success", "voicemail", "invalid_number", "blocked"] {
            assert_eq!(
                next_step(status, 1, 3, 1000, 0),
                NextStep::Final,
                "{status}"
            );
        }
    }

    #[test]
    fn not_reached_is_retried_until_the_last_attempt() {
        for status in [
            "no_answer",
            "busy",
            "unavailable",
            "answered_no_success",
            "failed",
            "interrupted",
        ] {
            assert_eq!(next_step(status, 1, 3, 1000, 50), NextStep::RetryAt(1050));
            assert_eq!(next_step(status, 2, 3, 1000, 50), NextStep::RetryAt(1050));
            assert_eq!(next_step(status, 3, 3, 1000, 50), NextStep::Final);
        }
    }

    #[test]
    fn one_attempt_means_no_retry() {
        assert_eq!(next_step("busy", 1, 1, 1000, 0), NextStep::Final);
    }
}
