//! Calls over the C ABI: a ringing `Incoming`, then the SDK's `Call`
//! (answer/reject, Opus or PCM16 audio, hang up, end reason).

use std::collections::VecDeque;
use std::ffi::c_char;
use std::sync::{Arc, Mutex, Weak};

use botcall_sdk::audio::{PcmDecoder, PcmEncoder};
use botcall_sdk::{Bot, BotError, Call, Incoming};

use crate::cancel::{BotcallCancel, wait};
use crate::convert::{cstr, fail, lock, put_text};
use crate::entry::{guard, note};
use crate::fw::{BotcallClaims, bytes};
use crate::status::*;

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
    /// A ringing call of `bot`.
    pub(crate) fn ringing(incoming: Incoming, bot: Weak<Bot>) -> Self {
        BotcallCall {
            id: incoming.id().to_string(),
            claims: BotcallClaims::from_attestation(incoming.caller()),
            bot,
            state: Mutex::new(State::Ringing(Box::new(incoming))),
            rx: Mutex::new(Rx::default()),
            tx: Mutex::new(Tx::default()),
        }
    }

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
