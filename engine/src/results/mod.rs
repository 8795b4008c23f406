//! Result files: one per script per day, listing every record that had
//! activity that day, in the layout of `shared/formats/README.md` ("Result
//! file"). This module owns the row model ([`ResultRow`], [`CallResult`]),
//! the column layout, the file name ([`file_name`]) and two pure writers,
//! [`write_csv`] and [`write_xml`]; it reads nothing and knows nothing of
//! the store or of when files are written.
//!
//! # Columns
//!
//! `IDENTIFICATION_RECORD_ID`, `IDENTIFICATION_CLIENT_REFERENCE`, then for
//! each call n = 1.. (in call order) the [`CALL_FIELDS`] as
//! `CALLRESULTS_CALL_n_<FIELD>`, then `CUSTOMRESULTS_CUSTOM_n_{KEY,VALUE}`.
//! The header numbers calls up to the largest count of any row, and at
//! least 1, so an empty day (header only) and a day of rows without calls
//! still name the `CALLRESULTS_CALL_1_*` columns; custom groups go up to the
//! largest count of any row (none on an empty day). A row with fewer calls
//! or custom results leaves those cells empty.
//!
//! # Values
//!
//! `STARTED_AT` is RFC 3339 in UTC with whole seconds
//! (`2024-03-17T09:30:05Z`); `DIRECTION` is `out` or `in`; `RING_S` and
//! `TALK_S` are seconds with one decimal (`12.3`); flags are `Y` or `N`;
//! an absent value (no SIP code, no AMD result, no keys pressed, no
//! voicelog, no client reference, a duration that is not a number) is an
//! empty cell in CSV and a left-out element in XML.

mod csv;
mod xml;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

pub use self::csv::write_csv;
pub use self::xml::write_xml;

/// Which way a call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We called the record.
    Out,
    /// The record called us.
    In,
}

impl Direction {
    /// `out` or `in`, as written in result files.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

/// One call of a record, as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub started_at: DateTime<Utc>,
    /// The E.164 number dialled (or that called in).
    pub number: String,
    pub direction: Direction,
    /// A call status of the formats README, e.g. `success`, `no_answer`.
    pub status: String,
    pub sip_code: Option<u16>,
    pub ring_s: f64,
    pub talk_s: f64,
    pub success_point: bool,
    /// `human`, `machine`, `silence`, `fax` or `unknown`, when detected.
    pub amd: Option<String>,
    pub voicemail_left: bool,
    pub forwarded: bool,
    /// The keys pressed, in order; empty if none.
    pub dtmf: String,
    pub voicelog_id: Option<String>,
}

/// One record's activity on the day.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub record_id: String,
    pub client_reference: Option<String>,
    /// The day's calls in the order they started.
    pub calls: Vec<CallResult>,
    /// Script outputs `(key, value)`, e.g. a menu choice.
    pub custom: Vec<(String, String)>,
}

/// The identification section and its fields.
pub const IDENTIFICATION: &str = "IDENTIFICATION";
/// The section of call groups (`CALL_n`).
pub const CALLRESULTS: &str = "CALLRESULTS";
/// The section of custom groups (`CUSTOM_n`).
pub const CUSTOMRESULTS: &str = "CUSTOMRESULTS";

/// The fields of one `CALLRESULTS_CALL_n` group, in column order.
pub const CALL_FIELDS: [&str; 13] = [
    "STARTED_AT",
    "NUMBER",
    "DIRECTION",
    "STATUS",
    "SIP_CODE",
    "RING_S",
    "TALK_S",
    "SUCCESS_POINT",
    "AMD",
    "VOICEMAIL_LEFT",
    "FORWARDED",
    "DTMF",
    "VOICELOG_ID",
];

/// The fields of one `CUSTOMRESULTS_CUSTOM_n` group.
pub const CUSTOM_FIELDS: [&str; 2] = ["KEY", "VALUE"];

/// The identification fields, in column order.
pub const IDENTIFICATION_FIELDS: [&str; 2] = ["RECORD_ID", "CLIENT_REFERENCE"];

/// How many call and custom groups a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub calls: usize,
    pub custom: usize,
}

impl Layout {
    /// The groups for `rows`: the largest counts, with at least one call.
    pub fn of(rows: &[ResultRow]) -> Self {
        Layout {
            calls: rows
                .iter()
                .map(|row| row.calls.len())
                .max()
                .unwrap_or(0)
                .max(1),
            custom: rows.iter().map(|row| row.custom.len()).max().unwrap_or(0),
        }
    }

    /// Every column name, in order.
    pub fn header(&self) -> Vec<String> {
        let mut header: Vec<String> = IDENTIFICATION_FIELDS
            .iter()
            .map(|field| format!("{IDENTIFICATION}_{field}"))
            .collect();
        for n in 1..=self.calls {
            header.extend(
                CALL_FIELDS
                    .iter()
                    .map(|field| format!("{CALLRESULTS}_CALL_{n}_{field}")),
            );
        }
        for n in 1..=self.custom {
            header.extend(
                CUSTOM_FIELDS
                    .iter()
                    .map(|field| format!("{CUSTOMRESULTS}_CUSTOM_{n}_{field}")),
            );
        }
        header
    }
}

fn flag(value: bool) -> String {
    if value { "Y" } else { "N" }.to_owned()
}

/// Seconds with one decimal; `None` if not a finite number. Negative
/// durations are written as 0.0.
fn seconds(value: f64) -> Option<String> {
    value
        .is_finite()
        .then(|| format!("{:.1}", value.max(0.0) + 0.0))
}

fn present(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// A call's values in [`CALL_FIELDS`] order; `None` is absent.
pub(crate) fn call_values(call: &CallResult) -> [Option<String>; 13] {
    [
        Some(call.started_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        present(&call.number),
        Some(call.direction.as_str().to_owned()),
        present(&call.status),
        call.sip_code.map(|code| code.to_string()),
        seconds(call.ring_s),
        seconds(call.talk_s),
        Some(flag(call.success_point)),
        call.amd.as_deref().and_then(present),
        Some(flag(call.voicemail_left)),
        Some(flag(call.forwarded)),
        present(&call.dtmf),
        call.voicelog_id.as_deref().and_then(present),
    ]
}

/// The result file's name: `results_<script>_<YYYY-MM-DD>.<ext>`. The
/// script name keeps ASCII letters, digits, `-` and `_`; every other
/// character becomes `_` (an empty name becomes `script`), and it is cut to
/// [`MAX_SCRIPT_NAME_CHARS`]. The extension is cleaned the same way,
/// without its leading dot. Different scripts can map to the same name
/// (`a b`, `a_b`); callers that allow such names must tell them apart.
pub fn file_name(script: &str, day: NaiveDate, ext: &str) -> String {
    let script = match sanitise(script) {
        name if name.is_empty() => "script".to_owned(),
        name => name,
    };
    let ext = sanitise(ext.trim_start_matches('.'));
    format!("results_{script}_{}.{ext}", day.format("%Y-%m-%d"))
}

/// At most this many characters of the script name go into a file name.
pub const MAX_SCRIPT_NAME_CHARS: usize = 100;

fn sanitise(name: &str) -> String {
    name.trim()
        .chars()
        .take(MAX_SCRIPT_NAME_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A call at 2024-03-17 09:30:`second` UTC.
    pub(crate) fn call(second: u32, status: &str) -> CallResult {
        CallResult {
            started_at: Utc
                .with_ymd_and_hms(2024, 3, 17, 9, 30, second)
                .single()
                .expect("a valid time"),
            number: "+31201234567".to_owned(),
            direction: Direction::Out,
            status: status.to_owned(),
            sip_code: Some(200),
            ring_s: 4.26,
            talk_s: 31.0,
            success_point: status == "success",
            amd: Some("human".to_owned()),
            voicemail_left: false,
            forwarded: false,
            dtmf: "1#".to_owned(),
            voicelog_id: None,
        }
    }

    pub(crate) fn row(id: &str, calls: Vec<CallResult>) -> ResultRow {
        ResultRow {
            record_id: id.to_owned(),
            client_reference: None,
            calls,
            custom: Vec::new(),
        }
    }

    #[test]
    fn layout_counts_the_largest_groups_with_at_least_one_call() {
        assert_eq!(
            Layout::of(&[]),
            Layout {
                calls: 1,
                custom: 0
            }
        );
        let mut rows = vec![
            row("1", vec![]),
            row("2", vec![call(0, "busy"), call(9, "success")]),
        ];
        rows[0].custom = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
        assert_eq!(
            Layout::of(&rows),
            Layout {
                calls: 2,
                custom: 2
            }
        );
        let header = Layout {
            calls: 1,
            custom: 1,
        }
        .header();
        assert_eq!(header.len(), 2 + 13 + 2);
        assert_eq!(header[0], "IDENTIFICATION_RECORD_ID");
        assert_eq!(header[2], "CALLRESULTS_CALL_1_STARTED_AT");
        assert_eq!(header[14], "CALLRESULTS_CALL_1_VOICELOG_ID");
        assert_eq!(header[16], "CUSTOMRESULTS_CUSTOM_1_VALUE");
    }

    #[test]
    fn values_are_formatted_as_documented() {
        let values = call_values(&call(5, "success"));
        let text: Vec<&str> = values.iter().map(|v| v.as_deref().unwrap_or("")).collect();
        assert_eq!(
            text,
            [
                "2024-03-17T09:30:05Z",
                "+31201234567",
                "out",
                "success",
                "200",
                "4.3",
                "31.0",
                "Y",
                "human",
                "N",
                "N",
                "1#",
                ""
            ]
        );
        assert_eq!(seconds(f64::NAN), None);
        assert_eq!(seconds(f64::INFINITY), None);
        assert_eq!(seconds(-0.0).as_deref(), Some("0.0"));
        assert_eq!(seconds(-3.0).as_deref(), Some("0.0"));
        assert_eq!(seconds(0.05).as_deref(), Some("0.1"));
        assert_eq!(Direction::In.as_str(), "in");
    }

    #[test]
    fn file_names_are_safe() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 7).expect("a valid day");
        assert_eq!(
            file_name("reminder", day, "csv"),
            "results_reminder_2024-03-07.csv"
        );
        assert_eq!(
            file_name("Herinnering 1/2", day, ".xml"),
            "results_Herinnering_1_2_2024-03-07.xml"
        );
        assert_eq!(
            file_name("../../etc", day, "csv"),
            "results_______etc_2024-03-07.csv"
        );
        assert_eq!(file_name("  ", day, "csv"), "results_script_2024-03-07.csv");
        assert_eq!(file_name("café", day, "csv"), "results_caf__2024-03-07.csv");
        let long = file_name(&"x".repeat(500), day, "csv");
        assert_eq!(
            long.len(),
            "results__2024-03-07.csv".len() + MAX_SCRIPT_NAME_CHARS
        );
    }
}
