//! Reading the values a script speaks from the text of record fields:
//! amounts, whole numbers, digit strings, dates, times and currencies.
//!
//! Input is taken as it comes out of spreadsheets and exports, within clear
//! rules; anything ambiguous beyond these rules is refused rather than
//! guessed, because a wrong amount read out to a debtor is worse than none.
//!
//! **Amounts.** Surrounding white space and spaces inside are ignored; a
//! leading `+` is allowed, a leading `-` is refused (credits are not
//! spoken). Then:
//! - with both `.` and `,` present, the one that comes **last** is the
//!   decimal mark and the other groups thousands: `1.250,50` and `1,250.50`
//!   are both 1250.50;
//! - with only one kind of mark, occurring **once**, it is the decimal
//!   mark, as the import layout defines: `1250.5`, `1250,5` are 1250.50
//!   and `1.250` is 1.25 (not 1250);
//! - with one kind of mark occurring **more than once**, it groups
//!   thousands and there are no decimals: `1.250.000` is 1250000;
//! - thousands groups must be three digits (`12,34,567` is refused);
//! - at most two decimals, unless the extra ones are zeros (`1.250` is 1.25,
//!   `1.255` is refused); one decimal means tens of cents (`0.5` is 50 cents);
//! - the whole part may be at most 999,999,999.
//!
//! **Numbers**: digits only, at most 999,999,999. **Digits**: every ASCII
//! digit is spoken; spaces and `- . / + ( )` are skipped; anything else is
//! refused. **Dates**: `YYYY-MM-DD` or `DD-MM-YYYY` (one or two digits for
//! day and month), optionally followed by a time after `T` or a space,
//! which is ignored; the day must exist. **Times**: `H:MM` or `HH:MM`
//! (24-hour), optionally `:SS` (ignored); `.` may stand for `:`.
//! **Currencies**: ISO 4217 `EUR`, `USD`, `GBP` in any case, or `€ $ £`;
//! blank means EUR.

use chrono::NaiveDate;

use crate::SpeakError;

/// The largest whole number (and whole part of an amount) we speak.
pub const MAX_NUMBER: u32 = 999_999_999;

/// An amount of money in minor units (cents), never negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount {
    minor: u64,
}

impl Amount {
    /// An amount of `minor` cents.
    pub fn from_minor(minor: u64) -> Amount {
        Amount { minor }
    }

    /// The amount in cents.
    pub fn minor(self) -> u64 {
        self.minor
    }

    /// The whole currency units (euros).
    pub fn whole(self) -> u64 {
        self.minor / 100
    }

    /// The cents beyond the whole units, 0 to 99.
    pub fn cents(self) -> u32 {
        // Always below 100.
        (self.minor % 100) as u32
    }

    /// Reads an amount by the rules in the [module documentation](self).
    pub fn parse(text: &str) -> Result<Amount, SpeakError> {
        parse_amount(text)
    }
}

fn parse_amount(text: &str) -> Result<Amount, SpeakError> {
    let not_an_amount = || SpeakError::NotAnAmount {
        value: text.to_string(),
    };
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(SpeakError::Empty);
    }
    if compact.starts_with('-') {
        return Err(SpeakError::Negative {
            value: text.to_string(),
        });
    }
    let body = compact.strip_prefix('+').unwrap_or(&compact);
    if body.is_empty()
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        return Err(not_an_amount());
    }
    let dots = body.matches('.').count();
    let commas = body.matches(',').count();
    let (decimal, grouping) = match (dots, commas) {
        (0, 0) => (None, None),
        (_, 0) if dots == 1 => (Some('.'), None),
        (0, _) if commas == 1 => (Some(','), None),
        (_, 0) => (None, Some('.')),
        (0, _) => (None, Some(',')),
        _ => {
            // Both present: the last mark is the decimal one.
            let last = body
                .chars()
                .rev()
                .find(|c| *c == '.' || *c == ',')
                .ok_or_else(not_an_amount)?;
            let other = if last == '.' { ',' } else { '.' };
            if body.matches(last).count() != 1 {
                return Err(not_an_amount());
            }
            (Some(last), Some(other))
        }
    };
    let (whole_text, fraction_text) = match decimal {
        Some(mark) => match body.split_once(mark) {
            Some((w, f)) => (w, f),
            None => return Err(not_an_amount()),
        },
        None => (body, ""),
    };
    if decimal.is_some() && fraction_text.is_empty() {
        return Err(not_an_amount());
    }
    if let Some(g) = grouping {
        if fraction_text.contains(g) {
            return Err(not_an_amount());
        }
    }
    let whole_digits: String = match grouping {
        Some(g) if whole_text.contains(g) => {
            let mut groups = whole_text.split(g);
            let first = groups.next().unwrap_or("");
            if first.is_empty() || first.len() > 3 || groups.clone().any(|grp| grp.len() != 3) {
                return Err(SpeakError::BadGrouping {
                    value: text.to_string(),
                });
            }
            whole_text.chars().filter(|c| *c != g).collect()
        }
        _ => whole_text.to_string(),
    };
    if whole_digits.is_empty() && fraction_text.is_empty() {
        return Err(not_an_amount());
    }
    let whole = parse_whole(&whole_digits, text)?;
    let cents = match fraction_text.len() {
        0 => 0,
        1 => digit_value(fraction_text, 0) * 10,
        _ => {
            if fraction_text[2..].chars().any(|c| c != '0') {
                return Err(SpeakError::TooManyDecimals {
                    value: text.to_string(),
                });
            }
            digit_value(fraction_text, 0) * 10 + digit_value(fraction_text, 1)
        }
    };
    Ok(Amount::from_minor(
        u64::from(whole) * 100 + u64::from(cents),
    ))
}

fn digit_value(s: &str, index: usize) -> u32 {
    s.as_bytes()
        .get(index)
        .map_or(0, |b| u32::from(b.saturating_sub(b'0')))
}

/// Digits (possibly empty, meaning 0) to a number at most [`MAX_NUMBER`].
fn parse_whole(digits: &str, original: &str) -> Result<u32, SpeakError> {
    let significant = digits.trim_start_matches('0');
    if significant.len() > 9 {
        return Err(SpeakError::TooLarge {
            value: original.to_string(),
            max: u64::from(MAX_NUMBER),
        });
    }
    let mut n: u32 = 0;
    for b in significant.bytes() {
        n = n * 10 + u32::from(b - b'0');
    }
    Ok(n)
}

/// Reads a whole number: digits only, at most [`MAX_NUMBER`].
pub fn parse_number(text: &str) -> Result<u32, SpeakError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SpeakError::Empty);
    }
    if t.starts_with('-') && t.len() > 1 && t[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpeakError::Negative {
            value: text.to_string(),
        });
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SpeakError::NotANumber {
            value: text.to_string(),
        });
    }
    parse_whole(t, text)
}

/// Reads the digits to speak one by one.
pub fn parse_digits(text: &str) -> Result<Vec<u8>, SpeakError> {
    let mut digits = Vec::new();
    for c in text.trim().chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            ' ' | '-' | '.' | '/' | '+' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            other => return Err(SpeakError::NotDigits { character: other }),
        }
    }
    if digits.is_empty() {
        return Err(if text.trim().is_empty() {
            SpeakError::Empty
        } else {
            SpeakError::NoDigits
        });
    }
    Ok(digits)
}

/// Reads a date, `YYYY-MM-DD` or `DD-MM-YYYY`.
pub fn parse_date(text: &str) -> Result<NaiveDate, SpeakError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SpeakError::Empty);
    }
    let not_a_date = || SpeakError::NotADate {
        value: text.to_string(),
    };
    let date_part = t.split(['T', ' ']).next().unwrap_or(t);
    let parts: Vec<&str> = date_part.split('-').collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(not_a_date());
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(a) && all_digits(b) && all_digits(c)) {
        return Err(not_a_date());
    }
    let (year, month, day) = if a.len() == 4 && b.len() <= 2 && c.len() <= 2 {
        (a, b, c)
    } else if c.len() == 4 && a.len() <= 2 && b.len() <= 2 {
        (c, b, a)
    } else {
        return Err(not_a_date());
    };
    let year: i32 = year.parse().map_err(|_| not_a_date())?;
    let month: u32 = month.parse().map_err(|_| not_a_date())?;
    let day: u32 = day.parse().map_err(|_| not_a_date())?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(not_a_date)
}

/// A time of day, minute precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeOfDay {
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
}

/// Reads a time, `H:MM` or `HH:MM[:SS]` (24-hour).
pub fn parse_time(text: &str) -> Result<TimeOfDay, SpeakError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(SpeakError::Empty);
    }
    let not_a_time = || SpeakError::NotATime {
        value: text.to_string(),
    };
    let parts: Vec<&str> = t.split([':', '.']).collect();
    let (h, m) = match parts.as_slice() {
        [h, m] => (*h, *m),
        [h, m, s] if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) => (*h, *m),
        _ => return Err(not_a_time()),
    };
    let ok = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !ok(h, 2) || !ok(m, 2) || m.len() != 2 {
        return Err(not_a_time());
    }
    let hour: u32 = h.parse().map_err(|_| not_a_time())?;
    let minute: u32 = m.parse().map_err(|_| not_a_time())?;
    if hour > 23 || minute > 59 {
        return Err(not_a_time());
    }
    Ok(TimeOfDay { hour, minute })
}

/// A currency we have words for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Currency {
    /// Euro and cent.
    Eur,
    /// US dollar and cent.
    Usd,
    /// Pound sterling and penny.
    Gbp,
}

impl Currency {
    /// Reads an ISO 4217 code (or symbol); `None` or blank means EUR.
    pub fn parse(code: Option<&str>) -> Result<Currency, SpeakError> {
        let code = code.map(str::trim).unwrap_or("");
        match code.to_ascii_uppercase().as_str() {
            "" | "EUR" | "€" => Ok(Currency::Eur),
            "USD" | "$" => Ok(Currency::Usd),
            "GBP" | "£" => Ok(Currency::Gbp),
            _ => Err(SpeakError::UnsupportedCurrency {
                code: code.to_string(),
            }),
        }
    }

    /// Every supported currency.
    pub const ALL: [Currency; 3] = [Currency::Eur, Currency::Usd, Currency::Gbp];
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn amount(s: &str) -> Result<u64, SpeakError> {
        parse_amount(s).map(Amount::minor)
    }

    #[test]
    fn amounts_in_the_usual_forms() {
        assert_eq!(amount("1250.5"), Ok(125_050));
        assert_eq!(amount("1250,5"), Ok(125_050));
        assert_eq!(amount("1.250,50"), Ok(125_050));
        assert_eq!(amount("1,250.50"), Ok(125_050));
        assert_eq!(amount(" 1 250,50 "), Ok(125_050));
        assert_eq!(amount("1.250.000"), Ok(125_000_000));
        assert_eq!(amount("1.250.000,99"), Ok(125_000_099));
        assert_eq!(amount("+7"), Ok(700));
        assert_eq!(amount("0"), Ok(0));
        assert_eq!(amount("0,01"), Ok(1));
        assert_eq!(amount(",5"), Ok(50));
        assert_eq!(amount("999999999.99"), Ok(99_999_999_999));
        assert_eq!(amount("000012.30"), Ok(1230));
    }

    #[test]
    fn a_single_mark_is_the_decimal_mark() {
        assert_eq!(amount("1.250"), Ok(125));
        assert_eq!(amount("1,250"), Ok(125));
        assert!(matches!(
            amount("1.255"),
            Err(SpeakError::TooManyDecimals { .. })
        ));
    }

    #[test]
    fn bad_amounts_are_refused() {
        assert_eq!(amount(""), Err(SpeakError::Empty));
        assert!(matches!(amount("-5"), Err(SpeakError::Negative { .. })));
        assert!(matches!(amount("12a"), Err(SpeakError::NotAnAmount { .. })));
        assert!(matches!(amount("12."), Err(SpeakError::NotAnAmount { .. })));
        assert!(matches!(amount("."), Err(SpeakError::NotAnAmount { .. })));
        assert!(matches!(amount("+"), Err(SpeakError::NotAnAmount { .. })));
        assert!(matches!(
            amount("1.2.3"),
            Err(SpeakError::BadGrouping { .. })
        ));
        assert!(matches!(
            amount("12,34,567"),
            Err(SpeakError::BadGrouping { .. })
        ));
        assert!(matches!(
            amount("1,2.50"),
            Err(SpeakError::BadGrouping { .. })
        ));
        assert!(matches!(
            amount("1.250,50,1"),
            Err(SpeakError::NotAnAmount { .. })
        ));
        assert!(matches!(
            amount("1000000000"),
            Err(SpeakError::TooLarge { .. })
        ));
        assert!(matches!(amount("€12"), Err(SpeakError::NotAnAmount { .. })));
    }

    #[test]
    fn numbers_and_digits() {
        assert_eq!(parse_number(" 0042 "), Ok(42));
        assert_eq!(parse_number("999999999"), Ok(MAX_NUMBER));
        assert!(matches!(
            parse_number("1000000000"),
            Err(SpeakError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_number("-3"),
            Err(SpeakError::Negative { .. })
        ));
        assert!(matches!(
            parse_number("1.5"),
            Err(SpeakError::NotANumber { .. })
        ));
        assert_eq!(parse_digits("+31 (0)6-12"), Ok(vec![3, 1, 0, 6, 1, 2]));
        assert_eq!(
            parse_digits("12a"),
            Err(SpeakError::NotDigits { character: 'a' })
        );
        assert_eq!(parse_digits("--"), Err(SpeakError::NoDigits));
        assert_eq!(parse_digits(" "), Err(SpeakError::Empty));
    }

    #[test]
    fn dates_both_ways_round() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 21).unwrap();
        assert_eq!(parse_date("2026-03-21"), Ok(d));
        assert_eq!(parse_date("21-03-2026"), Ok(d));
        assert_eq!(parse_date("21-3-2026"), Ok(d));
        assert_eq!(parse_date("2026-03-21T00:00:00"), Ok(d));
        assert_eq!(parse_date("2026-03-21 12:00"), Ok(d));
        for bad in ["2026-02-30", "03/21/2026", "21-03-26", "2026-003-21", "x"] {
            assert!(
                matches!(parse_date(bad), Err(SpeakError::NotADate { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("9:05"), Ok(TimeOfDay { hour: 9, minute: 5 }));
        assert_eq!(
            parse_time("14.30"),
            Ok(TimeOfDay {
                hour: 14,
                minute: 30
            })
        );
        assert_eq!(
            parse_time("23:59:59"),
            Ok(TimeOfDay {
                hour: 23,
                minute: 59
            })
        );
        for bad in ["24:00", "12:60", "12:5", "noon", "123:00", "1:2:3"] {
            assert!(
                matches!(parse_time(bad), Err(SpeakError::NotATime { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse(None), Ok(Currency::Eur));
        assert_eq!(Currency::parse(Some(" usd ")), Ok(Currency::Usd));
        assert_eq!(Currency::parse(Some("£")), Ok(Currency::Gbp));
        assert!(Currency::parse(Some("CHF")).is_err());
    }
}
