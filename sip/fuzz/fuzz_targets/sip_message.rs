//! Raw bytes through everything that reads a SIP message off the network:
//! rsipstack's parser (without `catch_unwind`, so a parser panic is reported),
//! our start-line and header validation, `wire::read_message` (what the driver
//! calls for each datagram), and the TCP stream framer.
#![no_main]

use dialcast_sip::framing::StreamFramer;
use dialcast_sip::{validate, wire};
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
    let _ = wire::read_message(data);
    let mut framer = StreamFramer::new(4096);
    for chunk in data.chunks(7) {
        framer.push(chunk);
        while let Ok(Some(frame)) = framer.next_frame() {
            let _ = wire::read_message(&frame);
        }
    }
});
