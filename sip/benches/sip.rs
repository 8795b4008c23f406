//! Hot paths of the SIP core: parsing and checking an incoming message, and
//! writing the requests of a call. Run with `cargo bench -p dialcast-sip`.

use criterion::{criterion_group, criterion_main, Criterion};
use dialcast_sip::sdp::{self, LocalMedia};
use std::hint::black_box;

const OK_WITH_SDP: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:37616;branch=z9hG4bKNWbI9142GbFS;rport=37616\r\nFrom: <sip:+31200000000@127.0.0.1>;tag=gpLuEzAC\r\nTo: <sip:bench@127.0.0.1:58760>;tag=9588SIPpTag017929\r\nCall-ID: 05e9be0610c64ef8ae9b305b84824b4f@dialcast\r\nCSeq: 1 INVITE\r\nContact: <sip:127.0.0.1:58760;transport=UDP>\r\nContent-Type: application/sdp\r\nContent-Length: 168\r\n\r\nv=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn incoming(c: &mut Criterion) {
    let bytes = OK_WITH_SDP.as_bytes();
    assert!(
        dialcast_sip::validate::parse(bytes).is_ok(),
        "the benchmark message must be valid, or the benches measure error paths"
    );
    c.bench_function("parse_200_with_sdp", |b| {
        b.iter(|| rsipstack::sip::SipMessage::try_from(black_box(bytes)))
    });
    c.bench_function("parse_and_validate_200_with_sdp", |b| {
        b.iter(|| dialcast_sip::validate::parse(black_box(bytes)))
    });
    c.bench_function("wire_read_200_with_sdp", |b| {
        b.iter(|| dialcast_sip::wire::read_message(black_box(bytes)))
    });
    c.bench_function("sdp_parse_answer", |b| {
        let body = &bytes[bytes.len() - 168..];
        b.iter(|| sdp::parse_answer(black_box(body)))
    });
}

fn outgoing(c: &mut Criterion) {
    let local = LocalMedia {
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 20000,
        ssrc: None,
    };
    c.bench_function("sdp_build_offer", |b| {
        b.iter(|| sdp::build_offer(black_box(&local), 1, 1))
    });
}

criterion_group!(benches, incoming, outgoing);
criterion_main!(benches);
