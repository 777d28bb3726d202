//! The BotCall bot SDK: get called by humans, by voice.
//!
//! Two layers:
//!
//! - **A `no_std` core without an allocator** (always built): the sans-IO
//!   signaling [`client::Client`] (hello, welcome, verified incoming calls,
//!   answer/reject, trickle ICE, hangup, heartbeats, reconnect with backoff),
//!   the attestation checks ([`verify_human_attestation`],
//!   [`verify_incoming`]), a WebSocket client codec ([`ws`]), a STUN message
//!   codec ([`stun`]), a TURN client for relayed candidates ([`turn`]), Opus
//!   frame pacing and a fixed-capacity jitter buffer ([`media`]). All of it takes time and bytes as input and hands bytes and
//!   events back, so it runs the same in a test with a fake clock, in a
//!   Tokio/smol service, or on a microcontroller.
//! - **The `std` client** (feature `std`, default): `register_with_discovery`
//!   registers the bot over HTTP, keeps its presence WebSocket alive on a
//!   background thread (reconnecting and re-registering by itself), and turns
//!   verified incoming calls into `Call`s with real WebRTC audio (str0m:
//!   ICE with host, server-reflexive and TURN-relayed candidates,
//!   DTLS-SRTP, Opus over RTP).
//!
//! ```no_run
//! # #[cfg(feature = "std")]
//! # fn main() -> Result<(), botcall_sdk::BotError> {
//! use botcall_sdk::{BotConfig, register_with_discovery};
//! futures_lite::future::block_on(async {
//!     let key = botcall_sdk::load_key("bot.jwk")?;
//!     let bot = register_with_discovery(
//!         BotConfig::new("http://127.0.0.1:8080", key).agent_id("echo-bot"),
//!     )
//!     .await?;
//!     loop {
//!         let call = match bot.accept_call().await {
//!             Ok(call) => call,
//!             Err(e) if e.is_refused_call() => continue, // a bad attestation: refused for us
//!             Err(e) => return Err(e),
//!         };
//!         while let Ok(frame) = call.receive_audio_opus().await {
//!             call.send_audio_opus(&frame.data).await?;
//!         }
//!     }
//! })
//! # }
//! # #[cfg(not(feature = "std"))]
//! # fn main() {}
//! ```
//!
//! # Features
//! - `std` (default): the async client (`Bot`, `Call`) on smol's
//!   `async-io`, with str0m for WebRTC. Without it the crate is
//!   `#![no_std]` and needs no allocator.
//! - `codec`: `codec` — PCM ↔ Opus helpers over libopus (built from source;
//!   needs `cmake`), a tone generator and an RMS meter; `audio` — PCM16 at
//!   any sample rate (resampling, Opus in 20 ms frames) for bindings.
//!
//! # Panic policy
//! Errors are bad input, panics are broken internal invariants. Nothing
//! indexes input without a bounds check; every buffer has a documented
//! capacity constant, and input that does not fit is an `Err`. Tests push
//! malformed messages, frames and attestations through every public input
//! path.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

#[cfg(all(test, not(feature = "std")))]
extern crate std;

pub mod attest;
pub mod client;
pub mod error;
pub mod media;
pub mod stun;
pub mod time;
pub mod turn;
pub mod ws;

// The std layers use std freely; the lint guards the no_std core.
#[cfg(feature = "codec")]
#[allow(clippy::std_instead_of_core)]
pub mod audio;
#[cfg(feature = "std")]
#[allow(clippy::std_instead_of_core)]
mod bot;
#[cfg(feature = "codec")]
#[allow(clippy::std_instead_of_core)]
pub mod codec;

pub use attest::{Expect, HumanAttestation, HvPolicy, verify_human_attestation, verify_incoming};
pub use error::{AttestationError, Error, RefuseReason};
pub use time::Instant;

#[cfg(feature = "std")]
pub use bot::{
    Bot, BotConfig, BotError, BotStatus, Call, CallStats, DEFAULT_MEDIA_TIMEOUT, EndReason,
    IcePolicy, IceServerConfig, Incoming, OpusFrame, load_key, register_with_discovery,
};

/// Re-exported so users can name keys and ids without a direct dependency.
pub use botcall_core;
