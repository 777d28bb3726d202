//! One RFC 8030 push request: `POST` the encrypted message to the
//! subscription's endpoint with `TTL`, `Urgency` and `Topic`, over rustls
//! (or plain TCP to loopback under the test-only flag), one connection per
//! message, every step under one deadline. The request text and the answer's
//! parsing are plain functions; [`send`] only moves bytes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_io::Timer;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use super::subs::Endpoint;

/// Largest response head we read; the body is never read.
const MAX_RESPONSE_HEAD: usize = 8192;

/// What one message asks of the push service.
#[derive(Debug, Clone)]
pub(crate) struct PushRequest<'a> {
    pub(crate) ttl: u64,
    /// `normal` or `high` (RFC 8030 §5.3).
    pub(crate) urgency: &'static str,
    /// Replaces an undelivered message with the same topic (≤ 32 base64url chars).
    pub(crate) topic: Option<&'a str>,
    /// `vapid t=…, k=…`.
    pub(crate) authorization: &'a str,
    pub(crate) body: &'a [u8],
}

/// The push service's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// `Retry-After` in seconds, when given as a number.
    pub(crate) retry_after: Option<u64>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendError {
    /// Name resolution or connection failed.
    Connect(String),
    /// The endpoint resolved to an address we do not post to (private,
    /// loopback): the push service must be on the public internet.
    Forbidden(IpAddr),
    /// The deadline passed.
    Timeout,
    /// TLS or I/O failed, or the answer was not HTTP.
    Io(String),
    /// This build has no TLS client (feature `push`).
    NoTls,
}

/// The request head and body.
pub(crate) fn request_bytes(ep: &Endpoint, req: &PushRequest<'_>) -> Vec<u8> {
    let host = if (ep.tls && ep.port == 443) || (!ep.tls && ep.port == 80) {
        bracketed(&ep.host)
    } else {
        format!("{}:{}", bracketed(&ep.host), ep.port)
    };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {host}\r\nttl: {}\r\nurgency: {}\r\n",
        ep.path, req.ttl, req.urgency
    );
    if let Some(t) = req.topic {
        head.push_str(&format!("topic: {t}\r\n"));
    }
    head.push_str(&format!(
        "authorization: {}\r\ncontent-encoding: aes128gcm\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        req.authorization,
        req.body.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(req.body);
    out
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Parses a response head: `Ok(None)` while incomplete.
pub(crate) fn parse_answer(buf: &[u8]) -> Result<Option<Answer>, SendError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let status = resp.code.unwrap_or(0);
            let retry_after = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            Ok(Some(Answer {
                status,
                retry_after,
            }))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(SendError::Io(format!("bad HTTP answer: {e}"))),
    }
}

/// Whether we may post to `ip` (public unicast) unless loopback is allowed.
pub(crate) fn allowed_address(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            if a.is_loopback() {
                return allow_loopback;
            }
            let o = a.octets();
            !(a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            if a.is_loopback() {
                return allow_loopback;
            }
            let s = a.segments();
            !(a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0xdb8)
        }
    }
}

/// Sends one push request, all within `timeout`.
pub(crate) async fn send(
    ep: &Endpoint,
    req: &PushRequest<'_>,
    timeout: Duration,
    allow_loopback: bool,
    tls: Option<&TlsClient>,
) -> Result<Answer, SendError> {
    let work = async {
        let tcp = connect(ep, allow_loopback).await?;
        let _ = tcp.get_ref().set_nodelay(true);
        let bytes = request_bytes(ep, req);
        if ep.tls {
            let Some(tls) = tls else {
                return Err(SendError::NoTls);
            };
            let stream = tls.connect(&ep.host, tcp).await?;
            exchange(stream, &bytes).await
        } else {
            exchange(tcp, &bytes).await
        }
    };
    let deadline = async {
        Timer::after(timeout).await;
        Err(SendError::Timeout)
    };
    work.or(deadline).await
}

/// Most addresses of one name tried in turn.
const MAX_ADDRS: usize = 4;

async fn resolve(ep: &Endpoint) -> Result<Vec<SocketAddr>, SendError> {
    if let Ok(ip) = ep.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, ep.port)]);
    }
    #[cfg(feature = "push")]
    {
        async_net::resolve((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| SendError::Connect(format!("{}: {e}", ep.host)))
    }
    #[cfg(not(feature = "push"))]
    Err(SendError::NoTls)
}

/// Connects to the first address of the endpoint's host that we may post
/// to and that answers (`localhost` is often ::1 first, then 127.0.0.1).
async fn connect(
    ep: &Endpoint,
    allow_loopback: bool,
) -> Result<async_io::Async<std::net::TcpStream>, SendError> {
    let addrs = resolve(ep).await?;
    let mut err = SendError::Connect(format!("{}: no address", ep.host));
    for addr in addrs.into_iter().take(MAX_ADDRS) {
        if !allowed_address(addr.ip(), allow_loopback) {
            err = SendError::Forbidden(addr.ip());
            continue;
        }
        match async_io::Async::<std::net::TcpStream>::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => err = SendError::Connect(format!("{addr}: {e}")),
        }
    }
    Err(err)
}

async fn exchange<S>(mut s: S, bytes: &[u8]) -> Result<Answer, SendError>
where
    S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin,
{
    let io = |e: std::io::Error| SendError::Io(e.to_string());
    s.write_all(bytes).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(SendError::Io("connection closed before an answer".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(a) = parse_answer(&buf)? {
            return Ok(a);
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err(SendError::Io("answer head too large".into()));
        }
    }
}

/// The rustls client, trusting the CAs of `push_ca_file` (the system's bundle
/// by default) through the cut-down provider of [`super::tls`].
#[cfg(feature = "push")]
#[derive(Clone)]
pub(crate) struct TlsClient(futures_rustls::TlsConnector);

#[cfg(not(feature = "push"))]
#[derive(Clone)]
pub(crate) struct TlsClient(());

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

impl TlsClient {
    /// A client trusting the PEM CA certificates in `ca_file` (Debian's
    /// `ca-certificates` bundle by default; a private CA in tests). Read
    /// once at start: an unreadable file, or one without a usable
    /// certificate, is an error naming the file.
    #[cfg(feature = "push")]
    pub(crate) fn new(ca_file: &std::path::Path) -> Result<Self, String> {
        use futures_rustls::rustls::ClientConfig;
        use std::sync::Arc;
        let roots = super::tls::roots(ca_file)?;
        let cfg = ClientConfig::builder_with_provider(Arc::new(super::tls::provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient(futures_rustls::TlsConnector::from(Arc::new(cfg))))
    }

    #[cfg(feature = "push")]
    async fn connect(
        &self,
        host: &str,
        tcp: async_io::Async<std::net::TcpStream>,
    ) -> Result<futures_rustls::client::TlsStream<async_io::Async<std::net::TcpStream>>, SendError>
    {
        use futures_rustls::rustls::pki_types::ServerName;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| SendError::Io(format!("{host}: {e}")))?;
        self.0
            .connect(name, tcp)
            .await
            .map_err(|e| SendError::Io(format!("TLS: {e}")))
    }

    #[cfg(not(feature = "push"))]
    async fn connect(
        &self,
        _host: &str,
        _tcp: async_io::Async<std::net::TcpStream>,
    ) -> Result<async_io::Async<std::net::TcpStream>, SendError> {
        Err(SendError::NoTls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_carries_rfc8030_headers() {
        let ep = Endpoint::parse("https://push.example:8443/p/1?a=b", false).unwrap();
        let req = PushRequest {
            ttl: 600,
            urgency: "high",
            topic: Some("online-echo_bot"),
            authorization: "vapid t=x, k=y",
            body: b"\x01\x02",
        };
        let bytes = request_bytes(&ep, &req);
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.starts_with("POST /p/1?a=b HTTP/1.1\r\nhost: push.example:8443\r\n"),
            "{text}"
        );
        for h in [
            "ttl: 600\r\n",
            "urgency: high\r\n",
            "topic: online-echo_bot\r\n",
            "authorization: vapid t=x, k=y\r\n",
            "content-encoding: aes128gcm\r\n",
            "content-length: 2\r\n",
        ] {
            assert!(text.contains(h), "{h}");
        }
        assert!(bytes.ends_with(b"\r\n\r\n\x01\x02"));
        // Default port: no port in Host.
        let ep = Endpoint::parse("https://push.example/p", false).unwrap();
        assert!(
            String::from_utf8_lossy(&request_bytes(&ep, &req)).contains("host: push.example\r\n")
        );
    }

    #[test]
    fn answers_and_retry_after() {
        assert_eq!(parse_answer(b"HTTP/1.1 201 Created\r\n"), Ok(None));
        assert_eq!(
            parse_answer(b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\n\r\n"),
            Ok(Some(Answer {
                status: 429,
                retry_after: Some(7)
            }))
        );
        assert_eq!(
            parse_answer(b"HTTP/1.1 503 x\r\nretry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n"),
            Ok(Some(Answer {
                status: 503,
                retry_after: None
            }))
        );
        assert!(parse_answer(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn only_public_addresses_unless_loopback_is_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            assert!(!allowed_address(ip.parse().unwrap(), false), "{ip}");
        }
        for ip in ["142.250.1.1", "2607:f8b0::1"] {
            assert!(allowed_address(ip.parse().unwrap(), false), "{ip}");
        }
        assert!(allowed_address("127.0.0.1".parse().unwrap(), true));
        assert!(!allowed_address("10.0.0.1".parse().unwrap(), true));
    }
}
