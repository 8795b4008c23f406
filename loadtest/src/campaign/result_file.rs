//! Reading the engine's result file (`results_<script>_<day>.csv`, the layout
//! of the shared formats README: `;`-separated, a header row, one row per
//! record with `CALLRESULTS_CALL_n_*` groups). The benchmark takes each
//! record's first call: its status and its talk time, which the bare dialer
//! then holds for the same record.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The first call of one record, as the engine reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRow {
    pub status: String,
    pub talk_s: f64,
}

/// Record id → its first call.
pub type CallRows = HashMap<String, CallRow>;

/// Parses the text of a result file. Cells are never quoted in what the
/// benchmark imports (ids, numbers and statuses hold no `;` or `"`); a row
/// with a quote is rejected rather than misread.
pub fn parse(text: &str) -> anyhow::Result<CallRows> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("the result file is empty")?
        .split(';')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("the result file has no {name} column"))
    };
    let id = column("IDENTIFICATION_RECORD_ID")?;
    let status = column("CALLRESULTS_CALL_1_STATUS")?;
    let talk = column("CALLRESULTS_CALL_1_TALK_S")?;
    let mut rows = HashMap::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        anyhow::ensure!(
            !line.contains('"'),
            "result file line {}: quoted cells are not expected",
            n + 2
        );
        let cells: Vec<&str> = line.split(';').collect();
        let cell = |i: usize| cells.get(i).map_or("", |c| c.trim());
        rows.insert(
            cell(id).to_string(),
            CallRow {
                status: cell(status).to_string(),
                talk_s: cell(talk).parse().unwrap_or(0.0),
            },
        );
    }
    Ok(rows)
}

/// The finished result file in `dir` (`results_*.csv`, not a `.partial`),
/// if one is there yet.
pub fn find(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        name.is_some_and(|n| n.starts_with("results_") && n.ends_with(".csv"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_talk_time_of_the_first_call() {
        let text = "IDENTIFICATION_RECORD_ID;IDENTIFICATION_CLIENT_REFERENCE;\
CALLRESULTS_CALL_1_STARTED_AT;CALLRESULTS_CALL_1_NUMBER;CALLRESULTS_CALL_1_DIRECTION;\
CALLRESULTS_CALL_1_STATUS;CALLRESULTS_CALL_1_SIP_CODE;CALLRESULTS_CALL_1_RING_S;\
CALLRESULTS_CALL_1_TALK_S\r\n\
LT-000001;CR-10000;2026-11-22T10:00:00Z;+31610000001;out;success;200;1.0;12.3\r\n\
LT-000002;CR-10001;2026-11-22T10:00:01Z;+31612000001;out;busy;486;0.0;0.0\r\n";
        let rows = parse(text).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows["LT-000001"],
            CallRow {
                status: "success".into(),
                talk_s: 12.3
            }
        );
        assert_eq!(rows["LT-000002"].status, "busy");
    }

    #[test]
    fn a_file_without_the_columns_is_refused() {
        assert!(parse("A;B\r\n1;2\r\n").is_err());
        assert!(parse("").is_err());
    }
}
