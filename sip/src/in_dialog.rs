//! What to answer to requests inside an established dialog, as pure functions:
//! re-INVITE and UPDATE (hold, unhold, new media address) get an SDP answer or
//! 488, INFO carries DTMF (application/dtmf-relay or application/dtmf), a
//! NOTIFY of our REFER the transfer's progress (message/sipfrag).
//! The core (`crate::core`) sends the answers and keeps the transactions.

use rsipstack::sip::Method;

use crate::sdp::{self, LocalMedia, NegotiatedMedia};

/// What an in-dialog request changed for the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Media(NegotiatedMedia),
    Dtmf(char),
    /// The status code a NOTIFY of our REFER reports (RFC 3515 §2.4.5).
    TransferStatus(u16),
    None,
}

/// The answer to a re-INVITE or UPDATE (RFC 3261 §14.2, RFC 3311): status code,
/// SDP body if any, and what changed.
pub fn session_update(
    method: Method,
    body: &[u8],
    local: &LocalMedia,
    session_id: u64,
    version: u64,
) -> (u16, Option<Vec<u8>>, Update) {
    let has_body = body.iter().any(|b| !b.is_ascii_whitespace());
    if !has_body {
        return if method == Method::Invite {
            // An offerless re-INVITE: our 200 carries the offer, the ACK the answer.
            let offer = sdp::build_offer(local, session_id, version);
            (200, Some(offer.into_bytes()), Update::None)
        } else {
            (200, None, Update::None)
        };
    }
    match sdp::answer_offer(body, local, session_id, version, false) {
        Ok((answer, media)) => (200, Some(answer.into_bytes()), Update::Media(media)),
        Err(e) => {
            tracing::debug!(error = %e, "session update refused");
            (488, None, Update::None)
        }
    }
}

/// The digit of an INFO with `application/dtmf-relay` (`Signal=5`) or
/// `application/dtmf` (`5`) body.
pub fn dtmf_from_body(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let content_type = content_type?;
    let body = std::str::from_utf8(body).ok()?;
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

/// The status code of a `message/sipfrag` body (`SIP/2.0 200 OK`), as
/// NOTIFYs of a REFER carry it.
pub fn sipfrag_status(content_type: Option<&str>, body: &[u8]) -> Option<u16> {
    if !content_type?.trim().starts_with("message/sipfrag") {
        return None;
    }
    let line = std::str::from_utf8(body).ok()?.lines().next()?;
    let mut words = line.split_whitespace();
    if words.next()? != "SIP/2.0" {
        return None;
    }
    let code: u16 = words.next()?.parse().ok()?;
    (100..700).contains(&code).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn local() -> LocalMedia {
        LocalMedia {
            ip: Ipv4Addr::LOCALHOST.into(),
            port: 20000,
            ssrc: None,
        }
    }

    #[test]
    fn dtmf_relay_and_plain_dtmf() {
        assert_eq!(
            dtmf_from_body(
                Some("application/dtmf-relay"),
                b"Signal=5\r\nDuration=160\r\n"
            ),
            Some('5')
        );
        assert_eq!(dtmf_from_body(Some("application/dtmf"), b"#"), Some('#'));
        assert_eq!(dtmf_from_body(Some("text/plain"), b"5"), None);
        assert_eq!(dtmf_from_body(None, b"5"), None);
    }

    #[test]
    fn hold_reinvite_is_answered_with_recvonly() {
        let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
        let (code, body, update) = session_update(Method::Invite, offer.as_bytes(), &local(), 1, 2);
        assert_eq!(code, 200);
        let body = String::from_utf8(body.unwrap_or_default()).unwrap_or_default();
        assert!(body.contains("a=recvonly"), "{body}");
        match update {
            Update::Media(media) => assert!(media.on_hold),
            other => panic!("expected a media update, got {other:?}"),
        }
    }

    #[test]
    fn offer_without_g711_is_refused_with_488() {
        let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\n";
        let (code, _, update) = session_update(Method::Update, offer.as_bytes(), &local(), 1, 2);
        assert_eq!(code, 488);
        assert_eq!(update, Update::None);
    }

    #[test]
    fn offerless_reinvite_gets_our_offer() {
        let (code, body, _) = session_update(Method::Invite, b"", &local(), 1, 2);
        assert_eq!(code, 200);
        assert!(body.is_some_and(|b| b.starts_with(b"v=0")));
        let (code, body, _) = session_update(Method::Update, b"", &local(), 1, 2);
        assert_eq!((code, body), (200, None));
    }

    #[test]
    fn sipfrag_status_lines() {
        let frag = Some("message/sipfrag;version=2.0");
        assert_eq!(sipfrag_status(frag, b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(frag, b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(frag, b"SIP/2.0 486 Busy Here"), Some(486));
        assert_eq!(sipfrag_status(frag, b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(frag, b"SIP/2.0 99 x"), None);
        assert_eq!(sipfrag_status(frag, &[0xff, 0xfe]), None);
        assert_eq!(sipfrag_status(Some("text/plain"), b"SIP/2.0 200 OK"), None);
        assert_eq!(sipfrag_status(None, b"SIP/2.0 200 OK"), None);
    }
}
