//! BotCall's shared core: strict JSON, JWS/JWT (HS256 and ES256) on RustCrypto
//! primitives, agent ids, and the wire vocabulary both ends share: protocol
//! messages, close codes, WebSocket framing ([`ws`]) and STUN ([`stun`]).
//!
//! `#![no_std]` and usable without an allocator: with default features off,
//! every parser works on borrowed `&str`/`&[u8]` input with fixed-size scratch
//! buffers, so the same code runs in the daemon, in the SDK and in firmware.
//!
//! # Features
//! - `alloc`: owned conveniences (`Vec` sinks, `String` outputs).
//! - `std` (default): `alloc`, `std::error::Error` impls, P-256 precomputed tables.
//! - `sign` (default): HS256 and ES256 signing (RFC 6979 nonces, no RNG needed).
//! - `ring`: implies `std`; ES256 signs and verifies through `ring` (several
//!   times faster; random nonces from the OS). `p256` still handles keys.
//!
//! # Panic policy
//! Errors are bad input; panics are broken internal invariants. Nothing in
//! this crate indexes input without a bounds check, and every input path has a
//! length limit ([`jwt::MAX_TOKEN_LEN`], [`json::read::MAX_DEPTH`], ...).
//! `tests/malformed.rs` pushes hostile bytes through every public parser, and
//! `fuzz/` has a target for the verifier.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod answer_sig;
pub mod b64;
pub mod id;
pub mod json;
pub mod jwt;
pub mod pow;
pub mod protocol;
pub mod sdp;
pub mod stun;
pub mod ws;
