//! API key allowlists: which client addresses may use a key. Pure.

use std::net::IpAddr;

use ipnet::IpNet;

/// A bad entry in an allowlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR block: {0:?}")]
pub struct BadCidr(pub String);

/// Parses one entry: a CIDR block (`10.0.0.0/8`, `2001:db8::/32`) or a
/// single address (taken as /32 or /128).
pub fn parse_entry(s: &str) -> Result<IpNet, BadCidr> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| BadCidr(s.to_owned()))
}

/// Parses a list of entries, failing on the first bad one.
pub fn parse_list<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, BadCidr> {
    entries.iter().map(|e| parse_entry(e.as_ref())).collect()
}

/// Whether `ip` may use a key with this allowlist. An empty list allows
/// every address. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a
/// dual-stack listener reports IPv4 clients) is checked as the IPv4
/// address it carries.
pub fn ip_allowed(list: &[IpNet], ip: IpAddr) -> bool {
    if list.is_empty() {
        return true;
    }
    let ip = ip.to_canonical();
    list.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_list_allows_all() {
        assert!(ip_allowed(&[], ip("203.0.113.9")));
        assert!(ip_allowed(&[], ip("2001:db8::1")));
    }

    #[test]
    fn ipv4_blocks_and_single_addresses() {
        let list = parse_list(&["10.0.0.0/8", "192.0.2.7"]).unwrap();
        assert!(ip_allowed(&list, ip("10.1.2.3")));
        assert!(ip_allowed(&list, ip("192.0.2.7")));
        assert!(!ip_allowed(&list, ip("192.0.2.8")));
        assert!(!ip_allowed(&list, ip("11.0.0.1")));
        assert!(!ip_allowed(&list, ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_blocks() {
        let list = parse_list(&["2001:db8::/32", "::1"]).unwrap();
        assert!(ip_allowed(&list, ip("2001:db8:ffff::1")));
        assert!(ip_allowed(&list, ip("::1")));
        assert!(!ip_allowed(&list, ip("2001:db9::1")));
        assert!(!ip_allowed(&list, ip("10.0.0.1")));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_checked_as_ipv4() {
        let list = parse_list(&["192.0.2.0/24"]).unwrap();
        assert!(ip_allowed(&list, ip("::ffff:192.0.2.1")));
        assert!(!ip_allowed(&list, ip("::ffff:198.51.100.1")));
    }

    #[test]
    fn host_bits_are_dropped() {
        assert_eq!(
            parse_entry("10.1.2.3/8").unwrap(),
            parse_entry("10.0.0.0/8").unwrap()
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in ["", "10.0.0.0/33", "example.org", "10.0.0", "::g"] {
            assert_eq!(parse_entry(bad), Err(BadCidr(bad.to_owned())), "{bad}");
        }
    }
}
