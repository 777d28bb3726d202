//! The `std` client's error type.

use std::fmt;

use botcall_core::jwt::JwtError;

use crate::error::{AttestationError, Error, RefuseReason};
use crate::ws::WsError;

/// Why a call ended: who ended it, and why. [`EndReason::code`] is a stable
/// string for each (for bindings, logs and metrics); docs/sdk.md lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The caller hung up: its `hangup` message, with the reason it gave
    /// (the PWA sends `normal`), or, when that had not arrived yet, the DTLS
    /// close alert of its peer connection (reason `dtls_close`). Code
    /// `remote_hangup` either way.
    RemoteHangup(String),
    /// The caller went away without hanging up: the daemon says its socket
    /// closed (`peer_gone`: a closed tab, a crash).
    RemoteGone,
    /// The daemon ended the call for another reason (`timeout`: answered too
    /// late; `replaced`; a reason this SDK does not know yet), as received.
    Daemon(String),
    /// Media was connected and stopped: ICE disconnected, or nothing (RTP,
    /// RTCP, ICE consent) arrived from the caller for
    /// [`BotConfig::media_timeout`](crate::BotConfig::media_timeout); or
    /// the caller said its media was lost. The daemon is told `media_lost`.
    MediaLost,
    /// Media never connected (ICE + DTLS within 20 s), or the caller said so.
    /// The daemon is told `media_timeout`.
    MediaTimeout,
    /// The application hung up ([`crate::Call::hangup`] or dropping the
    /// call): the caller gets `hangup` with reason `hangup`.
    Local,
    /// The bot's signaling connection to the daemon was lost (the daemon
    /// ends calls whose bot socket closes).
    SignalingLost,
    /// The bot was shut down ([`crate::Bot::shutdown`] or dropping it): the
    /// caller gets `hangup` with reason `shutdown`.
    Shutdown,
    /// Something failed in the media stack, or the daemon no longer knows
    /// the call.
    Error(String),
}

impl EndReason {
    /// A stable snake_case code: `remote_hangup`, `remote_gone`, `daemon`,
    /// `media_lost`, `media_timeout`, `local`, `signaling_lost`, `shutdown`,
    /// `error`.
    pub fn code(&self) -> &'static str {
        match self {
            EndReason::RemoteHangup(_) => "remote_hangup",
            EndReason::RemoteGone => "remote_gone",
            EndReason::Daemon(_) => "daemon",
            EndReason::MediaLost => "media_lost",
            EndReason::MediaTimeout => "media_timeout",
            EndReason::Local => "local",
            EndReason::SignalingLost => "signaling_lost",
            EndReason::Shutdown => "shutdown",
            EndReason::Error(_) => "error",
        }
    }

    /// The reason text that came with it (the caller's or the daemon's
    /// `hangup` reason, an error message), if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            EndReason::RemoteHangup(r) | EndReason::Daemon(r) | EndReason::Error(r) => Some(r),
            _ => None,
        }
    }

    /// How a `hangup` that arrived over signaling ends the call
    /// (`disconnected` is the SDK core's own word for a lost socket).
    pub(crate) fn from_hangup(reason: &str) -> Self {
        use botcall_core::protocol::hangup;
        match reason {
            "disconnected" => EndReason::SignalingLost,
            hangup::PEER_GONE => EndReason::RemoteGone,
            hangup::TIMEOUT | hangup::REPLACED => EndReason::Daemon(reason.to_string()),
            hangup::MEDIA_LOST => EndReason::MediaLost,
            hangup::MEDIA_TIMEOUT => EndReason::MediaTimeout,
            other => EndReason::RemoteHangup(other.to_string()),
        }
    }

    /// The `hangup` reason the bot sends when the call ends on its side,
    /// or `None` when the daemon already knows (it told us, or the socket
    /// is gone, or the core says `shutdown` itself).
    pub(crate) fn hangup_reason(&self, media_closed: bool) -> Option<&'static str> {
        use botcall_core::protocol::hangup;
        match self {
            EndReason::Local => Some(hangup::HANGUP),
            EndReason::MediaLost => Some(hangup::MEDIA_LOST),
            EndReason::MediaTimeout => Some(hangup::MEDIA_TIMEOUT),
            EndReason::Error(_) => Some(hangup::ERROR),
            // The caller's DTLS close came before its `hangup`: free the
            // call now (it may never send one).
            EndReason::RemoteHangup(_) if media_closed => Some(hangup::MEDIA_CLOSED),
            _ => None,
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::RemoteHangup(r) => write!(f, "hung up by the caller ({r})"),
            EndReason::RemoteGone => f.write_str("the caller went away"),
            EndReason::Daemon(r) => write!(f, "ended by the daemon ({r})"),
            EndReason::MediaLost => f.write_str("media stopped flowing"),
            EndReason::MediaTimeout => f.write_str("media did not connect"),
            EndReason::Local => f.write_str("hung up by the bot"),
            EndReason::SignalingLost => f.write_str("the connection to the daemon was lost"),
            EndReason::Shutdown => f.write_str("the bot shut down"),
            EndReason::Error(e) => write!(f, "error: {e}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangup_reasons_map_to_end_reasons_and_back() {
        assert_eq!(
            EndReason::from_hangup("bye"),
            EndReason::RemoteHangup("bye".into())
        );
        assert_eq!(EndReason::from_hangup("peer_gone"), EndReason::RemoteGone);
        assert_eq!(
            EndReason::from_hangup("timeout"),
            EndReason::Daemon("timeout".into())
        );
        assert_eq!(EndReason::from_hangup("media_lost"), EndReason::MediaLost);
        assert_eq!(
            EndReason::from_hangup("media_timeout"),
            EndReason::MediaTimeout
        );
        assert_eq!(
            EndReason::from_hangup("disconnected"),
            EndReason::SignalingLost
        );
        assert_eq!(EndReason::Local.hangup_reason(false), Some("hangup"));
        assert_eq!(
            EndReason::MediaLost.hangup_reason(false),
            Some("media_lost")
        );
        assert_eq!(
            EndReason::RemoteHangup("dtls_close".into()).hangup_reason(true),
            Some("media_closed")
        );
        assert_eq!(
            EndReason::RemoteHangup("bye".into()).hangup_reason(false),
            None
        );
        assert_eq!(EndReason::Shutdown.hangup_reason(false), None);
        let all = [
            EndReason::RemoteHangup(String::new()),
            EndReason::RemoteGone,
            EndReason::Daemon(String::new()),
            EndReason::MediaLost,
            EndReason::MediaTimeout,
            EndReason::Local,
            EndReason::SignalingLost,
            EndReason::Shutdown,
            EndReason::Error(String::new()),
        ];
        let mut codes: Vec<&str> = all.iter().map(EndReason::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes are distinct");
    }
}
