//! Where a campaign's calls go: the trunk's address, transport, caller ID and
//! credentials, resolved once per campaign rather than once per call.

use std::net::IpAddr;

use anyhow::Context as _;
use dialcast_sip::Transport;

use crate::single_call::advertised_ip;
use crate::store::TrunkSettings;

/// A trunk, ready to dial.
#[derive(Clone)]
pub struct TrunkTarget {
    /// The trunk's name in the configuration (a metrics label).
    pub name: String,
    /// `host[:port]` of the trunk URI.
    host: String,
    pub transport: Transport,
    pub caller_id: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The address our SDP offers for RTP.
    pub rtp_ip: IpAddr,
}

impl std::fmt::Debug for TrunkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("TrunkTarget")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("transport", &self.transport)
            .field("caller_id", &self.caller_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Credentials for digest authentication on a trunk.
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl TrunkTarget {
    /// Resolves the trunk's address (for the SDP's RTP address).
    pub async fn resolve(
        trunk: &TrunkSettings,
        credentials: Credentials,
        rtp_bind: IpAddr,
    ) -> anyhow::Result<TrunkTarget> {
        let transport: Transport = trunk
            .transport
            .parse()
            .map_err(|e: String| anyhow::anyhow!("trunk {}: {e}", trunk.name))?;
        let host = trunk_host(&trunk.uri)
            .with_context(|| format!("trunk {}: bad uri {:?}", trunk.name, trunk.uri))?;
        let uri = format!("sip:{host}")
            .as_str()
            .try_into()
            .map_err(|e| anyhow::anyhow!("trunk {}: bad uri {:?}: {e}", trunk.name, trunk.uri))?;
        let addr = dialcast_sip::resolve::destination(&uri, transport)
            .await
            .with_context(|| format!("trunk {}: cannot resolve {host}", trunk.name))?;
        Ok(TrunkTarget {
            name: trunk.name.clone(),
            host,
            transport,
            caller_id: trunk.caller_id.clone(),
            username: credentials.username,
            password: credentials.password,
            rtp_ip: advertised_ip(rtp_bind, addr),
        })
    }

    /// The Request-URI for a number, e.g. `sip:+31612345678@trunk:5060`.
    pub fn dial_uri(&self, number: &str) -> String {
        format!("sip:{number}@{}", self.host)
    }
}

/// `host[:port]` of `sip:[user@]host[:port][;params]`.
fn trunk_host(uri: &str) -> anyhow::Result<String> {
    let rest = uri
        .strip_prefix("sip:")
        .context("expected a sip: URI such as sip:trunk.example.net:5060")?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split(';').next().unwrap_or_default().trim();
    anyhow::ensure!(!host.is_empty(), "the URI has no host");
    Ok(host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_trunk_uris() {
        assert_eq!(
            trunk_host("sip:127.0.0.1:5090").ok().as_deref(),
            Some("127.0.0.1:5090")
        );
        assert_eq!(
            trunk_host("sip:user@trunk.example.net;transport=tcp")
                .ok()
                .as_deref(),
            Some("trunk.example.net")
        );
        assert!(trunk_host("http://x").is_err());
        assert!(trunk_host("sip:").is_err());
    }
}
