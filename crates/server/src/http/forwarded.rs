//! Whose request is it: the TCP peer, or — only when that peer is one of
//! `security.trusted_proxies` — the client it names in `X-Forwarded-For` (SPEC §10).
//!
//! Behind nginx every connection comes from nginx's address; without this, per-IP limits
//! count every user as one and logs name the proxy. Honouring the header from anyone would let
//! any client pick its own address (and dodge every per-IP limit), so it is read only from
//! the configured proxies, and walked from the right: each trusted hop appends the address it
//! received from, so the rightmost address that is not a trusted proxy is the client. A
//! malformed entry stops the walk at the last address a trusted hop vouched for.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::config::parse_trusted_proxies;

/// The header a proxy names the client in.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// `security.trusted_proxies`, parsed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// Set on a request whose client address was taken from `X-Forwarded-For`: the TCP connection
/// is the proxy's, so its per-IP permit does not count this client and long-lived transports
/// take a permit of their own for the client's address.
#[derive(Debug, Clone, Copy)]
pub struct Proxied;

impl TrustedProxies {
    /// Parses CIDRs (`10.0.0.0/8`) and single addresses (`127.0.0.1`, `::1`); the error names
    /// the entry that is neither (configuration validation reports it with the key).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        Ok(Self {
            nets: parse_trusted_proxies(entries)?,
        })
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether any proxy is trusted (when none is, the header is never read).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The client's address: `peer` itself unless `peer` is trusted and the header names
    /// someone behind it.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_peer() {
        let t = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        let h = headers(&["203.0.113.7"]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        assert_eq!(t.client_ip(ip("192.0.2.1"), &h), ip("192.0.2.1"), "spoofed");
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
        let none = TrustedProxies::default();
        assert!(none.is_empty());
        assert_eq!(none.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).unwrap();
        // The client wrote a fake first entry; the trusted hops appended the real ones.
        let h = headers(&["6.6.6.6, 203.0.113.7", "10.1.2.3"]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        // A malformed entry stops the walk at the last vouched-for address.
        let h = headers(&["203.0.113.7, garbage, 10.1.2.3"]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("10.1.2.3"));
        let h = headers(&["[2001:db8::1]:443", "198.51.100.2:5555"]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.2"));
        assert_eq!(
            t.client_ip(ip("::ffff:127.0.0.1"), &headers(&["1.2.3.4"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn a_bad_entry_is_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/8".into(), "nginx".into()]).unwrap_err();
        assert!(e.contains("\"nginx\""), "{e}");
    }
}
