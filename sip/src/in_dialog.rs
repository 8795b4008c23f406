//! Answers to requests that arrive inside an established dialog, for both call
//! directions: re-INVITE and UPDATE (hold, unhold, new media address), INFO
//! (answered, DTMF relay decoded), OPTIONS, NOTIFY and MESSAGE (answered 200),
//! REFER (declined: transfers are not ours to follow), PUBLISH (405).
//!
//! rsipstack hands these to the application as dialog states carrying a
//! transaction handle; a handle nobody answers leaves the peer retransmitting.

use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Request, Response, StatusCode};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tracing::debug;

use crate::endpoint::SipEndpoint;
use crate::sdp::{self, LocalMedia, NegotiatedMedia};
use crate::uac::content_type_of;

/// What an in-dialog request meant for the call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InDialogOutcome {
    MediaUpdated(NegotiatedMedia),
    Dtmf(char),
    Nothing,
}

/// Answers the request carried by `state` (a non-lifecycle dialog state).
pub(crate) async fn answer_in_dialog(
    state: DialogState,
    local: &LocalMedia,
    session_id: u64,
    version: u64,
) -> InDialogOutcome {
    match state {
        DialogState::Updated(_, req, handle) => {
            let (status, headers, body, outcome) = session_update(&req, local, session_id, version);
            if let Err(e) = handle.respond(status, headers, body).await {
                debug!(error = %e, "could not answer a session update");
            }
            outcome
        }
        DialogState::Info(_, req, handle) => {
            let digit = dtmf_from_info(&req);
            handle.reply(StatusCode::OK).await.ok();
            digit.map_or(InDialogOutcome::Nothing, InDialogOutcome::Dtmf)
        }
        DialogState::Options(_, _, handle) => {
            let headers = vec![
                Header::Allow(crate::ALLOWED_METHODS.into()),
                Header::Accept("application/sdp".into()),
            ];
            handle.respond(StatusCode::OK, Some(headers), None).await.ok();
            InDialogOutcome::Nothing
        }
        DialogState::Notify(_, _, handle) | DialogState::Message(_, _, handle) => {
            handle.reply(StatusCode::OK).await.ok();
            InDialogOutcome::Nothing
        }
        DialogState::Refer(_, _, handle) => {
            handle.reply(StatusCode::Decline).await.ok();
            InDialogOutcome::Nothing
        }
        DialogState::Publish(_, _, handle) => {
            handle.reply(StatusCode::MethodNotAllowed).await.ok();
            InDialogOutcome::Nothing
        }
        _ => InDialogOutcome::Nothing,
    }
}

type Reply = (
    StatusCode,
    Option<Vec<Header>>,
    Option<Vec<u8>>,
    InDialogOutcome,
);

/// The answer to a re-INVITE or UPDATE (RFC 3261 §14.2, RFC 3311).
fn session_update(req: &Request, local: &LocalMedia, session_id: u64, version: u64) -> Reply {
    let sdp_type = vec![Header::ContentType("application/sdp".into())];
    let has_body = req.body.iter().any(|b| !b.is_ascii_whitespace());
    if !has_body {
        return if req.method == Method::Invite {
            // An offerless re-INVITE: our 200 carries the offer, the ACK the answer.
            let offer = sdp::build_offer(local, session_id, version);
            (
                StatusCode::OK,
                Some(sdp_type),
                Some(offer.into_bytes()),
                InDialogOutcome::Nothing,
            )
        } else {
            (StatusCode::OK, None, None, InDialogOutcome::Nothing)
        };
    }
    match sdp::answer_offer(&req.body, local, session_id, version, false) {
        Ok((answer, media)) => (
            StatusCode::OK,
            Some(sdp_type),
            Some(answer.into_bytes()),
            InDialogOutcome::MediaUpdated(media),
        ),
        Err(e) => {
            debug!(error = %e, "session update refused");
            (
                StatusCode::NotAcceptableHere,
                None,
                None,
                InDialogOutcome::Nothing,
            )
        }
    }
}

/// The digit of an INFO with `application/dtmf-relay` (`Signal=5`) or
/// `application/dtmf` (`5`) body.
fn dtmf_from_info(req: &Request) -> Option<char> {
    let content_type = content_type_of(&req.headers)?;
    let body = std::str::from_utf8(&req.body).ok()?;
    let raw = if content_type.starts_with("application/dtmf-relay") {
        body.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("signal")
                .then(|| value.trim())
        })?
    } else if content_type.starts_with("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let digit = raw.chars().next()?.to_ascii_uppercase();
    matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D').then_some(digit)
}

/// Sends BYE for a dialog that a 2xx other than 200 established, which
/// rsipstack does not keep (it confirms dialogs on 200 only).
pub(crate) async fn bye_unmanaged(endpoint: &SipEndpoint, dialog: &InviteDialog, resp: &Response) {
    match build_bye(endpoint, dialog, resp) {
        Some(mut tx) => {
            if let Err(e) = tx.send().await {
                debug!(error = %e, "BYE for a non-200 2xx failed");
                return;
            }
            let wait = async { while tx.receive().await.is_some() {} };
            tokio::time::timeout(std::time::Duration::from_secs(32), wait)
                .await
                .ok();
        }
        None => debug!("cannot build BYE: the 2xx lacks Contact or tags"),
    }
}

fn build_bye(endpoint: &SipEndpoint, dialog: &InviteDialog, resp: &Response) -> Option<Transaction> {
    let stack = &endpoint.inner.endpoint.inner;
    let invite = dialog.initial_request();
    let contact = resp.typed_contact_headers().ok()?.first()?.uri.clone();
    let from = invite.from_header().ok()?.typed().ok()?;
    let to = resp.to_header().ok()?.typed().ok()?;
    let seq = invite.cseq_header().ok()?.seq().ok()? + 1;
    let call_id = resp.call_id_header().ok()?.clone();
    let via = stack.get_via(None, None).ok()?;
    let mut bye = stack.make_request(Method::Bye, contact.clone(), via, from, to, seq, Some(call_id));
    let routes: Vec<Header> = resp
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::RecordRoute(rr) => Some(Header::Route(rr.value().into())),
            _ => None,
        })
        .collect();
    for route in routes.into_iter().rev() {
        bye.headers.push(route);
    }
    let key = TransactionKey::from_request(&bye, TransactionRole::Client).ok()?;
    let mut tx = Transaction::new_client(key, bye, stack.clone(), None);
    tx.destination = SipAddr::try_from(&contact).ok();
    Some(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        match rsipstack::sip::SipMessage::try_from(text) {
            Ok(rsipstack::sip::SipMessage::Request(req)) => req,
            other => panic!("test request did not parse: {other:?}"),
        }
    }

    const HEAD: &str = "INFO sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>;tag=2\r\nCall-ID: x\r\nCSeq: 2 INFO\r\n";

    #[test]
    fn dtmf_relay_info_gives_the_digit() {
        let body = "Signal=5\r\nDuration=160\r\n";
        let req = request(&format!(
            "{HEAD}Content-Type: application/dtmf-relay\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(dtmf_from_info(&req), Some('5'));
    }

    #[test]
    fn plain_dtmf_info_and_other_bodies() {
        let req = request(&format!(
            "{HEAD}Content-Type: application/dtmf\r\nContent-Length: 1\r\n\r\n#"
        ));
        assert_eq!(dtmf_from_info(&req), Some('#'));
        let req = request(&format!(
            "{HEAD}Content-Type: text/plain\r\nContent-Length: 1\r\n\r\n5"
        ));
        assert_eq!(dtmf_from_info(&req), None);
    }

    #[test]
    fn hold_reinvite_is_answered_with_recvonly() {
        let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let text = format!(
            "INVITE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK2\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>;tag=2\r\nCall-ID: x\r\nCSeq: 3 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            offer.len()
        );
        let local = LocalMedia {
            ip: "127.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            port: 20000,
        };
        let (status, _, body, outcome) = session_update(&request(&text), &local, 1, 2);
        assert_eq!(status, StatusCode::OK);
        let body = String::from_utf8(body.unwrap_or_default()).unwrap_or_default();
        assert!(body.contains("a=recvonly"), "{body}");
        match outcome {
            InDialogOutcome::MediaUpdated(media) => assert!(media.on_hold),
            other => panic!("expected a media update, got {other:?}"),
        }
    }

    #[test]
    fn offer_without_g711_is_refused_with_488() {
        let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n";
        let text = format!(
            "UPDATE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK3\r\nFrom: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>;tag=2\r\nCall-ID: x\r\nCSeq: 4 UPDATE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
            offer.len()
        );
        let local = LocalMedia {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            port: 20000,
        };
        let (status, _, _, outcome) = session_update(&request(&text), &local, 1, 2);
        assert_eq!(status, StatusCode::NotAcceptableHere);
        assert_eq!(outcome, InDialogOutcome::Nothing);
    }
}
