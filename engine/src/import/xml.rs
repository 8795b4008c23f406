//! The XML reader: `<records>` of `<record>` elements, streamed with
//! quick-xml one record at a time, each record's elements flattened into
//! `SECTION_FIELD` names and handed with their values to the shared row
//! rules. Owns the flattening, the per-record header and XML's errors.
//!
//! # Layout
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <records>
//!   <record>
//!     <IDENTIFICATION><RECORD_ID>1001</RECORD_ID></IDENTIFICATION>
//!     <CONTACT><PHONE_1>020 123 4567</PHONE_1></CONTACT>
//!     <INVOICELINES n="1"><DESCRIPTION>Water</DESCRIPTION><AMOUNT>12.50</AMOUNT></INVOICELINES>
//!     <INVOICELINES_2><AMOUNT>3.10</AMOUNT></INVOICELINES_2>
//!   </record>
//! </records>
//! ```
//!
//! A field's name is the path of element names from below `<record>` to
//! the element holding the text, joined by `_`: `<CONTACT><PHONE_1>` is
//! `CONTACT_PHONE_1`. A numbered group is written either with an `n`
//! attribute, `<INVOICELINES n="1"><AMOUNT>`, or with the number in the
//! element name, `<INVOICELINES_1><AMOUNT>`; both are
//! `INVOICELINES_1_AMOUNT`. A child already named in full
//! (`<INVOICELINES><INVOICELINES_1_AMOUNT>`) and a flat field directly
//! under `<record>` (`<IDENTIFICATION_RECORD_ID>`) are read as named. The
//! names are then matched like CSV header cells (and renamed by a column
//! profile); an empty element is an empty value.
//!
//! Each record brings its own header, so the columns are the fields seen in
//! that record: a missing record id or script is that row's error, a field
//! twice in one record rejects the record, and an unknown field is a
//! warning in the first row that has it (not a header warning). `line` is
//! the line where `<record` starts.
//!
//! Text may use the predefined entities, character references and CDATA;
//! other entities, a document that is not well-formed, and an encoding
//! other than UTF-8 (declared or found) make the whole file an
//! [`ImportError`] naming the file and line.

use std::io::BufRead;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;

use super::table::Table;
use super::{ImportError, ImportIssue, ImportOptions, RowResult};

/// The deepest element nesting below `<record>` that is read.
const MAX_DEPTH: usize = 8;

/// The number of line breaks in an event's own text, to track lines.
pub(super) fn newlines(event: &Event<'_>) -> u64 {
    let text: &str = event;
    let count = text.bytes().filter(|byte| *byte == b'\n').count();
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// The character an entity or character reference stands for.
pub(super) fn entity_text(reference: &BytesRef<'_>) -> Result<char, quick_xml::Error> {
    if let Some(c) = reference.resolve_char_ref()? {
        return Ok(c);
    }
    let name: &str = reference;
    quick_xml::escape::resolve_predefined_entity(name)
        .and_then(|text| text.chars().next())
        .ok_or_else(|| {
            quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                0..name.len(),
                name.to_owned(),
            ))
        })
}

/// The records of an XML import, read one at a time; yields `Err` once
/// (and then ends) when the XML is not well-formed or not in the layout.
pub struct XmlRows<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    /// The line at the reader's position.
    line: u64,
    table: Table,
    options: ImportOptions,
    done: bool,
}

impl<R: BufRead> std::fmt::Debug for XmlRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlRows")
            .field("line", &self.line)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Opens an XML import: reads up to the `<records>` element. XML has no
/// header, so [`XmlRows::header_warnings`] is always empty.
pub fn xml_rows<R: BufRead>(reader: R, options: &ImportOptions) -> Result<XmlRows<R>, ImportError> {
    let table = Table::per_record(options)?;
    let mut rows = XmlRows {
        reader: Reader::from_reader(reader),
        buf: Vec::new(),
        line: 1,
        table,
        options: options.clone(),
        done: false,
    };
    loop {
        let (event, line) = rows.event()?;
        match event {
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding() {
                    let encoding = encoding.trim().to_ascii_lowercase();
                    if encoding != "utf-8" && encoding != "utf8" {
                        return Err(ImportError::XmlEncoding {
                            file: options.file_name.clone(),
                            encoding,
                        });
                    }
                }
            }
            Event::Start(element) if element.local_name().as_ref() == "records" => return Ok(rows),
            Event::Empty(element) if element.local_name().as_ref() == "records" => {
                rows.done = true;
                return Ok(rows);
            }
            Event::Start(element) | Event::Empty(element) => {
                return Err(rows.unexpected(line, &element_name(&element), "<records>"));
            }
            Event::Text(text) if text.trim().is_empty() => {}
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                return Err(rows.unexpected(line, "text", "<records>"));
            }
            Event::Eof => {
                return Err(ImportError::Empty {
                    file: options.file_name.clone(),
                })
            }
            Event::End(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

fn element_name(element: &BytesStart<'_>) -> String {
    format!(
        "<{}>",
        String::from_utf8_lossy(element.name().as_ref().as_bytes())
    )
}

/// One element open below `<record>`.
#[derive(Debug)]
struct Frame {
    /// The flattened name so far.
    name: String,
    text: String,
    has_children: bool,
}

/// The flattened name of `element` inside `parent` (empty at the top).
fn flatten(parent: &str, element: &BytesStart<'_>) -> String {
    let local = element.local_name();
    let mut name = local.as_ref().to_owned();
    let number = element
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|attr| attr.key.local_name().as_ref() == "n")
        .and_then(|attr| {
            attr.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|value| value.trim().to_owned())
        })
        .filter(|number| !number.is_empty());
    if let Some(number) = number {
        name.push('_');
        name.push_str(&number);
    }
    if parent.is_empty() {
        return name;
    }
    let already_full = name.len() > parent.len()
        && name
            .get(..parent.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(parent))
        && name.as_bytes().get(parent.len()) == Some(&b'_');
    if already_full {
        name
    } else {
        format!("{parent}_{name}")
    }
}

impl<R: BufRead> XmlRows<R> {
    /// Always empty: unknown fields are reported in the first row that has
    /// them.
    pub fn header_warnings(&self) -> &[ImportIssue] {
        &[]
    }

    fn file(&self) -> &str {
        &self.options.file_name
    }

    fn unexpected(&self, line: u64, found: &str, expected: &'static str) -> ImportError {
        ImportError::XmlLayout {
            file: self.file().to_owned(),
            line,
            found: found.to_owned(),
            expected,
        }
    }

    /// The next event (owned) and the line where it starts.
    fn event(&mut self) -> Result<(Event<'static>, u64), ImportError> {
        self.buf.clear();
        let start = self.line;
        let event = match self.reader.read_event_into(&mut self.buf) {
            Ok(event) => event.into_owned(),
            Err(quick_xml::Error::Encoding(_)) => {
                return Err(ImportError::XmlNotUtf8 {
                    file: self.options.file_name.clone(),
                    line: start,
                })
            }
            Err(source) => {
                return Err(ImportError::Xml {
                    file: self.options.file_name.clone(),
                    line: start,
                    source,
                })
            }
        };
        self.line += newlines(&event);
        Ok((event, start))
    }

    /// Reads one `<record>` after its start tag: its fields as
    /// `(name, value)`.
    fn record(&mut self) -> Result<Vec<(String, String)>, ImportError> {
        let mut fields = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let (event, line) = self.event()?;
            let empty = matches!(event, Event::Empty(_));
            match event {
                Event::Start(element) | Event::Empty(element) => {
                    let parent = stack.last_mut();
                    let parent_name = parent.as_ref().map_or("", |frame| frame.name.as_str());
                    let name = flatten(parent_name, &element);
                    if let Some(parent) = parent {
                        parent.has_children = true;
                    }
                    if empty {
                        fields.push((name, String::new()));
                    } else if stack.len() >= MAX_DEPTH {
                        return Err(self.unexpected(
                            line,
                            &element_name(&element),
                            "at most 8 levels of elements in a <record>",
                        ));
                    } else {
                        stack.push(Frame {
                            name,
                            text: String::new(),
                            has_children: false,
                        });
                    }
                }
                Event::End(_) => {
                    let Some(frame) = stack.pop() else {
                        return Ok(fields);
                    };
                    if !frame.has_children {
                        fields.push((frame.name, frame.text));
                    } else if !frame.text.trim().is_empty() {
                        return Err(self.unexpected(
                            line,
                            "text beside elements",
                            "either a value or elements inside an element",
                        ));
                    }
                }
                Event::Text(text) => match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&text.xml10_content()),
                    None if text.trim().is_empty() => {}
                    None => return Err(self.unexpected(line, "text", "section elements")),
                },
                Event::CData(text) => match stack.last_mut() {
                    Some(frame) => frame.text.push_str(&text.xml10_content()),
                    None => return Err(self.unexpected(line, "CDATA", "section elements")),
                },
                Event::GeneralRef(reference) => {
                    let c = entity_text(&reference).map_err(|source| ImportError::Xml {
                        file: self.file().to_owned(),
                        line,
                        source,
                    })?;
                    match stack.last_mut() {
                        Some(frame) => frame.text.push(c),
                        None => return Err(self.unexpected(line, "text", "section elements")),
                    }
                }
                Event::Eof => {
                    return Err(ImportError::Truncated {
                        file: self.file().to_owned(),
                        line,
                    })
                }
                Event::Decl(_) | Event::DocType(_) => {
                    return Err(self.unexpected(line, "a declaration", "section elements"))
                }
                Event::Comment(_) | Event::PI(_) => {}
            }
        }
    }

    /// After `</records>`: nothing but comments and white space.
    fn finish(&mut self) -> Result<(), ImportError> {
        loop {
            let (event, line) = self.event()?;
            match event {
                Event::Eof => return Ok(()),
                Event::Text(text) if text.trim().is_empty() => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(self.unexpected(line, "more content", "the end after </records>")),
            }
        }
    }

    fn next_row(&mut self) -> Result<Option<RowResult>, ImportError> {
        loop {
            let (event, line) = self.event()?;
            match event {
                Event::Start(element) if element.local_name().as_ref() == "record" => {
                    let fields = self.record()?;
                    let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
                    let values: Vec<&str> =
                        fields.iter().map(|(_, value)| value.as_str()).collect();
                    if let Some(result) = self.table.record(line, &names, &values, &self.options) {
                        return Ok(Some(result));
                    }
                }
                Event::Empty(element) if element.local_name().as_ref() == "record" => {}
                Event::Start(element) | Event::Empty(element) => {
                    return Err(self.unexpected(line, &element_name(&element), "<record>"));
                }
                Event::End(_) => {
                    self.finish()?;
                    return Ok(None);
                }
                Event::Text(text) if text.trim().is_empty() => {}
                Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(self.unexpected(line, "text", "<record>"));
                }
                Event::Eof => {
                    return Err(ImportError::Truncated {
                        file: self.file().to_owned(),
                        line,
                    })
                }
                Event::Decl(_) | Event::DocType(_) => {
                    return Err(self.unexpected(line, "a declaration", "<record>"))
                }
                Event::Comment(_) | Event::PI(_) => {}
            }
        }
    }
}

impl<R: BufRead> Iterator for XmlRows<R> {
    type Item = Result<RowResult, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_row() {
            Ok(Some(result)) => Some(Ok(result)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}
