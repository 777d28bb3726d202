//! Wire-protocol messages as plain data with encode/decode (version 1).
//!
//! `docs/protocol.md` is the specification; this module is its code. Decoding
//! borrows the input (strings stay escaped, so the daemon relays SDP and ICE
//! candidates without copying them through an unescape step); encoding writes
//! into any [`Sink`]. Unknown fields are ignored, unknown `type`s are an error.

use crate::id::{self, AgentId};
use crate::json::{self, JsonError, JsonStr, Object, Sink, Value, Writer, write::Full};

/// Protocol version spoken by this crate (`"v"` in `hello`).
pub const VERSION: u64 = 1;
/// Longest `reason` in `reject`/`hangup`.
pub const MAX_REASON_LEN: usize = 64;
/// Longest `endpoint` in a registration.
pub const MAX_ENDPOINT_LEN: usize = 256;
/// Longest `name` in a registration.
pub const MAX_NAME_LEN: usize = 64;
/// Shortest registration TTL the protocol allows (daemons may ask for more:
/// `botcalld` refuses less than its `min_ttl`, 30 s by default).
pub const MIN_TTL: u64 = 1;
/// Longest registration TTL.
pub const MAX_TTL: u64 = 86_400;
/// TTL when a registration gives none.
pub const DEFAULT_TTL: u64 = 300;
/// Longest `text` of a bot's `callback` (bytes, after JSON unescaping).
pub const MAX_CALLBACK_TEXT: usize = 200;
/// Most simultaneous calls an agent may declare.
pub const MAX_CALLS: u64 = 64;

/// The `reason`s of `hangup` that mean something (the field is free text;
/// anything else reads as a plain hang-up by the sender).
pub mod hangup {
    /// The sender hung up (the SDK's `hangup()`; the PWA sends `normal`).
    pub const HANGUP: &str = "hangup";
    /// The sender's media stopped: ICE failed, or nothing (RTP, RTCP, ICE
    /// consent) arrived from the other side for the liveness timeout.
    pub const MEDIA_LOST: &str = "media_lost";
    /// The sender's media never connected.
    pub const MEDIA_TIMEOUT: &str = "media_timeout";
    /// The other side closed its media (a DTLS close alert) without a
    /// `hangup` of its own: the sender frees the call for it.
    pub const MEDIA_CLOSED: &str = "media_closed";
    /// Something failed on the sender's side.
    pub const ERROR: &str = "error";
    /// The sender (a bot) is shutting down.
    pub const SHUTDOWN: &str = "shutdown";
    /// From the daemon: nobody answered within the ring timeout.
    pub const TIMEOUT: &str = "timeout";
    /// From the daemon: the other side's socket closed (for a bot: and did
    /// not come back within the reconnect grace).
    pub const PEER_GONE: &str = "peer_gone";
    /// From the daemon: the bot's socket was replaced by a newer one.
    pub const REPLACED: &str = "replaced";
}

/// WebSocket close codes on the signaling socket (RFC 6455 §7.4 and
/// BotCall's own 4000–4999 range), the same on both ends.
pub mod close {
    /// The session ended normally.
    pub const NORMAL: u16 = 1000;
    /// The daemon is shutting down (or the client is leaving).
    pub const GOING_AWAY: u16 = 1001;
    /// A framing rule was broken.
    pub const PROTOCOL: u16 = 1002;
    /// A frame type the endpoint does not take (binary on the signaling socket).
    pub const UNSUPPORTED: u16 = 1003;
    /// A text message that is not UTF-8.
    pub const BAD_DATA: u16 = 1007;
    /// A policy refused the session (bad token, foreign origin, rate limit).
    pub const POLICY: u16 = 1008;
    /// A message over the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The server is busy (buffer budget, full table, slow reader): try again later.
    pub const TRY_AGAIN: u16 = 1013;
    /// A newer connection for the same agent replaced this one.
    pub const REPLACED: u16 = 4000;
    /// No frame arrived within the heartbeat window.
    pub const HEARTBEAT: u16 = 4001;
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// Not strict JSON, or not an object.
    Json(JsonError),
    /// No `type` field.
    NoType,
    /// A `type` this version does not know.
    UnknownType,
    /// A required field is absent.
    Missing(&'static str),
    /// A field has the wrong type or an impossible value.
    BadField(&'static str),
    /// A field is longer than allowed.
    TooLong(&'static str),
    /// A field that must be an id is not one.
    BadId(&'static str),
    /// `hello.v` names a version we do not speak.
    UnsupportedVersion,
}

impl ProtoError {
    /// The `code` sent back in an `error` message or HTTP error body.
    pub fn code(&self) -> &'static str {
        match self {
            ProtoError::Json(_) => "bad_json",
            ProtoError::UnknownType => "unknown_type",
            ProtoError::UnsupportedVersion => "unsupported_version",
            ProtoError::BadId("agent_id") => "invalid_agent_id",
            ProtoError::NoType | ProtoError::Missing(_) => "bad_message",
            ProtoError::BadField(_) | ProtoError::TooLong(_) | ProtoError::BadId(_) => "bad_field",
        }
    }
}

impl From<JsonError> for ProtoError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Missing(f) => ProtoError::Missing(f),
            JsonError::WrongType(f) | JsonError::NotInteger(f) => ProtoError::BadField(f),
            e => ProtoError::Json(e),
        }
    }
}

impl core::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProtoError::Json(e) => write!(f, "invalid JSON: {e}"),
            ProtoError::NoType => f.write_str("message has no `type`"),
            ProtoError::UnknownType => f.write_str("unknown message type"),
            ProtoError::Missing(k) => write!(f, "field `{k}` is required"),
            ProtoError::BadField(k) => write!(f, "field `{k}` has the wrong type or value"),
            ProtoError::TooLong(k) => write!(f, "field `{k}` is too long"),
            ProtoError::BadId(k) => write!(
                f,
                "field `{k}` must be 1-64 characters of A-Z a-z 0-9 . _ -"
            ),
            ProtoError::UnsupportedVersion => {
                write!(f, "unsupported protocol version (this is v{VERSION})")
            }
        }
    }
}

impl core::error::Error for ProtoError {}

/// A text field: escaped JSON from a decoded message, or plain text to encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text<'a> {
    /// Still escaped, as received; relayed verbatim.
    Json(JsonStr<'a>),
    /// Plain text; escaped when written.
    Str(&'a str),
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text::Str(s)
    }
}

impl<'a> Text<'a> {
    fn write<S: Sink + ?Sized>(&self, w: &mut Writer<'_, S>) -> Result<(), Full> {
        match self {
            Text::Json(j) => w.json_str(*j)?,
            Text::Str(s) => w.str(s)?,
        };
        Ok(())
    }
    /// Whether the decoded text equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        match self {
            Text::Json(j) => j.eq_str(s),
            Text::Str(t) => *t == s,
        }
    }
    /// Decoded length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Text::Json(j) => j.decoded_len(),
            Text::Str(s) => s.len(),
        }
    }
    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        // Every escape decodes to at least one character: empty iff raw is empty.
        match self {
            Text::Json(j) => j.raw().is_empty(),
            Text::Str(s) => s.is_empty(),
        }
    }
    /// The text without copying, if it has no escapes.
    pub fn as_plain(&self) -> Option<&'a str> {
        match self {
            Text::Json(j) => j.as_plain(),
            Text::Str(s) => Some(s),
        }
    }
    /// Decodes into `buf`.
    ///
    /// # Errors
    /// [`JsonError::TooLong`] if `buf` is too small.
    pub fn decode_into<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, JsonError> {
        match self {
            Text::Json(j) => j.decode_into(buf),
            Text::Str(s) => {
                let dst = buf.get_mut(..s.len()).ok_or(JsonError::TooLong)?;
                dst.copy_from_slice(s.as_bytes());
                core::str::from_utf8(dst).map_err(|_| JsonError::TooLong)
            }
        }
    }
    /// Decodes into a fixed-capacity string.
    ///
    /// # Errors
    /// [`JsonError::TooLong`] if it does not fit.
    pub fn to_heapless<const N: usize>(&self) -> Result<heapless::String<N>, JsonError> {
        match self {
            Text::Json(j) => j.to_heapless(),
            Text::Str(s) => {
                let mut out = heapless::String::new();
                out.push_str(s).map_err(|_| JsonError::TooLong)?;
                Ok(out)
            }
        }
    }
    /// Decodes into an owned `String`.
    #[cfg(feature = "alloc")]
    #[allow(clippy::inherent_to_string)] // no `Display`: raw and decoded text differ
    pub fn to_string(&self) -> alloc::string::String {
        match self {
            Text::Json(j) => j.to_string(),
            Text::Str(s) => (*s).into(),
        }
    }
}

/// Validated JSON text written verbatim (e.g. the `ice_servers` array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawJson<'a>(&'a str);

impl<'a> RawJson<'a> {
    /// Checks that `text` is one strict JSON value.
    ///
    /// # Errors
    /// [`JsonError`] if it is not.
    pub fn new(text: &'a str) -> Result<Self, JsonError> {
        json::parse(text)?;
        Ok(RawJson(text))
    }
    /// The JSON text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

/// Who is on the other end of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A bot (authenticated with BotAuth).
    Bot,
    /// A caller (a person, through the PWA).
    Caller,
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Bot => "bot",
            Role::Caller => "caller",
        }
    }
}

/// A human-check proof (`{"method":"pow","challenge","nonce"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof<'a> {
    /// `pow` today; `webauthn` later.
    pub method: Text<'a>,
    /// The challenge being answered.
    pub challenge: Text<'a>,
    /// The solution.
    pub nonce: Text<'a>,
}

/// A human-check challenge sent to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `pow`.
    pub method: Text<'a>,
    /// Random challenge text.
    pub challenge: Text<'a>,
    /// Leading zero bits required.
    pub difficulty: u8,
    /// Seconds the challenge stays valid.
    pub expires_in: u64,
}

/// An ICE candidate: relayed verbatim, or built from SDP text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate<'a> {
    /// As received (object, string or `null`).
    Json(Value<'a>),
    /// `{"candidate": "...", "sdpMid": mid, "sdpMLineIndex": idx}`.
    Sdp {
        /// The `candidate:...` attribute value.
        candidate: &'a str,
        /// `sdpMid`.
        sdp_mid: Option<&'a str>,
        /// `sdpMLineIndex`.
        mline_index: Option<u64>,
    },
    /// End of candidates (`null`).
    End,
}

impl<'a> Candidate<'a> {
    /// The `candidate:...` text, if this is one (object form or bare string).
    pub fn candidate_text(&self) -> Option<Text<'a>> {
        match *self {
            Candidate::Json(Value::Str(s)) => Some(Text::Json(s)),
            Candidate::Json(Value::Obj(o)) => o.opt_str("candidate").ok().flatten().map(Text::Json),
            Candidate::Sdp { candidate, .. } => Some(Text::Str(candidate)),
            _ => None,
        }
    }
    fn write<S: Sink + ?Sized>(&self, w: &mut Writer<'_, S>) -> Result<(), Full> {
        match *self {
            Candidate::Json(v) => {
                w.value(v)?;
            }
            Candidate::End => {
                w.null()?;
            }
            Candidate::Sdp {
                candidate,
                sdp_mid,
                mline_index,
            } => {
                w.begin_obj()?.field_str("candidate", candidate)?;
                if let Some(mid) = sdp_mid {
                    w.field_str("sdpMid", mid)?;
                }
                if let Some(i) = mline_index {
                    w.field_u64("sdpMLineIndex", i)?;
                }
                w.end_obj()?;
            }
        }
        Ok(())
    }
}

/// One WebSocket signaling message, either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Msg<'a> {
    /// Client → daemon: start a session.
    Hello {
        /// Bot or caller.
        role: Role,
        /// BotAuth token (bots; or sent in the upgrade's `Authorization`).
        token: Option<Text<'a>>,
        /// Bots: simultaneous calls they take.
        max_calls: Option<u64>,
    },
    /// Daemon → client: session accepted.
    Welcome {
        /// Echo of the role.
        role: Role,
        /// Bots: the authenticated agent id.
        agent_id: Option<AgentId>,
        /// The session id (a caller's `from` in calls).
        session: AgentId,
        /// Seconds between the daemon's pings.
        heartbeat_interval: u64,
        /// `RTCIceServer[]` as JSON.
        ice_servers: RawJson<'a>,
        /// Callers: the human check to solve, if required.
        challenge: Option<Challenge<'a>>,
    },
    /// Caller → daemon: place a call.
    Call {
        /// The agent to call.
        to: AgentId,
        /// The caller's SDP offer.
        sdp_offer: Text<'a>,
        /// Human-check proof, if required.
        proof: Option<Proof<'a>>,
        /// The caller's push subscription id for this bot's `callback`s,
        /// passed on to the bot in `incoming` (docs/protocol.md, "Push").
        callback: Option<AgentId>,
    },
    /// Caller → daemon: prove humanity ahead of a call.
    Verify {
        /// The proof.
        proof: Proof<'a>,
    },
    /// Daemon → caller: a (fresh) human-check challenge to solve.
    Challenge(Challenge<'a>),
    /// Daemon → caller: the proof was accepted.
    Verified {
        /// The method now on record.
        hv: Text<'a>,
    },
    /// Daemon → caller: the call was offered to the bot.
    Ringing {
        /// The new call's id.
        call_id: AgentId,
        /// The agent called.
        to: AgentId,
    },
    /// Daemon → bot: someone is calling.
    Incoming {
        /// Call id.
        call_id: AgentId,
        /// Caller session id.
        from: AgentId,
        /// The caller's offer.
        sdp_offer: Text<'a>,
        /// The daemon's ES256 human attestation.
        attestation: Text<'a>,
        /// The human-check method (also inside the attestation).
        hv: Text<'a>,
        /// Fresh TURN servers for this call (`RTCIceServer[]`), when the
        /// daemon hands out TURN credentials: the `welcome` ones expire.
        ice_servers: Option<RawJson<'a>>,
        /// The caller's push subscription id, if they gave one: the `to`
        /// of a later [`Msg::Callback`].
        callback: Option<AgentId>,
    },
    /// Bot → daemon → caller: call accepted.
    Answer {
        /// Call id.
        call_id: AgentId,
        /// The bot's SDP answer.
        sdp_answer: Text<'a>,
        /// The bot's ES256 signature over the call and both DTLS
        /// fingerprints ([`crate::answer_sig`]); relayed untouched.
        answer_sig: Option<Text<'a>>,
    },
    /// Bot → daemon → caller: call refused.
    Reject {
        /// Call id.
        call_id: AgentId,
        /// Why.
        reason: Text<'a>,
    },
    /// Either → daemon → other: a trickled ICE candidate.
    Ice {
        /// Call id.
        call_id: AgentId,
        /// The candidate.
        candidate: Candidate<'a>,
    },
    /// Either → daemon → other: the call is over.
    Hangup {
        /// Call id.
        call_id: AgentId,
        /// Why.
        reason: Text<'a>,
    },
    /// Bot → daemon: ask a person subscribed to this bot's `callback`
    /// event to call back (a Web Push notification; docs/protocol.md).
    Callback {
        /// The person's push subscription id.
        to: AgentId,
        /// What the notification says (at most [`MAX_CALLBACK_TEXT`] bytes).
        text: Text<'a>,
    },
    /// App-level liveness probe.
    Ping,
    /// Answer to [`Msg::Ping`].
    Pong,
    /// Daemon → client: something was refused.
    Error {
        /// Stable code (see `docs/protocol.md`).
        code: Text<'a>,
        /// Human text.
        message: Text<'a>,
        /// The call concerned, if any.
        call_id: Option<AgentId>,
    },
}

fn id_field(o: &Object<'_>, key: &'static str) -> Result<AgentId, ProtoError> {
    let s = o.req_str(key)?;
    let text: heapless::String<{ id::MAX_ID_LEN }> =
        s.to_heapless().map_err(|_| ProtoError::BadId(key))?;
    AgentId::new(&text).map_err(|_| ProtoError::BadId(key))
}

fn opt_id(o: &Object<'_>, key: &'static str) -> Result<Option<AgentId>, ProtoError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => id_field(o, key).map(Some),
    }
}

fn text_field<'a>(o: &Object<'a>, key: &'static str, max: usize) -> Result<Text<'a>, ProtoError> {
    let s = o.req_str(key)?;
    // Decoding never lengthens text: only count when the raw text is over.
    if s.raw().len() > max && s.decoded_len() > max {
        return Err(ProtoError::TooLong(key));
    }
    Ok(Text::Json(s))
}

fn opt_text<'a>(
    o: &Object<'a>,
    key: &'static str,
    max: usize,
) -> Result<Option<Text<'a>>, ProtoError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => text_field(o, key, max).map(Some),
    }
}

fn proof<'a>(o: Object<'a>) -> Result<Proof<'a>, ProtoError> {
    Ok(Proof {
        method: text_field(&o, "method", 16)?,
        challenge: text_field(&o, "challenge", 64)?,
        nonce: text_field(&o, "nonce", 64)?,
    })
}

/// Largest SDP accepted in a message (the frame limit bounds it further).
pub const MAX_SDP_LEN: usize = 32 * 1024;

impl<'a> Msg<'a> {
    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "hello",
            Msg::Welcome { .. } => "welcome",
            Msg::Call { .. } => "call",
            Msg::Verify { .. } => "verify",
            Msg::Challenge(_) => "challenge",
            Msg::Verified { .. } => "verified",
            Msg::Ringing { .. } => "ringing",
            Msg::Incoming { .. } => "incoming",
            Msg::Answer { .. } => "answer",
            Msg::Reject { .. } => "reject",
            Msg::Ice { .. } => "ice",
            Msg::Hangup { .. } => "hangup",
            Msg::Callback { .. } => "callback",
            Msg::Ping => "ping",
            Msg::Pong => "pong",
            Msg::Error { .. } => "error",
        }
    }

    /// The call this message is about, if any.
    pub fn call_id(&self) -> Option<&AgentId> {
        match self {
            Msg::Ringing { call_id, .. }
            | Msg::Incoming { call_id, .. }
            | Msg::Answer { call_id, .. }
            | Msg::Reject { call_id, .. }
            | Msg::Ice { call_id, .. }
            | Msg::Hangup { call_id, .. } => Some(call_id),
            Msg::Error { call_id, .. } => call_id.as_ref(),
            _ => None,
        }
    }

    /// Decodes one text frame.
    ///
    /// # Errors
    /// [`ProtoError`] naming the first problem.
    pub fn decode(text: &'a str) -> Result<Self, ProtoError> {
        let o = json::parse_object(text)?;
        let ty = match o.get("type") {
            Some(Value::Str(t)) => t,
            Some(_) => return Err(ProtoError::BadField("type")),
            None => return Err(ProtoError::NoType),
        };
        let ty: heapless::String<16> = ty.to_heapless().map_err(|_| ProtoError::UnknownType)?;
        Ok(match ty.as_str() {
            "hello" => {
                if let Some(v) = o.opt_u64("v")?
                    && v != VERSION
                {
                    return Err(ProtoError::UnsupportedVersion);
                }
                let role = o.req_str("role")?;
                let role = if role.eq_str("bot") {
                    Role::Bot
                } else if role.eq_str("caller") {
                    Role::Caller
                } else {
                    return Err(ProtoError::BadField("role"));
                };
                let max_calls = o.opt_u64("max_calls")?;
                if matches!(max_calls, Some(n) if n == 0 || n > MAX_CALLS) {
                    return Err(ProtoError::BadField("max_calls"));
                }
                Msg::Hello {
                    role,
                    token: opt_text(&o, "token", crate::jwt::MAX_TOKEN_LEN)?,
                    max_calls,
                }
            }
            "welcome" => {
                let role = if o.req_str("role")?.eq_str("bot") {
                    Role::Bot
                } else {
                    Role::Caller
                };
                let agent_id = match o.get("agent_id") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(id_field(&o, "agent_id")?),
                };
                let ice = o
                    .opt_arr("ice_servers")?
                    .ok_or(ProtoError::Missing("ice_servers"))?;
                let challenge = match o.opt_obj("challenge")? {
                    None => None,
                    Some(c) => Some(challenge(&c)?),
                };
                Msg::Welcome {
                    role,
                    agent_id,
                    session: id_field(&o, "session")?,
                    heartbeat_interval: o
                        .opt_u64("heartbeat_interval")?
                        .ok_or(ProtoError::Missing("heartbeat_interval"))?,
                    ice_servers: RawJson(ice.raw()),
                    challenge,
                }
            }
            "call" => Msg::Call {
                to: id_field(&o, "to")?,
                sdp_offer: nonempty(text_field(&o, "sdp_offer", MAX_SDP_LEN)?, "sdp_offer")?,
                proof: o.opt_obj("proof")?.map(proof).transpose()?,
                callback: opt_id(&o, "callback")?,
            },
            "verify" => Msg::Verify {
                proof: proof(o.opt_obj("proof")?.ok_or(ProtoError::Missing("proof"))?)?,
            },
            "challenge" => Msg::Challenge(challenge(&o)?),
            "verified" => Msg::Verified {
                hv: text_field(&o, "hv", 16)?,
            },
            "ringing" => Msg::Ringing {
                call_id: id_field(&o, "call_id")?,
                to: id_field(&o, "to")?,
            },
            "incoming" => Msg::Incoming {
                call_id: id_field(&o, "call_id")?,
                from: id_field(&o, "from")?,
                sdp_offer: nonempty(text_field(&o, "sdp_offer", MAX_SDP_LEN)?, "sdp_offer")?,
                attestation: text_field(&o, "attestation", crate::jwt::MAX_TOKEN_LEN)?,
                hv: opt_text(&o, "hv", 16)?.unwrap_or(Text::Str("")),
                ice_servers: o.opt_arr("ice_servers")?.map(|a| RawJson(a.raw())),
                callback: opt_id(&o, "callback")?,
            },
            "answer" => Msg::Answer {
                call_id: id_field(&o, "call_id")?,
                sdp_answer: nonempty(text_field(&o, "sdp_answer", MAX_SDP_LEN)?, "sdp_answer")?,
                answer_sig: opt_text(&o, "answer_sig", crate::answer_sig::MAX_LEN)?,
            },
            "reject" => Msg::Reject {
                call_id: id_field(&o, "call_id")?,
                reason: opt_text(&o, "reason", MAX_REASON_LEN)?.unwrap_or(Text::Str("declined")),
            },
            "ice" => {
                let candidate = match o.get("candidate") {
                    None => return Err(ProtoError::Missing("candidate")),
                    Some(Value::Null) => Candidate::End,
                    Some(v @ (Value::Obj(_) | Value::Str(_))) => Candidate::Json(v),
                    Some(_) => return Err(ProtoError::BadField("candidate")),
                };
                Msg::Ice {
                    call_id: id_field(&o, "call_id")?,
                    candidate,
                }
            }
            "hangup" => Msg::Hangup {
                call_id: id_field(&o, "call_id")?,
                reason: opt_text(&o, "reason", MAX_REASON_LEN)?.unwrap_or(Text::Str("hangup")),
            },
            "callback" => Msg::Callback {
                to: id_field(&o, "to")?,
                text: nonempty(text_field(&o, "text", MAX_CALLBACK_TEXT)?, "text")?,
            },
            "ping" => Msg::Ping,
            "pong" => Msg::Pong,
            "error" => Msg::Error {
                code: text_field(&o, "code", 64)?,
                message: opt_text(&o, "message", 1024)?.unwrap_or(Text::Str("")),
                call_id: match o.get("call_id") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(id_field(&o, "call_id")?),
                },
            },
            _ => return Err(ProtoError::UnknownType),
        })
    }

    /// Encodes this message as one JSON object.
    ///
    /// # Errors
    /// [`Full`] if the sink is full.
    pub fn encode<S: Sink + ?Sized>(&self, sink: &mut S) -> Result<(), Full> {
        let mut w = Writer::new(sink);
        w.begin_obj()?.field_str("type", self.type_name())?;
        match self {
            Msg::Hello {
                role,
                token,
                max_calls,
            } => {
                w.field_str("role", role.as_str())?
                    .field_u64("v", VERSION)?;
                if let Some(t) = token {
                    w.key("token")?;
                    t.write(&mut w)?;
                }
                if let Some(n) = max_calls {
                    w.field_u64("max_calls", *n)?;
                }
            }
            Msg::Welcome {
                role,
                agent_id,
                session,
                heartbeat_interval,
                ice_servers,
                challenge,
            } => {
                w.field_str("role", role.as_str())?;
                if let Some(a) = agent_id {
                    w.field_str("agent_id", a)?;
                }
                w.field_str("session", session)?
                    .field_u64("heartbeat_interval", *heartbeat_interval)?;
                w.field_u64("v", VERSION)?;
                w.key("ice_servers")?;
                match json::parse(ice_servers.0) {
                    Ok(v) => w.value(v)?,
                    Err(_) => w.begin_arr()?.end_arr()?,
                };
                if let Some(c) = challenge {
                    w.key("challenge")?.begin_obj()?;
                    c.write_fields(&mut w)?;
                    w.end_obj()?;
                }
            }
            Msg::Call {
                to,
                sdp_offer,
                proof,
                callback,
            } => {
                w.field_str("to", to)?.key("sdp_offer")?;
                sdp_offer.write(&mut w)?;
                if let Some(p) = proof {
                    write_proof(&mut w, p)?;
                }
                if let Some(c) = callback {
                    w.field_str("callback", c)?;
                }
            }
            Msg::Verify { proof } => write_proof(&mut w, proof)?,
            Msg::Challenge(c) => c.write_fields(&mut w)?,
            Msg::Verified { hv } => {
                w.key("hv")?;
                hv.write(&mut w)?;
            }
            Msg::Ringing { call_id, to } => {
                w.field_str("call_id", call_id)?.field_str("to", to)?;
            }
            Msg::Incoming {
                call_id,
                from,
                sdp_offer,
                attestation,
                hv,
                ice_servers,
                callback,
            } => {
                w.field_str("call_id", call_id)?
                    .field_str("from", from)?
                    .key("sdp_offer")?;
                sdp_offer.write(&mut w)?;
                w.key("attestation")?;
                attestation.write(&mut w)?;
                w.key("hv")?;
                hv.write(&mut w)?;
                if let Some(ice) = ice_servers
                    && let Ok(v) = json::parse(ice.0)
                {
                    w.key("ice_servers")?.value(v)?;
                }
                if let Some(c) = callback {
                    w.field_str("callback", c)?;
                }
            }
            Msg::Answer {
                call_id,
                sdp_answer,
                answer_sig,
            } => {
                w.field_str("call_id", call_id)?.key("sdp_answer")?;
                sdp_answer.write(&mut w)?;
                if let Some(sig) = answer_sig {
                    w.key("answer_sig")?;
                    sig.write(&mut w)?;
                }
            }
            Msg::Reject { call_id, reason } | Msg::Hangup { call_id, reason } => {
                w.field_str("call_id", call_id)?.key("reason")?;
                reason.write(&mut w)?;
            }
            Msg::Ice { call_id, candidate } => {
                w.field_str("call_id", call_id)?.key("candidate")?;
                candidate.write(&mut w)?;
            }
            Msg::Callback { to, text } => {
                w.field_str("to", to)?.key("text")?;
                text.write(&mut w)?;
            }
            Msg::Ping | Msg::Pong => {}
            Msg::Error {
                code,
                message,
                call_id,
            } => {
                w.key("code")?;
                code.write(&mut w)?;
                w.key("message")?;
                message.write(&mut w)?;
                if let Some(c) = call_id {
                    w.field_str("call_id", c)?;
                }
            }
        }
        w.end_obj()?;
        Ok(())
    }
}

fn challenge<'a>(c: &Object<'a>) -> Result<Challenge<'a>, ProtoError> {
    Ok(Challenge {
        method: text_field(c, "method", 16)?,
        challenge: text_field(c, "challenge", 64)?,
        difficulty: u8::try_from(
            c.opt_u64("difficulty")?
                .ok_or(ProtoError::Missing("difficulty"))?,
        )
        .map_err(|_| ProtoError::BadField("difficulty"))?,
        expires_in: c.opt_u64("expires_in")?.unwrap_or(0),
    })
}

impl Challenge<'_> {
    fn write_fields<S: Sink + ?Sized>(&self, w: &mut Writer<'_, S>) -> Result<(), Full> {
        w.key("method")?;
        self.method.write(w)?;
        w.field_str("alg", "sha256")?.key("challenge")?;
        self.challenge.write(w)?;
        w.field_u64("difficulty", u64::from(self.difficulty))?
            .field_u64("expires_in", self.expires_in)?;
        Ok(())
    }
}

fn nonempty<'a>(t: Text<'a>, key: &'static str) -> Result<Text<'a>, ProtoError> {
    if t.is_empty() {
        Err(ProtoError::Missing(key))
    } else {
        Ok(t)
    }
}

fn write_proof<S: Sink + ?Sized>(w: &mut Writer<'_, S>, p: &Proof<'_>) -> Result<(), Full> {
    w.key("proof")?.begin_obj()?.key("method")?;
    p.method.write(w)?;
    w.key("challenge")?;
    p.challenge.write(w)?;
    w.key("nonce")?;
    p.nonce.write(w)?;
    w.end_obj()?;
    Ok(())
}

/// Audio codecs an agent declares, as a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Codecs(pub u8);

impl Codecs {
    /// Opus.
    pub const OPUS: Codecs = Codecs(1);
    /// G.711 µ-law.
    pub const PCMU: Codecs = Codecs(2);
    /// G.711 A-law.
    pub const PCMA: Codecs = Codecs(4);
    /// G.722.
    pub const G722: Codecs = Codecs(8);
    const NAMES: [(&'static str, Codecs); 4] = [
        ("opus", Codecs::OPUS),
        ("pcmu", Codecs::PCMU),
        ("pcma", Codecs::PCMA),
        ("g722", Codecs::G722),
    ];
    /// Whether every codec of `other` is in `self`.
    pub fn contains(self, other: Codecs) -> bool {
        self.0 & other.0 == other.0
    }
    /// Names of the codecs in the set.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(_, c)| self.contains(*c))
            .map(|(n, _)| n)
    }
    fn from_array(a: json::Array<'_>) -> Result<Self, ProtoError> {
        let mut set = Codecs(0);
        for (i, v) in a.iter().enumerate() {
            let Value::Str(name) = v else {
                return Err(ProtoError::BadField("capabilities"));
            };
            if i >= 8 {
                return Err(ProtoError::TooLong("capabilities"));
            }
            // Unknown codec names are ignored (forward compatibility).
            for (n, c) in Self::NAMES {
                if name.chars().map(|c| c.to_ascii_lowercase()).eq(n.chars()) {
                    set.0 |= c.0;
                }
            }
        }
        Ok(set)
    }
    fn write<S: Sink + ?Sized>(self, w: &mut Writer<'_, S>) -> Result<(), Full> {
        w.begin_obj()?.key("audio")?.begin_arr()?;
        for n in self.names() {
            w.str(n)?;
        }
        w.end_arr()?.end_obj()?;
        Ok(())
    }
}

/// `POST /register` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest<'a> {
    /// The id to register (`sub` of the token must match).
    pub agent_id: AgentId,
    /// Where the bot can also be reached (free text, ≤ 256 bytes).
    pub endpoint: Option<Text<'a>>,
    /// Display name (≤ 64 bytes).
    pub name: Option<Text<'a>>,
    /// Declared audio codecs.
    pub audio: Option<Codecs>,
    /// Seconds to keep the registration without a socket.
    pub ttl: Option<u64>,
    /// Simultaneous calls accepted.
    pub max_calls: Option<u64>,
    /// Whether to appear in `GET /agents`.
    pub listed: Option<bool>,
}

impl<'a> RegisterRequest<'a> {
    /// Decodes and bounds-checks a register body.
    ///
    /// # Errors
    /// [`ProtoError`] naming the field.
    pub fn decode(body: &'a str) -> Result<Self, ProtoError> {
        let o = json::parse_object(body)?;
        let audio = match o.opt_obj("capabilities")? {
            None => None,
            Some(c) => match c.opt_arr("audio")? {
                None => Some(Codecs(0)),
                Some(a) => Some(Codecs::from_array(a)?),
            },
        };
        let ttl = o.opt_u64("ttl")?;
        if matches!(ttl, Some(t) if !(MIN_TTL..=MAX_TTL).contains(&t)) {
            return Err(ProtoError::BadField("ttl"));
        }
        let max_calls = o.opt_u64("max_calls")?;
        if matches!(max_calls, Some(n) if n == 0 || n > MAX_CALLS) {
            return Err(ProtoError::BadField("max_calls"));
        }
        Ok(RegisterRequest {
            agent_id: id_field(&o, "agent_id")?,
            endpoint: opt_text(&o, "endpoint", MAX_ENDPOINT_LEN)?,
            name: opt_text(&o, "name", MAX_NAME_LEN)?,
            audio,
            ttl,
            max_calls,
            listed: o.opt_bool("listed")?,
        })
    }
}

/// How a caller checks a bot's `answer_sig` ([`crate::answer_sig`]): the
/// `answer_sig` and `key` members of a lookup answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKey<'a> {
    /// The id is the RFC 7638 thumbprint of the bot's ES256 key (open
    /// registration): the signature carries the key, the id proves it.
    Thumbprint,
    /// The bot's ES256 public key from the daemon's keys file (trust it on
    /// first use: the daemon publishes it).
    Key(&'a p256::ecdsa::VerifyingKey),
    /// No key a caller can check (an HS256 shared secret): the answer is
    /// not signed and the caller cannot tell it from the daemon's.
    None,
}

impl AnswerKey<'_> {
    /// The wire name (`answer_sig` member).
    pub fn as_str(&self) -> &'static str {
        match self {
            AnswerKey::Thumbprint => "thumbprint",
            AnswerKey::Key(_) => "key",
            AnswerKey::None => "none",
        }
    }
}

/// `GET /lookup/{id}` answer (and each entry of `GET /agents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo<'a> {
    /// The agent id.
    pub agent_id: &'a str,
    /// Registered endpoint, if any.
    pub endpoint: Option<&'a str>,
    /// Display name, if any.
    pub name: Option<&'a str>,
    /// Whether the bot's socket is connected.
    pub online: bool,
    /// Declared codecs.
    pub audio: Codecs,
    /// Seconds until the registration expires.
    pub expires_in: u64,
    /// Listed in the directory.
    pub listed: bool,
    /// Simultaneous calls accepted.
    pub max_calls: u64,
    /// How callers check the bot's answers.
    pub answer_key: AnswerKey<'a>,
}

impl AgentInfo<'_> {
    /// Writes the JSON object.
    ///
    /// # Errors
    /// [`Full`] if the sink is full.
    pub fn write<S: Sink + ?Sized>(&self, w: &mut Writer<'_, S>) -> Result<(), Full> {
        w.begin_obj()?.field_str("agent_id", self.agent_id)?;
        w.key("endpoint")?;
        match self.endpoint {
            Some(e) => w.str(e)?,
            None => w.null()?,
        };
        w.key("name")?;
        match self.name {
            Some(n) => w.str(n)?,
            None => w.null()?,
        };
        w.key("online")?.bool(self.online)?;
        w.key("capabilities")?;
        self.audio.write(w)?;
        w.field_u64("expires_in", self.expires_in)?;
        w.key("listed")?.bool(self.listed)?;
        w.field_u64("max_calls", self.max_calls)?;
        w.field_str("answer_sig", self.answer_key.as_str())?;
        w.key("key")?;
        match self.answer_key {
            AnswerKey::Key(vk) => crate::jwt::key::write_public_jwk(w, vk, None)?,
            _ => {
                w.null()?;
            }
        }
        w.end_obj()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(m: &Msg<'_>) -> heapless::String<2048> {
        let mut v = heapless::Vec::<u8, 2048>::new();
        m.encode(&mut v).unwrap();
        heapless::String::from_utf8(v).unwrap()
    }

    fn id(s: &str) -> AgentId {
        AgentId::new(s).unwrap()
    }

    #[test]
    fn every_message_round_trips() {
        let sdp = "v=0\r\na=fingerprint:sha-256 AB:CD\r\n";
        let ice = RawJson::new(r#"[{"urls":["stun:127.0.0.1:3478"]}]"#).unwrap();
        let msgs = [
            Msg::Hello {
                role: Role::Bot,
                token: Some("a.b.c".into()),
                max_calls: Some(2),
            },
            Msg::Hello {
                role: Role::Caller,
                token: None,
                max_calls: None,
            },
            Msg::Welcome {
                role: Role::Caller,
                agent_id: None,
                session: id("s1"),
                heartbeat_interval: 30,
                ice_servers: ice,
                challenge: Some(Challenge {
                    method: "pow".into(),
                    challenge: "xyz".into(),
                    difficulty: 18,
                    expires_in: 300,
                }),
            },
            Msg::Welcome {
                role: Role::Bot,
                agent_id: Some(id("bot")),
                session: id("s2"),
                heartbeat_interval: 30,
                ice_servers: ice,
                challenge: None,
            },
            Msg::Call {
                to: id("bot"),
                sdp_offer: sdp.into(),
                proof: Some(Proof {
                    method: "pow".into(),
                    challenge: "xyz".into(),
                    nonce: "12".into(),
                }),
                callback: Some(id("BTBZMqHH6r4Tts7J_aSIgg")),
            },
            Msg::Verify {
                proof: Proof {
                    method: "pow".into(),
                    challenge: "xyz".into(),
                    nonce: "12".into(),
                },
            },
            Msg::Verified { hv: "pow".into() },
            Msg::Challenge(Challenge {
                method: "pow".into(),
                challenge: "abc".into(),
                difficulty: 12,
                expires_in: 60,
            }),
            Msg::Ringing {
                call_id: id("c1"),
                to: id("bot"),
            },
            Msg::Incoming {
                call_id: id("c1"),
                from: id("s1"),
                sdp_offer: sdp.into(),
                attestation: "x.y.z".into(),
                hv: "pow".into(),
                ice_servers: Some(
                    RawJson::new(r#"[{"urls":["turn:h:3478"],"username":"1:b","credential":"c"}]"#)
                        .unwrap(),
                ),
                callback: Some(id("BTBZMqHH6r4Tts7J_aSIgg")),
            },
            Msg::Answer {
                call_id: id("c1"),
                sdp_answer: sdp.into(),
                answer_sig: None,
            },
            Msg::Answer {
                call_id: id("c1"),
                sdp_answer: sdp.into(),
                answer_sig: Some("eyJ.eyJ.sig".into()),
            },
            Msg::Reject {
                call_id: id("c1"),
                reason: "busy".into(),
            },
            Msg::Ice {
                call_id: id("c1"),
                candidate: Candidate::Sdp {
                    candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
                    sdp_mid: Some("0"),
                    mline_index: Some(0),
                },
            },
            Msg::Ice {
                call_id: id("c1"),
                candidate: Candidate::End,
            },
            Msg::Hangup {
                call_id: id("c1"),
                reason: "bye".into(),
            },
            Msg::Callback {
                to: id("BTBZMqHH6r4Tts7J_aSIgg"),
                text: r"Your order is ready \u2014 call me".into(),
            },
            Msg::Ping,
            Msg::Pong,
            Msg::Error {
                code: "busy".into(),
                message: "agent is busy".into(),
                call_id: Some(id("c1")),
            },
        ];
        for m in &msgs {
            let text = enc(m);
            let back = Msg::decode(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(back.type_name(), m.type_name());
            // Re-encoding the decoded form gives the same bytes (escapes kept).
            assert_eq!(enc(&back), text, "{text}");
        }
    }

    #[test]
    fn ice_candidates_relay_verbatim() {
        let text = r#"{"type":"ice","call_id":"c1","candidate":{"candidate":"candidate:1 1 udp 2 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab"}}"#;
        let m = Msg::decode(text).unwrap();
        assert_eq!(enc(&m).as_str(), text);
        let Msg::Ice { candidate, .. } = m else {
            panic!()
        };
        assert!(
            candidate
                .candidate_text()
                .unwrap()
                .eq_str("candidate:1 1 udp 2 127.0.0.1 9 typ host")
        );
    }

    #[test]
    fn refuses_bad_messages() {
        let cases: [(&str, ProtoError); 13] = [
            ("[]", ProtoError::BadField("(document)")),
            ("{}", ProtoError::NoType),
            (r#"{"type":"dance"}"#, ProtoError::UnknownType),
            (r#"{"type":5}"#, ProtoError::BadField("type")),
            (
                r#"{"type":"call","to":"bot"}"#,
                ProtoError::Missing("sdp_offer"),
            ),
            (
                r#"{"type":"call","to":"b/t","sdp_offer":"v=0"}"#,
                ProtoError::BadId("to"),
            ),
            (
                r#"{"type":"call","to":"bot","sdp_offer":""}"#,
                ProtoError::Missing("sdp_offer"),
            ),
            (
                r#"{"type":"hello","role":"admin"}"#,
                ProtoError::BadField("role"),
            ),
            (
                r#"{"type":"hello","role":"bot","v":2}"#,
                ProtoError::UnsupportedVersion,
            ),
            (
                r#"{"type":"hello","role":"bot","max_calls":0}"#,
                ProtoError::BadField("max_calls"),
            ),
            (
                r#"{"type":"ice","call_id":"c","candidate":5}"#,
                ProtoError::BadField("candidate"),
            ),
            (
                r#"{"type":"ping","type":"pong"}"#,
                ProtoError::Json(JsonError::DuplicateKey),
            ),
            (
                r#"{"type":"answer","call_id":"c","sdp_answer":"v=0","answer_sig":7}"#,
                ProtoError::BadField("answer_sig"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Msg::decode(text), Err(want), "{text}");
        }
        let long_reason = r#"{"type":"hangup","call_id":"c","reason":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
        assert_eq!(Msg::decode(long_reason), Err(ProtoError::TooLong("reason")));
        #[cfg(feature = "alloc")]
        let long_sig = alloc::format!(
            r#"{{"type":"answer","call_id":"c","sdp_answer":"v=0","answer_sig":"{}"}}"#,
            "x".repeat(crate::answer_sig::MAX_LEN + 1)
        );
        #[cfg(feature = "alloc")]
        assert_eq!(
            Msg::decode(&long_sig),
            Err(ProtoError::TooLong("answer_sig"))
        );
        assert_eq!(ProtoError::UnknownType.code(), "unknown_type");
        assert_eq!(ProtoError::BadId("agent_id").code(), "invalid_agent_id");
    }

    #[test]
    fn register_body_rules() {
        let r = RegisterRequest::decode(
            r#"{"agent_id":"w","endpoint":"wss://x","name":"W","capabilities":{"audio":["opus","speex"]},"ttl":60,"max_calls":2,"listed":true,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.agent_id.as_str(), "w");
        assert_eq!(r.audio, Some(Codecs::OPUS));
        assert_eq!(
            (r.ttl, r.max_calls, r.listed),
            (Some(60), Some(2), Some(true))
        );
        for (body, err) in [
            (r#"{}"#, ProtoError::Missing("agent_id")),
            (r#"{"agent_id":""}"#, ProtoError::BadId("agent_id")),
            (r#"{"agent_id":"a","ttl":0}"#, ProtoError::BadField("ttl")),
            (
                r#"{"agent_id":"a","ttl":86401}"#,
                ProtoError::BadField("ttl"),
            ),
            (
                r#"{"agent_id":"a","ttl":"60"}"#,
                ProtoError::BadField("ttl"),
            ),
            (
                r#"{"agent_id":"a","ttl":60.5}"#,
                ProtoError::BadField("ttl"),
            ),
            (
                r#"{"agent_id":"a","max_calls":100}"#,
                ProtoError::BadField("max_calls"),
            ),
            (
                r#"{"agent_id":"a","listed":"yes"}"#,
                ProtoError::BadField("listed"),
            ),
            (
                r#"{"agent_id":"a","capabilities":{"audio":[1]}}"#,
                ProtoError::BadField("capabilities"),
            ),
            (r#"{"agent_id":7}"#, ProtoError::BadField("agent_id")),
        ] {
            assert_eq!(RegisterRequest::decode(body), Err(err), "{body}");
        }
    }

    #[test]
    fn agent_info_shape() {
        let info = AgentInfo {
            agent_id: "w",
            endpoint: None,
            name: Some("W\"x"),
            online: true,
            audio: Codecs::OPUS,
            expires_in: 42,
            listed: false,
            max_calls: 1,
            answer_key: AnswerKey::None,
        };
        let mut v = heapless::Vec::<u8, 512>::new();
        info.write(&mut Writer::new(&mut v)).unwrap();
        assert_eq!(
            core::str::from_utf8(&v).unwrap(),
            r#"{"agent_id":"w","endpoint":null,"name":"W\"x","online":true,"capabilities":{"audio":["opus"]},"expires_in":42,"listed":false,"max_calls":1,"answer_sig":"none","key":null}"#
        );
        // An ES256 keys-file bot publishes its public JWK.
        let d = [7u8; 32];
        let sk = p256::ecdsa::SigningKey::from_slice(&d).unwrap();
        let vk = *sk.verifying_key();
        let info = AgentInfo {
            answer_key: AnswerKey::Key(&vk),
            ..info
        };
        let mut v = heapless::Vec::<u8, 1024>::new();
        info.write(&mut Writer::new(&mut v)).unwrap();
        let text = core::str::from_utf8(&v).unwrap();
        assert!(
            text.contains(r#""answer_sig":"key","key":{"kty":"EC","crv":"P-256""#),
            "{text}"
        );
        let o = json::parse_object(text).unwrap();
        let jwk = o.opt_obj("key").unwrap().unwrap();
        assert_eq!(crate::jwt::key::ec_public_from_jwk(&jwk), Ok(vk));
    }
}
