//! The ODS reader: opens the zip, streams `content.xml` with quick-xml
//! (never the whole workbook) and sends the rows of the first table to
//! [`SheetRows`]. Owns how an OpenDocument cell becomes text: typed values
//! (`float`, `percentage`, `currency`, `date`, `boolean`) from their
//! `office:*-value` attribute rather than the displayed text, `text:s`
//! spaces, several `text:p` joined by a newline, annotations left out; and
//! the repeat attributes, with runs of empty cells costing nothing.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::table::{
    format_iso_date, format_number, SheetRow, SheetRows, Table, Width, MAX_COLUMNS,
};
use super::xml::{entity_text, newlines};
use super::{ImportError, ImportOptions, ImportReport, RowResult};

/// The most rows a sheet has (LibreOffice's limit); a repeated row is
/// never sent more often than this.
const MAX_ROWS: u64 = 1_048_576;

/// The most cells repeated rows with values may add up to in one file: a
/// few bytes of `table:number-rows-repeated` must not become gigabytes.
const MAX_REPEATED_CELLS: u64 = 2_000_000;

/// The part of an ODS file that holds the cells.
const CONTENT: &str = "content.xml";

/// Opens an ODS file and reads its first table on a thread.
pub(super) fn ods_rows(path: &Path, options: &ImportOptions) -> Result<SheetRows, ImportError> {
    let path: PathBuf = path.to_owned();
    let file = options.file_name.clone();
    SheetRows::spawn("ods", options, move |sink| {
        let opened = File::open(&path).map_err(|source| ImportError::Read {
            file: file.clone(),
            source,
        })?;
        let mut archive =
            zip::ZipArchive::new(BufReader::new(opened)).map_err(|source| ImportError::Zip {
                file: file.clone(),
                source,
            })?;
        let content = archive.by_name(CONTENT).map_err(|source| match source {
            zip::result::ZipError::FileNotFound => ImportError::MissingPart {
                file: file.clone(),
                part: CONTENT,
            },
            source => ImportError::Zip {
                file: file.clone(),
                source,
            },
        })?;
        read_content(BufReader::new(content), &file, &mut |row| sink.send(row))
    })
}

/// Reads an ODS `content.xml` whole into a report, without a zip or a
/// thread: for tests and fuzzing. Files go through [`open_rows`](super::open_rows).
pub fn read_ods_content(
    content: impl BufRead,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let mut rows = Vec::new();
    read_content(content, &options.file_name, &mut |row| {
        rows.push(row);
        true
    })?;
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return Err(ImportError::Empty {
            file: options.file_name.clone(),
        });
    };
    let end = header
        .cells
        .iter()
        .rposition(|cell| !cell.trim().is_empty())
        .map_or(0, |last| last + 1);
    let cells: Vec<&str> = header.cells.iter().take(end).map(String::as_str).collect();
    let (mut table, warnings) = Table::new(&cells, header.line, options, Width::Padded)?;
    let results = rows.filter_map(|row| {
        let cells: Vec<&str> = row.cells.iter().map(String::as_str).collect();
        table
            .row(row.line, &cells)
            .map(Ok::<RowResult, ImportError>)
    });
    super::collect_report(warnings, results)
}

/// The cell being read.
#[derive(Debug, Default)]
struct CellState {
    repeat: usize,
    /// The typed value, when the cell has one.
    value: Option<String>,
    text: String,
    paragraphs: usize,
    /// Inside `office:annotation` (a comment), whose text is not the value.
    annotation_depth: usize,
}

/// The row being read.
#[derive(Debug, Default)]
struct RowState {
    repeat: u64,
    cells: Vec<String>,
    /// Empty cells not yet pushed: only pushed when a value follows.
    pending_empty: usize,
}

impl RowState {
    fn push(&mut self, value: String, repeat: usize) {
        if value.trim().is_empty() {
            self.pending_empty = self.pending_empty.saturating_add(repeat);
            return;
        }
        let start = self.cells.len().saturating_add(self.pending_empty);
        if start >= MAX_COLUMNS {
            return;
        }
        self.cells.resize(start, String::new());
        self.pending_empty = 0;
        let copies = repeat.min(MAX_COLUMNS - start);
        for _ in 1..copies {
            self.cells.push(value.clone());
        }
        if copies > 0 {
            self.cells.push(value);
        }
    }
}

fn attribute(element: &BytesStart<'_>, local: &str) -> Option<String> {
    element
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|attr| attr.key.local_name().as_ref() == local)
        .and_then(|attr| {
            attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|value| value.into_owned())
        })
}

fn repeat_of(element: &BytesStart<'_>, local: &str) -> u64 {
    attribute(element, local)
        .and_then(|value| value.trim().parse::<u64>().ok())
        .filter(|repeat| *repeat > 0)
        .unwrap_or(1)
}

/// A cell's typed value from its attributes, if its type has one.
fn typed_value(element: &BytesStart<'_>) -> Option<String> {
    match attribute(element, "value-type")?.as_str() {
        "float" | "percentage" | "currency" => {
            let value = attribute(element, "value")?;
            Some(value.trim().parse::<f64>().map_or(value, format_number))
        }
        "date" => attribute(element, "date-value").map(|date| format_iso_date(date.trim())),
        "boolean" => attribute(element, "boolean-value").map(|value| {
            if value.trim() == "true" {
                "TRUE".to_owned()
            } else {
                "FALSE".to_owned()
            }
        }),
        _ => None,
    }
}

fn new_cell(element: &BytesStart<'_>) -> CellState {
    CellState {
        repeat: usize::try_from(repeat_of(element, "number-columns-repeated"))
            .unwrap_or(MAX_COLUMNS),
        value: typed_value(element),
        ..CellState::default()
    }
}

/// Appends text, collapsing white space as ODF does (runs of space, tab
/// and line breaks are one space; `text:s` gives more).
fn push_text(cell: &mut CellState, text: &str) {
    for c in text.chars() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            if !cell.text.ends_with(' ') {
                cell.text.push(' ');
            }
        } else {
            cell.text.push(c);
        }
    }
}

/// Streams `content.xml`, calling `emit` with each row of the first table
/// that has a value (numbered as in the sheet) until it returns `false`.
pub(super) fn read_content(
    content: impl BufRead,
    file: &str,
    emit: &mut dyn FnMut(SheetRow) -> bool,
) -> Result<(), ImportError> {
    let label = format!("{file} ({CONTENT})");
    let mut reader = Reader::from_reader(content);
    let mut buf = Vec::new();
    let mut line: u64 = 1;
    // Depth of table:table elements; 1 inside the first table.
    let mut table_depth = 0usize;
    let mut seen_table = false;
    let mut sheet_row: u64 = 1;
    let mut row: Option<RowState> = None;
    let mut cell: Option<CellState> = None;
    let mut repeated_cells: u64 = 0;
    loop {
        buf.clear();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|source| ImportError::Xml {
                file: label.clone(),
                line,
                source,
            })?;
        line += newlines(&event);
        match &event {
            Event::Start(element) | Event::Empty(element) => {
                let empty = matches!(event, Event::Empty(_));
                let name = element.local_name();
                match name.as_ref() {
                    "table" if !seen_table || table_depth > 0 => {
                        seen_table = true;
                        if !empty {
                            table_depth += 1;
                        }
                    }
                    _ if table_depth != 1 => {}
                    "table-row" => {
                        let repeat = repeat_of(element, "number-rows-repeated");
                        if empty {
                            sheet_row = sheet_row.saturating_add(repeat);
                        } else {
                            row = Some(RowState {
                                repeat,
                                ..RowState::default()
                            });
                        }
                    }
                    "table-cell" | "covered-table-cell" => {
                        let state = new_cell(element);
                        if empty {
                            if let Some(row) = &mut row {
                                row.push(state.value.unwrap_or_default(), state.repeat);
                            }
                        } else {
                            cell = Some(state);
                        }
                    }
                    other => {
                        if let Some(cell) = &mut cell {
                            match other {
                                "annotation" if !empty => cell.annotation_depth += 1,
                                "annotation" => {}
                                _ if cell.annotation_depth > 0 => {}
                                "p" | "h" => {
                                    if cell.paragraphs > 0 {
                                        cell.text.push('\n');
                                    }
                                    cell.paragraphs += 1;
                                }
                                "s" => {
                                    let count = repeat_of(element, "c").min(MAX_COLUMNS as u64);
                                    for _ in 0..count {
                                        cell.text.push(' ');
                                    }
                                }
                                "tab" => cell.text.push('\t'),
                                "line-break" => cell.text.push('\n'),
                                _ => {}
                            }
                        }
                    }
                }
            }
            Event::End(element) => {
                let name = element.local_name();
                match name.as_ref() {
                    "table" if table_depth > 0 => {
                        table_depth -= 1;
                        if table_depth == 0 {
                            return Ok(());
                        }
                    }
                    _ if table_depth != 1 => {}
                    "table-row" => {
                        if let Some(done) = row.take() {
                            if done.repeat > 1 && !done.cells.is_empty() {
                                let width = u64::try_from(done.cells.len()).unwrap_or(u64::MAX);
                                repeated_cells = repeated_cells
                                    .saturating_add(width.saturating_mul(done.repeat));
                                if repeated_cells > MAX_REPEATED_CELLS {
                                    return Err(ImportError::TooManyRepeats {
                                        file: file.to_owned(),
                                        line: sheet_row,
                                    });
                                }
                            }
                            if !done.cells.is_empty() {
                                for copy in 0..done.repeat.min(MAX_ROWS) {
                                    let cells = done.cells.clone();
                                    if !emit(SheetRow {
                                        line: sheet_row.saturating_add(copy),
                                        cells,
                                    }) {
                                        return Ok(());
                                    }
                                }
                            }
                            sheet_row = sheet_row.saturating_add(done.repeat);
                        }
                    }
                    "table-cell" | "covered-table-cell" => {
                        if let (Some(done), Some(row)) = (cell.take(), &mut row) {
                            let value = done.value.unwrap_or(done.text);
                            row.push(value, done.repeat);
                        }
                    }
                    "annotation" => {
                        if let Some(cell) = &mut cell {
                            cell.annotation_depth = cell.annotation_depth.saturating_sub(1);
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(text) => {
                if let Some(cell) = &mut cell {
                    if table_depth == 1 && cell.annotation_depth == 0 && cell.paragraphs > 0 {
                        push_text(cell, text);
                    }
                }
            }
            Event::CData(text) => {
                if let Some(cell) = &mut cell {
                    if table_depth == 1 && cell.annotation_depth == 0 {
                        cell.text.push_str(text);
                    }
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = entity_text(reference).map_err(|source| ImportError::Xml {
                    file: label.clone(),
                    line,
                    source,
                })?;
                if let Some(cell) = &mut cell {
                    if table_depth == 1 && cell.annotation_depth == 0 {
                        cell.text.push(resolved);
                    }
                }
            }
            Event::Eof => {
                return Err(if seen_table {
                    ImportError::Truncated { file: label, line }
                } else {
                    ImportError::NoSheet {
                        file: file.to_owned(),
                    }
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(content: &str) -> Vec<(u64, Vec<String>)> {
        let mut rows = Vec::new();
        read_content(content.as_bytes(), "t.ods", &mut |row| {
            rows.push((row.line, row.cells));
            true
        })
        .expect("valid");
        rows
    }

    const HEAD: &str = r#"<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet>"#;
    const TAIL: &str = "</office:spreadsheet></office:body></office:document-content>";

    #[test]
    fn repeats_spaces_paragraphs_and_types() {
        let content = format!(
            "{HEAD}<table:table table:name=\"A\">\
             <table:table-row><table:table-cell office:value-type=\"string\"><text:p>a<text:s text:c=\"2\"/>b</text:p><text:p>c &amp; d</text:p></table:table-cell>\
             <table:table-cell table:number-columns-repeated=\"2\"/>\
             <table:table-cell office:value-type=\"float\" office:value=\"31612345678\"><text:p>3.16E+10</text:p></table:table-cell>\
             <table:table-cell table:number-columns-repeated=\"16380\"/></table:table-row>\
             <table:table-row table:number-rows-repeated=\"3\"><table:table-cell table:number-columns-repeated=\"1024\"/></table:table-row>\
             <table:table-row table:number-rows-repeated=\"2\"><table:table-cell office:value-type=\"date\" office:date-value=\"2024-03-17T00:00:00\"><text:p>17/03/24</text:p><office:annotation><text:p>note</text:p></office:annotation></table:table-cell>\
             <table:covered-table-cell/><table:table-cell office:value-type=\"percentage\" office:value=\"0.15\"><text:p>15%</text:p></table:table-cell></table:table-row>\
             </table:table><table:table table:name=\"B\"><table:table-row><table:table-cell><text:p>no</text:p></table:table-cell></table:table-row></table:table>{TAIL}"
        );
        let rows = rows(&content);
        assert_eq!(
            rows,
            [
                (
                    1,
                    vec![
                        "a  b\nc & d".to_owned(),
                        String::new(),
                        String::new(),
                        "31612345678".to_owned()
                    ]
                ),
                (
                    5,
                    vec!["2024-03-17".to_owned(), String::new(), "0.15".to_owned()]
                ),
                (
                    6,
                    vec!["2024-03-17".to_owned(), String::new(), "0.15".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn truncated_content_is_an_error() {
        let content = format!("{HEAD}<table:table><table:table-row>");
        let err = read_content(content.as_bytes(), "t.ods", &mut |_| true).expect_err("cut off");
        assert!(
            err.to_string().starts_with("t.ods (content.xml):1:"),
            "{err}"
        );
        let err = read_content(format!("{HEAD}{TAIL}").as_bytes(), "t.ods", &mut |_| true)
            .expect_err("no table");
        assert!(matches!(err, ImportError::NoSheet { .. }), "{err}");
    }

    #[test]
    fn repeated_rows_with_values_are_capped() {
        let content = format!(
            "{HEAD}<table:table><table:table-row table:number-rows-repeated=\"1000000\">\
             <table:table-cell table:number-columns-repeated=\"3\"><text:p>x</text:p></table:table-cell>\
             </table:table-row></table:table>{TAIL}"
        );
        let err = read_content(content.as_bytes(), "t.ods", &mut |_| true).expect_err("capped");
        assert!(
            matches!(err, ImportError::TooManyRepeats { line: 1, .. }),
            "{err}"
        );
    }
}
