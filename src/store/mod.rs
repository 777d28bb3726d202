//! Where agents live: registrations, TTLs, online state.
//!
//! [`AgentStore`] is the seam between the HTTP/WebSocket layers and the
//! storage engine. [`memory::MemoryStore`] (fixed-capacity table, the
//! default) and the Redis store implement it; [`Store`] picks one at start.

#[cfg(feature = "redis")]
pub(crate) mod client;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
pub(crate) mod resp;

use botcall_core::id::AgentId;
use botcall_core::protocol::Codecs;

use crate::ids::DaemonId;
pub(crate) use crate::ids::Owner;
use crate::metrics::StoreGauges;

/// A registration as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) agent_id: AgentId,
    pub(crate) endpoint: Option<Box<str>>,
    pub(crate) name: Option<Box<str>>,
    pub(crate) audio: Codecs,
    pub(crate) ttl: u32,
    pub(crate) max_calls: u8,
    pub(crate) listed: bool,
    pub(crate) owner: Owner,
    /// A self-certifying id (open registration): it may not use the share
    /// of the table reserved for keys-file agents.
    pub(crate) open: bool,
}

/// A registration as seen by a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AgentView {
    pub(crate) rec: Record,
    pub(crate) online: bool,
    pub(crate) expires_in: u64,
    /// The daemon holding the bot's socket (shared stores only).
    pub(crate) daemon: Option<DaemonId>,
}

/// What [`AgentStore::attach`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attached {
    /// The registration's `max_calls`.
    pub(crate) max_calls: u8,
    /// Another daemon that held the agent's socket until now, or held it
    /// last (it may keep answered calls waiting for the bot to come back):
    /// it is told to hand them over (shared stores).
    pub(crate) moved_from: Option<DaemonId>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// The table is at capacity (503 `table_full`).
    Full,
    /// Another key owns this id (403 `id_taken`).
    Taken,
    /// The backing store cannot be reached (503 `store_unavailable`).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Unavailable,
}

/// One page of the directory.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) agents: Vec<AgentView>,
    pub(crate) next_cursor: Option<String>,
}

/// The storage operations the daemon needs. Times are Unix seconds.
pub(crate) trait AgentStore {
    /// Inserts or refreshes `rec` (TTL restarts). An online agent stays online.
    async fn register(&self, rec: Record, now: u64) -> Result<u64, StoreError>;
    /// Removes `id` if `owner` owns it; `Ok(false)` if absent.
    async fn unregister(&self, id: &str, owner: &Owner, now: u64) -> Result<bool, StoreError>;
    /// Reads one agent.
    async fn lookup(&self, id: &str, now: u64) -> Result<Option<AgentView>, StoreError>;
    /// Lists listed agents from `cursor`, at most `limit`.
    async fn list(
        &self,
        online_only: bool,
        limit: usize,
        cursor: Option<&str>,
        now: u64,
    ) -> Result<Page, StoreError>;
    /// Marks `rec.agent_id` online (registering it with `rec` if absent):
    /// its socket is connected here. The TTL does not run while online.
    async fn attach(&self, rec: Record, now: u64) -> Result<Attached, StoreError>;
    /// Marks the agent offline; its TTL starts running from `now`.
    async fn detach(&self, id: &str, now: u64) -> Result<(), StoreError>;
    /// Drops expired registrations (cost proportional to what expires).
    fn expire(&self, now: u64) -> usize;
    /// Figures for `/metrics`.
    fn gauges(&self) -> StoreGauges;
}

/// The configured store.
#[derive(Debug)]
pub(crate) enum Store {
    Memory(memory::MemoryStore),
    #[cfg(feature = "redis")]
    Redis(Box<redis::RedisStore>),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Memory($s) => $e,
            #[cfg(feature = "redis")]
            Store::Redis($s) => $e,
        }
    };
}

impl AgentStore for Store {
    async fn register(&self, rec: Record, now: u64) -> Result<u64, StoreError> {
        each!(self, s => s.register(rec, now).await)
    }
    async fn unregister(&self, id: &str, owner: &Owner, now: u64) -> Result<bool, StoreError> {
        each!(self, s => s.unregister(id, owner, now).await)
    }
    async fn lookup(&self, id: &str, now: u64) -> Result<Option<AgentView>, StoreError> {
        each!(self, s => s.lookup(id, now).await)
    }
    async fn list(
        &self,
        online_only: bool,
        limit: usize,
        cursor: Option<&str>,
        now: u64,
    ) -> Result<Page, StoreError> {
        each!(self, s => s.list(online_only, limit, cursor, now).await)
    }
    async fn attach(&self, rec: Record, now: u64) -> Result<Attached, StoreError> {
        each!(self, s => s.attach(rec, now).await)
    }
    async fn detach(&self, id: &str, now: u64) -> Result<(), StoreError> {
        each!(self, s => s.detach(id, now).await)
    }
    fn expire(&self, now: u64) -> usize {
        each!(self, s => s.expire(now))
    }
    fn gauges(&self) -> StoreGauges {
        each!(self, s => s.gauges())
    }
}

impl Store {
    /// The Redis store, when that is the configured one.
    #[cfg(feature = "redis")]
    pub(crate) fn redis(&self) -> Option<&redis::RedisStore> {
        match self {
            Store::Redis(r) => Some(r),
            Store::Memory(_) => None,
        }
    }

    /// Whether lookups and registrations can be served now (the memory
    /// store always can; Redis between a failure and its reconnect cannot).
    pub(crate) fn is_up(&self) -> bool {
        #[cfg(feature = "redis")]
        if let Some(r) = self.redis() {
            return r.is_up();
        }
        true
    }
}
