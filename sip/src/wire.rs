//! From bytes on the wire to something the core can use: parse (rsipstack's
//! parser, its panics contained), check (`crate::validate`), and reduce to
//! the fields the core matches on. Malformed requests get the RFC 3261
//! response to send back; everything else that cannot be used is dropped.

use crate::core::msg::Incoming;
use rsipstack::sip::{Method, SipMessage};

/// What became of one datagram or stream frame.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A usable message.
    Message(Box<Incoming>),
    /// A request that failed validation, with the error response to send.
    Rejected { response: Vec<u8>, problem: String },
    /// A request that failed validation and cannot be answered (an ACK, or one
    /// without the headers a response needs).
    DroppedRequest { problem: String },
    /// A response that failed validation.
    DroppedResponse { problem: String },
    /// Not a SIP message, or one the parser could not read.
    Unparseable,
    /// Only whitespace: a CRLF keep-alive (RFC 5626).
    KeepAlive,
}

/// Reads one message. Never panics, whatever the bytes.
pub fn read_message(bytes: &[u8]) -> ReadOutcome {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return ReadOutcome::KeepAlive;
    }
    if bytes.starts_with(b"SIP/2.0 ") {
        if let Some(response) = crate::core::fast::read_response(bytes) {
            return ReadOutcome::Message(Box::new(response));
        }
    }
    let parsed = match std::panic::catch_unwind(|| SipMessage::try_from(bytes)) {
        Ok(Ok(message)) => message,
        _ => return ReadOutcome::Unparseable,
    };
    let checked = crate::validate::check_start_line(bytes).and_then(|_| match &parsed {
        SipMessage::Request(req) => crate::validate::validate_request(req),
        SipMessage::Response(resp) => crate::validate::validate_response(resp),
    });
    if let Err(problem) = checked {
        return match &parsed {
            SipMessage::Request(req) if req.method != Method::Ack => {
                let code = crate::validate::response_status(&problem);
                match crate::request::error_response(req, code, &problem) {
                    Some(resp) => ReadOutcome::Rejected {
                        response: resp.to_string().into_bytes(),
                        problem: problem.to_string(),
                    },
                    None => ReadOutcome::DroppedRequest {
                        problem: problem.to_string(),
                    },
                }
            }
            SipMessage::Request(_) => ReadOutcome::DroppedRequest {
                problem: problem.to_string(),
            },
            SipMessage::Response(_) => ReadOutcome::DroppedResponse {
                problem: problem.to_string(),
            },
        };
    }
    match Incoming::from_message(parsed) {
        Ok(message) => ReadOutcome::Message(Box::new(message)),
        Err(_) => ReadOutcome::Unparseable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_and_garbage() {
        assert!(matches!(read_message(b"\r\n\r\n"), ReadOutcome::KeepAlive));
        assert!(matches!(read_message(b"hello"), ReadOutcome::Unparseable));
    }

    #[test]
    fn bad_version_is_answered_505() {
        let msg = b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        match read_message(msg) {
            ReadOutcome::Rejected { response, .. } => {
                assert!(
                    response.starts_with(b"SIP/2.0 505"),
                    "{}",
                    String::from_utf8_lossy(&response)
                );
            }
            ReadOutcome::Unparseable => {} // the parser may refuse the version itself
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_good_request_is_read() {
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        match read_message(msg) {
            ReadOutcome::Message(m) => assert_eq!(m.branch, "z9hG4bK1"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
