//! What every client entry point needs: SDK errors as status codes, C
//! strings in, NUL-terminated text out into a caller's buffer.

use std::ffi::{CStr, c_char};
use std::sync::{Mutex, MutexGuard};

use botcall_sdk::BotError;

use crate::entry::note;
use crate::status::*;

/// The status for an SDK error, with its text as the last error.
pub(crate) fn fail(e: &BotError) -> BotcallStatus {
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
pub(crate) unsafe fn cstr<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, BotcallStatus> {
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes `s` (NUL-terminated) into a caller's buffer; `BOTCALL_ERR_BUFFER_TOO_SMALL`
/// if `cap <= len` (then `*len` says how many bytes it needs, without the NUL).
pub(crate) fn put_text(
    s: &str,
    buf: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> Result<(), BotcallStatus> {
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
