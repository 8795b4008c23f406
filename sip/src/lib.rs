//! Dialcast SIP: outbound (UAC) and inbound (UAS) calls on top of rsipstack, SDP
//! offer/answer for G.711 trunks, final status mapping, and trunk health.
//!
//! Knows nothing of campaigns, scripts or databases. The engine hands it a
//! [`uac::CallRequest`] with the local RTP address and gets [`uac::CallEvent`]s
//! back; media flows through the `media` crate, not through here.
//!
//! rsipstack (pinned in the workspace) supplies the message types, the parser
//! and the digest computation. Transactions, dialogs and transports are ours: a
//! sans-IO core (`core`) driven by one tokio task (`driver`); the core's module
//! documentation gives the measurements behind that choice.

mod core;
mod driver;
pub mod endpoint;
pub mod error;
pub mod framing;
pub mod in_dialog;
pub mod metrics;
mod request;
pub mod resolve;
pub mod sdp;
pub mod status;
pub mod trunk;
pub mod uac;
pub mod uas;
mod udp_port;
pub mod validate;
pub mod wire;

pub use endpoint::{InboundCalls, SipConfig, SipEndpoint};
pub use error::SipError;
/// SIP URIs, as parsed by rsipstack.
pub use rsipstack::sip::Uri;
pub use status::CallStatus;
pub use uac::{CallEnd, CallEvent, CallRequest, EndCause, OutboundCall};
pub use uas::{InboundCall, InboundEvent};

/// Methods we accept (the Allow header of our INVITEs and OPTIONS answers).
pub const ALLOWED_METHODS: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY";

/// SIP transport of a call or probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The transport name in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "udp" => Ok(Transport::Udp),
            "tcp" => Ok(Transport::Tcp),
            other => Err(format!("unknown transport {other:?}: expected udp or tcp")),
        }
    }
}
