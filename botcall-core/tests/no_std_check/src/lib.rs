//! Exercises verification on fixed buffers; links without std or alloc.
#![no_std]

use botcall_core::jwt::{self, Key};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Verifies an HS256 BotAuth token; returns 1 when valid.
#[unsafe(no_mangle)]
pub extern "C" fn botcall_check(token: *const u8, len: usize, secret: *const u8, secret_len: usize, now: u64) -> i32 {
    // SAFETY: the caller passes valid (pointer, length) pairs; this crate
    // exists only to be linked by the no_std test, never called.
    let (t, s) = unsafe { (core::slice::from_raw_parts(token, len), core::slice::from_raw_parts(secret, secret_len)) };
    let Ok(t) = core::str::from_utf8(t) else { return 0 };
    let Ok(key) = Key::hs256(s) else { return 0 };
    i32::from(jwt::verify_bot_auth(t, &key, 60, None, now).is_ok())
}
