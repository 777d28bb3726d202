//! A verified call that rings, before the application answers or rejects it
//! ([`Bot::next_incoming`]). [`Bot::accept_call`] is `next_incoming` +
//! [`Bot::answer`] for bots that answer every verified call.

use async_channel::Sender;

use super::cmd::Cmd;
use super::presence::Pending;
use super::{Bot, BotError, Call, EndReason, HumanAttestation};

/// A verified incoming call that has not been answered yet. Dropping it
/// unanswered rejects it (`busy`).
#[derive(Debug)]
pub struct Incoming {
    call_id: String,
    caller: HumanAttestation,
    cmd: Sender<Cmd>,
    done: bool,
}

impl Incoming {
    /// The call id.
    pub fn id(&self) -> &str {
        &self.call_id
    }

    /// Who calls: the verified attestation.
    pub fn caller(&self) -> &HumanAttestation {
        &self.caller
    }

    fn take(mut self) -> (String, HumanAttestation) {
        self.done = true;
        (std::mem::take(&mut self.call_id), self.caller.clone())
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.cmd.try_send(Cmd::Reject {
                call_id: std::mem::take(&mut self.call_id),
                reason: "busy".into(),
            });
        }
    }
}

impl Bot {
    /// Waits for the next call whose attestation verified (as
    /// [`Bot::accept_call`] checks it) and returns it ringing: answer it with
    /// [`Bot::answer`] or refuse it with [`Bot::reject`].
    ///
    /// # Errors
    /// As [`Bot::accept_call`].
    pub async fn next_incoming(&self) -> Result<Incoming, BotError> {
        match self.incoming.recv().await {
            Ok(Ok(Pending { call_id, caller })) => Ok(Incoming {
                call_id,
                caller,
                cmd: self.cmd.clone(),
                done: false,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BotError::Closed),
        }
    }

    /// Answers a ringing call; media connects in the background.
    ///
    /// # Errors
    /// [`BotError::Ended`] (`remote_gone`) if the caller left while it rang;
    /// [`BotError::Media`] if media could not be set up for its offer;
    /// [`BotError::Closed`] after shutdown.
    pub async fn answer(&self, call: Incoming) -> Result<Call, BotError> {
        let (call_id, _) = call.take();
        let (tx, rx) = async_channel::bounded(1);
        self.cmd
            .send(Cmd::Accept { call_id, reply: tx })
            .await
            .map_err(|_| BotError::Closed)?;
        match rx.recv().await {
            Ok(Ok(call)) => Ok(call),
            Ok(Err(None)) => Err(BotError::Ended(EndReason::RemoteGone)),
            Ok(Err(Some(e))) => Err(e),
            Err(_) => Err(BotError::Closed),
        }
    }

    /// Refuses a ringing call: the caller gets `rejected` with `reason`
    /// (at most `botcall_core::protocol::MAX_REASON_LEN` bytes).
    ///
    /// # Errors
    /// [`BotError::Config`] for a reason that is too long (the call is then
    /// rejected as `busy`); [`BotError::Closed`] after shutdown.
    pub async fn reject(&self, call: Incoming, reason: &str) -> Result<(), BotError> {
        if reason.len() > botcall_core::protocol::MAX_REASON_LEN {
            drop(call);
            return Err(BotError::Config(format!(
                "a reject reason is at most {} bytes",
                botcall_core::protocol::MAX_REASON_LEN
            )));
        }
        let (call_id, _) = call.take();
        self.cmd
            .send(Cmd::Reject {
                call_id,
                reason: reason.to_string(),
            })
            .await
            .map_err(|_| BotError::Closed)
    }
}
