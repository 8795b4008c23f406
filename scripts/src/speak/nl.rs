//! Dutch: "honderdvijf euro en tien cent", "eenentwintig maart
//! tweeduizend zesentwintig", "veertien uur dertig".
//!
//! Rules: 1–99 are whole words (the compounds "eenentwintig",
//! "vijfentwintig" are recorded as one segment, so they sound natural);
//! hundreds are one segment ("honderd", not "eenhonderd"; "tweehonderd")
//! followed directly by the rest, without "en" ("honderd vijf" is heard as
//! "honderdvijf"); 1000 is "duizend", 2000 "tweeduizend"; millions are
//! counted ("één miljoen"). Euro, dollar, pound and cent do not change in
//! the plural ("twee euro", "tien cent"); pence does ("één penny",
//! "tien pence"). Dates use the cardinal day ("eenentwintig maart"); years
//! 1100–1999 are read in hundreds ("negentienhonderd negenennegentig"),
//! others as numbers ("tweeduizend zesentwintig"). Times use the 24-hour
//! clock with "uur".

use chrono::{Datelike, NaiveDate};

use super::{
    cardinal, hundreds, month, month_inventory, number_inventory, Amount, Currency, Speaker,
    TimeOfDay, ValueKind, AND, MAX_NUMBER, MILLION, THOUSAND,
};

pub(super) struct Dutch;

const UUR: &str = "say/uur";

fn major(currency: Currency) -> &'static str {
    match currency {
        Currency::Eur => "say/euro",
        Currency::Usd => "say/dollar",
        Currency::Gbp => "say/pound",
    }
}

fn minor(currency: Currency, plural: bool) -> &'static str {
    match (currency, plural) {
        (Currency::Eur | Currency::Usd, _) => "say/cent",
        (Currency::Gbp, false) => "say/penny",
        (Currency::Gbp, true) => "say/pence",
    }
}

impl Dutch {
    /// 1 to 999.
    fn chunk(x: u32, out: &mut Vec<String>) {
        let (h, r) = (x / 100, x % 100);
        if h > 0 {
            out.push(hundreds(h));
        }
        if r > 0 {
            out.push(cardinal(r));
        }
    }
}

impl Speaker for Dutch {
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
            if t > 1 {
                Self::chunk(t, out);
            }
            out.push(THOUSAND.to_string());
        }
        if r > 0 {
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
        out.push(major(currency).to_string());
        if cents > 0 {
            out.push(AND.to_string());
            self.number(cents, out);
            out.push(minor(currency, cents != 1).to_string());
        }
    }

    fn date(&self, date: NaiveDate, with_year: bool, out: &mut Vec<String>) {
        out.push(cardinal(date.day()));
        out.push(month(date));
        if with_year {
            let y = u32::try_from(date.year()).unwrap_or(0);
            if (1100..=1999).contains(&y) {
                out.push(cardinal(y / 100));
                out.push(hundreds(1));
                if y % 100 > 0 {
                    out.push(cardinal(y % 100));
                }
            } else {
                self.number(y, out);
            }
        }
    }

    fn time(&self, time: TimeOfDay, out: &mut Vec<String>) {
        out.push(cardinal(time.hour));
        out.push(UUR.to_string());
        if time.minute > 0 {
            out.push(cardinal(time.minute));
        }
    }

    fn inventory(&self, kind: ValueKind, out: &mut Vec<String>) {
        match kind {
            ValueKind::Number => number_inventory(out),
            ValueKind::Amount => {
                number_inventory(out);
                out.push(AND.to_string());
                for c in Currency::ALL {
                    out.push(major(c).to_string());
                    out.push(minor(c, false).to_string());
                    out.push(minor(c, true).to_string());
                }
                out.sort();
                out.dedup();
            }
            ValueKind::Date => {
                month_inventory(out);
                number_inventory(out);
            }
            ValueKind::Time => {
                out.extend((0..60).map(cardinal));
                out.push(UUR.to_string());
            }
            ValueKind::Digits => out.extend((0..10).map(cardinal)),
        }
    }
}
