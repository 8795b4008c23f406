//! The response we send to a request that failed validation.

use rsipstack::sip::{Header, Request, Response, StatusCode};

use crate::validate::Malformed;

/// The response to a request that failed validation, or `None` when the
/// request lacks what a response needs (Via, From, To, Call-ID, CSeq): such a
/// request cannot be answered and is dropped (RFC 3261 §8.2 and §18.2.1).
pub(crate) fn error_response(req: &Request, code: u16, problem: &Malformed) -> Option<Response> {
    let mut headers = Vec::new();
    let mut present = [false; 5];
    for header in req.headers.iter() {
        let slot = match header {
            Header::Via(_) => 0,
            Header::From(_) => 1,
            Header::To(_) => 2,
            Header::CallId(_) => 3,
            Header::CSeq(_) => 4,
            _ => continue,
        };
        present[slot] = true;
        headers.push(header.clone());
    }
    if present.iter().any(|p| !p) {
        return None;
    }
    if code == 420 {
        // RFC 3261 §8.2.2.3: list what we do not support.
        if let Malformed::Extension { option } = problem {
            headers.push(Header::Unsupported(option.clone().into()));
        }
    }
    headers.push(Header::Warning(
        format!("399 dialcast \"{problem}\"").into(),
    ));
    headers.push(Header::ContentLength(0u32.into()));
    Some(Response {
        status_code: StatusCode::from(code),
        wire_reason: None,
        version: rsipstack::sip::Version::V2,
        headers: headers.into(),
        body: vec![],
    })
}
