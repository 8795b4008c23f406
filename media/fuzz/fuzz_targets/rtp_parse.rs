//! Feeds arbitrary datagrams to the RTP parser, the telephone-event parser and
//! a whole session core: none of them may panic on network input.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dialcast_media::dtmf::parse_telephone_event;
use dialcast_media::{parse_rtp, Codec, RemoteMedia, SessionConfig, SessionCore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = parse_rtp(data) {
        assert!(view.payload.len() <= data.len());
        let _ = parse_telephone_event(view.payload);
    }
    let _ = parse_telephone_event(data);

    let now = Instant::now();
    let mut core = SessionCore::new(
        SessionConfig {
            send_silence: true,
            inactivity_timeout: Duration::from_secs(1),
        },
        now,
    );
    let peer = SocketAddr::from(([127, 0, 0, 1], 4000));
    core.set_remote(
        RemoteMedia {
            addr: peer,
            codec: Codec::Pcma,
            payload_type: 8,
            dtmf_payload_type: Some(101),
            ssrc: None,
        },
        now,
    );
    core.set_recording(true);
    core.handle_datagram(data, peer, now);
    while core.poll_event().is_some() {}
});
