//! Periods of the organisation's local time as UTC millisecond ranges:
//! a local day (23 or 25 hours long across a daylight-saving change),
//! "today", "yesterday", "the day before", and a custom range of local
//! times. Pure: every helper takes the instant it is asked about.
//!
//! Local times that do not exist (the hour skipped in spring) move to the
//! first minute that does; times that happen twice (the hour repeated in
//! autumn) take the first.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::store::EpochMs;

/// A half-open range `[from, to)` of UTC milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Range {
    pub from: EpochMs,
    pub to: EpochMs,
}

/// Why a range was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("the range is empty: {from} is not before {to}")]
    Empty {
        from: NaiveDateTime,
        to: NaiveDateTime,
    },
    #[error("{0} is outside the supported dates")]
    OutOfRange(NaiveDateTime),
}

/// The instant of a local time in `tz`: the earlier one when it happens
/// twice, the first existing minute after it when it does not exist.
/// `None` only for dates at the edge of what chrono represents.
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut probe = local;
    // No zone skips more than a few hours; 25 h is generous.
    for _ in 0..=(25 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
            LocalResult::None => probe = probe.checked_add_signed(chrono::Duration::minutes(1))?,
        }
    }
    None
}

/// The local date of `at` in `tz`.
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The UTC range of the local day `day` in `tz`: from its first instant to
/// the first instant of the next day. `None` at chrono's date limits.
pub fn day_range(day: NaiveDate, tz: Tz) -> Option<Range> {
    let next = day.checked_add_days(Days::new(1))?;
    let from = local_instant(tz, day.and_hms_opt(0, 0, 0)?)?;
    let to = local_instant(tz, next.and_hms_opt(0, 0, 0)?)?;
    Some(Range {
        from: from.timestamp_millis(),
        to: to.timestamp_millis(),
    })
}

/// Today in `tz` at `now`.
pub fn today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    local_date(now, tz)
}

/// The local day before today.
pub fn yesterday(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    days_back(now, tz, 1)
}

/// The local day before yesterday.
pub fn day_before(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    days_back(now, tz, 2)
}

fn days_back(now: DateTime<Utc>, tz: Tz, n: u64) -> NaiveDate {
    let today = today(now, tz);
    today.checked_sub_days(Days::new(n)).unwrap_or(today)
}

/// The UTC range from local time `from` to local time `to` in `tz`.
pub fn custom_range(from: NaiveDateTime, to: NaiveDateTime, tz: Tz) -> Result<Range, RangeError> {
    let start = local_instant(tz, from).ok_or(RangeError::OutOfRange(from))?;
    let end = local_instant(tz, to).ok_or(RangeError::OutOfRange(to))?;
    if start >= end {
        return Err(RangeError::Empty { from, to });
    }
    Ok(Range {
        from: start.timestamp_millis(),
        to: end.timestamp_millis(),
    })
}

/// A day as given on the command line: `today`, `yesterday`,
/// `day-before` or `YYYY-MM-DD`, resolved at `now` in `tz`.
pub fn parse_day(text: &str, now: DateTime<Utc>, tz: Tz) -> Result<NaiveDate, String> {
    match text.trim() {
        "today" => Ok(today(now, tz)),
        "yesterday" => Ok(yesterday(now, tz)),
        "day-before" => Ok(day_before(now, tz)),
        other => other.parse().map_err(|_| {
            format!("{other:?} is not today, yesterday, day-before or a date YYYY-MM-DD")
        }),
    }
}

/// A time as given on the command line: RFC 3339 with an offset (an
/// instant), or a local `YYYY-MM-DDTHH:MM[:SS]` (a space also separates),
/// or a local date (its midnight), both in `tz`.
pub fn parse_time(text: &str, tz: Tz) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        text.parse::<NaiveDate>()
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| format!("{text:?} is not a time (RFC 3339, YYYY-MM-DDTHH:MM or YYYY-MM-DD)"))?;
    local_instant(tz, local).ok_or_else(|| format!("{text:?} is outside the supported dates"))
}

/// The range between two instants.
pub fn instant_range(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Range, String> {
    if from >= to {
        return Err(format!("the range is empty: {from} is not before {to}"));
    }
    Ok(Range {
        from: from.timestamp_millis(),
        to: to.timestamp_millis(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Amsterdam;

    const HOUR: i64 = 3600 * 1000;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    fn local(s: &str) -> NaiveDateTime {
        s.parse().expect("a local date and time")
    }

    #[test]
    fn an_ordinary_day_is_24_hours_from_local_midnight() {
        let r = day_range(date("2026-06-15"), Amsterdam).expect("range");
        assert_eq!(r.from, utc("2026-06-14T22:00:00Z").timestamp_millis());
        assert_eq!(r.to - r.from, 24 * HOUR);
        let winter = day_range(date("2026-01-15"), Amsterdam).expect("range");
        assert_eq!(winter.from, utc("2026-01-14T23:00:00Z").timestamp_millis());
    }

    #[test]
    fn the_spring_day_is_23_hours_and_the_autumn_day_25() {
        let spring = day_range(date("2026-03-29"), Amsterdam).expect("range");
        assert_eq!(spring.from, utc("2026-03-28T23:00:00Z").timestamp_millis());
        assert_eq!(spring.to - spring.from, 23 * HOUR);
        let autumn = day_range(date("2026-10-25"), Amsterdam).expect("range");
        assert_eq!(autumn.from, utc("2026-10-24T22:00:00Z").timestamp_millis());
        assert_eq!(autumn.to - autumn.from, 25 * HOUR);
        // Consecutive days tile time without a gap.
        let before = day_range(date("2026-10-24"), Amsterdam).expect("range");
        assert_eq!(before.to, autumn.from);
    }

    #[test]
    fn a_zone_that_skips_midnight_starts_the_day_at_one() {
        // Chile moved its clocks from 00:00 to 01:00 on 2023-09-03.
        let tz = chrono_tz::America::Santiago;
        let r = day_range(date("2023-09-03"), tz).expect("range");
        assert_eq!(r.from, utc("2023-09-03T04:00:00Z").timestamp_millis());
        assert_eq!(r.to - r.from, 23 * HOUR);
    }

    #[test]
    fn yesterday_and_the_day_before_are_local_days() {
        // 00:30 in Amsterdam on 27 October is still 26 October in UTC.
        let now = utc("2026-10-26T23:30:00Z");
        assert_eq!(today(now, Amsterdam), date("2026-10-27"));
        assert_eq!(yesterday(now, Amsterdam), date("2026-10-26"));
        assert_eq!(day_before(now, Amsterdam), date("2026-10-25"));
        assert_eq!(yesterday(now, Tz::UTC), date("2026-10-25"));
        // Just after the spring change.
        let now = utc("2026-03-29T01:30:00Z");
        assert_eq!(today(now, Amsterdam), date("2026-03-29"));
        assert_eq!(yesterday(now, Amsterdam), date("2026-03-28"));
    }

    #[test]
    fn a_custom_range_resolves_skipped_and_repeated_hours() {
        // 02:30 does not exist on 2026-03-29: it becomes 03:00 CEST.
        let r = custom_range(
            local("2026-03-29T02:30:00"),
            local("2026-03-29T04:00:00"),
            Amsterdam,
        )
        .expect("range");
        assert_eq!(r.from, utc("2026-03-29T01:00:00Z").timestamp_millis());
        assert_eq!(r.to - r.from, HOUR);
        // 02:30 happens twice on 2026-10-25: the first (CEST) is taken.
        let r = custom_range(
            local("2026-10-25T02:30:00"),
            local("2026-10-25T03:30:00"),
            Amsterdam,
        )
        .expect("range");
        assert_eq!(r.from, utc("2026-10-25T00:30:00Z").timestamp_millis());
        assert_eq!(r.to - r.from, 2 * HOUR);
        assert!(matches!(
            custom_range(
                local("2026-01-02T00:00:00"),
                local("2026-01-01T00:00:00"),
                Amsterdam
            ),
            Err(RangeError::Empty { .. })
        ));
    }

    #[test]
    fn command_line_days_and_times() {
        let now = utc("2026-10-26T23:30:00Z");
        assert_eq!(parse_day("today", now, Amsterdam), Ok(date("2026-10-27")));
        assert_eq!(
            parse_day("yesterday", now, Amsterdam),
            Ok(date("2026-10-26"))
        );
        assert_eq!(
            parse_day("day-before", now, Amsterdam),
            Ok(date("2026-10-25"))
        );
        assert_eq!(
            parse_day("2026-01-02", now, Amsterdam),
            Ok(date("2026-01-02"))
        );
        assert!(parse_day("tomorrow", now, Amsterdam).is_err());
        assert_eq!(
            parse_time("2026-06-01T10:00:00+02:00", Tz::UTC),
            Ok(utc("2026-06-01T08:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-06-01T10:00", Amsterdam),
            Ok(utc("2026-06-01T08:00:00Z"))
        );
        assert_eq!(
            parse_time("2026-06-01 10:00:30", Amsterdam),
            Ok(utc("2026-06-01T08:00:30Z"))
        );
        assert_eq!(
            parse_time("2026-06-01", Amsterdam),
            Ok(utc("2026-05-31T22:00:00Z"))
        );
        assert!(parse_time("noon", Amsterdam).is_err());
        assert!(instant_range(utc("2026-06-01T08:00:00Z"), utc("2026-06-01T08:00:00Z")).is_err());
    }
}
