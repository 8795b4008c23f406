//! The validation report of an import pass: counts, and the issues of the
//! rows as `{row, column, reason}` (row = the line the row starts on, the
//! header being line 1, as [`ImportIssue::line`]). It is printed by
//! `dialcast import --json` and stored with the import.
//!
//! At most [`MAX_LISTED_ISSUES`] errors and as many warnings are listed, so
//! that a report of a million bad rows stays small; `errors_total` and
//! `warnings_total` count them all.

use serde::Serialize;

use crate::import::ImportIssue;
use crate::store::{Id, ImportStatus};

/// Errors (and, separately, warnings) listed in a report at most.
pub const MAX_LISTED_ISSUES: usize = 1000;

/// One problem of one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The line the row starts on (header = 1).
    pub row: u64,
    /// The column (upper case), when the issue is about one.
    pub column: Option<String>,
    pub reason: String,
}

impl From<ImportIssue> for Issue {
    fn from(issue: ImportIssue) -> Issue {
        Issue {
            row: issue.line,
            column: issue.field,
            reason: issue.message,
        }
    }
}

/// What a pass found (and, once published, did).
#[derive(Clone, Debug, Serialize)]
pub struct ValidationReport {
    pub import_id: Id,
    /// The import's status after the command.
    pub status: ImportStatus,
    pub file: String,
    pub campaign: String,
    pub script: String,
    /// Data rows read (rows whose cells are all empty are not counted).
    pub records: u64,
    /// Rows that pass and are new to the campaign.
    pub will_import: u64,
    /// Rows that fail (see `errors`); never imported.
    pub will_fail: u64,
    /// Records added to the campaign (0 unless the import finished).
    pub inserted: u64,
    /// `duplicates_in_file` + `already_in_campaign`.
    pub duplicates: u64,
    /// Rows repeating a RECORD_ID of an earlier row: failing rows.
    pub duplicates_in_file: u64,
    /// Rows whose RECORD_ID the campaign already has: skipped (the stored
    /// record is kept), reported as warnings.
    pub already_in_campaign: u64,
    /// Numbers discarded because they are on the organisation's blocklist.
    pub blocklisted: u64,
    /// Records left without a number by the blocklist: stored `blocked`.
    pub blocked_records: u64,
    /// Phone cells that are not valid numbers (left out, never dialled).
    pub invalid_numbers: u64,
    /// Records without any valid number: stored `invalid_number`.
    pub without_valid_number: u64,
    /// Why rows fail, at most [`MAX_LISTED_ISSUES`].
    pub errors: Vec<Issue>,
    pub errors_total: u64,
    /// What was noticed without failing a row, at most [`MAX_LISTED_ISSUES`].
    pub warnings: Vec<Issue>,
    pub warnings_total: u64,
    /// The pass's wall time.
    pub seconds: f64,
}

impl ValidationReport {
    pub fn new(import_id: Id, file: &str, campaign: &str, script: &str) -> ValidationReport {
        ValidationReport {
            import_id,
            status: ImportStatus::Uploaded,
            file: file.to_owned(),
            campaign: campaign.to_owned(),
            script: script.to_owned(),
            records: 0,
            will_import: 0,
            will_fail: 0,
            inserted: 0,
            duplicates: 0,
            duplicates_in_file: 0,
            already_in_campaign: 0,
            blocklisted: 0,
            blocked_records: 0,
            invalid_numbers: 0,
            without_valid_number: 0,
            errors: Vec::new(),
            errors_total: 0,
            warnings: Vec::new(),
            warnings_total: 0,
            seconds: 0.0,
        }
    }

    /// A failing row and its issues.
    pub fn fail_row(&mut self, errors: impl IntoIterator<Item = Issue>) {
        self.will_fail += 1;
        for issue in errors {
            self.errors_total += 1;
            if self.errors.len() < MAX_LISTED_ISSUES {
                self.errors.push(issue);
            }
        }
    }

    pub fn warn(&mut self, issue: Issue) {
        self.warnings_total += 1;
        if self.warnings.len() < MAX_LISTED_ISSUES {
            self.warnings.push(issue);
        }
    }

    /// Adds the counts and issues of part of the file (checked elsewhere).
    pub fn absorb(&mut self, part: ValidationReport) {
        self.records += part.records;
        self.will_fail += part.will_fail;
        self.duplicates += part.duplicates;
        self.duplicates_in_file += part.duplicates_in_file;
        self.already_in_campaign += part.already_in_campaign;
        self.blocklisted += part.blocklisted;
        self.blocked_records += part.blocked_records;
        self.invalid_numbers += part.invalid_numbers;
        self.without_valid_number += part.without_valid_number;
        self.errors_total += part.errors_total;
        self.warnings_total += part.warnings_total;
        let room = MAX_LISTED_ISSUES.saturating_sub(self.errors.len());
        self.errors.extend(part.errors.into_iter().take(room));
        let room = MAX_LISTED_ISSUES.saturating_sub(self.warnings.len());
        self.warnings.extend(part.warnings.into_iter().take(room));
    }

    /// Every issue as `file:row: COLUMN: reason`, errors first.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.errors
            .iter()
            .chain(&self.warnings)
            .map(move |issue| match &issue.column {
                Some(column) => format!("{}:{}: {column}: {}", self.file, issue.row, issue.reason),
                None => format!("{}:{}: {}", self.file, issue.row, issue.reason),
            })
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        format!(
            "import {} of {} ({}): {} rows, {} to import, {} failing, {} added to campaign {} \
             ({} duplicates, {} blocklisted numbers, {} invalid numbers, {} warnings)",
            self.import_id,
            self.file,
            self.status.as_str(),
            self.records,
            self.will_import,
            self.will_fail,
            self.inserted,
            self.campaign,
            self.duplicates,
            self.blocklisted,
            self.invalid_numbers,
            self.warnings_total
        )
    }
}
