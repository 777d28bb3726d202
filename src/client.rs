//! Who a client is, for per-client limits: its IP address, with IPv6 grouped
//! by prefix (one subscriber usually holds a whole /64, so counting single
//! addresses would give an attacker 2⁶⁴ identities), the X-Forwarded-For walk
//! behind trusted proxies, and the table of open connections per client.
//! Pure: no sockets, no clock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// A client for per-IP limits: an IPv4 address, or an IPv6 address cut to
/// the configured prefix. IPv4-mapped IPv6 addresses count as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of `ip` with IPv6 addresses grouped by `/v6_prefix` (1–128).
    pub(crate) fn new(ip: IpAddr, v6_prefix: u8) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(a) => ClientKey(IpAddr::V4(a)),
            IpAddr::V6(a) => {
                let bits = u32::from(v6_prefix.clamp(1, 128));
                let mask = u128::MAX << (128 - bits);
                ClientKey(IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)))
            }
        }
    }

    /// The address (for IPv6, the first of its prefix).
    #[cfg(test)]
    pub(crate) fn ip(&self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One `X-Forwarded-For` entry: `a.b.c.d`, `a.b.c.d:port`, `v6`, `[v6]` or
/// `[v6]:port` (proxies write all of these).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = e.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    let (host, port) = e.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// The client behind `peer`. Only a trusted proxy's `X-Forwarded-For` is
/// believed: the header's lines are joined in order and walked from the
/// right, past trusted proxies; the first other address is the client. An
/// entry that does not parse ends the walk, and the request counts as the
/// nearest trusted hop's — a client cannot escape its proxy's limits by
/// writing garbage, nor hide behind a spoofed entry on the left.
pub(crate) fn forwarded_client<'a>(
    peer: IpAddr,
    xff_lines: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| {
        trusted
            .iter()
            .any(|t| t.to_canonical() == ip.to_canonical())
    };
    if !is_trusted(&peer) {
        return peer;
    }
    let mut nearest = peer;
    for entry in xff_lines.rev().flat_map(|l| l.rsplit(',')) {
        match parse_forwarded(entry) {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// Open connections per client, for `max_connections_per_ip`. Entries exist
/// only while their count is above zero, so the table never holds more
/// entries than there are open connections.
#[derive(Debug)]
pub(crate) struct ConnCounts {
    open: HashMap<ClientKey, u32>,
    max: u32,
}

impl ConnCounts {
    pub(crate) fn new(max_per_client: usize) -> Self {
        ConnCounts {
            open: HashMap::new(),
            max: u32::try_from(max_per_client).unwrap_or(u32::MAX),
        }
    }

    /// Counts one more connection for `key`; `false` (and nothing counted)
    /// when it already has the maximum.
    pub(crate) fn acquire(&mut self, key: ClientKey) -> bool {
        let n = self.open.entry(key).or_insert(0);
        if *n >= self.max {
            if *n == 0 {
                self.open.remove(&key);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// Un-counts one connection of `key`.
    pub(crate) fn release(&mut self, key: ClientKey) {
        if let Some(n) = self.open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&key);
            }
        }
    }

    /// Clients with at least one open connection.
    #[cfg(test)]
    pub(crate) fn clients(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_grouped_by_prefix_and_mapped_v4_is_v4() {
        let a = ClientKey::new(ip("2001:db8:1:2:aaaa::1"), 64);
        let b = ClientKey::new(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 64);
        let c = ClientKey::new(ip("2001:db8:1:3::1"), 64);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.ip(), ip("2001:db8:1:2::"));
        assert_eq!(
            ClientKey::new(ip("2001:db8:1:3::1"), 48),
            ClientKey::new(ip("2001:db8:1:2::1"), 48)
        );
        assert_eq!(
            ClientKey::new(ip("::ffff:192.0.2.7"), 64),
            ClientKey::new(ip("192.0.2.7"), 64)
        );
        assert_ne!(
            ClientKey::new(ip("192.0.2.7"), 64),
            ClientKey::new(ip("192.0.2.8"), 64)
        );
        // /128: every address its own client; /1 clamps sanely.
        assert_ne!(
            ClientKey::new(ip("2001:db8::1"), 128),
            ClientKey::new(ip("2001:db8::2"), 128)
        );
        assert_eq!(ClientKey::new(ip("2001:db8::1"), 0).ip(), ip("::"));
    }

    #[test]
    fn forwarded_for_is_walked_from_the_right_over_all_lines() {
        let proxy = ip("10.0.0.1");
        let inner = ip("10.0.0.2");
        let trusted = [proxy, inner];
        let walk = |lines: &[&str]| forwarded_client(proxy, lines.iter().copied(), &trusted);
        // Not from a trusted proxy: the header is ignored.
        assert_eq!(
            forwarded_client(ip("198.51.100.9"), ["1.1.1.1"].into_iter(), &trusted),
            ip("198.51.100.9")
        );
        assert_eq!(walk(&["203.0.113.5"]), ip("203.0.113.5"));
        // A spoofed entry on the left of the real one does not win.
        assert_eq!(walk(&["6.6.6.6, 203.0.113.5"]), ip("203.0.113.5"));
        // Lines are joined in order: the last line's last entry is nearest.
        assert_eq!(
            walk(&["6.6.6.6", "203.0.113.5, 10.0.0.2"]),
            ip("203.0.113.5")
        );
        assert_eq!(walk(&["203.0.113.5", "10.0.0.2"]), ip("203.0.113.5"));
        // Ports and brackets parse.
        assert_eq!(walk(&["6.6.6.6, 203.0.113.5:4711"]), ip("203.0.113.5"));
        assert_eq!(walk(&["[2001:db8::7]:443"]), ip("2001:db8::7"));
        assert_eq!(walk(&["[2001:db8::7]"]), ip("2001:db8::7"));
        assert_eq!(walk(&["2001:db8::7"]), ip("2001:db8::7"));
        // Garbage ends the walk at the nearest trusted hop: a spoofed address
        // beside it cannot pass.
        for garbage in [
            "unknown",
            "",
            "1.2.3.4:x",
            "[::1",
            "[::1]x",
            "1.2.3.4:123456",
        ] {
            assert_eq!(walk(&[&format!("6.6.6.6, {garbage}")]), proxy, "{garbage}");
            assert_eq!(
                walk(&[&format!("6.6.6.6, {garbage}, 10.0.0.2")]),
                inner,
                "{garbage}"
            );
        }
        // Only proxies in the header: the last one seen.
        assert_eq!(walk(&["10.0.0.2"]), inner);
        assert_eq!(walk(&[]), proxy);
    }

    #[test]
    fn connection_counts_are_bounded_and_forget_idle_clients() {
        let mut c = ConnCounts::new(2);
        let a = ClientKey::new(ip("192.0.2.1"), 64);
        let b = ClientKey::new(ip("192.0.2.2"), 64);
        assert!(c.acquire(a) && c.acquire(a));
        assert!(!c.acquire(a));
        assert!(c.acquire(b));
        c.release(a);
        assert!(c.acquire(a));
        for _ in 0..3 {
            c.release(a);
        }
        c.release(b);
        assert_eq!(c.clients(), 0);
        let mut none = ConnCounts::new(0);
        assert!(!none.acquire(a));
        assert_eq!(none.clients(), 0);
    }
}
