//! The event loop: bind listeners, accept connections, run the one-second
//! tick (heartbeats, ring timeouts, TTL expiry), answer STUN, and shut down
//! gracefully on SIGTERM/SIGINT. One thread, one `LocalExecutor`.

use std::io::Write as _;
use std::net::{TcpListener, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_executor::LocalExecutor;
use async_io::{Async, Timer};
use futures_lite::{FutureExt, StreamExt};

use crate::app::{App, ConnGuard};
use crate::auth::Auth;
use crate::auth::attest::Attestor;
use crate::auth::keys::Keys;
use crate::client::ClientKey;
use crate::config::Config;
use crate::error::StartError;
use crate::ids::DaemonId;
use crate::metrics::Metrics;
use crate::net::Stream;
use crate::signal::hub::{Hub, HubConfig};
use crate::signal::ice::IceConfig;
use crate::store::{AgentStore, Store, memory::MemoryStore};
use crate::{log_error, log_info, log_warn, stun};
use botcall_core::protocol::close;

/// What a caller at the accept limit gets before the socket closes (built by
/// the response writer: a hand-counted Content-Length was 8 bytes short).
fn busy_response(date: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    crate::http::Response::error(
        503,
        "too_many_connections",
        "too many connections, try again later",
    )
    .with_header("retry-after", "5")
    .closing()
    .write_to(&mut out, date);
    out
}

/// What a client at `max_connections_per_ip` gets before the socket closes.
pub(crate) fn per_ip_response(date: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    crate::http::Response::error(
        429,
        "too_many_connections",
        "too many connections from your address, close some first",
    )
    .with_header("retry-after", "5")
    .closing()
    .write_to(&mut out, date);
    out
}

/// Raises the soft open-files limit to the hard limit (sockets are files).
fn raise_nofile() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let Some(max) = lim.maximum {
        lim.current = Some(max);
        let _ = setrlimit(Resource::Nofile, lim);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The configured store; Redis must be reachable at start unless
/// `redis_fallback_local` allows starting on the memory store.
fn open_store(
    cfg: &Config,
    me: &DaemonId,
    ex: &Rc<LocalExecutor<'static>>,
) -> Result<Store, StartError> {
    let now = crate::app::Clock::new().unix();
    // The share only keys-file agents may use (`reserved_agents` percent).
    let reserved = cfg.max_agents / 100 * usize::from(cfg.reserved_agents)
        + cfg.max_agents % 100 * usize::from(cfg.reserved_agents) / 100;
    if cfg.store == "memory" {
        return Ok(Store::Memory(MemoryStore::new(
            cfg.max_agents,
            reserved,
            now,
        )));
    }
    #[cfg(feature = "redis")]
    {
        match async_io::block_on(crate::store::redis::RedisStore::connect(
            &cfg.store,
            me.clone(),
            ex.clone(),
        )) {
            Ok(s) => Ok(Store::Redis(Box::new(s))),
            Err(e) if cfg.redis_fallback_local => {
                log_warn!("{e}; starting local-only on the memory store (redis_fallback_local)");
                Ok(Store::Memory(MemoryStore::new(
                    cfg.max_agents,
                    reserved,
                    now,
                )))
            }
            Err(e) => Err(StartError::Store(e)),
        }
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = (me, ex);
        Err(StartError::Store(format!(
            "store `{}`: this build has no Redis support (feature `redis`)",
            cfg.store
        )))
    }
}

/// The store in use, for the log: a Redis URL without its password.
fn store_name(app: &App) -> String {
    #[cfg(feature = "redis")]
    if let Some(r) = app.store.redis() {
        return r.url.clone();
    }
    if app.cfg.store == "memory" {
        "memory".into()
    } else {
        "memory (local-only: Redis was unreachable)".into()
    }
}

fn os_random(buf: &mut [u8]) {
    // Without OS randomness ids would be guessable: better to stop.
    getrandom::fill(buf).expect("the OS random number generator failed");
}

/// OS randomness fetched [`RandomPool::SIZE`] bytes at a time, each byte
/// handed out once and wiped: call and session ids take 16 bytes each, and a
/// `getrandom` per call was one syscall in fifteen of a relayed round trip.
struct RandomPool {
    buf: [u8; RandomPool::SIZE],
    /// Bytes of `buf` already handed out (and zeroed).
    used: usize,
}

impl RandomPool {
    const SIZE: usize = 512;

    fn new() -> Self {
        RandomPool {
            buf: [0; Self::SIZE],
            used: Self::SIZE,
        }
    }

    fn fill(&mut self, out: &mut [u8]) {
        if out.len() > Self::SIZE / 4 {
            return os_random(out);
        }
        if Self::SIZE - self.used < out.len() {
            os_random(&mut self.buf);
            self.used = 0;
        }
        let take = &mut self.buf[self.used..self.used + out.len()];
        out.copy_from_slice(take);
        take.fill(0);
        self.used += out.len();
    }
}

/// Builds everything and runs until shutdown.
pub(crate) fn run(cfg: Config) -> Result<(), StartError> {
    let nofile = raise_nofile();
    if (nofile as usize) < cfg.max_connections + 64 {
        log_warn!(
            "open-files limit {nofile} is below max_connections {} + 64; raise LimitNOFILE",
            cfg.max_connections
        );
    }
    let keys = match &cfg.keys {
        Some(p) => Keys::load(p).map_err(StartError::Keys)?,
        None => Keys::default(),
    };
    if keys.len() == 0 && !cfg.open_registration {
        log_warn!("no keys file and open_registration is off: no bot can register (see --keys)");
    }
    let key_path = cfg
        .attestation_key
        .clone()
        .unwrap_or_else(|| cfg.state_dir.join("attestation.jwk"));
    let (attest, created) =
        Attestor::load_or_create(&key_path, &cfg.issuer).map_err(StartError::AttestationKey)?;
    if created {
        log_info!(
            "generated attestation key {} (kid {})",
            key_path.display(),
            attest.kid()
        );
    }
    let attest = Rc::new(attest);
    let metrics = Rc::new(Metrics::default());
    let daemon_id: DaemonId = {
        let mut raw = [0u8; 9];
        os_random(&mut raw);
        let mut text = [0u8; 12];
        format!(
            "d-{}",
            botcall_core::b64::encode(&raw, &mut text).unwrap_or("0")
        )
        .as_str()
        .into()
    };
    let ex = Rc::new(LocalExecutor::new());
    let store = open_store(&cfg, &daemon_id, &ex)?;
    let listener = TcpListener::bind(cfg.listen).map_err(|e| StartError::Listen(cfg.listen, e))?;
    let local = listener.local_addr().map_err(StartError::Socket)?;
    // Set once here: Linux copies TCP_NODELAY to every accepted socket,
    // which saves a `setsockopt` per connection.
    rustix::net::sockopt::set_tcp_nodelay(&listener, true)
        .map_err(|e| StartError::Socket(e.into()))?;
    let listener = Async::new(listener).map_err(StartError::Socket)?;
    let stun_socket = match cfg.stun_listen {
        Some(addr) => {
            let s = UdpSocket::bind(addr).map_err(|e| StartError::Stun(addr, e))?;
            Some(Async::new(s).map_err(StartError::Socket)?)
        }
        None => None,
    };

    let hub = Hub::new(
        HubConfig {
            heartbeat: Duration::from_secs(cfg.heartbeat_interval),
            hello_timeout: Duration::from_secs(cfg.hello_timeout),
            ring_timeout: Duration::from_secs(cfg.ring_timeout),
            reconnect_grace: Duration::from_secs(cfg.reconnect_grace),
            max_calls_per_caller: cfg.max_calls_per_caller,
            rate_calls_bot: cfg.rate_calls_bot,
            rate_calls_bot_burst: cfg.rate_calls_bot_burst,
            max_ice_per_call: cfg.max_ice_per_call,
            max_ice_bytes_per_call: cfg.max_ice_bytes_per_call,
            human_check: cfg.human_check,
            pow_difficulty: cfg.pow_difficulty,
            pow_calls: cfg.pow_calls,
            pow_lifetime: Duration::from_secs(cfg.pow_minutes * 60),
            challenge_ttl: Duration::from_secs(300),
            attestation_ttl: 120,
            ice: IceConfig {
                // The bound port: `stun_listen` may say 0.
                stun_port: stun_socket
                    .as_ref()
                    .and_then(|s| s.get_ref().local_addr().ok())
                    .map(|a| a.port()),
                turn_urls: cfg.turn_urls.clone(),
                turn_secret: cfg.turn_secret.clone(),
                turn_ttl: cfg.turn_ttl,
            },
        },
        daemon_id.clone(),
        {
            let mut pool = RandomPool::new();
            Box::new(move |buf: &mut [u8]| pool.fill(buf))
        },
        attest.clone(),
        metrics.clone(),
        Instant::now(),
    );
    let auth = Auth::new(&cfg, keys);
    #[cfg(feature = "tls")]
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(crate::net::tls::load(c, k).map_err(StartError::Tls)?),
        _ => None,
    };
    #[cfg(not(feature = "tls"))]
    if cfg.tls_cert.is_some() {
        return Err(StartError::Tls("tls_cert is set but this botcalld was built without the `tls` feature (cargo build --features tls)".into()));
    }
    let push = crate::push::Push::new(&cfg.push).map_err(StartError::Push)?;
    let app = Rc::new(App::new(
        cfg,
        metrics,
        store,
        auth,
        attest,
        hub,
        push,
        ex.clone(),
    ));
    // On the executor: a Redis store's requests are answered through its
    // connection's driver task.
    async_io::block_on(ex.run(crate::push::task::start(&app))).map_err(StartError::Push)?;
    #[cfg(feature = "tls")]
    {
        *app.tls.borrow_mut() = tls;
    }

    log_info!(
        "botcalld {} listening on {}://{local} (ws /v1/ws){}; store {}, {} agents max, {} keys, pwa {} bytes ({} embedded)",
        env!("CARGO_PKG_VERSION"),
        if app.cfg.tls_cert.is_some() {
            "https"
        } else {
            "http"
        },
        stun_socket
            .as_ref()
            .and_then(|s| s.get_ref().local_addr().ok())
            .map(|a| format!(", STUN udp {a}"))
            .unwrap_or_default(),
        store_name(&app),
        app.cfg.max_agents,
        app.auth.key_count(),
        crate::http::static_files::plain_bytes(),
        crate::http::static_files::embedded_bytes(),
    );
    log_info!(
        "agent table: {} slots of {} bytes reserved (pages are touched only as agents arrive)",
        app.cfg.max_agents,
        crate::store::memory::Table::bytes_per_entry()
    );
    crate::ops::notify_ready();

    // One thread runs every task and, when idle, drives the reactor itself
    // (measured: 15% less idle CPU than leaving the reactor to async-io's
    // helper thread with `futures_lite::future::block_on`).
    async_io::block_on(run_sliced(&ex, async {
        app.spawn(accept_loop(app.clone(), listener));
        app.spawn(tick_loop(app.clone()));
        #[cfg(feature = "redis")]
        crate::cluster::start(&app);
        if let Some(s) = stun_socket {
            app.spawn(stun_loop(app.clone(), s));
        }
        // Signals in their own task: the main future is polled on every
        // wake-up, and polling the signal pipe costs a syscall.
        let signals = app.clone();
        app.spawn(async move { wait_for_signal(&signals).await });
        app.shutdown.wait().await;
        drain(&app).await;
    }));
    Ok(())
}

/// How long tasks may run before the reactor gets a turn: under async-io's
/// helper thread's shortest nap (50 µs), so that thread never finds the
/// reactor untouched and takes it over.
const SLICE: Duration = Duration::from_micros(40);

/// Runs `ex`'s tasks until `main` completes, like `LocalExecutor::run`, but
/// once tasks have run for [`SLICE`] without a break it yields to
/// `async_io::block_on`, which then polls the reactor without blocking.
///
/// Without that, a burst of ES256 checks (≈ 60 µs each) left the reactor
/// untouched long enough for async-io's helper thread to take it: a thread
/// switch and a cross-thread wake-up per request, ≈ 35 µs of CPU on top of
/// the signature (docs/dependencies.md, "The reactor's turn").
async fn run_sliced<T>(ex: &LocalExecutor<'_>, main: impl std::future::Future<Output = T>) -> T {
    let run_forever = async {
        loop {
            // Waits for a task when there is none: block_on then blocks in the reactor.
            ex.tick().await;
            let mut start = Instant::now();
            while ex.try_tick() {
                if start.elapsed() >= SLICE {
                    futures_lite::future::yield_now().await;
                    start = Instant::now();
                }
            }
        }
    };
    main.or(run_forever).await
}

async fn wait_for_signal(app: &App) {
    use async_signal::{Signal, Signals};
    let mut signals = match Signals::new([Signal::Term, Signal::Int, Signal::Hup]) {
        Ok(s) => s,
        Err(e) => {
            log_error!("cannot install signal handlers: {e}");
            return std::future::pending().await;
        }
    };
    while let Some(Ok(sig)) = signals.next().await {
        if sig == Signal::Hup {
            #[cfg(feature = "tls")]
            reload_tls(app);
            #[cfg(not(feature = "tls"))]
            log_info!("SIGHUP: nothing to reload");
            continue;
        }
        log_info!(
            "received {sig:?}: shutting down (grace {} s)",
            app.cfg.shutdown_grace
        );
        break;
    }
    crate::ops::notify_stopping();
    app.shutdown.set();
}

/// Stops accepting, says goodbye to sockets, waits for in-flight work.
async fn drain(app: &Rc<App>) {
    app.ws
        .borrow_mut()
        .close_all(close::GOING_AWAY, "server shutting down");
    let deadline = Instant::now() + Duration::from_secs(app.cfg.shutdown_grace);
    while app.metrics.connections_open.get() > 0 && Instant::now() < deadline {
        Timer::after(Duration::from_millis(20)).await;
    }
    let left = app.metrics.connections_open.get();
    if left > 0 {
        log_warn!("grace period over with {left} connections still open");
    }
    log_info!("stopped");
}

async fn accept_loop(app: Rc<App>, listener: Async<TcpListener>) {
    loop {
        let next = async { Some(accept(&listener).await) };
        let stop = async {
            app.shutdown.wait().await;
            None
        };
        let Some(accepted) = next.or(stop).await else {
            return;
        };
        match accepted {
            Ok((stream, peer)) => {
                app.metrics.connections_total.inc();
                if app.metrics.connections_open.get() >= app.cfg.max_connections as i64 {
                    app.metrics.connections_rejected.inc();
                    app.metrics.connections_refused.inc("max_connections");
                    // Best effort, non-blocking: the kernel buffer takes it.
                    let _ = stream.get_ref().write(&busy_response(&app.date()));
                    continue;
                }
                let mut guard = ConnGuard::new(&app.metrics, &app.conns);
                // A trusted proxy carries many clients: they are counted at
                // the WebSocket upgrade, once X-Forwarded-For names them.
                if !app.cfg.trusted_proxies.contains(&peer.ip().to_canonical())
                    && !guard.claim(ClientKey::new(peer.ip(), app.cfg.ipv6_prefix))
                {
                    app.metrics.connections_refused.inc("per_ip");
                    let _ = stream.get_ref().write(&per_ip_response(&app.date()));
                    continue;
                }
                #[cfg(not(any(target_os = "linux", target_os = "android")))]
                let _ = stream.get_ref().set_nodelay(true);
                #[cfg(feature = "tls")]
                if let Some(acceptor) = app.tls.borrow().clone() {
                    app.spawn(tls_handshake(app.clone(), acceptor, stream, peer, guard));
                    continue;
                }
                app.spawn(crate::http::conn::serve(
                    app.clone(),
                    Stream::Plain(stream),
                    peer,
                    guard,
                ));
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                log_warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Accepts one connection. On Linux it comes out of `accept4` already
/// non-blocking and with the listener's TCP_NODELAY: two syscalls fewer per
/// connection than `Async::accept` (an `ioctl(FIONBIO)`) and `set_nodelay`.
#[cfg(any(target_os = "linux", target_os = "android"))]
async fn accept(
    listener: &Async<TcpListener>,
) -> std::io::Result<(Async<std::net::TcpStream>, std::net::SocketAddr)> {
    use rustix::net::{SocketFlags, acceptfrom_with};
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    let (fd, peer) = listener
        .read_with(|l| acceptfrom_with(l, flags).map_err(std::io::Error::from))
        .await?;
    let stream = std::net::TcpStream::from(fd);
    let peer = match peer.map(std::net::SocketAddr::try_from) {
        Some(Ok(a)) => a,
        // A TCP listener only accepts IP peers; ask the socket otherwise.
        _ => stream.peer_addr()?,
    };
    Ok((Async::new_nonblocking(stream)?, peer))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
async fn accept(
    listener: &Async<TcpListener>,
) -> std::io::Result<(Async<std::net::TcpStream>, std::net::SocketAddr)> {
    listener.accept().await
}

/// TLS handshake in the connection's own task (bounded by `header_timeout`).
#[cfg(feature = "tls")]
async fn tls_handshake(
    app: Rc<App>,
    acceptor: futures_rustls::TlsAcceptor,
    stream: Async<std::net::TcpStream>,
    peer: std::net::SocketAddr,
    guard: ConnGuard,
) {
    let hs = async { acceptor.accept(stream).await.ok() };
    let timeout = async {
        Timer::after(Duration::from_secs(app.cfg.header_timeout)).await;
        None
    };
    match hs.or(timeout).await {
        Some(tls) => {
            crate::http::conn::serve(app.clone(), Stream::Tls(Box::new(tls)), peer, guard).await
        }
        None => app.metrics.tls_failures.inc(),
    }
}

/// Reloads the TLS certificate (SIGHUP); a broken file keeps the old one.
#[cfg(feature = "tls")]
fn reload_tls(app: &App) {
    let (Some(cert), Some(key)) = (&app.cfg.tls_cert, &app.cfg.tls_key) else {
        return;
    };
    match crate::net::tls::load(cert, key) {
        Ok(acc) => {
            *app.tls.borrow_mut() = Some(acc);
            log_info!("reloaded TLS certificate {}", cert.display());
        }
        Err(e) => log_error!("TLS reload failed, keeping the current certificate: {e}"),
    }
}

async fn tick_loop(app: Rc<App>) {
    let mut tick = Timer::interval(Duration::from_secs(1));
    let mut trim = crate::trim::TrimPolicy::default();
    loop {
        tick.next().await;
        app.hub.borrow_mut().tick(Instant::now());
        app.deliver();
        app.store.expire(app.clock.unix());
        app.push.tick(app.clock.unix());
        // After a burst (an attack, a mass reconnect) ends, RSS comes back.
        if trim.due(app.budget.used(), app.metrics.connections_open.get()) {
            crate::trim::release_free_memory();
        }
        crate::ops::notify_watchdog();
        if app.shutdown.is_set() {
            return;
        }
    }
}

async fn stun_loop(app: Rc<App>, socket: Async<UdpSocket>) {
    let mut buf = [0u8; stun::MAX_REQUEST_LEN + 1];
    let mut out = [0u8; stun::RESPONSE_BUF_LEN];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        match stun::handle(&buf[..n], from, &mut out) {
            Ok(Some(len)) => {
                app.metrics.stun_requests.inc();
                let _ = socket.send_to(&out[..len], from).await;
            }
            Ok(None) | Err(_) => app.metrics.stun_dropped.inc(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use async_executor::LocalExecutor;

    /// Context switches of async-io's helper thread so far.
    fn helper_switches() -> u64 {
        let mut n = 0;
        for t in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = t.unwrap().path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() != "async-io" {
                continue;
            }
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            n += status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
        n
    }

    /// 40 ms of 25 µs tasks beside a socket that is always ready, on one
    /// executor: how often async-io's helper thread ran meanwhile.
    fn helper_runs_during_busy_tasks(sliced: bool) -> u64 {
        use std::net::UdpSocket;
        let ex = LocalExecutor::new();
        let b = async_io::Async::<UdpSocket>::bind(([127, 0, 0, 1], 0)).unwrap();
        let a = async_io::Async::<UdpSocket>::bind(([127, 0, 0, 1], 0)).unwrap();
        a.get_ref()
            .connect(b.get_ref().local_addr().unwrap())
            .unwrap();
        let stop = std::rc::Rc::new(std::cell::Cell::new(false));
        let pinger = {
            let stop = stop.clone();
            ex.spawn(async move {
                let mut buf = [0u8; 8];
                while !stop.get() {
                    a.send(b"x").await.unwrap();
                    // Only the reactor says `readable`: this task waits for a tick.
                    b.readable().await.unwrap();
                    let _ = b.get_ref().recv(&mut buf);
                }
            })
        };
        let busy = ex.spawn(async move {
            for _ in 0..1600 {
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(25) {}
                futures_lite::future::yield_now().await;
            }
            stop.set(true);
        });
        let before = helper_switches();
        let work = async {
            busy.await;
            pinger.await;
        };
        if sliced {
            async_io::block_on(super::run_sliced(&ex, work));
        } else {
            async_io::block_on(ex.run(work));
        }
        helper_switches() - before
    }

    /// Long runs of tasks give the reactor a turn every [`super::SLICE`], so
    /// async-io's helper thread does not take it over (issue 17: ≈ 35 µs
    /// per ES256 registration). Runs in a child process of its own: other
    /// tests' `block_on` would wake the same process-wide helper thread.
    #[test]
    fn busy_tasks_leave_the_reactor_to_this_thread() {
        const ALONE: &str = "BOTCALL_TEST_ALONE";
        if std::env::var_os(ALONE).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "server::tests::busy_tasks_leave_the_reactor_to_this_thread",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ALONE, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("1 passed"), "{text}");
            for line in text.lines().filter(|l| l.starts_with("helper thread")) {
                eprintln!("{line}");
            }
            return;
        }
        // Start the helper thread, then compare both runners, each twice.
        let _ = helper_runs_during_busy_tasks(true);
        let plain = helper_runs_during_busy_tasks(false) + helper_runs_during_busy_tasks(false);
        let sliced = helper_runs_during_busy_tasks(true) + helper_runs_during_busy_tasks(true);
        eprintln!("helper thread switches: LocalExecutor::run {plain}, run_sliced {sliced}");
        assert!(sliced * 4 < plain, "run {plain}, run_sliced {sliced}");
    }

    #[test]
    fn the_random_pool_hands_out_each_byte_once() {
        let mut pool = super::RandomPool::new();
        // 16-byte ids across several refills: all distinct, the pool wiped behind.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut id = [0u8; 16];
            pool.fill(&mut id);
            assert!(seen.insert(id), "an id came out twice");
            assert!(pool.buf[..pool.used].iter().all(|&b| b == 0));
        }
        // Odd sizes and ones larger than the pool hands out.
        for n in [0usize, 1, 7, 128, 129, 1000] {
            let mut a = vec![0u8; n];
            let mut b = vec![0u8; n];
            pool.fill(&mut a);
            pool.fill(&mut b);
            assert!(n < 8 || a != b, "{n} bytes twice the same");
        }
    }

    #[test]
    fn busy_response_is_well_framed() {
        let text = String::from_utf8(super::busy_response("D")).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "too_many_connections");
        assert!(head.contains("\r\nretry-after: 5") && head.contains("\r\nconnection: close"));
    }
}
