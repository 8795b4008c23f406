//! Column-mapping profiles: how one organisation's own column names map to
//! the standard fields of the formats README, plus constant values for
//! fields its files leave out. This module owns the profile type, its TOML
//! form and the checks made when a profile is loaded; applying it to a
//! header is done by the `table` module.
//!
//! # TOML form
//!
//! ```toml
//! # The profile's name, shown in messages.
//! name = "acme-debtors"
//!
//! # External column (as in the file; matched trimmed and case-insensitively)
//! # = internal field (SECTION_FIELD).
//! [columns]
//! "Klantnummer" = "IDENTIFICATION_RECORD_ID"
//! "Telefoon" = "CONTACT_PHONE_1"
//! "Openstaand bedrag" = "INVOICE_AMOUNT_OPEN"
//!
//! # Optional: values for fields a row leaves empty or the file lacks.
//! [defaults]
//! CONTROL_SCRIPT = "reminder"
//! ADDRESS_COUNTRY = "NL"
//! ```
//!
//! A column not named in `[columns]` is read under its own name, so a file
//! may mix mapped and standard columns. Two external columns mapped to the
//! same field are an error when the profile is loaded, as is a field name
//! that is not `SECTION_FIELD`-shaped (letters, digits and `_`, starting
//! with a letter). In XML the external name is the flattened
//! `SECTION_FIELD` name of the element.

use std::collections::BTreeMap;

use super::columns::canonical_name;

/// A column-mapping profile; see the module docs for its TOML form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnProfile {
    /// The profile's name, e.g. the organisation's.
    pub name: String,
    /// Canonical external name → internal field.
    columns: BTreeMap<String, String>,
    /// Internal field → value for rows that leave it empty.
    defaults: BTreeMap<String, String>,
}

/// A profile that cannot be used; names where it came from and the key.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{origin}: not valid TOML: {source}")]
    Toml {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{origin}: {key}: {problem}")]
    Key {
        origin: String,
        /// The key as written, e.g. `columns."Telefoon"`.
        key: String,
        problem: String,
    },
}

impl ColumnProfile {
    /// An empty profile: every column read under its own name.
    pub fn new(name: impl Into<String>) -> Self {
        ColumnProfile {
            name: name.into(),
            ..ColumnProfile::default()
        }
    }

    /// Reads a profile from its TOML text; `origin` (a path or a
    /// description) starts every error message.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ProfileError> {
        let table: toml::Table = text.parse().map_err(|source| ProfileError::Toml {
            origin: origin.to_owned(),
            source,
        })?;
        let key_error = |key: String, problem: String| ProfileError::Key {
            origin: origin.to_owned(),
            key,
            problem,
        };
        let mut profile = ColumnProfile::default();
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("name", toml::Value::String(name)) => profile.name.clone_from(name),
                ("columns" | "defaults", toml::Value::Table(entries)) => {
                    for (entry, value) in entries {
                        let shown = format!("{key}.{entry:?}");
                        let toml::Value::String(value) = value else {
                            return Err(key_error(shown, "expected a string".to_owned()));
                        };
                        let added = if key == "columns" {
                            profile.map_column(entry, value)
                        } else {
                            profile.add_default(entry, value)
                        };
                        added.map_err(|problem| key_error(shown, problem))?;
                    }
                }
                ("name", _) => return Err(key_error(key.clone(), "expected a string".to_owned())),
                ("columns" | "defaults", _) => {
                    return Err(key_error(key.clone(), "expected a table".to_owned()))
                }
                _ => {
                    return Err(key_error(
                        key.clone(),
                        "unknown key; expected name, [columns] or [defaults]".to_owned(),
                    ))
                }
            }
        }
        Ok(profile)
    }

    /// Maps the external column `external` to the internal `field`. Fails
    /// (with the reason) when the field is not a field name, the external
    /// name is empty or already mapped, or another column maps to `field`.
    pub fn map_column(&mut self, external: &str, field: &str) -> Result<(), String> {
        let external = canonical_name(external);
        let field = field_name(field)?;
        if external.is_empty() {
            return Err("the external column name is empty".to_owned());
        }
        if let Some((other, _)) = self.columns.iter().find(|(_, mapped)| **mapped == field) {
            return Err(format!(
                "{field} is already mapped from column {other:?}; a field can come from one column only"
            ));
        }
        if self.columns.contains_key(&external) {
            return Err(format!("column {external:?} is mapped twice"));
        }
        self.columns.insert(external, field);
        Ok(())
    }

    /// Gives `field` the value `value` in rows that leave it empty.
    pub fn add_default(&mut self, field: &str, value: &str) -> Result<(), String> {
        let field = field_name(field)?;
        if value.trim().is_empty() {
            return Err("the default value is empty".to_owned());
        }
        self.defaults.insert(field, value.trim().to_owned());
        Ok(())
    }

    /// The internal field for an external column name, if the profile maps
    /// it.
    pub fn field_for(&self, external: &str) -> Option<&str> {
        self.columns
            .get(&canonical_name(external))
            .map(String::as_str)
    }

    /// The mapped columns: canonical external name → internal field.
    pub fn columns(&self) -> &BTreeMap<String, String> {
        &self.columns
    }

    /// The constant defaults: internal field → value.
    pub fn defaults(&self) -> &BTreeMap<String, String> {
        &self.defaults
    }
}

/// The canonical field name, if it is `SECTION_FIELD`-shaped.
fn field_name(field: &str) -> Result<String, String> {
    let name = canonical_name(field);
    let shaped = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if shaped {
        Ok(name)
    } else {
        Err(format!(
            "{field:?} is not a field name; expected SECTION_FIELD, e.g. CONTACT_PHONE_1"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_profile_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/example.toml");
        let text = std::fs::read_to_string(path).expect("example profile");
        let profile = ColumnProfile::from_toml(&text, path).expect("valid");
        assert_eq!(profile.name, "example-debtors");
        assert_eq!(
            profile.field_for(" klantnummer "),
            Some("IDENTIFICATION_RECORD_ID")
        );
        assert_eq!(
            profile.defaults().get("CONTROL_SCRIPT").map(String::as_str),
            Some("reminder")
        );
    }

    #[test]
    fn errors_name_the_key() {
        let twice = "[columns]\nTel = \"CONTACT_PHONE_1\"\nTelefoon = \"contact_phone_1\"\n";
        let err = ColumnProfile::from_toml(twice, "acme.toml").expect_err("mapped twice");
        assert_eq!(
            err.to_string(),
            "acme.toml: columns.\"Telefoon\": CONTACT_PHONE_1 is already mapped from column \"TEL\"; \
             a field can come from one column only"
        );
        let bad = "[columns]\nTel = \"phone 1\"\n";
        let err = ColumnProfile::from_toml(bad, "acme.toml").expect_err("bad field");
        assert!(
            err.to_string()
                .starts_with("acme.toml: columns.\"Tel\": \"phone 1\" is not a field name"),
            "{err}"
        );
        let err = ColumnProfile::from_toml("colums = 1\n", "acme.toml").expect_err("typo");
        assert!(
            err.to_string()
                .starts_with("acme.toml: colums: unknown key"),
            "{err}"
        );
        let err = ColumnProfile::from_toml("[defaults]\nCONTROL_SCRIPT = 3\n", "acme.toml")
            .expect_err("not a string");
        assert_eq!(
            err.to_string(),
            "acme.toml: defaults.\"CONTROL_SCRIPT\": expected a string"
        );
        let err = ColumnProfile::from_toml("[columns\n", "acme.toml").expect_err("syntax");
        assert!(
            err.to_string().starts_with("acme.toml: not valid TOML"),
            "{err}"
        );
    }
}
