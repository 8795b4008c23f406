//! Normalising one import value: amounts, dates, phone numbers and codes.
//! Pure functions on a trimmed string; each error names the value and says
//! what was expected, ready to follow `file:line: FIELD: ` in a report.
//!
//! # Amounts
//!
//! An amount is written in currency units with digits and at most two kinds
//! of mark, `.` and `,`; the canonical form is `1234.50` (no grouping, two
//! decimals). The rule:
//!
//! - no mark: whole units (`1250` → `1250.00`);
//! - both marks: the **last** mark is the decimal mark and appears once; the
//!   other one groups thousands (`1.250,50` and `1,250.50` → `1250.50`);
//! - one mark, more than once: it groups thousands (`1.250.000` → `1250000.00`);
//! - one mark, once, followed by one or two digits: decimal mark (`125,5` →
//!   `125.50`);
//! - one mark, once, followed by exactly three digits after a valid first
//!   group (`1.250`, `12,500`): **ambiguous** (thousands or decimals), an
//!   error that asks for an unambiguous form;
//! - otherwise the single mark is a decimal mark (`0,125`, `1250.500`).
//!
//! Thousands groups are checked: the first has one to three digits and no
//! leading zero, every later one exactly three. Decimals beyond the second
//! must be zeros (`12.5000` is fine, `12.345` is an error). At most
//! [`MAX_AMOUNT_DIGITS`] digits before the decimal mark. Signs, spaces,
//! currency symbols and anything else are errors.

use chrono::NaiveDate;
use phonenumber::country;

/// At most this many digits before the decimal mark (below 10¹² units).
pub const MAX_AMOUNT_DIGITS: usize = 12;

/// Longer phone cells are not handed to the parser at all.
const MAX_PHONE_CHARS: usize = 64;

/// Regular expressions of the numbering metadata kept compiled. The
/// phonenumber crate keeps 100, fewer than reading one country's numbers
/// uses, so it recompiled them again and again: most of an import's time.
const PHONE_REGEX_CACHE: usize = 1024;

/// Values longer than this are shortened in messages.
const MAX_QUOTED_CHARS: usize = 60;

/// `value` in double quotes, escaped, shortened if very long.
pub(crate) fn quoted(value: &str) -> String {
    if value.chars().count() <= MAX_QUOTED_CHARS {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(MAX_QUOTED_CHARS).collect();
        format!("{head:?}…")
    }
}

/// Why a value is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{} is not an amount; expected e.g. 125.50 or 125,50", quoted(.value))]
    NotAnAmount { value: String },
    #[error(
        "{} is ambiguous (thousands or decimals?); write {thousands} or {thousands}.00 \
         for thousands, or use at most two decimals",
        quoted(.value)
    )]
    Ambiguous { value: String, thousands: String },
    #[error("{} has more than two decimals; expected e.g. 125.50 or 125,50", quoted(.value))]
    TooManyDecimals { value: String },
    #[error("{} is negative; expected an amount of zero or more, e.g. 125.50", quoted(.value))]
    Negative { value: String },
    #[error("{} is too large; at most {MAX_AMOUNT_DIGITS} digits before the decimal mark", quoted(.value))]
    TooLarge { value: String },
}

/// An amount in cents, e.g. `125050` for `1250.50`. Its `Display` is the
/// canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cents(pub u64);

impl std::fmt::Display for Cents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Reads an amount by the rule in the module docs.
pub fn parse_amount(value: &str) -> Result<Cents, AmountError> {
    let value = value.trim();
    let not_an_amount = || AmountError::NotAnAmount {
        value: value.to_owned(),
    };
    if let Some(rest) = value.strip_prefix('-') {
        return match parse_amount(rest) {
            Ok(_) => Err(AmountError::Negative {
                value: value.to_owned(),
            }),
            Err(_) => Err(not_an_amount()),
        };
    }
    let bytes = value.as_bytes();
    let digit_ends = matches!(
        (bytes.first(), bytes.last()),
        (Some(first), Some(last)) if first.is_ascii_digit() && last.is_ascii_digit()
    );
    if !digit_ends
        || !bytes
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b'.' || *b == b',')
    {
        return Err(not_an_amount());
    }
    let dots = value.matches('.').count();
    let commas = value.matches(',').count();
    // (whole part, its thousands separator, decimals)
    let (whole, group, decimals) = match (dots, commas) {
        (0, 0) => (value, None, ""),
        (d, c) if d > 0 && c > 0 => {
            let at = value.rfind(['.', ',']).ok_or_else(not_an_amount)?;
            let (mark, other) = if value[at..].starts_with('.') {
                ('.', ',')
            } else {
                (',', '.')
            };
            if value.matches(mark).count() != 1 {
                return Err(not_an_amount());
            }
            (&value[..at], Some(other), &value[at + 1..])
        }
        (1, 0) | (0, 1) => {
            let at = value.find(['.', ',']).ok_or_else(not_an_amount)?;
            let (whole, decimals) = (&value[..at], &value[at + 1..]);
            if decimals.len() == 3 && is_first_group(whole) {
                return Err(AmountError::Ambiguous {
                    value: value.to_owned(),
                    thousands: format!("{whole}{decimals}"),
                });
            }
            (whole, None, decimals)
        }
        (d, _) if d > 0 => (value, Some('.'), ""),
        _ => (value, Some(','), ""),
    };
    let whole_digits = match group {
        None => whole.to_owned(),
        Some(separator) => ungroup(whole, separator).ok_or_else(not_an_amount)?,
    };
    let significant = whole_digits.trim_start_matches('0');
    if significant.len() > MAX_AMOUNT_DIGITS {
        return Err(AmountError::TooLarge {
            value: value.to_owned(),
        });
    }
    if decimals.len() > 2 && decimals[2..].bytes().any(|b| b != b'0') {
        return Err(AmountError::TooManyDecimals {
            value: value.to_owned(),
        });
    }
    let units: u64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| not_an_amount())?
    };
    let mut cents_text: String = decimals.chars().take(2).collect();
    while cents_text.len() < 2 {
        cents_text.push('0');
    }
    let cents: u64 = cents_text.parse().map_err(|_| not_an_amount())?;
    Ok(Cents(units * 100 + cents))
}

/// Whether `digits` can open a thousands-grouped number: one to three
/// digits, no leading zero.
fn is_first_group(digits: &str) -> bool {
    (1..=3).contains(&digits.len()) && !digits.starts_with('0')
}

/// `1.250.000` with separator `.` → `1250000`; `None` if the groups are not
/// one to three digits followed by groups of exactly three.
fn ungroup(whole: &str, separator: char) -> Option<String> {
    let mut groups = whole.split(separator);
    let first = groups.next()?;
    if !is_first_group(first) {
        return None;
    }
    let mut digits = first.to_owned();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        digits.push_str(group);
    }
    Some(digits)
}

/// Why a value is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("{} is not a date; expected YYYY-MM-DD or DD-MM-YYYY, e.g. 2024-03-17", quoted(.value))]
    NotADate { value: String },
    #[error("{} is not a day of the calendar; expected YYYY-MM-DD or DD-MM-YYYY", quoted(.value))]
    NoSuchDay { value: String },
}

/// Reads `YYYY-MM-DD` or `DD-MM-YYYY` (day and month may have one digit).
pub fn parse_date(value: &str) -> Result<NaiveDate, DateError> {
    let value = value.trim();
    let not_a_date = || DateError::NotADate {
        value: value.to_owned(),
    };
    let parts: Vec<&str> = value.split('-').collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(not_a_date());
    };
    if !parts
        .iter()
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(not_a_date());
    }
    let short = |part: &str| (1..=2).contains(&part.len());
    let (year, month, day) = if a.len() == 4 && short(b) && short(c) {
        (*a, *b, *c)
    } else if c.len() == 4 && short(a) && short(b) {
        (*c, *b, *a)
    } else {
        return Err(not_a_date());
    };
    let (Ok(year), Ok(month), Ok(day)) = (year.parse(), month.parse(), day.parse()) else {
        return Err(not_a_date());
    };
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| DateError::NoSuchDay {
        value: value.to_owned(),
    })
}

/// A date in the canonical `YYYY-MM-DD` form.
pub fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Why a value is not a usable phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error(
        "{} is not a phone number (read with country {region}); it is left out and never dialled",
        quoted(.value)
    )]
    NotANumber { value: String, region: String },
    #[error(
        "{} is not a valid phone number (read with country {region}); it is left out and never dialled",
        quoted(.value)
    )]
    NotValid { value: String, region: String },
}

/// A region for phone parsing from an ISO 3166-1 alpha-2 code, if the
/// numbering metadata knows it.
pub fn phone_region(code: &str) -> Option<country::Id> {
    code.trim().to_uppercase().parse().ok()
}

/// Normalises a phone number to E.164 (`+31201234567`). A number without
/// an international prefix is read as a number of `region`; the number must
/// be valid by the numbering plan, not merely parse.
pub fn normalise_phone(value: &str, region: country::Id) -> Result<String, PhoneError> {
    widen_phone_regex_cache();
    let value = value.trim();
    let region_name = region.as_ref().to_owned();
    if value.chars().count() > MAX_PHONE_CHARS {
        return Err(PhoneError::NotANumber {
            value: value.to_owned(),
            region: region_name,
        });
    }
    if let Some(e164) = super::phone_check::fast_e164(value, region) {
        return Ok(e164);
    }
    let number = phonenumber::parse(Some(region), value).map_err(|_| PhoneError::NotANumber {
        value: value.to_owned(),
        region: region_name.clone(),
    })?;
    let code = number.code().value();
    let national = number.national().to_string();
    let valid = super::phone_check::is_valid(code, &national).unwrap_or_else(|| number.is_valid());
    if !valid {
        return Err(PhoneError::NotValid {
            value: value.to_owned(),
            region: region_name,
        });
    }
    // E.164 is the calling code and the national number, as the crate's
    // formatter writes it (without the formatter's work for other modes).
    Ok(format!("+{code}{national}"))
}

/// Gives the numbering metadata's regular-expression cache room for
/// [`PHONE_REGEX_CACHE`] expressions (once per process).
fn widen_phone_regex_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cache = phonenumber::metadata::DATABASE.cache();
        let mut cache = cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *cache = regex_cache::RegexCache::new(PHONE_REGEX_CACHE);
    });
}

/// Why a code (currency, language, country, Y/N, time zone) is not
/// acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{} is not a currency code; expected three letters (ISO 4217), e.g. EUR", quoted(.value))]
    Currency { value: String },
    #[error("{} is not a language code; expected two letters (ISO 639-1), e.g. nl", quoted(.value))]
    Language { value: String },
    #[error(
        "{} is not a country code; expected two letters (ISO 3166-1 alpha-2), e.g. NL",
        quoted(.value)
    )]
    Country { value: String },
    #[error("{} is not Y or N; expected Y or N", quoted(.value))]
    YesNo { value: String },
    #[error(
        "{} is not an e-mail address; it is left out and no e-mail goes to it",
        quoted(.value)
    )]
    Email { value: String },
    #[error(
        "{} is not a time zone; expected an IANA name, e.g. Europe/Amsterdam",
        quoted(.value)
    )]
    TimeZone { value: String },
}

fn letters(value: &str, count: usize) -> bool {
    value.len() == count && value.bytes().all(|b| b.is_ascii_alphabetic())
}

/// ISO 4217: three letters, returned upper-cased (`eur` → `EUR`).
pub fn currency(value: &str) -> Result<String, CodeError> {
    let value = value.trim();
    if letters(value, 3) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(CodeError::Currency {
            value: value.to_owned(),
        })
    }
}

/// ISO 639-1: two letters, returned lower-cased (`NL` → `nl`). A language
/// tag with a region (`nl-BE`, `nl_NL`) gives its language.
pub fn language(value: &str) -> Result<String, CodeError> {
    let value = value.trim();
    let primary = value.split(['-', '_']).next().unwrap_or(value);
    let region_ok = value
        .get(primary.len() + 1..)
        .is_none_or(|region| letters(region, 2));
    if letters(primary, 2) && region_ok {
        Ok(primary.to_ascii_lowercase())
    } else {
        Err(CodeError::Language {
            value: value.to_owned(),
        })
    }
}

/// ISO 3166-1 alpha-2: two letters, returned upper-cased (`nl` → `NL`).
pub fn country(value: &str) -> Result<String, CodeError> {
    let value = value.trim();
    if letters(value, 2) {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(CodeError::Country {
            value: value.to_owned(),
        })
    }
}

/// `Y` or `N` in any case, returned upper-cased.
/// An IANA time zone name, spelled as the database spells it.
pub fn time_zone(value: &str) -> Result<String, CodeError> {
    value
        .trim()
        .parse::<chrono_tz::Tz>()
        .map(|zone| zone.name().to_string())
        .map_err(|_| CodeError::TimeZone {
            value: value.trim().to_owned(),
        })
}

/// An e-mail address as a mail server would take it: one `@`, a local part
/// and a domain with a dot and no empty label, no spaces or control
/// characters. Only the shape: whether the mailbox exists is the mail
/// server's answer (a bounce). Written here rather than taken from a crate
/// because the import needs just this filter for typos, not RFC 5322's
/// comments and quoted forms, which no client file uses.
pub fn email(value: &str) -> Result<String, CodeError> {
    let value = value.trim();
    let well_formed = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
    }) && value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(CodeError::Email {
            value: value.to_owned(),
        })
    }
}

pub fn yes_no(value: &str) -> Result<String, CodeError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("y") || value.eq_ignore_ascii_case("n") {
        Ok(value.to_ascii_uppercase())
    } else {
        Err(CodeError::YesNo {
            value: value.to_owned(),
        })
    }
}

/// Renders `cents` with thousands grouped by `group` and `decimal` as the
/// decimal mark; used by tests to write amounts the way clients do.
#[cfg(test)]
fn render(cents: u64, group: Option<char>, decimal: char, always_decimals: bool) -> String {
    use std::fmt::Write as _;
    let units = (cents / 100).to_string();
    let groups: Vec<&str> = units
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    let mut out = match group {
        Some(group) => groups.join(&group.to_string()),
        None => units.clone(),
    };
    let fraction = cents % 100;
    if always_decimals || fraction != 0 {
        let _ = write!(out, "{decimal}{fraction:02}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_zones_are_iana_names() {
        assert_eq!(
            super::time_zone(" America/Chicago ").as_deref(),
            Ok("America/Chicago")
        );
        let err = super::time_zone("Mars/Olympus").expect_err("unknown");
        assert!(err.to_string().contains("Europe/Amsterdam"), "{err}");
    }

    use super::*;
    use proptest::prelude::*;

    fn amount(value: &str) -> Result<String, AmountError> {
        parse_amount(value).map(|cents| cents.to_string())
    }

    #[test]
    fn amounts_in_the_usual_forms() {
        for (input, canonical) in [
            ("1250", "1250.00"),
            ("1250.5", "1250.50"),
            ("1250,50", "1250.50"),
            ("1.250,50", "1250.50"),
            ("1,250.50", "1250.50"),
            ("1.250.000", "1250000.00"),
            ("1,250,000", "1250000.00"),
            ("1.250.000,05", "1250000.05"),
            ("0,5", "0.50"),
            ("007", "7.00"),
            ("1250.500", "1250.50"),
            ("12.5000", "12.50"),
            ("  99,99 ", "99.99"),
            ("0", "0.00"),
        ] {
            assert_eq!(amount(input).as_deref(), Ok(canonical), "{input}");
        }
    }

    #[test]
    fn ambiguous_and_bad_amounts_are_errors() {
        assert!(matches!(
            amount("1.250"),
            Err(AmountError::Ambiguous { .. })
        ));
        assert!(matches!(
            amount("12,500"),
            Err(AmountError::Ambiguous { .. })
        ));
        assert!(matches!(
            amount("0.125"),
            Err(AmountError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            amount("12.345"),
            Err(AmountError::Ambiguous { .. })
        ));
        assert!(matches!(
            amount("1234.567"),
            Err(AmountError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            amount("-12,50"),
            Err(AmountError::Negative { .. })
        ));
        assert!(matches!(
            amount("1234567890123"),
            Err(AmountError::TooLarge { .. })
        ));
        for garbage in [
            "",
            "12,3,4",
            "1.2.3",
            "1.250.50",
            "12.",
            ".50",
            "€ 12,50",
            "12 500",
            "1e3",
            "1,2.5",
            "1.234,5,6",
            "+12",
            "--1",
            "twelve",
            "0.250,00",
            "1,25.000",
        ] {
            assert!(
                matches!(amount(garbage), Err(AmountError::NotAnAmount { .. })),
                "{garbage:?} gave {:?}",
                amount(garbage)
            );
        }
    }

    #[test]
    fn amount_messages_say_what_was_expected() {
        let err = amount("12,3,4").expect_err("garbage");
        assert_eq!(
            err.to_string(),
            r#""12,3,4" is not an amount; expected e.g. 125.50 or 125,50"#
        );
        let err = amount("1.250").expect_err("ambiguous");
        assert_eq!(
            err.to_string(),
            r#""1.250" is ambiguous (thousands or decimals?); write 1250 or 1250.00 for thousands, or use at most two decimals"#
        );
    }

    proptest! {
        #[test]
        fn amounts_round_trip(
            cents in 0u64..100_000_000_000_000,
            style in 0usize..6,
            always_decimals in any::<bool>(),
        ) {
            let (group, decimal) = [
                (None, '.'), (None, ','), (Some('.'), ','), (Some(','), '.'),
                (Some('.'), ','), (Some(','), '.'),
            ][style];
            let written = render(cents, group, decimal, always_decimals);
            match parse_amount(&written) {
                Ok(parsed) => prop_assert_eq!(parsed, Cents(cents)),
                // Exactly one group mark and no decimals reads as ambiguous.
                Err(AmountError::Ambiguous { .. }) => {
                    prop_assert!(group.is_some() && written.matches(['.', ',']).count() == 1);
                }
                Err(other) => prop_assert!(false, "{} gave {}", written, other),
            }
            // The canonical form reads back as itself.
            let canonical = Cents(cents).to_string();
            prop_assert_eq!(parse_amount(&canonical), Ok(Cents(cents)));
        }

        #[test]
        fn any_text_gives_a_canonical_amount_or_an_error(text in "[0-9.,-]{0,20}|\\PC{0,20}") {
            if let Ok(cents) = parse_amount(&text) {
                let canonical = cents.to_string();
                prop_assert_eq!(parse_amount(&canonical), Ok(cents));
            }
        }
    }

    #[test]
    fn dates_in_both_orders() {
        let date = |s: &str| parse_date(s).map(format_date);
        assert_eq!(date("2024-03-17").as_deref(), Ok("2024-03-17"));
        assert_eq!(date("17-03-2024").as_deref(), Ok("2024-03-17"));
        assert_eq!(date("7-3-2024").as_deref(), Ok("2024-03-07"));
        assert!(matches!(
            date("2024-02-30"),
            Err(DateError::NoSuchDay { .. })
        ));
        assert!(matches!(
            date("31-02-2024"),
            Err(DateError::NoSuchDay { .. })
        ));
        for bad in [
            "",
            "17/03/2024",
            "2024-3",
            "24-03-17",
            "2024-03-17T10:00",
            "2024--17",
            "x",
        ] {
            assert!(
                matches!(date(bad), Err(DateError::NotADate { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            date("17.03.2024").expect_err("dots").to_string(),
            r#""17.03.2024" is not a date; expected YYYY-MM-DD or DD-MM-YYYY, e.g. 2024-03-17"#
        );
    }

    #[test]
    fn phones_to_e164() {
        let nl = phone_region("nl").expect("NL is known");
        assert_eq!(
            normalise_phone("020 123 4567", nl).as_deref(),
            Ok("+31201234567")
        );
        assert_eq!(
            normalise_phone("06-12345678", nl).as_deref(),
            Ok("+31612345678")
        );
        assert_eq!(
            normalise_phone("0031 6 12345678", nl).as_deref(),
            Ok("+31612345678")
        );
        assert_eq!(
            normalise_phone("+32 2 555 12 12", nl).as_deref(),
            Ok("+3225551212")
        );
        let be = phone_region("BE").expect("BE is known");
        assert_eq!(
            normalise_phone("02 555 12 12", be).as_deref(),
            Ok("+3225551212")
        );
        assert!(normalise_phone("12345", nl).is_err());
        assert!(normalise_phone("call me", nl).is_err());
        assert!(normalise_phone(&"1".repeat(200), nl).is_err());
        assert_eq!(phone_region("XX"), None);
    }

    proptest! {
        #[test]
        fn phone_parsing_never_panics(text in "\\PC{0,30}|[0-9 +()-]{0,30}") {
            let nl = phone_region("NL").expect("NL is known");
            if let Ok(e164) = normalise_phone(&text, nl) {
                prop_assert!(e164.starts_with('+'));
            }
        }
    }

    #[test]
    fn codes() {
        assert_eq!(currency(" eur ").as_deref(), Ok("EUR"));
        assert!(currency("EURO").is_err());
        assert!(currency("€").is_err());
        assert_eq!(language("NL").as_deref(), Ok("nl"));
        assert_eq!(language("nl-BE").as_deref(), Ok("nl"));
        assert_eq!(language("fr_be").as_deref(), Ok("fr"));
        assert!(language("nld").is_err());
        assert!(language("Dutch").is_err());
        assert!(language("nl-").is_err());
        assert_eq!(country("be").as_deref(), Ok("BE"));
        assert!(country("Netherlands").is_err());
        assert_eq!(yes_no("y").as_deref(), Ok("Y"));
        assert_eq!(yes_no("N").as_deref(), Ok("N"));
        assert!(yes_no("yes").is_err());
        assert!(yes_no("1").is_err());
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let message = AmountError::NotAnAmount { value: long }.to_string();
        assert!(message.len() < 150, "{message}");
    }
}
