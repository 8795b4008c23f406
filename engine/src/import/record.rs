//! From header and cells to a [`RowResult`]: the header check and the
//! per-row rules described in the module docs of [`crate::import`]. Knows
//! nothing of CSV, so other readers (ODS, XLSX, XML, API rows) can reuse it.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use phonenumber::country;

use super::columns::{
    canonical_name, kind_of, read_as, Kind, CLIENT_REFERENCE, CONTACT_EMAIL, COUNTRY, CURRENCY,
    DEFAULT_CURRENCY, DIALABLE_PHONES, RECORD_ID, SCRIPT, SERVICES_EMAIL, SERVICES_VOICE,
};
use super::normalise::{self, quoted};
use super::{ImportError, ImportIssue, ImportOptions, ImportedRecord, RowResult};

const WHY_RECORD_ID: &str =
    "the first line must be a header row naming the columns, and every row needs a record id";
const WHY_SCRIPT: &str =
    "name the script per row in this column or choose one for the whole import";

/// One header cell: its canonical name (empty for an unnamed column) and
/// how its values are read.
#[derive(Debug)]
struct Column {
    name: String,
    kind: Kind,
}

/// A checked header.
#[derive(Debug)]
pub(super) struct Header {
    columns: Vec<Column>,
    /// The index of `ADDRESS_COUNTRY`, if present.
    country: Option<usize>,
}

/// Reads a header row (cells as read, already renamed by any profile): no
/// name twice. Returns the header and one warning per unknown column; the
/// required columns are not checked (see [`check_required`]).
pub(super) fn header_of(
    cells: &[&str],
    line: u64,
    file: &str,
) -> Result<(Header, Vec<ImportIssue>), ImportError> {
    let mut columns = Vec::with_capacity(cells.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut warnings = Vec::new();
    let mut country = None;
    for (index, cell) in cells.iter().enumerate() {
        let name = canonical_name(cell);
        if !name.is_empty() {
            if let Some(first) = seen.insert(name.clone(), index) {
                return Err(ImportError::DuplicateColumn {
                    file: file.to_owned(),
                    line,
                    column: name,
                    first: first + 1,
                    second: index + 1,
                });
            }
            if kind_of(&name).is_none() {
                warnings.push(ImportIssue {
                    file: file.to_owned(),
                    line,
                    field: Some(name.clone()),
                    message: "unknown column; its values are kept as a custom field".to_owned(),
                });
            }
            if name == COUNTRY {
                country = Some(index);
            }
        }
        let kind = read_as(&name);
        columns.push(Column { name, kind });
    }
    Ok((Header { columns, country }, warnings))
}

impl Header {
    /// The index of the column with this canonical name.
    pub(super) fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.name == name)
    }
}

/// Fails unless the header has the columns every file needs:
/// `IDENTIFICATION_RECORD_ID`, and `CONTROL_SCRIPT` unless the options name
/// the script.
pub(super) fn check_required(
    header: &Header,
    line: u64,
    options: &ImportOptions,
) -> Result<(), ImportError> {
    let missing = |column, why| ImportError::MissingColumn {
        file: options.file_name.clone(),
        line,
        column,
        why,
    };
    if header.position(RECORD_ID).is_none() {
        return Err(missing(RECORD_ID, WHY_RECORD_ID));
    }
    if header.position(SCRIPT).is_none() && script_option(options).is_none() {
        return Err(missing(SCRIPT, WHY_SCRIPT));
    }
    Ok(())
}

fn script_option(options: &ImportOptions) -> Option<String> {
    options
        .script
        .as_deref()
        .map(str::trim)
        .filter(|script| !script.is_empty())
        .map(str::to_owned)
}

/// Turns rows into results; remembers the record ids seen.
#[derive(Debug)]
pub(super) struct RowBuilder {
    file: String,
    header: Header,
    default_region: country::Id,
    script: Option<String>,
    /// Record id → line of its first row.
    seen: HashMap<String, u64>,
    /// Whether a value in an unnamed column has been reported.
    unnamed_reported: bool,
}

impl RowBuilder {
    pub(super) fn new(
        header: Header,
        options: &ImportOptions,
        default_region: country::Id,
    ) -> Self {
        RowBuilder {
            file: options.file_name.clone(),
            header,
            default_region,
            script: script_option(options),
            seen: HashMap::new(),
            unnamed_reported: false,
        }
    }

    pub(super) fn file(&self) -> &str {
        &self.file
    }

    /// The header rows are read against from now on (XML: each record has
    /// its own).
    pub(super) fn set_header(&mut self, header: Header) {
        self.header = header;
    }

    /// A row rejected for one reason that is not about a column.
    pub(super) fn reject(&self, line: u64, message: String) -> RowResult {
        RowResult::Rejected {
            line,
            errors: vec![self.issue(line, None, message)],
            warnings: Vec::new(),
        }
    }

    fn issue(&self, line: u64, field: Option<&str>, message: String) -> ImportIssue {
        ImportIssue {
            file: self.file.clone(),
            line,
            field: field.map(str::to_owned),
            message,
        }
    }

    /// The result of the row starting at `line`, or `None` for a row whose
    /// cells are all empty.
    pub(super) fn row(&mut self, line: u64, cells: &[&str]) -> Option<RowResult> {
        if cells.iter().all(|cell| cell.trim().is_empty()) {
            return None;
        }
        let columns = self.header.columns.len();
        if cells.len() != columns {
            let message = format!(
                "the row has {} cells but the header has {columns} columns; \
                 quote values that contain the delimiter",
                cells.len()
            );
            return Some(RowResult::Rejected {
                line,
                errors: vec![self.issue(line, None, message)],
                warnings: Vec::new(),
            });
        }
        let region = self.region(cells);
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut fields = BTreeMap::new();
        let mut rejected_phones = Vec::new();
        for (index, cell) in cells.iter().enumerate() {
            let value = cell.trim();
            if value.is_empty() {
                continue;
            }
            let Some(column) = self.header.columns.get(index) else {
                continue;
            };
            if column.name.is_empty() {
                if !self.unnamed_reported {
                    self.unnamed_reported = true;
                    let message = format!(
                        "column {} has no name in the header; its values, such as {}, are ignored",
                        index + 1,
                        quoted(value)
                    );
                    warnings.push(self.issue(line, None, message));
                }
                continue;
            }
            let name = column.name.as_str();
            let normalised = match column.kind {
                Kind::Text => Ok(value.to_owned()),
                Kind::Amount => normalise::parse_amount(value)
                    .map(|cents| cents.to_string())
                    .map_err(|err| err.to_string()),
                Kind::Date => normalise::parse_date(value)
                    .map(normalise::format_date)
                    .map_err(|err| err.to_string()),
                Kind::Currency => normalise::currency(value).map_err(|err| err.to_string()),
                Kind::Language => normalise::language(value).map_err(|err| err.to_string()),
                Kind::Country => normalise::country(value).map_err(|err| err.to_string()),
                Kind::YesNo => normalise::yes_no(value).map_err(|err| err.to_string()),
                Kind::TimeZone => normalise::time_zone(value).map_err(|err| err.to_string()),
                Kind::Email => match normalise::email(value) {
                    Ok(address) => Ok(address),
                    Err(err) => {
                        warnings.push(self.issue(line, Some(name), err.to_string()));
                        continue;
                    }
                },
                Kind::Phone => match normalise::normalise_phone(value, region) {
                    Ok(number) => Ok(number),
                    Err(err) => {
                        warnings.push(self.issue(line, Some(name), err.to_string()));
                        rejected_phones.push((name.to_owned(), value.to_owned()));
                        continue;
                    }
                },
            };
            match normalised {
                Ok(value) => {
                    fields.insert(name.to_owned(), value);
                }
                Err(message) => errors.push(self.issue(line, Some(name), message)),
            }
        }

        let record_id = fields.get(RECORD_ID).cloned();
        match &record_id {
            None => errors.push(self.issue(
                line,
                Some(RECORD_ID),
                "missing; every row needs a record id, unique in the file".to_owned(),
            )),
            Some(id) => match self.seen.entry(id.clone()) {
                Entry::Occupied(first) => {
                    let message = format!(
                        "{} is already used on line {}; record ids must be unique in the file",
                        quoted(id),
                        first.get()
                    );
                    errors.push(self.issue(line, Some(RECORD_ID), message));
                }
                Entry::Vacant(slot) => {
                    slot.insert(line);
                }
            },
        }
        let script = fields.get(SCRIPT).cloned().or_else(|| self.script.clone());
        if script.is_none() {
            errors.push(self.issue(line, Some(SCRIPT), format!("missing; {WHY_SCRIPT}")));
        }
        fields
            .entry(CURRENCY.to_owned())
            .or_insert_with(|| DEFAULT_CURRENCY.to_owned());

        let mut phones: Vec<String> = Vec::new();
        for column in DIALABLE_PHONES {
            if let Some(number) = fields.get(column) {
                if !phones.contains(number) {
                    phones.push(number.clone());
                }
            }
        }
        let voice_wanted = fields.get(SERVICES_VOICE).map(String::as_str) != Some("N");
        let invalid_number = voice_wanted && phones.is_empty();

        let (Some(record_id), Some(script), true) = (record_id, script, errors.is_empty()) else {
            return Some(RowResult::Rejected {
                line,
                errors,
                warnings,
            });
        };
        if fields.get(SERVICES_EMAIL).map(String::as_str) == Some("Y")
            && !fields.contains_key(CONTACT_EMAIL)
        {
            let message = format!(
                "{SERVICES_EMAIL} is Y but there is no valid {CONTACT_EMAIL}; no e-mail is sent"
            );
            warnings.push(self.issue(line, Some(CONTACT_EMAIL), message));
        }
        if invalid_number {
            let message = format!(
                "no valid phone number in {}; the record is imported as invalid_number \
                 and not dialled",
                DIALABLE_PHONES.join(", ")
            );
            warnings.push(self.issue(line, None, message));
        }
        let record = ImportedRecord {
            line,
            record_id,
            client_reference: fields.get(CLIENT_REFERENCE).cloned(),
            script,
            fields,
            phones,
            rejected_phones,
            invalid_number,
        };
        Some(RowResult::Imported { record, warnings })
    }

    /// The region for this row's phone numbers: a usable `ADDRESS_COUNTRY`,
    /// else the import's default.
    fn region(&self, cells: &[&str]) -> country::Id {
        self.header
            .country
            .and_then(|index| cells.get(index))
            .and_then(|cell| normalise::phone_region(cell))
            .unwrap_or(self.default_region)
    }
}
