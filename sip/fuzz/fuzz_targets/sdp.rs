//! Raw bytes as an SDP answer and as an offer (with and without hold).
#![no_main]

use dialcast_sip::sdp::{answer_offer, parse_answer, LocalMedia};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    let local = LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        port: 40000,
        ssrc: None,
    };
    let _ = parse_answer(data);
    let hold = data.first().is_some_and(|b| b & 1 == 1);
    if let Ok((answer, negotiated)) = answer_offer(data, &local, 1, 2, hold) {
        // Our own answer must always be readable by our own parser.
        let back = parse_answer(answer.as_bytes()).expect("our answer parses");
        assert_eq!(back.codec, negotiated.codec);
        assert_eq!(back.remote.port(), 40000);
    }
});
