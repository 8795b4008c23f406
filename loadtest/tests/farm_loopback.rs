//! The callee farm called by our own SIP stack (`dialcast-sip`'s UAC) on
//! 127.0.0.1, no SIPp needed: every non-answering behaviour ends with the SIP
//! status whose call status is the behaviour's `expected_status`, and the
//! answering ones answer. The SIPp suite (`farm_sipp.rs`, feature `interop`)
//! checks the same against a peer nobody here wrote.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use dialcast_loadtest::farm::{Behaviour, Farm, FarmConfig, Span, Timings};
use dialcast_sip::sdp::LocalMedia;
use dialcast_sip::{CallEnd, CallEvent, CallRequest, EndCause, SipConfig, SipEndpoint, Transport};

async fn start() -> (Farm, SipEndpoint) {
    let mut config = FarmConfig::new("127.0.0.1:0".parse().expect("address"));
    config.media.port_min = 44000;
    config.media.port_max = 44999;
    config.timings = Timings {
        ring: Span::fixed(Duration::from_millis(100)),
        slow_ring: Duration::from_millis(300),
        decline_after: Duration::from_millis(100),
        hangup_after: Duration::from_millis(300),
        ..Timings::default()
    };
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
