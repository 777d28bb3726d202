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
use crate::budget::Budget;
use crate::client::{ClientKey, ConnCounts};
use crate::config::Config;
use crate::ids::ConnId;
use crate::metrics::Metrics;
use crate::signal::hub::{Hub, Output};
use crate::store::{AgentStore, Store};
use crate::ws::frame::{self, Op};
use crate::ws::registry::{PushError, Registry};
use botcall_core::protocol::close;

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

/// Counts an open connection, in all and for its client
/// (`max_connections_per_ip`); dropping it un-counts.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    metrics: Rc<Metrics>,
    counts: Rc<RefCell<ConnCounts>>,
    client: Option<ClientKey>,
}

impl ConnGuard {
    pub(crate) fn new(m: &Rc<Metrics>, counts: &Rc<RefCell<ConnCounts>>) -> Self {
        m.connections_open.inc();
        ConnGuard {
            metrics: m.clone(),
            counts: counts.clone(),
            client: None,
        }
    }

    /// Counts this connection for `client` (at accept, or at a WebSocket
    /// upgrade through a trusted proxy, once the client is known), instead
    /// of whoever it counted for before. `false`: `client` is at its limit.
    pub(crate) fn claim(&mut self, client: ClientKey) -> bool {
        if self.client == Some(client) {
            return true;
        }
        if !self.counts.borrow_mut().acquire(client) {
            return false;
        }
        self.release_client();
        self.client = Some(client);
        true
    }

    /// Stops counting this connection for its client.
    pub(crate) fn release_client(&mut self) {
        if let Some(c) = self.client.take() {
            self.counts.borrow_mut().release(c);
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.release_client();
        self.metrics.connections_open.dec();
    }
}

/// Why a new self-certifying id was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenRefused {
    /// The client's hourly quota is spent: retry after this many seconds.
    Quota(u64),
    /// The store could not say whether the id exists.
    Store(crate::store::StoreError),
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
    /// Web Push: subscriptions, the VAPID key, the send queue.
    pub(crate) push: crate::push::Push,
    /// Bytes connections hold in buffers (`buffer_budget`).
    pub(crate) budget: Rc<Budget>,
    /// Open connections per client (`max_connections_per_ip`).
    pub(crate) conns: Rc<RefCell<ConnCounts>>,
    pub(crate) clock: Clock,
    pub(crate) shutdown: Shutdown,
    pub(crate) ex: Rc<LocalExecutor<'static>>,
    #[cfg(feature = "redis")]
    pub(crate) bus: crate::bus::Bus,
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
        push: crate::push::Push,
        ex: Rc<LocalExecutor<'static>>,
    ) -> Self {
        let budget = Rc::new(Budget::new(cfg.buffer_budget));
        let conns = Rc::new(RefCell::new(ConnCounts::new(cfg.max_connections_per_ip)));
        App {
            cfg,
            metrics,
            store,
            auth,
            attest,
            hub: RefCell::new(hub),
            push,
            ws: RefCell::new(Registry::new(budget.clone())),
            budget,
            conns,
            clock: Clock::new(),
            shutdown: Shutdown::default(),
            ex,
            #[cfg(feature = "redis")]
            bus: crate::bus::Bus::default(),
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

    /// A self-certifying id is about to be registered (`POST /register` or
    /// a bot `hello`): refreshing one that exists is free, a new one takes
    /// from its client's hourly quota (`open_ids_per_hour`), so strangers
    /// cannot fill the table with throwaway keys.
    pub(crate) async fn admit_open_id(
        &self,
        id: &str,
        client: ClientKey,
    ) -> Result<(), OpenRefused> {
        match self.store.lookup(id, self.clock.unix()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => self
                .auth
                .open_limiter
                .borrow_mut()
                .check(&client, self.clock.mono_ms())
                .map_err(|retry| {
                    self.metrics.rate_limited.inc("open_ids");
                    OpenRefused::Quota(retry)
                }),
            Err(e) => Err(OpenRefused::Store(e)),
        }
    }

    /// A frame for `conn` could not be queued: a reader too slow for its
    /// queue, or a daemon whose buffer budget is spent, loses the socket
    /// (1013), not our memory.
    pub(crate) fn refuse_output(&self, conn: ConnId, e: PushError) {
        let reason = match e {
            PushError::QueueFull => {
                self.metrics.ws_slow_reader_closed.inc();
                "too slow to read"
            }
            PushError::Budget => {
                self.metrics.buffer_refused.inc("ws_out");
                "server busy: buffer budget spent"
            }
        };
        self.metrics.ws_closed.inc(close::TRY_AGAIN);
        self.ws
            .borrow_mut()
            .close(conn, close::TRY_AGAIN, reason, true);
        self.hub.borrow_mut().close(conn, Instant::now());
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
                    let queued = self.ws.borrow_mut().push(conn, f, self.cfg.ws_queue_bytes);
                    if let Err(e) = queued {
                        self.refuse_output(conn, e);
                    }
                }
                Output::Ping(conn) => {
                    let mut f = Vec::with_capacity(2);
                    frame::encode(Op::Ping, b"", &mut f);
                    let queued = self.ws.borrow_mut().push(conn, f, self.cfg.ws_queue_bytes);
                    if let Err(e) = queued {
                        self.refuse_output(conn, e);
                    }
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
