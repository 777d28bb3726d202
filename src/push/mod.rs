//! Web Push: people subscribe (from the PWA) to a bot's `online` and
//! `callback` events; the daemon encrypts a small JSON message for each
//! subscriber (RFC 8291, [`ece`]), signs a VAPID token ([`vapid`]) and posts
//! it to the subscription's push service (RFC 8030, [`client`]) from a
//! bounded queue: at most `push_concurrency` requests in flight, each under
//! `push_timeout`, retries per [`sched`] within the message's TTL, 404/410
//! removing the subscription. Subscriptions live in [`subs::Table`] or, on a
//! Redis store, in [`shared`]. The tasks (sender, events) are in [`task`],
//! the HTTP routes in [`routes`].

pub(crate) mod client;
pub(crate) mod ece;
pub(crate) mod routes;
pub(crate) mod sched;
pub(crate) mod shared;
pub(crate) mod subs;
pub(crate) mod task;
#[cfg(feature = "push")]
mod tls;
pub(crate) mod vapid;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use std::time::Instant;

use botcall_core::id::AgentId;
use event_listener::Event;

use crate::auth::ratelimit::Limiter;
use crate::metrics::Metrics;
use crate::push_config::PushSettings;
use crate::store::Store;
use subs::{Caps, Events, Sub, SubError};
use vapid::Vapid;

/// Most entries in the in-memory `online` debounce table.
const DEBOUNCE_MAX: usize = 65_536;
/// Most bots-came-online events waiting for the dispatcher.
pub(crate) const INBOX_MAX: usize = 4096;

/// One message on its way to one subscriber.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) sub: Sub,
    /// `online` or `callback` (metric label).
    pub(crate) event: &'static str,
    /// The JSON the service worker reads.
    pub(crate) payload: Vec<u8>,
    pub(crate) topic: Option<String>,
    pub(crate) urgency: &'static str,
    pub(crate) created: Instant,
    pub(crate) attempt: u32,
}

/// Push state: settings, the VAPID key, the memory table, the queue.
pub(crate) struct Push {
    pub(crate) cfg: PushSettings,
    pub(crate) vapid: RefCell<Option<Rc<Vapid>>>,
    table: RefCell<subs::Table>,
    pub(crate) tls: Option<client::TlsClient>,
    pub(crate) queue: RefCell<VecDeque<Job>>,
    /// Bots that came online here, for the dispatcher.
    pub(crate) inbox: RefCell<VecDeque<AgentId>>,
    /// Jobs queued, in flight or waiting for a retry (≤ `push_queue`).
    pub(crate) pending: Cell<usize>,
    pub(crate) active: Cell<usize>,
    pub(crate) wake: Event,
    debounce: RefCell<HashMap<AgentId, u64>>,
    pub(crate) per_bot: RefCell<Limiter<AgentId>>,
    pub(crate) per_sub: RefCell<Limiter<String>>,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Push {{ enabled: {} }}", self.vapid.borrow().is_some())
    }
}

impl Push {
    /// Settings only; [`Push::start`] loads the key.
    pub(crate) fn new(cfg: &PushSettings) -> Result<Self, String> {
        let tls = if cfg.enabled() {
            #[cfg(feature = "push")]
            {
                let ca = cfg.ca_file.as_deref().ok_or(
                    "push_ca_file is empty: the push client needs the CAs it trusts \
                     (the system bundle, /etc/ssl/certs/ca-certificates.crt on Debian)",
                )?;
                Some(client::TlsClient::new(ca)?)
            }
            #[cfg(not(feature = "push"))]
            None
        } else {
            None
        };
        Ok(Push {
            table: RefCell::new(subs::Table::new(Caps {
                total: cfg.max_subscriptions,
                per_agent: cfg.per_agent,
                per_client: cfg.per_ip,
            })),
            vapid: RefCell::new(None),
            tls,
            queue: RefCell::new(VecDeque::new()),
            inbox: RefCell::new(VecDeque::new()),
            pending: Cell::new(0),
            active: Cell::new(0),
            wake: Event::new(),
            debounce: RefCell::new(HashMap::new()),
            per_bot: RefCell::new(Limiter::per_hour(65_536, cfg.callback_per_bot)),
            per_sub: RefCell::new(Limiter::per_hour(65_536, cfg.callback_per_subscriber)),
            cfg: cfg.clone(),
        })
    }

    #[cfg(feature = "redis")]
    fn caps(&self) -> Caps {
        Caps {
            total: self.cfg.max_subscriptions,
            per_agent: self.cfg.per_agent,
            per_client: self.cfg.per_ip,
        }
    }

    /// The VAPID key, when push is on.
    pub(crate) fn vapid(&self) -> Option<Rc<Vapid>> {
        self.vapid.borrow().clone()
    }

    /// Subscriptions in the memory table (the gauge).
    pub(crate) fn table_len(&self) -> usize {
        self.table.borrow().len()
    }

    pub(crate) async fn upsert(
        &self,
        store: &Store,
        sub: Sub,
        now: u64,
    ) -> Result<(String, bool), SubError> {
        #[cfg(feature = "redis")]
        if let Some(r) = store.redis() {
            return shared::upsert(r, &sub, self.caps(), now).await;
        }
        let _ = (store, now);
        let id = sub.id.clone();
        let got = self.table.borrow_mut().upsert(sub)?;
        let fresh = got == id;
        Ok((got, fresh))
    }

    pub(crate) async fn remove_endpoint(
        &self,
        store: &Store,
        agent: &AgentId,
        endpoint: &str,
    ) -> Result<bool, SubError> {
        #[cfg(feature = "redis")]
        if let Some(r) = store.redis() {
            return shared::remove(r, "", agent, endpoint).await;
        }
        let _ = store;
        Ok(self.table.borrow_mut().remove_endpoint(agent, endpoint))
    }

    pub(crate) async fn remove_id(&self, store: &Store, id: &str) -> Result<bool, SubError> {
        #[cfg(feature = "redis")]
        if let Some(r) = store.redis() {
            return shared::remove(r, id, "", "").await;
        }
        let _ = store;
        Ok(self.table.borrow_mut().remove(id))
    }

    pub(crate) async fn get(
        &self,
        store: &Store,
        id: &str,
        now: u64,
    ) -> Result<Option<Sub>, SubError> {
        #[cfg(feature = "redis")]
        if let Some(r) = store.redis() {
            return shared::get(r, id, now).await;
        }
        let _ = store;
        Ok(self.table.borrow().get(id, now))
    }

    pub(crate) async fn for_agent(
        &self,
        store: &Store,
        agent: &str,
        event: Events,
        now: u64,
    ) -> Result<Vec<Sub>, SubError> {
        #[cfg(feature = "redis")]
        if let Some(r) = store.redis() {
            return shared::for_agent(r, agent, event, now, self.cfg.per_agent).await;
        }
        let _ = store;
        Ok(self.table.borrow().for_agent(agent, event, now))
    }

    /// Whether `agent`'s `online` notification may go out now (and takes it).
    pub(crate) async fn take_debounce(&self, store: &Store, agent: &AgentId, now: u64) -> bool {
        let secs = self.cfg.online_debounce;
        #[cfg(feature = "redis")]
        if let Some(r) = store.redis() {
            return shared::debounce(r, agent, secs).await.unwrap_or(false);
        }
        let _ = store;
        let mut d = self.debounce.borrow_mut();
        if d.get(agent).is_some_and(|&t| now < t.saturating_add(secs)) {
            return false;
        }
        if d.len() >= DEBOUNCE_MAX {
            d.retain(|_, t| now < t.saturating_add(secs));
            if d.len() >= DEBOUNCE_MAX {
                // Still full of fresh entries: refuse rather than grow.
                return false;
            }
        }
        d.insert(agent.clone(), now);
        true
    }

    /// Queues a job; `false` (counted) when `push_queue` is spent.
    pub(crate) fn enqueue(&self, metrics: &Metrics, job: Job) -> bool {
        if self.pending.get() >= self.cfg.queue {
            metrics.push_messages.inc((job.event, "queue_full"));
            return false;
        }
        self.pending.set(self.pending.get() + 1);
        self.queue.borrow_mut().push_back(job);
        self.wake.notify(usize::MAX);
        true
    }

    /// The one-second tick: once a minute, drops lapsed subscriptions
    /// (memory table; Redis expires its own).
    pub(crate) fn tick(&self, now: u64) {
        if now.is_multiple_of(60) {
            self.table.borrow_mut().expire(now);
        }
    }
}
