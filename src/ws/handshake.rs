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

/// Validates the upgrade and builds the 101 answer.
pub(crate) fn handshake(
    req: &Request<'_>,
    public_host: &str,
    fallback_host: &str,
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
    let host = if !public_host.is_empty() {
        public_host
    } else {
        req.header("host")
            .map(host_name)
            .filter(|h| !h.is_empty())
            .unwrap_or(fallback_host)
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
            host: host.into(),
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
        let (resp, pre) = handshake(&r, "", "x").unwrap();
        assert_eq!(resp.status, 101);
        assert_eq!(&*pre.host, "h");
        assert_eq!(pre.bearer.as_deref(), Some("t.o.k"));
        let bad_key = b"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abc\r\n\r\n";
        assert_eq!(
            handshake(&Request::parse(bad_key, b"").unwrap(), "", "x")
                .unwrap_err()
                .status,
            400
        );
        let bad_ver = b"GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        assert_eq!(
            handshake(&Request::parse(bad_ver, b"").unwrap(), "", "x")
                .unwrap_err()
                .status,
            426
        );
    }
}
