//! Push subscriptions: what a browser hands us (`PushSubscription.toJSON()`
//! plus the agent and the events it wants), checked field by field, and
//! the bounded in-memory table (total, per-agent and per-client caps; a
//! full table is an `Err`, never an eviction). The Redis table with the same
//! rules is in [`super::shared`].

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use botcall_core::b64;
use botcall_core::id::AgentId;
use botcall_core::json::{self, Object, Value};

use super::ece;

/// Longest endpoint URL accepted (FCM's are ~180 bytes, Apple's ~250).
pub(crate) const MAX_ENDPOINT: usize = 1024;

/// Events a subscriber can ask for (a bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Events(pub(crate) u8);

impl Events {
    pub(crate) const ONLINE: Events = Events(1);
    pub(crate) const CALLBACK: Events = Events(2);

    pub(crate) fn has(self, e: Events) -> bool {
        self.0 & e.0 != 0
    }
}

/// Why a subscription request was refused: the JSON `code` and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubError {
    /// 400: a field is missing, of the wrong type or out of range.
    BadField(String),
    /// 400: the endpoint is not an `https://` URL we may post to.
    BadEndpoint(&'static str),
    /// 400: `p256dh` or `auth` has the wrong size or curve.
    BadKey(ece::EceError),
    /// 404: no such agent.
    UnknownAgent,
    /// 429: this client holds its maximum of subscriptions.
    PerClient,
    /// 429: this agent has its maximum of subscribers.
    PerAgent,
    /// 503: the table is full.
    Full,
    /// 503: the shared store is unavailable.
    Unavailable,
}

impl SubError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            SubError::BadField(_) | SubError::BadEndpoint(_) | SubError::BadKey(_) => 400,
            SubError::UnknownAgent => 404,
            SubError::PerClient | SubError::PerAgent => 429,
            SubError::Full | SubError::Unavailable => 503,
        }
    }
    pub(crate) fn code(&self) -> &'static str {
        match self {
            SubError::BadField(_) => "bad_field",
            SubError::BadEndpoint(_) => "bad_endpoint",
            SubError::BadKey(_) => "bad_key",
            SubError::UnknownAgent => "unknown_agent",
            SubError::PerClient => "too_many_subscriptions",
            SubError::PerAgent => "agent_subscriptions_full",
            SubError::Full => "push_table_full",
            SubError::Unavailable => "store_unavailable",
        }
    }
    pub(crate) fn message(&self) -> String {
        match self {
            SubError::BadField(m) => m.clone(),
            SubError::BadEndpoint(m) => (*m).to_string(),
            SubError::BadKey(e) => e.to_string(),
            SubError::UnknownAgent => "no such agent".into(),
            SubError::PerClient => "too many push subscriptions from your address".into(),
            SubError::PerAgent => "this agent has too many push subscribers".into(),
            SubError::Full => "the push subscription table is full".into(),
            SubError::Unavailable => "the store is unavailable, try again".into(),
        }
    }
}

/// A push service URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, starting with `/`.
    pub(crate) path: String,
    /// `scheme://host[:port]`: the VAPID `aud`.
    pub(crate) origin: String,
}

impl Endpoint {
    /// Parses `url`: `https://host[:port]/path` only; `http://` to a
    /// loopback address only when `allow_loopback` (tests).
    pub(crate) fn parse(url: &str, allow_loopback: bool) -> Result<Endpoint, SubError> {
        let bad = SubError::BadEndpoint;
        if url.len() > MAX_ENDPOINT {
            return Err(bad("endpoint is longer than 1024 bytes"));
        }
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("endpoint has spaces or non-ASCII characters"));
        }
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("endpoint must be an https:// URL"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if path.contains('#') {
            return Err(bad("endpoint has a fragment"));
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("endpoint has no host, or has user info"));
        }
        let (host, port) =
            split_host_port(authority).ok_or(bad("endpoint host or port is invalid"))?;
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        let loopback = is_loopback_host(&host);
        let loopback_ok = allow_loopback && loopback;
        if !tls && !loopback_ok {
            return Err(bad("endpoint must be an https:// URL"));
        }
        if is_ip_literal(&host) && !loopback_ok {
            return Err(bad(
                "endpoint must name a push service host, not an IP address",
            ));
        }
        let scheme = if tls { "https" } else { "http" };
        let default = if tls { 443 } else { 80 };
        let origin = if port == default {
            format!("{scheme}://{}", bracket(&host))
        } else {
            format!("{scheme}://{}:{port}", bracket(&host))
        };
        Ok(Endpoint {
            tls,
            host,
            port,
            path,
            origin,
        })
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn is_ip_literal(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
}

fn is_loopback_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (host, port). Host names are
/// lowercased LDH labels.
fn split_host_port(a: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(r) = a.strip_prefix('[') {
        let (h, after) = r.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h.to_string(), port)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (a.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return None,
        },
        None => None,
    };
    if !host.contains(':') {
        let ok = host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            return None;
        }
    }
    Some((host.to_ascii_lowercase(), port))
}

/// A checked subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sub {
    /// Our id for it: 22 base64url characters (128 random bits).
    pub(crate) id: String,
    pub(crate) agent: AgentId,
    pub(crate) endpoint: String,
    pub(crate) p256dh: [u8; 65],
    pub(crate) auth: [u8; 16],
    pub(crate) events: Events,
    /// The client that made it (per-client cap), as text.
    pub(crate) client: String,
    /// Unix time it lapses unless renewed.
    pub(crate) expires: u64,
}

/// The request body of `POST` / `DELETE /v1/push/subscriptions`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubRequest {
    pub(crate) agent: AgentId,
    pub(crate) endpoint: String,
    /// `POST` only.
    pub(crate) keys: Option<([u8; 65], [u8; 16])>,
    pub(crate) events: Events,
}

fn b64_field<const N: usize>(v: Option<Value<'_>>, name: &str) -> Result<[u8; N], SubError> {
    let Some(Value::Str(text)) = v else {
        return Err(SubError::BadField(format!(
            "keys.{name} must be a base64url string"
        )));
    };
    // Browsers write base64url without padding; some libraries add it.
    let text = text.to_string();
    let text = text.trim_end_matches('=');
    let mut buf = [0u8; 100];
    let bytes = if text.len() <= 132 {
        b64::decode(text.as_bytes(), &mut buf).ok()
    } else {
        None
    };
    let Some(bytes) = bytes else {
        return Err(SubError::BadField(format!("keys.{name} is not base64url")));
    };
    bytes.try_into().map_err(|_| {
        SubError::BadKey(if name == "auth" {
            ece::EceError::BadAuthSecret
        } else {
            ece::EceError::BadPublicKey
        })
    })
}

/// A string member, unescaped; `None` if absent or not a string.
fn str_member(o: Option<Object<'_>>, key: &str) -> Option<String> {
    match o?.get(key)? {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn obj(v: Option<Value<'_>>) -> Option<Object<'_>> {
    match v? {
        Value::Obj(o) => Some(o),
        _ => None,
    }
}

impl SubRequest {
    /// Parses and checks a request body; `with_keys` for `POST`.
    pub(crate) fn parse(
        body: &[u8],
        with_keys: bool,
        allow_loopback: bool,
    ) -> Result<SubRequest, SubError> {
        let bad = |m: &str| SubError::BadField(m.to_string());
        let text = std::str::from_utf8(body).map_err(|_| bad("body is not UTF-8 JSON"))?;
        let v = json::parse(text).map_err(|e| bad(&format!("body is not JSON: {e}")))?;
        let top = obj(Some(v));
        let agent = str_member(top, "agent_id").ok_or_else(|| bad("agent_id must be a string"))?;
        let agent = AgentId::new(&agent)
            .map_err(|_| bad("agent_id: 1-64 characters of A-Z a-z 0-9 . _ -"))?;
        // The subscription object, or (DELETE) just its endpoint.
        let sub = match top.and_then(|t| t.get("subscription")) {
            Some(s) => obj(Some(s)),
            None => top,
        };
        let endpoint = str_member(sub, "endpoint")
            .ok_or_else(|| bad("subscription.endpoint must be a string"))?;
        Endpoint::parse(&endpoint, allow_loopback)?;
        let mut events = Events::default();
        if with_keys {
            let Some(Value::Arr(list)) = top.and_then(|t| t.get("events")) else {
                return Err(bad("events must be a list of \"online\" and \"callback\""));
            };
            for e in list.iter() {
                events.0 |= match e {
                    Value::Str(s) if s.eq_str("online") => Events::ONLINE.0,
                    Value::Str(s) if s.eq_str("callback") => Events::CALLBACK.0,
                    _ => return Err(bad("events may hold only \"online\" and \"callback\"")),
                };
            }
            if events.0 == 0 {
                return Err(bad(
                    "events must name at least one of \"online\", \"callback\"",
                ));
            }
        }
        let keys = if with_keys {
            let k = sub
                .and_then(|s| s.get("keys"))
                .ok_or_else(|| bad("subscription.keys {p256dh, auth} is missing"))?;
            let k = obj(Some(k));
            let p256dh: [u8; 65] = b64_field(k.and_then(|k| k.get("p256dh")), "p256dh")?;
            ece::parse_ua_public(&p256dh).map_err(SubError::BadKey)?;
            let auth: [u8; 16] = b64_field(k.and_then(|k| k.get("auth")), "auth")?;
            Some((p256dh, auth))
        } else {
            None
        };
        Ok(SubRequest {
            agent,
            endpoint,
            keys,
            events,
        })
    }
}

/// Caps on the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) total: usize,
    pub(crate) per_agent: usize,
    pub(crate) per_client: usize,
}

/// The in-memory table: by id, by agent, by (agent, endpoint), per client.
#[derive(Debug)]
pub(crate) struct Table {
    caps: Caps,
    by_id: HashMap<String, Sub>,
    by_agent: HashMap<AgentId, Vec<String>>,
    /// (agent, endpoint) → id, keyed by a keyed hash of both (the endpoint,
    /// most of a subscription's bytes, is stored once, in `by_id`).
    by_endpoint: HashMap<u64, String>,
    per_client: HashMap<String, usize>,
    hasher: RandomState,
}

impl Table {
    pub(crate) fn new(caps: Caps) -> Self {
        Table {
            caps,
            by_id: HashMap::new(),
            by_agent: HashMap::new(),
            by_endpoint: HashMap::new(),
            per_client: HashMap::new(),
            hasher: RandomState::new(),
        }
    }

    fn endpoint_key(&self, agent: &str, endpoint: &str) -> u64 {
        self.hasher.hash_one((agent, endpoint))
    }

    /// The id of the (agent, endpoint) subscription, if there is one.
    fn find(&self, agent: &str, endpoint: &str) -> Option<&String> {
        let id = self.by_endpoint.get(&self.endpoint_key(agent, endpoint))?;
        // A 64-bit keyed hash: a collision is as likely as guessing the key.
        self.by_id
            .get(id)
            .filter(|s| s.agent.as_str() == agent && s.endpoint == endpoint)
            .map(|s| &s.id)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Adds `sub`, or renews the subscription with the same agent and
    /// endpoint (new keys, events and expiry, same id). Returns the id.
    pub(crate) fn upsert(&mut self, mut sub: Sub) -> Result<String, SubError> {
        if let Some(id) = self.find(&sub.agent, &sub.endpoint).cloned() {
            let old = self.by_id.get_mut(&id).ok_or(SubError::Unavailable)?;
            sub.id = old.id.clone();
            sub.client = old.client.clone();
            *old = sub;
            return Ok(id);
        }
        let key = self.endpoint_key(&sub.agent, &sub.endpoint);
        if self.by_endpoint.contains_key(&key) {
            // Another subscription's hash: not worth a second index.
            return Err(SubError::Full);
        }
        if self.by_id.len() >= self.caps.total {
            return Err(SubError::Full);
        }
        if self.per_client.get(&sub.client).copied().unwrap_or(0) >= self.caps.per_client {
            return Err(SubError::PerClient);
        }
        if self.by_agent.get(&sub.agent).map_or(0, Vec::len) >= self.caps.per_agent {
            return Err(SubError::PerAgent);
        }
        let id = sub.id.clone();
        *self.per_client.entry(sub.client.clone()).or_insert(0) += 1;
        self.by_agent
            .entry(sub.agent.clone())
            .or_default()
            .push(id.clone());
        self.by_endpoint.insert(key, id.clone());
        self.by_id.insert(id.clone(), sub);
        Ok(id)
    }

    /// Removes the subscription with this id; whether it existed.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let Some(sub) = self.by_id.remove(id) else {
            return false;
        };
        if let Some(ids) = self.by_agent.get_mut(&sub.agent) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_agent.remove(&sub.agent);
            }
        }
        let key = self.endpoint_key(&sub.agent, &sub.endpoint);
        self.by_endpoint.remove(&key);
        if let Some(n) = self.per_client.get_mut(&sub.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&sub.client);
            }
        }
        true
    }

    /// Removes the (agent, endpoint) subscription; whether it existed.
    pub(crate) fn remove_endpoint(&mut self, agent: &AgentId, endpoint: &str) -> bool {
        match self.find(agent, endpoint).cloned() {
            Some(id) => self.remove(&id),
            None => false,
        }
    }

    pub(crate) fn get(&self, id: &str, now: u64) -> Option<Sub> {
        self.by_id.get(id).filter(|s| s.expires > now).cloned()
    }

    /// The agent's live subscribers to `event`.
    pub(crate) fn for_agent(&self, agent: &str, event: Events, now: u64) -> Vec<Sub> {
        let Ok(agent) = AgentId::new(agent) else {
            return Vec::new();
        };
        self.by_agent
            .get(&agent)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
            .filter(|s| s.events.has(event) && s.expires > now)
            .cloned()
            .collect()
    }

    /// Drops lapsed subscriptions; how many.
    pub(crate) fn expire(&mut self, now: u64) -> usize {
        let dead: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.expires <= now)
            .map(|s| s.id.clone())
            .collect();
        for id in &dead {
            self.remove(id);
        }
        dead.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::vapid::b64url;
    use p256::elliptic_curve::sec1::ToSec1Point;

    fn ua_key() -> String {
        let sk = p256::SecretKey::from_slice(&[9u8; 32]).unwrap();
        b64url(sk.public_key().to_sec1_point(false).as_bytes())
    }

    fn body(endpoint: &str, p256dh: &str, auth: &str, events: &str) -> Vec<u8> {
        format!(
            r#"{{"agent_id":"echo_bot","subscription":{{"endpoint":"{endpoint}","expirationTime":null,"keys":{{"p256dh":"{p256dh}","auth":"{auth}"}}}},"events":{events}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("https://fcm.googleapis.com/fcm/send/abc:def", false).unwrap();
        assert_eq!(
            (
                e.tls,
                e.host.as_str(),
                e.port,
                e.path.as_str(),
                e.origin.as_str()
            ),
            (
                true,
                "fcm.googleapis.com",
                443,
                "/fcm/send/abc:def",
                "https://fcm.googleapis.com"
            )
        );
        let e = Endpoint::parse("https://Push.Example:8443", false).unwrap();
        assert_eq!(
            (e.origin.as_str(), e.path.as_str()),
            ("https://push.example:8443", "/")
        );
        let e = Endpoint::parse("http://127.0.0.1:9000/p/1?x=1", true).unwrap();
        assert_eq!(
            (e.origin.as_str(), e.path.as_str()),
            ("http://127.0.0.1:9000", "/p/1?x=1")
        );
        let e = Endpoint::parse("http://[::1]:9000/p", true).unwrap();
        assert_eq!(e.origin, "http://[::1]:9000");
        for (url, loopback) in [
            ("http://127.0.0.1:9000/p", false),
            ("http://push.example/p", true),
            ("http://10.0.0.1/p", true),
            ("https://127.0.0.1/p", false),
            ("https://[::1]/p", false),
            ("ftp://push.example/p", false),
            ("https://user@push.example/p", false),
            ("https://push.example:0/p", false),
            ("https://push.example:99999/p", false),
            ("https://push..example/p", false),
            ("https://push.example/p#frag", false),
            ("https://push example/p", false),
            ("https:///p", false),
        ] {
            assert!(Endpoint::parse(url, loopback).is_err(), "{url}");
        }
        let long = format!("https://push.example/{}", "a".repeat(MAX_ENDPOINT));
        assert!(Endpoint::parse(&long, false).is_err());
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let k = ua_key();
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        let ok = SubRequest::parse(
            &body(
                "https://push.example/x",
                &k,
                auth,
                r#"["online","callback"]"#,
            ),
            true,
            false,
        )
        .unwrap();
        assert_eq!(ok.events, Events(3));
        assert_eq!(ok.agent.as_str(), "echo_bot");
        let code = |b: Vec<u8>| SubRequest::parse(&b, true, false).unwrap_err().code();
        assert_eq!(
            code(body("http://push.example/x", &k, auth, r#"["online"]"#)),
            "bad_endpoint"
        );
        assert_eq!(
            code(body(
                "https://push.example/x",
                &k[..80],
                auth,
                r#"["online"]"#
            )),
            "bad_key"
        );
        assert_eq!(
            code(body(
                "https://push.example/x",
                &k,
                "BTBZMqHH6r4Tts7J_aSI",
                r#"["online"]"#
            )),
            "bad_key"
        );
        // A point on another curve / off P-256.
        let mut off = k.clone().into_bytes();
        off[60] = if off[60] == b'A' { b'B' } else { b'A' };
        let off = String::from_utf8(off).unwrap();
        assert_eq!(
            code(body("https://push.example/x", &off, auth, r#"["online"]"#)),
            "bad_key"
        );
        assert_eq!(
            code(body("https://push.example/x", &k, auth, r#"["dance"]"#)),
            "bad_field"
        );
        assert_eq!(
            code(body("https://push.example/x", &k, auth, "[]")),
            "bad_field"
        );
        assert_eq!(code(b"{".to_vec()), "bad_field");
        assert_eq!(code(br#"{"agent_id":"a/b"}"#.to_vec()), "bad_field");
        // DELETE needs only the agent and the endpoint.
        let del = SubRequest::parse(
            br#"{"agent_id":"echo_bot","endpoint":"https://push.example/x"}"#,
            false,
            false,
        )
        .unwrap();
        assert_eq!(del.keys, None);
        // JSON escapes are decoded (botcall-core's reader, as serde_json did).
        let esc = SubRequest::parse(
            br#"{"agent_id":"echo\u005fbot","endpoint":"https:\/\/push.example\/x"}"#,
            false,
            false,
        )
        .unwrap();
        assert_eq!(
            (esc.agent.as_str(), esc.endpoint.as_str()),
            ("echo_bot", "https://push.example/x")
        );
        // The reader's strictness: a repeated key is refused, and said so.
        let twice =
            br#"{"agent_id":"echo_bot","agent_id":"x","endpoint":"https://push.example/x"}"#;
        match SubRequest::parse(twice, false, false) {
            Err(SubError::BadField(m)) => assert!(m.contains("duplicate key"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    fn sub(id: &str, agent: &str, endpoint: &str, client: &str) -> Sub {
        Sub {
            id: id.into(),
            agent: AgentId::new(agent).unwrap(),
            endpoint: endpoint.into(),
            p256dh: [4; 65],
            auth: [0; 16],
            events: Events::ONLINE,
            client: client.into(),
            expires: 100,
        }
    }

    #[test]
    fn table_caps_renewal_and_removal() {
        let mut t = Table::new(Caps {
            total: 4,
            per_agent: 2,
            per_client: 3,
        });
        assert_eq!(t.upsert(sub("1", "a", "https://p/1", "ip1")).unwrap(), "1");
        // Same agent and endpoint: renewed in place, same id.
        let mut again = sub("9", "a", "https://p/1", "ip2");
        again.events = Events(3);
        assert_eq!(t.upsert(again).unwrap(), "1");
        assert_eq!(t.len(), 1);
        assert_eq!(t.get("1", 0).unwrap().events, Events(3));
        t.upsert(sub("2", "a", "https://p/2", "ip1")).unwrap();
        assert_eq!(
            t.upsert(sub("3", "a", "https://p/3", "ip1")),
            Err(SubError::PerAgent)
        );
        t.upsert(sub("3", "b", "https://p/3", "ip1")).unwrap();
        assert_eq!(
            t.upsert(sub("4", "c", "https://p/4", "ip1")),
            Err(SubError::PerClient)
        );
        t.upsert(sub("4", "c", "https://p/4", "ip2")).unwrap();
        assert_eq!(
            t.upsert(sub("5", "d", "https://p/5", "ip3")),
            Err(SubError::Full)
        );
        assert_eq!(t.for_agent("a", Events::ONLINE, 0).len(), 2);
        assert_eq!(t.for_agent("a", Events::CALLBACK, 0).len(), 1);
        assert!(t.remove_endpoint(&AgentId::new("a").unwrap(), "https://p/1"));
        assert!(!t.remove("1"));
        t.upsert(sub("5", "d", "https://p/5", "ip1")).unwrap();
        assert_eq!(t.expire(100), 4);
        assert_eq!(t.len(), 0);
        assert!(t.per_client.is_empty() && t.by_agent.is_empty() && t.by_endpoint.is_empty());
    }
}
