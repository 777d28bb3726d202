//! The signaling router, sans-IO: sessions (one per WebSocket), online bots,
//! calls, heartbeats and the human check. Input is `(conn, message, now)`
//! and `tick(now)`; output is a queue of [`Output`]s the event loop turns
//! into frames, closes and store updates. No sockets, no clock reads.
//!
//! Rule, as in str0m: mutate with `handle*`/`tick`, then drain
//! [`Hub::poll_output`] until it returns `None`.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

use botcall_core::id::AgentId;
use botcall_core::protocol::{Challenge, Msg, Proof, Role, Text};
use botcall_core::{pow, sdp};

use crate::auth::attest::Attestor;
use crate::config::HumanCheck;
use crate::metrics::Metrics;
use crate::ws::frame::close;

/// A connection's id, never reused (shared with the IO layer's registry),
/// so a late output can never reach a newer socket.
pub(crate) type ConnId = u64;

/// Something for the IO layer to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// Send this JSON text message.
    Send(ConnId, Vec<u8>),
    /// Send a WebSocket ping.
    Ping(ConnId),
    /// Close the socket with this code and reason.
    Close(ConnId, u16, &'static str),
    /// The bot's socket is gone: mark the agent offline in the store.
    BotOffline(AgentId),
}

/// Hub settings (from the config).
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    pub(crate) heartbeat: Duration,
    pub(crate) hello_timeout: Duration,
    pub(crate) ring_timeout: Duration,
    pub(crate) max_calls_per_caller: usize,
    pub(crate) human_check: HumanCheck,
    pub(crate) pow_difficulty: u8,
    pub(crate) challenge_ttl: Duration,
    pub(crate) attestation_ttl: u64,
}

/// Where the hub gets random ids (the OS in production, a seed in tests).
pub(crate) type Rng = Box<dyn FnMut(&mut [u8])>;

#[derive(Debug)]
struct Session {
    role: Option<Role>,
    /// Bots: the agent id. Callers: the session id. `None` before hello.
    name: Option<AgentId>,
    opened: Instant,
    last_seen: Instant,
    last_ping: Instant,
    /// Calls this session is part of.
    calls: Vec<AgentId>,
    max_calls: u8,
    /// Human check passed (callers).
    verified: bool,
    challenge: Option<Box<(String, Instant)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    Ringing { deadline: Instant },
    Answered,
}

#[derive(Debug)]
struct Call {
    caller: ConnId,
    bot: ConnId,
    state: CallState,
}

/// The router.
pub(crate) struct Hub {
    cfg: HubConfig,
    sessions: HashMap<ConnId, Session>,
    bots: HashMap<AgentId, ConnId>,
    calls: HashMap<AgentId, Call>,
    out: VecDeque<Output>,
    rng: Rng,
    attest: Rc<Attestor>,
    metrics: Rc<Metrics>,
    /// Sessions without a role yet, checked for the hello timeout.
    pending_hello: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hub {{ bots: {}, calls: {} }}",
            self.bots.len(),
            self.calls.len()
        )
    }
}

fn raw_json(text: &str) -> botcall_core::protocol::RawJson<'_> {
    botcall_core::protocol::RawJson::new(text)
        .or_else(|_| botcall_core::protocol::RawJson::new("[]"))
        .expect("`[]` is valid JSON")
}

fn encode(msg: &Msg<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    // A Vec sink never fills up.
    let _ = msg.encode(&mut v);
    v
}

impl Hub {
    pub(crate) fn new(
        cfg: HubConfig,
        rng: Rng,
        attest: Rc<Attestor>,
        metrics: Rc<Metrics>,
    ) -> Self {
        Hub {
            cfg,
            sessions: HashMap::new(),
            bots: HashMap::new(),
            calls: HashMap::new(),
            out: VecDeque::new(),
            rng,
            attest,
            metrics,
            pending_hello: 0,
        }
    }

    /// Next thing to do, if any.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn random_id(&mut self, prefix: &str) -> AgentId {
        let mut raw = [0u8; 16];
        (self.rng)(&mut raw);
        let mut text = [0u8; 24];
        let b64 = botcall_core::b64::encode(&raw, &mut text).unwrap_or("x");
        AgentId::new(&format!("{prefix}{b64}"))
            .expect("22 base64url characters and a short prefix form a valid id")
    }

    fn session(&self, conn: ConnId) -> Option<&Session> {
        self.sessions.get(&conn)
    }

    fn session_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        self.sessions.get_mut(&conn)
    }

    fn send(&mut self, conn: ConnId, msg: &Msg<'_>) {
        self.out.push_back(Output::Send(conn, encode(msg)));
    }

    /// Sends `error {code, message, call_id?}`.
    pub(crate) fn error(
        &mut self,
        conn: ConnId,
        code: &'static str,
        message: &str,
        call_id: Option<&AgentId>,
    ) {
        self.metrics.ws_errors_sent.inc(code);
        let msg = Msg::Error {
            code: Text::Str(code),
            message: Text::Str(message),
            call_id: call_id.cloned(),
        };
        self.send(conn, &msg);
    }

    /// A socket opened (before `hello`).
    pub(crate) fn open(&mut self, conn: ConnId, now: Instant) {
        self.sessions.insert(
            conn,
            Session {
                role: None,
                name: None,
                opened: now,
                last_seen: now,
                last_ping: now,
                calls: Vec::new(),
                max_calls: 1,
                verified: false,
                challenge: None,
            },
        );
        self.pending_hello += 1;
    }

    /// Any frame from the client is a sign of life.
    pub(crate) fn touch(&mut self, conn: ConnId, now: Instant) {
        if let Some(s) = self.session_mut(conn) {
            s.last_seen = now;
        }
    }

    /// Whether the session already said hello.
    pub(crate) fn has_role(&self, conn: ConnId) -> Option<Role> {
        self.session(conn).and_then(|s| s.role)
    }

    /// Whether `agent` has a live socket here.
    pub(crate) fn is_online(&self, agent: &str) -> bool {
        self.bots.contains_key(agent)
    }

    pub(crate) fn online_count(&self) -> usize {
        self.bots.len()
    }

    /// An authenticated bot said hello. A previous socket for the same agent
    /// is closed with 4000 `replaced` and its calls end.
    pub(crate) fn hello_bot(
        &mut self,
        conn: ConnId,
        agent: AgentId,
        max_calls: u8,
        ice_servers: &str,
        now: Instant,
    ) {
        if let Some(&old) = self.bots.get(&agent)
            && old != conn
        {
            self.end_session(old, "replaced");
            self.out.push_back(Output::Close(
                old,
                close::REPLACED,
                "replaced by a newer connection",
            ));
        }
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        if s.role.is_none() {
            self.pending_hello -= 1;
        }
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        s.role = Some(Role::Bot);
        s.name = Some(agent.clone());
        s.max_calls = max_calls.max(1);
        s.last_seen = now;
        self.bots.insert(agent.clone(), conn);
        self.metrics.ws_bots.inc();
        let welcome = Msg::Welcome {
            role: Role::Bot,
            agent_id: Some(agent.clone()),
            session: agent,
            heartbeat_interval: self.cfg.heartbeat.as_secs(),
            ice_servers: raw_json(ice_servers),
            challenge: None,
        };
        self.send(conn, &welcome);
    }

    fn new_challenge(&mut self, conn: ConnId, now: Instant) -> Option<String> {
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

    fn challenge_msg<'a>(&self, text: &'a str) -> Challenge<'a> {
        Challenge {
            method: Text::Str("pow"),
            challenge: Text::Str(text),
            difficulty: self.cfg.pow_difficulty,
            expires_in: self.cfg.challenge_ttl.as_secs(),
        }
    }

    /// A caller said hello: it gets a session id, ICE servers and, when the
    /// human check is on, a challenge.
    pub(crate) fn hello_caller(&mut self, conn: ConnId, ice_servers: &str, now: Instant) {
        let session = self.random_id("s-");
        let challenge = self.new_challenge(conn, now);
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        if s.role.is_none() {
            self.pending_hello -= 1;
        }
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        s.role = Some(Role::Caller);
        s.name = Some(session.clone());
        s.max_calls = 0;
        s.last_seen = now;
        self.metrics.ws_callers.inc();
        let ch = challenge.as_deref().map(|c| self.challenge_msg(c));
        let welcome = Msg::Welcome {
            role: Role::Caller,
            agent_id: None,
            session,
            heartbeat_interval: self.cfg.heartbeat.as_secs(),
            ice_servers: raw_json(ice_servers),
            challenge: ch,
        };
        self.send(conn, &welcome);
    }

    /// Checks a proof against the session's challenge.
    fn verify_proof(
        &mut self,
        conn: ConnId,
        proof: &Proof<'_>,
        now: Instant,
    ) -> Result<(), (&'static str, String)> {
        let difficulty = self.cfg.pow_difficulty;
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
                s.verified = true;
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

    fn human_check_needed(
        &mut self,
        conn: ConnId,
        proof: Option<&Proof<'_>>,
        now: Instant,
    ) -> bool {
        if self.cfg.human_check == HumanCheck::None
            || self.session(conn).is_some_and(|s| s.verified)
        {
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

    fn refuse_with_challenge(
        &mut self,
        conn: ConnId,
        code: &'static str,
        message: &str,
        now: Instant,
    ) {
        self.error(conn, code, message, None);
        // Hand out a fresh challenge if there is none left to solve.
        let has = self
            .session(conn)
            .and_then(|s| s.challenge.as_ref())
            .is_some_and(|c| c.1 > now);
        if !has && let Some(c) = self.new_challenge(conn, now) {
            let ch = self.challenge_msg(&c);
            self.send(conn, &Msg::Challenge(ch));
        }
    }

    /// A decoded message from a session that has said hello. `unix` is the
    /// wall clock for attestation times.
    pub(crate) fn handle(&mut self, conn: ConnId, msg: Msg<'_>, now: Instant, unix: u64) {
        let Some(role) = self.has_role(conn) else {
            self.error(conn, "hello_required", "send hello first", None);
            return;
        };
        match msg {
            Msg::Hello { .. } => self.error(
                conn,
                "already_hello",
                "this socket already said hello",
                None,
            ),
            Msg::Ping => self.send(conn, &Msg::Pong),
            Msg::Pong => {}
            Msg::Verify { proof } => {
                if role != Role::Caller {
                    self.error(conn, "wrong_role", "only callers verify", None);
                } else if self.cfg.human_check == HumanCheck::None {
                    self.send(
                        conn,
                        &Msg::Verified {
                            hv: Text::Str("none"),
                        },
                    );
                } else {
                    match self.verify_proof(conn, &proof, now) {
                        Ok(()) => self.send(
                            conn,
                            &Msg::Verified {
                                hv: Text::Str("pow"),
                            },
                        ),
                        Err((code, m)) => self.refuse_with_challenge(conn, code, &m, now),
                    }
                }
            }
            Msg::Call {
                to,
                sdp_offer,
                proof,
            } => {
                if role != Role::Caller {
                    self.error(conn, "wrong_role", "bots cannot place calls", None);
                    return;
                }
                self.place_call(conn, to, sdp_offer, proof.as_ref(), now, unix);
            }
            Msg::Answer {
                call_id,
                sdp_answer,
            } => {
                let Some(call) = self.party_call(conn, &call_id) else {
                    return;
                };
                if call.bot != conn {
                    self.error(
                        conn,
                        "not_your_call",
                        "only the called bot answers",
                        Some(&call_id),
                    );
                    return;
                }
                if call.state == CallState::Answered {
                    self.error(
                        conn,
                        "wrong_state",
                        "call is already answered",
                        Some(&call_id),
                    );
                    return;
                }
                let caller = call.caller;
                if let Some(c) = self.calls.get_mut(&call_id) {
                    c.state = CallState::Answered;
                }
                self.send(
                    caller,
                    &Msg::Answer {
                        call_id,
                        sdp_answer,
                    },
                );
            }
            Msg::Reject { call_id, reason } => {
                let Some(call) = self.party_call(conn, &call_id) else {
                    return;
                };
                if call.bot != conn || call.state == CallState::Answered {
                    self.error(
                        conn,
                        "wrong_state",
                        "only a ringing call's bot can reject it",
                        Some(&call_id),
                    );
                    return;
                }
                let caller = call.caller;
                self.send(
                    caller,
                    &Msg::Reject {
                        call_id: call_id.clone(),
                        reason,
                    },
                );
                self.end_call(&call_id, "rejected");
            }
            Msg::Ice { call_id, candidate } => {
                let Some(call) = self.party_call(conn, &call_id) else {
                    return;
                };
                let other = if call.caller == conn {
                    call.bot
                } else {
                    call.caller
                };
                self.send(other, &Msg::Ice { call_id, candidate });
            }
            Msg::Hangup { call_id, reason } => {
                let Some(call) = self.party_call(conn, &call_id) else {
                    return;
                };
                let other = if call.caller == conn {
                    call.bot
                } else {
                    call.caller
                };
                self.send(
                    other,
                    &Msg::Hangup {
                        call_id: call_id.clone(),
                        reason,
                    },
                );
                self.end_call(&call_id, "hangup");
            }
            _ => self.error(conn, "bad_message", "not a message clients send", None),
        }
    }

    /// The call `id` if `conn` is one of its parties (errors sent otherwise).
    fn party_call(&mut self, conn: ConnId, id: &AgentId) -> Option<CallParties> {
        match self.calls.get(id) {
            None => {
                self.error(conn, "unknown_call", "no such call", Some(id));
                None
            }
            Some(c) if c.caller != conn && c.bot != conn => {
                self.error(
                    conn,
                    "not_your_call",
                    "this call belongs to other sessions",
                    Some(id),
                );
                None
            }
            Some(c) => Some(CallParties {
                caller: c.caller,
                bot: c.bot,
                state: c.state,
            }),
        }
    }

    fn place_call(
        &mut self,
        conn: ConnId,
        to: AgentId,
        offer: Text<'_>,
        proof: Option<&Proof<'_>>,
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
        let Some(&bot) = self.bots.get(&to) else {
            self.error(conn, "offline", "the agent is not online", None);
            return;
        };
        let busy = self
            .session(bot)
            .is_none_or(|s| s.calls.len() >= usize::from(s.max_calls));
        if busy {
            self.error(conn, "busy", "the agent is busy", None);
            return;
        }
        let fp = match offer {
            Text::Json(j) => sdp::fingerprint_json(j),
            Text::Str(s) => sdp::fingerprint(s),
        };
        let fp = match fp {
            Ok(fp) => fp,
            Err(e) => {
                self.error(conn, "bad_message", &format!("sdp_offer: {e}"), None);
                return;
            }
        };
        let call_id = self.random_id("c-");
        let (caller_name, hv) = match self
            .session(conn)
            .and_then(|s| Some((s.name.clone()?, s.verified)))
        {
            Some((name, verified)) => (name, if verified { "pow" } else { "none" }),
            None => return,
        };
        let attestation = self.attest.sign(
            &to,
            &caller_name,
            &call_id,
            hv,
            &fp,
            unix,
            self.cfg.attestation_ttl,
        );
        self.metrics.attestations_signed.inc();
        self.calls.insert(
            call_id.clone(),
            Call {
                caller: conn,
                bot,
                state: CallState::Ringing {
                    deadline: now + self.cfg.ring_timeout,
                },
            },
        );
        for party in [conn, bot] {
            if let Some(s) = self.session_mut(party) {
                s.calls.push(call_id.clone());
            }
        }
        self.metrics.calls_started.inc();
        self.metrics.calls_active.inc();
        self.send(
            conn,
            &Msg::Ringing {
                call_id: call_id.clone(),
                to: to.clone(),
            },
        );
        self.send(
            bot,
            &Msg::Incoming {
                call_id,
                from: caller_name,
                sdp_offer: offer,
                attestation: Text::Str(&attestation),
                hv: Text::Str(hv),
            },
        );
    }

    fn end_call(&mut self, id: &AgentId, reason: &'static str) -> Option<Call> {
        let call = self.calls.remove(id)?;
        for party in [call.caller, call.bot] {
            if let Some(s) = self.session_mut(party) {
                s.calls.retain(|c| c != id);
            }
        }
        self.metrics.calls_ended.inc(reason);
        self.metrics.calls_active.dec();
        Some(call)
    }

    /// Removes a session: its calls end (the other side gets `hangup` with
    /// `reason`), a bot goes offline unless `keep_online`.
    fn end_session(&mut self, conn: ConnId, reason: &'static str) -> Option<Session> {
        let s = self.sessions.remove(&conn)?;
        match (s.role, &s.name) {
            (None, _) => self.pending_hello -= 1,
            (Some(Role::Bot), Some(name)) => {
                self.metrics.ws_bots.dec();
                if self.bots.get(name) == Some(&conn) {
                    self.bots.remove(name);
                    if reason != "replaced" {
                        self.out.push_back(Output::BotOffline(name.clone()));
                    }
                }
            }
            (Some(Role::Bot), None) => self.metrics.ws_bots.dec(),
            (Some(Role::Caller), _) => self.metrics.ws_callers.dec(),
        }
        for id in &s.calls {
            if let Some(call) = self.end_call(id, reason) {
                let other = if call.caller == conn {
                    call.bot
                } else {
                    call.caller
                };
                self.send(
                    other,
                    &Msg::Hangup {
                        call_id: id.clone(),
                        reason: Text::Str(reason),
                    },
                );
            }
        }
        Some(s)
    }

    /// Ends a session now and closes its socket (auth failure, abuse).
    pub(crate) fn kick(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        self.end_session(conn, "peer_gone");
        self.out.push_back(Output::Close(conn, code, reason));
    }

    /// The socket closed (or is being closed). Idempotent.
    pub(crate) fn close(&mut self, conn: ConnId) {
        self.end_session(conn, "peer_gone");
    }

    /// Heartbeats, hello timeouts and ring timeouts at `now`.
    pub(crate) fn tick(&mut self, now: Instant) {
        let hb = self.cfg.heartbeat;
        let silent_limit = hb * 5 / 2;
        let hello_limit = self.cfg.hello_timeout;
        let mut to_close: Vec<(ConnId, u16, &'static str)> = Vec::new();
        for (&conn, s) in self.sessions.iter_mut() {
            if s.role.is_none() {
                if now.saturating_duration_since(s.opened) >= hello_limit {
                    to_close.push((conn, close::POLICY, "no hello in time"));
                }
                continue;
            }
            if now.saturating_duration_since(s.last_seen) >= silent_limit {
                to_close.push((conn, close::HEARTBEAT, "heartbeat timeout"));
            } else if now.saturating_duration_since(s.last_ping) >= hb {
                s.last_ping = now;
                self.out.push_back(Output::Ping(conn));
            }
        }
        for (conn, code, why) in to_close {
            if code == close::HEARTBEAT {
                self.metrics.ws_heartbeat_timeouts.inc();
            }
            // Offline at once, not when the dead socket finally errors.
            self.end_session(conn, "peer_gone");
            self.out.push_back(Output::Close(conn, code, why));
        }
        let expired: Vec<AgentId> = self
            .calls
            .iter()
            .filter(|(_, c)| matches!(c.state, CallState::Ringing { deadline } if deadline <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(call) = self.end_call(&id, "timeout") {
                for party in [call.caller, call.bot] {
                    self.send(
                        party,
                        &Msg::Hangup {
                            call_id: id.clone(),
                            reason: Text::Str("timeout"),
                        },
                    );
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct CallParties {
    caller: ConnId,
    bot: ConnId,
    state: CallState,
}
