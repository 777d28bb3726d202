//! A bounded cache of verified BotAuth tokens, keyed by a SHA-256 prefix of
//! the token text, so re-registering with the same ES256 token costs one
//! hash instead of a ~0.3 ms signature check. Entries die with their token
//! (`exp`); when full, the oldest entry goes (FIFO).

use std::collections::{HashMap, VecDeque};

use botcall_core::id::AgentId;
use sha2::{Digest, Sha256};

use crate::store::Owner;

/// What a verified token proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proven {
    pub(crate) agent_id: AgentId,
    pub(crate) owner: Owner,
    pub(crate) exp: i64,
}

type TokenHash = [u8; 16];

/// Fixed-capacity FIFO cache.
#[derive(Debug)]
pub(crate) struct TokenCache {
    map: HashMap<TokenHash, Proven>,
    order: VecDeque<TokenHash>,
    cap: usize,
}

pub(crate) fn token_hash(token: &str) -> TokenHash {
    let d = Sha256::digest(token.as_bytes());
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

impl TokenCache {
    pub(crate) fn new(cap: usize) -> Self {
        TokenCache {
            map: HashMap::with_capacity(cap),
            order: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// The cached proof for `h`, if still valid at `now` (with `leeway`).
    pub(crate) fn get(&mut self, h: &TokenHash, now: u64, leeway: u64) -> Option<Proven> {
        let p = self.map.get(h)?;
        if i128::from(now) > i128::from(p.exp) + i128::from(leeway) {
            self.map.remove(h);
            return None;
        }
        Some(p.clone())
    }

    pub(crate) fn insert(&mut self, h: TokenHash, p: Proven) {
        if self.map.contains_key(&h) {
            return;
        }
        while self.map.len() >= self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        // `order` may hold hashes already dropped by `get`; trim it too.
        while self.order.len() >= self.cap {
            self.order.pop_front();
        }
        self.order.push_back(h);
        self.map.insert(h, p);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(exp: i64) -> Proven {
        Proven {
            agent_id: AgentId::new("a").unwrap(),
            owner: [1; 8],
            exp,
        }
    }

    #[test]
    fn bounded_and_expiring() {
        let mut c = TokenCache::new(2);
        c.insert(token_hash("t1"), p(100));
        c.insert(token_hash("t2"), p(100));
        c.insert(token_hash("t3"), p(100));
        assert_eq!(c.len(), 2);
        assert!(c.get(&token_hash("t1"), 0, 0).is_none());
        assert!(c.get(&token_hash("t3"), 0, 0).is_some());
        assert!(c.get(&token_hash("t3"), 160, 60).is_some());
        assert!(c.get(&token_hash("t3"), 161, 60).is_none());
        for i in 0..100 {
            c.insert(token_hash(&format!("x{i}")), p(1000));
            assert!(c.len() <= 2 && c.order.len() <= 2);
        }
    }
}
