//! Calls in the hub: placing them, how a message from one party reaches
//! the other — a local socket, another daemon over Redis, or nowhere while
//! a bot reconnects — timeouts and hand-overs. The call record and its
//! transitions are in [`super::call`].

use std::time::Instant;

use botcall_core::id::AgentId;
use botcall_core::protocol::{Msg, Proof, RawJson, Text, close, hangup};
use botcall_core::sdp;

use super::call::{Call, CallState, Offer, Party, Side, Step, end_label};
use super::hub::{Hub, Output, encode};
use super::remote::{self, Kind};
use crate::auth::attest::Attestation;
use crate::ids::{CallId, ConnId, DaemonId};

fn hv_static(hv: Option<&str>) -> &'static str {
    match hv {
        Some("pow") => "pow",
        _ => "none",
    }
}

impl Hub {
    /// Sends `msg` (about `call_id`) to `party`.
    fn send_to(&mut self, party: &Party, call_id: &AgentId, msg: &Msg<'_>) {
        match party {
            Party::Local(conn) => self.out.push_back(Output::Send(*conn, encode(msg))),
            Party::Remote(d) => {
                let out = remote::Out {
                    call_id: Some(call_id),
                    ..Default::default()
                };
                let env = remote::encode(&self.me, Kind::Signal, &out, Some(msg));
                self.metrics.remote_messages.inc("out");
                self.out.push_back(Output::Remote(d.clone(), env));
            }
            Party::Away { .. } => {}
        }
    }

    fn add_to_session(&mut self, party: &Party, id: &AgentId) {
        if let Party::Local(conn) = party
            && let Some(s) = self.session_mut(*conn)
            && !s.calls.contains(id)
        {
            s.calls.push(id.clone());
        }
    }

    fn remove_from_sessions(&mut self, call: &Call, id: &AgentId) {
        for party in [&call.caller, &call.bot] {
            if let Party::Local(conn) = party
                && let Some(s) = self.sessions.get_mut(*conn)
            {
                s.calls.retain(|c| c != id);
            }
        }
    }

    /// Ends a call here: counted under `label` (one of
    /// [`crate::metrics::CALL_END_REASONS`]) and logged.
    pub(super) fn end_call(
        &mut self,
        id: &AgentId,
        label: &'static str,
        now: Instant,
    ) -> Option<Call> {
        let call = self.calls.remove(id)?;
        self.remove_from_sessions(&call, id);
        self.metrics.calls_ended.inc(label);
        self.metrics.calls_active.dec();
        let secs = now.saturating_duration_since(call.started).as_secs_f64();
        crate::log_info!(
            "call {id} ended: {label} after {secs:.1} s (agent {}, caller {})",
            call.agent,
            call.session
        );
        Some(call)
    }

    /// Ends a call and tells every party except `quiet` (`hangup` with the
    /// daemon's `reason`, on behalf of `side`: the side that went away or
    /// timed out).
    pub(super) fn end_call_notify(
        &mut self,
        id: &AgentId,
        reason: &'static str,
        side: Side,
        quiet: Option<ConnId>,
        now: Instant,
    ) {
        let label = end_label(side, &Text::Str(reason));
        let Some(call) = self.end_call(id, label, now) else {
            return;
        };
        let msg = Msg::Hangup {
            call_id: id.clone(),
            reason: Text::Str(reason),
        };
        for party in [&call.caller, &call.bot] {
            if quiet.is_some_and(|q| *party == Party::Local(q)) {
                continue;
            }
            if matches!(call.state, CallState::Placing { .. }) && *party == call.caller {
                // The caller never heard "ringing": tell it plainly.
                if let Party::Local(c) = party {
                    self.error(*c, "offline", "the agent is not reachable", Some(id));
                }
                continue;
            }
            self.send_to(party, id, &msg);
        }
    }

    /// Records a call; `fresh` unless it was handed over by another daemon.
    fn new_call(&mut self, id: AgentId, call: Call, fresh: bool) {
        self.add_to_session(&call.caller, &id);
        self.add_to_session(&call.bot, &id);
        let how = match (&call.caller, &call.bot, fresh) {
            (Party::Local(_), Party::Local(_), _) => String::new(),
            (Party::Local(_), Party::Remote(d), _) => format!(", bot on daemon {d}"),
            (Party::Remote(d), _, true) => format!(", caller on daemon {d}"),
            (Party::Remote(d), _, false) => format!(", caller on daemon {d}, handed over"),
            _ => String::new(),
        };
        crate::log_info!(
            "call {id} started: agent {}, caller {}, hv {}{how}",
            call.agent,
            call.session,
            call.hv
        );
        self.calls.insert(id, call);
        if fresh {
            self.metrics.calls_started.inc();
        }
        self.metrics.calls_active.inc();
    }

    /// A caller places a call to `to` — a bot here, or on `remote_bot`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn place_call(
        &mut self,
        conn: ConnId,
        to: AgentId,
        offer: Offer<'_>,
        proof: Option<&Proof<'_>>,
        remote_bot: Option<DaemonId>,
        now: Instant,
        unix: u64,
    ) {
        let limit = self.cfg.max_calls_per_caller;
        if self.session(conn).is_some_and(|s| s.calls.len() >= limit) {
            self.error(
                conn,
                "too_many_calls",
                "this session has too many calls",
                None,
            );
            return;
        }
        if self.human_check_needed(conn, proof, now) {
            return;
        }
        let Some(session) = self.session(conn).and_then(|s| s.name.clone()) else {
            return;
        };
        // Each call spends one of the calls the proof of work bought.
        let verified = self.is_verified(conn, now);
        if verified && let Some(s) = self.session_mut(conn) {
            s.verified_calls -= 1;
        }
        let hv = if verified { "pow" } else { "none" };
        if let Some(bot) = self.bot_conn(&to) {
            let call_id = self.random_id("c-");
            if let Err((code, msg)) =
                self.offer_to_local_bot(bot, &to, &call_id, &session, hv, offer, now, unix)
            {
                self.error(conn, code, &msg, None);
                return;
            }
            let deadline = now + self.cfg.ring_timeout;
            self.new_call(
                call_id.clone(),
                Call {
                    caller: Party::Local(conn),
                    bot: Party::Local(bot),
                    agent: to.clone(),
                    session,
                    hv,
                    state: CallState::Ringing { deadline },
                    ice: Default::default(),
                    started: now,
                },
                true,
            );
            self.send(conn, &Msg::Ringing { call_id, to });
            return;
        }
        let Some(daemon) = remote_bot else {
            self.error(conn, "offline", "the agent is not online", None);
            return;
        };
        // The bot's daemon checks capacity and signs the attestation.
        let call_id = self.random_id("c-");
        let out = remote::Out {
            call_id: Some(&call_id),
            session: Some(&session),
            hv: Some(hv),
            agent: Some(&to),
            ..Default::default()
        };
        let msg = Msg::Call {
            to: to.clone(),
            sdp_offer: offer.sdp,
            proof: None,
            callback: offer.callback,
        };
        let env = remote::encode(&self.me, Kind::Signal, &out, Some(&msg));
        self.metrics.remote_messages.inc("out");
        self.out.push_back(Output::Remote(daemon.clone(), env));
        self.new_call(
            call_id,
            Call {
                caller: Party::Local(conn),
                bot: Party::Remote(daemon),
                agent: to,
                session,
                hv,
                state: CallState::Placing {
                    deadline: now + self.cfg.ring_timeout,
                },
                ice: Default::default(),
                started: now,
            },
            true,
        );
    }

    /// Checks the bot's capacity and the offer, signs the attestation and
    /// sends `incoming`; or says why not (error code, message).
    #[allow(clippy::too_many_arguments)]
    fn offer_to_local_bot(
        &mut self,
        bot: ConnId,
        agent: &AgentId,
        call_id: &AgentId,
        session: &AgentId,
        hv: &'static str,
        offer: Offer<'_>,
        now: Instant,
        unix: u64,
    ) -> Result<(), (&'static str, String)> {
        let Offer {
            sdp: offer,
            callback,
        } = offer;
        let busy = self
            .session(bot)
            .is_none_or(|s| s.calls.len() >= usize::from(s.max_calls));
        if busy {
            return Err(("busy", "the agent is busy".into()));
        }
        // Whoever calls, one bot is offered calls at a bounded pace: the
        // excess never reaches it (nor costs us an attestation).
        let ms = self.millis(now);
        if let Err(retry) = self.bot_calls.check(agent, ms) {
            self.metrics.rate_limited.inc("call_bot");
            return Err((
                "rate_limited",
                format!("this agent gets too many calls; try again in {retry} s"),
            ));
        }
        let fps = match offer {
            Text::Json(j) => sdp::fingerprints_json(j),
            Text::Str(s) => sdp::fingerprints(s),
        };
        let fps = match fps {
            Ok(fps) => fps,
            Err(e) => return Err(("bad_message", format!("sdp_offer: {e}"))),
        };
        let what = Attestation {
            agent,
            caller: session,
            call_id,
            hv,
            fp: fps.primary(),
            fps: fps.as_slice(),
        };
        let attestation = self.attest.sign(&what, unix, self.cfg.attestation_ttl);
        // TURN credentials from `welcome` may have expired on a long-lived
        // socket: give the bot fresh ones with every call.
        let turn = self
            .cfg
            .ice
            .has_turn()
            .then(|| self.cfg.ice.servers(None, agent, unix));
        self.metrics.attestations_signed.inc();
        self.send(
            bot,
            &Msg::Incoming {
                call_id: call_id.clone(),
                from: session.clone(),
                sdp_offer: offer,
                attestation: Text::Str(&attestation),
                hv: Text::Str(hv),
                ice_servers: turn.as_deref().and_then(|t| RawJson::new(t).ok()),
                callback,
            },
        );
        Ok(())
    }

    /// The call `id` if local socket `conn` is one of its parties (errors sent otherwise).
    fn party_call(&mut self, conn: ConnId, id: &AgentId) -> Option<(bool, Party, CallState)> {
        match self.calls.get(id) {
            None => {
                self.error(conn, "unknown_call", "no such call", Some(id));
                None
            }
            Some(c) if c.caller == Party::Local(conn) => Some((false, c.bot.clone(), c.state)),
            Some(c) if c.bot == Party::Local(conn) => Some((true, c.caller.clone(), c.state)),
            Some(_) => {
                self.error(
                    conn,
                    "not_your_call",
                    "this call belongs to other sessions",
                    Some(id),
                );
                None
            }
        }
    }

    /// `answer`, `reject`, `ice` or `hangup` from a local socket.
    pub(super) fn party_message(&mut self, conn: ConnId, msg: Msg<'_>, now: Instant) {
        let Some(id) = msg.call_id().cloned() else {
            return;
        };
        let Some((from_bot, other, _)) = self.party_call(conn, &id) else {
            return;
        };
        match msg {
            Msg::Answer { .. } | Msg::Reject { .. } | Msg::Hangup { .. } => {
                let side = if from_bot { Side::Bot } else { Side::Caller };
                let Some(step) = self.calls.get_mut(&id).map(|c| c.step(side, &msg)) else {
                    return;
                };
                match step {
                    Ok(Some(step)) => self.apply(&id, step, &other, &msg, now),
                    Ok(None) => {}
                    Err(refused) => {
                        let (code, text) = refused.error();
                        self.error(conn, code, text, Some(&id));
                    }
                }
            }
            Msg::Ice { .. } => {
                if self.count_ice(&id, from_bot, &msg) {
                    self.send_to(&other, &id, &msg);
                } else {
                    self.error(
                        conn,
                        "too_many_candidates",
                        "this call has had all the ICE candidates it may have",
                        Some(&id),
                    );
                }
            }
            _ => {}
        }
    }

    /// Carries out a call's [`Step`]: forwards `msg` to the `other` party,
    /// and ends the call when the step says so.
    fn apply(&mut self, id: &CallId, step: Step, other: &Party, msg: &Msg<'_>, now: Instant) {
        self.send_to(other, id, msg);
        if let Step::Ended(label) = step {
            self.end_call(id, label, now);
        }
    }

    /// Counts an `ice` message from one side of call `id` against
    /// `max_ice_per_call` / `max_ice_bytes_per_call`; `false`: over.
    fn count_ice(&mut self, id: &AgentId, from_bot: bool, msg: &Msg<'_>) -> bool {
        let len = u32::try_from(encode(msg).len()).unwrap_or(u32::MAX);
        let (max, max_bytes) = (self.cfg.max_ice_per_call, self.cfg.max_ice_bytes_per_call);
        let Some(call) = self.calls.get_mut(id) else {
            return false;
        };
        let sent = &mut call.ice[usize::from(from_bot)];
        if sent.count >= max || sent.bytes.saturating_add(len) > max_bytes {
            return false;
        }
        sent.count += 1;
        sent.bytes += len;
        true
    }

    /// Calls of `agent` waiting for it to reconnect continue on `conn`.
    pub(super) fn adopt_away_calls(&mut self, agent: &AgentId, conn: ConnId) {
        let ids: Vec<AgentId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.agent == *agent && matches!(c.bot, Party::Away { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        self.rebind_bot(&ids, Party::Local(conn));
        if let Some(s) = self.session_mut(conn) {
            for id in ids {
                if !s.calls.contains(&id) {
                    s.calls.push(id);
                }
            }
        }
    }

    /// Points the bot side of `ids` at `to`.
    pub(super) fn rebind_bot(&mut self, ids: &[AgentId], to: Party) {
        for id in ids {
            if let Some(c) = self.calls.get_mut(id) {
                c.bot = to.clone();
            }
        }
    }

    /// Ring timeouts and expired reconnect grace.
    pub(super) fn call_timeouts(&mut self, now: Instant) {
        let grace = self.cfg.reconnect_grace;
        let expired: Vec<(AgentId, &'static str)> = self
            .calls
            .iter()
            .filter_map(|(id, c)| match (c.state, &c.bot) {
                (CallState::Ringing { deadline } | CallState::Placing { deadline }, _)
                    if deadline <= now =>
                {
                    Some((id.clone(), hangup::TIMEOUT))
                }
                (_, Party::Away { since }) if now.saturating_duration_since(*since) >= grace => {
                    Some((id.clone(), hangup::PEER_GONE))
                }
                _ => None,
            })
            .collect();
        for (id, reason) in expired {
            self.end_call_notify(&id, reason, Side::Bot, None, now);
        }
    }

    /// An envelope from another daemon.
    pub(crate) fn handle_remote(&mut self, env: remote::In<'_>, now: Instant, unix: u64) {
        self.metrics.remote_messages.inc("in");
        let from: DaemonId = env.from.as_str().into();
        match env.kind {
            Kind::Signal => self.remote_signal(from, env, now, unix),
            Kind::Moved => {
                if let Some(agent) = env.agent {
                    self.hand_over(&agent, from, now);
                }
            }
            Kind::Adopt => self.adopt(from, env, now),
            Kind::Rebind => {
                if let (Some(id), Some(peer)) = (env.call_id, env.peer) {
                    self.rebind(id, peer.as_str().into());
                }
            }
        }
    }

    fn remote_signal(&mut self, from: DaemonId, env: remote::In<'_>, now: Instant, unix: u64) {
        let (Some(id), Some(msg)) = (env.call_id, env.msg) else {
            return;
        };
        if let Msg::Call {
            to,
            sdp_offer,
            callback,
            ..
        } = msg
        {
            let offer = Offer {
                sdp: sdp_offer,
                callback,
            };
            // We hold the bot: check, sign, offer; answer `ringing` or an error.
            let Some(session) = env.session else { return };
            let hv = hv_static(env.hv.as_deref());
            let reply = |hub: &mut Hub, m: &Msg<'_>| {
                let out = remote::Out {
                    call_id: Some(&id),
                    ..Default::default()
                };
                let e = remote::encode(&hub.me, Kind::Signal, &out, Some(m));
                hub.out.push_back(Output::Remote(from.clone(), e));
            };
            let Some(bot) = self.bot_conn(&to) else {
                let m = Msg::Error {
                    code: Text::Str("offline"),
                    message: Text::Str("the agent is not online"),
                    call_id: Some(id.clone()),
                };
                reply(self, &m);
                return;
            };
            if let Err((code, text)) =
                self.offer_to_local_bot(bot, &to, &id, &session, hv, offer, now, unix)
            {
                let m = Msg::Error {
                    code: Text::Str(code),
                    message: Text::Str(&text),
                    call_id: Some(id.clone()),
                };
                reply(self, &m);
                return;
            }
            self.new_call(
                id.clone(),
                Call {
                    caller: Party::Remote(from.clone()),
                    bot: Party::Local(bot),
                    agent: to.clone(),
                    session,
                    hv,
                    state: CallState::Ringing {
                        deadline: now + self.cfg.ring_timeout,
                    },
                    ice: Default::default(),
                    started: now,
                },
                false,
            );
            reply(
                self,
                &Msg::Ringing {
                    call_id: id.clone(),
                    to,
                },
            );
            return;
        }
        // Everything else is about a call we know, from the daemon holding its other side.
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (from_bot, local) = if call.bot == Party::Remote(from.clone()) {
            (true, call.caller.clone())
        } else if call.caller == Party::Remote(from.clone()) {
            (false, call.bot.clone())
        } else {
            return;
        };
        let state = call.state;
        match msg {
            Msg::Ringing { .. } if from_bot && matches!(state, CallState::Placing { .. }) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.state = CallState::Ringing {
                        deadline: now + self.cfg.ring_timeout,
                    };
                }
                self.send_to(&local, &id, &msg);
            }
            Msg::Error { code, message, .. }
                if from_bot && matches!(state, CallState::Placing { .. }) =>
            {
                self.end_call(&id, "refused", now);
                if let Party::Local(c) = local {
                    let m = Msg::Error {
                        code,
                        message,
                        call_id: None,
                    };
                    self.send(c, &m);
                }
            }
            // The same transitions as from a local socket; a refused one
            // is dropped (a remote sender gets no error back).
            Msg::Answer { .. } | Msg::Reject { .. } | Msg::Hangup { .. } => {
                let side = if from_bot { Side::Bot } else { Side::Caller };
                let step = self.calls.get_mut(&id).map(|c| c.step(side, &msg));
                if let Some(Ok(Some(step))) = step {
                    self.apply(&id, step, &local, &msg, now);
                }
            }
            Msg::Ice { .. } if self.count_ice(&id, from_bot, &msg) => {
                self.send_to(&local, &id, &msg);
            }
            _ => {}
        }
    }

    /// `agent` said hello on daemon `to`: close our socket for it and hand
    /// its calls over (the caller's daemon learns the new route).
    fn hand_over(&mut self, agent: &AgentId, to: DaemonId, now: Instant) {
        let ids: Vec<AgentId> = self
            .calls
            .iter()
            .filter(|(_, c)| c.agent == *agent)
            .map(|(id, _)| id.clone())
            .collect();
        if let Some(conn) = self.bot_conn(agent) {
            if let Some(s) = self.session_mut(conn) {
                s.calls.clear();
            }
            self.end_session(conn, "replaced", now);
            self.out.push_back(Output::Close(
                conn,
                close::REPLACED,
                "replaced by a connection on another daemon",
            ));
        }
        for id in ids {
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            if call.bot == Party::Remote(to.clone()) {
                continue;
            }
            let state = if call.is_answered() {
                "answered"
            } else {
                "ringing"
            };
            let peer: DaemonId = match &call.caller {
                Party::Remote(d) => d.clone(),
                _ => self.me.clone(),
            };
            let out = remote::Out {
                call_id: Some(&id),
                session: Some(&call.session),
                hv: Some(call.hv),
                agent: Some(agent),
                state: Some(state),
                peer: Some(&peer),
            };
            let env = remote::encode(&self.me, Kind::Adopt, &out, None);
            self.out.push_back(Output::Remote(to.clone(), env));
            crate::log_info!("call {id} handed over: bot {agent} now on daemon {to}");
            if peer == self.me {
                // We keep the caller's half; its bot is now over there.
                if let Some(c) = self.calls.get_mut(&id) {
                    c.bot = Party::Remote(to.clone());
                }
                continue;
            }
            if peer != to {
                // The caller's daemon learns the new route. (When the bot
                // moved to the caller's daemon, `adopt` is all it needs.)
                let out = remote::Out {
                    call_id: Some(&id),
                    peer: Some(&to),
                    ..Default::default()
                };
                let env = remote::encode(&self.me, Kind::Rebind, &out, None);
                self.out.push_back(Output::Remote(peer, env));
            }
            if let Some(call) = self.calls.remove(&id) {
                self.remove_from_sessions(&call, &id);
                // Not ended: it lives on elsewhere.
                self.metrics.calls_active.dec();
            }
        }
    }

    /// `rebind` from the daemon that held a call's bot: it now lives on
    /// `peer`. Never about ourselves (our own bots are bound by `adopt`).
    fn rebind(&mut self, id: AgentId, peer: DaemonId) {
        if peer == self.me {
            return;
        }
        if let Some(c) = self.calls.get(&id)
            && !matches!(c.bot, Party::Local(_))
        {
            self.rebind_bot(&[id], Party::Remote(peer));
        }
    }

    /// A call of our bot, handed over by the daemon that held it before.
    /// When we hold its caller too (the bot moved to the caller's daemon),
    /// the caller's record stays and only its bot side becomes local.
    fn adopt(&mut self, _from: DaemonId, env: remote::In<'_>, now: Instant) {
        let (Some(id), Some(agent), Some(session), Some(peer)) =
            (env.call_id, env.agent, env.session, env.peer)
        else {
            return;
        };
        let peer: DaemonId = peer.as_str().into();
        let bot = self.bot_conn(&agent);
        if peer == self.me {
            let ours = self
                .calls
                .get(&id)
                .is_some_and(|c| c.agent == agent && c.session == session);
            match (ours, bot) {
                (true, Some(bot)) => {
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.bot = Party::Local(bot);
                        if env.state.as_deref() == Some("answered") {
                            c.state = CallState::Answered;
                        }
                    }
                    self.add_to_session(&Party::Local(bot), &id);
                }
                // The bot left again before the hand-over arrived: an
                // answered call waits for it as for any bot that went away.
                (true, None) => {
                    let answered = self.calls.get(&id).is_some_and(Call::is_answered);
                    if answered {
                        self.rebind_bot(&[id], Party::Away { since: now });
                    } else {
                        self.end_call_notify(&id, hangup::PEER_GONE, Side::Bot, None, now);
                    }
                }
                // The caller's side is over already: tell the bot.
                (false, Some(bot)) => {
                    let m = Msg::Hangup {
                        call_id: id.clone(),
                        reason: Text::Str(hangup::PEER_GONE),
                    };
                    self.send(bot, &m);
                }
                (false, None) => {}
            }
            return;
        }
        let caller = Party::Remote(peer);
        let Some(bot) = bot else {
            let m = Msg::Hangup {
                call_id: id.clone(),
                reason: Text::Str(hangup::PEER_GONE),
            };
            self.send_to(&caller, &id, &m);
            return;
        };
        let state = if env.state.as_deref() == Some("answered") {
            CallState::Answered
        } else {
            CallState::Ringing {
                deadline: now + self.cfg.ring_timeout,
            }
        };
        self.new_call(
            id,
            Call {
                caller,
                bot: Party::Local(bot),
                agent,
                session,
                hv: hv_static(env.hv.as_deref()),
                state,
                ice: Default::default(),
                started: now,
            },
            false,
        );
    }
}
