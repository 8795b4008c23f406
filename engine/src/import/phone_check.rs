//! Whether a parsed phone number is valid, decided as
//! `phonenumber::is_valid` decides it (the number matches its country's
//! general pattern and one of its number types: fixed line, mobile, toll
//! free, ...), but with the country's patterns compiled once per thread.
//! The crate looks each pattern up by its text in one global, locked cache
//! on every use; for imports of a million rows that was most of the time.
//!
//! [`fast_e164`] goes one step further for the forms delivery files use
//! (`+31 20 123 4567`, `020-1234567`, `06 12345678`): digits and separators
//! only, read without the crate's parser. It answers only when the number is
//! valid and the crate would read it the same way; anything else (another
//! form, a national prefix after the country code, a country whose national
//! prefix needs rules, an invalid number) is left to the crate.
//!
//! Only countries whose calling code belongs to one region are handled here;
//! for shared codes (+1, +7, +44, ...) the answer is `None` and the caller
//! asks the crate.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use phonenumber::metadata::{Descriptor, DATABASE};

/// One number type's pattern.
struct Pattern {
    /// Allowed lengths of the national number (empty: any).
    lengths: Vec<u16>,
    /// The metadata's pattern, anchored at the start as the crate matches it.
    regex: regex::Regex,
}

impl Pattern {
    fn new(descriptor: &Descriptor) -> Option<Pattern> {
        // The metadata's patterns are written for verbose mode; the line break
        // ends a trailing comment, should a pattern have one.
        let source = format!("^(?:{}\n)", descriptor.national_number().as_str());
        let regex = regex::RegexBuilder::new(&source)
            .ignore_whitespace(true)
            .build()
            .ok()?;
        Some(Pattern {
            lengths: descriptor.possible_length().to_vec(),
            regex,
        })
    }

    fn matches(&self, national: &str) -> bool {
        let length = u16::try_from(national.len()).unwrap_or(u16::MAX);
        (self.lengths.is_empty() || self.lengths.contains(&length)) && self.regex.is_match(national)
    }
}

/// A country's patterns.
struct Country {
    general: Pattern,
    types: Vec<Pattern>,
}

impl Country {
    /// The patterns of the one region with calling code `code`.
    fn load(code: u16) -> Option<Country> {
        let regions = DATABASE.region(&code)?;
        let [region] = regions.as_slice() else {
            return None;
        };
        let meta = DATABASE.by_id(*region)?;
        let d = meta.descriptors();
        let types = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ];
        let mut patterns = Vec::new();
        for descriptor in types.into_iter().flatten() {
            patterns.push(Pattern::new(descriptor)?);
        }
        Some(Country {
            general: Pattern::new(d.general())?,
            types: patterns,
        })
    }

    fn is_valid(&self, national: &str) -> bool {
        self.general.matches(national) && self.types.iter().any(|t| t.matches(national))
    }
}

/// Separators allowed between the digits of a number read by [`fast_e164`].
const SEPARATORS: &[char] = &[' ', '-', '.', '(', ')', '/'];

/// The E.164 form of `value` read as a number of `region`, when it is
/// written with digits and separators only (and a leading `+`) and is a
/// valid number; `None` otherwise (the crate must decide).
pub(super) fn fast_e164(value: &str, region: phonenumber::country::Id) -> Option<String> {
    let (international, rest) = match value.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let first = rest.chars().next()?;
    if !(first.is_ascii_digit() || first == '(') || !rest.ends_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !SEPARATORS.contains(&c) {
            return None;
        }
    }
    let meta = DATABASE.by_id(region.as_ref())?;
    // Countries whose national prefix is read by rules are the crate's.
    if meta.national_prefix_for_parsing().is_some() {
        return None;
    }
    let prefix = meta.national_prefix().filter(|p| !p.is_empty());
    let (code, national) = if international {
        // Calling codes are prefix-free: the first one that exists is it.
        let (code, national) = (1..=3).find_map(|n| {
            let code: u16 = digits.get(..n)?.parse().ok()?;
            DATABASE.region(&code).map(|_| (code, digits.get(n..)))
        })?;
        (code, national?)
    } else {
        let prefix = prefix?;
        (meta.country_code(), digits.strip_prefix(prefix)?)
    };
    // The crate strips the region's national prefix (twice, at most) from
    // what follows; those numbers are its to read.
    if prefix.is_some_and(|p| national.starts_with(p)) {
        return None;
    }
    if is_valid(code, national)? {
        Some(format!("+{code}{national}"))
    } else {
        None
    }
}

thread_local! {
    /// Countries loaded on this thread; `None` for codes left to the crate.
    static COUNTRIES: RefCell<HashMap<u16, Option<Rc<Country>>>> = RefCell::new(HashMap::new());
}

/// Whether the national number `national` (digits, leading zeros kept) is a
/// valid number of calling code `code`; `None` when the crate must decide.
pub(super) fn is_valid(code: u16, national: &str) -> Option<bool> {
    let country = COUNTRIES.with(|countries| {
        countries
            .borrow_mut()
            .entry(code)
            .or_insert_with(|| Country::load(code).map(Rc::new))
            .clone()
    })?;
    Some(country.is_valid(national))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whenever the fast reading answers, the crate reads the same number.
    #[test]
    fn fast_e164_agrees_with_the_crate() {
        let mut answered = 0;
        let inputs = [
            "020 123 4567",
            "020-1234567",
            "0201234567",
            "06 12345678",
            "06-12345678",
            "+31 20 123 4567",
            "+31 (0)20 123 4567",
            "+31201234567",
            "+31612345678",
            "0031201234567",
            "(020) 1234567",
            "020/1234567",
            "020.123.4567",
            "+32 2 512 34 56",
            "+49 30 1234567",
            "+33 6 12 34 56 78",
            "+39 06 1234 5678",
            "+44 7912 345678",
            "+1 201 555 0123",
            "0800 1234",
            "0800-0221",
            "12345",
            "+999 1234",
            "06 1234",
            "020 1234567 ext 3",
            "+31 6 1234 567",
            "+31 6 12345 6789",
            "1234567",
            "-0201234567",
        ];
        for region in ["NL", "BE", "DE", "GB", "US", "IT"] {
            let id: phonenumber::country::Id = region.parse().expect("region");
            for input in inputs {
                for variant in 0..40u32 {
                    let mut text = input.to_owned();
                    if variant > 0 {
                        // Vary the last digits.
                        let keep = text.len() - 2;
                        text.truncate(keep);
                        text.push_str(&format!("{:02}", variant * 37 % 100));
                    }
                    let Some(fast) = fast_e164(&text, id) else {
                        continue;
                    };
                    answered += 1;
                    let slow = phonenumber::parse(Some(id), &text)
                        .ok()
                        .filter(phonenumber::is_valid)
                        .map(|n| n.format().mode(phonenumber::Mode::E164).to_string());
                    assert_eq!(Some(fast), slow, "{text} in {region}");
                }
            }
        }
        assert!(answered > 500, "{answered}");
    }

    /// The same verdict as the crate on numbers around real ones.
    #[test]
    fn agrees_with_phonenumber() {
        let mut checked = 0;
        for (region, base) in [
            ("NL", "+31201234567"),
            ("NL", "+31612345678"),
            ("NL", "+31800123456"),
            ("BE", "+3225123456"),
            ("DE", "+4930123456"),
            ("FR", "+33612345678"),
            ("IT", "+390612345678"),
            ("GB", "+447912345678"),
            ("US", "+12015550123"),
        ] {
            let region = region.parse().expect("region");
            for variant in 0..400u32 {
                // Change the last digits, and the length, around the base.
                let mut text = base.to_owned();
                let keep = text.len() - (variant % 5) as usize;
                text.truncate(keep);
                text.push_str(&format!("{}", variant * 7919 % 10_000));
                let Ok(number) = phonenumber::parse(Some(region), &text) else {
                    continue;
                };
                let national = number.national().to_string();
                if let Some(fast) = is_valid(number.code().value(), &national) {
                    assert_eq!(fast, number.is_valid(), "{text}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 2000, "{checked}");
    }
}
