//! The client's public boundary types: configuration, inputs, outputs,
//! events, state and counters. Plain data with fixed sizes (no generics
//! beyond capacities, no allocation), so a C binding can mirror them.

use botcall_core::id::AgentId;
use botcall_core::json::{self, Value};
use botcall_core::protocol::Text;

use super::{MAX_CANDIDATE_LEN, MAX_ICE_URLS, fill};
use crate::attest::HvPolicy;
use crate::error::RefuseReason;
use crate::time::Instant;

/// Fixed-capacity text used in events.
pub type Str<const N: usize> = heapless::String<N>;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Simultaneous calls (1..=[`MAX_CALLS`](super::MAX_CALLS)); sent in `hello`.
    pub max_calls: u8,
    /// Accepted human-check methods.
    pub policy: HvPolicy,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_calls: 1,
            policy: HvPolicy::ANY,
        }
    }
}

/// Something that happened, for the owner of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The WebSocket (asked for by [`Output::Connect`]) is open. `token` is a
    /// fresh BotAuth token for `hello`; `unix_secs` the wall clock now (for
    /// attestation times).
    Connected {
        /// BotAuth JWT.
        token: &'a str,
        /// Unix time in seconds.
        unix_secs: u64,
    },
    /// A text frame arrived.
    Message(&'a str),
    /// Any other frame arrived (ping, pong): the connection is alive.
    Activity,
    /// The socket closed, or could not be opened.
    Disconnected {
        /// The WebSocket close code, if one was received (4000: replaced).
        close_code: Option<u16>,
        /// The daemon's `Retry-After` (seconds) on a 429/503 answer: the next
        /// attempt waits at least this long (at most [`RETRY_AFTER_MAX_SECS`]).
        ///
        /// [`RETRY_AFTER_MAX_SECS`]: crate::client::RETRY_AFTER_MAX_SECS
        retry_after_secs: Option<u32>,
    },
}

/// What the owner must do next. Drain until [`Output::Timeout`].
// Events are fixed-size values by design (no allocator to box them).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<'a> {
    /// Send this text frame. The text lives in the client until the next poll.
    Send(&'a str),
    /// Open the WebSocket; answer with [`Input::Connected`] or [`Input::Disconnected`].
    Connect,
    /// Close the WebSocket (no [`Input::Disconnected`] needed afterwards).
    Close,
    /// Tell the application.
    Event(Event),
    /// Nothing more now: call [`Client::handle_timeout`](super::Client::handle_timeout) at this instant (or earlier on input).
    Timeout(Instant),
}

/// Why the presence session ended or could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflineReason {
    /// The connection could not be opened.
    ConnectFailed,
    /// The socket closed.
    Disconnected,
    /// No `welcome` in time, or the socket went silent (heartbeat).
    Timeout,
    /// A newer connection for the same agent replaced this one (close 4000);
    /// the client stops instead of fighting over the id.
    Replaced,
    /// [`Client::shutdown`](super::Client::shutdown).
    Shutdown,
}

/// An event for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
// No allocator to box into: a trickled candidate (≤ 512 bytes) is the
// largest event, and the fixed queue holds 16 of them.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// `welcome`: the bot is online.
    Online {
        /// The agent id the daemon authenticated.
        agent_id: AgentId,
        /// The session id.
        session: AgentId,
        /// Seconds between the daemon's pings.
        heartbeat_interval: u32,
    },
    /// The session ended (or an attempt failed). A reconnect is scheduled
    /// unless the reason is `Replaced` or `Shutdown`.
    Offline {
        /// Why.
        reason: OfflineReason,
        /// Whether a `welcome` had been received on this connection.
        was_online: bool,
    },
    /// A call whose attestation verified and whose policy passed. Answer with
    /// [`Client::answer`](super::Client::answer) (the offer is [`Client::offer`](super::Client::offer)) or [`Client::reject`](super::Client::reject).
    /// The verified attestation (who calls, how they were checked, their
    /// fingerprints) is [`Client::caller`](super::Client::caller): kept once
    /// in the call's slot, not copied into every queued event.
    Incoming {
        /// The call.
        call_id: AgentId,
    },
    /// A call that was refused before the application saw it; a `reject` was sent.
    Refused {
        /// The call.
        call_id: AgentId,
        /// Why.
        reason: RefuseReason,
    },
    /// A trickled ICE candidate from the caller.
    RemoteCandidate {
        /// The call.
        call_id: AgentId,
        /// `candidate:…` text; `None` for end-of-candidates.
        candidate: Option<Str<MAX_CANDIDATE_LEN>>,
        /// `sdpMid`, if given.
        mid: Option<Str<32>>,
    },
    /// The call ended: the caller hung up, the daemon ended it (`timeout`,
    /// `peer_gone`, `replaced`), or the signaling connection was lost
    /// (`disconnected`). The call's slot is free again.
    Hangup {
        /// The call.
        call_id: AgentId,
        /// The reason text.
        reason: Str<64>,
    },
    /// The daemon sent `error`.
    ServerError {
        /// Stable code (`unauthorized`, `wrong_state`, …).
        code: Str<32>,
        /// Human text (truncated to 128 bytes).
        message: Str<128>,
        /// The call concerned, if any.
        call_id: Option<AgentId>,
    },
}

/// Where the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Waiting for the owner to open the socket.
    Connecting,
    /// `hello` sent, waiting for `welcome`.
    WaitingForWelcome,
    /// Online.
    Online,
    /// Waiting to reconnect.
    Backoff {
        /// When the next attempt starts.
        until: Instant,
    },
    /// Shut down or replaced: no more reconnects.
    Stopped,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// [`Output::Connect`]s issued.
    pub connect_attempts: u32,
    /// `welcome`s received.
    pub sessions: u32,
    /// Messages that did not decode or made no sense.
    pub bad_messages: u32,
    /// Incoming calls refused before the application saw them.
    pub refused_calls: u32,
    /// Events dropped because the queue was full.
    pub dropped_events: u32,
    /// Application pings sent.
    pub pings_sent: u32,
}

/// An ICE server from `welcome` (one per URL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, …
    pub url: Str<256>,
    /// TURN username (empty for STUN).
    pub username: Str<128>,
    /// TURN credential (empty for STUN).
    pub credential: Str<128>,
}

/// Parses an `RTCIceServer[]` JSON array into one entry per URL.
pub fn parse_ice_servers(json_text: &str) -> heapless::Vec<IceServer, MAX_ICE_URLS> {
    let mut out = heapless::Vec::new();
    let Ok(Value::Arr(servers)) = json::parse(json_text) else {
        return out;
    };
    for s in servers.iter() {
        let Value::Obj(o) = s else { continue };
        let mut username = Str::new();
        let mut credential = Str::new();
        if let Ok(Some(u)) = o.opt_str("username")
            && fill(&mut username, Text::Json(u)).is_err()
        {
            continue;
        }
        if let Ok(Some(c)) = o.opt_str("credential")
            && fill(&mut credential, Text::Json(c)).is_err()
        {
            continue;
        }
        let mut add = |u: json::JsonStr<'_>| {
            let mut url = Str::new();
            if fill(&mut url, Text::Json(u)).is_ok() {
                let _ = out.push(IceServer {
                    url,
                    username: username.clone(),
                    credential: credential.clone(),
                });
            }
        };
        match o.get("urls") {
            Some(Value::Str(u)) => add(u),
            Some(Value::Arr(a)) => {
                for u in a.iter() {
                    if let Value::Str(u) = u {
                        add(u);
                    }
                }
            }
            _ => {}
        }
    }
    out
}
