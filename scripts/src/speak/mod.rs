//! Speaking values from recorded segments: a value (amount, number, digits,
//! date, time) becomes a list of segment clip names, such as
//! `say/100 say/and say/5 say/euros` for 105 euros in English.
//!
//! Segments live below `say/` in each language folder of the audio
//! catalogue. Every language uses the same names for the same idea (the clip
//! `say/month_3` says "March" in English and "maart" in Dutch); a language
//! may not need all of them (Dutch has no ordinals, English no `say/uur`).
//! The segment inventory:
//!
//! | clip | English | Dutch |
//! | --- | --- | --- |
//! | `say/0` … `say/99` | zero … ninety-nine | nul … negenennegentig |
//! | `say/100` … `say/900` | one hundred … nine hundred | honderd … negenhonderd |
//! | `say/hundred` | hundred (years: nineteen hundred) | — |
//! | `say/thousand`, `say/million` | thousand, million | duizend, miljoen |
//! | `say/and` | and | en |
//! | `say/euro`, `say/euros` | euro, euros | euro (both) |
//! | `say/dollar`, `say/dollars` | dollar, dollars | dollar (both) |
//! | `say/pound`, `say/pounds` | pound, pounds | pond (both) |
//! | `say/cent`, `say/cents` | cent, cents | cent (both) |
//! | `say/penny`, `say/pence` | penny, pence | penny, pence |
//! | `say/month_1` … `say/month_12` | January … December | januari … december |
//! | `say/ordinal_1` … `say/ordinal_31` | first … thirty-first | — |
//! | `say/the`, `say/of` | the, of | — |
//! | `say/oh` | oh (nine oh five) | — |
//! | `say/am`, `say/pm` | a.m., p.m. | — |
//! | `say/uur` | — | uur |
//!
//! Where a row says "(both)" the language speaks one word for singular and
//! plural and only the first clip is used.

mod en;
mod nl;
pub mod value;

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

pub use value::{Amount, Currency, TimeOfDay, MAX_NUMBER};

use crate::SpeakError;

/// The languages values can be spoken in.
pub const SPEAKING_LANGUAGES: &[&str] = &["en", "nl"];

/// How a record value is spoken (`as = "..."` in a say step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Money: whole units and cents with currency words.
    Amount,
    /// A whole number, 0 to 999,999,999.
    Number,
    /// Digit by digit (phone numbers, references).
    Digits,
    /// A day and month, optionally with the year.
    Date,
    /// A time of day.
    Time,
}

impl ValueKind {
    /// The name used in scripts.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Amount => "amount",
            ValueKind::Number => "number",
            ValueKind::Digits => "digits",
            ValueKind::Date => "date",
            ValueKind::Time => "time",
        }
    }

    /// Every kind.
    pub const ALL: [ValueKind; 5] = [
        ValueKind::Amount,
        ValueKind::Number,
        ValueKind::Digits,
        ValueKind::Date,
        ValueKind::Time,
    ];
}

/// Options of one say step.
#[derive(Clone, Copy, Debug, Default)]
pub struct SayOptions<'a> {
    /// The currency code for amounts (`None` or blank: EUR).
    pub currency: Option<&'a str>,
    /// Whether dates include the year.
    pub with_year: bool,
}

/// The segment clip names that speak `text` as `kind` in `language`.
pub fn speak(
    language: &str,
    kind: ValueKind,
    text: &str,
    options: SayOptions<'_>,
) -> Result<Vec<String>, SpeakError> {
    let speaker = speaker(language)?;
    let mut out = Vec::new();
    match kind {
        ValueKind::Amount => {
            let amount = Amount::parse(text)?;
            let currency = Currency::parse(options.currency)?;
            speaker.amount(amount, currency, &mut out);
        }
        ValueKind::Number => speaker.number(value::parse_number(text)?, &mut out),
        ValueKind::Digits => {
            for d in value::parse_digits(text)? {
                out.push(cardinal(u32::from(d)));
            }
        }
        ValueKind::Date => speaker.date(value::parse_date(text)?, options.with_year, &mut out),
        ValueKind::Time => speaker.time(value::parse_time(text)?, &mut out),
    }
    Ok(out)
}

/// Every segment `language` may use to speak `kind`; a catalogue holding all
/// of them can speak every valid value of that kind.
pub fn inventory(language: &str, kind: ValueKind) -> Result<Vec<String>, SpeakError> {
    let speaker = speaker(language)?;
    let mut out = Vec::new();
    match kind {
        ValueKind::Digits => out.extend((0..10).map(cardinal)),
        _ => speaker.inventory(kind, &mut out),
    }
    Ok(out)
}

/// A language's rules for putting segments together.
trait Speaker {
    /// 0 to [`MAX_NUMBER`].
    fn number(&self, n: u32, out: &mut Vec<String>);
    fn amount(&self, amount: Amount, currency: Currency, out: &mut Vec<String>);
    fn date(&self, date: NaiveDate, with_year: bool, out: &mut Vec<String>);
    fn time(&self, time: TimeOfDay, out: &mut Vec<String>);
    /// Every segment the methods above can produce for `kind` (not digits).
    fn inventory(&self, kind: ValueKind, out: &mut Vec<String>);
}

fn speaker(language: &str) -> Result<&'static dyn Speaker, SpeakError> {
    match language {
        "en" => Ok(&en::English),
        "nl" => Ok(&nl::Dutch),
        _ => Err(SpeakError::UnsupportedLanguage {
            language: language.to_string(),
        }),
    }
}

// Segment names shared by the languages.

/// `say/<n>`, 0 to 99.
fn cardinal(n: u32) -> String {
    format!("say/{n}")
}

/// `say/<h>00`, h from 1 to 9.
fn hundreds(h: u32) -> String {
    format!("say/{h}00")
}

fn month(date: NaiveDate) -> String {
    format!("say/month_{}", date.month())
}

const THOUSAND: &str = "say/thousand";
const MILLION: &str = "say/million";
const AND: &str = "say/and";

/// The segments every language uses for numbers: 0–99 and the hundreds.
fn number_inventory(out: &mut Vec<String>) {
    out.extend((0..100).map(cardinal));
    out.extend((1..10).map(hundreds));
    out.push(THOUSAND.to_string());
    out.push(MILLION.to_string());
}

fn month_inventory(out: &mut Vec<String>) {
    out.extend((1..=12).map(|m| format!("say/month_{m}")));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests;
