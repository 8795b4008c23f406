//! Raw bytes through rsipstack's parser, then our start-line and header
//! validation. No `catch_unwind` here: a parser panic must be reported.
#![no_main]

use dialcast_sip::validate;
use libfuzzer_sys::fuzz_target;
use rsipstack::sip::SipMessage;

fuzz_target!(|data: &[u8]| {
    let _ = validate::check_start_line(data);
    match SipMessage::try_from(data) {
        Ok(SipMessage::Request(req)) => {
            if let Err(e) = validate::validate_request(&req) {
                let _ = validate::response_status(&e);
                let _ = e.to_string();
            }
        }
        Ok(SipMessage::Response(resp)) => {
            let _ = validate::validate_response(&resp);
        }
        Err(_) => {}
    }
});
