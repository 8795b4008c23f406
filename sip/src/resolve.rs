//! Where to send a request for a SIP URI: the host's address and port (5060 by
//! default). Names go through the system resolver; SRV/NAPTR lookups are not done
//! because trunks are configured by address or plain host name.

use std::net::SocketAddr;

use crate::error::SipError;
use crate::Transport;

/// The socket address for `uri`'s host and port.
pub async fn destination(
    uri: &rsipstack::sip::Uri,
    _transport: Transport,
) -> Result<SocketAddr, SipError> {
    let port = uri
        .host_with_port
        .port
        .as_ref()
        .map(|p| p.value())
        .unwrap_or(5060);
    let host = uri.host_with_port.host.to_string();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| SipError::Resolve {
            host: host.to_string(),
            reason: e.to_string(),
        })?;
    addrs.next().ok_or_else(|| SipError::Resolve {
        host: host.to_string(),
        reason: "no address".into(),
    })
}
