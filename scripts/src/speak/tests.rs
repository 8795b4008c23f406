//! Tests of speaking values: worked examples per language, round trips
//! through small test-only parsers of the segment sequences, and checks that
//! every segment produced exists in the inventory and the shipped audio.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;
use crate::{default_audio_root, AudioCatalog, ClipRef};

fn say(language: &str, kind: ValueKind, text: &str) -> Vec<String> {
    speak(language, kind, text, SayOptions::default()).unwrap()
}

fn say_with(language: &str, kind: ValueKind, text: &str, options: SayOptions<'_>) -> Vec<String> {
    speak(language, kind, text, options).unwrap()
}

/// `"100 and 5 euros"` → `["say/100", "say/and", "say/5", "say/euros"]`.
fn clips(words: &str) -> Vec<String> {
    words
        .split_whitespace()
        .map(|w| format!("say/{w}"))
        .collect()
}

#[test]
fn english_numbers() {
    let n = |t: &str| say("en", ValueKind::Number, t);
    assert_eq!(n("0"), clips("0"));
    assert_eq!(n("21"), clips("21"));
    assert_eq!(n("100"), clips("100"));
    assert_eq!(n("105"), clips("100 and 5"));
    assert_eq!(n("1005"), clips("1 thousand and 5"));
    assert_eq!(n("1250"), clips("1 thousand 200 and 50"));
    assert_eq!(n("101000"), clips("100 and 1 thousand"));
    assert_eq!(n("2000000"), clips("2 million"));
    assert_eq!(n("1000021"), clips("1 million and 21"));
    assert_eq!(
        n("999999999"),
        clips("900 and 99 million 900 and 99 thousand 900 and 99")
    );
}

#[test]
fn dutch_numbers() {
    let n = |t: &str| say("nl", ValueKind::Number, t);
    assert_eq!(n("0"), clips("0"));
    assert_eq!(n("25"), clips("25"));
    assert_eq!(n("105"), clips("100 5"));
    assert_eq!(n("1000"), clips("thousand"));
    assert_eq!(n("1005"), clips("thousand 5"));
    assert_eq!(n("2021"), clips("2 thousand 21"));
    assert_eq!(n("121000"), clips("100 21 thousand"));
    assert_eq!(n("1000000"), clips("1 million"));
    assert_eq!(n("1001001"), clips("1 million thousand 1"));
}

#[test]
fn english_amounts() {
    let a = |t: &str| say("en", ValueKind::Amount, t);
    assert_eq!(a("105.10"), clips("100 and 5 euros and 10 cents"));
    assert_eq!(a("1"), clips("1 euro"));
    assert_eq!(a("1,01"), clips("1 euro and 1 cent"));
    assert_eq!(a("0.10"), clips("10 cents"));
    assert_eq!(a("0.01"), clips("1 cent"));
    assert_eq!(a("0"), clips("0 euros"));
    assert_eq!(
        a("1.250,50"),
        clips("1 thousand 200 and 50 euros and 50 cents")
    );
    let usd = SayOptions {
        currency: Some("USD"),
        with_year: false,
    };
    assert_eq!(
        say_with("en", ValueKind::Amount, "2.01", usd),
        clips("2 dollars and 1 cent")
    );
    let gbp = SayOptions {
        currency: Some("gbp"),
        with_year: false,
    };
    assert_eq!(
        say_with("en", ValueKind::Amount, "1.02", gbp),
        clips("1 pound and 2 pence")
    );
    assert_eq!(
        say_with("en", ValueKind::Amount, "0.01", gbp),
        clips("1 penny")
    );
}

#[test]
fn dutch_amounts() {
    let a = |t: &str| say("nl", ValueKind::Amount, t);
    assert_eq!(a("105.10"), clips("100 5 euro and 10 cent"));
    assert_eq!(a("25"), clips("25 euro"));
    assert_eq!(a("1,01"), clips("1 euro and 1 cent"));
    assert_eq!(a("0,50"), clips("50 cent"));
    let gbp = SayOptions {
        currency: Some("GBP"),
        with_year: false,
    };
    assert_eq!(
        say_with("nl", ValueKind::Amount, "3.01", gbp),
        clips("3 pound and 1 penny")
    );
    assert_eq!(
        say_with("nl", ValueKind::Amount, "3.02", gbp),
        clips("3 pound and 2 pence")
    );
}

#[test]
fn dates() {
    assert_eq!(
        say("en", ValueKind::Date, "2026-03-21"),
        clips("the ordinal_21 of month_3")
    );
    assert_eq!(
        say("nl", ValueKind::Date, "21-03-2026"),
        clips("21 month_3")
    );
    let year = SayOptions {
        currency: None,
        with_year: true,
    };
    let en = |t: &str| say_with("en", ValueKind::Date, t, year);
    let nl = |t: &str| say_with("nl", ValueKind::Date, t, year);
    assert_eq!(en("2026-03-21"), clips("the ordinal_21 of month_3 20 26"));
    assert_eq!(
        en("2005-01-01"),
        clips("the ordinal_1 of month_1 2 thousand and 5")
    );
    assert_eq!(en("1999-12-31"), clips("the ordinal_31 of month_12 19 99"));
    assert_eq!(
        en("1900-12-31"),
        clips("the ordinal_31 of month_12 19 hundred")
    );
    assert_eq!(
        en("1905-12-31"),
        clips("the ordinal_31 of month_12 19 oh 5")
    );
    assert_eq!(nl("2026-03-21"), clips("21 month_3 2 thousand 26"));
    assert_eq!(nl("1999-03-21"), clips("21 month_3 19 100 99"));
    assert_eq!(nl("1900-03-21"), clips("21 month_3 19 100"));
}

#[test]
fn times_and_digits() {
    let en = |t: &str| say("en", ValueKind::Time, t);
    let nl = |t: &str| say("nl", ValueKind::Time, t);
    assert_eq!(en("14:30"), clips("2 30 pm"));
    assert_eq!(en("09:05"), clips("9 oh 5 am"));
    assert_eq!(en("00:00"), clips("12 am"));
    assert_eq!(en("12:15"), clips("12 15 pm"));
    assert_eq!(nl("14:30"), clips("14 uur 30"));
    assert_eq!(nl("9:00"), clips("9 uur"));
    assert_eq!(say("nl", ValueKind::Digits, "06-12"), clips("0 6 1 2"));
}

#[test]
fn unspeakable_values_are_errors_not_panics() {
    let opts = SayOptions::default();
    assert!(speak("en", ValueKind::Amount, "12,34,56", opts).is_err());
    assert!(speak("en", ValueKind::Date, "31-02-2026", opts).is_err());
    assert!(speak("fr", ValueKind::Number, "1", opts).is_err());
    let chf = SayOptions {
        currency: Some("CHF"),
        with_year: false,
    };
    assert_eq!(
        speak("en", ValueKind::Amount, "1", chf),
        Err(SpeakError::UnsupportedCurrency {
            code: "CHF".to_string()
        })
    );
}

// ---- test-only parsers: segment names back to values ----

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok<'a> {
    Card(u32),
    Hund(u32),
    Thousand,
    Million,
    And,
    Word(&'a str),
}

fn tokens(segments: &[String]) -> Vec<Tok<'_>> {
    segments
        .iter()
        .map(|s| {
            let name = s.strip_prefix("say/").unwrap_or(s);
            match name {
                "thousand" => Tok::Thousand,
                "million" => Tok::Million,
                "and" => Tok::And,
                _ => match name.parse::<u32>() {
                    Ok(n) if n < 100 => Tok::Card(n),
                    Ok(n) if n % 100 == 0 && (100..=900).contains(&n) => Tok::Hund(n / 100),
                    _ => Tok::Word(name),
                },
            }
        })
        .collect()
}

/// English 1–999: `H`, `H and C`, or `C`.
fn en_chunk(t: &[Tok<'_>], i: usize) -> Option<(u32, usize)> {
    match t.get(i)? {
        Tok::Hund(h) => match (t.get(i + 1), t.get(i + 2)) {
            (Some(Tok::And), Some(Tok::Card(c))) if (1..100).contains(c) => {
                Some((h * 100 + c, i + 3))
            }
            _ => Some((h * 100, i + 1)),
        },
        Tok::Card(c) if (1..100).contains(c) => Some((*c, i + 1)),
        _ => None,
    }
}

/// A whole English number, strictly in the canonical form.
fn en_number(t: &[Tok<'_>]) -> Option<u32> {
    if t == [Tok::Card(0)] {
        return Some(0);
    }
    let mut total = 0;
    let mut i = 0;
    let mut seen = false;
    for (scale, word) in [(1_000_000, Tok::Million), (1000, Tok::Thousand)] {
        if let Some((v, j)) = en_chunk(t, i) {
            if t.get(j) == Some(&word) {
                total += v * scale;
                i = j + 1;
                seen = true;
            }
        }
    }
    if i < t.len() {
        if seen && t[i] == Tok::And {
            match t.get(i + 1) {
                Some(Tok::Card(c)) if (1..100).contains(c) && i + 2 == t.len() => total += c,
                _ => return None,
            }
        } else {
            let (v, j) = en_chunk(t, i)?;
            if j != t.len() || (seen && v < 100) {
                return None;
            }
            total += v;
        }
    }
    (seen || total > 0).then_some(total)
}

/// Dutch 1–999: `H`, `H C` or `C`.
fn nl_chunk(t: &[Tok<'_>], i: usize) -> Option<(u32, usize)> {
    match t.get(i)? {
        Tok::Hund(h) => match t.get(i + 1) {
            Some(Tok::Card(c)) if (1..100).contains(c) => Some((h * 100 + c, i + 2)),
            _ => Some((h * 100, i + 1)),
        },
        Tok::Card(c) if (1..100).contains(c) => Some((*c, i + 1)),
        _ => None,
    }
}

/// A whole Dutch number, strictly in the canonical form.
fn nl_number(t: &[Tok<'_>]) -> Option<u32> {
    if t == [Tok::Card(0)] {
        return Some(0);
    }
    let mut total = 0;
    let mut i = 0;
    if let Some((v, j)) = nl_chunk(t, i) {
        if t.get(j) == Some(&Tok::Million) {
            total += v * 1_000_000;
            i = j + 1;
        }
    }
    if t.get(i) == Some(&Tok::Thousand) {
        total += 1000;
        i += 1;
    } else if let Some((v, j)) = nl_chunk(t, i) {
        if t.get(j) == Some(&Tok::Thousand) {
            if v == 1 {
                return None; // "één duizend" is not said
            }
            total += v * 1000;
            i = j + 1;
        }
    }
    if i < t.len() {
        let (v, j) = nl_chunk(t, i)?;
        if j != t.len() {
            return None;
        }
        total += v;
    }
    (total > 0).then_some(total)
}

/// An amount back to cents; checks "and" and the
/// singular/plural choice against the parsed numbers.
fn parse_amount_back(language: &str, segments: &[String], currency: Currency) -> Option<u64> {
    let t = tokens(segments);
    let number = |s: &[Tok<'_>]| {
        if language == "en" {
            en_number(s)
        } else {
            nl_number(s)
        }
    };
    let major_word = |plural: bool| {
        let singular = match currency {
            Currency::Eur => "euro",
            Currency::Usd => "dollar",
            Currency::Gbp => "pound",
        };
        match (language, plural, currency) {
            ("en", true, Currency::Eur) => "euros",
            ("en", true, Currency::Usd) => "dollars",
            ("en", true, Currency::Gbp) => "pounds",
            _ => singular,
        }
    };
    let minor_word = |plural: bool| match (currency, plural) {
        (Currency::Gbp, false) => "penny",
        (Currency::Gbp, true) => "pence",
        (_, true) if language == "en" => "cents",
        _ => "cent",
    };
    // The first currency word splits the number from the rest.
    let first_word = t.iter().position(|x| matches!(x, Tok::Word(_)))?;
    let whole = number(&t[..first_word])?;
    if t[first_word] == Tok::Word(minor_word(whole != 1)) && first_word + 1 == t.len() {
        // cents only
        return (whole > 0 && whole < 100).then_some(u64::from(whole));
    }
    if t[first_word] != Tok::Word(major_word(whole != 1)) {
        return None;
    }
    if first_word + 1 == t.len() {
        return Some(u64::from(whole) * 100);
    }
    if t[first_word + 1] != Tok::And {
        return None;
    }
    let last = t.len() - 1;
    let cents = number(&t[first_word + 2..last])?;
    if !(1..100).contains(&cents) || t[last] != Tok::Word(minor_word(cents != 1)) {
        return None;
    }
    Some(u64::from(whole) * 100 + u64::from(cents))
}

fn shipped() -> &'static BTreeSet<ClipRef> {
    static SHIPPED: OnceLock<BTreeSet<ClipRef>> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        AudioCatalog::from_roots(&[default_audio_root()])
            .unwrap()
            .clips()
            .map(|(c, _)| c.clone())
            .collect()
    })
}

fn all_shipped(language: &str, segments: &[String]) -> bool {
    segments
        .iter()
        .all(|s| shipped().contains(&ClipRef::new(language, s.as_str())))
}

fn in_inventory(language: &str, kind: ValueKind, segments: &[String]) -> bool {
    let inv: BTreeSet<String> = inventory(language, kind).unwrap().into_iter().collect();
    segments.iter().all(|s| inv.contains(s))
}

#[test]
fn test_parsers_reject_non_canonical_forms() {
    let en = |w: &str| en_number(&tokens(&clips(w)));
    let nl = |w: &str| nl_number(&tokens(&clips(w)));
    assert_eq!(en("100 and 5"), Some(105));
    assert_eq!(en("100 5"), None);
    assert_eq!(en("1 thousand 5"), None);
    assert_eq!(en("and 5"), None);
    assert_eq!(nl("100 5"), Some(105));
    assert_eq!(nl("1 thousand"), None);
    assert_eq!(nl("100 and 5"), None);
}

#[test]
fn every_inventory_is_shipped() {
    for language in SPEAKING_LANGUAGES {
        for kind in ValueKind::ALL {
            let inv = inventory(language, kind).unwrap();
            let missing: Vec<&String> = inv
                .iter()
                .filter(|s| !shipped().contains(&ClipRef::new(*language, s.as_str())))
                .collect();
            assert!(missing.is_empty(), "{language} {kind:?}: {missing:?}");
        }
    }
}

#[test]
fn every_date_and_time_stays_in_the_inventory() {
    let year = SayOptions {
        currency: None,
        with_year: true,
    };
    for language in SPEAKING_LANGUAGES {
        let mut day = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        while day.year() < 2029 {
            let text = day.format("%Y-%m-%d").to_string();
            let s = say_with(language, ValueKind::Date, &text, year);
            assert!(in_inventory(language, ValueKind::Date, &s), "{text}");
            day = day.succ_opt().unwrap();
        }
        for y in (1000..=9999).step_by(7) {
            let s = say_with(language, ValueKind::Date, &format!("{y}-06-15"), year);
            assert!(in_inventory(language, ValueKind::Date, &s), "{y}");
        }
        for h in 0..24 {
            for m in 0..60 {
                let s = say(language, ValueKind::Time, &format!("{h}:{m:02}"));
                assert!(in_inventory(language, ValueKind::Time, &s), "{h}:{m}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn numbers_round_trip_and_are_shipped(n in 0u32..=MAX_NUMBER) {
        for language in SPEAKING_LANGUAGES {
            let s = say(language, ValueKind::Number, &n.to_string());
            prop_assert!(all_shipped(language, &s), "{} {}: {:?}", language, n, s);
            prop_assert!(in_inventory(language, ValueKind::Number, &s));
            let back = if *language == "en" { en_number(&tokens(&s)) } else { nl_number(&tokens(&s)) };
            prop_assert_eq!(back, Some(n), "{} {:?}", language, s);
        }
    }

    #[test]
    fn small_numbers_round_trip(n in 0u32..=100_000) {
        for language in SPEAKING_LANGUAGES {
            let s = say(language, ValueKind::Number, &n.to_string());
            let back = if *language == "en" { en_number(&tokens(&s)) } else { nl_number(&tokens(&s)) };
            prop_assert_eq!(back, Some(n), "{} {:?}", language, s);
        }
    }

    #[test]
    fn amounts_round_trip_and_are_shipped(
        minor in prop_oneof![0u64..=10_000, 0u64..=99_999_999_999],
        currency in prop_oneof![Just(Currency::Eur), Just(Currency::Usd), Just(Currency::Gbp)],
        comma in any::<bool>(),
    ) {
        let code = match currency { Currency::Eur => "EUR", Currency::Usd => "USD", Currency::Gbp => "GBP" };
        let mark = if comma { ',' } else { '.' };
        let text = format!("{}{mark}{:02}", minor / 100, minor % 100);
        let options = SayOptions { currency: Some(code), with_year: false };
        for language in SPEAKING_LANGUAGES {
            let s = say_with(language, ValueKind::Amount, &text, options);
            prop_assert!(all_shipped(language, &s), "{} {}: {:?}", language, text, s);
            prop_assert!(in_inventory(language, ValueKind::Amount, &s));
            prop_assert_eq!(parse_amount_back(language, &s, currency), Some(minor), "{} {} {:?}", language, text, s);
        }
    }

    #[test]
    fn grouped_amounts_read_like_plain_ones(minor in 0u64..=99_999_999_999) {
        let whole = minor / 100;
        let cents = minor % 100;
        let mut grouped = String::new();
        for (i, c) in whole.to_string().chars().enumerate() {
            let left = whole.to_string().len() - i;
            if i > 0 && left % 3 == 0 {
                grouped.push('.');
            }
            grouped.push(c);
        }
        let text = format!("{grouped},{cents:02}");
        prop_assert_eq!(Amount::parse(&text).map(Amount::minor), Ok(minor), "{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,16}") {
        for language in ["en", "nl", "xx"] {
            for kind in ValueKind::ALL {
                let _ = speak(language, kind, &text, SayOptions::default());
            }
        }
    }
}
