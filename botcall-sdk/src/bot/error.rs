//! The `std` client's error type.

use std::fmt;

use botcall_core::jwt::JwtError;

use crate::error::{AttestationError, Error, RefuseReason};
use crate::ws::WsError;

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The caller hung up, or the daemon ended the call (`timeout`,
    /// `peer_gone`, `replaced`, …): the reason text as received.
    Remote(String),
    /// The application hung up ([`crate::Call::hangup`] or dropping the call).
    Local,
    /// The bot's signaling connection to the daemon was lost (the daemon
    /// ends calls whose bot socket closes).
    SignalingLost,
    /// Media never connected, or stopped flowing (ICE disconnected too long).
    MediaTimeout,
    /// The bot was shut down.
    Shutdown,
    /// Something failed in the media stack.
    Error(String),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Remote(r) => write!(f, "hung up by the other side ({r})"),
            EndReason::Local => f.write_str("hung up by the bot"),
            EndReason::SignalingLost => f.write_str("the connection to the daemon was lost"),
            EndReason::MediaTimeout => f.write_str("media did not connect or stopped flowing"),
            EndReason::Shutdown => f.write_str("the bot shut down"),
            EndReason::Error(e) => write!(f, "media error: {e}"),
        }
    }
}

/// Errors of the `std` client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BotError {
    /// Bad configuration (URL, agent id, options).
    Config(String),
    /// The signing key is unusable, or a token could not be made.
    Key(JwtError),
    /// A network or file error.
    Io {
        /// The kind.
        kind: std::io::ErrorKind,
        /// What was being done, and the error text.
        message: String,
    },
    /// The daemon answered an HTTP request with an error (`POST /register`:
    /// 401 `unauthorized`, 403 `id_taken`, …).
    Http {
        /// HTTP status.
        status: u16,
        /// The error body's `code`.
        code: String,
        /// The error body's `error` text (or the raw body).
        message: String,
        /// `Retry-After` in seconds (429 `rate_limited`, 503 `store_unavailable`), if given:
        /// the reconnect loop waits at least this long.
        retry_after: Option<u32>,
    },
    /// The daemon refused the presence session (`error` before `welcome`,
    /// e.g. `unauthorized`).
    Refused {
        /// The `error` code.
        code: String,
        /// Its message.
        message: String,
    },
    /// An incoming call was refused before it reached the application (a
    /// `reject` was sent). [`crate::Bot::accept_call`] can be called again.
    CallRefused {
        /// The call.
        call_id: String,
        /// Why: a failed attestation check, or busy.
        reason: RefuseReason,
    },
    /// A signaling state machine error.
    Signaling(Error),
    /// A WebSocket protocol error.
    WebSocket(WsError),
    /// Setting up media failed (bad offer, no usable socket, str0m error).
    Media(String),
    /// The call is over.
    Ended(EndReason),
    /// Something did not happen in time.
    Timeout(&'static str),
    /// The bot was shut down (or its background thread is gone).
    Closed,
}

impl BotError {
    /// Whether this is a refused incoming call (keep accepting).
    pub fn is_refused_call(&self) -> bool {
        matches!(self, BotError::CallRefused { .. })
    }

    /// The attestation check that failed, if that is why a call was refused.
    pub fn attestation_error(&self) -> Option<AttestationError> {
        match self {
            BotError::CallRefused {
                reason: RefuseReason::Attestation(e),
                ..
            } => Some(*e),
            _ => None,
        }
    }

    pub(crate) fn io(what: &str, e: &std::io::Error) -> Self {
        BotError::Io {
            kind: e.kind(),
            message: format!("{what}: {e}"),
        }
    }
}

impl From<Error> for BotError {
    fn from(e: Error) -> Self {
        BotError::Signaling(e)
    }
}

impl From<WsError> for BotError {
    fn from(e: WsError) -> Self {
        BotError::WebSocket(e)
    }
}

impl fmt::Display for BotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BotError::Config(m) => write!(f, "configuration: {m}"),
            BotError::Key(e) => write!(f, "signing key: {e}"),
            BotError::Io { message, .. } => f.write_str(message),
            BotError::Http {
                status,
                code,
                message,
                retry_after,
            } => {
                write!(f, "daemon answered HTTP {status} {code}: {message}")?;
                match retry_after {
                    Some(s) => write!(f, " (retry after {s} s)"),
                    None => Ok(()),
                }
            }
            BotError::Refused { code, message } => {
                write!(f, "daemon refused the session: {code}: {message}")
            }
            BotError::CallRefused { call_id, reason } => {
                write!(f, "call {call_id} refused: {reason}")
            }
            BotError::Signaling(e) => write!(f, "signaling: {e}"),
            BotError::WebSocket(e) => write!(f, "websocket: {e}"),
            BotError::Media(m) => write!(f, "media: {m}"),
            BotError::Ended(r) => write!(f, "call ended: {r}"),
            BotError::Timeout(what) => write!(f, "timed out: {what}"),
            BotError::Closed => f.write_str("the bot was shut down"),
        }
    }
}

impl std::error::Error for BotError {}
