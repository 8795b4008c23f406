//! The standard import columns of the formats README (`SECTION_FIELD`) and
//! how each one's value is read. A column not in this table is a custom
//! field: kept verbatim (trimmed) and reported once as a warning.

/// The required record id column.
pub const RECORD_ID: &str = "IDENTIFICATION_RECORD_ID";
/// The client's own reference, echoed in results.
pub const CLIENT_REFERENCE: &str = "IDENTIFICATION_CLIENT_REFERENCE";
/// The script column, required unless the import names the script.
pub const SCRIPT: &str = "CONTROL_SCRIPT";
/// The address country; also the default region for phone numbers.
pub const COUNTRY: &str = "ADDRESS_COUNTRY";
/// The currency of the invoice amounts (default [`DEFAULT_CURRENCY`]).
pub const CURRENCY: &str = "INVOICE_CURRENCY";
/// Whether the record gets voice calls.
pub const SERVICES_VOICE: &str = "SERVICES_VOICE";
/// Whether the record gets an e-mail.
pub const SERVICES_EMAIL: &str = "SERVICES_EMAIL";
/// The address the e-mail goes to.
pub const CONTACT_EMAIL: &str = "CONTACT_EMAIL";
/// The currency assumed when `INVOICE_CURRENCY` is empty or absent.
pub const DEFAULT_CURRENCY: &str = "EUR";

/// The dialable phone columns, in the order their numbers are tried.
pub const DIALABLE_PHONES: [&str; 4] = [
    "CONTACT_PHONE_1",
    "CONTACT_PHONE_2",
    "CONTACT_PHONE_3",
    "CONTACT_MOBILE",
];

/// How a standard column's value is checked and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text, trimmed.
    Text,
    /// A phone number, normalised to E.164; a bad one is a warning.
    Phone,
    /// An amount in currency units, normalised to `1234.50`.
    Amount,
    /// A date, normalised to `YYYY-MM-DD`.
    Date,
    /// ISO 4217: three letters, upper case.
    Currency,
    /// ISO 639-1: two letters, lower case.
    Language,
    /// ISO 3166-1 alpha-2: two letters, upper case.
    Country,
    /// `Y` or `N`.
    YesNo,
    /// An e-mail address, trimmed; a malformed one is a warning (left out,
    /// like a bad phone number).
    Email,
    /// An IANA time zone name such as `Europe/Amsterdam`.
    TimeZone,
}

/// Every standard column with its kind, section by section.
const STANDARD: &[(&str, Kind)] = &[
    (RECORD_ID, Kind::Text),
    (CLIENT_REFERENCE, Kind::Text),
    ("PERSON_INITIALS", Kind::Text),
    ("PERSON_FIRST_NAME", Kind::Text),
    ("PERSON_LAST_NAME_PREFIX", Kind::Text),
    ("PERSON_LAST_NAME", Kind::Text),
    ("PERSON_GENDER", Kind::Text),
    ("PERSON_DATE_OF_BIRTH", Kind::Date),
    ("PERSON_LANGUAGE", Kind::Language),
    // Dialcast's own: where the person lives in time, when the number's
    // country does not say it well enough (calls respect its local hours).
    ("PERSON_TIME_ZONE", Kind::TimeZone),
    ("ADDRESS_STREET", Kind::Text),
    ("ADDRESS_HOUSE_NUMBER", Kind::Text),
    ("ADDRESS_HOUSE_NUMBER_ADDITION", Kind::Text),
    ("ADDRESS_POSTAL_CODE", Kind::Text),
    ("ADDRESS_CITY", Kind::Text),
    (COUNTRY, Kind::Country),
    ("CONTACT_PHONE_1", Kind::Phone),
    ("CONTACT_PHONE_2", Kind::Phone),
    ("CONTACT_PHONE_3", Kind::Phone),
    ("CONTACT_MOBILE", Kind::Phone),
    ("CONTACT_EMAIL", Kind::Email),
    ("INVOICE_NUMBER", Kind::Text),
    ("INVOICE_DATE", Kind::Date),
    ("INVOICE_DUE_DATE", Kind::Date),
    ("INVOICE_AMOUNT_OPEN", Kind::Amount),
    ("INVOICE_AMOUNT_TOTAL", Kind::Amount),
    (CURRENCY, Kind::Currency),
    ("INVOICE_DESCRIPTION", Kind::Text),
    ("INVOICE_SUPPLIER_NAME", Kind::Text),
    ("INVOICE_ARRANGEMENT_TERMS", Kind::Text),
    ("INVOICE_ARRANGEMENT_TERM_AMOUNT", Kind::Amount),
    ("INVOICE_ARRANGEMENT_FIRST_DUE_DATE", Kind::Date),
    ("INVOICELINES_1_DESCRIPTION", Kind::Text),
    ("INVOICELINES_1_AMOUNT", Kind::Amount),
    ("INVOICELINES_2_DESCRIPTION", Kind::Text),
    ("INVOICELINES_2_AMOUNT", Kind::Amount),
    ("INVOICELINES_3_DESCRIPTION", Kind::Text),
    ("INVOICELINES_3_AMOUNT", Kind::Amount),
    ("EMANDATE_REFERENCE", Kind::Text),
    ("EMANDATE_REASON", Kind::Text),
    ("EMANDATE_VALID_UNTIL", Kind::Date),
    ("CONTRACT_NUMBER", Kind::Text),
    ("CONTRACT_START_DATE", Kind::Date),
    ("CONTRACT_PRODUCT", Kind::Text),
    ("CONTRACT_CONTACT_NAME", Kind::Text),
    ("CONTRACT_CONTACT_PHONE", Kind::Phone),
    ("CONTRACT_CONTACT_EMAIL", Kind::Email),
    (SCRIPT, Kind::Text),
    ("CONTROL_START_DATE", Kind::Date),
    ("CONTROL_END_DATE", Kind::Date),
    ("CONTROL_PRIORITY", Kind::Text),
    ("CONTROL_CALLER_ID", Kind::Text),
    (SERVICES_VOICE, Kind::YesNo),
    ("SERVICES_SMS", Kind::YesNo),
    ("SERVICES_EMAIL", Kind::YesNo),
    ("SERVICES_PAYLINK", Kind::YesNo),
    ("SERVICES_EMANDATE", Kind::YesNo),
];

/// The canonical form of a header cell: trimmed and upper-cased, so that
/// column names match case-insensitively.
pub fn canonical_name(header_cell: &str) -> String {
    header_cell.trim().to_uppercase()
}

/// The kind of a standard column (by its canonical name), or `None` for a
/// custom column. Any other `SERVICES_*` column is custom but still `Y`/`N`.
pub fn kind_of(name: &str) -> Option<Kind> {
    STANDARD
        .iter()
        .find(|(standard, _)| *standard == name)
        .map(|(_, kind)| *kind)
}

/// How a column's value is read: its standard kind, `YesNo` for any
/// `SERVICES_*` column, else plain text.
pub fn read_as(name: &str) -> Kind {
    match kind_of(name) {
        Some(kind) => kind,
        None if name.starts_with("SERVICES_") => Kind::YesNo,
        None => Kind::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_case_insensitively_and_trimmed() {
        assert_eq!(canonical_name("  contact_Phone_1 "), "CONTACT_PHONE_1");
        assert_eq!(
            kind_of(&canonical_name("invoice_amount_open")),
            Some(Kind::Amount)
        );
    }

    #[test]
    fn standard_names_are_unique() {
        let mut names: Vec<&str> = STANDARD.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn unknown_columns_are_custom_text_except_services() {
        assert_eq!(kind_of("INVOICELINES_4_AMOUNT"), None);
        assert_eq!(read_as("INVOICELINES_4_AMOUNT"), Kind::Text);
        assert_eq!(read_as("SERVICES_FAX"), Kind::YesNo);
        assert_eq!(read_as("CONTRACT_CONTACT_PHONE"), Kind::Phone);
    }
}
