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

fn jwk(v: &serde_json::Value, what: &str) -> Result<Key, String> {
    let text = serde_json::to_string(v).map_err(|e| format!("{what}: {e}"))?;
    Key::from_jwk(&text).map_err(|e| format!("{what}: {e}"))
}

impl Keys {
    /// Parses the keys file text.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let obj = doc.as_object().ok_or("must be a JSON object")?;
        let mut keys = Keys::default();
        for (k, _) in obj {
            if k != "agents" && k != "fleets" {
                return Err(format!(
                    "unknown top-level key `{k}` (expected agents, fleets)"
                ));
            }
        }
        if let Some(agents) = obj.get("agents") {
            let agents = agents
                .as_object()
                .ok_or("`agents` must be an object of id → JWK")?;
            for (agent, v) in agents {
                id::validate(agent).map_err(|e| format!("agents.{agent}: {e}"))?;
                keys.agents
                    .insert(agent.clone(), owned(jwk(v, &format!("agents.{agent}"))?));
            }
        }
        if let Some(fleets) = obj.get("fleets") {
            let fleets = fleets.as_array().ok_or("`fleets` must be an array")?;
            for (i, f) in fleets.iter().enumerate() {
                let prefix = f
                    .get("prefix")
                    .and_then(|p| p.as_str())
                    .ok_or(format!("fleets[{i}]: `prefix` (string) is required"))?;
                let prefix = prefix.strip_suffix('*').unwrap_or(prefix);
                if prefix.is_empty()
                    || !prefix
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                {
                    return Err(format!(
                        "fleets[{i}]: prefix `{prefix}` must be non-empty id characters"
                    ));
                }
                let key = f
                    .get("key")
                    .ok_or(format!("fleets[{i}]: `key` (JWK) is required"))?;
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
}
