//! The claims layer: registered time claims with leeway, issuer, audience,
//! subject and lifetime policy, and BotCall's two typed claim sets.

use super::JwtError;
use crate::id::{self, AgentId};
use crate::json::{self, JsonStr, Object, Value};

/// Default clock leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: u64 = 60;
/// Longest BotAuth token lifetime (`exp - iat`).
pub const BOT_AUTH_MAX_LIFETIME: u64 = 600;
/// Longest human-attestation lifetime (`exp - iat`).
pub const ATTESTATION_MAX_LIFETIME: u64 = 120;

/// What a claim set must satisfy.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'p> {
    /// Seconds of clock skew tolerated on `exp`, `nbf`, `iat`.
    pub leeway: u64,
    /// Whether `exp` must be present.
    pub require_exp: bool,
    /// Whether `iat` must be present.
    pub require_iat: bool,
    /// Whether `sub` must be present.
    pub require_sub: bool,
    /// Maximum `exp - iat` (or `exp - now` without `iat`).
    pub max_lifetime: Option<u64>,
    /// Required issuer.
    pub iss: Option<&'p str>,
    /// Required audience (the `aud` string, or one entry of the `aud` array).
    pub aud: Option<&'p str>,
    /// Required subject (`sub` must equal it; absent is `MissingClaim("sub")`).
    pub sub: Option<&'p str>,
}

impl Default for Policy<'_> {
    fn default() -> Self {
        Policy {
            leeway: DEFAULT_LEEWAY,
            require_exp: true,
            require_iat: false,
            require_sub: false,
            max_lifetime: None,
            iss: None,
            aud: None,
            sub: None,
        }
    }
}

/// Registered claims read from a payload; `obj` gives access to the rest.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// `iss`
    pub iss: Option<JsonStr<'a>>,
    /// `sub`
    pub sub: Option<JsonStr<'a>>,
    /// `aud`: a string or an array of strings.
    pub aud: Option<Value<'a>>,
    /// `exp`
    pub exp: Option<i64>,
    /// `nbf`
    pub nbf: Option<i64>,
    /// `iat`
    pub iat: Option<i64>,
    /// `jti`
    pub jti: Option<JsonStr<'a>>,
    /// The whole claims object.
    pub obj: Object<'a>,
}

impl Claims<'_> {
    /// Whether `aud` names `who`.
    pub fn has_audience(&self, who: &str) -> bool {
        match self.aud {
            Some(Value::Str(s)) => s.eq_str(who),
            Some(Value::Arr(a)) => a
                .iter()
                .any(|v| matches!(v, Value::Str(s) if s.eq_str(who))),
            _ => false,
        }
    }
}

/// Parses `payload` and checks it against `policy` at `now` (Unix seconds).
///
/// # Errors
/// [`JwtError::BadJson`] for non-strict JSON or non-integer times, then the
/// first failed check: `Expired`, `NotYetValid`, `IssuedInFuture`,
/// `LifetimeTooLong`, `WrongIssuer`, `WrongAudience`, `MissingClaim`,
/// `WrongSubject`.
pub fn validate<'a>(
    payload: &'a str,
    policy: &Policy<'_>,
    now: u64,
) -> Result<Claims<'a>, JwtError> {
    validate_object(json::parse_object(payload)?, policy, now)
}

/// As [`validate`], for a payload already parsed (no second parse).
///
/// # Errors
/// As [`validate`].
pub fn validate_object<'a>(
    obj: json::Object<'a>,
    policy: &Policy<'_>,
    now: u64,
) -> Result<Claims<'a>, JwtError> {
    let aud = obj.get("aud");
    if let Some(v) = aud {
        let ok = match v {
            Value::Str(_) => true,
            Value::Arr(a) => a.iter().all(|e| matches!(e, Value::Str(_))),
            _ => false,
        };
        if !ok {
            return Err(JwtError::BadJson(json::JsonError::WrongType("aud")));
        }
    }
    let c = Claims {
        iss: obj.opt_str("iss")?,
        sub: obj.opt_str("sub")?,
        aud,
        exp: obj.opt_i64("exp")?,
        nbf: obj.opt_i64("nbf")?,
        iat: obj.opt_i64("iat")?,
        jti: obj.opt_str("jti")?,
        obj,
    };
    let now = i128::from(now);
    let leeway = i128::from(policy.leeway);
    // RFC 7519 §4.1.4: the current time MUST be *before* `exp` (so `exp`
    // itself is expired); §4.1.5: at or after `nbf` is valid.
    match c.exp {
        Some(exp) if now >= i128::from(exp) + leeway => return Err(JwtError::Expired),
        None if policy.require_exp => return Err(JwtError::MissingClaim("exp")),
        _ => {}
    }
    if let Some(nbf) = c.nbf
        && now + leeway < i128::from(nbf)
    {
        return Err(JwtError::NotYetValid);
    }
    match c.iat {
        Some(iat) if now + leeway < i128::from(iat) => return Err(JwtError::IssuedInFuture),
        None if policy.require_iat => return Err(JwtError::MissingClaim("iat")),
        _ => {}
    }
    if let (Some(max), Some(exp)) = (policy.max_lifetime, c.exp) {
        let lifetime = match c.iat {
            Some(iat) => i128::from(exp) - i128::from(iat),
            None => i128::from(exp) - now - leeway,
        };
        if lifetime > i128::from(max) {
            return Err(JwtError::LifetimeTooLong);
        }
    }
    if let Some(iss) = policy.iss {
        match c.iss {
            Some(v) if v.eq_str(iss) => {}
            Some(_) => return Err(JwtError::WrongIssuer),
            None => return Err(JwtError::MissingClaim("iss")),
        }
    }
    if let Some(aud) = policy.aud {
        if c.aud.is_none() {
            return Err(JwtError::MissingClaim("aud"));
        }
        if !c.has_audience(aud) {
            return Err(JwtError::WrongAudience);
        }
    }
    if policy.require_sub && c.sub.is_none() {
        return Err(JwtError::MissingClaim("sub"));
    }
    if let Some(sub) = policy.sub {
        match c.sub {
            Some(v) if v.eq_str(sub) => {}
            Some(_) => return Err(JwtError::WrongSubject),
            None => return Err(JwtError::MissingClaim("sub")),
        }
    }
    Ok(c)
}

fn id_claim(v: Option<JsonStr<'_>>, name: &'static str) -> Result<AgentId, JwtError> {
    let v = v.ok_or(JwtError::MissingClaim(name))?;
    let s: heapless::String<{ id::MAX_ID_LEN }> =
        v.to_heapless().map_err(|_| JwtError::BadClaim(name))?;
    AgentId::new(&s).map_err(|_| JwtError::BadClaim(name))
}

fn text_claim<const N: usize>(
    obj: &Object<'_>,
    name: &'static str,
) -> Result<heapless::String<N>, JwtError> {
    let v = obj.req_str(name).map_err(|e| match e {
        json::JsonError::Missing(_) => JwtError::MissingClaim(name),
        e => JwtError::BadJson(e),
    })?;
    v.to_heapless().map_err(|_| JwtError::BadClaim(name))
}

/// The optional `fps` claim: an array of at most [`MAX_FPS`] fingerprint strings.
fn fps_claim(
    obj: &Object<'_>,
) -> Result<heapless::Vec<heapless::String<MAX_FP_LEN>, MAX_FPS>, JwtError> {
    let mut out = heapless::Vec::new();
    let Some(arr) = obj.opt_arr("fps")? else {
        return Ok(out);
    };
    for v in arr.iter() {
        let Value::Str(s) = v else {
            return Err(JwtError::BadClaim("fps"));
        };
        let s = s.to_heapless().map_err(|_| JwtError::BadClaim("fps"))?;
        out.push(s).map_err(|_| JwtError::BadClaim("fps"))?;
    }
    Ok(out)
}

/// A bot's registration token: `sub` is the agent id, lifetime ≤ 10 minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotAuth {
    /// The agent id the bot proves it is (`sub`).
    pub agent_id: AgentId,
    /// `exp`
    pub exp: i64,
    /// `iat`, if given.
    pub iat: Option<i64>,
}

impl BotAuth {
    /// The policy for BotAuth tokens: `exp` and `sub` required, lifetime ≤ 600 s,
    /// optional issuer/audience pinning by the daemon's configuration.
    pub fn policy<'p>(leeway: u64, aud: Option<&'p str>) -> Policy<'p> {
        Policy {
            leeway,
            require_exp: true,
            require_iat: false,
            require_sub: true,
            max_lifetime: Some(BOT_AUTH_MAX_LIFETIME),
            iss: None,
            aud,
            sub: None,
        }
    }
    /// Reads the typed claims from a validated claim set.
    ///
    /// # Errors
    /// [`JwtError::BadClaim`] if `sub` is not a valid agent id.
    pub fn from_claims(c: &Claims<'_>) -> Result<Self, JwtError> {
        Ok(BotAuth {
            agent_id: id_claim(c.sub, "sub")?,
            exp: c.exp.ok_or(JwtError::MissingClaim("exp"))?,
            iat: c.iat,
        })
    }
}

/// Longest DTLS fingerprint text kept ([`crate::sdp::MAX_FP_LEN`]).
pub const MAX_FP_LEN: usize = crate::sdp::MAX_FP_LEN;
/// Most fingerprints in `fps` ([`crate::sdp::MAX_FPS`]).
pub const MAX_FPS: usize = crate::sdp::MAX_FPS;

/// The daemon's statement that a verified human placed this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanAttestation {
    /// The daemon that signed it (`iss`).
    pub iss: heapless::String<128>,
    /// The agent being called (`aud`).
    pub agent_id: AgentId,
    /// The caller's session id (`sub`).
    pub caller: AgentId,
    /// The call this attestation is for.
    pub call_id: AgentId,
    /// How the human was checked (`none`, `pow`, later `webauthn`).
    pub hv: heapless::String<16>,
    /// The caller's sha-256 DTLS fingerprint, as in the offer's
    /// `a=fingerprint` line (`sha-256 AB:CD:...`).
    pub fp: heapless::String<MAX_FP_LEN>,
    /// Every fingerprint of the offer, one per hash function (`fps`); empty
    /// when the daemon predates `fps` (then the offer had exactly `fp`).
    pub fps: heapless::Vec<heapless::String<MAX_FP_LEN>, MAX_FPS>,
    /// `iat`
    pub iat: i64,
    /// `exp`
    pub exp: i64,
}

impl HumanAttestation {
    /// The policy: `exp`, `iat`, `aud` = `agent_id` required, lifetime ≤ 120 s.
    pub fn policy<'p>(agent_id: &'p str, iss: Option<&'p str>, leeway: u64) -> Policy<'p> {
        Policy {
            leeway,
            require_exp: true,
            require_iat: true,
            require_sub: true,
            max_lifetime: Some(ATTESTATION_MAX_LIFETIME),
            iss,
            aud: Some(agent_id),
            sub: None,
        }
    }
    /// Reads the typed claims from a validated claim set.
    ///
    /// # Errors
    /// [`JwtError::MissingClaim`] / [`JwtError::BadClaim`].
    pub fn from_claims(c: &Claims<'_>) -> Result<Self, JwtError> {
        let aud = match c.aud {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        };
        Ok(HumanAttestation {
            iss: text_claim(&c.obj, "iss")?,
            agent_id: id_claim(aud, "aud")?,
            caller: id_claim(c.sub, "sub")?,
            call_id: id_claim(c.obj.opt_str("call_id")?, "call_id")?,
            hv: text_claim(&c.obj, "hv")?,
            fp: text_claim(&c.obj, "fp")?,
            fps: fps_claim(&c.obj)?,
            iat: c.iat.ok_or(JwtError::MissingClaim("iat"))?,
            exp: c.exp.ok_or(JwtError::MissingClaim("exp"))?,
        })
    }
}
