//! Record fields: the standard `SECTION_FIELD` names of the import layout
//! (`shared/formats/README.md`) and the [`RecordFields`] trait through which
//! the interpreter reads a record.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Every field of the import (delivery) layout, flattened as `SECTION_FIELD`.
/// A script may read these and any field it lists in `custom_fields`.
pub const STANDARD_FIELDS: &[&str] = &[
    // IDENTIFICATION
    "IDENTIFICATION_RECORD_ID",
    "IDENTIFICATION_CLIENT_REFERENCE",
    // PERSON
    "PERSON_INITIALS",
    "PERSON_FIRST_NAME",
    "PERSON_LAST_NAME_PREFIX",
    "PERSON_LAST_NAME",
    "PERSON_GENDER",
    "PERSON_DATE_OF_BIRTH",
    "PERSON_LANGUAGE",
    // ADDRESS
    "ADDRESS_STREET",
    "ADDRESS_HOUSE_NUMBER",
    "ADDRESS_HOUSE_NUMBER_ADDITION",
    "ADDRESS_POSTAL_CODE",
    "ADDRESS_CITY",
    "ADDRESS_COUNTRY",
    // CONTACT
    "CONTACT_PHONE_1",
    "CONTACT_PHONE_2",
    "CONTACT_PHONE_3",
    "CONTACT_MOBILE",
    "CONTACT_EMAIL",
    // INVOICE
    "INVOICE_NUMBER",
    "INVOICE_DATE",
    "INVOICE_DUE_DATE",
    "INVOICE_AMOUNT_OPEN",
    "INVOICE_AMOUNT_TOTAL",
    "INVOICE_CURRENCY",
    "INVOICE_DESCRIPTION",
    "INVOICE_SUPPLIER_NAME",
    // INVOICE_ARRANGEMENT
    "INVOICE_ARRANGEMENT_TERMS",
    "INVOICE_ARRANGEMENT_TERM_AMOUNT",
    "INVOICE_ARRANGEMENT_FIRST_DUE_DATE",
    // INVOICELINES (at most 3)
    "INVOICELINES_1_DESCRIPTION",
    "INVOICELINES_1_AMOUNT",
    "INVOICELINES_2_DESCRIPTION",
    "INVOICELINES_2_AMOUNT",
    "INVOICELINES_3_DESCRIPTION",
    "INVOICELINES_3_AMOUNT",
    // EMANDATE
    "EMANDATE_REFERENCE",
    "EMANDATE_REASON",
    "EMANDATE_VALID_UNTIL",
    // CONTRACT
    "CONTRACT_NUMBER",
    "CONTRACT_START_DATE",
    "CONTRACT_PRODUCT",
    // CONTRACT_CONTACT
    "CONTRACT_CONTACT_NAME",
    "CONTRACT_CONTACT_PHONE",
    "CONTRACT_CONTACT_EMAIL",
    // CONTROL
    "CONTROL_SCRIPT",
    "CONTROL_START_DATE",
    "CONTROL_END_DATE",
    "CONTROL_PRIORITY",
    "CONTROL_CALLER_ID",
    // SERVICES
    "SERVICES_VOICE",
    "SERVICES_SMS",
    "SERVICES_EMAIL",
    "SERVICES_PAYLINK",
    "SERVICES_EMANDATE",
];

/// The field that chooses the language a call is spoken in (ISO 639-1).
pub const LANGUAGE_FIELD: &str = "PERSON_LANGUAGE";

/// The field that names the currency of amounts (ISO 4217, default EUR).
pub const CURRENCY_FIELD: &str = "INVOICE_CURRENCY";

/// Fields the engine sets for each call, beside the record's own, so a
/// script can branch on the moment rather than on the record:
///
/// - `CALL_FORWARDING_OPEN`: `Y` when calls may be forwarded to the call
///   centre now, `N` while forwarding is paused for the script (or the
///   centre is closed). A script branches on it to its "outside opening
///   hours" block.
pub const CALL_FIELDS: &[&str] = &[FORWARDING_OPEN_FIELD];

/// See [`CALL_FIELDS`].
pub const FORWARDING_OPEN_FIELD: &str = "CALL_FORWARDING_OPEN";

/// Whether `name` is one of [`STANDARD_FIELDS`] or [`CALL_FIELDS`].
pub fn is_standard_field(name: &str) -> bool {
    STANDARD_FIELDS.contains(&name) || CALL_FIELDS.contains(&name)
}

/// Read access to one record's fields by their `SECTION_FIELD` name.
///
/// A missing field and a field holding only white space are treated alike
/// by the interpreter (absent).
pub trait RecordFields {
    /// The value of `name`, if the record has it.
    fn field(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> RecordFields for HashMap<String, String, S> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl RecordFields for BTreeMap<String, String> {
    fn field(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn standard_fields_are_unique_and_upper_case() {
        let set: BTreeSet<_> = STANDARD_FIELDS.iter().collect();
        assert_eq!(set.len(), STANDARD_FIELDS.len());
        for f in STANDARD_FIELDS {
            assert!(f
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'));
        }
        assert!(is_standard_field(LANGUAGE_FIELD));
        assert!(is_standard_field(CURRENCY_FIELD));
    }

    #[test]
    fn maps_are_records() {
        let mut h = HashMap::new();
        h.insert("A".to_string(), "1".to_string());
        let b: BTreeMap<String, String> = h.clone().into_iter().collect();
        assert_eq!(h.field("A"), Some("1"));
        assert_eq!(b.field("A"), Some("1"));
        assert_eq!(b.field("B"), None);
    }
}
