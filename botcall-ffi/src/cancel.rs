//! Blocking calls: a `BotcallCancel` token (sticky, any thread) and
//! [`wait`], which runs an SDK future on the calling thread until it
//! completes, its timeout passes or its token fires.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use event_listener::Event;
use futures_lite::future;

use crate::entry::{guard, note};
use crate::status::*;

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
/// wait uses it. Never null in practice (null if creating it panicked).
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
pub(crate) fn wait<T>(
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
