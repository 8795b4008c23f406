//! Building requests and responses that live outside any dialog: OPTIONS probes
//! and the error responses we send to malformed requests.

use std::net::SocketAddr;

use rsipstack::sip::{Header, Method, Request, Response, StatusCode};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::{make_tag, random_text};
use rsipstack::transport::SipAddr;

use crate::endpoint::SipEndpoint;
use crate::error::SipError;
use crate::Transport;

/// A client transaction for an out-of-dialog request to `target`.
pub(crate) fn out_of_dialog(
    endpoint: &SipEndpoint,
    method: Method,
    target: SocketAddr,
    transport: Transport,
) -> Result<Transaction, SipError> {
    let stack = &endpoint.inner.endpoint.inner;
    let sip_transport = transport.to_rsip();
    let local = SipAddr {
        r#type: Some(sip_transport),
        addr: endpoint.local_addr().into(),
    };
    let via = stack
        .get_via(Some(local), None)
        .map_err(|e| SipError::Stack(e.to_string()))?;
    let target_uri = uri_for(target, transport)?;
    let from_uri = rsipstack::sip::Uri::try_from(
        format!("sip:dialcast@{}", endpoint.local_addr()).as_str(),
    )
    .map_err(|e| SipError::Stack(e.to_string()))?;
    let from = rsipstack::sip::typed::From {
        display_name: None,
        uri: from_uri,
        params: vec![],
    }
    .with_tag(make_tag());
    let to = rsipstack::sip::typed::To {
        display_name: None,
        uri: target_uri.clone(),
        params: vec![],
    };
    let call_id = rsipstack::sip::headers::CallId::from(random_text(22));
    let request = stack.make_request(method, target_uri, via, from, to, 1, Some(call_id));
    let key = TransactionKey::from_request(&request, TransactionRole::Client)
        .map_err(|e| SipError::Stack(e.to_string()))?;
    let mut tx = Transaction::new_client(key, request, stack.clone(), None);
    tx.destination = Some(SipAddr {
        r#type: Some(sip_transport),
        addr: target.into(),
    });
    Ok(tx)
}

/// `sip:host:port` (with `;transport=tcp` for TCP) for a socket address.
pub(crate) fn uri_for(
    target: SocketAddr,
    transport: Transport,
) -> Result<rsipstack::sip::Uri, SipError> {
    let text = match transport {
        Transport::Udp => format!("sip:{target}"),
        Transport::Tcp => format!("sip:{target};transport=tcp"),
    };
    rsipstack::sip::Uri::try_from(text.as_str()).map_err(|e| SipError::Stack(e.to_string()))
}

/// The response we send to a request that failed validation, or `None` when the
/// request lacks what a response needs (Via, From, To, Call-ID, CSeq): such a
/// request cannot be answered and is dropped (RFC 3261 §8.2 and §18.2.1).
pub(crate) fn error_response(req: &Request, code: u16) -> Option<Response> {
    let mut headers = Vec::new();
    let mut needed = [false; 5];
    for header in req.headers.iter() {
        let slot = match header {
            Header::Via(_) => 0,
            Header::From(_) => 1,
            Header::To(_) => 2,
            Header::CallId(_) => 3,
            Header::CSeq(_) => 4,
            _ => continue,
        };
        needed[slot] = true;
        headers.push(header.clone());
    }
    if needed.iter().any(|present| !present) {
        return None;
    }
    headers.push(Header::ContentLength(0u32.into()));
    Some(Response {
        status_code: StatusCode::from(code),
        wire_reason: None,
        version: rsipstack::sip::Version::V2,
        headers: headers.into(),
        body: vec![],
    })
}
