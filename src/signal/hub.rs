//! The signaling router, sans-IO: sessions (one per WebSocket), online bots,
//! heartbeats, and dispatch of client messages to the call logic
//! ([`super::calls`]) and the human check ([`super::human`]). Input is
//! `(conn, message, now)`, remote envelopes and `tick(now)`; output is a
//! queue of [`Output`]s the event loop turns into frames, closes, store
//! updates and Redis publishes. No sockets, no clock reads.
//!
//! Rule, as in str0m: mutate with `handle*`/`tick`, then drain
//! [`Hub::poll_output`] until it returns `None`.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use std::rc::Rc;
use std::time::{Duration, Instant};

use botcall_core::id::AgentId;
use botcall_core::protocol::{Msg, RawJson, Role, Text, close};

use super::call::{Call, Offer, Party, Side};
use super::ice::IceConfig;
use super::remote;
use crate::auth::attest::Signer;
use crate::auth::ratelimit::Limiter;
use crate::config::HumanCheck;
use crate::metrics::Metrics;

use crate::ids::{CallId, Owner};
pub(crate) use crate::ids::{ConnId, DaemonId};
use crate::slots::Slots;

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
    /// Publish this envelope to another daemon.
    Remote(DaemonId, Vec<u8>),
}

/// Hub settings (from the config).
#[derive(Debug, Clone)]
pub(crate) struct HubConfig {
    pub(crate) heartbeat: Duration,
    pub(crate) hello_timeout: Duration,
    pub(crate) ring_timeout: Duration,
    /// How long an answered call waits for its bot to reconnect.
    pub(crate) reconnect_grace: Duration,
    pub(crate) max_calls_per_caller: usize,
    /// Calls offered to one bot per second, and the burst (0: unlimited).
    pub(crate) rate_calls_bot: u32,
    pub(crate) rate_calls_bot_burst: u32,
    /// ICE candidates, and their bytes, each side may send per call.
    pub(crate) max_ice_per_call: u32,
    pub(crate) max_ice_bytes_per_call: u32,
    pub(crate) human_check: HumanCheck,
    pub(crate) pow_difficulty: u8,
    /// What one proof-of-work solution buys: this many calls, for this long.
    pub(crate) pow_calls: u32,
    pub(crate) pow_lifetime: Duration,
    pub(crate) challenge_ttl: Duration,
    pub(crate) attestation_ttl: u64,
    /// STUN/TURN lists handed out (TURN credentials also per call).
    pub(crate) ice: IceConfig,
}

/// An authenticated bot's hello, as the hub needs it.
#[derive(Debug, Clone)]
pub(crate) struct BotHello {
    pub(crate) agent: AgentId,
    /// Who owns the id (to re-announce it to a store that lost it).
    pub(crate) owner: Owner,
    pub(crate) max_calls: u8,
    /// The daemon that held the agent's socket until now, told to hand over.
    pub(crate) moved_from: Option<DaemonId>,
}

/// Where the hub gets random ids (the OS in production, a seed in tests).
pub(crate) type Rng = Box<dyn FnMut(&mut [u8])>;

#[derive(Debug)]
pub(super) struct Session {
    pub(super) role: Option<Role>,
    /// Bots: the agent id. Callers: the session id. `None` before hello.
    pub(super) name: Option<AgentId>,
    /// Seconds since the hub's epoch (4 bytes each instead of 16: there
    /// is one session per idle bot).
    opened: u32,
    last_seen: u32,
    last_ping: u32,
    /// Calls this session is part of.
    pub(super) calls: Vec<CallId>,
    pub(super) max_calls: u8,
    /// Bots: who owns the agent id (to re-announce it to a store that lost it).
    owner: Owner,
    /// Calls left on the caller's last proof of work (0: none), usable
    /// until `verified_until` (seconds since the epoch).
    pub(super) verified_calls: u32,
    pub(super) verified_until: u32,
    pub(super) challenge: Option<Box<(String, Instant)>>,
}

/// The router.
pub(crate) struct Hub {
    pub(super) cfg: HubConfig,
    /// This daemon's id (envelopes carry it as `from`).
    pub(super) me: DaemonId,
    pub(super) sessions: Slots<Session>,
    /// Online bots: the connection of each agent, found by hashing the
    /// agent id and comparing with the session's name (stored once).
    bots: HashTable<ConnId>,
    hasher: RandomState,
    /// Time zero for the sessions' second counters.
    epoch: Instant,
    pub(super) calls: HashMap<CallId, Call>,
    /// Calls offered per bot (`rate_calls_bot`).
    pub(super) bot_calls: Limiter<AgentId>,
    pub(super) out: VecDeque<Output>,
    rng: Rng,
    /// Signs the per-call human attestations (the daemon's key; a fake in tests).
    pub(super) attest: Rc<dyn Signer>,
    pub(super) metrics: Rc<Metrics>,
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

pub(super) fn raw_json(text: &str) -> RawJson<'_> {
    RawJson::new(text)
        .or_else(|_| RawJson::new("[]"))
        .expect("`[]` is valid JSON")
}

pub(super) fn encode(msg: &Msg<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(128);
    // A Vec sink never fills up.
    let _ = msg.encode(&mut v);
    v
}

impl Hub {
    /// `now` is the hub's time zero (sessions count seconds from it).
    pub(crate) fn new(
        cfg: HubConfig,
        me: DaemonId,
        rng: Rng,
        attest: Rc<dyn Signer>,
        metrics: Rc<Metrics>,
        now: Instant,
    ) -> Self {
        Hub {
            bot_calls: Limiter::new(65_536, cfg.rate_calls_bot, cfg.rate_calls_bot_burst),
            cfg,
            me,
            sessions: Slots::default(),
            bots: HashTable::new(),
            hasher: RandomState::new(),
            epoch: now,
            calls: HashMap::new(),
            out: VecDeque::new(),
            rng,
            attest,
            metrics,
        }
    }

    /// Next thing to do, if any.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub(super) fn random_id(&mut self, prefix: &str) -> AgentId {
        let mut raw = [0u8; 16];
        (self.rng)(&mut raw);
        let mut text = [0u8; 24];
        let b64 = botcall_core::b64::encode(&raw, &mut text).unwrap_or("x");
        AgentId::new(&format!("{prefix}{b64}"))
            .expect("22 base64url characters and a short prefix form a valid id")
    }

    pub(super) fn session(&self, conn: ConnId) -> Option<&Session> {
        self.sessions.get(conn)
    }

    pub(super) fn session_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        self.sessions.get_mut(conn)
    }

    /// `now` as seconds since the epoch (saturating; time before it is 0).
    pub(super) fn secs(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX)
    }

    /// `now` as milliseconds since the epoch (for rate limits).
    pub(super) fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The connection holding `agent`'s bot socket here.
    pub(super) fn bot_conn(&self, agent: &str) -> Option<ConnId> {
        let h = self.hasher.hash_one(agent);
        let sessions = &self.sessions;
        self.bots
            .find(h, |&c| {
                sessions.get(c).and_then(|s| s.name.as_deref()) == Some(agent)
            })
            .copied()
    }

    /// Records `conn` as `agent`'s socket (its session's name must be `agent`).
    fn bots_insert(&mut self, agent: &str, conn: ConnId) {
        self.bots_remove(agent);
        let h = self.hasher.hash_one(agent);
        let (sessions, hasher) = (&self.sessions, &self.hasher);
        self.bots.insert_unique(h, conn, |&c| {
            hasher.hash_one(
                sessions
                    .get(c)
                    .and_then(|s| s.name.as_deref())
                    .unwrap_or(""),
            )
        });
    }

    fn bots_remove(&mut self, agent: &str) -> Option<ConnId> {
        let h = self.hasher.hash_one(agent);
        let sessions = &self.sessions;
        let e = self
            .bots
            .find_entry(h, |&c| {
                sessions.get(c).and_then(|s| s.name.as_deref()) == Some(agent)
            })
            .ok()?;
        Some(e.remove().0)
    }

    pub(super) fn send(&mut self, conn: ConnId, msg: &Msg<'_>) {
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
        let t = self.secs(now);
        self.sessions.insert(
            conn,
            Session {
                role: None,
                name: None,
                opened: t,
                last_seen: t,
                last_ping: t,
                calls: Vec::new(),
                max_calls: 1,
                owner: [0; 8],
                verified_calls: 0,
                verified_until: 0,
                challenge: None,
            },
        );
    }

    /// Any frame from the client is a sign of life.
    pub(crate) fn touch(&mut self, conn: ConnId, now: Instant) {
        let t = self.secs(now);
        if let Some(s) = self.session_mut(conn) {
            s.last_seen = t;
        }
    }

    /// The session's role, once it said hello.
    pub(crate) fn has_role(&self, conn: ConnId) -> Option<Role> {
        self.session(conn).and_then(|s| s.role)
    }

    /// What goes into ICE server lists.
    pub(crate) fn ice(&self) -> &IceConfig {
        &self.cfg.ice
    }

    /// This daemon's id on the bus.
    pub(crate) fn me(&self) -> &DaemonId {
        &self.me
    }

    /// Bots with a live socket here.
    pub(crate) fn online_count(&self) -> usize {
        self.bots.len()
    }

    /// Whether `agent` has a live socket here.
    /// The agent id of the bot on `conn` (`None` for callers and before hello).
    pub(crate) fn bot_agent(&self, conn: ConnId) -> Option<AgentId> {
        let s = self.session(conn)?;
        (s.role == Some(Role::Bot))
            .then(|| s.name.clone())
            .flatten()
    }

    pub(crate) fn is_online(&self, agent: &str) -> bool {
        self.bot_conn(agent).is_some()
    }

    /// Agents with a live socket here, with `max_calls` and owner (to
    /// re-announce them after a store outage).
    pub(crate) fn online_agents(&self) -> Vec<(AgentId, u8, Owner)> {
        self.bots
            .iter()
            .filter_map(|&c| {
                let s = self.session(c)?;
                Some((s.name.clone()?, s.max_calls, s.owner))
            })
            .collect()
    }

    /// An authenticated bot said hello. A previous socket for the same agent
    /// here is closed with 4000 `replaced`; its calls move to the new socket,
    /// as do calls waiting for this bot to come back.
    pub(crate) fn hello_bot(
        &mut self,
        conn: ConnId,
        bot: BotHello,
        ice_servers: &str,
        now: Instant,
    ) {
        let BotHello {
            agent,
            owner,
            max_calls,
            moved_from,
        } = bot;
        if let Some(old) = self.bot_conn(&agent)
            && old != conn
        {
            // Keep its calls: detach them first so ending the session spares them.
            let calls = self
                .session_mut(old)
                .map(|s| std::mem::take(&mut s.calls))
                .unwrap_or_default();
            self.rebind_bot(&calls, Party::Local(conn));
            self.end_session(old, "replaced", now);
            self.out.push_back(Output::Close(
                old,
                close::REPLACED,
                "replaced by a newer connection",
            ));
            if let Some(s) = self.session_mut(conn) {
                s.calls.extend(calls);
            }
        }
        let t = self.secs(now);
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        s.role = Some(Role::Bot);
        s.name = Some(agent.clone());
        s.max_calls = max_calls.max(1);
        s.owner = owner;
        s.last_seen = t;
        self.bots_insert(&agent, conn);
        self.metrics.ws_bots.inc();
        crate::log_info!("bot {agent} online (max_calls {})", max_calls.max(1));
        self.adopt_away_calls(&agent, conn);
        if let Some(d) = moved_from.filter(|d| *d != self.me) {
            let env = remote::encode(
                &self.me,
                remote::Kind::Moved,
                &remote::Out {
                    agent: Some(&agent),
                    ..Default::default()
                },
                None,
            );
            self.out.push_back(Output::Remote(d, env));
        }
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

    /// A caller said hello: it gets a session id, ICE servers and, when the
    /// human check is on, a challenge.
    pub(crate) fn hello_caller(&mut self, conn: ConnId, ice_servers: &str, now: Instant) {
        let session = self.random_id("s-");
        let challenge = self.new_challenge(conn, now);
        let t = self.secs(now);
        let Some(s) = self.session_mut(conn) else {
            return;
        };
        s.role = Some(Role::Caller);
        s.name = Some(session.clone());
        s.max_calls = 0;
        s.last_seen = t;
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

    /// A decoded message from a session that has said hello. `remote`: the
    /// daemon holding the agent of a `call`, when it is not here. `unix` is
    /// the wall clock for attestation times.
    pub(crate) fn handle(
        &mut self,
        conn: ConnId,
        msg: Msg<'_>,
        remote_bot: Option<DaemonId>,
        now: Instant,
        unix: u64,
    ) {
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
                callback,
            } => {
                if role != Role::Caller {
                    self.error(conn, "wrong_role", "bots cannot place calls", None);
                    return;
                }
                let offer = Offer {
                    sdp: sdp_offer,
                    callback,
                };
                self.place_call(conn, to, offer, proof.as_ref(), remote_bot, now, unix);
            }
            m
            @ (Msg::Answer { .. } | Msg::Reject { .. } | Msg::Ice { .. } | Msg::Hangup { .. }) => {
                self.party_message(conn, m, now);
            }
            _ => self.error(conn, "bad_message", "not a message clients send", None),
        }
    }

    /// Removes a session. A caller's calls end (the other side gets `hangup`
    /// with `reason`); a bot's answered calls wait `reconnect_grace` for it
    /// to come back, its ringing calls end.
    pub(super) fn end_session(
        &mut self,
        conn: ConnId,
        reason: &'static str,
        now: Instant,
    ) -> Option<Session> {
        let s = self.sessions.get(conn)?;
        // Out of the bot index first: its entries are found through the session.
        if let (Some(Role::Bot), Some(name)) = (s.role, s.name.clone())
            && self.bot_conn(&name) == Some(conn)
        {
            self.bots_remove(&name);
            if reason != "replaced" {
                self.out.push_back(Output::BotOffline(name));
            }
        }
        let s = self.sessions.remove(conn)?;
        match (s.role, &s.name) {
            (None, _) => {}
            (Some(Role::Bot), Some(_)) => self.metrics.ws_bots.dec(),
            (Some(Role::Bot), None) => self.metrics.ws_bots.dec(),
            (Some(Role::Caller), _) => self.metrics.ws_callers.dec(),
        }
        let is_bot = s.role == Some(Role::Bot);
        if let (true, Some(name)) = (is_bot, &s.name) {
            let why = match reason {
                "replaced" => "replaced by a newer socket",
                _ => "socket closed",
            };
            crate::log_info!("bot {name} offline ({why})");
        }
        let side = if is_bot { Side::Bot } else { Side::Caller };
        for id in &s.calls {
            if is_bot && self.calls.get(id).is_some_and(|c| c.is_answered()) {
                if let Some(c) = self.calls.get_mut(id) {
                    c.bot = Party::Away { since: now };
                }
                continue;
            }
            self.end_call_notify(id, reason, side, Some(conn), now);
        }
        Some(s)
    }

    /// Ends a session at `now` and closes its socket (auth failure, abuse).
    pub(crate) fn kick(&mut self, conn: ConnId, code: u16, reason: &'static str, now: Instant) {
        self.end_session(conn, "peer_gone", now);
        self.out.push_back(Output::Close(conn, code, reason));
    }

    /// The socket closed (or is being closed). Idempotent.
    pub(crate) fn close(&mut self, conn: ConnId, now: Instant) {
        self.end_session(conn, "peer_gone", now);
    }

    /// Heartbeats, hello timeouts, ring timeouts and reconnect grace at `now`.
    pub(crate) fn tick(&mut self, now: Instant) {
        let hb = self.cfg.heartbeat;
        let silent_limit = hb * 5 / 2;
        let hello_limit = self.cfg.hello_timeout;
        let t = self.secs(now);
        let since = |then: u32| Duration::from_secs(u64::from(t.saturating_sub(then)));
        let mut to_close: Vec<(ConnId, u16, &'static str)> = Vec::new();
        for (conn, s) in self.sessions.iter_mut() {
            if s.role.is_none() {
                if since(s.opened) >= hello_limit {
                    to_close.push((conn, close::POLICY, "no hello in time"));
                }
                continue;
            }
            if since(s.last_seen) >= silent_limit {
                to_close.push((conn, close::HEARTBEAT, "heartbeat timeout"));
            } else if since(s.last_ping) >= hb && since(s.last_seen) >= hb {
                // Ping only sockets silent for a whole interval: one that
                // sends its own heartbeats has already shown it is alive.
                s.last_ping = t;
                self.out.push_back(Output::Ping(conn));
            }
        }
        for (conn, code, why) in to_close {
            if code == close::HEARTBEAT {
                self.metrics.ws_heartbeat_timeouts.inc();
            }
            // Offline at once, not when the dead socket finally errors.
            self.end_session(conn, "peer_gone", now);
            self.out.push_back(Output::Close(conn, code, why));
        }
        self.call_timeouts(now);
    }
}
