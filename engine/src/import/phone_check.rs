//! Whether a parsed phone number is valid, decided as
//! `phonenumber::is_valid` decides it (the number matches its country's
//! general pattern and one of its number types: fixed line, mobile, toll
//! free, ...), but with the country's patterns compiled once per thread.
//! The crate looks each pattern up by its text in one global, locked cache
//! on every use; for imports of a million rows that was most of the time.
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
