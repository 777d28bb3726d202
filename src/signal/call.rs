//! One call: who the two parties are, which state it is in, and the one
//! transition function ([`Call::step`]) for `answer`, `reject` and `hangup`,
//! whether the message came from a socket here or from another daemon.
//!
//! States: `Placing` (caller's daemon, waiting for the bot's daemon to
//! confirm) → `Ringing` (until answer, reject, hangup or the ring timeout)
//! → `Answered` → ended (removed). A party is `Local(conn)`, `Remote(daemon)`
//! or `Away` (an answered call's bot lost its socket; it has
//! `reconnect_grace` to come back, here or on another daemon).

use std::time::Instant;

use botcall_core::id::AgentId;
use botcall_core::protocol::{Msg, Text, hangup};

use crate::ids::{ConnId, DaemonId, SessionId};

/// What a caller offers a bot: the SDP, and the caller's push subscription
/// id for the bot's later `callback`s (passed on in `incoming`).
#[derive(Debug, Clone)]
pub(crate) struct Offer<'a> {
    pub(crate) sdp: Text<'a>,
    pub(crate) callback: Option<AgentId>,
}

/// One side of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Party {
    /// A socket on this daemon.
    Local(ConnId),
    /// The side lives on another daemon.
    Remote(DaemonId),
    /// A bot whose socket dropped during an answered call.
    Away { since: Instant },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    Placing { deadline: Instant },
    Ringing { deadline: Instant },
    Answered,
}

/// A call as this daemon sees it (half of it when the other side is remote).
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) caller: Party,
    pub(crate) bot: Party,
    pub(crate) agent: AgentId,
    pub(crate) session: SessionId,
    pub(crate) hv: &'static str,
    pub(crate) state: CallState,
    /// ICE each side has sent (caller, bot): bounded per call, so a caller
    /// cannot fill a ringing bot's queue with candidates.
    pub(crate) ice: [IceSent; 2],
    /// When this daemon took the call on (placed, relayed or adopted).
    pub(crate) started: Instant,
}

/// Candidates one side of a call has sent, and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IceSent {
    pub(crate) count: u32,
    pub(crate) bytes: u32,
}

/// One party of a call, as the sender of a `hangup` (or the one whose
/// socket went away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Caller,
    Bot,
}

/// Why a call ended, as `botcall_calls_ended_total{reason}` counts it and
/// the log says: who ended it and why, one of
/// [`crate::metrics::CALL_END_REASONS`] — never the client's free text. `reason` is the `hangup` reason `side`
/// sent, or the one the daemon sends for it (`timeout`, `peer_gone`).
pub(crate) fn end_label(side: Side, reason: &Text<'_>) -> &'static str {
    let is = |r: &str| reason.eq_str(r);
    let by = |caller: &'static str, bot: &'static str| match side {
        Side::Caller => caller,
        Side::Bot => bot,
    };
    if is(hangup::MEDIA_LOST) {
        "media_lost"
    } else if is(hangup::MEDIA_TIMEOUT) {
        "media_timeout"
    } else if is(hangup::ERROR) {
        "error"
    } else if is(hangup::TIMEOUT) {
        "ring_timeout"
    } else if is(hangup::PEER_GONE) || is(hangup::REPLACED) {
        by("caller_gone", "bot_gone")
    } else if is(hangup::MEDIA_CLOSED) {
        // The sender saw the *other* side close its media.
        by("bot_hangup", "caller_hangup")
    } else {
        by("caller_hangup", "bot_hangup")
    }
}

impl Call {
    pub(crate) fn is_answered(&self) -> bool {
        self.state == CallState::Answered
    }
}

/// What a party's `answer`, `reject` or `hangup` did to its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The bot answered: forward the answer; the call is now `Answered`.
    Answered,
    /// Forward the message; the call ends, counted under this
    /// `botcall_calls_ended_total` reason.
    Ended(&'static str),
}

/// Why a party's `answer` or `reject` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The caller tried to answer or reject its own call.
    NotTheBot,
    /// The call is not ringing (still being placed, or already answered).
    NotRinging,
}

impl Refused {
    /// The `error` a local sender gets (a remote one is ignored).
    pub(crate) fn error(self) -> (&'static str, &'static str) {
        match self {
            Refused::NotTheBot => ("not_your_call", "only the called bot answers or rejects"),
            Refused::NotRinging => ("wrong_state", "the call is not ringing"),
        }
    }
}

impl Call {
    /// The transition for `msg` sent by `side`, the same for a local socket
    /// and a remote daemon: `answer` and `reject` only from the bot of a
    /// ringing call, `hangup` from either side in any state. `Ok(None)`:
    /// not one of those three messages (ICE and the rest change no state).
    pub(crate) fn step(&mut self, side: Side, msg: &Msg<'_>) -> Result<Option<Step>, Refused> {
        match msg {
            Msg::Answer { .. } | Msg::Reject { .. } if side != Side::Bot => Err(Refused::NotTheBot),
            Msg::Answer { .. } | Msg::Reject { .. }
                if !matches!(self.state, CallState::Ringing { .. }) =>
            {
                Err(Refused::NotRinging)
            }
            Msg::Answer { .. } => {
                self.state = CallState::Answered;
                Ok(Some(Step::Answered))
            }
            Msg::Reject { .. } => Ok(Some(Step::Ended("rejected"))),
            Msg::Hangup { reason, .. } => Ok(Some(Step::Ended(end_label(side, reason)))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(state: CallState) -> Call {
        let id = AgentId::new("c-1").unwrap();
        Call {
            caller: Party::Local(1),
            bot: Party::Remote("d-b".into()),
            agent: AgentId::new("bot").unwrap(),
            session: id,
            hv: "none",
            state,
            ice: Default::default(),
            started: Instant::now(),
        }
    }

    #[test]
    fn one_transition_table_for_answer_reject_and_hangup() {
        let at = Instant::now();
        let ringing = CallState::Ringing { deadline: at };
        let placing = CallState::Placing { deadline: at };
        let answer =
            Msg::decode(r#"{"type":"answer","call_id":"c-1","sdp_answer":"v=0"}"#).unwrap();
        let reject = Msg::decode(r#"{"type":"reject","call_id":"c-1"}"#).unwrap();
        let hangup = Msg::decode(r#"{"type":"hangup","call_id":"c-1","reason":"normal"}"#).unwrap();
        let ice = Msg::decode(r#"{"type":"ice","call_id":"c-1","candidate":null}"#).unwrap();
        use CallState::Answered;
        let cases = [
            (
                ringing,
                Side::Bot,
                &answer,
                Ok(Some(Step::Answered)),
                Answered,
            ),
            (
                ringing,
                Side::Bot,
                &reject,
                Ok(Some(Step::Ended("rejected"))),
                ringing,
            ),
            (
                ringing,
                Side::Caller,
                &answer,
                Err(Refused::NotTheBot),
                ringing,
            ),
            (
                ringing,
                Side::Caller,
                &reject,
                Err(Refused::NotTheBot),
                ringing,
            ),
            (
                placing,
                Side::Bot,
                &answer,
                Err(Refused::NotRinging),
                placing,
            ),
            (
                Answered,
                Side::Bot,
                &answer,
                Err(Refused::NotRinging),
                Answered,
            ),
            // Once accepted from another daemon in any state; now refused.
            (
                Answered,
                Side::Bot,
                &reject,
                Err(Refused::NotRinging),
                Answered,
            ),
            (
                Answered,
                Side::Caller,
                &hangup,
                Ok(Some(Step::Ended("caller_hangup"))),
                Answered,
            ),
            (
                placing,
                Side::Bot,
                &hangup,
                Ok(Some(Step::Ended("bot_hangup"))),
                placing,
            ),
            (ringing, Side::Caller, &ice, Ok(None), ringing),
        ];
        for (before, side, msg, want, after) in cases {
            let mut c = call(before);
            assert_eq!(c.step(side, msg), want, "{before:?} {side:?} {msg:?}");
            assert_eq!(c.state, after, "{before:?} {side:?} {msg:?}");
        }
    }
}
