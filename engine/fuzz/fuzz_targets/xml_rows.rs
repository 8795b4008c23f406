//! Arbitrary bytes as an XML import: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = dialcast_engine_fuzz::options();
    if let Ok(rows) = dialcast_engine_fuzz::import::xml_rows(data, &options) {
        for row in rows {
            if row.is_err() {
                break;
            }
        }
    }
});
