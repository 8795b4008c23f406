//! What is counted: the colour class of a call status, the 5-minute bucket
//! of an instant, the counter names stored per bucket, and [`Counters`],
//! the typed view of one bucket (or of a sum of buckets). Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::EpochMs;

/// Length of a statistics bucket.
pub const BUCKET_MS: EpochMs = 5 * 60 * 1000;

/// The bucket holding `at`: UTC milliseconds floored to 5 minutes.
pub fn bucket_start(at: EpochMs) -> EpochMs {
    at - at.rem_euclid(BUCKET_MS)
}

/// Length of a day rollup of the buckets (a UTC day).
pub const DAY_MS: EpochMs = 86_400_000;

/// The UTC day holding `at`, as the store's day rollups key it.
pub fn day_start(at: EpochMs) -> EpochMs {
    at - at.rem_euclid(DAY_MS)
}

/// How the buckets overlapping a period are read: whole UTC days inside it
/// from the day rollups, the partial days at its two ends bucket by bucket.
/// Every bucket of the period is in exactly one of the three parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DaySplit {
    /// Buckets starting in `[head.0, head.1)`.
    pub head: (EpochMs, EpochMs),
    /// Day rollups starting in `[days.0, days.1)` (empty when equal).
    pub days: (EpochMs, EpochMs),
    /// Buckets starting in `[tail.0, tail.1)` (empty when equal).
    pub tail: (EpochMs, EpochMs),
}

impl DaySplit {
    /// The split of the buckets overlapping `[from, to)`: those starting
    /// from `bucket_start(from)` up to (not including) `to`.
    pub fn of(from: EpochMs, to: EpochMs) -> DaySplit {
        let first = bucket_start(from);
        let first_day = day_start(first.saturating_add(DAY_MS - 1));
        let last_day = day_start(to);
        if first_day >= last_day {
            return DaySplit {
                head: (first, to),
                days: (first_day, first_day),
                tail: (to, to),
            };
        }
        DaySplit {
            head: (first, first_day),
            days: (first_day, last_day),
            tail: (last_day, to),
        }
    }
}

/// Dashboard colour of an ended attempt (formats README, "Call statuses").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Colour {
    /// Delivered: success, forwarded, voicemail with a message left.
    Green,
    /// Not reached (retried while attempts are left): no_answer, busy,
    /// rejected, unavailable, answered_no_success.
    Yellow,
    /// The number is wrong: invalid_number.
    Red,
    /// None of the above (voicemail without a message, blocked, failed,
    /// interrupted, or a status this version does not know), so that the
    /// colours add up to the attempts.
    Other,
}

impl Colour {
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Red => "red",
            Colour::Other => "other",
        }
    }

    /// The colour of `status`; `voicemail_left` tells a voicemail with a
    /// message from one without.
    pub fn of(status: &str, voicemail_left: bool) -> Colour {
        match status {
            "success" | "forwarded" => Colour::Green,
            "voicemail" if voicemail_left => Colour::Green,
            "no_answer" | "busy" | "rejected" | "unavailable" | "answered_no_success" => {
                Colour::Yellow
            }
            "invalid_number" => Colour::Red,
            _ => Colour::Other,
        }
    }
}

/// Stored counter names. Each bucket holds one row per counter that is
/// not zero.
pub mod name {
    /// Ended attempts, undialled reports (`invalid_number`, `blocked`) included.
    pub const ATTEMPTS: &str = "attempts";
    /// Ended attempts that were really dialled.
    pub const DIALLED: &str = "dialled";
    /// Prefix of the colour counters (`colour.green`, ...).
    pub const COLOUR: &str = "colour.";
    /// Prefix of the per-status counters (`status.busy`, ...).
    pub const STATUS: &str = "status.";
    /// Voicemails with a message left (also in `colour.green`).
    pub const VOICEMAIL_LEFT: &str = "voicemail_left";
    /// Records that got their final status from an attempt of this bucket.
    pub const RECORDS_DONE: &str = "records_done";
    /// Records stored by an import (whatever their services).
    pub const RECORDS_IMPORTED: &str = "records_imported";
    /// Inbound calls matched to a record of the campaign.
    pub const INBOUND: &str = "inbound";
    /// Calls forwarded to a person.
    pub const FORWARDS: &str = "forwards";
    /// Callbacks made.
    pub const CALLBACKS: &str = "callbacks";
    /// Prefix of records imported per service (`imported.voice`, ...).
    pub const IMPORTED: &str = "imported.";
}

/// Services whose imported records are counted.
pub const SERVICES: [&str; 3] = ["voice", "sms", "email"];

/// The counters of one bucket or of a sum of buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Ended attempts, undialled reports included; the colours add up to it.
    pub attempts: u64,
    pub dialled: u64,
    pub green: u64,
    pub yellow: u64,
    pub red: u64,
    pub other: u64,
    pub voicemail_left: u64,
    /// Ended attempts per call status.
    pub statuses: BTreeMap<String, u64>,
    pub records_done: u64,
    pub records_imported: u64,
    pub inbound: u64,
    pub forwards: u64,
    pub callbacks: u64,
    /// Records imported per service (`voice`, `sms`, `email`).
    pub imported: BTreeMap<String, u64>,
}

impl Counters {
    /// Adds `n` to the counter stored as `counter`. Names this version
    /// does not know are ignored (a newer writer may add some).
    pub fn add(&mut self, counter: &str, n: u64) {
        if let Some(status) = counter.strip_prefix(name::STATUS) {
            *self.statuses.entry(status.to_owned()).or_default() += n;
            return;
        }
        if let Some(service) = counter.strip_prefix(name::IMPORTED) {
            *self.imported.entry(service.to_owned()).or_default() += n;
            return;
        }
        let field = match counter {
            name::ATTEMPTS => &mut self.attempts,
            name::DIALLED => &mut self.dialled,
            "colour.green" => &mut self.green,
            "colour.yellow" => &mut self.yellow,
            "colour.red" => &mut self.red,
            "colour.other" => &mut self.other,
            name::VOICEMAIL_LEFT => &mut self.voicemail_left,
            name::RECORDS_DONE => &mut self.records_done,
            name::RECORDS_IMPORTED => &mut self.records_imported,
            name::INBOUND => &mut self.inbound,
            name::FORWARDS => &mut self.forwards,
            name::CALLBACKS => &mut self.callbacks,
            _ => return,
        };
        *field += n;
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Counters) {
        for (counter, n) in other.named() {
            self.add(&counter, n);
        }
    }

    /// The counters that are not zero, by stored name.
    pub fn named(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = [
            (name::ATTEMPTS, self.attempts),
            (name::DIALLED, self.dialled),
            ("colour.green", self.green),
            ("colour.yellow", self.yellow),
            ("colour.red", self.red),
            ("colour.other", self.other),
            (name::VOICEMAIL_LEFT, self.voicemail_left),
            (name::RECORDS_DONE, self.records_done),
            (name::RECORDS_IMPORTED, self.records_imported),
            (name::INBOUND, self.inbound),
            (name::FORWARDS, self.forwards),
            (name::CALLBACKS, self.callbacks),
        ]
        .into_iter()
        .map(|(counter, n)| (counter.to_owned(), n))
        .collect();
        out.extend(
            self.statuses
                .iter()
                .map(|(s, n)| (format!("{}{s}", name::STATUS), *n)),
        );
        out.extend(
            self.imported
                .iter()
                .map(|(s, n)| (format!("{}{s}", name::IMPORTED), *n)),
        );
        out.retain(|(_, n)| *n > 0);
        out
    }

    /// `n` ended attempts of `status`.
    pub fn attempts_ended(status: &str, voicemail_left: bool, dialled: bool, n: u64) -> Counters {
        let mut c = Counters::default();
        c.add(name::ATTEMPTS, n);
        if dialled {
            c.add(name::DIALLED, n);
        }
        let colour = Colour::of(status, voicemail_left);
        c.add(&format!("{}{}", name::COLOUR, colour.as_str()), n);
        c.add(&format!("{}{status}", name::STATUS), n);
        if status == "voicemail" && voicemail_left {
            c.add(name::VOICEMAIL_LEFT, n);
        }
        c
    }
}

/// Events counted outside an attempt's end. The code that commits one
/// counts it in the same transaction with
/// `store::sqlite::count_event(&mut tx, campaign, at, event)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsEvent {
    /// An inbound call matched to a record of the campaign.
    InboundMatched,
    /// A call forwarded to a person.
    Forwarded,
    /// A callback made.
    CalledBack,
}

impl StatsEvent {
    /// The counter it adds to.
    pub fn counter(self) -> &'static str {
        match self {
            StatsEvent::InboundMatched => name::INBOUND,
            StatsEvent::Forwarded => name::FORWARDS,
            StatsEvent::CalledBack => name::CALLBACKS,
        }
    }
}

/// What one import adds to the statistics: records per service and the
/// undialled reports (`invalid_number`, `blocked`), all counted in the
/// bucket of the import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportTally {
    counters: Counters,
}

impl ImportTally {
    /// A record stored by the import, with its `SERVICES_*` fields: voice
    /// unless `SERVICES_VOICE` is `N`, SMS and e-mail when `Y`.
    pub fn record(&mut self, fields: &BTreeMap<String, String>) {
        let flag = |key: &str| fields.get(key).map(String::as_str);
        self.counters.add(name::RECORDS_IMPORTED, 1);
        if flag("SERVICES_VOICE") != Some("N") {
            self.counters.add("imported.voice", 1);
        }
        if flag("SERVICES_SMS") == Some("Y") {
            self.counters.add("imported.sms", 1);
        }
        if flag("SERVICES_EMAIL") == Some("Y") {
            self.counters.add("imported.email", 1);
        }
    }

    /// A record reported with `status` without a call: an ended, undialled
    /// attempt that also finishes the record.
    pub fn undialled(&mut self, status: &str) {
        self.counters
            .merge(&Counters::attempts_ended(status, false, false, 1));
        self.counters.add(name::RECORDS_DONE, 1);
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bucket of a period lands in exactly one part of its split, and
    /// the days part holds whole days only.
    #[test]
    fn day_split_covers_each_bucket_once() {
        let h = 3_600_000;
        let base = 1_796_515_200_000; // 2026-12-06T00:00:00Z
        let cases = [
            (base, base + DAY_MS),
            (base + 7 * h + 1, base + 3 * DAY_MS + 2 * h),
            (base - 1, base + DAY_MS + 1),
            (base + 5 * h, base + 9 * h),
            (base + h, base + DAY_MS),
            (base - 40 * DAY_MS + 3, base),
            (-DAY_MS - 7, 3 * BUCKET_MS),
            (base, base),
        ];
        for (from, to) in cases {
            let split = DaySplit::of(from, to);
            assert_eq!(split.days.0.rem_euclid(DAY_MS), 0, "{from}..{to}");
            assert_eq!(split.days.1.rem_euclid(DAY_MS), 0, "{from}..{to}");
            let mut b = bucket_start(from) - 2 * BUCKET_MS;
            while b < to + 2 * BUCKET_MS {
                let wanted = b >= bucket_start(from) && b < to;
                let inside = |(a, z): (EpochMs, EpochMs)| b >= a && b < z;
                let parts = [inside(split.head), inside(split.days), inside(split.tail)];
                let times = parts.iter().filter(|p| **p).count();
                assert_eq!(
                    times,
                    usize::from(wanted),
                    "bucket {b} of {from}..{to}: {parts:?}"
                );
                if inside(split.days) {
                    // A day rollup counts its whole day: all of it must be wanted.
                    let day = day_start(b);
                    assert!(
                        day >= bucket_start(from) && day + DAY_MS <= to,
                        "bucket {b} of {from}..{to}: day not whole"
                    );
                }
                b += BUCKET_MS;
            }
        }
    }

    #[test]
    fn buckets_are_five_minutes_of_utc() {
        assert_eq!(bucket_start(0), 0);
        assert_eq!(bucket_start(299_999), 0);
        assert_eq!(bucket_start(300_000), 300_000);
        assert_eq!(bucket_start(1_700_000_123_456), 1_700_000_100_000);
        assert_eq!(bucket_start(-1), -300_000);
    }

    #[test]
    fn colours_follow_the_formats_readme() {
        for s in ["success", "forwarded"] {
            assert_eq!(Colour::of(s, false), Colour::Green, "{s}");
        }
        assert_eq!(Colour::of("voicemail", true), Colour::Green);
        assert_eq!(Colour::of("voicemail", false), Colour::Other);
        for s in [
            "no_answer",
            "busy",
            "rejected",
            "unavailable",
            "answered_no_success",
        ] {
            assert_eq!(Colour::of(s, false), Colour::Yellow, "{s}");
        }
        assert_eq!(Colour::of("invalid_number", false), Colour::Red);
        for s in ["blocked", "failed", "interrupted", "something_new"] {
            assert_eq!(Colour::of(s, false), Colour::Other, "{s}");
        }
    }

    #[test]
    fn names_round_trip() {
        let mut c = Counters::attempts_ended("voicemail", true, true, 2);
        c.merge(&Counters::attempts_ended("busy", false, true, 3));
        c.add(name::INBOUND, 1);
        c.add("imported.sms", 4);
        c.add("not_a_counter", 9);
        assert_eq!((c.attempts, c.dialled, c.green, c.yellow), (5, 5, 2, 3));
        assert_eq!(c.voicemail_left, 2);
        assert_eq!(c.statuses.get("busy"), Some(&3));
        let mut again = Counters::default();
        for (counter, n) in c.named() {
            again.add(&counter, n);
        }
        assert_eq!(again, c);
        assert!(c.named().iter().all(|(_, n)| *n > 0));
    }

    #[test]
    fn an_import_counts_services_and_undialled_reports() {
        let fields = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let mut tally = ImportTally::default();
        tally.record(&fields(&[]));
        tally.record(&fields(&[("SERVICES_VOICE", "N"), ("SERVICES_SMS", "Y")]));
        tally.record(&fields(&[("SERVICES_EMAIL", "Y"), ("SERVICES_SMS", "N")]));
        tally.undialled("invalid_number");
        let c = tally.counters();
        assert_eq!(c.imported.get("voice"), Some(&2));
        assert_eq!(c.imported.get("sms"), Some(&1));
        assert_eq!(c.imported.get("email"), Some(&1));
        assert_eq!(c.records_imported, 3);
        assert_eq!((c.attempts, c.dialled, c.red, c.records_done), (1, 0, 1, 1));
    }
}
