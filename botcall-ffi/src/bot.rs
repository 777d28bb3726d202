//! The bot client over the C ABI: thin wrappers over `botcall-sdk`'s
//! `register_with_discovery` → `Bot` → `Incoming` → `Call`.
//!
//! Thread model: the SDK runs each bot's network I/O (presence, WebRTC) on
//! its own background thread. A blocking call here runs the SDK future on
//! the calling thread until it completes, its timeout passes, or its
//! `BotcallCancel` is triggered; nothing here spawns threads per call. Every
//! handle may be used from any thread; one thread at a time should receive
//! and one send on a call (a second one waits for the first).

use std::collections::VecDeque;
use std::ffi::{CStr, c_char};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use botcall_core::jwt::SigningKey;
use botcall_sdk::audio::{PcmDecoder, PcmEncoder};
use botcall_sdk::{
    Bot, BotConfig, BotError, Call, HvPolicy, Incoming, load_key, register_with_discovery,
};
use event_listener::Event;
use futures_lite::future;

use crate::entry::{guard, note};
use crate::fw::{BotcallClaims, bytes};
use crate::status::*;

/// Options for `botcall_bot_connect`; fill with `botcall_options_init`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BotcallOptions {
    /// `sizeof(BotcallOptions)` of the header the program was built with.
    pub struct_size: u32,
    /// Display name (NUL-terminated), or null.
    pub name: *const c_char,
    /// Listed in the daemon's directory: 1 yes, 0 no, -1 the daemon's default.
    pub listed: i32,
    /// Calls at once (1–4, the SDK's limit; 0: 1).
    pub max_calls: u32,
    /// Accepted human checks: bits 1 `none`, 2 `pow`, 4 `webauthn`; 0: all.
    pub policy: u32,
    /// End a call after this long without media from the caller (ms; 0: 8000).
    pub media_timeout_ms: u32,
    /// CA certificate file (PEM) for an `https://` daemon, or null.
    pub tls_ca_file: *const c_char,
}

/// Fills `opts` with the defaults.
///
/// # Safety
/// `opts` is null or points to a writable `BotcallOptions`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_options_init(opts: *mut BotcallOptions) {
    if opts.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: non-null, writable (the contract).
        unsafe {
            opts.write(BotcallOptions {
                struct_size: size_of::<BotcallOptions>() as u32,
                name: std::ptr::null(),
                listed: -1,
                max_calls: 0,
                policy: 0,
                media_timeout_ms: 0,
                tls_ca_file: std::ptr::null(),
            })
        };
        Ok(())
    });
}

/// A cancellation token for blocking calls (Go's `context.Context`, a UI's
/// stop button). Sticky: once triggered, every wait given it returns
/// `BOTCALL_ERR_CANCELLED` at once.
#[derive(Debug, Default)]
pub struct BotcallCancel {
    fired: AtomicBool,
    event: Event,
}

impl BotcallCancel {
    async fn fired(&self) {
        loop {
            if self.fired.load(Ordering::Acquire) {
                return;
            }
            let l = self.event.listen();
            if self.fired.load(Ordering::Acquire) {
                return;
            }
            l.await;
        }
    }
}

/// A new cancellation token; free it with `botcall_cancel_free` once no
/// wait uses it. Null only if out of memory is impossible to report.
#[unsafe(no_mangle)]
pub extern "C" fn botcall_cancel_new() -> *mut BotcallCancel {
    std::panic::catch_unwind(|| Box::into_raw(Box::<BotcallCancel>::default()))
        .unwrap_or(std::ptr::null_mut())
}

/// Triggers `c`: every wait using it returns `BOTCALL_ERR_CANCELLED`.
/// Safe to call from any thread, any number of times.
///
/// # Safety
/// `c` is null or a live token from `botcall_cancel_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_cancel_trigger(c: *const BotcallCancel) {
    let _ = guard(|| {
        // SAFETY: null or live (the contract).
        if let Some(c) = unsafe { c.as_ref() } {
            c.fired.store(true, Ordering::Release);
            c.event.notify(usize::MAX);
        }
        Ok(())
    });
}

/// Frees a token. No wait may be using it.
///
/// # Safety
/// `c` is null or a token from `botcall_cancel_new`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_cancel_free(c: *mut BotcallCancel) {
    if !c.is_null() {
        let _ = guard(|| {
            // SAFETY: from Box::into_raw in botcall_cancel_new, freed once (the contract).
            drop(unsafe { Box::from_raw(c) });
            Ok(())
        });
    }
}

/// Runs `fut` on this thread until it completes, `timeout_ms` passes
/// (negative: no limit) or `cancel` fires.
fn wait<T>(
    timeout_ms: i32,
    cancel: Option<&BotcallCancel>,
    fut: impl Future<Output = T>,
) -> Result<T, BotcallStatus> {
    let work = async { Ok(fut.await) };
    let cancelled = async {
        match cancel {
            Some(c) => c.fired().await,
            None => future::pending::<()>().await,
        }
        Err(note(BOTCALL_ERR_CANCELLED, "cancelled"))
    };
    let timer = async {
        match u64::try_from(timeout_ms) {
            Ok(ms) => {
                async_io::Timer::after(Duration::from_millis(ms)).await;
            }
            Err(_) => future::pending::<()>().await,
        }
        Err(note(BOTCALL_ERR_TIMEOUT, "timed out"))
    };
    // `or` polls the work first: a result that is ready wins over a timeout of 0.
    async_io::block_on(future::or(work, future::or(cancelled, timer)))
}

/// The status for an SDK error, with its text as the last error.
fn fail(e: &BotError) -> BotcallStatus {
    let text = e.to_string();
    let s = match e {
        BotError::Config(_) => BOTCALL_ERR_CONFIG,
        BotError::Key(_) => BOTCALL_ERR_KEY,
        BotError::Http {
            status: 401 | 403, ..
        } => BOTCALL_ERR_AUTH,
        BotError::Refused { code, .. } if code == "unauthorized" => BOTCALL_ERR_AUTH,
        BotError::Io { .. }
        | BotError::Http { .. }
        | BotError::Refused { .. }
        | BotError::Timeout(_)
        | BotError::WebSocket(_) => BOTCALL_ERR_UNAVAILABLE,
        BotError::Ended(_) => BOTCALL_ERR_ENDED,
        BotError::Closed => BOTCALL_ERR_CLOSED,
        BotError::Media(_) => BOTCALL_ERR_MEDIA,
        _ => BOTCALL_ERR_INTERNAL,
    };
    note(s, &text)
}

/// NUL-terminated UTF-8 text, or `None` for null.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn cstr<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, BotcallStatus> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null and NUL-terminated (the contract).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map(Some).map_err(|_| {
        note(
            BOTCALL_ERR_INVALID_ARGUMENT,
            &format!("{what} is not UTF-8"),
        )
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `s` (NUL-terminated) into a caller's buffer; `BOTCALL_ERR_BUFFER_TOO_SMALL`
/// if `cap <= len` (then `*len` says how many bytes it needs, without the NUL).
fn put_text(s: &str, buf: *mut c_char, cap: usize, len: *mut usize) -> Result<(), BotcallStatus> {
    if !len.is_null() {
        // SAFETY: non-null, writable (the contract).
        unsafe { len.write(s.len()) };
    }
    if buf.is_null() || cap <= s.len() {
        return Err(note(BOTCALL_ERR_BUFFER_TOO_SMALL, "buffer too small"));
    }
    // SAFETY: `buf` has `cap` > s.len() writable bytes (the contract).
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        buf.add(s.len()).write(0);
    }
    Ok(())
}

/// A registered bot (opaque).
#[derive(Debug)]
pub struct BotcallBot {
    bot: Arc<Bot>,
}

/// Registers a bot with the daemon at `daemon_url` and brings it online
/// (blocks until the daemon's `welcome`, or the first failure). The key is
/// either a JWK file (`key_file`, as `botcalld keygen` writes) or the JWK
/// text itself (`key_jwk`, `key_jwk_len`): exactly one of them. `agent_id`
/// may be null (open registration: the key's thumbprint); `opts` may be
/// null (defaults). On success `*out` is the bot; free it with
/// `botcall_bot_free`.
///
/// # Safety
/// Strings are null or NUL-terminated; `key_jwk` has `key_jwk_len` bytes;
/// `opts` is null or initialized by `botcall_options_init`; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_bot_connect(
    daemon_url: *const c_char,
    key_file: *const c_char,
    key_jwk: *const u8,
    key_jwk_len: usize,
    agent_id: *const c_char,
    opts: *const BotcallOptions,
    out: *mut *mut BotcallBot,
) -> BotcallStatus {
    guard(|| {
        if out.is_null() {
            return Err(note(BOTCALL_ERR_INVALID_ARGUMENT, "out is null"));
        }
        // SAFETY: writable (checked non-null; the contract).
        unsafe { out.write(std::ptr::null_mut()) };
        // SAFETY: the caller's contract for each argument.
        let (url, file, jwk, agent) = unsafe {
            (
                cstr(daemon_url, "daemon_url")?,
                cstr(key_file, "key_file")?,
                bytes(key_jwk, key_jwk_len)?,
                cstr(agent_id, "agent_id")?,
            )
        };
        let url = url.ok_or_else(|| note(BOTCALL_ERR_INVALID_ARGUMENT, "daemon_url is null"))?;
        let key: SigningKey = match (file, jwk.is_empty()) {
            (Some(f), true) => {
                load_key(f).map_err(|e| note(BOTCALL_ERR_KEY, &format!("the key file {f}: {e}")))?
            }
            (None, false) => {
                let text = std::str::from_utf8(jwk)
                    .map_err(|_| note(BOTCALL_ERR_KEY, "the key is not a JWK (not UTF-8)"))?;
                SigningKey::from_jwk(text.trim())
                    .map_err(|e| note(BOTCALL_ERR_KEY, &format!("the key is unusable: {e:?}")))?
            }
            _ => {
                return Err(note(
                    BOTCALL_ERR_INVALID_ARGUMENT,
                    "give exactly one of key_file and key_jwk",
                ));
            }
        };
        let mut cfg = BotConfig::new(url, key);
        if let Some(a) = agent {
            cfg = cfg.agent_id(a);
        }
        // SAFETY: null or initialized (the contract).
        if let Some(o) = unsafe { opts.as_ref() } {
            if o.struct_size as usize != size_of::<BotcallOptions>() {
                return Err(note(
                    BOTCALL_ERR_INVALID_ARGUMENT,
                    "BotcallOptions is from another botcall.h (struct_size differs): call botcall_options_init",
                ));
            }
            // SAFETY: null or NUL-terminated (the contract).
            if let Some(n) = unsafe { cstr(o.name, "name") }? {
                cfg = cfg.name(n);
            }
            if o.listed >= 0 {
                cfg = cfg.listed(o.listed > 0);
            }
            if o.max_calls > 0 {
                let n = u8::try_from(o.max_calls)
                    .map_err(|_| note(BOTCALL_ERR_CONFIG, "max_calls is 1..=4"))?;
                cfg = cfg.max_calls(n);
            }
            if o.policy != 0 {
                let p = u8::try_from(o.policy)
                    .ok()
                    .filter(|p| p & !HvPolicy::ANY.0 == 0)
                    .ok_or_else(|| note(BOTCALL_ERR_CONFIG, "policy bits are 1, 2 and 4"))?;
                cfg = cfg.policy(HvPolicy(p));
            }
            if o.media_timeout_ms > 0 {
                cfg = cfg.media_timeout(Duration::from_millis(u64::from(o.media_timeout_ms)));
            }
            // SAFETY: null or NUL-terminated (the contract).
            if let Some(ca) = unsafe { cstr(o.tls_ca_file, "tls_ca_file") }? {
                cfg = cfg.tls_ca_file(ca);
            }
        }
        let bot = async_io::block_on(register_with_discovery(cfg)).map_err(|e| fail(&e))?;
        let h = Box::into_raw(Box::new(BotcallBot { bot: Arc::new(bot) }));
        // SAFETY: writable (checked above).
        unsafe { out.write(h) };
        Ok(())
    })
}

/// The bot's agent id into `buf` (NUL-terminated); `*len` gets its length.
///
/// # Safety
/// `bot` is live; `buf` has `cap` writable bytes; `len` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_bot_agent_id(
    bot: *const BotcallBot,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: live or null (the contract).
        let b = unsafe { bot.as_ref() }
            .ok_or_else(|| note(BOTCALL_ERR_INVALID_ARGUMENT, "bot is null"))?;
        put_text(b.bot.agent_id(), buf, cap, len)
    })
}

/// Waits for the next call whose attestation verified (signature, time,
/// audience, call id, the offer's DTLS fingerprint, the policy) and returns
/// it ringing in `*out`: answer it with `botcall_call_answer` or refuse it
/// with `botcall_call_reject`. Calls that fail verification are rejected by
/// the SDK and never returned. `timeout_ms` < 0 waits without limit;
/// `cancel` may be null. Free the call with `botcall_call_free`.
///
/// # Safety
/// `bot` is live; `cancel` is null or live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_bot_next_call(
    bot: *const BotcallBot,
    timeout_ms: i32,
    cancel: *const BotcallCancel,
    out: *mut *mut BotcallCall,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: live or null (the contract).
        let (b, cancel) = unsafe { (bot.as_ref(), cancel.as_ref()) };
        let b = b.ok_or_else(|| note(BOTCALL_ERR_INVALID_ARGUMENT, "bot is null"))?;
        if out.is_null() {
            return Err(note(BOTCALL_ERR_INVALID_ARGUMENT, "out is null"));
        }
        // SAFETY: writable (checked non-null).
        unsafe { out.write(std::ptr::null_mut()) };
        let incoming = wait(timeout_ms, cancel, async {
            loop {
                match b.bot.next_incoming().await {
                    Err(e) if e.is_refused_call() => continue,
                    r => return r,
                }
            }
        })?
        .map_err(|e| fail(&e))?;
        let call = BotcallCall {
            id: incoming.id().to_string(),
            claims: BotcallClaims::from_attestation(incoming.caller()),
            bot: Arc::downgrade(&b.bot),
            state: Mutex::new(State::Ringing(Box::new(incoming))),
            rx: Mutex::new(Rx::default()),
            tx: Mutex::new(Tx::default()),
        };
        // SAFETY: writable (checked above).
        unsafe { out.write(Box::into_raw(Box::new(call))) };
        Ok(())
    })
}

/// Shuts the bot down: hangs up its calls, goes offline (waits up to 2 s)
/// and frees it. Calls still held end (`shutdown`) but stay valid until
/// `botcall_call_free`. No other thread may be using `bot`.
///
/// # Safety
/// `bot` is null or from `botcall_bot_connect`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_bot_free(bot: *mut BotcallBot) {
    if bot.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: from Box::into_raw in botcall_bot_connect, freed once (the contract).
        let b = unsafe { Box::from_raw(bot) };
        match Arc::try_unwrap(b.bot) {
            Ok(bot) => async_io::block_on(bot.shutdown()),
            // A call is answering right now: dropping our reference shuts
            // the bot down when it finishes (the SDK's Drop).
            Err(arc) => drop(arc),
        }
        Ok(())
    });
}

enum State {
    Ringing(Box<Incoming>),
    /// Being answered by another thread.
    Answering,
    Answered(Arc<Call>),
    Rejected,
    /// Answering failed (the caller left, the bot shut down).
    Failed(&'static str),
}

#[derive(Default)]
struct Rx {
    /// A packet that did not fit the caller's buffer: returned next time.
    held: Option<Vec<u8>>,
    dec: Option<PcmDecoder>,
    /// Decoded samples not yet read.
    pcm: VecDeque<i16>,
}

#[derive(Default)]
struct Tx {
    enc: Option<PcmEncoder>,
    /// Encoded packets not yet handed to the call.
    queue: VecDeque<Vec<u8>>,
}

/// One call (opaque): ringing, then answered or rejected.
pub struct BotcallCall {
    id: String,
    claims: BotcallClaims,
    bot: Weak<Bot>,
    state: Mutex<State>,
    rx: Mutex<Rx>,
    tx: Mutex<Tx>,
}

impl BotcallCall {
    fn live(&self) -> Result<Arc<Call>, BotcallStatus> {
        match &*lock(&self.state) {
            State::Answered(c) => Ok(c.clone()),
            State::Ringing(_) | State::Answering => {
                Err(note(BOTCALL_ERR_WRONG_STATE, "the call is not answered"))
            }
            State::Rejected => Err(note(BOTCALL_ERR_WRONG_STATE, "the call was rejected")),
            State::Failed(_) => Err(note(
                BOTCALL_ERR_ENDED,
                "the call ended before it was answered",
            )),
        }
    }
}

/// # Safety
/// `call` is null or live.
unsafe fn call_ref<'a>(call: *const BotcallCall) -> Result<&'a BotcallCall, BotcallStatus> {
    // SAFETY: null or live (the contract).
    unsafe { call.as_ref() }.ok_or_else(|| note(BOTCALL_ERR_INVALID_ARGUMENT, "call is null"))
}

/// The call id into `buf` (NUL-terminated, at most 64 bytes + NUL).
///
/// # Safety
/// `call` is live; `buf` has `cap` writable bytes; `len` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_id(
    call: *const BotcallCall,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> BotcallStatus {
    // SAFETY: the caller's contract.
    guard(|| put_text(&unsafe { call_ref(call) }?.id, buf, cap, len))
}

/// The verified attestation's claims (who calls, how they were checked).
///
/// # Safety
/// `call` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_claims(
    call: *const BotcallCall,
    out: *mut BotcallClaims,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { call_ref(call) }?;
        if out.is_null() {
            return Err(note(BOTCALL_ERR_INVALID_ARGUMENT, "out is null"));
        }
        // SAFETY: non-null, writable (the contract).
        unsafe { out.write(c.claims) };
        Ok(())
    })
}

/// Answers a ringing call (blocks until the answer is sent; media connects
/// in the background). `BOTCALL_ERR_ENDED` if the caller left meanwhile.
///
/// # Safety
/// `call` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_answer(call: *const BotcallCall) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { call_ref(call) }?;
        let incoming = {
            let mut st = lock(&c.state);
            match std::mem::replace(&mut *st, State::Answering) {
                State::Ringing(i) => *i,
                other => {
                    *st = other;
                    return Err(note(BOTCALL_ERR_WRONG_STATE, "the call is not ringing"));
                }
            }
        };
        let Some(bot) = c.bot.upgrade() else {
            *lock(&c.state) = State::Failed("shutdown");
            return Err(note(BOTCALL_ERR_CLOSED, "the bot was shut down"));
        };
        match async_io::block_on(bot.answer(incoming)) {
            Ok(answered) => {
                *lock(&c.state) = State::Answered(Arc::new(answered));
                Ok(())
            }
            Err(e) => {
                *lock(&c.state) = State::Failed(match &e {
                    BotError::Ended(r) => r.code(),
                    BotError::Closed => "shutdown",
                    _ => "error",
                });
                Err(fail(&e))
            }
        }
    })
}

/// Refuses a ringing call; the caller gets `rejected` with `reason` (null:
/// `busy`; at most 64 bytes).
///
/// # Safety
/// `call` is live; `reason` is null or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_reject(
    call: *const BotcallCall,
    reason: *const c_char,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, reason) = unsafe { (call_ref(call)?, cstr(reason, "reason")?) };
        let reason = reason.unwrap_or("busy");
        if reason.len() > botcall_core::protocol::MAX_REASON_LEN {
            return Err(note(
                BOTCALL_ERR_CONFIG,
                "a reject reason is at most 64 bytes",
            ));
        }
        let incoming = {
            let mut st = lock(&c.state);
            match std::mem::replace(&mut *st, State::Rejected) {
                State::Ringing(i) => *i,
                other => {
                    *st = other;
                    return Err(note(BOTCALL_ERR_WRONG_STATE, "the call is not ringing"));
                }
            }
        };
        match c.bot.upgrade() {
            Some(bot) => async_io::block_on(bot.reject(incoming, reason)).map_err(|e| fail(&e)),
            None => Err(note(BOTCALL_ERR_CLOSED, "the bot was shut down")),
        }
    })
}

/// Receives the next Opus packet (one 20 ms frame) into `buf`; `*len` gets
/// its length. A packet larger than `cap` (at most 1275 bytes) returns
/// `BOTCALL_ERR_BUFFER_TOO_SMALL` with the size needed in `*len` and is kept
/// for the next call. `BOTCALL_ERR_ENDED` once the call is over (after the
/// packets already received).
///
/// # Safety
/// `call` is live; `cancel` null or live; `buf` has `cap` writable bytes;
/// `len` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_recv_opus(
    call: *const BotcallCall,
    timeout_ms: i32,
    cancel: *const BotcallCancel,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, cancel) = unsafe { (call_ref(call)?, cancel.as_ref()) };
        if len.is_null() || (buf.is_null() && cap > 0) {
            return Err(note(BOTCALL_ERR_INVALID_ARGUMENT, "a null pointer"));
        }
        let live = c.live()?;
        let mut rx = lock(&c.rx);
        let pkt = match rx.held.take() {
            Some(p) => p,
            None => {
                wait(timeout_ms, cancel, live.receive_audio_opus())?
                    .map_err(|e| fail(&e))?
                    .data
            }
        };
        // SAFETY: writable (checked non-null).
        unsafe { len.write(pkt.len()) };
        if pkt.len() > cap {
            rx.held = Some(pkt);
            return Err(note(
                BOTCALL_ERR_BUFFER_TOO_SMALL,
                "an Opus packet is up to 1275 bytes",
            ));
        }
        // SAFETY: `buf` has `cap` >= pkt.len() writable bytes (the contract).
        unsafe { std::ptr::copy_nonoverlapping(pkt.as_ptr(), buf, pkt.len()) };
        Ok(())
    })
}

/// Queues one Opus packet (20 ms, 1–1275 bytes) for sending. Sending is
/// paced at 20 ms with ~160 ms queued: beyond that this waits (so a loop
/// producing audio is paced by it), up to `timeout_ms`.
///
/// # Safety
/// `call` is live; `cancel` null or live; `packet` has `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_send_opus(
    call: *const BotcallCall,
    packet: *const u8,
    len: usize,
    timeout_ms: i32,
    cancel: *const BotcallCancel,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, pkt, cancel) = unsafe { (call_ref(call)?, bytes(packet, len)?, cancel.as_ref()) };
        let live = c.live()?;
        let _tx = lock(&c.tx);
        wait(timeout_ms, cancel, live.send_audio_opus(pkt))?.map_err(|e| fail(&e))
    })
}

/// Sets the PCM16 sample rate (8000–48000 Hz) of `botcall_call_recv_pcm`
/// and `botcall_call_send_pcm` (default 48000). Resets their state.
///
/// # Safety
/// `call` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_set_pcm_rate(
    call: *const BotcallCall,
    rate: u32,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { call_ref(call) }?;
        let dec = PcmDecoder::new(rate).map_err(|e| note(BOTCALL_ERR_CONFIG, &e.0))?;
        let enc = PcmEncoder::new(rate).map_err(|e| note(BOTCALL_ERR_CONFIG, &e.0))?;
        {
            let mut rx = lock(&c.rx);
            rx.dec = Some(dec);
            rx.pcm.clear();
        }
        let mut tx = lock(&c.tx);
        tx.enc = Some(enc);
        tx.queue.clear();
        Ok(())
    })
}

/// Reads received audio as mono PCM16 at the call's PCM rate, like `read(2)`:
/// up to `cap` samples into `buf`, `*n` how many (at least 1). Waits for the
/// next 20 ms frame when none is buffered. Lost packets are concealed.
/// `BOTCALL_ERR_ENDED` once the call is over and everything was read.
///
/// # Safety
/// `call` is live; `cancel` null or live; `buf` has `cap` writable samples;
/// `n` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_recv_pcm(
    call: *const BotcallCall,
    timeout_ms: i32,
    cancel: *const BotcallCancel,
    buf: *mut i16,
    cap: usize,
    n: *mut usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, cancel) = unsafe { (call_ref(call)?, cancel.as_ref()) };
        if n.is_null() || buf.is_null() || cap == 0 {
            return Err(note(
                BOTCALL_ERR_INVALID_ARGUMENT,
                "a null pointer or no room",
            ));
        }
        let live = c.live()?;
        let mut rx = lock(&c.rx);
        let rx = &mut *rx;
        if rx.dec.is_none() {
            rx.dec = Some(PcmDecoder::new(48_000).map_err(|e| note(BOTCALL_ERR_MEDIA, &e.0))?);
        }
        while rx.pcm.is_empty() {
            let pkt = match rx.held.take() {
                Some(p) => p,
                None => {
                    wait(timeout_ms, cancel, live.receive_audio_opus())?
                        .map_err(|e| fail(&e))?
                        .data
                }
            };
            let Some(dec) = rx.dec.as_mut() else {
                return Err(note(BOTCALL_ERR_INTERNAL, "no decoder"));
            };
            let mut out = Vec::with_capacity(960);
            if dec.decode(Some(&pkt), &mut out).is_err() {
                // A corrupt packet: conceal rather than end the stream.
                out.clear();
                dec.decode(None, &mut out)
                    .map_err(|e| note(BOTCALL_ERR_MEDIA, &e.0))?;
            }
            rx.pcm.extend(out);
        }
        let k = rx.pcm.len().min(cap);
        for (i, s) in rx.pcm.drain(..k).enumerate() {
            // SAFETY: i < k <= cap samples of `buf` (the contract).
            unsafe { buf.add(i).write(s) };
        }
        // SAFETY: writable (checked non-null).
        unsafe { n.write(k) };
        Ok(())
    })
}

/// Sends mono PCM16 at the call's PCM rate, in chunks of any length (they
/// are encoded to 20 ms Opus packets; a remainder waits for the next
/// chunk). `BOTCALL_OK`: the samples were taken (what could not be queued by
/// `timeout_ms` waits in the handle and goes first next time);
/// `BOTCALL_ERR_TIMEOUT`/`CANCELLED`: earlier audio still waits and these
/// samples were not taken.
///
/// # Safety
/// `call` is live; `cancel` null or live; `pcm` has `n` readable samples.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_send_pcm(
    call: *const BotcallCall,
    pcm: *const i16,
    n: usize,
    timeout_ms: i32,
    cancel: *const BotcallCancel,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, cancel) = unsafe { (call_ref(call)?, cancel.as_ref()) };
        if pcm.is_null() && n > 0 {
            return Err(note(BOTCALL_ERR_INVALID_ARGUMENT, "pcm is null"));
        }
        let samples: &[i16] = if n == 0 {
            &[]
        } else {
            // SAFETY: non-null, `n` readable samples (the contract).
            unsafe { std::slice::from_raw_parts(pcm, n) }
        };
        let live = c.live()?;
        let mut tx = lock(&c.tx);
        let tx = &mut *tx;
        let flush = |q: &mut VecDeque<Vec<u8>>| {
            wait(timeout_ms, cancel, async {
                while let Some(p) = q.front() {
                    live.send_audio_opus(p).await?;
                    q.pop_front();
                }
                Ok::<(), BotError>(())
            })
        };
        // Earlier audio first; if it cannot go, these samples are not taken.
        flush(&mut tx.queue)?.map_err(|e| fail(&e))?;
        if tx.enc.is_none() {
            tx.enc = Some(PcmEncoder::new(48_000).map_err(|e| note(BOTCALL_ERR_MEDIA, &e.0))?);
        }
        let Some(enc) = tx.enc.as_mut() else {
            return Err(note(BOTCALL_ERR_INTERNAL, "no encoder"));
        };
        let packets = enc
            .push(samples)
            .map_err(|e| note(BOTCALL_ERR_MEDIA, &e.0))?;
        tx.queue.extend(packets);
        match flush(&mut tx.queue) {
            Ok(r) => r.map_err(|e| fail(&e)),
            // Taken: the rest goes out first next time.
            Err(BOTCALL_ERR_TIMEOUT | BOTCALL_ERR_CANCELLED) => Ok(()),
            Err(s) => Err(s),
        }
    })
}

/// Hangs up (an answered call; waits up to 1 s until the hangup is on its
/// way) or rejects (a ringing one). Ending an ended call is `BOTCALL_OK`.
///
/// # Safety
/// `call` is live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_hangup(call: *const BotcallCall) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { call_ref(call) }?;
        let ringing = matches!(&*lock(&c.state), State::Ringing(_));
        if ringing {
            // SAFETY: `call` is live (the contract).
            return match unsafe { botcall_call_reject(call, std::ptr::null()) } {
                BOTCALL_OK | BOTCALL_ERR_WRONG_STATE => Ok(()),
                s => Err(s),
            };
        }
        if let Ok(live) = c.live() {
            async_io::block_on(live.hangup());
        }
        Ok(())
    })
}

/// Waits until the call is over (`timeout_ms` < 0: no limit).
///
/// # Safety
/// `call` is live; `cancel` null or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_wait_ended(
    call: *const BotcallCall,
    timeout_ms: i32,
    cancel: *const BotcallCancel,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let (c, cancel) = unsafe { (call_ref(call)?, cancel.as_ref()) };
        match c.live() {
            Ok(live) => wait(timeout_ms, cancel, live.ended()).map(drop),
            Err(BOTCALL_ERR_WRONG_STATE) if matches!(&*lock(&c.state), State::Rejected) => Ok(()),
            Err(BOTCALL_ERR_ENDED) => Ok(()),
            Err(s) => Err(s),
        }
    })
}

/// Why the call ended, as a stable code (`remote_hangup`, `remote_gone`,
/// `daemon`, `media_lost`, `media_timeout`, `local`, `signaling_lost`,
/// `shutdown`, `error`; `rejected` after `botcall_call_reject`) into `code`,
/// and its detail text (the caller's or daemon's reason; may be empty) into
/// `detail` (may be null). Both empty while the call goes on.
///
/// # Safety
/// `call` is live; `code` has `code_cap` writable bytes; `detail` is null
/// or has `detail_cap` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_end_reason(
    call: *const BotcallCall,
    code: *mut c_char,
    code_cap: usize,
    detail: *mut c_char,
    detail_cap: usize,
) -> BotcallStatus {
    guard(|| {
        // SAFETY: the caller's contract.
        let c = unsafe { call_ref(call) }?;
        let (k, d): (&str, String) = match &*lock(&c.state) {
            State::Answered(live) => match live.end_reason() {
                Some(r) => (r.code(), r.detail().unwrap_or("").to_string()),
                None => ("", String::new()),
            },
            State::Ringing(_) | State::Answering => ("", String::new()),
            State::Rejected => ("rejected", String::new()),
            State::Failed(k) => (k, String::new()),
        };
        put_text(k, code, code_cap, std::ptr::null_mut())?;
        if !detail.is_null() {
            // Truncated to fit, on a character boundary.
            let mut n = d.len().min(detail_cap.saturating_sub(1));
            while !d.is_char_boundary(n) {
                n -= 1;
            }
            put_text(&d[..n], detail, detail_cap, std::ptr::null_mut())?;
        }
        Ok(())
    })
}

/// Frees a call: hangs up an answered call that goes on, rejects (`busy`) a
/// ringing one. No other thread may be using it.
///
/// # Safety
/// `call` is null or from `botcall_bot_next_call`, not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_call_free(call: *mut BotcallCall) {
    if call.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: from Box::into_raw in botcall_bot_next_call, freed once (the contract).
        // Dropping the SDK's Call hangs up; dropping an Incoming rejects it.
        drop(unsafe { Box::from_raw(call) });
        Ok(())
    });
}
