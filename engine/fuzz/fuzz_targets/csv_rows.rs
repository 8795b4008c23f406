//! Arbitrary bytes as a CSV import: must never panic, and every row must
//! come out as a result or a single error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = dialcast_engine_fuzz::options();
    if let Ok(rows) = dialcast_engine_fuzz::import::csv_rows(data, &options) {
        for row in rows {
            if row.is_err() {
                break;
            }
        }
    }
});
