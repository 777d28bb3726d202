//! The human check before a call: proof of work today (`hv` = `pow`); the
//! `proof.method` field leaves room for WebAuthn. Challenges are random,
//! single-use, per session and expire. A solution buys `pow_calls` calls
//! within `pow_lifetime`, then the caller solves a new challenge.

use std::time::Instant;

use botcall_core::pow;
use botcall_core::protocol::{Challenge, Msg, Proof, Text};

use super::hub::{ConnId, Hub};
use crate::config::HumanCheck;

impl Hub {
    /// A fresh challenge for `conn`'s session (`None` when no check is configured).
    pub(super) fn new_challenge(&mut self, conn: ConnId, now: Instant) -> Option<String> {
        if self.cfg.human_check != HumanCheck::Pow {
            return None;
        }
        let c = self.random_id("").to_string();
        let ttl = self.cfg.challenge_ttl;
        if let Some(s) = self.session_mut(conn) {
            s.challenge = Some(Box::new((c.clone(), now + ttl)));
        }
        Some(c)
    }

    pub(super) fn challenge_msg<'a>(&self, text: &'a str) -> Challenge<'a> {
        Challenge {
            method: Text::Str("pow"),
            challenge: Text::Str(text),
            difficulty: self.cfg.pow_difficulty,
            expires_in: self.cfg.challenge_ttl.as_secs(),
        }
    }

    /// Checks a proof against the session's challenge.
    pub(super) fn verify_proof(
        &mut self,
        conn: ConnId,
        proof: &Proof<'_>,
        now: Instant,
    ) -> Result<(), (&'static str, String)> {
        let difficulty = self.cfg.pow_difficulty;
        let calls = self.cfg.pow_calls;
        let until = self
            .secs(now)
            .saturating_add(u32::try_from(self.cfg.pow_lifetime.as_secs()).unwrap_or(u32::MAX));
        let Some(s) = self.session_mut(conn) else {
            return Err(("hello_required", "say hello first".into()));
        };
        if !proof.method.eq_str("pow") {
            return Err((
                "human_check_failed",
                "unsupported human-check method".into(),
            ));
        }
        let Some(ch) = s.challenge.as_ref() else {
            return Err(("human_check_failed", "no challenge outstanding".into()));
        };
        if ch.1 <= now {
            s.challenge = None;
            return Err(("human_check_required", "challenge expired".into()));
        }
        if !proof.challenge.eq_str(&ch.0) {
            return Err((
                "human_check_failed",
                "proof is for another challenge".into(),
            ));
        }
        let nonce: heapless::String<{ pow::MAX_NONCE_LEN }> = proof
            .nonce
            .to_heapless()
            .map_err(|_| ("human_check_failed", "bad nonce".to_string()))?;
        match pow::check(&ch.0, &nonce, difficulty) {
            Ok(()) => {
                s.verified_calls = calls;
                s.verified_until = until;
                s.challenge = None;
                self.metrics.pow_verified.inc();
                Ok(())
            }
            Err(_) => {
                self.metrics.pow_failed.inc();
                Err((
                    "human_check_failed",
                    "proof of work does not meet the difficulty".into(),
                ))
            }
        }
    }

    /// Whether `conn`'s last proof of work still covers a call at `now`.
    pub(super) fn is_verified(&self, conn: ConnId, now: Instant) -> bool {
        let t = self.secs(now);
        self.session(conn)
            .is_some_and(|s| s.verified_calls > 0 && t < s.verified_until)
    }

    /// `true` when the call must wait: the session is not verified and the
    /// proof (if any) did not pass. The caller has been told why.
    pub(super) fn human_check_needed(
        &mut self,
        conn: ConnId,
        proof: Option<&Proof<'_>>,
        now: Instant,
    ) -> bool {
        if self.cfg.human_check == HumanCheck::None || self.is_verified(conn, now) {
            return false;
        }
        match proof {
            Some(p) => match self.verify_proof(conn, p, now) {
                Ok(()) => false,
                Err((code, message)) => {
                    self.refuse_with_challenge(conn, code, &message, now);
                    true
                }
            },
            None => {
                self.refuse_with_challenge(
                    conn,
                    "human_check_required",
                    "solve the challenge first",
                    now,
                );
                true
            }
        }
    }

    /// Sends the refusal, then a fresh `challenge` if none is left to solve.
    pub(super) fn refuse_with_challenge(
        &mut self,
        conn: ConnId,
        code: &'static str,
        message: &str,
        now: Instant,
    ) {
        self.error(conn, code, message, None);
        let has = self
            .session(conn)
            .and_then(|s| s.challenge.as_ref())
            .is_some_and(|c| c.1 > now);
        if !has && let Some(c) = self.new_challenge(conn, now) {
            let ch = self.challenge_msg(&c);
            self.send(conn, &Msg::Challenge(ch));
        }
    }
}
