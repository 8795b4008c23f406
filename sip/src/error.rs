//! Errors of the `sip` crate's API (not SIP responses: those are outcomes).

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("bad target URI {target:?}: {reason}")]
    BadTarget { target: String, reason: String },
    #[error("bad caller ID {caller_id:?}: {reason}")]
    BadCallerId { caller_id: String, reason: String },
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("inbound call has no usable SDP offer: {0}")]
    Offer(#[from] crate::sdp::SdpError),
    #[error("the SIP endpoint has stopped")]
    Stopped,
    #[error("the SIP endpoint is overloaded: its command queue is full")]
    Busy,
}
