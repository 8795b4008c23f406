//! Arbitrary bytes as an ODS content.xml: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = dialcast_engine_fuzz::options();
    let _ = dialcast_engine_fuzz::import::read_ods_content(data, &options);
});
