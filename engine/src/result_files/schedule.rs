//! When nightly result files are written: at a local time of day in the
//! organisation's time zone, each run covering the local day before it.
//! Pure, so it is tested across daylight-saving changes.
//!
//! A run time that does not exist (inside the hour skipped in spring) runs
//! at the first minute that does; one that happens twice (inside the hour
//! repeated in autumn) runs at the first, once.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::stats::range::{local_date, local_instant};

/// The instant of the run on local day `day`.
fn run_on(day: NaiveDate, at: NaiveTime, tz: Tz) -> Option<DateTime<Utc>> {
    local_instant(tz, day.and_time(at))
}

/// The first run strictly after `now`.
pub fn next_nightly_run(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = local_date(now, tz);
    (0..3)
        .filter_map(|n| today.checked_add_days(Days::new(n)))
        .filter_map(|day| run_on(day, at, tz))
        .find(|run| *run > now)
        // Only at the end of chrono's calendar: a day later, never sooner.
        .unwrap_or(now + chrono::Duration::days(1))
}

/// The last run at or before `now`.
pub fn last_nightly_run(now: DateTime<Utc>, at: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let today = local_date(now, tz);
    (0..3)
        .filter_map(|n| today.checked_sub_days(Days::new(n)))
        .filter_map(|day| run_on(day, at, tz))
        .find(|run| *run <= now)
        .unwrap_or(now - chrono::Duration::days(1))
}

/// The local day a run at `run` writes: the day before its own.
pub fn day_of_run(run: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let day = local_date(run, tz);
    day.pred_opt().unwrap_or(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn the_next_run_is_today_or_tomorrow_at_local_time() {
        // 01:00 CET: today's 02:00 is still ahead.
        let now = utc("2026-01-15T00:00:00Z");
        assert_eq!(
            next_nightly_run(now, at(2, 0), Amsterdam),
            utc("2026-01-15T01:00:00Z")
        );
        // Exactly at the run: the next one is tomorrow.
        let now = utc("2026-01-15T01:00:00Z");
        assert_eq!(
            next_nightly_run(now, at(2, 0), Amsterdam),
            utc("2026-01-16T01:00:00Z")
        );
        assert_eq!(last_nightly_run(now, at(2, 0), Amsterdam), now);
        assert_eq!(day_of_run(now, Amsterdam), date("2026-01-14"));
        // Summer time: 02:00 CEST is 00:00 UTC.
        let now = utc("2026-07-01T12:00:00Z");
        assert_eq!(
            next_nightly_run(now, at(2, 0), Amsterdam),
            utc("2026-07-02T00:00:00Z")
        );
    }

    #[test]
    fn the_run_in_the_skipped_hour_happens_at_three() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let now = utc("2026-03-28T12:00:00Z");
        let run = next_nightly_run(now, at(2, 30), Amsterdam);
        assert_eq!(run, utc("2026-03-29T01:00:00Z"));
        assert_eq!(day_of_run(run, Amsterdam), date("2026-03-28"));
        let after = next_nightly_run(run, at(2, 30), Amsterdam);
        assert_eq!(after, utc("2026-03-30T00:30:00Z"));
        assert_eq!(day_of_run(after, Amsterdam), date("2026-03-29"));
    }

    #[test]
    fn the_run_in_the_repeated_hour_happens_once() {
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let now = utc("2026-10-24T12:00:00Z");
        let first = next_nightly_run(now, at(2, 30), Amsterdam);
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        // Not again an hour later, at the second 02:30.
        let second = next_nightly_run(first, at(2, 30), Amsterdam);
        assert_eq!(second, utc("2026-10-26T01:30:00Z"));
        assert_eq!(day_of_run(first, Amsterdam), date("2026-10-24"));
        assert_eq!(day_of_run(second, Amsterdam), date("2026-10-25"));
        // Between the two 02:30s the last run is still the first.
        let between = utc("2026-10-25T01:15:00Z");
        assert_eq!(last_nightly_run(between, at(2, 30), Amsterdam), first);
    }

    #[test]
    fn the_last_run_before_today_s_time_is_yesterday_s() {
        let now = utc("2026-01-15T00:30:00Z"); // 01:30 CET
        let last = last_nightly_run(now, at(2, 0), Amsterdam);
        assert_eq!(last, utc("2026-01-14T01:00:00Z"));
        assert_eq!(day_of_run(last, Amsterdam), date("2026-01-13"));
        // Runs step a day at a time over a whole year, never twice a day.
        let mut run = next_nightly_run(utc("2026-01-01T00:00:00Z"), at(2, 0), Amsterdam);
        let mut days = std::collections::BTreeSet::new();
        for _ in 0..365 {
            assert!(days.insert(day_of_run(run, Amsterdam)));
            let next = next_nightly_run(run, at(2, 0), Amsterdam);
            let hours = (next - run).num_hours();
            assert!((23..=25).contains(&hours), "{run} → {next}");
            run = next;
        }
    }
}
