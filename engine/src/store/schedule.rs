//! The scheduling settings the store keeps, as plain data: an organisation's
//! calendar and a campaign's call windows and retry policy. They are stored
//! as JSON so the portal can edit them; [`crate::campaign::schedule`] turns
//! them into the rules the dialer applies.

use serde::{Deserialize, Serialize};

/// Columns tried for a record, in this order, unless a campaign says
/// otherwise.
pub const DEFAULT_NUMBER_ORDER: [&str; 4] = [
    "CONTACT_PHONE_1",
    "CONTACT_PHONE_2",
    "CONTACT_PHONE_3",
    "CONTACT_MOBILE",
];

/// An organisation's days: its time zone, workdays and holidays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrganisationCalendar {
    /// IANA name, e.g. `Europe/Amsterdam`.
    pub time_zone: String,
    /// Monday first.
    pub workdays: [bool; 7],
    /// Holidays on one date only, `YYYY-MM-DD` (custom ones per year).
    pub holidays: Vec<String>,
    /// Holidays every year, `MM-DD`.
    pub yearly_holidays: Vec<String>,
}

impl Default for OrganisationCalendar {
    /// UTC, Monday to Friday, no holidays.
    fn default() -> Self {
        OrganisationCalendar {
            time_zone: "UTC".to_string(),
            workdays: [true, true, true, true, true, false, false],
            holidays: Vec::new(),
            yearly_holidays: Vec::new(),
        }
    }
}

impl OrganisationCalendar {
    /// Every day a workday, no holidays (demos and tests).
    pub fn every_day(time_zone: &str) -> OrganisationCalendar {
        OrganisationCalendar {
            time_zone: time_zone.to_string(),
            workdays: [true; 7],
            ..OrganisationCalendar::default()
        }
    }
}

/// When and how often a campaign calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Call windows per weekday, Monday first, each `HH:MM-HH:MM` in local
    /// time (start included, end excluded; `24:00` ends at midnight).
    pub windows: [Vec<String>; 7],
    /// Attempts per record per local day; 0 = no limit besides the total.
    pub max_attempts_per_day: u32,
    /// Dialled attempts per record in any rolling 7 days.
    pub weekly_cap: u32,
    /// Which number columns to try, in order; attempts go round them.
    pub number_order: Vec<String>,
    /// The campaign's normal rate (calls/s); `None`: the trunk's rate.
    pub cps: Option<u32>,
    /// Share of a trunk's pace against other campaigns on it (1 or more).
    pub priority: u32,
}

impl ScheduleSettings {
    /// Windows covering every hour of every day, no daily limit: for demos
    /// and tests. Production campaigns get their windows from the
    /// configuration, whose default is far narrower.
    pub fn around_the_clock() -> ScheduleSettings {
        ScheduleSettings {
            windows: std::array::from_fn(|_| vec!["00:00-24:00".to_string()]),
            max_attempts_per_day: 0,
            weekly_cap: 7,
            number_order: DEFAULT_NUMBER_ORDER.iter().map(|c| c.to_string()).collect(),
            cps: None,
            priority: 1,
        }
    }
}

impl Default for ScheduleSettings {
    /// Monday to Saturday 09:00–20:00 local time, two attempts a day, seven
    /// a week.
    fn default() -> Self {
        let mut windows: [Vec<String>; 7] = std::array::from_fn(|_| Vec::new());
        for day in windows.iter_mut().take(6) {
            day.push("09:00-20:00".to_string());
        }
        ScheduleSettings {
            windows,
            max_attempts_per_day: 2,
            weekly_cap: 7,
            number_order: DEFAULT_NUMBER_ORDER.iter().map(|c| c.to_string()).collect(),
            cps: None,
            priority: 1,
        }
    }
}
