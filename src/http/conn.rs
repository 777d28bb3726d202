//! One HTTP/1.1 connection: read, parse, route, write; keep-alive and
//! pipelining (answers go out in order, batched while more requests are
//! already buffered); header, idle and write timeouts; hand-off to the
//! WebSocket layer on upgrade.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use super::request::{self, Chunked, Framing, HttpError};
use super::{Response, routes};
use crate::app::{App, ConnGuard};
use crate::budget::Held;
use crate::client::ClientKey;
use crate::net::Stream;

/// Read granularity.
const CHUNK: usize = 4096;
/// Flush pipelined answers once this much is waiting.
const FLUSH_AT: usize = 64 * 1024;
/// After our last answer on a connection, how long and how much of what
/// the client still sends is read and dropped (see [`finish`]).
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;

enum Wait {
    Data(usize),
    Closed,
    Timeout,
    Shutdown,
}

async fn read_some(
    app: &App,
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    idle: bool,
) -> Wait {
    let mut chunk = [0u8; CHUNK];
    let read = async {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => Wait::Closed,
            Ok(n) => Wait::Data(n),
        }
    };
    let timer = async {
        async_io::Timer::at(deadline).await;
        Wait::Timeout
    };
    let r = if idle {
        let stop = async {
            app.shutdown.wait().await;
            Wait::Shutdown
        };
        read.or(timer).or(stop).await
    } else {
        read.or(timer).await
    };
    if let Wait::Data(n) = r {
        buf.extend_from_slice(&chunk[..n]);
    }
    r
}

async fn flush(app: &App, stream: &mut Stream, out: &mut Vec<u8>) -> bool {
    if out.is_empty() {
        return true;
    }
    let deadline = Instant::now() + Duration::from_secs(app.cfg.header_timeout);
    let write = async { stream.write_all(out).await.is_ok() };
    let timer = async {
        async_io::Timer::at(deadline).await;
        false
    };
    let ok = write.or(timer).await;
    out.clear();
    if out.capacity() > FLUSH_AT * 2 {
        *out = Vec::new();
    }
    ok
}

/// Sends the last answer and ends the connection without a reset: closing a
/// socket with unread request bytes (a refused body, pipelined requests after
/// `Connection: close`) makes the kernel send RST, which can destroy the
/// answer before the client reads it or fail the client's write. So: flush,
/// shut our side down (FIN), then read and drop whatever still arrives until
/// the client closes, for at most [`LINGER`] and [`LINGER_BYTES`] — the same
/// remedy as Go's net/http and Apache's lingering close.
async fn finish(app: &App, stream: &mut Stream, out: &mut Vec<u8>) {
    if !flush(app, stream, out).await {
        return;
    }
    if stream.shutdown_write().await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; CHUNK];
    let mut left = LINGER_BYTES;
    loop {
        let read = async {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(n),
            }
        };
        let timer = async {
            async_io::Timer::at(deadline).await;
            None
        };
        match read.or(timer).await {
            Some(n) if n < left => left -= n,
            _ => return,
        }
    }
}

fn error_response(app: &App, e: HttpError, peer: SocketAddr) -> Response {
    app.metrics.http_requests.inc(("invalid", e.status()));
    crate::log_debug!("http {peer}: {} ({})", e.message(), e.status());
    Response::error(e.status(), e.code(), e.message()).closing()
}

/// A WebSocket upgrade from `client`: it spends a token of the per-IP rate
/// (an upgrade can lead to a signature check), and behind a trusted proxy
/// this is where the client's connection is counted.
fn admit_upgrade(app: &App, guard: &mut ConnGuard, client: ClientKey) -> Result<(), Response> {
    if let Err(retry) = app
        .auth
        .ip_limiter
        .borrow_mut()
        .check(&client, app.clock.mono_ms())
    {
        app.metrics.rate_limited.inc("ws_upgrade");
        app.metrics.http_requests.inc(("ws", 429));
        return Err(routes::rate_limited(retry).closing());
    }
    if !guard.claim(client) {
        app.metrics.connections_refused.inc("per_ip");
        app.metrics.http_requests.inc(("ws", 429));
        return Err(Response::error(
            429,
            "too_many_connections",
            "too many connections from your address, close some first",
        )
        .with_header("retry-after", "5")
        .closing());
    }
    Ok(())
}

/// Serves one accepted connection until it closes.
pub(crate) async fn serve(
    app: Rc<App>,
    mut stream: Stream,
    peer: SocketAddr,
    mut guard: ConnGuard,
) {
    // What `buf` and `out` take from the buffer budget.
    let mut held = Held::new(&app.budget);
    let mut buf: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut continue_sent = false;
    let mut request_started: Option<Instant> = None;
    loop {
        // Answer every complete request already buffered (one parse of the head).
        let chunked_body: Vec<u8>;
        let parsed =
            match request::parse_request(&buf, app.cfg.max_head_bytes, app.cfg.max_body_bytes) {
                Err(e) => {
                    error_response(&app, e, peer).write_to(&mut out, &app.date());
                    finish(&app, &mut stream, &mut out).await;
                    return;
                }
                Ok(p) => p,
            };
        let ready = match parsed {
            None => None,
            Some((info, mut req)) => match info.framing {
                Framing::None => Some((req, info.head_len)),
                Framing::Length(n) if buf.len() >= info.head_len + n => {
                    req.body = &buf[request::body_range(&info)];
                    Some((req, info.head_len + n))
                }
                Framing::Length(_) => None,
                Framing::Chunked => {
                    match request::decode_chunked(&buf[info.head_len..], app.cfg.max_body_bytes) {
                        Err(e) => {
                            error_response(&app, e, peer).write_to(&mut out, &app.date());
                            finish(&app, &mut stream, &mut out).await;
                            return;
                        }
                        Ok(Chunked::Partial) => None,
                        Ok(Chunked::Done { body, consumed }) => {
                            chunked_body = body;
                            req.body = &chunked_body;
                            Some((req, info.head_len + consumed))
                        }
                    }
                }
            },
        };
        if let Some((req, end)) = ready {
            request_started = None;
            continue_sent = false;
            if crate::ws::is_upgrade(&req) {
                if !flush(&app, &mut stream, &mut out).await {
                    return;
                }
                let client =
                    ClientKey::new(routes::client_ip(&app, &req, peer), app.cfg.ipv6_prefix);
                if let Err(resp) = admit_upgrade(&app, &mut guard, client) {
                    resp.write_to(&mut out, &app.date());
                    finish(&app, &mut stream, &mut out).await;
                    return;
                }
                let fallback = || {
                    stream
                        .local_addr()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default()
                };
                let own = crate::ws::handshake::OwnOrigin {
                    public_host: &app.cfg.public_host,
                    allowed: &app.cfg.allowed_origins,
                };
                match crate::ws::handshake(&req, &app.cfg.public_host, fallback, &own) {
                    Ok((resp, hello)) => {
                        resp.write_to(&mut out, &app.date());
                        if !flush(&app, &mut stream, &mut out).await {
                            return;
                        }
                        let leftover = buf[end..].to_vec();
                        drop(buf);
                        drop(out);
                        drop(held);
                        // A fresh, small task for the long idle life of the socket.
                        crate::ws::spawn(app, stream, leftover, hello, client, guard);
                        return;
                    }
                    Err(resp) => {
                        resp.write_to(&mut out, &app.date());
                        finish(&app, &mut stream, &mut out).await;
                        return;
                    }
                }
            }
            let keep = req.keep_alive() && !app.shutdown.is_set();
            let mut resp = routes::handle(&app, &req, peer).await;
            if !keep {
                resp.close = true;
            }
            resp.write_to(&mut out, &app.date());
            let close = resp.close;
            buf.drain(..end);
            if close {
                finish(&app, &mut stream, &mut out).await;
                return;
            }
            if out.len() >= FLUSH_AT && !flush(&app, &mut stream, &mut out).await {
                return;
            }
            continue;
        }

        // Need more bytes. `100 Continue` if the client waits for it.
        if let Some(Some(info)) =
            request::parse_head(&buf, app.cfg.max_head_bytes, app.cfg.max_body_bytes).ok()
            && info.expect_continue
            && !continue_sent
        {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            continue_sent = true;
        }
        if !flush(&app, &mut stream, &mut out).await {
            return;
        }
        let idle = buf.is_empty();
        if idle {
            // An idle keep-alive connection holds no buffers at all.
            buf = Vec::new();
            if out.capacity() > CHUNK {
                out = Vec::new();
            }
        }
        held.resize(buf.capacity() + out.capacity());
        let deadline = if idle {
            if app.shutdown.is_set() {
                return;
            }
            Instant::now() + Duration::from_secs(app.cfg.idle_timeout)
        } else {
            let started = *request_started.get_or_insert_with(Instant::now);
            started + Duration::from_secs(app.cfg.header_timeout)
        };
        match read_some(&app, &mut stream, &mut buf, deadline, idle).await {
            Wait::Data(_) => {
                if request_started.is_none() {
                    request_started = Some(Instant::now());
                }
                // A request being received is paid for, or refused.
                if !held.resize(buf.capacity() + out.capacity()) {
                    app.metrics.buffer_refused.inc("http");
                    app.metrics.http_requests.inc(("invalid", 503));
                    Response::error(503, "server_busy", "the server is busy, try again")
                        .with_header("retry-after", "5")
                        .closing()
                        .write_to(&mut out, &app.date());
                    finish(&app, &mut stream, &mut out).await;
                    return;
                }
            }
            Wait::Closed | Wait::Shutdown => return,
            Wait::Timeout => {
                app.metrics.http_timeouts.inc();
                if !idle {
                    app.metrics.http_requests.inc(("invalid", 408));
                    Response::error(408, "timeout", "request not received in time")
                        .closing()
                        .write_to(&mut out, &app.date());
                    finish(&app, &mut stream, &mut out).await;
                }
                return;
            }
        }
    }
}
