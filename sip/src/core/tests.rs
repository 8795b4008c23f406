//! The SIP core on a virtual clock: we play the far end by reading what the
//! core transmits and writing the responses and requests a peer would send.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::msg::Incoming;
use super::*;
use crate::sdp::LocalMedia;

const LOCAL: &str = "127.0.0.1:5060";
const TRUNK: &str = "127.0.0.1:5080";
const ANSWER_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 1)))
}

fn trunk() -> Peer {
    Peer {
        addr: addr(TRUNK),
        transport: Transport::Udp,
    }
}

fn core() -> SipCore {
    SipCore::new(addr(LOCAL), "test".into(), Timers::default())
}

fn dial(core: &mut SipCore, handle: CallHandle, now: Instant, credential: Option<(&str, &str)>) {
    let local = LocalMedia {
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 20000,
        ssrc: None,
    };
    core.handle_command(
        Command::Dial(
            handle,
            Box::new(Dial {
                call_id: format!("call-{handle}"),
                target_uri: format!("sip:+3120@{TRUNK}"),
                peer: trunk(),
                from: format!("<sip:+3170@{LOCAL}>"),
                extra_headers: vec![("X-Record".into(), "42".into())],
                offer: crate::sdp::build_offer(&local, 1, 1).into_bytes(),
                local_media: local,
                sdp_session_id: 1,
                credential: credential.map(|(u, p)| (u.to_string(), p.to_string())),
                ring_timeout: Duration::from_secs(30),
            }),
        ),
        now,
    );
}

/// Everything the core sent, parsed.
fn sent(core: &mut SipCore) -> Vec<Incoming> {
    let mut out = Vec::new();
    while let Some(t) = core.poll_transmit() {
        match crate::wire::read_message(&t.bytes) {
            crate::wire::ReadOutcome::Message(m) => out.push(*m),
            other => panic!(
                "the core sent something unreadable ({other:?}):\n{}",
                String::from_utf8_lossy(&t.bytes)
            ),
        }
    }
    out
}

fn events(core: &mut SipCore) -> Vec<Event> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

fn method(m: &Incoming) -> Option<Method> {
    match &m.kind {
        Kind::Request { method, .. } => Some(*method),
        Kind::Response { .. } => None,
    }
}

/// A response from the trunk to the request `req`, with a To tag.
fn reply(req: &Incoming, code: u16, extra: &[(&str, &str)], body: &str) -> Incoming {
    let ct = (!body.is_empty()).then_some("application/sdp");
    let bytes = msg::response(
        req,
        code,
        msg::reason(code),
        Some("far"),
        extra,
        ct,
        body.as_bytes(),
    );
    match crate::wire::read_message(&bytes) {
        crate::wire::ReadOutcome::Message(m) => *m,
        other => panic!("test response unreadable: {other:?}"),
    }
}

fn ended(events: &[Event]) -> Option<CallEnd> {
    events.iter().find_map(|e| match e {
        Event::Outbound(_, CallEvent::Ended(end)) => Some(end.clone()),
        _ => None,
    })
}

#[test]
fn invite_is_resent_on_timer_a_and_given_up_on_timer_b() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 1, t0, None);
    let first = sent(&mut c);
    assert_eq!(first.len(), 1);
    assert_eq!(method(&first[0]), Some(Method::Invite));
    // Resends at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s (T1 doubling, no cap).
    let mut resends = Vec::new();
    let mut now = t0;
    while now < t0 + Duration::from_secs(40) {
        now += Duration::from_millis(50);
        c.handle_timeout(now);
        if !sent(&mut c).is_empty() {
            resends.push((now - t0).as_millis() / 100);
        }
        if let Some(end) = ended(&events(&mut c)) {
            assert_eq!(
                (end.status, end.sip_code, end.cause),
                (CallStatus::Failed, 408, EndCause::Timeout)
            );
            assert!(!end.from_network);
            assert_eq!(resends, vec![5, 15, 35, 75, 155, 315]);
            assert_eq!((now - t0).as_secs(), 32, "Timer B is 64 x T1");
            return;
        }
    }
    panic!("no Timer B; resends at {resends:?}");
}

#[test]
fn answered_call_is_acked_and_ends_with_our_bye() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 7, t0, None);
    let invite = sent(&mut c).remove(0);
    assert!(String::from_utf8_lossy(&invite.body).contains("m=audio 20000 RTP/AVP 0 8 101"));
    c.handle_message(reply(&invite, 180, &[], ""), trunk(), t0);
    assert!(sent(&mut c).is_empty(), "no resend after a provisional");
    let ok = reply(
        &invite,
        200,
        &[("Contact", "<sip:far@127.0.0.1:5080>")],
        ANSWER_SDP,
    );
    c.handle_message(ok.clone(), trunk(), t0);
    let acks = sent(&mut c);
    assert_eq!(acks.len(), 1);
    assert_eq!(method(&acks[0]), Some(Method::Ack));
    assert_eq!(acks[0].to_tag.as_deref(), Some("far"));
    assert_ne!(
        acks[0].branch, invite.branch,
        "a 2xx ACK is its own transaction"
    );
    let ev = events(&mut c);
    assert!(matches!(
        ev[0],
        Event::Outbound(7, CallEvent::Progress { code: 180 })
    ));
    match &ev[1] {
        Event::Outbound(7, CallEvent::Answered(Some(media))) => {
            assert_eq!(media.remote, addr("127.0.0.1:6000"));
            assert_eq!(media.dtmf_payload_type, Some(101));
        }
        other => panic!("expected the answer, got {other:?}"),
    }
    // A retransmitted 200 is ACKed again.
    c.handle_message(ok.clone(), trunk(), t0);
    assert_eq!(method(&sent(&mut c)[0]), Some(Method::Ack));
    // Our BYE; its 200 ends the call.
    c.handle_command(Command::Hangup(7), t0 + Duration::from_secs(5));
    let bye = sent(&mut c).remove(0);
    assert_eq!(method(&bye), Some(Method::Bye));
    assert_eq!(bye.cseq, 2);
    assert!(matches!(&bye.kind, Kind::Request { uri, .. } if uri.contains("far@127.0.0.1:5080")));
    c.handle_message(
        reply(&bye, 200, &[], ""),
        trunk(),
        t0 + Duration::from_secs(5),
    );
    let end = ended(&events(&mut c)).expect("ended");
    assert_eq!(
        (end.status, end.cause),
        (CallStatus::Answered, EndCause::LocalHangup)
    );
    // Nothing of ours is in flight any more: the full record is gone and a
    // tomb is left, which still ACKs a retransmitted 2xx (our ACK may have
    // been lost) for the rest of 64 x T1, and then goes too.
    assert!(c.calls.is_empty() && c.dialogs.is_empty() && c.client.is_empty());
    assert_eq!(c.call_count(), 1);
    c.handle_message(ok, trunk(), t0 + Duration::from_secs(20));
    let again = sent(&mut c);
    assert_eq!(again.len(), 1);
    assert_eq!(method(&again[0]), Some(Method::Ack));
    assert_eq!(again[0].branch, acks[0].branch, "the same ACK, repeated");
    c.handle_timeout(t0 + Duration::from_secs(38));
    assert_eq!(c.call_count(), 0, "ended calls are removed");
    assert!(c.tombs.is_empty() && c.tomb_order.is_empty());
}

#[test]
fn ring_timeout_cancels_after_a_provisional_and_487_is_no_answer() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 3, t0, None);
    let invite = sent(&mut c).remove(0);
    c.handle_message(reply(&invite, 180, &[], ""), trunk(), t0);
    c.handle_timeout(t0 + Duration::from_secs(30));
    let cancel = sent(&mut c).remove(0);
    assert_eq!(method(&cancel), Some(Method::Cancel));
    assert_eq!(
        cancel.branch, invite.branch,
        "CANCEL shares the INVITE's branch"
    );
    assert_eq!(cancel.cseq, invite.cseq);
    c.handle_message(
        reply(&cancel, 200, &[], ""),
        trunk(),
        t0 + Duration::from_secs(30),
    );
    c.handle_message(
        reply(&invite, 487, &[], ""),
        trunk(),
        t0 + Duration::from_secs(30),
    );
    let ack = sent(&mut c).remove(0);
    assert_eq!(method(&ack), Some(Method::Ack));
    assert_eq!(
        ack.branch, invite.branch,
        "a non-2xx ACK is part of the INVITE transaction"
    );
    let end = ended(&events(&mut c)).expect("ended");
    assert_eq!(
        (end.status, end.sip_code, end.cause),
        (CallStatus::NoAnswer, 487, EndCause::RingTimeout)
    );
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 4, t0, None);
    let invite = sent(&mut c).remove(0);
    c.handle_command(Command::Hangup(4), t0);
    assert!(
        sent(&mut c).is_empty(),
        "RFC 3261 9.1: no CANCEL before a provisional"
    );
    c.handle_message(reply(&invite, 100, &[], ""), trunk(), t0);
    let cancel = sent(&mut c).remove(0);
    assert_eq!(method(&cancel), Some(Method::Cancel));
}

#[test]
fn digest_challenge_is_answered_once() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 5, t0, Some(("alice", "s3cret")));
    let invite = sent(&mut c).remove(0);
    let challenge = reply(
        &invite,
        407,
        &[(
            "Proxy-Authenticate",
            "Digest realm=\"trunk\", nonce=\"abc123\", algorithm=MD5",
        )],
        "",
    );
    c.handle_message(challenge.clone(), trunk(), t0);
    let out = sent(&mut c);
    assert_eq!(out.len(), 2, "ACK for the 407, then the new INVITE");
    assert_eq!(method(&out[0]), Some(Method::Ack));
    let second = &out[1];
    assert_eq!(method(second), Some(Method::Invite));
    assert_eq!(second.cseq, invite.cseq + 1);
    assert_ne!(second.branch, invite.branch);
    // A second challenge is final: no loop.
    c.handle_message(
        reply(
            second,
            407,
            &[(
                "Proxy-Authenticate",
                "Digest realm=\"trunk\", nonce=\"def\"",
            )],
            "",
        ),
        trunk(),
        t0,
    );
    let end = ended(&events(&mut c)).expect("ended");
    assert_eq!((end.status, end.sip_code), (CallStatus::Failed, 407));
}

#[test]
fn busy_maps_to_busy_and_keeps_retry_after() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 6, t0, None);
    let invite = sent(&mut c).remove(0);
    c.handle_message(
        reply(&invite, 503, &[("Retry-After", "120")], ""),
        trunk(),
        t0,
    );
    let end = ended(&events(&mut c)).expect("ended");
    assert_eq!(end.status, CallStatus::Unavailable);
    assert_eq!(end.retry_after, Some(Duration::from_secs(120)));
    assert!(end.from_network);
}

#[test]
fn inbound_call_is_answered_resent_until_ack_and_ended_by_the_callers_bye() {
    let t0 = Instant::now();
    let mut c = core();
    let caller = Peer {
        addr: addr("127.0.0.1:5090"),
        transport: Transport::Udp,
    };
    let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
    let invite_bytes = msg::RequestBuilder::new(Method::Invite, &format!("sip:svc@{LOCAL}"))
        .header("Via", "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKin1")
        .header("From", "<sip:0612345678@127.0.0.1:5090>;tag=caller")
        .header("To", &format!("<sip:svc@{LOCAL}>"))
        .header("Call-ID", "in-1")
        .header("CSeq", "1 INVITE")
        .header("Contact", "<sip:caller@127.0.0.1:5090>")
        .header("Max-Forwards", "70")
        .body(Some("application/sdp"), offer.as_bytes());
    let invite = match crate::wire::read_message(&invite_bytes) {
        crate::wire::ReadOutcome::Message(m) => *m,
        other => panic!("{other:?}"),
    };
    c.handle_message(invite.clone(), caller, t0);
    let trying = sent(&mut c).remove(0);
    assert!(matches!(trying.kind, Kind::Response { code: 100 }));
    let handle = match events(&mut c).remove(0) {
        Event::Offered(h, offered) => {
            assert_eq!(offered.caller, "0612345678");
            h
        }
        other => panic!("{other:?}"),
    };
    let local = LocalMedia {
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 20002,
        ssrc: None,
    };
    let (answer, media) = crate::sdp::answer_offer(offer.as_bytes(), &local, 1, 1, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(media.dtmf_payload_type, Some(96));
    c.handle_command(Command::Answer(handle, answer.into_bytes(), local), t0);
    let ok = sent(&mut c).remove(0);
    assert!(matches!(ok.kind, Kind::Response { code: 200 }));
    let our_tag = ok.to_tag.clone().unwrap_or_default();
    // No ACK yet: the 200 is resent (Timer G).
    c.handle_timeout(t0 + Duration::from_millis(500));
    assert_eq!(sent(&mut c).len(), 1);
    let ack = msg::RequestBuilder::new(Method::Ack, "sip:dialcast@127.0.0.1:5060")
        .header("Via", "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKack1")
        .header("From", "<sip:0612345678@127.0.0.1:5090>;tag=caller")
        .header("To", &format!("<sip:svc@{LOCAL}>;tag={our_tag}"))
        .header("Call-ID", "in-1")
        .header("CSeq", "1 ACK")
        .header("Max-Forwards", "70")
        .body(None, b"");
    if let crate::wire::ReadOutcome::Message(m) = crate::wire::read_message(&ack) {
        c.handle_message(*m, caller, t0 + Duration::from_millis(600));
    }
    assert!(matches!(
        events(&mut c)[..],
        [Event::Inbound(_, InboundEvent::Confirmed)]
    ));
    c.handle_timeout(t0 + Duration::from_secs(5));
    assert!(sent(&mut c).is_empty(), "no resends after the ACK");
    let bye = msg::RequestBuilder::new(Method::Bye, "sip:dialcast@127.0.0.1:5060")
        .header("Via", "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKbye1")
        .header("From", "<sip:0612345678@127.0.0.1:5090>;tag=caller")
        .header("To", &format!("<sip:svc@{LOCAL}>;tag={our_tag}"))
        .header("Call-ID", "in-1")
        .header("CSeq", "2 BYE")
        .header("Max-Forwards", "70")
        .body(None, b"");
    if let crate::wire::ReadOutcome::Message(m) = crate::wire::read_message(&bye) {
        c.handle_message(*m.clone(), caller, t0 + Duration::from_secs(6));
        let answer = sent(&mut c).remove(0);
        assert!(matches!(answer.kind, Kind::Response { code: 200 }));
        // A retransmitted BYE gets the same answer, not a second end.
        c.handle_message(*m, caller, t0 + Duration::from_secs(6));
        assert_eq!(sent(&mut c).len(), 1);
    }
    let ev = events(&mut c);
    assert_eq!(ev.len(), 1);
    assert!(matches!(
        ev[0],
        Event::Inbound(_, InboundEvent::Ended(EndCause::RemoteHangup))
    ));
}

#[test]
fn any_2xx_is_an_answer_and_is_acked() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 8, t0, None);
    let invite = sent(&mut c).remove(0);
    let accepted = reply(
        &invite,
        202,
        &[("Contact", "<sip:far@127.0.0.1:5080>")],
        ANSWER_SDP,
    );
    c.handle_message(accepted, trunk(), t0);
    let ack = sent(&mut c).remove(0);
    assert_eq!(method(&ack), Some(Method::Ack));
    assert!(matches!(
        events(&mut c)[..],
        [Event::Outbound(8, CallEvent::Answered(Some(_)))]
    ));
}

// ---- UAS: early media, rejection ------------------------------------------

const CALLER: &str = "127.0.0.1:5090";
const CALLER_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

fn caller() -> Peer {
    Peer {
        addr: addr(CALLER),
        transport: Transport::Udp,
    }
}

fn read(bytes: &[u8]) -> Incoming {
    match crate::wire::read_message(bytes) {
        crate::wire::ReadOutcome::Message(m) => *m,
        other => panic!("unreadable test message ({other:?})"),
    }
}

/// A request from the caller in the dialog of the INVITE `in-<branch>`.
fn from_caller(method: Method, branch: &str, cseq: &str, to_tag: Option<&str>) -> Incoming {
    let to = match to_tag {
        Some(tag) => format!("<sip:+31615000001@{LOCAL}>;tag={tag}"),
        None => format!("<sip:+31615000001@{LOCAL}>"),
    };
    let builder = msg::RequestBuilder::new(method, &format!("sip:+31615000001@{LOCAL}"))
        .header("Via", &format!("SIP/2.0/UDP {CALLER};branch={branch}"))
        .header("From", &format!("<sip:0612345678@{CALLER}>;tag=caller"))
        .header("To", &to)
        .header("Call-ID", "in-early")
        .header("CSeq", cseq)
        .header("Contact", &format!("<sip:caller@{CALLER}>"))
        .header("Max-Forwards", "70");
    let bytes = if method == Method::Invite {
        builder.body(Some("application/sdp"), CALLER_OFFER.as_bytes())
    } else {
        builder.body(None, b"")
    };
    read(&bytes)
}

/// Feeds an INVITE; returns the call's handle (and the INVITE) once the core
/// sent 100, and the `o=` session id the owner is to answer with.
fn offered(c: &mut SipCore, now: Instant) -> (CallHandle, Incoming, u64) {
    let invite = from_caller(Method::Invite, "z9hG4bKearly1", "1 INVITE", None);
    c.handle_message(invite.clone(), caller(), now);
    let trying = sent(c).remove(0);
    assert!(matches!(trying.kind, Kind::Response { code: 100 }));
    match events(c).remove(0) {
        Event::Offered(h, offered) => {
            assert_eq!(offered.callee, "+31615000001");
            (h, invite, offered.sdp_session_id)
        }
        other => panic!("{other:?}"),
    }
}

fn early_answer(session_id: u64) -> Vec<u8> {
    let local = LocalMedia {
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 30000,
        ssrc: None,
    };
    let (answer, _) =
        crate::sdp::answer_offer(CALLER_OFFER.as_bytes(), &local, session_id, 1, false)
            .unwrap_or_else(|e| panic!("{e}"));
    answer.into_bytes()
}

fn code(m: &Incoming) -> Option<u16> {
    match m.kind {
        Kind::Response { code } => Some(code),
        Kind::Request { .. } => None,
    }
}

#[test]
fn a_183_carries_the_answer_and_the_200_keeps_its_tag_and_sdp() {
    let t0 = Instant::now();
    let mut c = core();
    let (handle, invite, session_id) = offered(&mut c, t0);
    let sdp = early_answer(session_id);
    c.handle_command(Command::Progress(handle, sdp.clone()), t0);
    let progress = sent(&mut c).remove(0);
    assert_eq!(code(&progress), Some(183));
    assert_eq!(progress.content_type.as_deref(), Some("application/sdp"));
    assert_eq!(progress.body, sdp);
    assert!(
        progress.contact.is_some(),
        "an early dialog needs our Contact"
    );
    let tag = progress
        .to_tag
        .clone()
        .expect("a 183 creates an early dialog: To tag");
    // No timer resends a provisional response; a retransmitted INVITE gets it.
    c.handle_timeout(t0 + Duration::from_secs(2));
    assert!(sent(&mut c).is_empty());
    c.handle_message(invite, caller(), t0 + Duration::from_secs(2));
    let again = sent(&mut c).remove(0);
    assert_eq!((code(&again), again.body.clone()), (Some(183), sdp.clone()));
    // The 200 repeats the SDP under the same tag.
    let local = LocalMedia {
        ip: std::net::Ipv4Addr::LOCALHOST.into(),
        port: 30000,
        ssrc: None,
    };
    c.handle_command(
        Command::Answer(handle, sdp.clone(), local),
        t0 + Duration::from_secs(3),
    );
    let ok = sent(&mut c).remove(0);
    assert_eq!(code(&ok), Some(200));
    assert_eq!(ok.to_tag.as_deref(), Some(tag.as_str()));
    assert_eq!(ok.body, sdp);
    let ack = from_caller(Method::Ack, "z9hG4bKack2", "1 ACK", Some(&tag));
    c.handle_message(ack, caller(), t0 + Duration::from_secs(3));
    assert!(matches!(
        events(&mut c)[..],
        [Event::Inbound(_, InboundEvent::Confirmed)]
    ));
    // A re-INVITE is answered in the same SDP session, one version on
    // (RFC 3264 §8).
    let reinvite = from_caller(Method::Invite, "z9hG4bKre1", "2 INVITE", Some(&tag));
    c.handle_message(reinvite, caller(), t0 + Duration::from_secs(4));
    let ok = sent(&mut c).remove(0);
    assert_eq!(code(&ok), Some(200));
    let body = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(
        body.contains(&format!("o=dialcast {session_id} 2 ")),
        "{body}"
    );
}

#[test]
fn a_cancel_after_183_gets_200_and_the_invite_487() {
    let t0 = Instant::now();
    let mut c = core();
    let (handle, _, session_id) = offered(&mut c, t0);
    c.handle_command(Command::Progress(handle, early_answer(session_id)), t0);
    let tag = sent(&mut c).remove(0).to_tag.expect("tag");
    let cancel = from_caller(Method::Cancel, "z9hG4bKearly1", "1 CANCEL", None);
    c.handle_message(cancel, caller(), t0 + Duration::from_secs(1));
    let out = sent(&mut c);
    let codes: Vec<_> = out.iter().map(|m| (code(m), m.cseq_method)).collect();
    assert_eq!(
        codes,
        vec![(Some(200), Method::Cancel), (Some(487), Method::Invite)]
    );
    assert_eq!(out[1].to_tag.as_deref(), Some(tag.as_str()));
    assert!(matches!(
        events(&mut c)[..],
        [Event::Inbound(
            _,
            InboundEvent::Ended(EndCause::RemoteHangup)
        )]
    ));
    // The owner's late 404 changes nothing: the INVITE is already answered.
    c.handle_command(
        Command::Reject(handle, 404, None),
        t0 + Duration::from_secs(1),
    );
    assert!(sent(&mut c).is_empty());
}

#[test]
fn a_404_after_183_is_resent_until_its_ack() {
    let t0 = Instant::now();
    let mut c = core();
    let (handle, _, session_id) = offered(&mut c, t0);
    c.handle_command(Command::Progress(handle, early_answer(session_id)), t0);
    let tag = sent(&mut c).remove(0).to_tag.expect("tag");
    let t1 = t0 + Duration::from_secs(4);
    c.handle_command(Command::Reject(handle, 404, None), t1);
    let not_found = sent(&mut c).remove(0);
    assert_eq!(code(&not_found), Some(404));
    assert_eq!(not_found.to_tag.as_deref(), Some(tag.as_str()));
    assert!(not_found.body.is_empty() && not_found.retry_after.is_none());
    // Timer G: resent after T1 and 2·T1 while no ACK comes.
    c.handle_timeout(t1 + Duration::from_millis(500));
    assert_eq!(code(&sent(&mut c).remove(0)), Some(404));
    c.handle_timeout(t1 + Duration::from_millis(1500));
    assert_eq!(code(&sent(&mut c).remove(0)), Some(404));
    // The ACK of a non-2xx shares the INVITE's branch; it stops the resends.
    let ack = from_caller(Method::Ack, "z9hG4bKearly1", "1 ACK", Some(&tag));
    c.handle_message(ack, caller(), t1 + Duration::from_millis(1600));
    c.handle_timeout(t1 + Duration::from_secs(10));
    assert!(sent(&mut c).is_empty(), "no resends after the ACK");
    assert!(
        events(&mut c).is_empty(),
        "a rejection by the owner is no event"
    );
    // Settled: only a tomb is left. A retransmitted INVITE still gets the
    // 404, a CANCEL of it gets 200 (the transaction is known, RFC 3261
    // §9.2), and another ACK is absorbed.
    assert!(c.calls.is_empty() && c.server_invites.is_empty());
    let again = from_caller(Method::Invite, "z9hG4bKearly1", "1 INVITE", None);
    c.handle_message(again, caller(), t1 + Duration::from_secs(11));
    let repeated = sent(&mut c);
    assert_eq!(repeated.len(), 1);
    assert_eq!(code(&repeated[0]), Some(404));
    assert_eq!(repeated[0].to_tag.as_deref(), Some(tag.as_str()));
    let cancel = from_caller(Method::Cancel, "z9hG4bKearly1", "1 CANCEL", None);
    c.handle_message(cancel, caller(), t1 + Duration::from_secs(12));
    assert_eq!(code(&sent(&mut c).remove(0)), Some(200));
    let ack = from_caller(Method::Ack, "z9hG4bKearly1", "1 ACK", Some(&tag));
    c.handle_message(ack, caller(), t1 + Duration::from_secs(13));
    assert!(sent(&mut c).is_empty() && events(&mut c).is_empty());
    c.handle_timeout(t1 + Duration::from_secs(33));
    assert_eq!(c.call_count(), 0, "the record goes after 64·T1");
}

#[test]
fn a_rejection_carries_retry_after_in_whole_seconds() {
    let t0 = Instant::now();
    for (retry_after, header) in [
        (Some(Duration::from_secs(60)), Some("60")),
        (Some(Duration::from_millis(1200)), Some("2")),
        (None, None),
    ] {
        let mut c = core();
        let (handle, _, _) = offered(&mut c, t0);
        c.handle_command(Command::Reject(handle, 480, retry_after), t0);
        let unavailable = sent(&mut c).remove(0);
        assert_eq!(code(&unavailable), Some(480));
        assert_eq!(unavailable.retry_after.as_deref(), header);
        assert_eq!(
            unavailable
                .retry_after
                .as_deref()
                .and_then(crate::trunk::parse_retry_after),
            header.map(|h| Duration::from_secs(h.parse().unwrap_or_default()))
        );
    }
}

/// An answered outbound call `handle`: returns its INVITE.
fn answered(c: &mut SipCore, handle: CallHandle, now: Instant) -> Incoming {
    dial(c, handle, now, None);
    let invite = sent(c).remove(0);
    let ok = reply(
        &invite,
        200,
        &[("Contact", "<sip:far@127.0.0.1:5080>")],
        ANSWER_SDP,
    );
    c.handle_message(ok, trunk(), now);
    sent(c);
    events(c);
    invite
}

/// A NOTIFY from the trunk in the dialog of `invite`, reporting `frag`.
fn notify(invite: &Incoming, branch: &str, cseq: u32, frag: &str) -> Incoming {
    let bytes = msg::RequestBuilder::new(Method::Notify, &format!("sip:dialcast@{LOCAL}"))
        .header("Via", &format!("SIP/2.0/UDP {TRUNK};branch={branch}"))
        .header("From", &format!("<sip:+3120@{TRUNK}>;tag=far"))
        .header(
            "To",
            &format!("<sip:+3170@{LOCAL}>;tag={}", invite.from_tag),
        )
        .header("Call-ID", &invite.call_id)
        .header("CSeq", &format!("{cseq} NOTIFY"))
        .header("Event", "refer")
        .header("Subscription-State", "active")
        .header("Max-Forwards", "70")
        .body(Some("message/sipfrag;version=2.0"), frag.as_bytes());
    read(&bytes)
}

fn refer_events(c: &mut SipCore) -> Vec<(u16, bool)> {
    events(c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Outbound(_, CallEvent::Refer { code, notify }) => Some((code, notify)),
            _ => None,
        })
        .collect()
}

#[test]
fn refer_is_sent_in_the_dialog_and_its_answer_and_notifies_reported() {
    let t0 = Instant::now();
    let mut c = core();
    let invite = answered(&mut c, 3, t0);
    c.handle_command(
        Command::Refer(3, "sip:queue@cc.example?X-Ref=R1".into()),
        t0,
    );
    let refer = sent(&mut c).remove(0);
    assert_eq!(method(&refer), Some(Method::Refer));
    assert_eq!(refer.cseq, 2);
    assert_eq!(refer.to_tag.as_deref(), Some("far"));
    assert!(refer.body.is_empty(), "a REFER has no body");
    // Resent on Timer E until an answer comes.
    c.handle_timeout(t0 + Duration::from_millis(600));
    assert_eq!(method(&sent(&mut c)[0]), Some(Method::Refer));
    c.handle_message(reply(&refer, 202, &[], ""), trunk(), t0);
    assert_eq!(refer_events(&mut c), [(202, false)]);
    c.handle_timeout(t0 + Duration::from_secs(2));
    assert!(sent(&mut c).is_empty(), "no resend after the answer");
    // NOTIFYs: 100 then 200; each gets our 200.
    c.handle_message(
        notify(&invite, "n1", 1, "SIP/2.0 100 Trying\r\n"),
        trunk(),
        t0,
    );
    c.handle_message(notify(&invite, "n2", 2, "SIP/2.0 200 OK\r\n"), trunk(), t0);
    let answers = sent(&mut c);
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|a| code(a) == Some(200)));
    assert_eq!(refer_events(&mut c), [(100, true), (200, true)]);
}

#[test]
fn refer_without_an_answer_or_on_an_unanswered_call_fails() {
    let t0 = Instant::now();
    let mut c = core();
    dial(&mut c, 4, t0, None);
    sent(&mut c);
    c.handle_command(Command::Refer(4, "sip:q@cc".into()), t0);
    assert_eq!(refer_events(&mut c), [(481, false)]);

    let mut c = core();
    answered(&mut c, 5, t0);
    c.handle_command(Command::Refer(5, "sip:q@cc".into()), t0);
    sent(&mut c);
    c.handle_timeout(t0 + Duration::from_secs(33));
    assert_eq!(refer_events(&mut c), [(408, false)]);
}
