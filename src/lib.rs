//! botcalld: the BotCall discovery daemon — bot registry, presence and call
//! signaling over WebSocket, human attestations, STUN, and the PWA.
//!
//! A library with a thin binary (`src/main.rs`): [`main`] is the command
//! line; [`fuzzing`] exposes the parsers the fuzz targets drive.
//!
//! Where a request goes: `server` accepts → `http::conn` parses →
//! `http::routes` answers, or `ws` upgrades → `signal` routes calls.
//! State lives in `store` (agents), `auth` (keys, tokens, limits) and
//! `signal::hub` (sessions, calls); `config` and `metrics` sit beside them.
// `unsafe` only in `trim` (one libc call, with its SAFETY note and test).
#![deny(unsafe_code)]

mod app;
mod auth;
mod budget;
#[cfg(feature = "redis")]
mod bus;
mod cli;
mod client;
#[cfg(feature = "redis")]
mod cluster;
mod config;
mod error;
mod http;
mod ids;
mod log;
mod metrics;
mod net;
mod ops;
mod push;
mod push_config;
mod server;
mod signal;
mod slots;
mod store;
mod stun;
mod trim;
mod ws;

pub use error::StartError;

use std::process::ExitCode;

/// Runs the `botcalld` command line: `args` are the arguments after the
/// program name (a subcommand, or the daemon's flags).
pub fn main(args: &[std::ffi::OsString]) -> ExitCode {
    match args.first().and_then(|a| a.to_str()) {
        Some("keygen") => return cli::keygen(&args[1..]),
        Some("token") => return cli::token(&args[1..]),
        Some("verify-token") => return cli::verify_token(&args[1..]),
        Some("healthcheck") => return cli::healthcheck(&args[1..]),
        Some("sample-config") => {
            print!("{}", config::Config::sample_toml());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let cfg = match cli::daemon_config(args) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("botcalld: {}", StartError::Config(e));
            return ExitCode::from(2);
        }
    };
    log::init(cfg.log_level);
    match server::run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log_error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon's parsers of untrusted bytes, for `fuzz/` (which links this
/// library instead of including the files by path). Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http::request;
    pub use crate::ws::frame;
}
