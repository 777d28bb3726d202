//! Every entry point runs through [`guard`]: with `std`, a panic is caught
//! at the boundary (`BOTCALL_ERR_PANIC`) and never unwinds into C; errors
//! leave their text in a thread-local read by `botcall_last_error`.

use crate::status::*;

#[cfg(feature = "std")]
std::thread_local! {
    static LAST_ERROR: core::cell::RefCell<std::string::String> =
        const { core::cell::RefCell::new(std::string::String::new()) };
}

/// Records `msg` as this thread's last error and returns `status`.
pub(crate) fn note(status: BotcallStatus, msg: &str) -> BotcallStatus {
    #[cfg(feature = "std")]
    LAST_ERROR.with(|l| {
        if let Ok(mut l) = l.try_borrow_mut() {
            l.clear();
            l.push_str(msg);
        }
    });
    #[cfg(not(feature = "std"))]
    let _ = msg;
    status
}

/// Runs an entry point's body: `Ok` is `BOTCALL_OK`, `Err` its status.
#[cfg(feature = "std")]
pub(crate) fn guard(f: impl FnOnce() -> Result<(), BotcallStatus>) -> BotcallStatus {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => BOTCALL_OK,
        Ok(Err(s)) => s,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<std::string::String>().map(|s| s.as_str()))
                .unwrap_or("unknown");
            note(
                BOTCALL_ERR_PANIC,
                &std::format!("internal panic (a bug): {what}"),
            )
        }
    }
}

/// Runs an entry point's body (no_std: panics abort, see the panic handler).
#[cfg(not(feature = "std"))]
pub(crate) fn guard(f: impl FnOnce() -> Result<(), BotcallStatus>) -> BotcallStatus {
    match f() {
        Ok(()) => BOTCALL_OK,
        Err(s) => s,
    }
}

/// Copies this thread's last error message into `buf` (NUL-terminated,
/// truncated to `cap - 1` bytes) and returns its full length in bytes
/// (without the NUL). Meaningful right after a call returned non-zero.
/// `buf` may be null when `cap` is 0 (to ask for the length).
///
/// # Safety
/// `buf` points to `cap` writable bytes, or is null with `cap` 0.
#[cfg(feature = "std")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn botcall_last_error(buf: *mut core::ffi::c_char, cap: usize) -> usize {
    std::panic::catch_unwind(|| {
        LAST_ERROR.with(|l| {
            let Ok(l) = l.try_borrow() else { return 0 };
            if !buf.is_null() && cap > 0 {
                let n = l.len().min(cap - 1);
                // SAFETY: `buf` has `cap` writable bytes (the contract); n + 1 <= cap.
                unsafe {
                    core::ptr::copy_nonoverlapping(l.as_ptr(), buf.cast::<u8>(), n);
                    buf.add(n).write(0);
                }
            }
            l.len()
        })
    })
    .unwrap_or(0)
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn a_panic_stops_at_the_boundary_with_its_message() {
        let s = guard(|| panic!("broken invariant"));
        assert_eq!(s, BOTCALL_ERR_PANIC);
        let mut buf = [0 as core::ffi::c_char; 128];
        // SAFETY: a live 128-byte buffer.
        let n = unsafe { botcall_last_error(buf.as_mut_ptr(), buf.len()) };
        // SAFETY: NUL-terminated by botcall_last_error.
        let msg = unsafe { core::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap();
        assert_eq!(n, msg.len());
        assert!(msg.contains("broken invariant"), "{msg}");
        assert_eq!(guard(|| Err(BOTCALL_ERR_TIMEOUT)), BOTCALL_ERR_TIMEOUT);
        assert_eq!(guard(|| Ok(())), BOTCALL_OK);
    }
}
