//! `botcall.h`: a C ABI over the BotCall bot SDK, so bots can be written in
//! C, Go (cgo), or any language with a C FFI — without a second
//! implementation of the protocol, the attestation check or WebRTC.
//!
//! - Always (also `no_std`, no allocator, for firmware): attestation
//!   verification against a JWKS, signaling message decode/encode, id
//!   validation ([`fw`]).
//! - With `std` (default): the bot client — connect, wait for calls,
//!   answer/reject, Opus or PCM16 audio both ways, hang up ([`bot`]).
//!
//! Rules (docs/ffi.md): opaque handles, caller-owned buffers, an `int32_t`
//! status from every fallible call, `botcall_last_error()` per thread, no
//! panic or Rust allocation crossing the boundary.
#![cfg_attr(not(feature = "std"), no_std)]
#![allow(clippy::missing_safety_doc)] // each `# Safety` section is in the doc comment

#[cfg(feature = "std")]
pub mod bot;
#[cfg(feature = "std")]
pub mod call;
#[cfg(feature = "std")]
pub mod cancel;
#[cfg(feature = "std")]
mod convert;
mod entry;
pub mod fw;
pub mod status;

#[cfg(feature = "std")]
pub use bot::*;
#[cfg(feature = "std")]
pub use call::*;
#[cfg(feature = "std")]
pub use cancel::*;
#[cfg(feature = "std")]
pub use entry::botcall_last_error;
pub use fw::*;
pub use status::*;

/// The ABI version: `major << 16 | minor`. A new minor adds functions; a new
/// major changes or removes some. Check it against `BOTCALL_ABI_VERSION`.
pub const BOTCALL_ABI_VERSION: u32 = 1 << 16;

/// The ABI version of the library that is loaded (`BOTCALL_ABI_VERSION` of
/// the header it was built with); a program built against another major
/// must not use it.
#[unsafe(no_mangle)]
pub extern "C" fn botcall_version() -> u32 {
    BOTCALL_ABI_VERSION
}

/// Firmware builds: a panic (a broken invariant; input never panics)
/// stops here.
#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
