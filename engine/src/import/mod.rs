//! Import files: reading a delivery file in the layout of
//! `shared/formats/README.md` into checked, normalised records. This module
//! owns the CSV reader ([`csv_rows`], [`read_csv`]), the table of standard
//! columns ([`columns`]), the value rules ([`normalise`]) and the issues it
//! reports; it does no I/O beyond reading from a [`std::io::Read`] and knows
//! nothing of the store.
//!
//! # What a file must look like
//!
//! UTF-8 (a leading BOM is skipped), RFC 4180 CSV with a header row; the
//! delimiter is `;` or `,`, whichever occurs more often outside quotes in the
//! first line (`;` on a tie). Column names are trimmed and matched
//! case-insensitively; the same name twice is an error.
//! `IDENTIFICATION_RECORD_ID` is required; `CONTROL_SCRIPT` too unless
//! [`ImportOptions::script`] names the script. Cells are trimmed; an empty
//! cell is an absent value. Rows whose cells are all empty are skipped.
//!
//! # What happens to a row
//!
//! - **Rejected** (not imported, reported in [`ImportReport::rejected`]): a
//!   wrong number of cells, a missing or repeated record id, no script, or a
//!   value of a standard column that cannot be read (amount, date, currency,
//!   language, country, `Y`/`N`; see [`normalise`]), or anything but `Y`/`N`
//!   in a custom `SERVICES_*` column. Custom columns are otherwise kept as
//!   written. Every such issue of the row is reported, not only the first.
//! - **Warnings** (row imported, reported in [`ImportReport::warnings`]): a
//!   phone number that does not parse or is not valid (it is left out of
//!   [`ImportedRecord::fields`] and [`ImportedRecord::phones`], kept in
//!   [`ImportedRecord::rejected_phones`]); no dialable number while voice is
//!   wanted (the record is marked [`ImportedRecord::invalid_number`]); and,
//!   once per column at line 1, each unknown column (kept as a custom field).
//!
//! A row's `CONTROL_SCRIPT` wins over [`ImportOptions::script`], which is the
//! default for rows without one. Voice counts as wanted unless
//! `SERVICES_VOICE` is `N` (the script's default decides later when the
//! cell is empty). An absent `INVOICE_CURRENCY` becomes `EUR`.
//!
//! Problems with the whole file (empty, not UTF-8, a missing required
//! column, a column named twice, a read error) are an [`ImportError`] and
//! nothing is imported. Streaming keeps one row at a time plus the record
//! ids seen so far (to report repeats).

pub mod columns;
mod csv;
pub mod normalise;
mod phone_check;
mod record;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

pub use self::csv::{csv_rows, CsvRows};

/// How to read one import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The file's name as the user knows it; every issue starts with it.
    pub file_name: String,
    /// ISO 3166-1 alpha-2 region for phone numbers without an international
    /// prefix when a row has no usable `ADDRESS_COUNTRY`, e.g. `"NL"`.
    pub default_country: String,
    /// The script for rows without `CONTROL_SCRIPT`; when `None` the column
    /// is required.
    pub script: Option<String>,
}

impl ImportOptions {
    /// Options for `file_name` with default country `NL` and no script.
    pub fn new(file_name: impl Into<String>) -> Self {
        ImportOptions {
            file_name: file_name.into(),
            default_country: "NL".to_owned(),
            script: None,
        }
    }
}

/// One imported row, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRecord {
    /// The physical line (1-based, header = 1) where the row starts.
    pub line: u64,
    /// `IDENTIFICATION_RECORD_ID`.
    pub record_id: String,
    /// `IDENTIFICATION_CLIENT_REFERENCE`.
    pub client_reference: Option<String>,
    /// `CONTROL_SCRIPT`, else [`ImportOptions::script`].
    pub script: String,
    /// Every non-empty cell by upper-case column name, standard and custom,
    /// normalised; numbers that are not valid are left out.
    pub fields: BTreeMap<String, String>,
    /// Dialable E.164 numbers: `CONTACT_PHONE_1`, `_2`, `_3`, then
    /// `CONTACT_MOBILE`, each once.
    pub phones: Vec<String>,
    /// Phone cells that were not valid numbers: `(column, value as given)`.
    pub rejected_phones: Vec<(String, String)>,
    /// No dialable number while voice is wanted: report the record as
    /// `invalid_number` without dialling.
    pub invalid_number: bool,
}

/// One problem found in a file, tied to a line and usually a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportIssue {
    /// [`ImportOptions::file_name`].
    pub file: String,
    /// The physical line (1-based, header = 1) where the row starts.
    pub line: u64,
    /// The column, upper case, when the issue is about one.
    pub field: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ImportIssue {
    /// `file:line: FIELD: message`, or `file:line: message` without a field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What became of one data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowResult {
    /// The row is imported; `warnings` did not stop it.
    Imported {
        record: ImportedRecord,
        warnings: Vec<ImportIssue>,
    },
    /// The row is not imported: `errors` (at least one) say why; `warnings`
    /// are what would also have been reported.
    Rejected {
        line: u64,
        errors: Vec<ImportIssue>,
        warnings: Vec<ImportIssue>,
    },
}

/// A whole file read by [`read_csv`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The imported rows, in file order.
    pub records: Vec<ImportedRecord>,
    /// Why rows were rejected; a row can have several issues.
    pub rejected: Vec<ImportIssue>,
    /// Unknown columns (once each, line 1), then row warnings in file order,
    /// including those of rejected rows.
    pub warnings: Vec<ImportIssue>,
}

impl ImportReport {
    /// The lines of the rejected rows, ascending, each once.
    pub fn rejected_lines(&self) -> Vec<u64> {
        let mut lines: Vec<u64> = self.rejected.iter().map(|issue| issue.line).collect();
        lines.dedup();
        lines
    }
}

/// A problem with the whole file or the options: nothing is imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: the file is empty; expected a header row naming the columns, e.g. IDENTIFICATION_RECORD_ID;CONTROL_SCRIPT;CONTACT_PHONE_1")]
    Empty { file: String },
    #[error("{file}:{line}: the file is not UTF-8 text; save it as CSV UTF-8")]
    NotUtf8 { file: String, line: u64 },
    #[error("{file}:{line}: the header has no {column} column; {why}")]
    MissingColumn {
        file: String,
        line: u64,
        column: &'static str,
        why: &'static str,
    },
    #[error(
        "{file}:{line}: column {column} appears twice in the header (columns {first} and {second})"
    )]
    DuplicateColumn {
        file: String,
        line: u64,
        column: String,
        first: usize,
        second: usize,
    },
    #[error("{file}: unknown default country {country:?}; expected an ISO 3166-1 alpha-2 code such as NL")]
    UnknownDefaultCountry { file: String, country: String },
    #[error("{file}: reading failed: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a whole CSV file: every row imported or rejected, with warnings.
/// For large files use [`csv_rows`], which yields the same rows one by one.
pub fn read_csv(reader: impl Read, options: &ImportOptions) -> Result<ImportReport, ImportError> {
    let rows = csv_rows(reader, options)?;
    let mut report = ImportReport {
        warnings: rows.header_warnings().to_vec(),
        ..ImportReport::default()
    };
    for row in rows {
        match row? {
            RowResult::Imported { record, warnings } => {
                report.records.push(record);
                report.warnings.extend(warnings);
            }
            RowResult::Rejected {
                errors, warnings, ..
            } => {
                report.rejected.extend(errors);
                report.warnings.extend(warnings);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
