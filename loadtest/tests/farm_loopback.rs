//! The callee farm called by our own SIP stack (`dialcast-sip`'s UAC) on
//! 127.0.0.1, no SIPp needed: every non-answering behaviour ends with the SIP
//! status whose call status is the behaviour's `expected_status`, and the
//! answering ones answer. Where the far end matters beyond the status, the
//! caller also runs `dialcast-media`: it hears early_media_404's
//! announcement before the 404 and presses_keys' keys as RFC 4733 events.
//! The SIPp suite (`farm_sipp.rs`, feature `interop`) checks the same
//! against a peer nobody here wrote.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dialcast_loadtest::farm::{Behaviour, Farm, FarmConfig, Span, Timings};
use dialcast_media::{
    MediaConfig, MediaEngine, MediaEvent, MediaSession, RemoteMedia, RtpSocketMode,
};
use dialcast_sip::sdp::{self, LocalMedia, NegotiatedMedia};
use dialcast_sip::{
    CallEnd, CallEvent, CallRequest, CallStatus, EndCause, OutboundCall, SipConfig, SipEndpoint,
    Transport,
};

fn timings() -> Timings {
    Timings {
        ring: Span::fixed(Duration::from_millis(100)),
        slow_ring: Duration::from_millis(300),
        decline_after: Duration::from_millis(100),
        hangup_after: Duration::from_millis(300),
        ..Timings::default()
    }
}

async fn start() -> (Farm, SipEndpoint) {
    start_with(timings()).await
}

async fn start_with(timings: Timings) -> (Farm, SipEndpoint) {
    start_with_sockets(timings, RtpSocketMode::PerCall).await
}

async fn start_with_sockets(timings: Timings, rtp_socket: RtpSocketMode) -> (Farm, SipEndpoint) {
    let mut config = FarmConfig::new("127.0.0.1:0".parse().expect("address"));
    config.media.rtp_socket = rtp_socket;
    config.media.port_min = 44000;
    config.media.port_max = 44999;
    config.timings = timings;
    let farm = Farm::start(config).await.expect("the farm starts");
    let (caller, _inbound) = SipEndpoint::start(SipConfig {
        bind: "127.0.0.1:0".parse().expect("address"),
        tcp: false,
        ..SipConfig::default()
    })
    .await
    .expect("the caller's endpoint starts");
    (farm, caller)
}

/// Calls `number`; hangs up `hold` after an answer. Returns how it ended and
/// whether it was answered.
async fn call(
    farm: &Farm,
    caller: &SipEndpoint,
    number: &str,
    ring_timeout: Duration,
    hold: Duration,
) -> (CallEnd, bool) {
    // Nobody listens on this port: the farm's RTP goes nowhere, which is fine.
    let local_media = LocalMedia {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 9,
        ssrc: None,
    };
    let mut call = caller
        .place_call(CallRequest {
            target: format!("sip:{number}@{}", farm.local_addr()),
            transport: Transport::Udp,
            caller_id: Some("+31201234567".into()),
            username: None,
            password: None,
            local_media,
            ring_timeout,
            extra_headers: Vec::new(),
        })
        .await
        .expect("the INVITE goes out");
    let mut answered = false;
    let mut hangup_at: Option<tokio::time::Instant> = None;
    let limit = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::select! {
            event = call.next_event() => event,
            _ = async {
                match hangup_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                hangup_at = None;
                call.hangup().await;
                continue;
            }
            _ = tokio::time::sleep_until(limit) => panic!("{number}: no end in 15 s"),
        };
        match event {
            Some(CallEvent::Answered(_)) => {
                answered = true;
                hangup_at = Some(tokio::time::Instant::now() + hold);
            }
            Some(CallEvent::Ended(end)) => return (end, answered),
            Some(_) => {}
            None => panic!("{number}: events stopped without an end"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_end_with_the_expected_status() {
    let (farm, caller) = start().await;
    let cases = [
        Behaviour::Busy,
        Behaviour::Invalid,
        Behaviour::Unavailable,
        Behaviour::Rejected,
        Behaviour::NoAnswer,
    ];
    for (serial, behaviour) in (1..).zip(cases) {
        let number = behaviour.number(serial);
        let (end, answered) = call(
            &farm,
            &caller,
            &number,
            Duration::from_millis(800),
            Duration::ZERO,
        )
        .await;
        assert!(!answered, "{behaviour}");
        assert_eq!(
            end.status.as_str(),
            behaviour.expected_status(),
            "{behaviour}: {end:?}"
        );
    }
    let stats = farm.shutdown().await;
    for behaviour in cases {
        let s = stats.of(behaviour);
        assert_eq!((s.calls, s.completed, s.failed), (1, 1, 0), "{behaviour}");
    }
    assert_eq!(stats.of(Behaviour::NoAnswer).hangups_by_caller, 1);
    caller.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_callees_answer_and_hangup_halfway_hangs_up() {
    let (farm, caller) = start().await;
    let ring_timeout = Duration::from_secs(5);
    let hold = Duration::from_millis(700);
    for behaviour in [
        Behaviour::Human,
        Behaviour::SlowAnswer,
        Behaviour::PressesKeys,
    ] {
        let (end, answered) = call(&farm, &caller, &behaviour.number(1), ring_timeout, hold).await;
        assert!(answered, "{behaviour}");
        assert_eq!(end.cause, EndCause::LocalHangup, "{behaviour}: {end:?}");
    }
    // Hangs up 300 ms after answering, before our 5 s hold is over.
    let (end, answered) = call(
        &farm,
        &caller,
        &Behaviour::HangupHalfway.number(1),
        ring_timeout,
        Duration::from_secs(5),
    )
    .await;
    assert!(answered);
    assert_eq!(end.cause, EndCause::RemoteHangup, "{end:?}");
    let stats = farm.shutdown().await;
    assert_eq!(stats.total().answered, 4);
    assert_eq!(stats.total().failed, 0);
    assert_eq!(stats.of(Behaviour::HangupHalfway).hangups_by_us, 1);
    assert_eq!(stats.of(Behaviour::Human).hangups_by_caller, 1);
    caller.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_asks_to_retry_after_60_s() {
    let (farm, caller) = start().await;
    let (end, answered) = call(
        &farm,
        &caller,
        &Behaviour::Unavailable.number(1),
        Duration::from_secs(5),
        Duration::ZERO,
    )
    .await;
    assert!(!answered);
    assert_eq!((end.sip_code, end.status), (480, CallStatus::Unavailable));
    assert_eq!(end.retry_after, Some(Duration::from_secs(60)), "{end:?}");
    // Other refusals carry none.
    let (end, _) = call(
        &farm,
        &caller,
        &Behaviour::Busy.number(1),
        Duration::from_secs(5),
        Duration::ZERO,
    )
    .await;
    assert_eq!((end.sip_code, end.retry_after), (486, None));
    farm.shutdown().await;
    caller.shutdown();
}

// ---- with media on the caller's side ----------------------------------------

/// The caller's media engine: RTP on 127.0.0.1, ports apart from the farm's.
fn caller_media(rtp_socket: RtpSocketMode) -> MediaEngine {
    MediaEngine::start(MediaConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port_min: 45000,
        port_max: 45099,
        inactivity_timeout: Duration::from_secs(30),
        send_silence: true,
        metrics: false,
        rtp_socket,
        ..MediaConfig::default()
    })
    .expect("the caller's media engine starts")
}

/// Dials `number` with our offer pointing at `session`.
async fn dial(
    farm: &Farm,
    caller: &SipEndpoint,
    number: &str,
    session: &MediaSession,
) -> OutboundCall {
    caller
        .place_call(CallRequest {
            target: format!("sip:{number}@{}", farm.local_addr()),
            transport: Transport::Udp,
            caller_id: Some("+31201234567".into()),
            username: None,
            password: None,
            local_media: LocalMedia {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: session.local_addr().port(),
                ssrc: Some(session.ssrc()),
            },
            ring_timeout: Duration::from_secs(10),
            extra_headers: Vec::new(),
        })
        .await
        .expect("the INVITE goes out")
}

fn remote_media(m: &NegotiatedMedia) -> RemoteMedia {
    RemoteMedia {
        addr: m.remote,
        codec: match m.codec {
            sdp::Codec::Pcmu => dialcast_media::Codec::Pcmu,
            sdp::Codec::Pcma => dialcast_media::Codec::Pcma,
        },
        payload_type: m.payload_type,
        dtmf_payload_type: m.dtmf_payload_type,
        ssrc: m.ssrc,
    }
}

async fn next_call_event(call: &mut OutboundCall) -> CallEvent {
    tokio::time::timeout(Duration::from_secs(10), call.next_event())
        .await
        .expect("a call event within 10 s")
        .expect("events until the end")
}

/// early_media_404 sends 183 with SDP and its announcement before the 404:
/// the caller's media session receives RTP while the call is not answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_404_plays_its_announcement_before_the_404() {
    early_media_404(RtpSocketMode::PerCall).await;
}

/// The same with one RTP socket per media thread on both sides: the farm's
/// announcement reaches the caller's one socket and is told apart by the
/// SSRC the farm announced in its SDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_404_with_shared_rtp_sockets_on_both_sides() {
    early_media_404(RtpSocketMode::PerThread).await;
}

async fn early_media_404(rtp_socket: RtpSocketMode) {
    let (farm, caller) = start_with_sockets(timings(), rtp_socket).await;
    let media = caller_media(rtp_socket);
    let mut session = media.open_session().expect("an RTP port");
    let mut call = dial(
        &farm,
        &caller,
        &Behaviour::EarlyMedia404.number(1),
        &session,
    )
    .await;
    let mut provisional = Vec::new();
    let mut heard_before_the_end = false;
    let end = loop {
        tokio::select! {
            event = next_call_event(&mut call) => match event {
                CallEvent::Progress { code } => provisional.push(code),
                CallEvent::EarlyMedia(m) => {
                    assert_eq!(m.dtmf_payload_type, Some(101));
                    session.set_remote(remote_media(&m));
                }
                CallEvent::Ended(end) => break end,
                other => panic!("unexpected {other:?}"),
            },
            event = session.next_event() => {
                if event == Some(MediaEvent::FirstPacket) {
                    heard_before_the_end = true;
                }
            }
        }
    };
    provisional.retain(|code| *code != 100);
    assert_eq!(provisional, [183], "no 180: early media instead");
    assert!(heard_before_the_end, "no early media before the end");
    assert_eq!(
        (end.sip_code, end.status.as_str()),
        (404, Behaviour::EarlyMedia404.expected_status())
    );
    let heard = session.close().await;
    // The announcement lasts 3.86 s: about 190 packets.
    assert!(heard.rtp_received >= 150, "{heard:?}");
    assert_eq!(heard.rtp_lost, 0, "{heard:?}");
    let stats = farm.shutdown().await;
    let s = stats.of(Behaviour::EarlyMedia404);
    assert_eq!((s.calls, s.answered, s.completed), (1, 0, 1));
    caller.shutdown();
}

/// presses_keys, answered by a caller that offers telephone-event, presses
/// its keys as RFC 4733 events: the caller's media session reports each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presses_keys_sends_its_keys_as_rfc_4733_events() {
    presses_keys(RtpSocketMode::PerCall).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presses_keys_with_shared_rtp_sockets_on_both_sides() {
    presses_keys(RtpSocketMode::PerThread).await;
}

async fn presses_keys(rtp_socket: RtpSocketMode) {
    let (farm, caller) = start_with_sockets(
        Timings {
            keys_after: Duration::from_millis(300),
            keys: "12#".into(),
            ..timings()
        },
        rtp_socket,
    )
    .await;
    let media = caller_media(rtp_socket);
    let mut session = media.open_session().expect("an RTP port");
    let mut call = dial(&farm, &caller, &Behaviour::PressesKeys.number(1), &session).await;
    loop {
        match next_call_event(&mut call).await {
            CallEvent::Answered(Some(m)) => {
                assert_eq!(m.dtmf_payload_type, Some(101), "the farm kept our 101");
                session.set_remote(remote_media(&m));
                session.start_sending();
                break;
            }
            CallEvent::Progress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut keys = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while keys.len() < 3 {
        match tokio::time::timeout_at(until, session.next_event()).await {
            Ok(Some(MediaEvent::Dtmf { digit, duration_ms })) => keys.push((digit, duration_ms)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(keys, [('1', 100), ('2', 100), ('#', 100)]);
    call.hangup().await;
    loop {
        if let CallEvent::Ended(end) = next_call_event(&mut call).await {
            assert_eq!(end.cause, EndCause::LocalHangup);
            break;
        }
    }
    let heard = session.close().await;
    assert_eq!(heard.dtmf, "12#");
    let stats = farm.shutdown().await;
    let s = stats.of(Behaviour::PressesKeys);
    assert_eq!((s.answered, s.dtmf_sent, s.hangups_by_caller), (1, 3, 1));
    caller.shutdown();
}
