//! When calls may be made: an organisation's time zone, workdays and holidays,
//! and a script's call windows per weekday. Pure: every question takes the
//! instant it is asked about, so the rules are tested on any clock, across
//! daylight-saving changes.
//!
//! Local times that do not exist (the hour skipped in spring) move to the
//! first instant that does; times that happen twice (the hour repeated in
//! autumn) take the first.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// How far ahead [`Calendar::next_open`] looks before giving up.
const LOOKAHEAD_DAYS: u64 = 400;

/// Days on which nobody is called.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holidays {
    /// Holidays on one date only (e.g. Easter Monday 2027-03-29).
    pub dates: BTreeSet<NaiveDate>,
    /// Holidays on the same day every year, as (month, day) (e.g. 12-25).
    pub yearly: BTreeSet<(u32, u32)>,
}

impl Holidays {
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.dates.contains(&day) || self.yearly.contains(&(day.month(), day.day()))
    }
}

/// A span of local time within one day, `start` included, `end` excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    /// Reads `HH:MM-HH:MM` (seconds allowed: `HH:MM:SS`); an end of `24:00`
    /// is the end of the day.
    pub fn parse(text: &str) -> Result<Window, String> {
        let expected = || format!("{text:?}: expected a window such as 09:00-17:30");
        let (start, end) = text.split_once('-').ok_or_else(expected)?;
        let time = |part: &str| -> Result<NaiveTime, String> {
            let part = part.trim();
            if part == "24:00" {
                return NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999).ok_or_else(expected);
            }
            NaiveTime::parse_from_str(part, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(part, "%H:%M:%S"))
                .map_err(|_| expected())
        };
        let window = Window {
            start: time(start)?,
            end: time(end)?,
        };
        if window.start >= window.end {
            return Err(format!("{text:?}: the window must end after it starts"));
        }
        Ok(window)
    }
}

/// The rules of one script at one organisation.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub time_zone: Tz,
    /// Monday first.
    pub workdays: [bool; 7],
    pub holidays: Holidays,
    /// Call windows per weekday, Monday first, each sorted and not
    /// overlapping.
    pub windows: [Vec<Window>; 7],
}

impl Calendar {
    /// Whether a call may start at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        self.window_at(at).is_some()
    }

    /// When the window holding `at` closes, or `None` when `at` is outside
    /// every window.
    pub fn window_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&self.time_zone).date_naive();
        // A window of the previous local day cannot reach into this one
        // (windows end within their day), so today's windows suffice.
        self.windows_of(local)
            .into_iter()
            .find(|(start, end)| *start <= at && at < *end)
            .map(|(_, end)| end)
    }

    /// The first instant at or after `from` when a call may start, within
    /// about a year; `None` if there is none (no workday has a window).
    pub fn next_open(&self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first_day = from.with_timezone(&self.time_zone).date_naive();
        (0..LOOKAHEAD_DAYS)
            .filter_map(|n| first_day.checked_add_days(Days::new(n)))
            .flat_map(|day| self.windows_of(day))
            .find(|(_, end)| *end > from)
            .map(|(start, _)| start.max(from))
    }

    /// The windows of a local day as UTC spans (empty on holidays and days
    /// off).
    fn windows_of(&self, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let weekday = day.weekday().num_days_from_monday() as usize;
        if !self.workdays[weekday] || self.holidays.contains(day) {
            return Vec::new();
        }
        self.windows[weekday]
            .iter()
            .filter_map(|w| {
                let start = self.instant(day.and_time(w.start))?;
                let end = self.instant(day.and_time(w.end))?;
                (start < end).then_some((start, end))
            })
            .collect()
    }

    /// The instant of a local time: the earlier one when it happens twice,
    /// the first existing minute after it when it does not exist.
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut probe = local;
        for _ in 0..=180 {
            match self.time_zone.from_local_datetime(&probe) {
                LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
                LocalResult::None => probe += chrono::Duration::minutes(1),
            }
        }
        None
    }
}

/// Monday to Friday.
pub const WEEKDAYS: [bool; 7] = [true, true, true, true, true, false, false];

/// The same windows on every weekday.
pub fn every_day(windows: &[Window]) -> [Vec<Window>; 7] {
    std::array::from_fn(|_| windows.to_vec())
}

/// `Weekday` as an index, Monday first.
pub fn index(day: Weekday) -> usize {
    day.num_days_from_monday() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn amsterdam(windows: &[Window]) -> Calendar {
        Calendar {
            time_zone: chrono_tz::Europe::Amsterdam,
            workdays: WEEKDAYS,
            holidays: Holidays::default(),
            windows: every_day(windows),
        }
    }

    fn nine_to_five() -> Calendar {
        amsterdam(&[Window {
            start: t(9, 0),
            end: t(17, 0),
        }])
    }

    #[test]
    fn open_inside_the_window_in_local_time() {
        let c = nine_to_five();
        // Winter: Amsterdam is UTC+1.
        assert!(!c.is_open(utc("2026-01-13T07:59:00Z")));
        assert!(c.is_open(utc("2026-01-13T08:00:00Z")));
        assert!(c.is_open(utc("2026-01-13T15:59:59Z")));
        assert!(
            !c.is_open(utc("2026-01-13T16:00:00Z")),
            "the end is excluded"
        );
        // Summer: UTC+2.
        assert!(c.is_open(utc("2026-07-14T07:00:00Z")));
        assert!(!c.is_open(utc("2026-07-14T15:00:00Z")));
        assert_eq!(
            c.window_at(utc("2026-07-14T10:00:00Z")),
            Some(utc("2026-07-14T15:00:00Z"))
        );
    }

    #[test]
    fn weekends_and_holidays_are_closed_and_skipped() {
        let mut c = nine_to_five();
        c.holidays.yearly.insert((12, 25));
        c.holidays
            .dates
            .insert(NaiveDate::from_ymd_opt(2026, 12, 28).expect("date"));
        // Friday 2026-12-25 is a holiday, then the weekend, then Monday the
        // 28th is a one-off holiday: next open is Tuesday 09:00 local.
        assert!(!c.is_open(utc("2026-12-25T10:00:00Z")));
        assert_eq!(
            c.next_open(utc("2026-12-24T16:30:00Z")),
            Some(utc("2026-12-29T08:00:00Z"))
        );
        // Yearly: also in 2028 (a Monday).
        assert!(!c.is_open(utc("2028-12-25T10:00:00Z")));
    }

    #[test]
    fn next_open_is_now_inside_a_window_and_the_next_window_otherwise() {
        let c = amsterdam(&[
            Window {
                start: t(9, 0),
                end: t(12, 0),
            },
            Window {
                start: t(13, 0),
                end: t(17, 0),
            },
        ]);
        let now = utc("2026-01-13T09:30:00Z");
        assert_eq!(c.next_open(now), Some(now));
        // Lunch break: 12:30 local → 13:00 local.
        assert_eq!(
            c.next_open(utc("2026-01-13T11:30:00Z")),
            Some(utc("2026-01-13T12:00:00Z"))
        );
    }

    #[test]
    fn a_window_across_the_spring_change_loses_the_missing_hour() {
        // 2026-03-29 is a Sunday; make every day a workday for this test.
        let mut c = amsterdam(&[Window {
            start: t(1, 0),
            end: t(4, 0),
        }]);
        c.workdays = [true; 7];
        // 01:00 CET = 00:00Z; 04:00 CEST = 02:00Z: two real hours.
        let start = c.next_open(utc("2026-03-28T23:30:00Z"));
        assert_eq!(start, Some(utc("2026-03-29T00:00:00Z")));
        assert_eq!(
            c.window_at(utc("2026-03-29T00:30:00Z")),
            Some(utc("2026-03-29T02:00:00Z"))
        );
        // A window starting in the skipped hour starts when the clock resumes.
        let c = Calendar {
            windows: every_day(&[Window {
                start: t(2, 30),
                end: t(5, 0),
            }]),
            ..c
        };
        assert_eq!(
            c.next_open(utc("2026-03-28T23:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z")),
            "03:00 CEST"
        );
    }

    #[test]
    fn a_window_across_the_autumn_change_gains_the_repeated_hour() {
        let mut c = amsterdam(&[Window {
            start: t(1, 0),
            end: t(4, 0),
        }]);
        c.workdays = [true; 7];
        // 2026-10-25: 01:00 CEST = 23:00Z the day before; 04:00 CET = 03:00Z.
        assert_eq!(
            c.next_open(utc("2026-10-24T22:00:00Z")),
            Some(utc("2026-10-24T23:00:00Z"))
        );
        assert_eq!(
            c.window_at(utc("2026-10-25T01:30:00Z")),
            Some(utc("2026-10-25T03:00:00Z")),
            "four real hours"
        );
    }

    #[test]
    fn no_window_at_all_means_never() {
        let c = amsterdam(&[]);
        assert_eq!(c.next_open(utc("2026-01-13T09:30:00Z")), None);
        assert_eq!(index(Weekday::Sun), 6);
    }
}
