//! The XLSX reader: the first worksheet, streamed cell by cell with
//! calamine's cell reader (only the shared-strings table and the styles are
//! held whole), grouped into rows and sent to [`SheetRows`]. Owns how an
//! Excel cell becomes text: integers without `.0`, other numbers as plain
//! decimals, date-formatted serial numbers as `YYYY-MM-DD`.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use calamine::{DataRef, Reader, Xlsx, XlsxError};

use super::table::{
    format_date_time, format_iso_date, format_number, RowSink, SheetRow, SheetRows, MAX_COLUMNS,
};
use super::{ImportError, ImportOptions};

/// Opens an XLSX file and reads its first sheet on a thread.
pub(super) fn xlsx_rows(path: &Path, options: &ImportOptions) -> Result<SheetRows, ImportError> {
    let path: PathBuf = path.to_owned();
    let file = options.file_name.clone();
    SheetRows::spawn("xlsx", options, move |sink| read_sheet(&path, &file, sink))
}

fn xlsx_error(file: &str, source: XlsxError) -> ImportError {
    ImportError::Xlsx {
        file: file.to_owned(),
        source: Box::new(source),
    }
}

fn read_sheet(path: &Path, file: &str, sink: &mut RowSink) -> Result<(), ImportError> {
    let opened = File::open(path).map_err(|source| ImportError::Read {
        file: file.to_owned(),
        source,
    })?;
    let mut workbook: Xlsx<BufReader<File>> =
        Xlsx::new(BufReader::new(opened)).map_err(|err| xlsx_error(file, err))?;
    let Some(first) = workbook.sheet_names().into_iter().next() else {
        return Err(ImportError::NoSheet {
            file: file.to_owned(),
        });
    };
    let mut cells = workbook
        .worksheet_cells_reader(&first)
        .map_err(|err| xlsx_error(file, err))?;
    let mut row: Option<SheetRow> = None;
    while let Some(cell) = cells.next_cell().map_err(|err| xlsx_error(file, err))? {
        let (index, column) = cell.get_position();
        let Ok(column) = usize::try_from(column) else {
            continue;
        };
        if column >= MAX_COLUMNS {
            continue;
        }
        let text = cell_text(cell.get_value());
        if text.trim().is_empty() {
            continue;
        }
        let line = u64::from(index) + 1;
        if row.as_ref().is_some_and(|current| current.line != line) {
            if let Some(done) = row.take() {
                if !sink.send(done) {
                    return Ok(());
                }
            }
        }
        let current = row.get_or_insert_with(|| SheetRow {
            line,
            cells: Vec::new(),
        });
        if current.cells.len() <= column {
            current.cells.resize(column + 1, String::new());
        }
        if let Some(slot) = current.cells.get_mut(column) {
            *slot = text;
        }
    }
    if let Some(last) = row {
        sink.send(last);
    }
    Ok(())
}

/// A cell's value as the text the row rules read.
fn cell_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(text) => text.clone(),
        DataRef::SharedString(text) => (*text).to_owned(),
        DataRef::Int(number) => number.to_string(),
        DataRef::Float(number) => format_number(*number),
        DataRef::Bool(true) => "TRUE".to_owned(),
        DataRef::Bool(false) => "FALSE".to_owned(),
        DataRef::DateTime(date) if date.is_datetime() => {
            let (year, month, day, hour, minute, second, _) = date.to_ymd_hms_milli();
            format_date_time((year, month, day), (hour, minute, second))
        }
        DataRef::DateTime(duration) => format_number(duration.as_f64()),
        DataRef::DateTimeIso(text) => format_iso_date(text),
        DataRef::DurationIso(text) => text.clone(),
        DataRef::Error(error) => error.to_string(),
    }
}
