//! What the application's handles and the call media tasks ask of the
//! presence task, over its one bounded channel. Its own file so that
//! neither side imports the other.

use async_channel::Sender;

use super::{BotError, Call};

/// Requests to the presence task.
pub(crate) enum Cmd {
    /// The application accepts this call (reply: the call, or `None` if it is gone).
    Accept {
        call_id: String,
        reply: Sender<Result<Call, Option<BotError>>>,
    },
    /// A media task trickles a local candidate (`None`: end of candidates).
    LocalCandidate {
        call_id: String,
        candidate: Option<String>,
        mid: Option<String>,
    },
    /// The application rejects a ringing call (`reject` with this reason).
    Reject { call_id: String, reason: String },
    /// A media task ended its call.
    Hangup {
        call_id: String,
        reason: &'static str,
    },
    /// Stop everything.
    Shutdown,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Accept { call_id, .. } => write!(f, "Accept({call_id})"),
            Cmd::LocalCandidate { call_id, .. } => write!(f, "LocalCandidate({call_id})"),
            Cmd::Reject { call_id, .. } => write!(f, "Reject({call_id})"),
            Cmd::Hangup { call_id, .. } => write!(f, "Hangup({call_id})"),
            Cmd::Shutdown => f.write_str("Shutdown"),
        }
    }
}
