//! The firmware surface: no allocator, no threads, no std. Verifying the
//! daemon's human attestation against its JWKS, decoding and encoding the
//! signaling messages, validating ids — all by the SDK's and botcall-core's
//! own code, over caller-owned buffers. Text goes in as (pointer, length)
//! pairs (no NUL needed); a null pointer is allowed only with length 0.

use core::ffi::c_char;

use botcall_core::id::{self, AgentId};
use botcall_core::json::{Sink, SliceSink, write::Full};
use botcall_core::protocol::{Candidate, Msg, Role, Text};
use botcall_sdk::attest::{Expect, HvPolicy};
use botcall_sdk::{HumanAttestation, verify_human_attestation, verify_incoming};

use crate::entry::{guard, note};
use crate::status::*;

/// Room for an id and its NUL (ids are 1–64 characters).
pub const BOTCALL_ID_CAP: usize = 65;
/// Room for an issuer name and its NUL.
pub const BOTCALL_ISSUER_CAP: usize = 129;
/// Room for a human-check method name and its NUL.
pub const BOTCALL_HV_CAP: usize = 17;
/// Room for a DTLS fingerprint (`sha-256 AB:CD:…`) and its NUL.
pub const BOTCALL_FINGERPRINT_CAP: usize = 203;

/// The verified claims of a human attestation, NUL-terminated text in
/// fixed arrays (no allocation, nothing to free).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BotcallClaims {
    /// The daemon that signed it (`iss`).
    pub issuer: [c_char; BOTCALL_ISSUER_CAP],
    /// The agent called (`aud`).
    pub agent_id: [c_char; BOTCALL_ID_CAP],
    /// The caller's session id (`sub`).
    pub session: [c_char; BOTCALL_ID_CAP],
    /// The call it is for.
    pub call_id: [c_char; BOTCALL_ID_CAP],
    /// How the human was checked: `none`, `pow`, `webauthn`.
    pub hv: [c_char; BOTCALL_HV_CAP],
    /// The caller's sha-256 DTLS fingerprint.
    pub fingerprint: [c_char; BOTCALL_FINGERPRINT_CAP],
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

impl BotcallClaims {
    pub(crate) fn from_attestation(a: &HumanAttestation) -> Self {
        let mut c = BotcallClaims {
            issuer: [0; BOTCALL_ISSUER_CAP],
            agent_id: [0; BOTCALL_ID_CAP],
            session: [0; BOTCALL_ID_CAP],
            call_id: [0; BOTCALL_ID_CAP],
            hv: [0; BOTCALL_HV_CAP],
            fingerprint: [0; BOTCALL_FINGERPRINT_CAP],
            iat: a.iat,
            exp: a.exp,
        };
        fill(&mut c.issuer, &a.iss);
        fill(&mut c.agent_id, a.agent_id.as_str());
        fill(&mut c.session, a.caller.as_str());
        fill(&mut c.call_id, a.call_id.as_str());
        fill(&mut c.hv, &a.hv);
        fill(&mut c.fingerprint, &a.fp);
        c
    }
}

/// Copies `s` and a NUL into `dst` (each field's capacity holds its maximum).
fn fill(dst: &mut [c_char], s: &str) {
    let n = s.len().min(dst.len().saturating_sub(1));
    for (d, b) in dst.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *d = *b as c_char;
    }
    if let Some(z) = dst.get_mut(n) {
        *z = 0;
    }
}

/// Bytes from a (pointer, length) pair.
///
/// # Safety
/// `p` must point to `len` readable bytes that stay valid for `'a`, or be
/// null with `len == 0`.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], BotcallStatus> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(note(
            BOTCALL_ERR_INVALID_ARGUMENT,
            "a null pointer with a nonzero length",
        ));
    }
    // SAFETY: non-null and `len` readable bytes, by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// UTF-8 text from a (pointer, length) pair.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn text<'a>(p: *const u8, len: usize) -> Result<&'a str, BotcallStatus> {
    // SAFETY: forwarded contract.
    let b = unsafe { bytes(p, len) }?;
    core::str::from_utf8(b).map_err(|_| note(BOTCALL_ERR_INVALID_ARGUMENT, "text is not UTF-8"))
}

fn write_claims(out: *mut BotcallClaims, a: &HumanAttestation) {
    if !out.is_null() {
        // SAFETY: non-null; the caller passes a pointer to a BotcallClaims it owns.
        unsafe { out.write(BotcallClaims::from_attestation(a)) };
    }
}

/// Checks an id (agent, call or session id: 1–64 of `[A-Za-z0-9._-]`).
/// `BOTCALL_OK` or `BOTCALL_ERR_MALFORMED`.
///
/// # Safety
/// `id` points to `len` readable bytes (or is null with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_validate_id(id: *const u8, len: usize) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let b = unsafe { bytes(id, len) }?;
        let s =
            core::str::from_utf8(b).map_err(|_| note(BOTCALL_ERR_MALFORMED, "an id is ASCII"))?;
        id::validate(s).map_err(|_| note(BOTCALL_ERR_MALFORMED, "not a valid id"))?;
        Ok(())
    })
}

/// Verifies a human attestation: ES256 signature against `jwks` (the
/// daemon's `/.well-known/jwks.json` text), time window at `now_unix` (60 s
/// leeway), audience `agent_id`. On `BOTCALL_OK` the claims are written to
/// `out` (may be null); otherwise the verdict is a `BOTCALL_ATT_*` code.
/// This does not check the call id, fingerprint or policy: see
/// `botcall_verify_incoming`.
///
/// # Safety
/// Each (pointer, length) pair points to readable bytes; `out` is null or
/// points to a writable `BotcallClaims`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_verify_attestation(
    token: *const u8,
    token_len: usize,
    jwks: *const u8,
    jwks_len: usize,
    agent_id: *const u8,
    agent_id_len: usize,
    now_unix: u64,
    out: *mut BotcallClaims,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract, for each pair.
        let (token, jwks, agent) = unsafe {
            (
                text(token, token_len)?,
                text(jwks, jwks_len)?,
                text(agent_id, agent_id_len)?,
            )
        };
        let a = verify_human_attestation(token, jwks, agent, now_unix)
            .map_err(|e| note(attestation_status(e), "attestation refused"))?;
        write_claims(out, &a);
        Ok(())
    })
}

/// Verifies an incoming call's attestation completely, as the SDK does
/// before it answers: signature, time, audience, `call_id`, the offer's
/// DTLS fingerprint, and `policy` (bits: 1 `none`, 2 `pow`, 4 `webauthn`;
/// 0 means all). `issuer` may be empty (not checked).
///
/// # Safety
/// As `botcall_verify_attestation`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_verify_incoming(
    token: *const u8,
    token_len: usize,
    jwks: *const u8,
    jwks_len: usize,
    agent_id: *const u8,
    agent_id_len: usize,
    call_id: *const u8,
    call_id_len: usize,
    sdp_offer: *const u8,
    sdp_offer_len: usize,
    issuer: *const u8,
    issuer_len: usize,
    policy: u8,
    now_unix: u64,
    out: *mut BotcallClaims,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract, for each pair.
        let (token, jwks, agent, call, offer, iss) = unsafe {
            (
                text(token, token_len)?,
                text(jwks, jwks_len)?,
                text(agent_id, agent_id_len)?,
                text(call_id, call_id_len)?,
                text(sdp_offer, sdp_offer_len)?,
                text(issuer, issuer_len)?,
            )
        };
        let expect = Expect {
            agent_id: agent,
            call_id: call,
            sdp_offer: offer,
            policy: if policy == 0 {
                HvPolicy::ANY
            } else {
                HvPolicy(policy)
            },
            issuer: (!iss.is_empty()).then_some(iss),
        };
        let a = verify_incoming(token, jwks, &expect, now_unix)
            .map_err(|e| note(attestation_status(e), "attestation refused"))?;
        write_claims(out, &a);
        Ok(())
    })
}

/// A piece of text in a caller's buffer: `len` bytes at `ptr`, not
/// NUL-terminated. Empty (`len` 0) when the message has no such field.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BotcallStr {
    /// First byte (null when empty).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl BotcallStr {
    const EMPTY: BotcallStr = BotcallStr {
        ptr: core::ptr::null(),
        len: 0,
    };
}

/// `hello`
pub const BOTCALL_MSG_HELLO: i32 = 1;
/// `welcome`
pub const BOTCALL_MSG_WELCOME: i32 = 2;
/// `call`
pub const BOTCALL_MSG_CALL: i32 = 3;
/// `verify`
pub const BOTCALL_MSG_VERIFY: i32 = 4;
/// `challenge`
pub const BOTCALL_MSG_CHALLENGE: i32 = 5;
/// `verified`
pub const BOTCALL_MSG_VERIFIED: i32 = 6;
/// `ringing`
pub const BOTCALL_MSG_RINGING: i32 = 7;
/// `incoming`
pub const BOTCALL_MSG_INCOMING: i32 = 8;
/// `answer`
pub const BOTCALL_MSG_ANSWER: i32 = 9;
/// `reject`
pub const BOTCALL_MSG_REJECT: i32 = 10;
/// `ice`
pub const BOTCALL_MSG_ICE: i32 = 11;
/// `hangup`
pub const BOTCALL_MSG_HANGUP: i32 = 12;
/// `ping`
pub const BOTCALL_MSG_PING: i32 = 13;
/// `pong`
pub const BOTCALL_MSG_PONG: i32 = 14;
/// `error`
pub const BOTCALL_MSG_ERROR: i32 = 15;

/// A decoded signaling message. Text fields point into the scratch buffer
/// given to `botcall_msg_decode` (unescaped), or are empty.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BotcallMsg {
    /// `BOTCALL_MSG_*`.
    pub kind: i32,
    /// `call_id` (most call messages).
    pub call_id: BotcallStr,
    /// The other party: `from` (incoming), `to` (call, ringing), `session` (welcome).
    pub peer: BotcallStr,
    /// `agent_id` (welcome to a bot).
    pub agent_id: BotcallStr,
    /// `sdp_offer` (call, incoming) or `sdp_answer` (answer).
    pub sdp: BotcallStr,
    /// `attestation` (incoming).
    pub attestation: BotcallStr,
    /// `reason` (reject, hangup), `code` (error), `hv` (incoming, verified),
    /// `candidate` (ice; empty for end-of-candidates), `token` (hello),
    /// `answer_sig` (answer).
    pub text: BotcallStr,
    /// `message` (error), `ice_servers` JSON (welcome, incoming).
    pub extra: BotcallStr,
    /// `heartbeat_interval` (welcome), `max_calls` (hello), else 0.
    pub number: u64,
}

/// Hands out pieces of the caller's scratch buffer.
struct Scratch<'b> {
    rest: &'b mut [u8],
}

impl Scratch<'_> {
    fn put(&mut self, t: &Text<'_>) -> Result<BotcallStr, BotcallStatus> {
        let rest = core::mem::take(&mut self.rest);
        let n = match t.decode_into(rest) {
            Ok(s) => s.len(),
            Err(_) => {
                return Err(note(
                    BOTCALL_ERR_BUFFER_TOO_SMALL,
                    "scratch buffer too small",
                ));
            }
        };
        let (used, tail) = rest.split_at_mut(n);
        self.rest = tail;
        Ok(BotcallStr {
            ptr: used.as_ptr(),
            len: n,
        })
    }

    fn put_str(&mut self, s: &str) -> Result<BotcallStr, BotcallStatus> {
        self.put(&Text::Str(s))
    }

    fn put_opt(&mut self, t: Option<&Text<'_>>) -> Result<BotcallStr, BotcallStatus> {
        t.map_or(Ok(BotcallStr::EMPTY), |t| self.put(t))
    }
}

/// Decodes one signaling message (the JSON text of a WebSocket frame) with
/// the same strict decoder the daemon and the SDK use. Text fields are
/// unescaped into `scratch`; a scratch buffer as large as the message is
/// always enough. `BOTCALL_ERR_MALFORMED` for a message the protocol
/// refuses (unknown type, bad id, missing field, too long).
///
/// # Safety
/// `json`/`json_len` and `scratch`/`scratch_cap` are readable resp.
/// writable buffers; `out` points to a writable `BotcallMsg`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_msg_decode(
    json: *const u8,
    json_len: usize,
    scratch: *mut u8,
    scratch_cap: usize,
    out: *mut BotcallMsg,
) -> BotcallStatus {
    guard(|| {
        if out.is_null() || (scratch.is_null() && scratch_cap > 0) {
            return Err(note(BOTCALL_ERR_INVALID_ARGUMENT, "a null pointer"));
        }
        // SAFETY: the caller's contract.
        let text = unsafe { text(json, json_len) }?;
        let rest: &mut [u8] = if scratch_cap == 0 {
            &mut []
        } else {
            // SAFETY: non-null, `scratch_cap` writable bytes (the contract).
            unsafe { core::slice::from_raw_parts_mut(scratch, scratch_cap) }
        };
        let mut s = Scratch { rest };
        let msg =
            Msg::decode(text).map_err(|_| note(BOTCALL_ERR_MALFORMED, "not a valid message"))?;
        let mut m = BotcallMsg {
            kind: 0,
            call_id: BotcallStr::EMPTY,
            peer: BotcallStr::EMPTY,
            agent_id: BotcallStr::EMPTY,
            sdp: BotcallStr::EMPTY,
            attestation: BotcallStr::EMPTY,
            text: BotcallStr::EMPTY,
            extra: BotcallStr::EMPTY,
            number: 0,
        };
        if let Some(id) = msg.call_id() {
            m.call_id = s.put_str(id.as_str())?;
        }
        m.kind = match &msg {
            Msg::Hello {
                token, max_calls, ..
            } => {
                m.text = s.put_opt(token.as_ref())?;
                m.number = max_calls.unwrap_or(0);
                BOTCALL_MSG_HELLO
            }
            Msg::Welcome {
                agent_id,
                session,
                heartbeat_interval,
                ice_servers,
                ..
            } => {
                m.peer = s.put_str(session.as_str())?;
                if let Some(a) = agent_id {
                    m.agent_id = s.put_str(a.as_str())?;
                }
                m.extra = s.put_str(ice_servers.as_str())?;
                m.number = *heartbeat_interval;
                BOTCALL_MSG_WELCOME
            }
            Msg::Call { to, sdp_offer, .. } => {
                m.peer = s.put_str(to.as_str())?;
                m.sdp = s.put(sdp_offer)?;
                BOTCALL_MSG_CALL
            }
            Msg::Verify { .. } => BOTCALL_MSG_VERIFY,
            Msg::Challenge(c) => {
                m.text = s.put(&c.method)?;
                BOTCALL_MSG_CHALLENGE
            }
            Msg::Verified { hv } => {
                m.text = s.put(hv)?;
                BOTCALL_MSG_VERIFIED
            }
            Msg::Ringing { to, .. } => {
                m.peer = s.put_str(to.as_str())?;
                BOTCALL_MSG_RINGING
            }
            Msg::Incoming {
                from,
                sdp_offer,
                attestation,
                hv,
                ice_servers,
                ..
            } => {
                m.peer = s.put_str(from.as_str())?;
                m.sdp = s.put(sdp_offer)?;
                m.attestation = s.put(attestation)?;
                m.text = s.put(hv)?;
                if let Some(j) = ice_servers {
                    m.extra = s.put_str(j.as_str())?;
                }
                BOTCALL_MSG_INCOMING
            }
            Msg::Answer {
                sdp_answer,
                answer_sig,
                ..
            } => {
                m.sdp = s.put(sdp_answer)?;
                m.text = s.put_opt(answer_sig.as_ref())?;
                BOTCALL_MSG_ANSWER
            }
            Msg::Reject { reason, .. } => {
                m.text = s.put(reason)?;
                BOTCALL_MSG_REJECT
            }
            Msg::Ice { candidate, .. } => {
                m.text = s.put_opt(candidate.candidate_text().as_ref())?;
                BOTCALL_MSG_ICE
            }
            Msg::Hangup { reason, .. } => {
                m.text = s.put(reason)?;
                BOTCALL_MSG_HANGUP
            }
            Msg::Ping => BOTCALL_MSG_PING,
            Msg::Pong => BOTCALL_MSG_PONG,
            Msg::Error { code, message, .. } => {
                m.text = s.put(code)?;
                m.extra = s.put(message)?;
                BOTCALL_MSG_ERROR
            }
            #[allow(unreachable_patterns)]
            _ => {
                return Err(note(
                    BOTCALL_ERR_MALFORMED,
                    "a message this ABI does not know",
                ));
            }
        };
        // SAFETY: `out` is non-null and writable (the contract).
        unsafe { out.write(m) };
        Ok(())
    })
}

/// Counts bytes, to tell the caller how big a buffer must be.
struct Count(usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.0 += bytes.len();
        Ok(())
    }
}

/// Encodes `msg` into the caller's buffer; `*out_len` gets the length
/// written, or the length needed with `BOTCALL_ERR_BUFFER_TOO_SMALL`.
fn encode(
    msg: &Msg<'_>,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> Result<(), BotcallStatus> {
    if out_len.is_null() || (out.is_null() && cap > 0) {
        return Err(note(BOTCALL_ERR_INVALID_ARGUMENT, "a null pointer"));
    }
    let mut count = Count(0);
    msg.encode(&mut count)
        .map_err(|_| note(BOTCALL_ERR_INTERNAL, "encode"))?;
    // SAFETY: `out_len` is non-null and writable (the contract).
    unsafe { out_len.write(count.0) };
    if count.0 > cap {
        return Err(note(
            BOTCALL_ERR_BUFFER_TOO_SMALL,
            "output buffer too small",
        ));
    }
    // SAFETY: non-null (cap >= count > 0) and `cap` writable bytes (the contract).
    let buf = unsafe { core::slice::from_raw_parts_mut(out, cap) };
    let mut sink = SliceSink::new(buf);
    msg.encode(&mut sink)
        .map_err(|_| note(BOTCALL_ERR_BUFFER_TOO_SMALL, "output buffer too small"))?;
    Ok(())
}

fn agent_id(s: &str) -> Result<AgentId, BotcallStatus> {
    AgentId::new(s).map_err(|_| note(BOTCALL_ERR_MALFORMED, "not a valid call id"))
}

/// Encodes a bot's `hello` (`max_calls` 0: not sent). `token` may be empty
/// (sent in the upgrade's `Authorization` header instead).
///
/// # Safety
/// Readable input pairs, `out`/`cap` writable, `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_msg_encode_hello(
    token: *const u8,
    token_len: usize,
    max_calls: u64,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let token = unsafe { text(token, token_len) }?;
        let msg = Msg::Hello {
            role: Role::Bot,
            token: (!token.is_empty()).then_some(Text::Str(token)),
            max_calls: (max_calls > 0).then_some(max_calls),
        };
        encode(&msg, out, cap, out_len)
    })
}

/// Encodes `answer` for `call_id` with the bot's SDP answer and its
/// `answer_sig` (the ES256 answer signature, docs/protocol.md; empty: none,
/// as an HS256 bot sends; at most 2048 bytes).
///
/// # Safety
/// As `botcall_msg_encode_hello`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_msg_encode_answer(
    call_id: *const u8,
    call_id_len: usize,
    sdp: *const u8,
    sdp_len: usize,
    answer_sig: *const u8,
    answer_sig_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (id, sdp, sig) = unsafe {
            (
                text(call_id, call_id_len)?,
                text(sdp, sdp_len)?,
                text(answer_sig, answer_sig_len)?,
            )
        };
        if sig.len() > botcall_core::answer_sig::MAX_LEN {
            return Err(note(
                BOTCALL_ERR_MALFORMED,
                "an answer_sig is at most 2048 bytes",
            ));
        }
        let msg = Msg::Answer {
            call_id: agent_id(id)?,
            sdp_answer: Text::Str(sdp),
            answer_sig: (!sig.is_empty()).then_some(Text::Str(sig)),
        };
        encode(&msg, out, cap, out_len)
    })
}

/// Encodes `reject` (kind 0) or `hangup` (kind 1) for `call_id` with `reason`
/// (at most 64 bytes).
///
/// # Safety
/// As `botcall_msg_encode_hello`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_msg_encode_end(
    hangup: bool,
    call_id: *const u8,
    call_id_len: usize,
    reason: *const u8,
    reason_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (id, reason) = unsafe { (text(call_id, call_id_len)?, text(reason, reason_len)?) };
        if reason.len() > botcall_core::protocol::MAX_REASON_LEN {
            return Err(note(BOTCALL_ERR_MALFORMED, "a reason is at most 64 bytes"));
        }
        let (call_id, reason) = (agent_id(id)?, Text::Str(reason));
        let msg = if hangup {
            Msg::Hangup { call_id, reason }
        } else {
            Msg::Reject { call_id, reason }
        };
        encode(&msg, out, cap, out_len)
    })
}

/// Encodes a trickled `ice` candidate (`candidate:…`, with its `sdpMid`,
/// which may be empty); an empty candidate is end-of-candidates.
///
/// # Safety
/// As `botcall_msg_encode_hello`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_msg_encode_ice(
    call_id: *const u8,
    call_id_len: usize,
    candidate: *const u8,
    candidate_len: usize,
    mid: *const u8,
    mid_len: usize,
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (id, cand, mid) = unsafe {
            (
                text(call_id, call_id_len)?,
                text(candidate, candidate_len)?,
                text(mid, mid_len)?,
            )
        };
        let candidate = if cand.is_empty() {
            Candidate::End
        } else {
            Candidate::Sdp {
                candidate: cand,
                sdp_mid: (!mid.is_empty()).then_some(mid),
                mline_index: Some(0),
            }
        };
        let msg = Msg::Ice {
            call_id: agent_id(id)?,
            candidate,
        };
        encode(&msg, out, cap, out_len)
    })
}

/// Encodes `pong` (the answer to the daemon's `ping`).
///
/// # Safety
/// `out`/`cap` writable, `out_len` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_msg_encode_pong(
    out: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> BotcallStatus {
    guard(|| encode(&Msg::Pong, out, cap, out_len))
}

/// A static, NUL-terminated name for a status code (`"timeout"`, `"forged"`).
#[unsafe(no_mangle)]
pub extern "C" fn botcall_status_name(status: BotcallStatus) -> *const c_char {
    status_name(status).as_ptr()
}
