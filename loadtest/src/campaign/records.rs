//! The benchmark's records: farm numbers in the proportions of a mix, written
//! as an import file in the same layout as `dialcast demo` writes (the shared
//! formats README), for the `payment_reminder` example script or another
//! that reads the same fields (`short_reminder`).
//!
//! Pure apart from [`write_import_file`]; the same arguments always give the
//! same file (except the due date, which is 14 days after the day it runs).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::farm::{numbers, Behaviour, Mix};

/// The script the campaign dials with by default
/// (`scripts/examples/payment_reminder.toml`).
pub const SCRIPT: &str = "payment_reminder";

/// One generated record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchRecord {
    pub record_id: String,
    /// E.164, a number of the callee farm.
    pub number: String,
    pub behaviour: Behaviour,
}

/// `count` records for `mix`, numbered `LT-000001`… in the order of
/// [`numbers`].
pub fn generate(mix: &Mix, count: usize, seed: u64) -> Vec<BenchRecord> {
    numbers(mix, count, seed)
        .into_iter()
        .enumerate()
        .map(|(i, (number, behaviour))| BenchRecord {
            record_id: format!("LT-{:06}", i + 1),
            number,
            behaviour,
        })
        .collect()
}

const FIRST_NAMES: [&str; 8] = [
    "Anna", "Bram", "Chloe", "Daan", "Emma", "Finn", "Grace", "Henk",
];
const LAST_NAMES: [&str; 8] = [
    "de Vries", "Jansen", "Smith", "Bakker", "Visser", "Brown", "Mulder", "Jones",
];

const HEADER: &str = "IDENTIFICATION_RECORD_ID;IDENTIFICATION_CLIENT_REFERENCE;PERSON_FIRST_NAME;\
PERSON_LAST_NAME;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_NUMBER;INVOICE_DUE_DATE;\
INVOICE_AMOUNT_OPEN;INVOICE_CURRENCY;INVOICE_SUPPLIER_NAME;CONTROL_SCRIPT\n";

/// The import file's text: the columns and the per-row choices (language
/// 30 % Dutch, amounts 5.00–1999.99, so about three in four records hear the
/// payment-plan branch) of `engine/src/demo.rs`.
pub fn import_text(records: &[BenchRecord], seed: u64, due_date: &str, script: &str) -> String {
    let mut out = String::from(HEADER);
    for (i, r) in records.iter().enumerate() {
        let k = (i as u64).wrapping_mul(2654435761).wrapping_add(seed);
        let language = if k % 10 < 3 { "nl" } else { "en" };
        let euros = 5 + k % 1995;
        let cents = (k / 7) % 100;
        let amount = if language == "nl" {
            format!("{euros},{cents:02}")
        } else {
            format!("{euros}.{cents:02}")
        };
        let _ = writeln!(
            out,
            "{};CR-{};{};{};{};{};INV-{};{};{};EUR;Example Energy;{}",
            r.record_id,
            10_000 + i,
            FIRST_NAMES[(k % 8) as usize],
            LAST_NAMES[((k / 8) % 8) as usize],
            language,
            r.number,
            20_000 + i,
            due_date,
            amount,
            script,
        );
    }
    out
}

/// Writes the import file, due dates 14 days from today (UTC).
pub fn write_import_file(
    path: &Path,
    records: &[BenchRecord],
    seed: u64,
    script: &str,
) -> anyhow::Result<()> {
    let today = days_since_epoch_today();
    let text = import_text(records, seed, &iso_date(today + 14), script);
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn days_since_epoch_today() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (proleptic Gregorian; the
/// civil-from-days algorithm of H. Hinnant).
pub fn iso_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_days() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(59), "1970-03-01");
        assert_eq!(iso_date(11_016), "2000-02-29");
        assert_eq!(iso_date(20_513), "2026-03-01");
        assert_eq!(iso_date(-1), "1969-12-31");
    }

    #[test]
    fn records_are_farm_numbers_in_the_mix() {
        let mix: Mix = "human=3,busy=1".parse().expect("mix");
        let records = generate(&mix, 8, 5);
        assert_eq!(records.len(), 8);
        assert_eq!(records[0].record_id, "LT-000001");
        let busy = records
            .iter()
            .filter(|r| r.behaviour == Behaviour::Busy)
            .count();
        assert_eq!(busy, 2);
        for r in &records {
            assert_eq!(crate::farm::behaviour_for(&r.number), Some(r.behaviour));
        }
        assert_eq!(generate(&mix, 8, 5), records);
    }

    #[test]
    fn the_import_file_has_the_demo_columns() {
        let mix: Mix = "human=1".parse().expect("mix");
        let records = generate(&mix, 3, 1);
        let text = import_text(&records, 1, "2030-01-02", SCRIPT);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        let columns = lines[0].split(';').count();
        for line in &lines[1..] {
            assert_eq!(line.split(';').count(), columns, "{line}");
            assert!(line.ends_with(";payment_reminder"), "{line}");
            assert!(line.contains(";2030-01-02;"), "{line}");
        }
        assert!(lines[1].starts_with("LT-000001;CR-10000;"));
    }
}
