//! The per-record cap on attempts in any rolling 7 days (default 7), a guard
//! rail collections dialers must have. Pure: it takes the record's attempt
//! times and the instant asked about.

use chrono::{DateTime, Duration, Utc};

/// The default cap.
pub const DEFAULT_WEEKLY_CAP: usize = 7;

/// Whether another attempt may start at `now`, given when the record's
/// earlier attempts started.
pub fn may_attempt(started: &[DateTime<Utc>], now: DateTime<Utc>, cap: usize) -> bool {
    let since = now - Duration::days(7);
    started.iter().filter(|t| **t > since && **t <= now).count() < cap
}

/// The earliest instant at or after `now` when another attempt is allowed.
pub fn next_allowed(started: &[DateTime<Utc>], now: DateTime<Utc>, cap: usize) -> DateTime<Utc> {
    if cap == 0 {
        return DateTime::<Utc>::MAX_UTC;
    }
    let mut recent: Vec<DateTime<Utc>> = started
        .iter()
        .copied()
        .filter(|t| *t > now - Duration::days(7) && *t <= now)
        .collect();
    if recent.len() < cap {
        return now;
    }
    recent.sort_unstable();
    // Once the oldest attempts that keep us at the cap leave the 7 days.
    recent[recent.len() - cap] + Duration::days(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: i64, hour: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(day) + Duration::hours(hour)
    }

    #[test]
    fn the_eighth_attempt_in_seven_days_waits() {
        let started: Vec<_> = (0..7).map(|d| at(d, 10)).collect();
        assert!(!may_attempt(&started, at(6, 12), DEFAULT_WEEKLY_CAP));
        // The first attempt leaves the window 7 days after it started.
        assert_eq!(
            next_allowed(&started, at(6, 12), DEFAULT_WEEKLY_CAP),
            at(7, 10)
        );
        assert!(may_attempt(&started, at(7, 10), DEFAULT_WEEKLY_CAP));
        assert!(!may_attempt(
            &started,
            at(7, 10) - Duration::seconds(1),
            DEFAULT_WEEKLY_CAP
        ));
    }

    #[test]
    fn old_attempts_do_not_count() {
        let started = vec![at(0, 0), at(1, 0), at(30, 0)];
        assert!(may_attempt(&started, at(30, 1), 2));
        assert_eq!(next_allowed(&started, at(30, 1), 2), at(30, 1));
        assert_eq!(next_allowed(&started, at(30, 1), 1), at(37, 0));
        assert!(!may_attempt(&[], at(0, 0), 0));
    }
}
