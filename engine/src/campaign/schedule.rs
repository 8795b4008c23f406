//! Whether a due record may be dialled now, and if not, until when it waits:
//! the organisation's calendar, the campaign's windows in the callee's local
//! time, the attempts per day, the rolling 7-day cap, the blocklist and the
//! order in which a record's numbers are tried. Pure: the store hands over a
//! [`Candidate`] and applies the [`Decision`] in the same transaction.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;

use super::calendar::{Calendar, Holidays, Window};
use super::callee_zone::callee_zones;
use super::weekly_cap;
use crate::store::{EpochMs, OrganisationCalendar, ScheduleSettings};

/// How far back a candidate's attempts are read: the 7-day cap's reach.
pub const LOOKBACK_MS: EpochMs = 7 * 24 * 3600 * 1000;

/// When a calendar never opens again, look again after this long.
const RECHECK_MS: EpochMs = 24 * 3600 * 1000;

/// A due record as the store sees it.
#[derive(Debug)]
pub struct Candidate<'a> {
    pub fields: &'a BTreeMap<String, String>,
    /// Dialable E.164 numbers as imported.
    pub phones: &'a [String],
    /// Attempts dialled so far.
    pub dialled: u32,
    /// When the record's dialled attempts of the last [`LOOKBACK_MS`] started.
    pub recent_starts: &'a [EpochMs],
    /// Which of its numbers are on the organisation's blocklist.
    pub blocked: &'a BTreeSet<String>,
}

/// What to do with a due record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Dial this number now.
    Dial { number: String },
    /// Not now: look again at `until`.
    Defer { until: EpochMs, why: DeferCause },
    /// Never: end the record with this status, undialled.
    Finish { status: &'static str },
}

/// Why a record waits (for logs and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeferCause {
    /// The organisation is closed (outside its windows, a day off, a holiday).
    Closed,
    /// It is too early or too late where the callee is.
    CalleeTime,
    /// The record had its attempts for today.
    DailyLimit,
    /// The record had its attempts for these 7 days.
    WeeklyCap,
}

/// A campaign's scheduling rules, ready to apply.
#[derive(Clone, Debug)]
pub struct DialRules {
    pub calendar: Calendar,
    pub max_per_day: u32,
    pub weekly_cap: u32,
    pub number_order: Vec<String>,
}

/// A setting that cannot be applied, naming what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    pub field: String,
    pub message: String,
}

fn schedule_error(field: impl Into<String>, message: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field: field.into(),
        message: message.into(),
    }
}

impl DialRules {
    /// The rules from what the store keeps.
    pub fn new(
        organisation: &OrganisationCalendar,
        schedule: &ScheduleSettings,
    ) -> Result<DialRules, ScheduleError> {
        Ok(DialRules {
            calendar: calendar(organisation, schedule)?,
            max_per_day: schedule.max_attempts_per_day,
            weekly_cap: schedule.weekly_cap,
            number_order: schedule.number_order.clone(),
        })
    }

    /// What to do with `candidate` at `now`.
    pub fn decide(&self, candidate: &Candidate<'_>, now: EpochMs) -> Decision {
        let numbers = self.numbers(candidate);
        if numbers.is_empty() {
            let status = if candidate.phones.is_empty() {
                "invalid_number"
            } else {
                "blocked"
            };
            return Decision::Finish { status };
        }
        let number = numbers[candidate.dialled as usize % numbers.len()].clone();
        let at = utc(now);

        let zones = callee_zones(candidate.fields, &number, self.calendar.time_zone);
        let callee: Vec<Calendar> = zones
            .iter()
            .filter(|zone| **zone != self.calendar.time_zone)
            .map(|zone| self.in_zone(*zone))
            .collect();
        if !self.calendar.is_open(at) {
            return self.defer(at, DeferCause::Closed, &callee);
        }
        if callee.iter().any(|c| !c.is_open(at)) {
            return self.defer(at, DeferCause::CalleeTime, &callee);
        }
        let starts: Vec<DateTime<Utc>> = candidate.recent_starts.iter().map(|t| utc(*t)).collect();
        let cap = self.weekly_cap as usize;
        if !weekly_cap::may_attempt(&starts, at, cap) {
            let allowed = weekly_cap::next_allowed(&starts, at, cap);
            return self.defer(allowed, DeferCause::WeeklyCap, &callee);
        }
        if self.max_per_day > 0 {
            let today = self.local_day(at);
            let today_count = starts
                .iter()
                .filter(|t| self.local_day(**t) == today)
                .count();
            if today_count >= self.max_per_day as usize {
                let tomorrow = self.start_of(today.checked_add_days(Days::new(1)));
                return self.defer(tomorrow, DeferCause::DailyLimit, &callee);
            }
        }
        Decision::Dial { number }
    }

    /// The record's numbers in the campaign's order, blocked ones left out:
    /// columns of `number_order` first, then any other dialable number.
    fn numbers(&self, candidate: &Candidate<'_>) -> Vec<String> {
        let dialable: BTreeSet<&str> = candidate.phones.iter().map(String::as_str).collect();
        let mut ordered: Vec<String> = Vec::new();
        let ordered_columns = self
            .number_order
            .iter()
            .filter_map(|column| candidate.fields.get(column));
        for number in ordered_columns.chain(candidate.phones.iter()) {
            if dialable.contains(number.as_str())
                && !candidate.blocked.contains(number)
                && !ordered.contains(number)
            {
                ordered.push(number.clone());
            }
        }
        ordered
    }

    /// Waits until the organisation and every callee calendar are open
    /// together, at or after `from`.
    fn defer(&self, from: DateTime<Utc>, why: DeferCause, callee: &[Calendar]) -> Decision {
        let until = first_common_opening(&self.calendar, callee, from)
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|| from.timestamp_millis().saturating_add(RECHECK_MS));
        Decision::Defer { until, why }
    }

    /// The same rules with the clock of `zone`.
    fn in_zone(&self, zone: Tz) -> Calendar {
        Calendar {
            time_zone: zone,
            ..self.calendar.clone()
        }
    }

    fn local_day(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.calendar.time_zone).date_naive()
    }

    /// Local midnight of `day` in the organisation's zone.
    fn start_of(&self, day: Option<NaiveDate>) -> DateTime<Utc> {
        day.and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|local| {
                self.calendar
                    .time_zone
                    .from_local_datetime(&local)
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The first instant at or after `from` when `organisation` and every
/// calendar of `callee` are open; `None` when they never meet within the
/// calendars' lookahead.
fn first_common_opening(
    organisation: &Calendar,
    callee: &[Calendar],
    from: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut at = from;
    // Each round moves `at` to the next opening of a closed calendar; they
    // agree within a few rounds unless their windows never overlap.
    for _ in 0..64 {
        let mut moved = false;
        for calendar in std::iter::once(organisation).chain(callee) {
            if !calendar.is_open(at) {
                at = calendar.next_open(at)?;
                moved = true;
            }
        }
        if !moved {
            return Some(at);
        }
    }
    None
}

fn utc(ms: EpochMs) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The organisation's days with the campaign's windows.
pub fn calendar(
    organisation: &OrganisationCalendar,
    schedule: &ScheduleSettings,
) -> Result<Calendar, ScheduleError> {
    let time_zone: Tz = organisation.time_zone.parse().map_err(|_| {
        schedule_error(
            "time_zone",
            format!(
                "{:?} is not an IANA time zone such as Europe/Amsterdam",
                organisation.time_zone
            ),
        )
    })?;
    let mut holidays = Holidays::default();
    for text in &organisation.holidays {
        let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| schedule_error("holidays", format!("{text:?}: expected YYYY-MM-DD")))?;
        holidays.dates.insert(day);
    }
    for text in &organisation.yearly_holidays {
        let parsed = text
            .split_once('-')
            .and_then(|(m, d)| Some((m.parse::<u32>().ok()?, d.parse::<u32>().ok()?)))
            .filter(|(m, d)| NaiveDate::from_ymd_opt(2024, *m, *d).is_some());
        let (month, day) = parsed.ok_or_else(|| {
            schedule_error("yearly_holidays", format!("{text:?}: expected MM-DD"))
        })?;
        holidays.yearly.insert((month, day));
    }
    let mut windows: [Vec<Window>; 7] = std::array::from_fn(|_| Vec::new());
    for (day, texts) in schedule.windows.iter().enumerate() {
        for text in texts {
            let window = Window::parse(text)
                .map_err(|e| schedule_error(format!("windows.{}", WEEKDAY_KEYS[day]), e))?;
            windows[day].push(window);
        }
        windows[day].sort_by_key(|w| w.start);
        if windows[day].windows(2).any(|w| w[0].end > w[1].start) {
            return Err(schedule_error(
                format!("windows.{}", WEEKDAY_KEYS[day]),
                "windows overlap",
            ));
        }
    }
    Ok(Calendar {
        time_zone,
        workdays: organisation.workdays,
        holidays,
        windows,
    })
}

/// Weekday keys as configured, Monday first.
pub const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> EpochMs {
        s.parse::<DateTime<Utc>>()
            .expect("RFC 3339")
            .timestamp_millis()
    }

    fn rules(windows: &[&str], per_day: u32) -> DialRules {
        let organisation = OrganisationCalendar {
            time_zone: "Europe/Amsterdam".to_string(),
            workdays: [true, true, true, true, true, false, false],
            holidays: vec!["2026-12-28".to_string()],
            yearly_holidays: vec!["12-25".to_string()],
        };
        let schedule = ScheduleSettings {
            windows: std::array::from_fn(|_| windows.iter().map(|w| w.to_string()).collect()),
            max_attempts_per_day: per_day,
            ..ScheduleSettings::default()
        };
        DialRules::new(&organisation, &schedule).expect("valid rules")
    }

    struct Record {
        fields: BTreeMap<String, String>,
        phones: Vec<String>,
        starts: Vec<EpochMs>,
        blocked: BTreeSet<String>,
        dialled: u32,
    }

    impl Record {
        fn dutch() -> Record {
            let mut fields = BTreeMap::new();
            fields.insert("CONTACT_PHONE_1".into(), "+31201234567".into());
            fields.insert("CONTACT_MOBILE".into(), "+31612345678".into());
            Record {
                fields,
                phones: vec!["+31201234567".into(), "+31612345678".into()],
                starts: Vec::new(),
                blocked: BTreeSet::new(),
                dialled: 0,
            }
        }

        fn candidate(&self) -> Candidate<'_> {
            Candidate {
                fields: &self.fields,
                phones: &self.phones,
                dialled: self.dialled,
                recent_starts: &self.starts,
                blocked: &self.blocked,
            }
        }
    }

    #[test]
    fn inside_the_window_the_first_number_is_dialled() {
        let r = rules(&["09:00-17:00"], 0);
        let d = r.decide(&Record::dutch().candidate(), utc("2026-01-13T09:00:00Z"));
        assert_eq!(
            d,
            Decision::Dial {
                number: "+31201234567".into()
            }
        );
    }

    #[test]
    fn attempts_go_round_the_numbers_in_the_configured_order() {
        let mut r = rules(&["09:00-17:00"], 0);
        r.number_order = vec!["CONTACT_MOBILE".into(), "CONTACT_PHONE_1".into()];
        let mut record = Record::dutch();
        let now = utc("2026-01-13T09:00:00Z");
        let dialled: Vec<Decision> = (0..3)
            .map(|n| {
                record.dialled = n;
                r.decide(&record.candidate(), now)
            })
            .collect();
        let numbers: Vec<&str> = dialled
            .iter()
            .map(|d| match d {
                Decision::Dial { number } => number.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(numbers, ["+31612345678", "+31201234567", "+31612345678"]);
    }

    #[test]
    fn outside_the_window_it_waits_for_the_next_opening_across_dst() {
        let r = rules(&["09:00-17:00"], 0);
        // Friday 2026-03-27 18:00 local (UTC+1): the weekend follows and DST
        // starts on Sunday the 29th, so Monday 09:00 local is 07:00 UTC.
        let d = r.decide(&Record::dutch().candidate(), utc("2026-03-27T17:00:00Z"));
        assert_eq!(
            d,
            Decision::Defer {
                until: utc("2026-03-30T07:00:00Z"),
                why: DeferCause::Closed
            }
        );
    }

    #[test]
    fn holidays_are_skipped() {
        let r = rules(&["09:00-17:00"], 0);
        // Thursday 24 December, after hours: the 25th (yearly) and the 28th
        // (one-off) are holidays, so Tuesday the 29th.
        let d = r.decide(&Record::dutch().candidate(), utc("2026-12-24T17:00:00Z"));
        assert_eq!(
            d,
            Decision::Defer {
                until: utc("2026-12-29T08:00:00Z"),
                why: DeferCause::Closed
            }
        );
    }

    #[test]
    fn the_callee_local_time_must_be_inside_the_window_too() {
        let r = rules(&["09:00-21:00"], 0);
        let mut record = Record::dutch();
        record.phones = vec!["+12025550123".into()];
        record.fields.clear();
        record
            .fields
            .insert("CONTACT_PHONE_1".into(), "+12025550123".into());
        // 10:00 in Amsterdam is 04:00 in New York and 23:00 (day before) in
        // Honolulu: not before 09:00 Honolulu = 19:00 UTC, which is 20:00 in
        // Amsterdam (inside its window) and 14:00 in New York.
        let d = r.decide(&record.candidate(), utc("2026-01-13T09:00:00Z"));
        assert_eq!(
            d,
            Decision::Defer {
                until: utc("2026-01-13T19:00:00Z"),
                why: DeferCause::CalleeTime
            }
        );
        // A record that names its zone is called in that zone's window.
        record
            .fields
            .insert("PERSON_TIME_ZONE".into(), "America/New_York".into());
        let d = r.decide(&record.candidate(), utc("2026-01-13T15:00:00Z"));
        assert!(matches!(d, Decision::Dial { .. }), "{d:?}");
    }

    #[test]
    fn the_daily_limit_waits_for_tomorrows_window() {
        let r = rules(&["09:00-17:00"], 2);
        let mut record = Record::dutch();
        record.starts = vec![utc("2026-01-13T08:10:00Z"), utc("2026-01-13T11:00:00Z")];
        record.dialled = 2;
        let d = r.decide(&record.candidate(), utc("2026-01-13T13:00:00Z"));
        assert_eq!(
            d,
            Decision::Defer {
                until: utc("2026-01-14T08:00:00Z"),
                why: DeferCause::DailyLimit
            }
        );
    }

    #[test]
    fn the_weekly_cap_holds_across_days() {
        let r = rules(&["00:00-24:00"], 0);
        let mut record = Record::dutch();
        // Seven attempts on Monday..Friday of one week, 2026-01-12..16.
        record.starts = (0..7)
            .map(|n| utc("2026-01-12T10:00:00Z") + n * 12 * 3600 * 1000)
            .collect();
        record.dialled = 7;
        let now = utc("2026-01-16T12:00:00Z");
        let d = r.decide(&record.candidate(), now);
        // The oldest leaves the 7 days on Monday the 19th at 10:00 UTC.
        assert_eq!(
            d,
            Decision::Defer {
                until: utc("2026-01-19T10:00:00Z"),
                why: DeferCause::WeeklyCap
            }
        );
    }

    #[test]
    fn blocked_numbers_are_skipped_and_a_fully_blocked_record_ends() {
        let r = rules(&["00:00-24:00"], 0);
        let mut record = Record::dutch();
        record.blocked.insert("+31201234567".into());
        let now = utc("2026-01-13T12:00:00Z");
        assert_eq!(
            r.decide(&record.candidate(), now),
            Decision::Dial {
                number: "+31612345678".into()
            }
        );
        record.blocked.insert("+31612345678".into());
        assert_eq!(
            r.decide(&record.candidate(), now),
            Decision::Finish { status: "blocked" }
        );
    }

    #[test]
    fn bad_settings_name_the_field() {
        let organisation = OrganisationCalendar {
            time_zone: "Europe/Nowhere".into(),
            ..OrganisationCalendar::default()
        };
        let err = DialRules::new(&organisation, &ScheduleSettings::default()).expect_err("zone");
        assert_eq!(err.field, "time_zone");
        let mut schedule = ScheduleSettings::default();
        schedule.windows[2] = vec!["09:00-12:00".into(), "11:00-13:00".into()];
        let err = DialRules::new(&OrganisationCalendar::default(), &schedule).expect_err("overlap");
        assert_eq!(err.field, "windows.wed");
        schedule.windows[2] = vec!["17:00-09:00".into()];
        let err = DialRules::new(&OrganisationCalendar::default(), &schedule).expect_err("order");
        assert!(err.message.contains("end after"), "{err}");
    }
}
