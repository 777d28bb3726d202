//! The keys file: which key verifies which agent's BotAuth tokens.
//!
//! ```json
//! {"agents": {"weather-bot": {"kty":"oct","k":"<base64url secret>"},
//!             "pi-kitchen":  {"kty":"EC","crv":"P-256","x":"…","y":"…"}},
//!  "fleets": [{"prefix": "fleet-7.", "key": {"kty":"EC", …}}]}
//! ```
//! A fleet entry gives one key to every id under its prefix (`fleet-7.*`),
//! so 10,000 devices need one line, not 10,000. An exact agent entry wins
//! over fleets; the longest matching prefix wins among fleets.

use std::collections::HashMap;

use botcall_core::id;
use botcall_core::json::{self, Object, Value};
use botcall_core::jwt::Key;
use sha2::{Digest, Sha256};

use crate::ids::Owner;

/// Parsed keys file.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    agents: HashMap<String, (Key, Owner)>,
    /// Sorted by prefix length, longest first.
    fleets: Vec<(String, Key, Owner)>,
}

/// A key with its owner tag computed once, at load.
fn owned(k: Key) -> (Key, Owner) {
    let o = owner_of(&k);
    (k, o)
}

/// A JWK member, read with the wire reader's strictness (a key repeated
/// inside a JWK is refused).
fn jwk(v: Value<'_>, what: &str) -> Result<Key, String> {
    let Value::Obj(o) = v else {
        return Err(format!("{what}: must be a JWK object"));
    };
    Key::from_jwk(o.raw()).map_err(|e| format!("{what}: {e}"))
}

/// A keys file lists any number of agents: no member cap, and repeated keys
/// are found here in O(n) instead of by the reader's O(n²) check.
const FILE_LIMITS: json::Limits = json::Limits {
    max_members: usize::MAX,
    unique_keys: false,
};

/// The members `names` of `o`, each at most once (`at` prefixes the error);
/// another member is an error if `strict`, else ignored.
fn pick<'a, const N: usize>(
    o: Object<'a>,
    names: [&str; N],
    at: &str,
    strict: bool,
) -> Result<[Option<Value<'a>>; N], String> {
    let mut out = [None; N];
    for (k, v) in o.iter() {
        match names.iter().position(|n| k.eq_str(n)) {
            Some(i) if out[i].replace(v).is_some() => {
                return Err(format!("{at}`{}` is given twice", names[i]));
            }
            Some(_) => {}
            None if strict => {
                return Err(format!(
                    "{at}unknown top-level key `{}` (expected {})",
                    k.to_string(),
                    names.join(", ")
                ));
            }
            None => {}
        }
    }
    Ok(out)
}

impl Keys {
    /// Parses the keys file text.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let doc = json::parse_with(text, FILE_LIMITS).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Obj(obj) = doc else {
            return Err("must be a JSON object".into());
        };
        let mut keys = Keys::default();
        let [agents, fleets] = pick(obj, ["agents", "fleets"], "", true)?;
        if let Some(agents) = agents {
            let Value::Obj(agents) = agents else {
                return Err("`agents` must be an object of id → JWK".into());
            };
            for (agent, v) in agents.iter() {
                let agent = agent.to_string();
                id::validate(&agent).map_err(|e| format!("agents.{agent}: {e}"))?;
                let key = owned(jwk(v, &format!("agents.{agent}"))?);
                if keys.agents.insert(agent.clone(), key).is_some() {
                    return Err(format!("agents.{agent} is listed twice"));
                }
            }
        }
        if let Some(fleets) = fleets {
            let Value::Arr(fleets) = fleets else {
                return Err("`fleets` must be an array".into());
            };
            for (i, f) in fleets.iter().enumerate() {
                let Value::Obj(f) = f else {
                    return Err(format!("fleets[{i}]: must be an object {{prefix, key}}"));
                };
                let [prefix, key] = pick(f, ["prefix", "key"], &format!("fleets[{i}]: "), false)?;
                let prefix = match prefix {
                    Some(Value::Str(p)) => p.to_string(),
                    _ => return Err(format!("fleets[{i}]: `prefix` (string) is required")),
                };
                let prefix = prefix.strip_suffix('*').unwrap_or(&prefix);
                if prefix.is_empty()
                    || !prefix
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                {
                    return Err(format!(
                        "fleets[{i}]: prefix `{prefix}` must be non-empty id characters"
                    ));
                }
                let key = key.ok_or(format!("fleets[{i}]: `key` (JWK) is required"))?;
                let (key, owner) = owned(jwk(key, &format!("fleets[{i}].key"))?);
                keys.fleets.push((prefix.to_string(), key, owner));
            }
            keys.fleets.sort_by_key(|f| std::cmp::Reverse(f.0.len()));
        }
        Ok(keys)
    }

    /// Reads and parses a keys file.
    pub(crate) fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for id in keys.uncallable_hs256_ids() {
            crate::log_warn!(
                "keys file: {id} has an HS256 key and an id of 43 base64url characters, which \
                 callers read as an ES256 key thumbprint: they will refuse its unsigned answers \
                 (pick another id, or an ES256 key)"
            );
        }
        Ok(keys)
    }

    /// HS256 agents whose id has a thumbprint's shape: callers require
    /// signed answers from such ids, which an HS256 key cannot make.
    pub(crate) fn uncallable_hs256_ids(&self) -> impl Iterator<Item = &str> {
        self.agents
            .iter()
            .filter(|(id, (k, _))| {
                matches!(k, Key::Hs256(_)) && botcall_core::answer_sig::is_thumbprint_id(id)
            })
            .map(|(id, _)| id.as_str())
    }

    /// The key that verifies tokens for `agent_id`.
    /// The key that verifies tokens for `agent_id`, and its owner tag.
    pub(crate) fn for_agent(&self, agent_id: &str) -> Option<(&Key, Owner)> {
        self.agents.get(agent_id).map(|(k, o)| (k, *o)).or_else(|| {
            self.fleets
                .iter()
                .find(|(p, _, _)| agent_id.starts_with(p.as_str()) && agent_id.len() > p.len())
                .map(|(_, k, o)| (k, *o))
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.agents.len() + self.fleets.len()
    }
}

/// The owner tag of a key: a hash of its identity (never of a token).
pub(crate) fn owner_of(key: &Key) -> Owner {
    let mut h = Sha256::new();
    match key {
        Key::Hs256(s) => {
            h.update(b"HS256\0");
            h.update(s.as_bytes());
        }
        Key::Es256(vk) => {
            h.update(b"ES256\0");
            h.update(vk.to_sec1_point(false).as_bytes());
        }
    }
    let d = h.finalize();
    let mut o = [0u8; 8];
    o.copy_from_slice(&d[..8]);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
    const OCT: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

    #[test]
    fn agents_and_fleets() {
        let text = format!(
            r#"{{"agents":{{"a1":{OCT},"fleet-7.special":{OCT}}},"fleets":[{{"prefix":"fleet-7.*","key":{EC}}},{{"prefix":"fleet-","key":{OCT}}}]}}"#
        );
        let k = Keys::parse(&text).unwrap();
        assert!(matches!(k.for_agent("a1"), Some((Key::Hs256(_), _))));
        assert!(matches!(
            k.for_agent("fleet-7.dev42"),
            Some((Key::Es256(_), _))
        ));
        assert!(matches!(
            k.for_agent("fleet-7.special"),
            Some((Key::Hs256(_), _))
        ));
        assert!(matches!(k.for_agent("fleet-9"), Some((Key::Hs256(_), _))));
        assert!(k.for_agent("fleet-7.").is_some()); // matched by the shorter "fleet-" prefix
        assert!(k.for_agent("other").is_none());
        assert_ne!(
            k.for_agent("a1").unwrap().1,
            k.for_agent("fleet-7.x").unwrap().1
        );
    }

    #[test]
    fn hs256_bots_with_thumbprint_shaped_ids_are_named() {
        let hs = r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY"}"#;
        let tp = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let k = Keys::parse(&format!(
            r#"{{"agents":{{"{tp}":{hs},"{tp}x":{hs},"hs-bot":{hs}}}}}"#
        ))
        .unwrap();
        assert_eq!(k.uncallable_hs256_ids().collect::<Vec<_>>(), vec![tp]);
    }

    #[test]
    fn bad_files_name_the_problem() {
        assert!(Keys::parse("[]").unwrap_err().contains("object"));
        assert!(
            Keys::parse(r#"{"agent":{}}"#)
                .unwrap_err()
                .contains("unknown top-level key")
        );
        assert!(
            Keys::parse(r#"{"agents":{"a b":{}}}"#)
                .unwrap_err()
                .contains("agents.a b")
        );
        assert!(
            Keys::parse(r#"{"agents":{"a":{"kty":"oct","k":"c2hvcnQ"}}}"#)
                .unwrap_err()
                .contains("32 bytes")
        );
        assert!(
            Keys::parse(r#"{"fleets":[{"prefix":"*","key":{}}]}"#)
                .unwrap_err()
                .contains("prefix")
        );
    }
    #[test]
    fn thousands_of_agents_and_repeats() {
        // More agents than the wire reader's member cap, read in O(n).
        let many: Vec<String> = (0..5000).map(|i| format!(r#""bot-{i}":{OCT}"#)).collect();
        let k = Keys::parse(&format!(r#"{{"agents":{{{}}}}}"#, many.join(","))).unwrap();
        assert_eq!(k.len(), 5000);
        assert!(k.for_agent("bot-4999").is_some());
        for (text, needle) in [
            (
                format!(r#"{{"agents":{{"a":{OCT},"a":{EC}}}}}"#),
                "agents.a is listed twice",
            ),
            (
                format!(r#"{{"agents":{{"a":{OCT},"\u0061":{EC}}}}}"#),
                "agents.a is listed twice",
            ),
            (
                r#"{"agents":{},"agents":{}}"#.to_string(),
                "`agents` is given twice",
            ),
            (
                format!(r#"{{"fleets":[{{"prefix":"f.","key":{OCT},"prefix":"g."}}]}}"#),
                "fleets[0]: `prefix` is given twice",
            ),
            // Inside a JWK the wire reader's strictness holds.
            (
                r#"{"agents":{"a":{"kty":"oct","kty":"EC"}}}"#.to_string(),
                "agents.a",
            ),
            (
                r#"{"agents":{"a":"x"}}"#.to_string(),
                "agents.a: must be a JWK object",
            ),
            (
                r#"{"fleets":[1]}"#.to_string(),
                "fleets[0]: must be an object",
            ),
            (r#"{"agents":{"a":{}} "#.to_string(), "not JSON"),
        ] {
            let e = Keys::parse(&text).unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
