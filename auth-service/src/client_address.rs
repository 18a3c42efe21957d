//! Who the client is, for rate limiting: the TCP peer, or — only when the peer is one of
//! our own reverse proxies (`server.trusted_proxies`) — the address that proxy recorded in
//! `Forwarded` (RFC 7239) or `X-Forwarded-For`.
//!
//! Any client can send those headers, so they are believed only as far as the chain of
//! trusted proxies goes: reading from the right (the entry the nearest proxy appended), the
//! first address that is not a trusted proxy is the client. Entries further left were
//! written by the client itself and are never used.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// Which header the trusted proxies write the client's address into
/// (`server.forwarded_header`). Only that one is read: a proxy passes any other header
/// through untouched, so every entry of it would be the client's own words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (what nginx's `$proxy_add_x_forwarded_for` and most proxies add).
    #[default]
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    #[serde(rename = "forwarded")]
    Forwarded,
}

/// Decides which address a request is counted under.
#[derive(Debug, Clone, Default)]
pub struct ClientAddresses {
    trusted: Vec<IpNet>,
    header: ForwardedHeader,
}

impl ClientAddresses {
    /// Believes `header` from peers inside `trusted` only.
    pub fn new(trusted: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { trusted, header }
    }

    /// The client's address bucket (see [`bucket`]) for `req`.
    pub fn of(&self, req: &HttpRequest) -> String {
        match req.peer_addr() {
            Some(peer) => bucket(self.client_ip(peer.ip(), req.headers())),
            None => "unknown".to_owned(),
        }
    }

    /// The client's address given the TCP peer and the request headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops = forwarded_for(headers, self.header);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                // A proxy we trust wrote something we cannot read: it is the last address
                // we can vouch for.
                None => return client,
                Some(ip) if self.is_trusted(*ip) => client = *ip,
                Some(ip) => return *ip,
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// The addresses the request's `header` lists, left (farthest) to right (nearest);
/// `None` for an entry that is not an address (`unknown`, obfuscated names).
fn forwarded_for(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let joined = |name: &str| -> Option<String> {
        let values: Vec<&str> = headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    };
    match header {
        ForwardedHeader::Forwarded => joined("forwarded")
            .map(|forwarded| {
                forwarded
                    .split(',')
                    .map(|element| {
                        element
                            .split(';')
                            .filter_map(|pair| pair.split_once('='))
                            .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                            .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ForwardedHeader::XForwardedFor => joined("x-forwarded-for")
            .map(|xff| {
                xff.split(',')
                    .map(|entry| parse_node(entry.trim()))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(inner, _)| inner.parse().ok())
        })
        .map(canonical)
}

/// IPv4-mapped IPv6 addresses as the IPv4 addresses they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The key an address is counted under: IPv4 addresses alone, IPv6 per /64, the block
/// one subscriber usually holds, so rotating through its addresses gains nothing.
pub fn bucket(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        IpAddr::V4(v4) => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn behind(trusted: &[&str]) -> ClientAddresses {
        behind_writing(trusted, ForwardedHeader::XForwardedFor)
    }

    fn behind_writing(trusted: &[&str], header: ForwardedHeader) -> ClientAddresses {
        ClientAddresses::new(trusted.iter().map(|n| n.parse().unwrap()).collect(), header)
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let addresses = behind(&["10.0.0.0/8"]);
        let spoofed = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        assert_eq!(
            addresses.client_ip(ip("192.0.2.1"), &spoofed),
            ip("192.0.2.1")
        );
        // Nothing trusted at all: the peer, whatever the headers say.
        assert_eq!(
            ClientAddresses::default().client_ip(ip("127.0.0.1"), &spoofed),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let addresses = behind(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client claims to be 1.1.1.1; our proxies recorded 203.0.113.9 and 10.0.0.5.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(
            addresses.client_ip(ip("127.0.0.1"), &chain),
            ip("203.0.113.9")
        );
        // Several header lines form one list, in order.
        let split = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            addresses.client_ip(ip("10.1.2.3"), &split),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_is_read_with_quotes_ports_and_ipv6() {
        let addresses = behind_writing(&["127.0.0.1/32"], ForwardedHeader::Forwarded);
        let forwarded = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https"#,
        )]);
        assert_eq!(
            addresses.client_ip(ip("127.0.0.1"), &forwarded),
            ip("2001:db8:cafe::17")
        );
        // Only the header the proxies write is read: the other is the client's own.
        let both = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            addresses.client_ip(ip("127.0.0.1"), &both),
            ip("192.0.2.60")
        );
        assert_eq!(
            behind(&["127.0.0.1/32"]).client_ip(ip("127.0.0.1"), &both),
            ip("198.51.100.1")
        );
        // A client-written Forwarded header through an X-Forwarded-For proxy changes
        // nothing.
        let spoofed = headers(&[
            ("forwarded", "for=203.0.113.77"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        assert_eq!(
            behind(&["127.0.0.1/32"]).client_ip(ip("127.0.0.1"), &spoofed),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn an_unreadable_entry_stops_at_the_last_trusted_hop() {
        let addresses = behind(&["127.0.0.1/32", "10.0.0.0/8"]);
        let obfuscated = headers(&[("x-forwarded-for", "unknown, 10.0.0.5")]);
        assert_eq!(
            addresses.client_ip(ip("127.0.0.1"), &obfuscated),
            ip("10.0.0.5")
        );
        // Only trusted hops: the farthest one.
        let internal = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.5")]);
        assert_eq!(
            addresses.client_ip(ip("127.0.0.1"), &internal),
            ip("10.0.0.7")
        );
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_and_ipv4_per_address() {
        let a = ip("2001:db8:1:2:aaaa::1");
        let b = ip("2001:db8:1:2:ffff::9");
        let c = ip("2001:db8:1:3::1");
        assert_eq!(bucket(a), "2001:db8:1:2::/64");
        assert_eq!(bucket(a), bucket(b));
        assert_ne!(bucket(a), bucket(c));
        assert_eq!(bucket(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(bucket(ip("192.0.2.7")), "192.0.2.7");
    }
}
