//! English (British usage): "one hundred and five euros and ten cents",
//! "the twenty-first of March twenty twenty-six", "two thirty p.m.".
//!
//! Rules: "and" joins hundreds to a following 1–99 ("one hundred and five")
//! and a final 1–99 to thousands or millions ("one thousand and five");
//! cents follow "and"; one unit is singular ("one euro", "one cent"); no
//! whole units means cents only ("ten cents") and nothing at all means
//! "zero euros". Years are read in pairs ("nineteen ninety-nine",
//! "twenty oh five" is avoided: 2000–2009 are "two thousand and five").
//! Times use the 12-hour clock with a.m./p.m.

use chrono::{Datelike, NaiveDate};

use super::{
    cardinal, hundreds, month, month_inventory, number_inventory, Amount, Currency, Speaker,
    TimeOfDay, ValueKind, AND, MAX_NUMBER, MILLION, THOUSAND,
};

pub(super) struct English;

const HUNDRED: &str = "say/hundred";
const OH: &str = "say/oh";
const THE: &str = "say/the";
const OF: &str = "say/of";
const AM: &str = "say/am";
const PM: &str = "say/pm";

fn major(currency: Currency, plural: bool) -> &'static str {
    match (currency, plural) {
        (Currency::Eur, false) => "say/euro",
        (Currency::Eur, true) => "say/euros",
        (Currency::Usd, false) => "say/dollar",
        (Currency::Usd, true) => "say/dollars",
        (Currency::Gbp, false) => "say/pound",
        (Currency::Gbp, true) => "say/pounds",
    }
}

fn minor(currency: Currency, plural: bool) -> &'static str {
    match (currency, plural) {
        (Currency::Eur | Currency::Usd, false) => "say/cent",
        (Currency::Eur | Currency::Usd, true) => "say/cents",
        (Currency::Gbp, false) => "say/penny",
        (Currency::Gbp, true) => "say/pence",
    }
}

impl English {
    /// 1 to 999.
    fn chunk(x: u32, out: &mut Vec<String>) {
        let (h, r) = (x / 100, x % 100);
        if h > 0 {
            out.push(hundreds(h));
            if r > 0 {
                out.push(AND.to_string());
                out.push(cardinal(r));
            }
        } else {
            out.push(cardinal(r));
        }
    }

    fn year(y: u32, out: &mut Vec<String>) {
        if !(1000..=9999).contains(&y) || y % 1000 < 10 {
            // 2000 "two thousand", 2005 "two thousand and five".
            English.number(y, out);
            return;
        }
        let (hi, lo) = (y / 100, y % 100);
        out.push(cardinal(hi));
        match lo {
            0 => out.push(HUNDRED.to_string()),
            1..=9 => {
                out.push(OH.to_string());
                out.push(cardinal(lo));
            }
            _ => out.push(cardinal(lo)),
        }
    }
}

impl Speaker for English {
    fn number(&self, n: u32, out: &mut Vec<String>) {
        let n = n.min(MAX_NUMBER);
        if n == 0 {
            out.push(cardinal(0));
            return;
        }
        let (m, t, r) = (n / 1_000_000, (n / 1000) % 1000, n % 1000);
        if m > 0 {
            Self::chunk(m, out);
            out.push(MILLION.to_string());
        }
        if t > 0 {
            Self::chunk(t, out);
            out.push(THOUSAND.to_string());
        }
        if r > 0 {
            if r < 100 && n >= 1000 {
                out.push(AND.to_string());
            }
            Self::chunk(r, out);
        }
    }

    fn amount(&self, amount: Amount, currency: Currency, out: &mut Vec<String>) {
        let whole = u32::try_from(amount.whole()).unwrap_or(MAX_NUMBER);
        let cents = amount.cents();
        if whole == 0 && cents > 0 {
            self.number(cents, out);
            out.push(minor(currency, cents != 1).to_string());
            return;
        }
        self.number(whole, out);
        out.push(major(currency, whole != 1).to_string());
        if cents > 0 {
            out.push(AND.to_string());
            self.number(cents, out);
            out.push(minor(currency, cents != 1).to_string());
        }
    }

    fn date(&self, date: NaiveDate, with_year: bool, out: &mut Vec<String>) {
        out.push(THE.to_string());
        out.push(format!("say/ordinal_{}", date.day()));
        out.push(OF.to_string());
        out.push(month(date));
        if with_year {
            Self::year(u32::try_from(date.year()).unwrap_or(0), out);
        }
    }

    fn time(&self, time: TimeOfDay, out: &mut Vec<String>) {
        let hour12 = match time.hour % 12 {
            0 => 12,
            h => h,
        };
        out.push(cardinal(hour12));
        match time.minute {
            0 => {}
            m @ 1..=9 => {
                out.push(OH.to_string());
                out.push(cardinal(m));
            }
            m => out.push(cardinal(m)),
        }
        out.push(if time.hour < 12 { AM } else { PM }.to_string());
    }

    fn inventory(&self, kind: ValueKind, out: &mut Vec<String>) {
        match kind {
            ValueKind::Number => {
                number_inventory(out);
                out.push(AND.to_string());
            }
            ValueKind::Amount => {
                number_inventory(out);
                out.push(AND.to_string());
                for c in Currency::ALL {
                    for plural in [false, true] {
                        out.push(major(c, plural).to_string());
                        out.push(minor(c, plural).to_string());
                    }
                }
                out.sort();
                out.dedup();
            }
            ValueKind::Date => {
                out.push(THE.to_string());
                out.push(OF.to_string());
                out.extend((1..=31).map(|d| format!("say/ordinal_{d}")));
                month_inventory(out);
                number_inventory(out);
                out.extend([AND, HUNDRED, OH].map(str::to_string));
            }
            ValueKind::Time => {
                out.extend((1..60).map(cardinal));
                out.extend([OH, AM, PM].map(str::to_string));
            }
            ValueKind::Digits => out.extend((0..10).map(cardinal)),
        }
    }
}
