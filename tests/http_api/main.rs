//! The HTTP API against the real daemon (issue 3, "Must show"): every test
//! starts its own `botcalld` on a loopback port with the flags it needs and
//! talks HTTP/1.1 to it over real sockets — mostly raw bytes, so malformed
//! input reaches the daemon exactly as written.
//!
//! One test binary, one module per topic (`registering`, `lookup`, ...);
//! helpers shared with the other suites are in `tests/common`.
//!
//! Timing: nothing sleeps longer than the behaviour under test needs (TTL
//! expiry is per Unix second, so those tests take 2–3 s); every wait is
//! bounded.
#[path = "../common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use helpers::*;
use serde_json::{Value, json};

mod cli;
mod connection;
mod helpers;
mod hijack;
mod limits;
mod lookup;
mod malformed;
mod metrics;
mod registering;
mod serving;
mod shutdown;
mod ttl;
