//! The statistics of one campaign over a period, as shown to people: each
//! share an absolute number with its percentage of the attempts beside it.
//! Pure: built from counters the store summed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::counters::Counters;
use super::range::Range;
use crate::store::EpochMs;

/// A count and its share of a whole, in percent with one decimal (0 when
/// the whole is 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Share {
    pub count: u64,
    pub percent: f64,
}

impl Share {
    pub fn of(count: u64, whole: u64) -> Share {
        let percent = if whole == 0 {
            0.0
        } else {
            (count as f64 * 1000.0 / whole as f64).round() / 10.0
        };
        Share { count, percent }
    }
}

/// Records of the campaign done (final status) against records imported,
/// as of the end of the period.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Completion {
    pub done: u64,
    pub records: u64,
    pub percent: f64,
}

/// One 5-minute bucket as listed by `dialcast stats --buckets`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketRow {
    /// RFC 3339 in UTC.
    pub start: String,
    pub start_ms: EpochMs,
    #[serde(flatten)]
    pub counters: Counters,
}

/// What `dialcast stats` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsReport {
    pub campaign: String,
    pub script: String,
    pub time_zone: String,
    /// The period, as local RFC 3339 times and as UTC milliseconds.
    pub from: String,
    pub to: String,
    pub from_ms: EpochMs,
    pub to_ms: EpochMs,
    /// Attempts that ended in the period (undialled reports included);
    /// the base of every percentage.
    pub attempts: u64,
    pub dialled: u64,
    /// Green: success, forwarded, voicemail with a message left.
    pub delivered: Share,
    /// Red: invalid_number.
    pub invalid: Share,
    /// Yellow: no_answer, busy, rejected, unavailable, answered_no_success.
    pub not_reached: Share,
    /// Neither: voicemail without a message, blocked, failed, interrupted.
    pub other: Share,
    /// Calls forwarded to a person.
    pub forwarded: Share,
    /// Callbacks made.
    pub called_back: Share,
    pub inbound: u64,
    pub voicemail_left: u64,
    /// Ended attempts per call status.
    pub statuses: BTreeMap<String, u64>,
    /// Records imported in the period, per service.
    pub imported: BTreeMap<String, u64>,
    pub voice_completed: Completion,
    /// The 5-minute buckets, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<BucketRow>>,
}

/// Names and the period's bounds for a report.
pub struct Period<'a> {
    pub campaign: &'a str,
    pub script: &'a str,
    pub time_zone: chrono_tz::Tz,
    pub range: Range,
}

impl StatsReport {
    /// The report of `period` from the counters summed over it and the
    /// counters summed from the campaign's start to the period's end.
    pub fn build(period: &Period<'_>, totals: &Counters, to_end: &Counters) -> StatsReport {
        let whole = totals.attempts;
        let records = to_end.records_imported;
        let local = |ms: EpochMs| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.with_timezone(&period.time_zone).to_rfc3339())
                .unwrap_or_default()
        };
        StatsReport {
            campaign: period.campaign.to_owned(),
            script: period.script.to_owned(),
            time_zone: period.time_zone.name().to_owned(),
            from: local(period.range.from),
            to: local(period.range.to),
            from_ms: period.range.from,
            to_ms: period.range.to,
            attempts: whole,
            dialled: totals.dialled,
            delivered: Share::of(totals.green, whole),
            invalid: Share::of(totals.red, whole),
            not_reached: Share::of(totals.yellow, whole),
            other: Share::of(totals.other, whole),
            forwarded: Share::of(totals.forwards, whole),
            called_back: Share::of(totals.callbacks, whole),
            inbound: totals.inbound,
            voicemail_left: totals.voicemail_left,
            statuses: totals.statuses.clone(),
            imported: totals.imported.clone(),
            voice_completed: Completion {
                done: to_end.records_done,
                records,
                percent: Share::of(to_end.records_done, records).percent,
            },
            buckets: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_round_to_one_decimal_and_survive_zero() {
        assert_eq!(Share::of(1, 3).percent, 33.3);
        assert_eq!(Share::of(2, 3).percent, 66.7);
        assert_eq!(Share::of(0, 0).percent, 0.0);
        assert_eq!(Share::of(5, 5).percent, 100.0);
    }

    #[test]
    fn a_report_puts_the_count_beside_each_percentage() {
        let mut totals = Counters::default();
        for (status, n) in [
            ("success", 3),
            ("busy", 4),
            ("invalid_number", 2),
            ("failed", 1),
        ] {
            totals.merge(&Counters::attempts_ended(
                status,
                false,
                status != "invalid_number",
                n,
            ));
        }
        totals.forwards = 1;
        totals.callbacks = 2;
        let mut to_end = totals.clone();
        to_end.records_done = 6;
        to_end.records_imported = 8;
        let report = StatsReport::build(
            &Period {
                campaign: "c",
                script: "s",
                time_zone: chrono_tz::Europe::Amsterdam,
                range: Range { from: 0, to: 1000 },
            },
            &totals,
            &to_end,
        );
        assert_eq!(report.attempts, 10);
        assert_eq!(report.dialled, 8);
        assert_eq!(
            report.delivered,
            Share {
                count: 3,
                percent: 30.0
            }
        );
        assert_eq!(
            report.not_reached,
            Share {
                count: 4,
                percent: 40.0
            }
        );
        assert_eq!(
            report.invalid,
            Share {
                count: 2,
                percent: 20.0
            }
        );
        assert_eq!(
            report.other,
            Share {
                count: 1,
                percent: 10.0
            }
        );
        assert_eq!(
            report.forwarded,
            Share {
                count: 1,
                percent: 10.0
            }
        );
        assert_eq!(
            report.called_back,
            Share {
                count: 2,
                percent: 20.0
            }
        );
        assert_eq!(
            report.voice_completed,
            Completion {
                done: 6,
                records: 8,
                percent: 75.0
            }
        );
        assert_eq!(report.from, "1970-01-01T01:00:00+01:00");
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["delivered"]["count"], 3);
        assert_eq!(json["delivered"]["percent"], 30.0);
        assert!(json.get("buckets").is_none());
    }
}
