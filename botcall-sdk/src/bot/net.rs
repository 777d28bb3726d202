//! Sockets: the daemon URL, TCP connects with timeouts, a one-shot HTTP/1.1
//! client (`Connection: close`), and the presence WebSocket on the core's
//! [`crate::ws`] codec.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, future};

use super::BotError;
use crate::client::Rng;
use crate::ws::{self, Decoder, Frame, Opcode};

/// Largest HTTP response read (the JWKS and register answers are tiny).
const MAX_HTTP_RESPONSE: usize = 64 * 1024;

/// Where the daemon is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DaemonUrl {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path prefix without a trailing slash ("" for the root).
    pub(crate) base: String,
    /// Extra trusted CA certificates (PEM) for `https://`, beside the webpki roots.
    pub(crate) tls_ca: Option<PathBuf>,
}

impl DaemonUrl {
    /// Parses `http://host[:port][/prefix]` (`https://` with the `tls` feature).
    pub(crate) fn parse(url: &str) -> Result<Self, BotError> {
        let bad = |m: &str| BotError::Config(format!("daemon URL {url:?}: {m}"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(bad("must start with http:// or https://"));
        };
        if tls && !cfg!(feature = "tls") {
            return Err(bad("https:// needs the `tls` feature"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("junk after ]")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if tls => 443,
            None => 80,
        };
        let base = path.trim_end_matches('/').to_string();
        if base.contains(['?', '#', ' ']) {
            return Err(bad("no query or fragment allowed"));
        }
        Ok(DaemonUrl {
            tls,
            host,
            port,
            base,
            tls_ca: None,
        })
    }

    /// The `Host` header value.
    pub(crate) fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if (self.tls && self.port == 443) || (!self.tls && self.port == 80) {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }

    pub(crate) fn path(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }
}

/// Runs `f`, or fails with `Timeout(what)` after `d`.
pub(crate) async fn timeout<T>(
    d: Duration,
    what: &'static str,
    f: impl Future<Output = Result<T, BotError>>,
) -> Result<T, BotError> {
    future::or(f, async {
        Timer::after(d).await;
        Err(BotError::Timeout(what))
    })
    .await
}

/// A TCP (or TLS) stream to the daemon.
pub(crate) enum Stream {
    Tcp(Async<TcpStream>),
    #[cfg(feature = "tls")]
    Tls(Box<super::tls::TlsStream>),
}

impl Stream {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.get_ref().local_addr(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.get_ref().0.get_ref().local_addr(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_close(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

/// Opens a TCP connection (and TLS for `https`) to the daemon.
pub(crate) async fn connect(url: &DaemonUrl) -> Result<Stream, BotError> {
    // Name resolution blocks this thread briefly; IP literals resolve at once.
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| BotError::io(&format!("resolving {}", url.host), &e))?
        .collect();
    let mut last = None;
    for a in addrs {
        match Async::<TcpStream>::connect(a).await {
            Ok(s) => {
                let _ = s.get_ref().set_nodelay(true);
                #[cfg(feature = "tls")]
                if url.tls {
                    return super::tls::wrap(s, &url.host, url.tls_ca.as_deref())
                        .await
                        .map(Stream::Tls);
                }
                return Ok(Stream::Tcp(s));
            }
            Err(e) => last = Some(BotError::io(&format!("connecting to {a}"), &e)),
        }
    }
    Err(last.unwrap_or_else(|| BotError::Config(format!("{} resolves to nothing", url.host))))
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    /// `Retry-After` as delta-seconds (an HTTP-date is ignored).
    pub(crate) retry_after: Option<u32>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    /// `Ok(body)` for 2xx, else the daemon's error as [`BotError::Http`].
    pub(crate) fn ok_body(self) -> Result<String, BotError> {
        let text = String::from_utf8_lossy(&self.body).into_owned();
        if (200..300).contains(&self.status) {
            return Ok(text);
        }
        let (code, message) = match botcall_core::json::parse_object(&text) {
            Ok(o) => (
                o.opt_str("code")
                    .ok()
                    .flatten()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                o.opt_str("error")
                    .ok()
                    .flatten()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            ),
            Err(_) => (String::new(), text.chars().take(200).collect()),
        };
        Err(BotError::Http {
            status: self.status,
            code,
            message,
            retry_after: self.retry_after,
        })
    }
}

/// One request on a fresh connection.
pub(crate) async fn http(
    url: &DaemonUrl,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> Result<HttpResponse, BotError> {
    let mut s = connect(url).await?;
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: botcall-sdk/{}\r\n",
        url.path(path),
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(t) = bearer {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| BotError::io("sending HTTP request", &e))?;
    s.flush()
        .await
        .map_err(|e| BotError::io("sending HTTP request", &e))?;
    let mut raw = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| BotError::io("reading HTTP response", &e))?;
        if n == 0 {
            break;
        }
        if raw.len() + n > MAX_HTTP_RESPONSE {
            return Err(BotError::Io {
                kind: io::ErrorKind::InvalidData,
                message: "HTTP response too large".into(),
            });
        }
        raw.extend_from_slice(&chunk[..n]);
        if let Some(r) = parse_response(&raw, false)? {
            return Ok(r);
        }
    }
    parse_response(&raw, true)?.ok_or_else(|| BotError::Io {
        kind: io::ErrorKind::UnexpectedEof,
        message: "connection closed before a whole HTTP response".into(),
    })
}

/// A complete response in `raw`, `None` if more is needed. At `eof` a
/// response without `Content-Length` ends with the data.
fn parse_response(raw: &[u8], eof: bool) -> Result<Option<HttpResponse>, BotError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let head = match r.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            return Err(BotError::Io {
                kind: io::ErrorKind::InvalidData,
                message: format!("malformed HTTP response: {e}"),
            });
        }
    };
    let status = r.code.unwrap_or(0);
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let len = header("content-length").and_then(|v| v.parse::<usize>().ok());
    let retry_after = header("retry-after").and_then(|v| v.parse::<u32>().ok());
    let body = &raw[head..];
    match len {
        Some(n) if body.len() >= n => Ok(Some(HttpResponse {
            status,
            retry_after,
            body: body[..n].to_vec(),
        })),
        Some(_) => Ok(None),
        // No length: the body runs to the end of the connection.
        None if eof => Ok(Some(HttpResponse {
            status,
            retry_after,
            body: body.to_vec(),
        })),
        None => Ok(None),
    }
}

/// One message from the daemon's socket.
#[derive(Debug)]
pub(crate) enum WsIn {
    Text(String),
    Ping(Vec<u8>),
    Other,
    Close(Option<u16>),
}

/// The presence WebSocket.
pub(crate) struct WsConn {
    stream: Stream,
    dec: Box<Decoder>,
    out: Vec<u8>,
    rng: Rng,
    pub(crate) local: SocketAddr,
}

impl WsConn {
    /// Connects and upgrades `url` + `/v1/ws`.
    pub(crate) async fn connect(url: &DaemonUrl, rng: &mut Rng) -> Result<Self, BotError> {
        let mut stream = connect(url).await?;
        let local = stream
            .local_addr()
            .map_err(|e| BotError::io("local address", &e))?;
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        key[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let mut req = vec![0u8; 1024];
        let req = ws::write_request(
            &url.host_header(),
            &url.path("/v1/ws"),
            &key,
            None,
            &mut req,
        )?;
        stream
            .write_all(req)
            .await
            .map_err(|e| BotError::io("WebSocket upgrade", &e))?;
        let mut head = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        let (n, used) = loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| BotError::io("WebSocket upgrade", &e))?;
            if n == 0 {
                return Err(BotError::Io {
                    kind: io::ErrorKind::UnexpectedEof,
                    message: "connection closed during the WebSocket upgrade".into(),
                });
            }
            head.extend_from_slice(&chunk[..n]);
            if let Some(used) = ws::check_response(&head, &key)? {
                break (head.len(), used);
            }
        };
        let mut dec = Box::new(Decoder::new());
        dec.push(&head[used..n])?;
        Ok(WsConn {
            stream,
            dec,
            out: Vec::with_capacity(256),
            rng: rng.clone(),
            local,
        })
    }

    async fn send(&mut self, op: Opcode, payload: &[u8]) -> Result<(), BotError> {
        let mask = (self.rng.next_u64() as u32).to_le_bytes();
        self.out.resize(payload.len() + ws::MAX_HEADER, 0);
        let n = ws::encode_frame(op, payload, mask, &mut self.out)?.len();
        self.stream
            .write_all(&self.out[..n])
            .await
            .map_err(|e| BotError::io("WebSocket write", &e))?;
        self.stream
            .flush()
            .await
            .map_err(|e| BotError::io("WebSocket write", &e))?;
        if self.out.capacity() > 4096 {
            self.out = Vec::with_capacity(256);
        }
        Ok(())
    }

    pub(crate) async fn send_text(&mut self, text: &str) -> Result<(), BotError> {
        self.send(Opcode::Text, text.as_bytes()).await
    }

    pub(crate) async fn send_pong(&mut self, payload: &[u8]) -> Result<(), BotError> {
        self.send(Opcode::Pong, payload).await
    }

    /// Sends a close frame (bounded wait) and drops the connection.
    pub(crate) async fn close(mut self, code: u16) {
        let mut p = [0u8; 125];
        let payload = ws::close_payload(code, "", &mut p).to_vec();
        let _ = future::or(
            async {
                let _ = self.send(Opcode::Close, &payload).await;
            },
            async {
                Timer::after(Duration::from_millis(500)).await;
            },
        )
        .await;
    }

    /// The next message. Cancel-safe: bytes are only taken off the socket
    /// into the decoder, which keeps them across calls.
    pub(crate) async fn recv(&mut self) -> Result<WsIn, BotError> {
        loop {
            if let Some(f) = self.dec.next_frame()? {
                return Ok(match f {
                    Frame::Text(t) => WsIn::Text(t.to_string()),
                    Frame::Ping(p) => WsIn::Ping(p.to_vec()),
                    Frame::Pong => WsIn::Other,
                    Frame::Close(c) => WsIn::Close(c),
                });
            }
            let n = self
                .stream
                .read(self.dec.read_buf())
                .await
                .map_err(|e| BotError::io("WebSocket read", &e))?;
            if n == 0 {
                return Ok(WsIn::Close(None));
            }
            self.dec.filled(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_daemon_urls() {
        let u = DaemonUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base.as_str(), u.tls),
            ("127.0.0.1", 8080, "", false)
        );
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        assert_eq!(u.path("/v1/ws"), "/v1/ws");
        let u = DaemonUrl::parse("http://example.org/botcall/").unwrap();
        assert_eq!((u.port, u.base.as_str()), (80, "/botcall"));
        assert_eq!(u.host_header(), "example.org");
        assert_eq!(u.path("/register"), "/botcall/register");
        let u = DaemonUrl::parse("http://[::1]:9000").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.host_header(), "[::1]:9000");
        for bad in [
            "ftp://x",
            "http://",
            "http://h:x",
            "http://h/?q",
            "127.0.0.1:8080",
        ] {
            assert!(DaemonUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_http_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false)
            .unwrap()
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", true)
                .unwrap()
                .is_none()
        );
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\n", false)
                .unwrap()
                .is_none()
        );
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
        let r = parse_response(b"HTTP/1.1 200 OK\r\n\r\nrest", true)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, b"rest");
        let e = HttpResponse {
            status: 401,
            retry_after: None,
            body: br#"{"error":"token has expired","code":"unauthorized","reason":"expired"}"#
                .to_vec(),
        }
        .ok_body();
        assert_eq!(
            e,
            Err(BotError::Http {
                status: 401,
                code: "unauthorized".into(),
                message: "token has expired".into(),
                retry_after: None,
            })
        );
        // Retry-After (delta-seconds) travels with the error; a date is ignored.
        let raw =
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 2\r\n\r\n{}";
        let r = parse_response(raw, false).unwrap().unwrap();
        assert_eq!(r.retry_after, Some(7));
        assert!(matches!(
            r.ok_body(),
            Err(BotError::Http {
                status: 429,
                retry_after: Some(7),
                ..
            })
        ));
        let raw = b"HTTP/1.1 503 x\r\nRetry-After: Wed, 21 Oct 2026 07:28:00 GMT\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            parse_response(raw, false).unwrap().unwrap().retry_after,
            None
        );
    }
}
