//! What every reader shares between its cells and [`super::record`]: the
//! header renamed by the column profile, profile defaults, fitting a row to
//! the header's width, the text form of spreadsheet numbers and dates, and
//! [`SheetRows`], which runs a spreadsheet reader (XLSX, ODS) on its own
//! thread and hands its rows over a bounded channel.

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, SyncSender};

use phonenumber::country;

use super::normalise::phone_region;
use super::record::{check_required, header_of, RowBuilder};
use super::{ImportError, ImportIssue, ImportOptions, RowResult};

/// The most columns a row is read with (the XLSX and ODS maximum); cells
/// beyond it are ignored, so LibreOffice's 16,384 repeated empty cells cost
/// nothing.
pub(super) const MAX_COLUMNS: usize = 16_384;

/// Rows buffered between a spreadsheet reader thread and [`SheetRows`]; the
/// reader waits when it is full.
const SHEET_ROW_CAPACITY: usize = 64;

/// The default region of the options, or the error naming the bad code.
pub(super) fn default_region(options: &ImportOptions) -> Result<country::Id, ImportError> {
    phone_region(&options.default_country).ok_or_else(|| ImportError::UnknownDefaultCountry {
        file: options.file_name.clone(),
        country: options.default_country.clone(),
    })
}

/// Header cells renamed by the options' profile (unmapped ones as given).
fn renamed<'a>(cells: &'a [&'a str], options: &'a ImportOptions) -> Vec<&'a str> {
    cells
        .iter()
        .map(|cell| {
            options
                .profile
                .as_ref()
                .and_then(|profile| profile.field_for(cell))
                .unwrap_or(cell)
        })
        .collect()
}

/// How a reader's rows relate to the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Width {
    /// CSV: a row must have exactly as many cells as the header.
    Exact,
    /// Spreadsheets: missing trailing cells are empty; cells past the header
    /// are an error only when not empty.
    Padded,
}

/// Rows of one file against one header (CSV, XLSX, ODS) or against a header
/// per row (XML).
#[derive(Debug)]
pub(super) struct Table {
    builder: RowBuilder,
    /// Columns in the file (profile defaults for absent fields come after).
    width: usize,
    /// `(column, value)`: a profile default and the column it fills.
    defaults: Vec<(usize, String)>,
    mode: Width,
    /// XML: the unknown fields already reported.
    reported_unknown: HashSet<String>,
}

impl Table {
    /// Reads and checks the header row at `line`; returns the table and the
    /// header's warnings (unknown columns, once each).
    pub(super) fn new(
        cells: &[&str],
        line: u64,
        options: &ImportOptions,
        mode: Width,
    ) -> Result<(Table, Vec<ImportIssue>), ImportError> {
        let region = default_region(options)?;
        let (names, defaults) = with_defaults(renamed(cells, options), options);
        let (header, warnings) = header_of(&names, line, &options.file_name)?;
        check_required(&header, line, options)?;
        let defaults = defaults
            .into_iter()
            .filter_map(|(name, value)| header.position(&name).map(|index| (index, value)))
            .collect();
        let table = Table {
            builder: RowBuilder::new(header, options, region),
            width: cells.len(),
            defaults,
            mode,
            reported_unknown: HashSet::new(),
        };
        Ok((table, warnings))
    }

    /// A table for XML, whose header comes with each record.
    pub(super) fn per_record(options: &ImportOptions) -> Result<Table, ImportError> {
        let region = default_region(options)?;
        let (header, _) = header_of(&[], 0, &options.file_name)?;
        Ok(Table {
            builder: RowBuilder::new(header, options, region),
            width: 0,
            defaults: Vec::new(),
            mode: Width::Exact,
            reported_unknown: HashSet::new(),
        })
    }

    pub(super) fn file(&self) -> &str {
        self.builder.file()
    }

    /// The result of the row at `line`, or `None` when all its cells are
    /// empty.
    pub(super) fn row(&mut self, line: u64, cells: &[&str]) -> Option<RowResult> {
        if cells.iter().all(|cell| cell.trim().is_empty()) {
            return None;
        }
        let mut fitted: Vec<&str> = Vec::with_capacity(self.width + self.defaults.len());
        match self.mode {
            Width::Exact if cells.len() != self.width => {
                let message = format!(
                    "the row has {} cells but the header has {} columns; \
                     quote values that contain the delimiter",
                    cells.len(),
                    self.width
                );
                return Some(self.builder.reject(line, message));
            }
            Width::Exact => fitted.extend_from_slice(cells),
            Width::Padded => {
                if let Some(extra) = cells
                    .iter()
                    .skip(self.width)
                    .position(|cell| !cell.trim().is_empty())
                {
                    let message = format!(
                        "column {} has a value but the header has only {} columns; \
                         name the column in row 1",
                        self.width + extra + 1,
                        self.width
                    );
                    return Some(self.builder.reject(line, message));
                }
                fitted.extend(cells.iter().take(self.width));
                fitted.resize(self.width, "");
            }
        }
        fill_defaults(&mut fitted, &self.defaults);
        self.builder.row(line, &fitted)
    }

    /// XML: the record at `line` with its own field names. Unknown fields
    /// are reported the first time they occur, in that row's warnings.
    pub(super) fn record(
        &mut self,
        line: u64,
        names: &[&str],
        values: &[&str],
        options: &ImportOptions,
    ) -> Option<RowResult> {
        if values.iter().all(|value| value.trim().is_empty()) {
            return None;
        }
        let (names, defaults) = with_defaults(renamed(names, options), options);
        let (header, unknown) = match header_of(&names, line, self.file()) {
            Ok(parsed) => parsed,
            Err(ImportError::DuplicateColumn { column, .. }) => {
                let message = format!("field {column} appears twice in the record");
                return Some(self.builder.reject(line, message));
            }
            Err(_) => return None,
        };
        let defaults: Vec<(usize, String)> = defaults
            .into_iter()
            .filter_map(|(name, value)| header.position(&name).map(|index| (index, value)))
            .collect();
        self.builder.set_header(header);
        let mut cells: Vec<&str> = values.to_vec();
        cells.resize(names.len(), "");
        fill_defaults(&mut cells, &defaults);
        let new_unknown: Vec<ImportIssue> = unknown
            .into_iter()
            .filter(|issue| {
                issue
                    .field
                    .as_ref()
                    .is_some_and(|field| self.reported_unknown.insert(field.clone()))
            })
            .collect();
        let mut result = self.builder.row(line, &cells)?;
        if !new_unknown.is_empty() {
            let warnings = match &mut result {
                RowResult::Imported { warnings, .. } | RowResult::Rejected { warnings, .. } => {
                    warnings
                }
            };
            warnings.splice(0..0, new_unknown);
        }
        Some(result)
    }
}

/// The header names plus a column for each profile default the header
/// lacks, and the defaults as `(canonical field, value)`.
fn with_defaults<'a>(
    mut names: Vec<&'a str>,
    options: &'a ImportOptions,
) -> (Vec<&'a str>, Vec<(String, String)>) {
    let Some(profile) = &options.profile else {
        return (names, Vec::new());
    };
    let mut defaults = Vec::new();
    for (field, value) in profile.defaults() {
        let present = names
            .iter()
            .any(|name| super::columns::canonical_name(name) == *field);
        if !present {
            names.push(field);
        }
        defaults.push((field.clone(), value.clone()));
    }
    (names, defaults)
}

/// Fills empty (or missing, past the end) cells from the defaults.
fn fill_defaults<'a>(cells: &mut Vec<&'a str>, defaults: &'a [(usize, String)]) {
    for (index, value) in defaults {
        if cells.len() <= *index {
            cells.resize(index + 1, "");
        }
        if let Some(cell) = cells.get_mut(*index) {
            if cell.trim().is_empty() {
                *cell = value;
            }
        }
    }
}

/// A spreadsheet number as text: integers without a fraction (a phone
/// number typed as a number stays its digits), others as a plain decimal
/// without exponent, rounded to nine decimals to hide binary noise.
pub(super) fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let plain = value.to_string();
    match plain.split_once('.') {
        Some((_, decimals)) if decimals.len() > 9 => {
            let rounded = format!("{value:.9}");
            rounded
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        }
        _ => plain,
    }
}

/// A date and time as text: `YYYY-MM-DD` at midnight, else
/// `YYYY-MM-DD HH:MM:SS`.
pub(super) fn format_date_time(date: (u16, u8, u8), time: (u8, u8, u8)) -> String {
    let (year, month, day) = date;
    match time {
        (0, 0, 0) => format!("{year:04}-{month:02}-{day:02}"),
        (hour, minute, second) => {
            format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
        }
    }
}

/// An ISO 8601 date or date-time (`2024-03-17`, `2024-03-17T00:00:00`,
/// `2024-03-17T12:30:00.5`) in the form of [`format_date_time`]; other text
/// as given.
pub(super) fn format_iso_date(value: &str) -> String {
    let Some((date, time)) = value.split_once('T') else {
        return value.to_owned();
    };
    let time = time.split(['.', 'Z', '+']).next().unwrap_or_default();
    let midnight = time.is_empty() || time.trim_start_matches(['0', ':']).is_empty();
    if midnight {
        date.to_owned()
    } else {
        format!("{date} {time}")
    }
}

/// One spreadsheet row as a reader thread sends it.
#[derive(Debug)]
pub(super) struct SheetRow {
    /// The sheet row number (1-based).
    pub line: u64,
    /// Cells from column A; trailing empty ones may be missing.
    pub cells: Vec<String>,
}

/// What a reader thread sends.
#[derive(Debug)]
enum Message {
    Row(SheetRow),
    Failed(ImportError),
    /// The sheet ended normally.
    Done,
}

/// Hands a reader thread's rows to the channel; `false` when nobody reads
/// any more and the reader should stop.
pub(super) struct RowSink {
    sender: SyncSender<Message>,
}

impl RowSink {
    /// Sends one row with at least one non-empty cell.
    pub(super) fn send(&mut self, row: SheetRow) -> bool {
        self.sender.send(Message::Row(row)).is_ok()
    }
}

/// The rows of a spreadsheet read on its own thread, turned into results
/// here. Memory: [`SHEET_ROW_CAPACITY`] rows in the channel plus what the
/// reader itself keeps.
#[derive(Debug)]
pub(super) struct SheetRows {
    receiver: Receiver<Message>,
    table: Table,
    header_warnings: Vec<ImportIssue>,
    done: bool,
}

impl SheetRows {
    /// Starts `read` on a thread named `dialcast-import-{kind}`, waits for
    /// the header row (the first row with a value) and checks it.
    pub(super) fn spawn(
        kind: &str,
        options: &ImportOptions,
        read: impl FnOnce(&mut RowSink) -> Result<(), ImportError> + Send + 'static,
    ) -> Result<SheetRows, ImportError> {
        let file = options.file_name.clone();
        default_region(options)?;
        let (sender, receiver) = mpsc::sync_channel(SHEET_ROW_CAPACITY);
        let mut sink = RowSink { sender };
        std::thread::Builder::new()
            .name(format!("dialcast-import-{kind}"))
            .spawn(move || {
                let message = match read(&mut sink) {
                    Ok(()) => Message::Done,
                    Err(err) => Message::Failed(err),
                };
                // Nobody listening any more is fine: the rows were dropped.
                let _ = sink.sender.send(message);
            })
            .map_err(|source| ImportError::Read {
                file: file.clone(),
                source,
            })?;
        let header = match receiver.recv() {
            Ok(Message::Row(row)) => row,
            Ok(Message::Done) => return Err(ImportError::Empty { file }),
            Ok(Message::Failed(err)) => return Err(err),
            Err(_) => return Err(stopped(&file)),
        };
        let cells: Vec<&str> = trim_trailing_empty(&header.cells);
        let (table, header_warnings) = Table::new(&cells, header.line, options, Width::Padded)?;
        Ok(SheetRows {
            receiver,
            table,
            header_warnings,
            done: false,
        })
    }

    pub(super) fn header_warnings(&self) -> &[ImportIssue] {
        &self.header_warnings
    }
}

fn trim_trailing_empty(cells: &[String]) -> Vec<&str> {
    let end = cells
        .iter()
        .rposition(|cell| !cell.trim().is_empty())
        .map_or(0, |last| last + 1);
    cells.iter().take(end).map(String::as_str).collect()
}

fn stopped(file: &str) -> ImportError {
    ImportError::Read {
        file: file.to_owned(),
        source: std::io::Error::other("the spreadsheet reader stopped unexpectedly"),
    }
}

impl Iterator for SheetRows {
    type Item = Result<RowResult, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.receiver.recv() {
                Ok(Message::Row(row)) => {
                    let cells: Vec<&str> = row.cells.iter().map(String::as_str).collect();
                    if let Some(result) = self.table.row(row.line, &cells) {
                        return Some(Ok(result));
                    }
                }
                Ok(Message::Done) => self.done = true,
                Ok(Message::Failed(err)) => {
                    self.done = true;
                    return Some(Err(err));
                }
                Err(_) => {
                    self.done = true;
                    return Some(Err(stopped(self.table.file())));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_like_typed() {
        assert_eq!(format_number(31_612_345_678.0), "31612345678");
        assert_eq!(format_number(125.5), "125.5");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(1e20), "100000000000000000000");
        assert_eq!(format_number(1250000.05), "1250000.05");
    }

    #[test]
    fn dates_drop_midnight() {
        assert_eq!(format_date_time((2024, 3, 7), (0, 0, 0)), "2024-03-07");
        assert_eq!(
            format_date_time((2024, 3, 7), (9, 5, 0)),
            "2024-03-07 09:05:00"
        );
        assert_eq!(format_iso_date("2024-03-17"), "2024-03-17");
        assert_eq!(format_iso_date("2024-03-17T00:00:00"), "2024-03-17");
        assert_eq!(
            format_iso_date("2024-03-17T12:30:00"),
            "2024-03-17 12:30:00"
        );
    }
}
