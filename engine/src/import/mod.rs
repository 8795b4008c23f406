//! Import files: reading a delivery file in the layout of
//! `shared/formats/README.md` into checked, normalised records. This module
//! owns the readers of CSV ([`csv_rows`], [`read_csv`]), XLSX, ODS and XML
//! ([`xml_rows`]), all behind [`FileFormat`], [`open_rows`] and
//! [`read_file`]; the table of standard columns ([`columns`]); the value
//! rules ([`normalise`]); column-mapping profiles ([`ColumnProfile`]); and
//! the issues it reports. It reads files but knows nothing of the store.
//!
//! Every format feeds the same row rules (`record.rs`, through
//! `table.rs`), so the same data gives the same [`RowResult`]s whatever
//! the format. Only `line` differs by nature: for CSV the physical line
//! where the row starts; for XLSX and ODS the sheet row number (header = row
//! 1, empty and repeated rows counted); for XML the line where `<record`
//! starts. See the `xlsx`, `ods` and `xml` modules for how their cells
//! become text and for the XML layout.
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
//! XLSX and ODS: the first sheet, the header in its first row with a value;
//! missing trailing cells are empty, and a value right of the header's last
//! column rejects the row. XML: see the `xml` module. With
//! [`ImportOptions::profile`] header names are first renamed, and the
//! profile's defaults fill empty or absent fields (see [`ColumnProfile`]).
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
//! nothing is imported; so are damaged spreadsheets and XML that is not
//! well-formed. Streaming keeps one row at a time plus the record ids seen
//! so far (to report repeats); XLSX and ODS are read on a helper thread at
//! most 64 rows ahead.

pub mod columns;
mod csv;
pub mod normalise;
mod ods;
mod phone_check;
mod profile;
mod record;
mod table;
mod xlsx;
mod xml;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

pub use self::csv::{csv_rows, CsvRows};
pub use self::ods::read_ods_content;
pub use self::profile::{ColumnProfile, ProfileError};
pub use self::xml::{xml_rows, XmlRows};

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
    /// The organisation's column mapping; `None` reads columns under their
    /// own names.
    pub profile: Option<ColumnProfile>,
}

impl ImportOptions {
    /// Options for `file_name` with default country `NL`, no script and no
    /// profile.
    pub fn new(file_name: impl Into<String>) -> Self {
        ImportOptions {
            file_name: file_name.into(),
            default_country: "NL".to_owned(),
            script: None,
            profile: None,
        }
    }
}

/// One imported row, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRecord {
    /// Where the row is (1-based): for CSV the physical line where it
    /// starts (header = 1), for XLSX and ODS the sheet row, for XML the line
    /// where its `<record` starts.
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
    /// The row's line, as [`ImportedRecord::line`].
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

/// A whole file read by [`read_csv`] or [`read_file`].
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
    #[error("{file}: unknown file format ({why}); expected .csv, .xlsx, .ods or .xml")]
    UnknownFormat { file: String, why: &'static str },
    #[error("{file}: not a readable XLSX workbook: {source}")]
    Xlsx {
        file: String,
        #[source]
        source: Box<calamine::XlsxError>,
    },
    #[error("{file}: not a readable zip archive (ODS and XLSX files are zip archives): {source}")]
    Zip {
        file: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{file}: the archive has no {part}; it is not an ODS spreadsheet or it is damaged")]
    MissingPart { file: String, part: &'static str },
    #[error("{file}: the workbook has no sheet; the records must be on the first sheet")]
    NoSheet { file: String },
    #[error("{file}:{line}: the XML is not well-formed: {source}")]
    Xml {
        file: String,
        line: u64,
        #[source]
        source: quick_xml::Error,
    },
    #[error("{file}:{line}: found {found} where {expected} was expected")]
    XmlLayout {
        file: String,
        line: u64,
        found: String,
        expected: &'static str,
    },
    #[error(
        "{file}: the XML declares encoding {encoding:?}; only UTF-8 is read, save it as UTF-8"
    )]
    XmlEncoding { file: String, encoding: String },
    #[error("{file}:{line}: the file is not UTF-8 text; save the XML as UTF-8")]
    XmlNotUtf8 { file: String, line: u64 },
    #[error("{file}:{line}: the file ends in the middle of the data; it is cut off or damaged")]
    Truncated { file: String, line: u64 },
    #[error("{file}:{line}: rows with values are repeated too often (more than 2,000,000 cells in all); write the rows out")]
    TooManyRepeats { file: String, line: u64 },
}

/// The formats an import file can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    Csv,
    Xlsx,
    Ods,
    Xml,
}

/// The zip member that marks an XLSX workbook.
const XLSX_WORKBOOK: &str = "xl/workbook.xml";
/// The media type an ODS file's `mimetype` member holds.
const ODS_MIMETYPE: &str = "application/vnd.oasis.opendocument.spreadsheet";

impl FileFormat {
    /// The format of the file at `path`: by its extension (case-insensitive:
    /// `csv`/`txt`, `xlsx`/`xlsm`, `ods`, `xml`), else by its first bytes (a
    /// zip holding `xl/workbook.xml` is XLSX, one holding `content.xml` and
    /// the ODS media type is ODS, `<` is XML, anything else CSV).
    pub fn detect(path: &Path) -> Result<FileFormat, ImportError> {
        let extension = path
            .extension()
            .and_then(|extension| extension.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv" | "txt") => return Ok(FileFormat::Csv),
            Some("xlsx" | "xlsm") => return Ok(FileFormat::Xlsx),
            Some("ods") => return Ok(FileFormat::Ods),
            Some("xml") => return Ok(FileFormat::Xml),
            _ => {}
        }
        let file = path.display().to_string();
        let read_failed = |source| ImportError::Read {
            file: file.clone(),
            source,
        };
        let mut start = Vec::with_capacity(512);
        File::open(path)
            .map_err(read_failed)?
            .take(512)
            .read_to_end(&mut start)
            .map_err(read_failed)?;
        if start.starts_with(b"PK") {
            return Self::detect_zip(path, &file);
        }
        if start.starts_with(b"\xD0\xCF\x11\xE0") {
            return Err(ImportError::UnknownFormat {
                file,
                why: "an old binary Excel file; save it as .xlsx",
            });
        }
        let text = start.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&start);
        if text.trim_ascii_start().starts_with(b"<") {
            Ok(FileFormat::Xml)
        } else {
            Ok(FileFormat::Csv)
        }
    }

    fn detect_zip(path: &Path, file: &str) -> Result<FileFormat, ImportError> {
        let opened = File::open(path).map_err(|source| ImportError::Read {
            file: file.to_owned(),
            source,
        })?;
        let mut archive =
            zip::ZipArchive::new(BufReader::new(opened)).map_err(|source| ImportError::Zip {
                file: file.to_owned(),
                source,
            })?;
        if archive.index_for_name(XLSX_WORKBOOK).is_some() {
            return Ok(FileFormat::Xlsx);
        }
        if archive.index_for_name("content.xml").is_some() {
            let mut mimetype = String::new();
            if let Ok(member) = archive.by_name("mimetype") {
                // A mimetype that cannot be read is no ODS media type.
                let _ = member.take(128).read_to_string(&mut mimetype);
            }
            if mimetype.trim() == ODS_MIMETYPE {
                return Ok(FileFormat::Ods);
            }
        }
        Err(ImportError::UnknownFormat {
            file: file.to_owned(),
            why: "a zip archive that is neither an XLSX nor an ODS spreadsheet",
        })
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Csv => "CSV",
            FileFormat::Xlsx => "XLSX",
            FileFormat::Ods => "ODS",
            FileFormat::Xml => "XML",
        })
    }
}

/// The reader behind [`FileRows`].
#[derive(Debug)]
enum Rows {
    Csv(CsvRows<File>),
    Sheet(table::SheetRows),
    Xml(XmlRows<BufReader<File>>),
}

/// The rows of an import file of any format, read one at a time: the same
/// contract as [`CsvRows`] (an `Err` once, then the end; bounded memory).
/// XLSX and ODS are read on a helper thread that stops when this is
/// dropped.
#[derive(Debug)]
pub struct FileRows {
    format: FileFormat,
    rows: Rows,
}

impl FileRows {
    /// Unknown columns, one warning each, at the header's line (empty for
    /// XML, whose unknown fields are reported in the rows).
    pub fn header_warnings(&self) -> &[ImportIssue] {
        match &self.rows {
            Rows::Csv(rows) => rows.header_warnings(),
            Rows::Sheet(rows) => rows.header_warnings(),
            Rows::Xml(rows) => rows.header_warnings(),
        }
    }

    /// The format being read.
    pub fn format(&self) -> FileFormat {
        self.format
    }
}

impl Iterator for FileRows {
    type Item = Result<RowResult, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.rows {
            Rows::Csv(rows) => rows.next(),
            Rows::Sheet(rows) => rows.next(),
            Rows::Xml(rows) => rows.next(),
        }
    }
}

/// Opens the import file at `path` in its format ([`FileFormat::detect`])
/// and checks its header; issues name [`ImportOptions::file_name`].
pub fn open_rows(path: &Path, options: &ImportOptions) -> Result<FileRows, ImportError> {
    let format = FileFormat::detect(path)?;
    let open = || {
        File::open(path).map_err(|source| ImportError::Read {
            file: options.file_name.clone(),
            source,
        })
    };
    let rows = match format {
        FileFormat::Csv => Rows::Csv(csv_rows(open()?, options)?),
        FileFormat::Xlsx => Rows::Sheet(xlsx::xlsx_rows(path, options)?),
        FileFormat::Ods => Rows::Sheet(ods::ods_rows(path, options)?),
        FileFormat::Xml => Rows::Xml(xml_rows(BufReader::new(open()?), options)?),
    };
    Ok(FileRows { format, rows })
}

/// Reads a whole import file of any format, like [`read_csv`].
pub fn read_file(path: &Path, options: &ImportOptions) -> Result<ImportReport, ImportError> {
    let rows = open_rows(path, options)?;
    let warnings = rows.header_warnings().to_vec();
    collect_report(warnings, rows)
}

/// Collects rows into a report that starts with the header's warnings.
fn collect_report(
    header_warnings: Vec<ImportIssue>,
    rows: impl Iterator<Item = Result<RowResult, ImportError>>,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport {
        warnings: header_warnings,
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

/// Reads a whole CSV file: every row imported or rejected, with warnings.
/// For large files use [`csv_rows`], which yields the same rows one by one;
/// for other formats [`read_file`].
pub fn read_csv(reader: impl Read, options: &ImportOptions) -> Result<ImportReport, ImportError> {
    let rows = csv_rows(reader, options)?;
    let warnings = rows.header_warnings().to_vec();
    collect_report(warnings, rows)
}

#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod tests;
