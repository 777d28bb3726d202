//! Who may do what: BotAuth verification (keys file, open registration,
//! verified-token cache), rate limits, and the daemon's attestation key.

pub(crate) mod attest;
pub(crate) mod cache;
pub(crate) mod keys;
pub(crate) mod ratelimit;

use std::cell::RefCell;
use std::net::IpAddr;

use botcall_core::id::AgentId;
use botcall_core::json;
use botcall_core::jwt::{self, BotAuth, JwtError, Key, Scratch};

use cache::{Proven, TokenCache, token_hash};
use keys::{Keys, owner_of};
use ratelimit::Limiter;

/// Why a BotAuth token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// The token failed a check.
    Jwt(JwtError),
    /// No key is configured for the token's `sub`.
    UnknownAgent,
}

impl AuthError {
    /// Metric label and API `reason`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            AuthError::Jwt(e) => e.code(),
            AuthError::UnknownAgent => "unknown_agent",
        }
    }
    pub(crate) fn message(&self) -> String {
        match self {
            AuthError::Jwt(e) => e.to_string(),
            AuthError::UnknownAgent => "no key is configured for this agent id".into(),
        }
    }
}

/// Verification settings and state.
#[derive(Debug)]
pub(crate) struct Auth {
    keys: Keys,
    open_registration: bool,
    leeway: u64,
    audience: Option<String>,
    cache: RefCell<TokenCache>,
    pub(crate) ip_limiter: RefCell<Limiter<IpAddr>>,
    pub(crate) agent_limiter: RefCell<Limiter<AgentId>>,
}

/// What a token proves, plus whether the cache answered.
#[derive(Debug)]
pub(crate) struct Authenticated {
    pub(crate) proven: Proven,
    pub(crate) cached: bool,
}

/// Reads `sub` from a token's payload **without verifying it**, only to pick
/// the key that will verify it.
fn unverified_sub(token: &str) -> Result<heapless::String<64>, JwtError> {
    // Structure first, as `jwt::verify` does: the reason must not depend on
    // which of the two looked first.
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    if header.is_empty() || payload.is_empty() || sig.is_empty() {
        return Err(JwtError::Malformed);
    }
    let mut buf = vec![0u8; botcall_core::b64::decoded_len(payload.len())];
    let bytes =
        botcall_core::b64::decode(payload.as_bytes(), &mut buf).map_err(|_| JwtError::BadBase64)?;
    let text =
        std::str::from_utf8(bytes).map_err(|_| JwtError::BadJson(json::JsonError::Syntax(0)))?;
    let obj = json::parse_object(text)?;
    let sub = obj.opt_str("sub")?.ok_or(JwtError::MissingClaim("sub"))?;
    sub.to_heapless().map_err(|_| JwtError::BadClaim("sub"))
}

impl Auth {
    pub(crate) fn new(cfg: &crate::config::Config, keys: Keys) -> Self {
        Auth {
            keys,
            open_registration: cfg.open_registration,
            leeway: cfg.token_leeway,
            audience: cfg.token_audience.clone(),
            cache: RefCell::new(TokenCache::new(cfg.token_cache)),
            ip_limiter: RefCell::new(Limiter::new(
                cfg.rate_table_size,
                cfg.rate_ip,
                cfg.rate_ip_burst,
            )),
            agent_limiter: RefCell::new(Limiter::new(
                cfg.rate_table_size,
                cfg.rate_agent,
                cfg.rate_agent_burst,
            )),
        }
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies a BotAuth token at `now` (Unix seconds).
    ///
    /// Key choice: with open registration and an ES256 `jwk` in the header,
    /// that key — and `sub` must be its thumbprint; otherwise the keys file's
    /// entry for the (unverified) `sub`, which the verified claims must repeat.
    pub(crate) fn authenticate(&self, token: &str, now: u64) -> Result<Authenticated, AuthError> {
        if token.len() > jwt::MAX_TOKEN_LEN {
            return Err(AuthError::Jwt(JwtError::TooLong));
        }
        let h = token_hash(token);
        if let Some(proven) = self.cache.borrow_mut().get(&h, now, self.leeway) {
            return Ok(Authenticated {
                proven,
                cached: true,
            });
        }
        let aud = self.audience.as_deref();
        let mut scratch = Scratch::new();
        let header_key = if self.open_registration {
            let header =
                jwt::decode_header_unverified(token, &mut scratch).map_err(AuthError::Jwt)?;
            match header.jwk {
                Some(jwk) => match Key::from_jwk_obj(jwk).map_err(AuthError::Jwt)? {
                    k @ Key::Es256(_) => Some(k),
                    Key::Hs256(_) => return Err(AuthError::Jwt(JwtError::BadKey)),
                },
                None => None,
            }
        } else {
            None
        };
        let (proof, key) = match header_key {
            Some(key) => {
                let Key::Es256(vk) = &key else {
                    return Err(AuthError::Jwt(JwtError::BadKey));
                };
                let thumb = jwt::thumbprint(vk);
                let proof = jwt::verify_bot_auth(token, &key, self.leeway, aud, now)
                    .map_err(AuthError::Jwt)?;
                if proof.agent_id.as_str() != thumb.as_str() {
                    return Err(AuthError::Jwt(JwtError::WrongSubject));
                }
                (proof, key)
            }
            None => {
                let sub = unverified_sub(token).map_err(AuthError::Jwt)?;
                let key = self
                    .keys
                    .for_agent(&sub)
                    .ok_or(AuthError::UnknownAgent)?
                    .clone();
                let proof: BotAuth = jwt::verify_bot_auth(token, &key, self.leeway, aud, now)
                    .map_err(AuthError::Jwt)?;
                (proof, key)
            }
        };
        let proven = Proven {
            agent_id: proof.agent_id,
            owner: owner_of(&key),
            exp: proof.exp,
        };
        self.cache.borrow_mut().insert(h, proven.clone());
        Ok(Authenticated {
            proven,
            cached: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_checks_structure_first() {
        // {"sub":"x"}
        let payload = "eyJzdWIiOiJ4In0";
        assert_eq!(unverified_sub(&format!("e30.{payload}.c2ln")).unwrap(), "x");
        for t in [
            "a.b".to_string(),
            "notatoken".into(),
            format!("e30.{payload}"),
            format!("e30.{payload}."),
            format!(".{payload}.c2ln"),
            format!("e30.{payload}.c2ln.x"),
            "..".into(),
        ] {
            assert_eq!(unverified_sub(&t), Err(JwtError::Malformed), "{t}");
        }
        assert_eq!(unverified_sub("e30.!!.c2ln"), Err(JwtError::BadBase64));
    }
}
