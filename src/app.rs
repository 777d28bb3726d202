//! The daemon's shared state, owned by the single event-loop thread:
//! configuration, store, auth, signaling hub, socket registry, metrics.

use std::cell::{Cell, Ref, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_executor::LocalExecutor;
use event_listener::Event;

use crate::auth::Auth;
use crate::auth::attest::Attestor;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::signal::hub::{Hub, Output};
use crate::store::{AgentStore, Store};
use crate::ws::conn::Registry;
use crate::ws::frame::{self, Op, close};

/// Wall clock and monotonic time, read in one place.
#[derive(Debug)]
pub(crate) struct Clock {
    start: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }
    /// Unix seconds (for token times and TTLs).
    pub(crate) fn unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
    /// Monotonic milliseconds since start (for rate limits).
    pub(crate) fn mono_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// Set once on SIGTERM/SIGINT; tasks waiting on it wake.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    flag: Cell<bool>,
    event: Event,
}

impl Shutdown {
    pub(crate) fn set(&self) {
        self.flag.set(true);
        self.event.notify(usize::MAX);
    }
    pub(crate) fn is_set(&self) -> bool {
        self.flag.get()
    }
    pub(crate) async fn wait(&self) {
        loop {
            if self.flag.get() {
                return;
            }
            let l = self.event.listen();
            if self.flag.get() {
                return;
            }
            l.await;
        }
    }
}

/// Counts an open connection; dropping it un-counts.
#[derive(Debug)]
pub(crate) struct ConnGuard(Rc<Metrics>);

impl ConnGuard {
    pub(crate) fn new(m: &Rc<Metrics>) -> Self {
        m.connections_open.inc();
        ConnGuard(m.clone())
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// Everything a request or socket handler needs.
pub(crate) struct App {
    pub(crate) cfg: Config,
    pub(crate) metrics: Rc<Metrics>,
    pub(crate) store: Store,
    pub(crate) auth: Auth,
    pub(crate) attest: Rc<Attestor>,
    pub(crate) hub: RefCell<Hub>,
    pub(crate) ws: RefCell<Registry>,
    pub(crate) clock: Clock,
    pub(crate) shutdown: Shutdown,
    pub(crate) ex: Rc<LocalExecutor<'static>>,
    #[cfg(feature = "redis")]
    pub(crate) bus: crate::cluster::Bus,
    /// The TLS acceptor (swapped on SIGHUP); `None` serves plain HTTP.
    #[cfg(feature = "tls")]
    pub(crate) tls: RefCell<Option<futures_rustls::TlsAcceptor>>,
    date: RefCell<(u64, String)>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("App")
    }
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: Config,
        metrics: Rc<Metrics>,
        store: Store,
        auth: Auth,
        attest: Rc<Attestor>,
        hub: Hub,
        ex: Rc<LocalExecutor<'static>>,
    ) -> Self {
        App {
            cfg,
            metrics,
            store,
            auth,
            attest,
            hub: RefCell::new(hub),
            ws: RefCell::new(Registry::default()),
            clock: Clock::new(),
            shutdown: Shutdown::default(),
            ex,
            #[cfg(feature = "redis")]
            bus: crate::cluster::Bus::default(),
            #[cfg(feature = "tls")]
            tls: RefCell::new(None),
            date: RefCell::new((0, String::new())),
        }
    }

    /// Runs `fut` on the event loop.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        self.ex.spawn(fut).detach();
    }

    /// The `Date` header text, recomputed once per second.
    pub(crate) fn date(&self) -> Ref<'_, String> {
        let now = self.clock.unix();
        if self.date.borrow().0 != now {
            *self.date.borrow_mut() = (now, crate::http::http_date(now));
        }
        Ref::map(self.date.borrow(), |d| &d.1)
    }

    /// Turns the hub's outputs into queued frames, closes and store updates.
    /// Call after every hub mutation.
    pub(crate) fn deliver(self: &Rc<Self>) {
        loop {
            let out = self.hub.borrow_mut().poll_output();
            let Some(out) = out else { break };
            match out {
                Output::Send(conn, json) => {
                    let mut f = Vec::with_capacity(json.len() + 4);
                    frame::encode(Op::Text, &json, &mut f);
                    let full = self
                        .ws
                        .borrow_mut()
                        .push(conn, f, self.cfg.ws_queue_bytes)
                        .is_err();
                    if full {
                        // A reader this slow loses its socket, not our memory.
                        self.metrics.ws_slow_reader_closed.inc();
                        self.metrics.ws_closed.inc(close::TRY_AGAIN);
                        self.ws.borrow_mut().close(
                            conn,
                            close::TRY_AGAIN,
                            "too slow to read",
                            true,
                        );
                        self.hub.borrow_mut().close(conn, Instant::now());
                    }
                }
                Output::Ping(conn) => {
                    let mut f = Vec::with_capacity(2);
                    frame::encode(Op::Ping, b"", &mut f);
                    let _ = self.ws.borrow_mut().push(conn, f, self.cfg.ws_queue_bytes);
                }
                Output::Close(conn, code, reason) => {
                    self.metrics.ws_closed.inc(code);
                    self.ws.borrow_mut().close(conn, code, reason, false);
                }
                Output::Remote(daemon, envelope) => {
                    #[cfg(feature = "redis")]
                    let queued = self.bus.push(daemon, envelope);
                    // Without a shared store nothing is remote.
                    #[cfg(not(feature = "redis"))]
                    let queued = {
                        let _ = (daemon, envelope);
                        false
                    };
                    if !queued {
                        self.metrics.remote_messages.inc("dropped");
                    }
                }
                Output::BotOffline(agent) => {
                    let app = self.clone();
                    self.spawn(async move {
                        // A reconnect may have raced ahead of us.
                        if !app.hub.borrow().is_online(&agent) {
                            let unix = app.clock.unix();
                            if app.store.detach(&agent, unix).await.is_err() {
                                app.metrics.store_errors.inc();
                            }
                        }
                    });
                }
            }
        }
    }
}
