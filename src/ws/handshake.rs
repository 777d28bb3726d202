//! The HTTP/1.1 → WebSocket upgrade (RFC 6455 §4.2) on the API's port.

use base64ct::{Base64, Encoding};
use sha1::{Digest, Sha1};

use crate::http::Response;
use crate::http::request::Request;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What the upgrade request told us that the `hello` will need.
#[derive(Debug, Default)]
pub(crate) struct PreHello {
    /// `Authorization: Bearer` on the upgrade (bots may authenticate here).
    pub(crate) bearer: Option<Box<str>>,
    /// Host name for ICE server URLs.
    pub(crate) host: Box<str>,
    /// The socket may say hello as a caller: no `Origin` (not a browser),
    /// or a page of an allowed origin (see [`origin_allowed`]).
    pub(crate) caller_ok: bool,
}

/// The origins whose pages may open caller sockets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnOrigin<'a> {
    /// The daemon's public host name (`public_host`), if configured.
    pub(crate) public_host: &'a str,
    /// `allowed_origins`: exact origins, or `*`.
    pub(crate) allowed: &'a [String],
}

/// `host[:port]` lower-cased, with the scheme's default port made explicit.
fn authority(a: &str, default_port: &str) -> String {
    let a = a.to_ascii_lowercase();
    let has_port = if a.starts_with('[') {
        a.contains("]:")
    } else {
        a.contains(':')
    };
    if has_port {
        a
    } else {
        format!("{a}:{default_port}")
    }
}

/// Whether a page at `origin` may use this daemon from a browser: its own
/// origin (the Origin's host and port are the request's `Host`, or its host
/// is `public_host`), or one in `allowed_origins` (`*`: any). Without an
/// `Origin` header the client is not a browser page, and nothing is
/// checked: another site cannot make a visitor's browser omit it.
pub(crate) fn origin_allowed(
    origin: Option<&str>,
    host: Option<&str>,
    own: &OwnOrigin<'_>,
) -> bool {
    let Some(origin) = origin.map(|o| o.trim().trim_end_matches('/')) else {
        return true;
    };
    if own
        .allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false; // `null` (sandboxed frames, file:) and the like
    };
    let port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    if rest.is_empty() || rest.contains(['/', '@']) {
        return false;
    }
    if host.is_some_and(|h| authority(h.trim(), port) == authority(rest, port)) {
        return true;
    }
    !own.public_host.is_empty() && host_name(rest).eq_ignore_ascii_case(own.public_host)
}

/// Whether this request asks for our WebSocket endpoint.
pub(crate) fn is_upgrade(req: &Request<'_>) -> bool {
    matches!(req.path, "/v1/ws" | "/ws")
        && req
            .header("upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
}

/// `Sec-WebSocket-Accept` for a client key.
pub(crate) fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID);
    Base64::encode_string(&h.finalize())
}

/// Host part (no port) of a Host header value; IPv6 literals keep their brackets.
pub(crate) fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map(|(h, _)| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// Validates the upgrade and builds the 101 answer. `fallback_host` (the
/// socket's local address: a `getsockname` call) is asked only when there
/// is neither a public host nor a `Host` header.
pub(crate) fn handshake(
    req: &Request<'_>,
    public_host: &str,
    fallback_host: impl FnOnce() -> String,
    own: &OwnOrigin<'_>,
) -> Result<(Response, PreHello), Response> {
    if req.method != "GET" {
        return Err(
            Response::error(405, "method_not_allowed", "WebSocket upgrade must be GET")
                .with_header("allow", "GET"),
        );
    }
    if !req.header_has_token("connection", "upgrade") || req.minor_version == 0 {
        return Err(Response::error(
            400,
            "bad_request",
            "Connection: Upgrade over HTTP/1.1 required",
        ));
    }
    if req.header("sec-websocket-version") != Some("13") {
        return Err(
            Response::error(426, "bad_request", "Sec-WebSocket-Version 13 required")
                .with_header("sec-websocket-version", "13"),
        );
    }
    let key = req.header("sec-websocket-key").unwrap_or("");
    let mut raw = [0u8; 18];
    if Base64::decode(key, &mut raw).map(|k| k.len()) != Ok(16) {
        return Err(Response::error(400, "bad_request", "bad Sec-WebSocket-Key"));
    }
    let host: Box<str> = if !public_host.is_empty() {
        public_host.into()
    } else {
        match req.header("host").map(host_name).filter(|h| !h.is_empty()) {
            Some(h) => h.into(),
            None => fallback_host().into(),
        }
    };
    let resp = Response {
        status: 101,
        content_type: "",
        body: crate::http::Body::Empty,
        headers: crate::http::Headers::new(),
        close: false,
        head_only: false,
    }
    .with_header("upgrade", "websocket")
    .with_header("connection", "Upgrade")
    .with_header("sec-websocket-accept", accept_key(key));
    Ok((
        resp,
        PreHello {
            bearer: req.bearer().map(Into::into),
            host,
            caller_ok: origin_allowed(req.header("origin"), req.header("host"), own),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn origins() {
        let none: [String; 0] = [];
        let own = OwnOrigin {
            public_host: "",
            allowed: &none,
        };
        let ok = |o: &str, h: &str| origin_allowed(Some(o), Some(h), &own);
        // Not a browser: nothing to check.
        assert!(origin_allowed(None, Some("h"), &own));
        // Same origin, default and explicit ports, case.
        assert!(ok("http://bots.example:8080", "bots.example:8080"));
        assert!(ok("https://Bots.Example", "bots.example"));
        assert!(ok("https://bots.example", "bots.example:443"));
        assert!(ok("http://[::1]:8080", "[::1]:8080"));
        assert!(ok("http://127.0.0.1:8080/", "127.0.0.1:8080"));
        // Other sites, ports, schemes, and opaque origins are not.
        assert!(!ok("https://evil.example", "bots.example"));
        assert!(!ok("http://bots.example:8081", "bots.example:8080"));
        assert!(!ok("https://bots.example", "bots.example:80"));
        assert!(!ok("null", "bots.example"));
        assert!(!ok("file://", "bots.example"));
        assert!(!ok("chrome-extension://abc", "abc"));
        assert!(!ok("https://bots.example@evil.example", "bots.example"));
        assert!(!origin_allowed(Some("https://bots.example"), None, &own));
        // public_host: behind a proxy that rewrites Host.
        let proxied = OwnOrigin {
            public_host: "bots.example",
            allowed: &none,
        };
        assert!(origin_allowed(
            Some("https://bots.example"),
            Some("10.0.0.2:8080"),
            &proxied
        ));
        // allowed_origins.
        let list = ["https://app.example".to_string()];
        let listed = OwnOrigin {
            public_host: "",
            allowed: &list,
        };
        assert!(origin_allowed(
            Some("https://app.example"),
            Some("h"),
            &listed
        ));
        assert!(!origin_allowed(
            Some("https://app2.example"),
            Some("h"),
            &listed
        ));
        let any = ["*".to_string()];
        let star = OwnOrigin {
            public_host: "",
            allowed: &any,
        };
        assert!(origin_allowed(
            Some("https://anything.example"),
            Some("h"),
            &star
        ));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("example.org:8080"), "example.org");
        assert_eq!(host_name("example.org"), "example.org");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("127.0.0.1:1"), "127.0.0.1");
    }

    #[test]
    fn validates_upgrade() {
        let ok = b"GET /v1/ws HTTP/1.1\r\nHost: h:1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer t.o.k\r\n\r\n";
        let r = Request::parse(ok, b"").unwrap();
        assert!(is_upgrade(&r));
        let own = OwnOrigin {
            public_host: "",
            allowed: &[],
        };
        let (resp, pre) = handshake(&r, "", || "x".into(), &own).unwrap();
        assert!(pre.caller_ok);
        assert_eq!(resp.status, 101);
        assert_eq!(&*pre.host, "h");
        assert_eq!(pre.bearer.as_deref(), Some("t.o.k"));
        let bad_key = b"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n\r\n";
        assert_eq!(
            handshake(
                &Request::parse(bad_key, b"").unwrap(),
                "",
                || "x".into(),
                &own
            )
            .unwrap_err()
            .status,
            400
        );
        let bad_ver = b"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(
            handshake(
                &Request::parse(bad_ver, b"").unwrap(),
                "",
                || "x".into(),
                &own
            )
            .unwrap_err()
            .status,
            426
        );
    }
}
