//! The CSV reader: skips a BOM, detects the delimiter from the header line,
//! reads the header, then yields one [`RowResult`] per data row.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Chain, Cursor, Read};

use super::table::{default_region, Table, Width};
use super::{ImportError, ImportIssue, ImportOptions, RowResult};

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// At most this much of the file's start is read to find the header line.
const MAX_SNIFF_BYTES: u64 = 64 * 1024;

type Source<R> = Tracked<Chain<Cursor<Vec<u8>>, BufReader<R>>>;

/// A reader that keeps the bytes the CSV parser has read but not yet
/// accounted for, so that rows get their physical line numbers. (The csv
/// crate's own positions count the blank lines it skips, and the `\n` of a
/// CRLF, towards the next record.) Holds at most one record plus the
/// parser's read-ahead buffer.
struct Tracked<R> {
    inner: R,
    pending: VecDeque<u8>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.pending.extend(buf.get(..read).unwrap_or_default());
        Ok(read)
    }
}

/// Physical line numbers of the records read so far.
#[derive(Debug)]
struct Lines {
    /// Bytes the parser has consumed up to the end of the last record.
    consumed: u64,
    /// The 1-based line at `consumed`.
    line: u64,
}

impl Lines {
    /// Accounts for the record just read, which ends at byte `end`, and
    /// returns the line where it starts: after any line breaks before it.
    fn record<R>(&mut self, end: u64, source: &mut Tracked<R>) -> u64 {
        let count = usize::try_from(end.saturating_sub(self.consumed)).unwrap_or(usize::MAX);
        let count = count.min(source.pending.len());
        let mut start = None;
        for byte in source.pending.drain(..count) {
            if start.is_none() && byte != b'\n' && byte != b'\r' {
                start = Some(self.line);
            }
            if byte == b'\n' {
                self.line += 1;
            }
        }
        self.consumed = end;
        start.unwrap_or(self.line)
    }
}

/// The rows of a CSV import, read one at a time. Yields `Err` once (and then
/// ends) if reading fails or a row is not UTF-8; memory stays bounded by one
/// row plus the record ids seen so far.
pub struct CsvRows<R: Read> {
    reader: ::csv::Reader<Source<R>>,
    lines: Lines,
    row: ::csv::ByteRecord,
    table: Table,
    header_warnings: Vec<ImportIssue>,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CsvRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("header_warnings", &self.header_warnings)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Opens a CSV import: reads and checks the header. The warnings about the
/// header (unknown columns, once each) are in [`CsvRows::header_warnings`];
/// the rows follow from the iterator.
pub fn csv_rows<R: Read>(reader: R, options: &ImportOptions) -> Result<CsvRows<R>, ImportError> {
    let file = options.file_name.clone();
    default_region(options)?;
    let mut buffered = BufReader::new(reader);
    let (prefix, delimiter) = sniff(&mut buffered).map_err(|source| ImportError::Read {
        file: file.clone(),
        source,
    })?;
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(Tracked {
            inner: Cursor::new(prefix).chain(buffered),
            pending: VecDeque::new(),
        });
    let mut header = ::csv::ByteRecord::new();
    match reader.read_byte_record(&mut header) {
        Ok(true) => {}
        Ok(false) => return Err(ImportError::Empty { file }),
        Err(err) => return Err(read_failed(&file, err)),
    }
    let mut lines = Lines {
        consumed: 0,
        line: 1,
    };
    let line = lines.record(reader.position().byte(), reader.get_mut());
    let cells = header
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<Vec<&str>, _>>()
        .map_err(|_| ImportError::NotUtf8 {
            file: file.clone(),
            line,
        })?;
    let (table, header_warnings) = Table::new(&cells, line, options, Width::Exact)?;
    Ok(CsvRows {
        reader,
        lines,
        row: ::csv::ByteRecord::new(),
        table,
        header_warnings,
        done: false,
    })
}

impl<R: Read> CsvRows<R> {
    /// Unknown columns, one warning each, at the header's line.
    pub fn header_warnings(&self) -> &[ImportIssue] {
        &self.header_warnings
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<RowResult, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.reader.read_byte_record(&mut self.row) {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(err) => {
                    self.done = true;
                    return Some(Err(read_failed(self.table.file(), err)));
                }
            }
            if self.done {
                break;
            }
            let end = self.reader.position().byte();
            let line = self.lines.record(end, self.reader.get_mut());
            let cells = self
                .row
                .iter()
                .map(std::str::from_utf8)
                .collect::<Result<Vec<&str>, _>>();
            let Ok(cells) = cells else {
                self.done = true;
                return Some(Err(ImportError::NotUtf8 {
                    file: self.table.file().to_owned(),
                    line,
                }));
            };
            if let Some(result) = self.table.row(line, &cells) {
                return Some(Ok(result));
            }
        }
        None
    }
}

fn read_failed(file: &str, err: ::csv::Error) -> ImportError {
    let source = match err.into_kind() {
        ::csv::ErrorKind::Io(source) => source,
        other => std::io::Error::other(format!("{other:?}")),
    };
    ImportError::Read {
        file: file.to_owned(),
        source,
    }
}

/// Reads the file's start up to and including the first non-blank line
/// (bounded by [`MAX_SNIFF_BYTES`]), without a BOM, and the delimiter that
/// line uses.
fn sniff(reader: &mut impl BufRead) -> std::io::Result<(Vec<u8>, u8)> {
    let mut prefix = Vec::new();
    let mut limited = reader.take(MAX_SNIFF_BYTES);
    loop {
        let start = prefix.len();
        let read = limited.read_until(b'\n', &mut prefix)?;
        if start == 0 && prefix.starts_with(BOM) {
            prefix.drain(..BOM.len());
        }
        let line = &prefix[start.min(prefix.len())..];
        if read == 0 || !line.iter().all(u8::is_ascii_whitespace) {
            let delimiter = detect_delimiter(line);
            return Ok((prefix, delimiter));
        }
    }
}

/// `;` or `,`, whichever occurs more often outside double quotes; `;` on a
/// tie (including a one-column header).
fn detect_delimiter(line: &[u8]) -> u8 {
    let mut quoted = false;
    let (mut semicolons, mut commas) = (0usize, 0usize);
    for byte in line {
        match byte {
            b'"' => quoted = !quoted,
            b';' if !quoted => semicolons += 1,
            b',' if !quoted => commas += 1,
            _ => {}
        }
    }
    if commas > semicolons {
        b','
    } else {
        b';'
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_from_the_header_line() {
        assert_eq!(detect_delimiter(b"A;B;C\n"), b';');
        assert_eq!(detect_delimiter(b"A,B,C\r\n"), b',');
        assert_eq!(detect_delimiter(b"\"A;1\",B,C"), b',');
        assert_eq!(detect_delimiter(b"\"A,1\";B"), b';');
        assert_eq!(detect_delimiter(b"A"), b';');
    }

    #[test]
    fn sniff_skips_a_bom_and_blank_lines() {
        let mut input: &[u8] = b"\xEF\xBB\xBF\n  \r\nA,B\n1,2\n";
        let (prefix, delimiter) = sniff(&mut input).expect("in memory");
        assert_eq!(prefix, b"\n  \r\nA,B\n");
        assert_eq!(delimiter, b',');
        assert_eq!(input, b"1,2\n");
    }
}
