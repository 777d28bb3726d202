//! The bot client over the C ABI: thin wrappers over `botcall-sdk`'s
//! `register_with_discovery` → `Bot` → `Incoming` (here: options and
//! bots); calls are in [`crate::call`], blocking and cancel tokens in
//! [`crate::cancel`].
//!
//! Thread model: the SDK runs each bot's network I/O (presence, WebRTC) on
//! its own background thread. A blocking call here runs the SDK future on
//! the calling thread until it completes, its timeout passes, or its
//! `BotcallCancel` is triggered; nothing here spawns threads per call. Every
//! handle may be used from any thread; one thread at a time should receive
//! and one send on a call (a second one waits for the first).

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use botcall_core::jwt::SigningKey;
use botcall_sdk::{Bot, BotConfig, HvPolicy, load_key, register_with_discovery};

use crate::call::BotcallCall;
use crate::cancel::{BotcallCancel, wait};
use crate::convert::{cstr, fail, put_text};
use crate::entry::{guard, note};
use crate::fw::bytes;
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
        let call = BotcallCall::ringing(incoming, Arc::downgrade(&b.bot));
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
