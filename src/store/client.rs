//! A small Redis client on async-io, over the sans-IO codec in
//! [`super::resp`]: what the shared store, the cluster bus and the shared
//! push table need, and nothing else (docs/dependencies.md: the `redis`
//! crate cost ~400 KB of the binary).
//!
//! - [`Conn`]: one multiplexed command connection. Requests are pipelined
//!   and matched to replies in FIFO order by a driver task; each waits at
//!   most [`TIMEOUT`]. When the connection drops, every waiting request fails
//!   at once (the store then marks itself down and reconnects).
//! - [`Script`]: EVALSHA with the script's SHA-1, EVAL on `NOSCRIPT`.
//! - [`PubSub`]: one subscribed channel, read as a stream of payloads.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use async_executor::{LocalExecutor, Task};
use async_io::{Async, Timer};
use event_listener::Event;
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};

use super::resp::{Cmd, Decoder, Limits, Reply, RespError};

/// Connecting and every round trip give up after this (then 503, not a hung
/// request).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(1);

/// Why a Redis request failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum RedisError {
    Io(std::io::Error),
    /// No answer within [`TIMEOUT`].
    Timeout,
    /// The connection closed (or was dropped) before the answer came.
    Dropped,
    /// Redis sent something RESP2 does not allow, or over our bounds.
    Protocol(RespError),
    /// Redis answered with an error (`-ERR ...`); the connection is fine.
    Server(String),
    /// An answer of a type the command does not give.
    Unexpected,
}

impl RedisError {
    /// Whether the connection is unusable after this error.
    pub(crate) fn breaks_connection(&self) -> bool {
        !matches!(self, RedisError::Server(_) | RedisError::Unexpected)
    }
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::Io(e) => write!(f, "{e}"),
            RedisError::Timeout => write!(f, "no answer within {} s", TIMEOUT.as_secs()),
            RedisError::Dropped => f.write_str("connection closed"),
            RedisError::Protocol(e) => write!(f, "{e}"),
            RedisError::Server(e) => write!(f, "Redis answered: {e}"),
            RedisError::Unexpected => f.write_str("unexpected answer"),
        }
    }
}

impl From<std::io::Error> for RedisError {
    fn from(e: std::io::Error) -> Self {
        RedisError::Io(e)
    }
}

impl From<RespError> for RedisError {
    fn from(e: RespError) -> Self {
        RedisError::Protocol(e)
    }
}

/// `redis://[[user]:password@]host[:port][/db]`, as the `redis` crate read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RedisUrl {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) db: u32,
}

impl RedisUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix("redis://") else {
            return Err(
                if url.starts_with("rediss://") {
                    "rediss:// (TLS to Redis) is not supported: reach Redis over a private network or a tunnel (stunnel, spiped, WireGuard) and use redis://"
                } else if url.starts_with("unix:") || url.starts_with("redis+unix:") {
                    "Unix sockets are not supported: use redis://host:port"
                } else {
                    "not a redis://host:port/db URL"
                }
                .into(),
            );
        };
        if rest.contains(['?', '#']) {
            return Err(
                "query parameters are not supported: redis://[[user]:password@]host[:port][/db]"
                    .into(),
            );
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (mut user, mut password) = (None, None);
        if let Some(u) = userinfo {
            let (name, pass) = match u.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (u, None),
            };
            if !name.is_empty() {
                user = Some(unescape(name)?);
            }
            password = pass.map(unescape).transpose()?;
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or("junk after ]")?),
            };
            (h, port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        if !host.is_ascii() {
            return Err("host names must be ASCII (punycode)".into());
        }
        let port = match port {
            None => 6379,
            Some(p) => p.parse().map_err(|_| format!("bad port `{p}`"))?,
        };
        let db = match path {
            "" => 0,
            d => d
                .parse()
                .map_err(|_| format!("the database must be a number, not `{d}`"))?,
        };
        Ok(RedisUrl {
            host: host.to_string(),
            port,
            user,
            password,
            db,
        })
    }

    /// The URL for logs: the password never leaves.
    pub(crate) fn redacted(&self) -> String {
        let auth = match (&self.user, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (None, Some(_)) => ":***@".to_string(),
            (Some(u), None) => format!("{u}@"),
            (None, None) => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("redis://{auth}{host}:{}/{}", self.port, self.db)
    }
}

/// `%xx` escapes in the user name and password.
fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape in the user or password")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the user or password is not UTF-8".into())
}

async fn timeout<T>(fut: impl Future<Output = Result<T, RedisError>>) -> Result<T, RedisError> {
    fut.or(async {
        Timer::after(TIMEOUT).await;
        Err(RedisError::Timeout)
    })
    .await
}

/// A TCP connection to the URL's host, authenticated and on its database.
async fn open(url: &RedisUrl, select: bool) -> Result<(Async<TcpStream>, Decoder), RedisError> {
    let addrs: Vec<SocketAddr> = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        // Names resolve on the blocking pool, off the event loop.
        Err(_) => {
            timeout(async { Ok(async_net::resolve((url.host.as_str(), url.port)).await?) }).await?
        }
    };
    let mut last = RedisError::Io(std::io::ErrorKind::NotFound.into());
    let mut stream = None;
    for a in addrs.into_iter().take(4) {
        match timeout(async { Ok(Async::<TcpStream>::connect(a).await?) }).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(last)?;
    let _ = stream.get_ref().set_nodelay(true);
    let mut dec = Decoder::new(Limits::DEFAULT);
    if let Some(p) = &url.password {
        let mut auth = Cmd::new("AUTH");
        if let Some(u) = &url.user {
            auth = auth.arg(u);
        }
        roundtrip(&mut stream, &mut dec, &auth.arg(p)).await?;
    }
    if select && url.db != 0 {
        roundtrip(&mut stream, &mut dec, &Cmd::new("SELECT").arg(url.db)).await?;
    }
    Ok((stream, dec))
}

/// One request and its answer, on a connection nobody else uses yet.
async fn roundtrip(
    stream: &mut Async<TcpStream>,
    dec: &mut Decoder,
    cmd: &Cmd,
) -> Result<Reply, RedisError> {
    let mut out = Vec::new();
    cmd.encode(&mut out);
    timeout(async {
        stream.write_all(&out).await?;
        server_error(read_reply(stream, dec).await?)
    })
    .await
}

async fn read_reply(stream: &mut Async<TcpStream>, dec: &mut Decoder) -> Result<Reply, RedisError> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(r) = dec.next()? {
            return Ok(r);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(RedisError::Dropped);
        }
        dec.feed(&buf[..n]);
    }
}

fn server_error(r: Reply) -> Result<Reply, RedisError> {
    match r {
        Reply::Error(e) => Err(RedisError::Server(e)),
        r => Ok(r),
    }
}

/// A request waiting for its answer.
#[derive(Default)]
struct Slot {
    answer: RefCell<Option<Result<Reply, RedisError>>>,
    done: Event,
}

impl Slot {
    fn fill(&self, r: Result<Reply, RedisError>) {
        *self.answer.borrow_mut() = Some(r);
        self.done.notify(1);
    }

    async fn wait(&self) -> Result<Reply, RedisError> {
        loop {
            if let Some(r) = self.answer.borrow_mut().take() {
                return r;
            }
            let l = self.done.listen();
            if let Some(r) = self.answer.borrow_mut().take() {
                return r;
            }
            l.await;
        }
    }
}

struct Shared {
    /// Encoded requests not yet written.
    out: RefCell<Vec<u8>>,
    /// Requests written or queued, oldest first: the next reply is the front's.
    waiting: RefCell<VecDeque<Rc<Slot>>>,
    write: Event,
    dead: Cell<bool>,
}

impl Shared {
    /// Fails every waiting request; later ones fail at once.
    fn kill(&self) {
        self.dead.set(true);
        self.out.borrow_mut().clear();
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        for s in waiting {
            s.fill(Err(RedisError::Dropped));
        }
    }
}

/// Kills the connection state when the driver ends, however it ends
/// (error, end of stream, or its task dropped with the last [`Conn`]).
struct KillOnDrop(Rc<Shared>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// One multiplexed command connection (cheap to clone; the connection
/// closes when the last clone is dropped).
#[derive(Clone)]
pub(crate) struct Conn {
    shared: Rc<Shared>,
    _driver: Rc<Task<()>>,
}

impl Conn {
    /// Connects, authenticates, selects the database and checks with PING;
    /// the driver task runs on `ex`.
    pub(crate) async fn connect(
        url: &RedisUrl,
        ex: &LocalExecutor<'static>,
    ) -> Result<Conn, RedisError> {
        let (mut stream, mut dec) = open(url, true).await?;
        roundtrip(&mut stream, &mut dec, &Cmd::new("PING")).await?;
        let shared = Rc::new(Shared {
            out: RefCell::new(Vec::new()),
            waiting: RefCell::new(VecDeque::new()),
            write: Event::new(),
            dead: Cell::new(false),
        });
        let driver = ex.spawn(drive(shared.clone(), stream, dec));
        Ok(Conn {
            shared,
            _driver: Rc::new(driver),
        })
    }

    /// Whether both are clones of one connection.
    pub(crate) fn same(&self, other: &Conn) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether the connection is gone (every request now fails).
    pub(crate) fn is_dead(&self) -> bool {
        self.shared.dead.get()
    }

    /// Queues `cmd` now (requests go out in the order of these calls) and
    /// returns its answer's future. An `-ERR` answer is [`RedisError::Server`].
    pub(crate) fn send(
        &self,
        cmd: &Cmd,
    ) -> impl Future<Output = Result<Reply, RedisError>> + 'static {
        let slot = (!self.shared.dead.get()).then(|| {
            cmd.encode(&mut self.shared.out.borrow_mut());
            let s = Rc::new(Slot::default());
            self.shared.waiting.borrow_mut().push_back(s.clone());
            self.shared.write.notify(1);
            s
        });
        async move {
            let slot = slot.ok_or(RedisError::Dropped)?;
            // A timed-out request keeps its place in the queue: its late
            // answer is matched to it and dropped.
            server_error(timeout(slot.wait()).await?)
        }
    }

    /// Sends `cmd` and waits for its answer.
    pub(crate) async fn query(&self, cmd: Cmd) -> Result<Reply, RedisError> {
        self.send(&cmd).await
    }
}

/// Moves bytes: queued requests out, replies in, each to the oldest waiter.
async fn drive(shared: Rc<Shared>, stream: Async<TcpStream>, mut dec: Decoder) {
    let _kill = KillOnDrop(shared.clone());
    let read = async {
        let mut buf = vec![0u8; 16 << 10];
        loop {
            while let Some(r) = dec.next()? {
                let slot = shared.waiting.borrow_mut().pop_front();
                // An answer nobody asked for: the stream is out of step.
                slot.ok_or(RedisError::Unexpected)?.fill(Ok(r));
            }
            let n = (&stream).read(&mut buf).await?;
            if n == 0 {
                return Err(RedisError::Dropped);
            }
            dec.feed(&buf[..n]);
        }
    };
    let write = async {
        loop {
            let data = std::mem::take(&mut *shared.out.borrow_mut());
            if data.is_empty() {
                let l = shared.write.listen();
                if shared.out.borrow().is_empty() {
                    l.await;
                }
                continue;
            }
            (&stream).write_all(&data).await?;
        }
    };
    let r: Result<(), RedisError> = read.or(write).await;
    if let Err(e) = r {
        crate::log_debug!("redis connection ended: {e}");
    }
}

/// A Lua script, called by its SHA-1 (EVALSHA) and sent whole (EVAL) only
/// when Redis does not have it (first use, or after a restart or a flush).
pub(crate) struct Script {
    code: &'static str,
    sha: String,
}

impl Script {
    pub(crate) fn new(code: &'static str) -> Self {
        use sha1::{Digest, Sha1};
        let sha = Sha1::digest(code.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Script { code, sha }
    }

    /// A call with no keys yet.
    pub(crate) fn prepare_invoke(&self) -> Invocation<'_> {
        Invocation {
            script: self,
            keys: Cmd::default(),
            nkeys: 0,
            args: Cmd::default(),
        }
    }

    /// A call starting with key `k`.
    pub(crate) fn key(&self, k: impl super::resp::Arg) -> Invocation<'_> {
        self.prepare_invoke().key(k)
    }
}

/// A script call being built.
pub(crate) struct Invocation<'a> {
    script: &'a Script,
    keys: Cmd,
    nkeys: usize,
    args: Cmd,
}

impl Invocation<'_> {
    pub(crate) fn key(mut self, k: impl super::resp::Arg) -> Self {
        self.keys = self.keys.arg(k);
        self.nkeys += 1;
        self
    }

    pub(crate) fn arg(mut self, a: impl super::resp::Arg) -> Self {
        self.args = self.args.arg(a);
        self
    }

    fn call(&self, verb: &str, body: &str) -> Cmd {
        Cmd::new(verb)
            .arg(body)
            .arg(self.nkeys)
            .append(&self.keys)
            .append(&self.args)
    }

    /// EVALSHA; EVAL (which also loads the script) on `NOSCRIPT`.
    pub(crate) async fn invoke(&self, c: &Conn) -> Result<Reply, RedisError> {
        match c.query(self.call("EVALSHA", &self.script.sha)).await {
            Err(RedisError::Server(e)) if e.starts_with("NOSCRIPT") => {
                c.query(self.call("EVAL", self.script.code)).await
            }
            r => r,
        }
    }
}

/// A connection subscribed to one channel.
pub(crate) struct PubSub {
    stream: Async<TcpStream>,
    dec: Decoder,
}

impl PubSub {
    /// Connects and subscribes to `channel`.
    pub(crate) async fn subscribe(url: &RedisUrl, channel: &str) -> Result<PubSub, RedisError> {
        let (mut stream, mut dec) = open(url, false).await?;
        let r = roundtrip(&mut stream, &mut dec, &Cmd::new("SUBSCRIBE").arg(channel)).await?;
        match r.into_array().first() {
            Some(Reply::Bulk(k)) if k == b"subscribe" => Ok(PubSub { stream, dec }),
            _ => Err(RedisError::Unexpected),
        }
    }

    /// The next message's payload; an error when the connection ends.
    pub(crate) async fn message(&mut self) -> Result<Vec<u8>, RedisError> {
        loop {
            let r = server_error(read_reply(&mut self.stream, &mut self.dec).await?)?;
            let mut parts = r.into_array().into_iter();
            if let (Some(Reply::Bulk(kind)), Some(_), Some(Reply::Bulk(payload))) =
                (parts.next(), parts.next(), parts.next())
                && kind == b"message"
            {
                return Ok(payload);
            }
            // Anything else (confirmations) carries no message.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Result<RedisUrl, String> {
        RedisUrl::parse(s)
    }

    #[test]
    fn urls_read_as_the_redis_crate_read_them() {
        let u = url("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, 2));
        assert_eq!((u.user, u.password), (None, None));
        let u = url("redis://redis").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("redis", 6379, 0));
        assert_eq!(url("redis://h/").unwrap().db, 0);
        let u = url("redis://:s%40cret@h:1/0").unwrap();
        assert_eq!((u.user, u.password.as_deref()), (None, Some("s@cret")));
        let u = url("redis://bob:pw@h").unwrap();
        assert_eq!(
            (u.user.as_deref(), u.password.as_deref()),
            (Some("bob"), Some("pw"))
        );
        let u = url("redis://[::1]:7000/3").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("::1", 7000, 3));
        assert_eq!(u.redacted(), "redis://[::1]:7000/3");
        assert_eq!(
            url("redis://bob:pw@h").unwrap().redacted(),
            "redis://bob:***@h:6379/0"
        );
    }

    /// Over a real socket, against a hostile server: pipelined requests
    /// get their own answers in order (across a split write), and a reply
    /// over the bounds kills the connection, failing every waiting request.
    #[test]
    fn pipelined_answers_match_in_order_and_an_oversized_reply_fails_all_waiting() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let get = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 256];
            // PING, then four GETs.
            while seen.len() < 14 + 4 * get.len() {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed early");
                seen.extend_from_slice(&buf[..n]);
                if seen == b"*1\r\n$4\r\nPING\r\n" {
                    s.write_all(b"+PONG\r\n").unwrap();
                }
            }
            s.write_all(b":1\r\n$3\r\nt").unwrap();
            s.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            // 17 GiB claimed: refused from the header, nothing allocated.
            s.write_all(b"wo\r\n$18253611008\r\n").unwrap();
            // The client hangs up after that.
            assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
        });
        let ex = Rc::new(LocalExecutor::new());
        let url = RedisUrl::parse(&format!("redis://127.0.0.1:{port}")).unwrap();
        let got = async_io::block_on(ex.run(async {
            let c = Conn::connect(&url, &ex).await.unwrap();
            let cmd = Cmd::new("GET").arg("k");
            let waiting: Vec<_> = (0..4).map(|_| c.send(&cmd)).collect();
            let mut got = Vec::new();
            for w in waiting {
                got.push(w.await);
            }
            (got, c.is_dead(), c.send(&cmd).await)
        }));
        server.join().unwrap();
        let (got, dead, after) = got;
        assert_eq!(got[0].as_ref().unwrap(), &Reply::Int(1));
        assert_eq!(got[1].as_ref().unwrap(), &Reply::Bulk(b"two".to_vec()));
        assert!(matches!(got[2], Err(RedisError::Dropped)), "{:?}", got[2]);
        assert!(matches!(got[3], Err(RedisError::Dropped)), "{:?}", got[3]);
        assert!(dead);
        assert!(matches!(after, Err(RedisError::Dropped)));
    }

    #[test]
    fn unusable_urls_say_why() {
        for (u, why) in [
            ("rediss://h:6379", "TLS"),
            ("unix:///run/redis.sock", "Unix"),
            ("redis+unix:///run/redis.sock", "Unix"),
            ("http://h", "not a redis"),
            ("redis://h:port", "bad port"),
            ("redis://h:70000", "bad port"),
            ("redis://h/x", "database"),
            ("redis://h/-1", "database"),
            ("redis://:6379", "no host"),
            ("redis://h?protocol=resp3", "query"),
            ("redis://[::1", "unclosed"),
            ("redis://:%zz@h", "escape"),
        ] {
            let e = url(u).unwrap_err();
            assert!(e.contains(why), "{u}: {e}");
        }
    }
}
