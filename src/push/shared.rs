//! Push subscriptions in Redis, for daemons sharing a store: the same caps
//! as the memory table, each change one Lua script (atomic across daemons).
//!
//! Layout: `bc:ps:{id}` hash (agent, endpoint, p256dh, auth, events,
//! client, exp; expires with the subscription), `bc:pa:{agent}` and
//! `bc:pi:{client}` sorted sets of ids by expiry (per-agent fan-out and
//! caps), `bc:pk:{agent}` hash endpoint → id (renewal), `bc:pall` (total
//! cap), `bc:pon:{agent}` (the `online` debounce), `bc:push:vapid` (the
//! cluster's VAPID key: a subscription is bound to one key, and the bot may
//! come online on any daemon).

#![cfg(feature = "redis")]

use std::collections::HashMap;

use botcall_core::id::AgentId;

use super::subs::{Caps, Events, Sub, SubError};
use super::vapid::b64url;
use crate::store::StoreError;
use crate::store::client::Script;
use crate::store::redis::RedisStore;
use crate::store::resp::{Cmd, Reply};

const UPSERT: &str = r#"
local pa = 'bc:pa:' .. ARGV[2]
local pk = 'bc:pk:' .. ARGV[2]
local now = tonumber(ARGV[9])
redis.call('ZREMRANGEBYSCORE', 'bc:pall', '-inf', now)
redis.call('ZREMRANGEBYSCORE', pa, '-inf', now)
local id = redis.call('HGET', pk, ARGV[3])
local fresh = 0
if not (id and redis.call('EXISTS', 'bc:ps:' .. id) == 1) then
  local pi = 'bc:pi:' .. ARGV[7]
  redis.call('ZREMRANGEBYSCORE', pi, '-inf', now)
  if redis.call('ZCARD', 'bc:pall') >= tonumber(ARGV[10]) then return {'FULL'} end
  if redis.call('ZCARD', pi) >= tonumber(ARGV[12]) then return {'CLIENT'} end
  if redis.call('ZCARD', pa) >= tonumber(ARGV[11]) then return {'AGENT'} end
  id = ARGV[1]
  fresh = 1
  redis.call('HSET', pk, ARGV[3], id)
  redis.call('HSET', 'bc:ps:' .. id, 'client', ARGV[7])
end
local ps = 'bc:ps:' .. id
local client = redis.call('HGET', ps, 'client')
redis.call('HSET', ps, 'agent', ARGV[2], 'endpoint', ARGV[3], 'p256dh', ARGV[4], 'auth', ARGV[5],
  'events', ARGV[6], 'exp', ARGV[8])
redis.call('EXPIREAT', ps, ARGV[8])
redis.call('ZADD', 'bc:pall', ARGV[8], id)
redis.call('ZADD', pa, ARGV[8], id)
redis.call('ZADD', 'bc:pi:' .. client, ARGV[8], id)
for _, k in ipairs({pa, pk, 'bc:pi:' .. client}) do redis.call('EXPIREAT', k, ARGV[8]) end
return {'OK', id, fresh}
"#;

const REMOVE: &str = r#"
local id = ARGV[1]
if id == '' then id = redis.call('HGET', 'bc:pk:' .. ARGV[2], ARGV[3]) end
if not id then return 0 end
local ps = 'bc:ps:' .. id
local h = redis.call('HMGET', ps, 'agent', 'endpoint', 'client')
redis.call('ZREM', 'bc:pall', id)
if not h[1] then return 0 end
redis.call('DEL', ps)
redis.call('ZREM', 'bc:pa:' .. h[1], id)
redis.call('HDEL', 'bc:pk:' .. h[1], h[2])
redis.call('ZREM', 'bc:pi:' .. h[3], id)
return 1
"#;

const FOR_AGENT: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', 'bc:pa:' .. ARGV[1], ARGV[2], '+inf', 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', 'bc:ps:' .. id)
  if #h > 0 then
    table.insert(h, 'id')
    table.insert(h, id)
    table.insert(out, h)
  end
end
return out
"#;

fn text(v: &Reply) -> String {
    v.text()
}

fn b64_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut buf = [0u8; 100];
    botcall_core::b64::decode(s.as_bytes(), &mut buf)
        .ok()?
        .try_into()
        .ok()
}

/// A subscription from its hash fields (plus `id`).
fn sub_of(fields: &[Reply]) -> Option<Sub> {
    let mut m = HashMap::new();
    for kv in fields.chunks(2) {
        if let [k, v] = kv {
            m.insert(text(k), text(v));
        }
    }
    let get = |k: &str| m.get(k).cloned().unwrap_or_default();
    Some(Sub {
        id: get("id"),
        agent: AgentId::new(&get("agent")).ok()?,
        endpoint: get("endpoint"),
        p256dh: b64_array(&get("p256dh"))?,
        auth: b64_array(&get("auth"))?,
        events: Events(get("events").parse().ok()?),
        client: get("client"),
        expires: get("exp").parse().ok()?,
    })
}

fn unavailable(_: StoreError) -> SubError {
    SubError::Unavailable
}

/// Adds or renews `sub`; the id and whether it is new.
pub(crate) async fn upsert(
    r: &RedisStore,
    sub: &Sub,
    caps: Caps,
    now: u64,
) -> Result<(String, bool), SubError> {
    let script = Script::new(UPSERT);
    let reply = r
        .run(async |c| {
            script
                .prepare_invoke()
                .arg(&sub.id)
                .arg(sub.agent.as_str())
                .arg(&sub.endpoint)
                .arg(b64url(&sub.p256dh))
                .arg(b64url(&sub.auth))
                .arg(sub.events.0)
                .arg(&sub.client)
                .arg(sub.expires)
                .arg(now)
                .arg(caps.total)
                .arg(caps.per_agent)
                .arg(caps.per_client)
                .invoke(c)
                .await
        })
        .await
        .map_err(unavailable)?
        .into_array();
    match reply.first().map(text).as_deref() {
        Some("OK") => Ok((
            reply.get(1).map(text).unwrap_or_default(),
            reply.get(2).map(text).as_deref() == Some("1"),
        )),
        Some("FULL") => Err(SubError::Full),
        Some("CLIENT") => Err(SubError::PerClient),
        Some("AGENT") => Err(SubError::PerAgent),
        _ => Err(SubError::Unavailable),
    }
}

/// Removes by id, or (id empty) by agent and endpoint; whether it existed.
pub(crate) async fn remove(
    r: &RedisStore,
    id: &str,
    agent: &str,
    endpoint: &str,
) -> Result<bool, SubError> {
    let script = Script::new(REMOVE);
    let n = r
        .run(async |c| {
            script
                .prepare_invoke()
                .arg(id)
                .arg(agent)
                .arg(endpoint)
                .invoke(c)
                .await
        })
        .await
        .map_err(unavailable)?;
    Ok(n.int() == 1)
}

/// One subscription by id.
pub(crate) async fn get(r: &RedisStore, id: &str, now: u64) -> Result<Option<Sub>, SubError> {
    let key = format!("bc:ps:{id}");
    let mut fields = r
        .run(async |c| c.query(Cmd::new("HGETALL").arg(&key)).await)
        .await
        .map_err(unavailable)?
        .into_array();
    if fields.is_empty() {
        return Ok(None);
    }
    fields.push(Reply::Status("id".into()));
    fields.push(Reply::Status(id.into()));
    Ok(sub_of(&fields).filter(|s| s.expires > now))
}

/// The agent's live subscribers to `event` (at most `max`).
pub(crate) async fn for_agent(
    r: &RedisStore,
    agent: &str,
    event: Events,
    now: u64,
    max: usize,
) -> Result<Vec<Sub>, SubError> {
    let script = Script::new(FOR_AGENT);
    let rows = r
        .run(async |c| {
            script
                .prepare_invoke()
                .arg(agent)
                .arg(now + 1)
                .arg(max)
                .invoke(c)
                .await
        })
        .await
        .map_err(unavailable)?
        .into_array();
    Ok(rows
        .into_iter()
        .filter_map(|f| sub_of(&f.into_array()))
        .filter(|s| s.events.has(event))
        .collect())
}

/// Takes the cluster-wide `online` debounce for `agent`: `true` if this
/// daemon may notify (nobody did within `secs`).
pub(crate) async fn debounce(r: &RedisStore, agent: &str, secs: u64) -> Result<bool, SubError> {
    if secs == 0 {
        return Ok(true);
    }
    let key = format!("bc:pon:{agent}");
    let set = r
        .run(async |c| {
            c.query(
                Cmd::new("SET")
                    .arg(&key)
                    .arg(1u64)
                    .arg("NX")
                    .arg("EX")
                    .arg(secs),
            )
            .await
        })
        .await
        .map_err(unavailable)?;
    Ok(set != Reply::Nil)
}

/// The cluster's VAPID key: ours (`local`, a private JWK) if none is
/// stored yet, else the stored one, which every daemon then uses.
pub(crate) async fn cluster_vapid_key(r: &RedisStore, local: &str) -> Result<String, StoreError> {
    let local = local.to_string();
    let key = r
        .run(async |c| {
            c.query(Cmd::new("SET").arg("bc:push:vapid").arg(&local).arg("NX"))
                .await?;
            c.query(Cmd::new("GET").arg("bc:push:vapid")).await
        })
        .await?;
    match key {
        Reply::Bulk(_) => Ok(text(&key)),
        // Gone between SET NX and GET (a flush): ours.
        _ => Ok(local),
    }
}
