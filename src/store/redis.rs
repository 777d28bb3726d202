//! The shared store: agents in Redis, so several daemons serve one network.
//!
//! Layout (all keys under `bc:`):
//! - `bc:a:{id}` — hash: `owner`, `endpoint`, `name` (`=text` or empty),
//!   `audio`, `ttl`, `max_calls`, `listed`, `daemon` (id of the daemon
//!   holding the bot's socket, empty when offline), `exp` (Unix expiry while
//!   offline). Key TTL = `ttl` while offline; `ONLINE_TTL` (refreshed by the
//!   holding daemon) while online, so a crashed daemon's bots age out.
//! - `bc:dir` — sorted set of listed ids (the directory, paged by id).
//! - `bc:d:{daemon}` — liveness of a daemon (`SET EX`), refreshed every few
//!   seconds: an agent is online only if its daemon is alive.
//! - channel `bc:ch:{daemon}` — envelopes for that daemon (pub/sub).
//!
//! Every read-modify-write is one Lua script, so ownership checks are atomic
//! across daemons: two daemons cannot both accept different keys for one id.
//! When Redis is unreachable every operation fails fast with
//! [`StoreError::Unavailable`] (503 `store_unavailable`); a background task
//! reconnects with backoff and re-announces every bot connected here.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use async_executor::LocalExecutor;
use botcall_core::id::AgentId;
use botcall_core::protocol::Codecs;

use super::client::{Conn, RedisError, RedisUrl, Script};
use super::resp::{Cmd, Reply};
use super::{AgentStore, AgentView, Attached, Owner, Page, Record, StoreError};
use crate::ids::DaemonId;
use crate::metrics::StoreGauges;

/// Key TTL of an online agent; the holding daemon refreshes it.
pub(crate) const ONLINE_TTL: u64 = 120;
/// Liveness key TTL of a daemon; refreshed every `LIVENESS_EVERY`.
pub(crate) const LIVENESS_TTL: u64 = 15;
/// How long a daemon's attestation key stays in the shared JWKS after its
/// last heartbeat: longer than an attestation lives (120 s), so a token
/// signed just before a daemon stopped still verifies.
pub(crate) const JWK_TTL: u64 = 300;
pub(crate) const LIVENESS_EVERY: Duration = Duration::from_secs(5);

const REGISTER: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'owner')
if cur and cur ~= ARGV[1] then return 'TAKEN' end
local daemon = redis.call('HGET', KEYS[1], 'daemon') or ''
local ttl = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'endpoint', ARGV[2], 'name', ARGV[3], 'audio', ARGV[4],
  'ttl', ARGV[5], 'max_calls', ARGV[6], 'listed', ARGV[7], 'exp', tonumber(ARGV[8]) + ttl, 'daemon', daemon)
if daemon ~= '' then redis.call('EXPIRE', KEYS[1], math.max(ttl, tonumber(ARGV[10]))) else redis.call('EXPIRE', KEYS[1], ttl) end
if ARGV[7] == '1' then redis.call('ZADD', KEYS[2], 0, ARGV[9]) else redis.call('ZREM', KEYS[2], ARGV[9]) end
return 'OK'
"#;

const ATTACH: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'owner')
if cur and cur ~= ARGV[1] then return {'TAKEN'} end
if not cur then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'endpoint', '', 'name', '', 'audio', '1', 'ttl', ARGV[3],
    'max_calls', ARGV[2], 'listed', '0', 'exp', '0')
end
local prev = redis.call('HGET', KEYS[1], 'daemon') or ''
if prev == '' then prev = redis.call('HGET', KEYS[1], 'last') or '' end
redis.call('HSET', KEYS[1], 'daemon', ARGV[4])
redis.call('HDEL', KEYS[1], 'last')
redis.call('EXPIRE', KEYS[1], math.max(tonumber(redis.call('HGET', KEYS[1], 'ttl')), tonumber(ARGV[5])))
local alive = 0
if prev ~= '' and prev ~= ARGV[4] then alive = redis.call('EXISTS', 'bc:d:' .. prev) end
return {'OK', redis.call('HGET', KEYS[1], 'max_calls'), prev, alive}
"#;

const DETACH: &str = r#"
if redis.call('HGET', KEYS[1], 'daemon') ~= ARGV[1] then return 0 end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl'))
redis.call('HSET', KEYS[1], 'daemon', '', 'exp', tonumber(ARGV[2]) + ttl, 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], ttl)
return 1
"#;

const UNREGISTER: &str = r#"
local cur = redis.call('HGET', KEYS[1], 'owner')
if not cur then return 'NONE' end
if cur ~= ARGV[1] then return 'TAKEN' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 'OK'
"#;

const LOOKUP: &str = r#"
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {} end
local d = redis.call('HGET', KEYS[1], 'daemon')
local alive = 0
if d and d ~= '' then alive = redis.call('EXISTS', 'bc:d:' .. d) end
table.insert(h, 'alive')
table.insert(h, alive)
table.insert(h, 'pttl')
table.insert(h, redis.call('PTTL', KEYS[1]))
return h
"#;

const REFRESH: &str = r#"
for i, k in ipairs(KEYS) do
  if redis.call('HGET', k, 'daemon') == ARGV[1] then redis.call('EXPIRE', k, ARGV[2]) end
end
return #KEYS
"#;

fn agent_key(id: &str) -> String {
    format!("bc:a:{id}")
}

/// The channel daemon `d` listens on.
pub(crate) fn channel(d: &str) -> String {
    format!("bc:ch:{d}")
}

fn hex(owner: &Owner) -> String {
    owner.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Owner {
    let mut o = [0u8; 8];
    for (i, b) in o.iter_mut().enumerate() {
        *b = s
            .get(i * 2..i * 2 + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    o
}

fn opt(s: &Option<Box<str>>) -> String {
    s.as_deref().map(|v| format!("={v}")).unwrap_or_default()
}

fn text(v: &Reply) -> String {
    v.text()
}

fn int(v: &Reply) -> i64 {
    v.int()
}

/// A store on a Redis server.
pub(crate) struct RedisStore {
    target: RedisUrl,
    /// Runs the connection's driver task.
    ex: Rc<LocalExecutor<'static>>,
    conn: RefCell<Option<Conn>>,
    me: DaemonId,
    /// The URL for logs (no password).
    pub(crate) url: String,
    registered: Cell<u64>,
    up: Cell<bool>,
    scripts: Scripts,
}

struct Scripts {
    register: Script,
    attach: Script,
    detach: Script,
    unregister: Script,
    lookup: Script,
    refresh: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RedisStore {{ url: {}, up: {} }}",
            self.url,
            self.up.get()
        )
    }
}

fn unavailable(e: RedisError) -> StoreError {
    crate::log_debug!("redis: {e}");
    StoreError::Unavailable
}

impl RedisStore {
    /// Connects (fails if Redis is unreachable now); the connection's
    /// driver task runs on `ex`.
    pub(crate) async fn connect(
        url: &str,
        me: DaemonId,
        ex: Rc<LocalExecutor<'static>>,
    ) -> Result<Self, String> {
        let target = RedisUrl::parse(url).map_err(|e| format!("option `store`: {e}"))?;
        let url = target.redacted();
        let s = RedisStore {
            target,
            ex,
            conn: RefCell::new(None),
            me,
            url: url.clone(),
            registered: Cell::new(0),
            up: Cell::new(false),
            scripts: Scripts {
                register: Script::new(REGISTER),
                attach: Script::new(ATTACH),
                detach: Script::new(DETACH),
                unregister: Script::new(UNREGISTER),
                lookup: Script::new(LOOKUP),
                refresh: Script::new(REFRESH),
            },
        };
        s.reconnect()
            .await
            .map_err(|e| format!("store {url}: cannot reach Redis: {e}"))?;
        Ok(s)
    }

    /// Where Redis is (for the subscriber's own connection).
    pub(crate) fn target(&self) -> &RedisUrl {
        &self.target
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.get()
    }

    /// (Re)opens the command connection.
    pub(crate) async fn reconnect(&self) -> Result<(), RedisError> {
        let conn = Conn::connect(&self.target, &self.ex).await?;
        *self.conn.borrow_mut() = Some(conn);
        self.up.set(true);
        Ok(())
    }

    /// Marks the store down (the reconnect loop will bring it back).
    pub(crate) fn mark_down(&self) {
        self.up.set(false);
        *self.conn.borrow_mut() = None;
    }

    fn conn(&self) -> Result<Conn, StoreError> {
        if !self.up.get() {
            return Err(StoreError::Unavailable);
        }
        self.conn.borrow().clone().ok_or(StoreError::Unavailable)
    }

    /// Runs `f` on the connection; a failure of the connection (not an
    /// `-ERR` answer) marks the store down.
    pub(crate) async fn run<T>(
        &self,
        f: impl AsyncFnOnce(&Conn) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let conn = self.conn()?;
        match f(&conn).await {
            Ok(v) => Ok(v),
            Err(e) if e.breaks_connection() || conn.is_dead() => {
                // Only if it is still the current connection: a request
                // that outlived a reconnect must not mark the new one down.
                let current = self.conn.borrow().as_ref().is_some_and(|c| c.same(&conn));
                if current {
                    self.mark_down();
                }
                Err(unavailable(e))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Says this daemon is alive; refreshes its online agents' key TTLs.
    pub(crate) async fn heartbeat(&self, online: &[AgentId]) -> Result<(), StoreError> {
        let me = self.me.clone();
        let keys: Vec<String> = online.iter().map(|a| agent_key(a)).collect();
        let refresh = &self.scripts.refresh;
        let registered = self
            .run(async |c| {
                c.query(
                    Cmd::new("SET")
                        .arg(format!("bc:d:{me}"))
                        .arg("1")
                        .arg("EX")
                        .arg(LIVENESS_TTL),
                )
                .await?;
                for chunk in keys.chunks(500) {
                    let mut inv = refresh.prepare_invoke();
                    for k in chunk {
                        inv = inv.key(k);
                    }
                    inv.arg(&*me).arg(ONLINE_TTL).invoke(c).await?;
                }
                c.query(Cmd::new("DBSIZE")).await
            })
            .await?;
        self.registered
            .set(u64::try_from(registered.int()).unwrap_or(0));
        Ok(())
    }

    /// Shares this daemon's public attestation key (`bc:jwks`, a sorted set
    /// scored by expiry, refreshed with every heartbeat) and returns the
    /// live keys of every daemon, freshest first, at most `max`.
    pub(crate) async fn share_jwk(
        &self,
        jwk: &str,
        now: u64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let jwk = jwk.to_string();
        self.run(async |c| {
            // Pipelined: queued together, answered in order.
            let add = c.send(&Cmd::new("ZADD").arg("bc:jwks").arg(now + JWK_TTL).arg(&jwk));
            let trim = c.send(
                &Cmd::new("ZREMRANGEBYSCORE")
                    .arg("bc:jwks")
                    .arg("-inf")
                    .arg(format!("({now}")),
            );
            let live = c.send(
                &Cmd::new("ZRANGE")
                    .arg("bc:jwks")
                    .arg("+inf")
                    .arg(now)
                    .arg("BYSCORE")
                    .arg("REV")
                    .arg("LIMIT")
                    .arg(0u64)
                    .arg(max),
            );
            add.await?;
            trim.await?;
            Ok(live.await?.into_array().iter().map(text).collect())
        })
        .await
    }

    /// Publishes an envelope to daemon `d`.
    pub(crate) async fn publish(&self, d: &str, payload: &[u8]) -> Result<(), StoreError> {
        let ch = channel(d);
        self.run(async |c| {
            c.query(Cmd::new("PUBLISH").arg(&ch).arg(payload))
                .await
                .map(|_| ())
        })
        .await
    }

    fn view(&self, id: &str, fields: &[Reply], now: u64) -> Option<AgentView> {
        if fields.is_empty() {
            return None;
        }
        let mut get = std::collections::HashMap::new();
        for kv in fields.chunks(2) {
            if let [k, v] = kv {
                get.insert(text(k), v);
            }
        }
        let s = |k: &str| get.get(k).map(|v| text(v)).unwrap_or_default();
        let strip = |v: String| v.strip_prefix('=').map(|t| t.to_string().into_boxed_str());
        let daemon = s("daemon");
        let alive = get.get("alive").map(|v| int(v)).unwrap_or(0) == 1;
        let online = !daemon.is_empty() && alive;
        let ttl = s("ttl").parse::<u32>().unwrap_or(0);
        let exp = s("exp").parse::<u64>().unwrap_or(0);
        Some(AgentView {
            rec: Record {
                agent_id: AgentId::new(id).ok()?,
                endpoint: strip(s("endpoint")),
                name: strip(s("name")),
                audio: Codecs(s("audio").parse().unwrap_or(1)),
                ttl,
                max_calls: s("max_calls").parse().unwrap_or(1),
                listed: s("listed") == "1",
                owner: unhex(&s("owner")),
                open: false,
            },
            online,
            expires_in: if online {
                u64::from(ttl)
            } else {
                exp.saturating_sub(now)
            },
            daemon: online.then(|| daemon.as_str().into()),
        })
    }
}

impl AgentStore for RedisStore {
    async fn register(&self, rec: Record, now: u64) -> Result<u64, StoreError> {
        let script = &self.scripts.register;
        let id = rec.agent_id.to_string();
        let r = self
            .run(async |c| {
                script
                    .key(agent_key(&id))
                    .key("bc:dir")
                    .arg(hex(&rec.owner))
                    .arg(opt(&rec.endpoint))
                    .arg(opt(&rec.name))
                    .arg(rec.audio.0)
                    .arg(rec.ttl)
                    .arg(rec.max_calls)
                    .arg(if rec.listed { "1" } else { "0" })
                    .arg(now)
                    .arg(&id)
                    .arg(ONLINE_TTL)
                    .invoke(c)
                    .await
            })
            .await?;
        match text(&r).as_str() {
            "OK" => Ok(u64::from(rec.ttl)),
            "TAKEN" => Err(StoreError::Taken),
            _ => Err(StoreError::Unavailable),
        }
    }

    async fn unregister(&self, id: &str, owner: &Owner, _now: u64) -> Result<bool, StoreError> {
        let script = &self.scripts.unregister;
        let r = self
            .run(async |c| {
                script
                    .key(agent_key(id))
                    .key("bc:dir")
                    .arg(hex(owner))
                    .arg(id)
                    .invoke(c)
                    .await
            })
            .await?;
        match text(&r).as_str() {
            "OK" => Ok(true),
            "NONE" => Ok(false),
            "TAKEN" => Err(StoreError::Taken),
            _ => Err(StoreError::Unavailable),
        }
    }

    async fn lookup(&self, id: &str, now: u64) -> Result<Option<AgentView>, StoreError> {
        let script = &self.scripts.lookup;
        let fields = self
            .run(async |c| script.key(agent_key(id)).invoke(c).await)
            .await?
            .into_array();
        Ok(self.view(id, &fields, now))
    }

    async fn list(
        &self,
        online_only: bool,
        limit: usize,
        cursor: Option<&str>,
        now: u64,
    ) -> Result<Page, StoreError> {
        let mut page = Page::default();
        let mut from = cursor
            .map(|c| format!("({c}"))
            .unwrap_or_else(|| "-".into());
        // Bounded work per request: at most 10 batches.
        for _ in 0..10 {
            let batch = limit * 2;
            let ids: Vec<String> = self
                .run(async |c| {
                    c.query(
                        Cmd::new("ZRANGE")
                            .arg("bc:dir")
                            .arg(&from)
                            .arg("+")
                            .arg("BYLEX")
                            .arg("LIMIT")
                            .arg(0u64)
                            .arg(batch),
                    )
                    .await
                })
                .await?
                .into_array()
                .iter()
                .map(text)
                .collect();
            let exhausted = ids.len() < batch;
            for id in &ids {
                from = format!("({id}");
                match self.lookup(id, now).await? {
                    Some(v) if v.rec.listed && (!online_only || v.online) => {
                        page.agents.push(v);
                        if page.agents.len() == limit {
                            page.next_cursor = Some(id.clone());
                            return Ok(page);
                        }
                    }
                    Some(_) => {}
                    None => {
                        // Expired: drop it from the directory as we pass.
                        let stale = id.clone();
                        let _ = self
                            .run(async |c| {
                                c.query(Cmd::new("ZREM").arg("bc:dir").arg(&stale)).await
                            })
                            .await;
                    }
                }
            }
            if exhausted {
                return Ok(page);
            }
        }
        page.next_cursor = from.strip_prefix('(').map(str::to_string);
        Ok(page)
    }

    async fn attach(&self, rec: Record, _now: u64) -> Result<Attached, StoreError> {
        let script = &self.scripts.attach;
        let me = self.me.clone();
        let r = self
            .run(async |c| {
                script
                    .key(agent_key(&rec.agent_id))
                    .arg(hex(&rec.owner))
                    .arg(rec.max_calls)
                    .arg(rec.ttl)
                    .arg(&*me)
                    .arg(ONLINE_TTL)
                    .invoke(c)
                    .await
            })
            .await?
            .into_array();
        match r.first().map(text).as_deref() {
            Some("OK") => {
                let prev = r.get(2).map(text).unwrap_or_default();
                let alive = r.get(3).map(int).unwrap_or(0) == 1;
                Ok(Attached {
                    max_calls: r.get(1).map(|v| int(v) as u8).unwrap_or(1).max(1),
                    moved_from: (alive && !prev.is_empty()).then(|| prev.as_str().into()),
                })
            }
            Some("TAKEN") => Err(StoreError::Taken),
            _ => Err(StoreError::Unavailable),
        }
    }

    async fn detach(&self, id: &str, now: u64) -> Result<(), StoreError> {
        let script = &self.scripts.detach;
        let me = self.me.clone();
        self.run(async |c| script.key(agent_key(id)).arg(&*me).arg(now).invoke(c).await)
            .await?;
        Ok(())
    }

    fn expire(&self, _now: u64) -> usize {
        // Redis expires keys itself.
        0
    }

    fn gauges(&self) -> StoreGauges {
        StoreGauges {
            registered: self.registered.get(),
            online: 0,
            capacity: 0,
        }
    }
}
