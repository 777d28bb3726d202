//! Who may do what: BotAuth verification (keys file, open registration,
//! verified-token cache), rate limits, and the daemon's attestation key.

pub(crate) mod attest;
pub(crate) mod cache;
pub(crate) mod keys;
pub(crate) mod ratelimit;

use std::cell::RefCell;

use botcall_core::id::AgentId;
use botcall_core::json;
use botcall_core::jwt::{self, BotAuth, JwtError, Key, Scratch};
use botcall_core::protocol::AnswerKey;

use crate::client::ClientKey;
use crate::ids::Owner;
use cache::{Proven, TokenCache, TokenHasher};
use keys::{Keys, owner_of};
use ratelimit::Limiter;

/// Why a BotAuth token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// The token failed a check.
    Jwt(JwtError),
    /// No key is configured for the token's `sub`.
    UnknownAgent,
    /// The token is not cached and the daemon checks no more signatures
    /// this second (`verify_rate`): try again after this many seconds.
    Busy(u64),
}

impl AuthError {
    /// Metric label and API `reason`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            AuthError::Jwt(e) => e.code(),
            AuthError::UnknownAgent => "unknown_agent",
            AuthError::Busy(_) => "server_busy",
        }
    }
    pub(crate) fn message(&self) -> String {
        match self {
            AuthError::Jwt(e) => e.to_string(),
            AuthError::UnknownAgent => "no key is configured for this agent id".into(),
            AuthError::Busy(_) => "too many new tokens to check right now, try again".into(),
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
    hasher: TokenHasher,
    pub(crate) ip_limiter: RefCell<Limiter<ClientKey>>,
    pub(crate) agent_limiter: RefCell<Limiter<AgentId>>,
    /// Calls placed per client (`rate_calls_ip`).
    pub(crate) call_limiter: RefCell<Limiter<ClientKey>>,
    /// New self-certifying ids per client per hour (`open_ids_per_hour`).
    pub(crate) open_limiter: RefCell<Limiter<ClientKey>>,
    /// Signature checks of uncached tokens, daemon-wide (`verify_rate`).
    verify_limiter: RefCell<Limiter<()>>,
}

/// What a token proves, plus whether the cache answered.
#[derive(Debug)]
pub(crate) struct Authenticated {
    pub(crate) proven: Proven,
    pub(crate) cached: bool,
}

impl Auth {
    pub(crate) fn new(cfg: &crate::config::Config, keys: Keys) -> Self {
        Auth {
            keys,
            open_registration: cfg.open_registration,
            leeway: cfg.token_leeway,
            audience: cfg.token_audience.clone(),
            cache: RefCell::new(TokenCache::new(cfg.token_cache)),
            hasher: TokenHasher::new(),
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
            call_limiter: RefCell::new(Limiter::new(
                cfg.rate_table_size,
                cfg.rate_calls_ip,
                cfg.rate_calls_ip_burst,
            )),
            open_limiter: RefCell::new(Limiter::per_hour(
                cfg.rate_table_size,
                cfg.open_ids_per_hour,
            )),
            verify_limiter: RefCell::new(Limiter::new(1, cfg.verify_rate, cfg.verify_burst)),
        }
    }

    /// What `lookup` tells callers about checking `agent_id`'s answers: a
    /// keys-file ES256 key is published, an HS256 secret never is (it cannot
    /// prove anything to a caller), and an id that is not in the keys file
    /// registered through open registration, so it is the key's thumbprint.
    pub(crate) fn answer_key(&self, agent_id: &str) -> AnswerKey<'_> {
        match self.keys.for_agent(agent_id) {
            Some((Key::Es256(vk), _)) => AnswerKey::Key(vk),
            Some((Key::Hs256(_), _)) => AnswerKey::None,
            None if self.open_registration && agent_id.len() == 43 => AnswerKey::Thumbprint,
            None => AnswerKey::None,
        }
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verifies a BotAuth token at `now` (Unix seconds); `mono_ms` (monotonic
    /// milliseconds) paces the signature checks of tokens not in the cache.
    ///
    /// Key choice: with open registration and an ES256 `jwk` in the header,
    /// that key — and `sub` must be its thumbprint; otherwise the keys file's
    /// entry for the (unverified) `sub`, which the verified claims must repeat.
    pub(crate) fn authenticate(
        &self,
        token: &str,
        now: u64,
        mono_ms: u64,
    ) -> Result<Authenticated, AuthError> {
        if token.len() > jwt::MAX_TOKEN_LEN {
            return Err(AuthError::Jwt(JwtError::TooLong));
        }
        let h = self.hasher.hash(token);
        if let Some(proven) = self.cache.borrow_mut().get(&h, now, self.leeway) {
            return Ok(Authenticated {
                proven,
                cached: true,
            });
        }
        // A signature check costs ~0.3 ms of the daemon's one core: a
        // daemon-wide ceiling keeps strangers' junk tokens from eating it.
        // Cached tokens and connected bots never get here.
        self.verify_limiter
            .borrow_mut()
            .check(&(), mono_ms)
            .map_err(AuthError::Busy)?;
        // One pass: decode header and payload once, pick the key from them
        // (open registration: the header's `jwk`; otherwise the keys file's
        // entry for the unverified `sub`), verify, then check the claims on
        // the payload already parsed.
        let policy = BotAuth::policy(self.leeway, self.audience.as_deref());
        let mut scratch = Scratch::new();
        let mut unknown_agent = false;
        // The owner tag of the chosen key, and the thumbprint for open registration.
        let mut chosen: Option<(Owner, Option<heapless::String<43>>)> = None;
        let mut claims_obj: Option<json::Object<'_>> = None;
        let verified = jwt::verify_with(token, &mut scratch, |header, payload| {
            let obj = json::parse_object(payload)?;
            claims_obj = Some(obj);
            if self.open_registration
                && let Some(jwk) = header.jwk
            {
                let key = Key::from_jwk_obj(jwk)?;
                let Key::Es256(vk) = &key else {
                    return Err(JwtError::BadKey);
                };
                chosen = Some((owner_of(&key), Some(jwt::thumbprint(vk))));
                return Ok(key);
            }
            let sub = obj.opt_str("sub")?.ok_or(JwtError::MissingClaim("sub"))?;
            let sub: heapless::String<64> =
                sub.to_heapless().map_err(|_| JwtError::BadClaim("sub"))?;
            match self.keys.for_agent(&sub) {
                Some((k, owner)) => {
                    chosen = Some((owner, None));
                    Ok(k.clone())
                }
                None => {
                    unknown_agent = true;
                    Err(JwtError::UnknownKey)
                }
            }
        });
        if let Err(e) = verified {
            return Err(if unknown_agent {
                AuthError::UnknownAgent
            } else {
                AuthError::Jwt(e)
            });
        }
        let (Some(obj), Some((owner, thumb))) = (claims_obj, chosen) else {
            return Err(AuthError::Jwt(JwtError::Malformed));
        };
        let claims = jwt::claims::validate_object(obj, &policy, now).map_err(AuthError::Jwt)?;
        let proof = BotAuth::from_claims(&claims).map_err(AuthError::Jwt)?;
        let open = thumb.is_some();
        if let Some(thumb) = thumb
            && proof.agent_id.as_str() != thumb.as_str()
        {
            return Err(AuthError::Jwt(JwtError::WrongSubject));
        }
        let proven = Proven {
            agent_id: proof.agent_id,
            owner,
            exp: proof.exp,
            open,
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
    fn structure_first_then_the_key_for_the_subject() {
        let auth = Auth::new(&crate::config::Config::defaults(), Keys::default());
        let err = |t: &str| auth.authenticate(t, 0, 0).err();
        // {"sub":"x"}
        let payload = "eyJzdWIiOiJ4In0";
        for t in [
            "a.b".to_string(),
            "notatoken".into(),
            format!("e30.{payload}"),
            format!("e30.{payload}."),
            format!(".{payload}.c2ln"),
            format!("e30.{payload}.c2ln.x"),
            "..".into(),
        ] {
            assert_eq!(err(&t), Some(AuthError::Jwt(JwtError::Malformed)), "{t}");
        }
        // {"alg":"HS256"}
        let header = "eyJhbGciOiJIUzI1NiJ9";
        assert_eq!(
            err("e30.x.c2ln"),
            Some(AuthError::Jwt(JwtError::BadJson(json::JsonError::Missing(
                "alg"
            ))))
        );
        assert_eq!(
            err(&format!("{header}.!!.c2ln")),
            Some(AuthError::Jwt(JwtError::BadBase64))
        );
        // Well formed, but no key is configured for `x`.
        assert_eq!(
            err(&format!("{header}.{payload}.c2ln")),
            Some(AuthError::UnknownAgent)
        );
    }
}
