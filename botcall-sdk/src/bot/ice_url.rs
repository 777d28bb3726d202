//! ICE server URLs (`stun:`, `stuns:`, `turn:`, `turns:`; RFC 7064, 7065):
//! parsing, and picking the servers a call can use — `stun:` over UDP for a
//! server-reflexive candidate, `turn:` over UDP with credentials for a
//! relayed one.

use std::net::{SocketAddr, ToSocketAddrs};

use super::IceServerConfig;

/// TURN servers (distinct addresses) a call allocates on at most.
const MAX_TURN_SERVERS: usize = 2;

/// The parts of a `stun:`/`stuns:`/`turn:`/`turns:` URL (RFC 7064, 7065).
#[derive(Debug, Clone, PartialEq, Eq)]
struct IceUrl {
    scheme: &'static str,
    host: String,
    port: u16,
    /// The `transport` parameter, lowercased (`None`: not given).
    transport: Option<String>,
}

/// Parses an ICE server URL; `None` for another scheme or a malformed one.
fn parse_ice_url(url: &str) -> Option<IceUrl> {
    let (scheme, rest) = url.split_once(':')?;
    let (scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "stun" => ("stun", 3478),
        "stuns" => ("stuns", 5349),
        "turn" => ("turn", 3478),
        "turns" => ("turns", 5349),
        _ => return None,
    };
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (h, p.parse().ok()?),
            None if after.is_empty() => (h, default_port),
            None => return None,
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (hostport, default_port),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    let mut transport = None;
    for kv in query.unwrap_or("").split('&') {
        if let Some(t) = kv.strip_prefix("transport=") {
            transport = Some(t.to_ascii_lowercase());
        }
    }
    Some(IceUrl {
        scheme,
        host: host.to_string(),
        port,
        transport,
    })
}

/// The first address of `u`'s host in the wanted IP family. Names resolve
/// with the system resolver (briefly blocking; IP literals resolve at once).
fn resolve(u: &IceUrl, v6: bool) -> Option<SocketAddr> {
    (u.host.as_str(), u.port)
        .to_socket_addrs()
        .ok()?
        .find(|a| a.is_ipv6() == v6)
}

/// Resolves `stun:host:port` URLs (UDP only) of the right IP family.
pub(super) fn stun_servers(servers: &[IceServerConfig], v6: bool) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = servers
        .iter()
        .flat_map(|s| s.urls.iter())
        .filter_map(|u| parse_ice_url(u))
        .filter(|u| u.scheme == "stun")
        .filter_map(|u| resolve(&u, v6))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A TURN server the SDK can allocate on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TurnServer {
    pub(super) addr: SocketAddr,
    pub(super) username: String,
    pub(super) credential: String,
}

/// The usable `turn:` servers (UDP transport, with credentials) of the
/// right IP family; the others are skipped with a warning.
pub(super) fn turn_servers(servers: &[IceServerConfig], v6: bool) -> Vec<TurnServer> {
    let mut out: Vec<TurnServer> = Vec::new();
    for s in servers {
        for url in &s.urls {
            let Some(u) = parse_ice_url(url) else {
                if url.starts_with("turn") {
                    tracing::warn!(url = %url, "skipping a malformed TURN URL");
                }
                continue;
            };
            if u.scheme == "turns" || !matches!(u.transport.as_deref(), None | Some("udp")) {
                tracing::warn!(
                    url = %url,
                    "skipping a TURN server over TCP/TLS: the SDK's TURN client speaks UDP only"
                );
                continue;
            }
            if u.scheme != "turn" {
                continue;
            }
            let (Some(username), Some(credential)) = (&s.username, &s.credential) else {
                tracing::warn!(url = %url, "skipping a TURN server without username/credential");
                continue;
            };
            let Some(addr) = resolve(&u, v6) else {
                tracing::warn!(url = %url, "skipping a TURN server that does not resolve (for this IP family)");
                continue;
            };
            if out.iter().any(|t| t.addr == addr) {
                continue;
            }
            if out.len() == MAX_TURN_SERVERS {
                tracing::warn!(url = %url, "skipping a TURN server: {MAX_TURN_SERVERS} in use already");
                continue;
            }
            out.push(TurnServer {
                addr,
                username: username.clone(),
                credential: credential.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str, user: Option<&str>) -> IceServerConfig {
        IceServerConfig {
            urls: vec![url.to_string()],
            username: user.map(str::to_string),
            credential: user.map(|_| "cred".to_string()),
        }
    }

    #[test]
    fn parses_ice_urls() {
        let u = parse_ice_url("turn:127.0.0.1:3479?transport=udp").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.transport.as_deref()),
            ("turn", "127.0.0.1", 3479, Some("udp"))
        );
        let u = parse_ice_url("turn:turn.example.org").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("turn.example.org", 3478, None)
        );
        let u = parse_ice_url("turns:[2001:db8::1]?transport=TCP").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.transport.as_deref()),
            ("turns", "2001:db8::1", 5349, Some("tcp"))
        );
        let u = parse_ice_url("STUN:[::1]:19302").unwrap();
        assert_eq!((u.scheme, u.host.as_str(), u.port), ("stun", "::1", 19302));
        for bad in [
            "http://x",
            "turn:",
            "turn:h:port",
            "turn:[::1",
            "turn:[::1]x",
            "turn:user@host",
            "x",
        ] {
            assert_eq!(parse_ice_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn picks_usable_turn_servers() {
        let list = vec![
            server("stun:127.0.0.1:3478", None),
            server("turn:127.0.0.1:3478?transport=tcp", Some("u")),
            server("turns:127.0.0.1:5349", Some("u")),
            server("turn:127.0.0.1:3479", None),
            server("turn:127.0.0.1:3480?transport=udp", Some("u")),
            server("turn:127.0.0.1:3480", Some("u")),
            server("turn:[::1]:3481", Some("u")),
            server("turn:127.0.0.2:3482", Some("u")),
            server("turn:127.0.0.3:3483", Some("u")),
        ];
        let v4 = turn_servers(&list, false);
        assert_eq!(
            v4.iter().map(|t| t.addr.to_string()).collect::<Vec<_>>(),
            ["127.0.0.1:3480", "127.0.0.2:3482"]
        );
        assert_eq!(
            (v4[0].username.as_str(), v4[0].credential.as_str()),
            ("u", "cred")
        );
        let v6 = turn_servers(&list, true);
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].addr.to_string(), "[::1]:3481");
        assert_eq!(
            stun_servers(&list, false),
            ["127.0.0.1:3478".parse::<SocketAddr>().unwrap()]
        );
    }
}
