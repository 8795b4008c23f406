//! Message templates: the text of an SMS or e-mail a script sends, per
//! language, with `{FIELD}` placeholders filled from the record. This module
//! owns the placeholder syntax (reading it, with the offset of a mistake),
//! the checked [`MessageTemplate`] and rendering one for a record. Which
//! fields and languages a template may use is checked with the rest of the
//! script in [`crate::validate`].
//!
//! Syntax: `{FIELD}` is the record's field (trimmed); `{FIELD|text}` is
//! `text` when the field is missing or blank; `{{` and `}}` are a literal
//! brace. A placeholder without a default whose field is blank makes the
//! render fail with [`RenderError`] naming the fields, so no message goes
//! out as "Dear , you owe ".

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::RecordFields;

/// How a template's message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A text message: a text, no subject.
    Sms,
    /// An e-mail: a subject and a text.
    Email,
}

impl Channel {
    /// As written in a script: `sms` or `email`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

/// One piece of a template text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    Field {
        name: String,
        default: Option<String>,
    },
}

/// A template text as written and as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text {
    pub source: String,
    pub parts: Vec<Part>,
}

/// A placeholder that does not read, with the byte offset in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlaceholderError {
    pub offset: usize,
    pub reason: &'static str,
}

/// A placeholder's field name, with its byte offset in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldAt {
    pub name: String,
    pub offset: usize,
}

/// Reads a template text into parts; also returns every field it names,
/// where. Stops at the first mistake.
pub(crate) fn parse_text(source: &str) -> Result<(Text, Vec<FieldAt>), PlaceholderError> {
    let mut parts = Vec::new();
    let mut fields = Vec::new();
    let mut literal = String::new();
    let mut chars = source.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                chars.next();
                literal.push('}');
            }
            '}' => {
                return Err(PlaceholderError {
                    offset: at,
                    reason: "a '}' closes no placeholder; write }} for a literal brace",
                })
            }
            '{' => {
                let rest = &source[at + 1..];
                let Some(len) = rest.find('}') else {
                    return Err(PlaceholderError {
                        offset: at,
                        reason: "this placeholder is not closed; expected {FIELD} or {FIELD|default}, or {{ for a literal brace",
                    });
                };
                let inside = &rest[..len];
                let (name, default) = match inside.split_once('|') {
                    Some((name, default)) => (name, Some(default.to_string())),
                    None => (inside, None),
                };
                if name.is_empty() || name.contains(['{', '\n']) {
                    return Err(PlaceholderError {
                        offset: at,
                        reason: "a placeholder needs a field name; expected {FIELD} or {FIELD|default}, or {{ for a literal brace",
                    });
                }
                if default.as_deref().is_some_and(|d| d.contains('{')) {
                    return Err(PlaceholderError {
                        offset: at,
                        reason: "a placeholder's default is plain text; it may not hold '{'",
                    });
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                fields.push(FieldAt {
                    name: name.to_string(),
                    offset: at + 1,
                });
                parts.push(Part::Field {
                    name: name.to_string(),
                    default,
                });
                // Skip to the closing brace.
                for (i, _) in chars.by_ref() {
                    if i == at + 1 + len {
                        break;
                    }
                }
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok((
        Text {
            source: source.to_string(),
            parts,
        },
        fields,
    ))
}

/// Where the content of a TOML string value starts in the script text, when
/// the value is written without escapes (so offsets in the value are offsets
/// in the text); `None` otherwise.
pub(crate) fn content_start(
    script: &str,
    span: &std::ops::Range<usize>,
    value: &str,
) -> Option<usize> {
    let written = script.get(span.clone())?;
    let (open, close) = if written.starts_with("\"\"\"") || written.starts_with("'''") {
        let after = &written[3..];
        let newline = if after.starts_with("\r\n") {
            2
        } else if after.starts_with('\n') {
            1
        } else {
            0
        };
        (3 + newline, 3)
    } else if written.starts_with('"') || written.starts_with('\'') {
        (1, 1)
    } else {
        return None;
    };
    let content = written.get(open..written.len().checked_sub(close)?)?;
    (content == value).then_some(span.start + open)
}

/// A checked message template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageTemplate {
    pub(crate) name: String,
    pub(crate) channel: Channel,
    /// By language: every language of the script has one.
    pub(crate) texts: BTreeMap<String, Text>,
    /// E-mail only, by language, like `texts`.
    pub(crate) subjects: BTreeMap<String, Text>,
}

/// A template filled in for one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMessage {
    /// The template's name.
    pub template: String,
    pub channel: Channel,
    /// The language it was written in.
    pub language: String,
    /// E-mail only.
    pub subject: Option<String>,
    pub text: String,
}

/// A template could not be filled in for a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Placeholders without a default whose fields the record leaves blank.
    #[error("template \"{template}\" needs {}, which the record leaves empty", fields.join(", "))]
    MissingFields {
        /// The template.
        template: String,
        /// The blank fields, each once, in order of use.
        fields: Vec<String>,
    },
}

impl MessageTemplate {
    /// The template's name (`[templates.<name>]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SMS or e-mail.
    pub fn channel(&self) -> Channel {
        self.channel
    }

    /// The text as written, per language.
    pub fn texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.texts
            .iter()
            .map(|(l, t)| (l.as_str(), t.source.as_str()))
    }

    /// The subject as written, per language (e-mail only; empty for SMS).
    pub fn subjects(&self) -> impl Iterator<Item = (&str, &str)> {
        self.subjects
            .iter()
            .map(|(l, t)| (l.as_str(), t.source.as_str()))
    }

    /// Fills the template in `language` (a language of the script; another
    /// falls back to the first the template has) from `record`.
    pub fn render(
        &self,
        language: &str,
        record: &dyn RecordFields,
    ) -> Result<RenderedMessage, RenderError> {
        let (language, text) = match self.texts.get_key_value(language) {
            Some(found) => found,
            None => match self.texts.iter().next() {
                Some(first) => first,
                None => {
                    return Err(RenderError::MissingFields {
                        template: self.name.clone(),
                        fields: Vec::new(),
                    })
                }
            },
        };
        let mut missing = Vec::new();
        let subject = self
            .subjects
            .get(language)
            .map(|s| fill(s, record, &mut missing));
        let text = fill(text, record, &mut missing);
        if !missing.is_empty() {
            return Err(RenderError::MissingFields {
                template: self.name.clone(),
                fields: missing,
            });
        }
        Ok(RenderedMessage {
            template: self.name.clone(),
            channel: self.channel,
            language: language.clone(),
            subject,
            text,
        })
    }
}

fn fill(text: &Text, record: &dyn RecordFields, missing: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(text.source.len() + 32);
    for part in &text.parts {
        match part {
            Part::Literal(s) => out.push_str(s),
            Part::Field { name, default } => {
                let value = record.field(name).map(str::trim).filter(|v| !v.is_empty());
                match (value, default) {
                    (Some(v), _) => out.push_str(v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) => {
                        if !missing.contains(name) {
                            missing.push(name.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn parts(s: &str) -> Vec<Part> {
        parse_text(s).unwrap().0.parts
    }

    fn field(name: &str, default: Option<&str>) -> Part {
        Part::Field {
            name: name.to_string(),
            default: default.map(str::to_string),
        }
    }

    #[test]
    fn placeholders_and_literal_braces_are_read() {
        assert_eq!(
            parts("Dear {PERSON_FIRST_NAME|customer}, pay {INVOICE_AMOUNT_OPEN} {{now}}"),
            vec![
                Part::Literal("Dear ".into()),
                field("PERSON_FIRST_NAME", Some("customer")),
                Part::Literal(", pay ".into()),
                field("INVOICE_AMOUNT_OPEN", None),
                Part::Literal(" {now}".into()),
            ]
        );
        let (_, fields) = parse_text("ab {X} {Y|}").unwrap();
        assert_eq!(
            fields,
            vec![
                FieldAt {
                    name: "X".into(),
                    offset: 4
                },
                FieldAt {
                    name: "Y".into(),
                    offset: 8
                }
            ]
        );
        assert_eq!(
            parts("é{X}"),
            vec![Part::Literal("é".into()), field("X", None)]
        );
    }

    #[test]
    fn mistakes_name_where_they_are() {
        for (text, offset, words) in [
            ("pay {AMOUNT", 4, "not closed"),
            ("pay } now", 4, "closes no placeholder"),
            ("a {} b", 2, "needs a field name"),
            ("a {|x} b", 2, "needs a field name"),
            ("a {X|{Y}} b", 2, "plain text"),
        ] {
            let e = parse_text(text).unwrap_err();
            assert_eq!(e.offset, offset, "{text}");
            assert!(e.reason.contains(words), "{text}: {}", e.reason);
        }
    }

    #[test]
    fn content_start_maps_offsets_only_for_unescaped_strings() {
        let script = "a = \"x{Y}\"\nb = \"\"\"\nline {Z}\"\"\"\nc = \"q\\\"{Y}\"";
        let a = script.find("\"x").unwrap();
        assert_eq!(content_start(script, &(a..a + 6), "x{Y}"), Some(a + 1));
        let b = script.find("\"\"\"").unwrap();
        let b_end = script[b + 3..].find("\"\"\"").unwrap() + b + 6;
        assert_eq!(content_start(script, &(b..b_end), "line {Z}"), Some(b + 4));
        let c = script.find("\"q").unwrap();
        assert_eq!(content_start(script, &(c..script.len()), "q\"{Y}"), None);
    }

    fn template() -> MessageTemplate {
        let text = |s: &str| parse_text(s).unwrap().0;
        MessageTemplate {
            name: "reminder".into(),
            channel: Channel::Email,
            texts: [
                ("en".to_string(), text("Dear {PERSON_FIRST_NAME|customer}, {INVOICE_AMOUNT_OPEN} is due on {INVOICE_DUE_DATE}.")),
                ("nl".to_string(), text("Beste {PERSON_FIRST_NAME|klant}, {INVOICE_AMOUNT_OPEN}.")),
            ]
            .into(),
            subjects: [
                ("en".to_string(), text("Invoice {INVOICE_NUMBER}")),
                ("nl".to_string(), text("Factuur {INVOICE_NUMBER}")),
            ]
            .into(),
        }
    }

    fn record(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_record_fills_the_template_in_its_language() {
        let r = record(&[
            ("INVOICE_AMOUNT_OPEN", " 49.95 "),
            ("INVOICE_DUE_DATE", "2026-03-21"),
            ("INVOICE_NUMBER", "F-1"),
            ("PERSON_FIRST_NAME", "  "),
        ]);
        let m = template().render("en", &r).unwrap();
        assert_eq!(m.subject.as_deref(), Some("Invoice F-1"));
        assert_eq!(m.text, "Dear customer, 49.95 is due on 2026-03-21.");
        assert_eq!(m.language, "en");
        let m = template().render("nl", &r).unwrap();
        assert_eq!(m.text, "Beste klant, 49.95.");
        assert_eq!(m.subject.as_deref(), Some("Factuur F-1"));
        // Not a language of the template: the first one it has.
        assert_eq!(template().render("de", &r).unwrap().language, "en");
    }

    #[test]
    fn blank_fields_without_a_default_fail_the_render_and_are_named() {
        let r = record(&[("INVOICE_DUE_DATE", "2026-03-21")]);
        let e = template().render("en", &r).unwrap_err();
        assert_eq!(
            e,
            RenderError::MissingFields {
                template: "reminder".into(),
                fields: vec!["INVOICE_NUMBER".into(), "INVOICE_AMOUNT_OPEN".into()],
            }
        );
        assert!(e
            .to_string()
            .contains("INVOICE_NUMBER, INVOICE_AMOUNT_OPEN"));
    }
}
