//! Why the daemon could not start: one variant per step of start-up, so the
//! exit path (and a test) can tell a bad flag from a port in use.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A start-up failure. Everything the operator must fix before the daemon
/// can run; `Display` says what and where.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A command-line flag, environment variable or config file value.
    Config(String),
    /// The keys file (`keys`) could not be read or parsed.
    Keys(String),
    /// The attestation key could not be read, parsed or created.
    AttestationKey(String),
    /// The configured store is unreachable (or not in this build).
    Store(String),
    /// The TLS certificate or key (`tls_cert`, `tls_key`), or TLS is not in
    /// this build.
    Tls(String),
    /// The API port could not be bound.
    Listen(SocketAddr, io::Error),
    /// The STUN port could not be bound.
    Stun(SocketAddr, io::Error),
    /// A bound socket could not be set up for the event loop.
    Socket(io::Error),
    /// Web Push: the VAPID key could not be read, created or shared, or
    /// `push_ca_file` could not be read.
    Push(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(m)
            | StartError::Keys(m)
            | StartError::AttestationKey(m)
            | StartError::Store(m)
            | StartError::Tls(m)
            | StartError::Push(m) => f.write_str(m),
            StartError::Listen(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            StartError::Stun(addr, e) => write!(f, "cannot bind STUN on {addr}: {e}"),
            StartError::Socket(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Listen(_, e) | StartError::Stun(_, e) | StartError::Socket(e) => Some(e),
            _ => None,
        }
    }
}
