//! The signaling client as a sans-IO state machine, in the str0m style.
//!
//! The client owns no socket and reads no clock. Its owner (the `std`
//! layer, or firmware) does the IO:
//!
//! ```text
//! loop {
//!     // drain: until Timeout comes back
//!     match client.poll_output() {
//!         Output::Connect      => open the WebSocket; then handle_input(Connected{token, unix_secs})
//!                                 or handle_input(Disconnected{..}) if that failed
//!         Output::Send(text)   => send one WebSocket text frame
//!         Output::Close        => close the WebSocket
//!         Output::Event(e)     => tell the application
//!         Output::Timeout(at)  => wait until `at` or until input arrives
//!     }
//!     // then exactly one of:
//!     client.handle_input(now, Input::Message(text))   // a text frame arrived
//!     client.handle_input(now, Input::Activity)        // any other frame (ping/pong)
//!     client.handle_input(now, Input::Disconnected{..})// the socket closed
//!     client.handle_timeout(now)                       // `at` passed
//!     client.answer(..) / reject / send_candidate / hangup   // the application acts
//! }
//! ```
//!
//! Rule (as str0m's): mutate, then drain [`Client::poll_output`] until it
//! returns [`Output::Timeout`], then mutate again.
//!
//! What it does: `hello` with the token the owner minted (the core never
//! holds the signing key), `welcome`, incoming calls **verified before they
//! are reported** (a bad attestation is answered with `reject` and reported
//! as [`Event::Refused`]), answer/reject, trickle ICE both ways, hangup, an
//! application-level `ping` when the socket has been silent for 1.5
//! heartbeat intervals, a dead-socket verdict after 2.5, and reconnection
//! with exponential backoff and jitter ([`BACKOFF_INITIAL_MS`] doubling to
//! [`BACKOFF_MAX_MS`]) that resets after each successful `welcome`.
//!
//! Memory: everything is inline, no allocator; `size_of::<Client>()` is about
//! 122 KiB with the default constants (the call slots' offer buffers are most
//! of it). Put it in a `static` or a `Box`, not on a small stack.

mod backoff;
mod outbuf;
mod types;

use botcall_core::id::AgentId;
use botcall_core::json::{self, Value};
use botcall_core::jwt::{self, HumanAttestation, Jwks};
use botcall_core::protocol::{Candidate, Msg, ProtoError, Role, Text, close};

pub(crate) use backoff::Rng;
pub use backoff::{BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, RETRY_AFTER_MAX_SECS};
pub use types::{
    ClientConfig, ClientState, ClientStats, Event, IceServer, Input, OfflineReason, Output, Str,
    parse_ice_servers,
};

use crate::attest::{Expect, verify_incoming};
use crate::error::{AttestationError, Error, RefuseReason};
use crate::time::Instant;
use backoff::Backoff;
use outbuf::Outbox;

/// Largest signaling message sent or accepted (the daemon's default
/// `max_message_bytes`).
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// Bytes of the outbound queue: two largest messages plus length prefixes.
pub const OUTBOX_LEN: usize = 2 * MAX_MESSAGE_LEN + 64;
/// Simultaneous call slots (the `max_calls` told to the daemon is at most this).
pub const MAX_CALLS: usize = 4;
/// Largest SDP offer kept per call.
pub const MAX_OFFER_LEN: usize = MAX_MESSAGE_LEN;
/// Largest JWKS document kept.
pub const MAX_JWKS_LEN: usize = 4096;
/// Largest `ice_servers` JSON kept from `welcome`.
pub const MAX_ICE_SERVERS_LEN: usize = 2048;
/// Largest ICE candidate text in an [`Event::RemoteCandidate`].
pub const MAX_CANDIDATE_LEN: usize = 512;
/// Events held before the owner drains them; more are dropped and counted.
pub const EVENT_QUEUE_LEN: usize = 16;
/// How long an [`Output::Connect`] may take before the attempt counts as failed.
pub const CONNECT_TIMEOUT_MS: u64 = 15_000;
/// How long the daemon has to answer `hello` with `welcome`.
pub const WELCOME_TIMEOUT_MS: u64 = 10_000;
/// Most ICE server URLs [`Client::ice_servers`] returns.
pub const MAX_ICE_URLS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting { since: Instant },
    AwaitWelcome { deadline: Instant },
    Online { last_rx: Instant, pinged: bool },
    Backoff { until: Instant },
    Stopped,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Connecting { .. } => "connecting",
            State::AwaitWelcome { .. } => "waiting for welcome",
            State::Online { .. } => "online",
            State::Backoff { .. } => "waiting to reconnect",
            State::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Ringing,
    Answered,
}

struct Slot {
    used: bool,
    id: Str<{ botcall_core::id::MAX_ID_LEN }>,
    state: SlotState,
    caller: Option<HumanAttestation>,
    offer: Str<MAX_OFFER_LEN>,
}

const EMPTY_SLOT: Slot = Slot {
    used: false,
    id: heapless::String::new(),
    state: SlotState::Ringing,
    caller: None,
    offer: heapless::String::new(),
};

/// The sans-IO bot signaling client. See the [module docs](self).
pub struct Client {
    cfg: ClientConfig,
    state: State,
    now: Instant,
    backoff: Backoff,
    /// The least wait before the next attempt (from `Retry-After`), in ms.
    retry_floor_ms: u64,
    /// (monotonic instant, Unix seconds) at the last `Connected`.
    clock: Option<(Instant, u64)>,
    heartbeat_ms: u64,
    socket_open: bool,
    want_close: bool,
    want_connect: bool,
    outbox: Outbox,
    events: heapless::Deque<Event, EVENT_QUEUE_LEN>,
    agent_id: Option<AgentId>,
    session: Option<AgentId>,
    jwks: Str<MAX_JWKS_LEN>,
    ice_servers: Str<MAX_ICE_SERVERS_LEN>,
    slots: [Slot; MAX_CALLS],
    stats: ClientStats,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .field("agent_id", &self.agent_id)
            .field("calls", &self.slots.iter().filter(|s| s.used).count())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn truncated<const N: usize>(t: Text<'_>) -> Str<N> {
    let mut out = Str::new();
    let mut push = |c: char| out.push(c).is_ok();
    match t {
        Text::Json(j) => {
            for c in j.chars() {
                if !push(c) {
                    break;
                }
            }
        }
        Text::Str(s) => {
            for c in s.chars() {
                if !push(c) {
                    break;
                }
            }
        }
    }
    out
}

pub(crate) fn fill<const N: usize>(dst: &mut Str<N>, t: Text<'_>) -> Result<(), ()> {
    dst.clear();
    match t {
        Text::Json(j) => {
            for c in j.chars() {
                dst.push(c).map_err(|_| ())?;
            }
        }
        Text::Str(s) => dst.push_str(s).map_err(|_| ())?,
    }
    Ok(())
}

impl Client {
    /// A client that asks to connect right away. `seed` drives the backoff
    /// jitter (use a random value per process so a fleet spreads out).
    pub fn new(cfg: ClientConfig, seed: u64, now: Instant) -> Self {
        let mut c = Client {
            cfg,
            state: State::Connecting { since: now },
            now,
            backoff: Backoff::new(seed),
            retry_floor_ms: 0,
            clock: None,
            heartbeat_ms: 30_000,
            socket_open: false,
            want_close: false,
            want_connect: true,
            outbox: Outbox::new(),
            events: heapless::Deque::new(),
            agent_id: None,
            session: None,
            jwks: Str::new(),
            ice_servers: Str::new(),
            slots: [EMPTY_SLOT; MAX_CALLS],
            stats: ClientStats::default(),
        };
        c.cfg.max_calls = c.cfg.max_calls.clamp(1, MAX_CALLS as u8);
        c.stats.connect_attempts = 1;
        c
    }

    /// Stores the daemon's JWKS (`/.well-known/jwks.json`); needed before
    /// calls can be verified. Replace it after the daemon rotates its key.
    ///
    /// # Errors
    /// [`Error::BadJwks`] if it does not parse, [`Error::TooLarge`] over [`MAX_JWKS_LEN`].
    pub fn set_jwks(&mut self, jwks: &str) -> Result<(), Error> {
        Jwks::parse(jwks).map_err(|_| Error::BadJwks)?;
        let mut s = Str::new();
        s.push_str(jwks).map_err(|_| Error::TooLarge("jwks"))?;
        self.jwks = s;
        Ok(())
    }

    /// Where the client is.
    pub fn state(&self) -> ClientState {
        match self.state {
            State::Connecting { .. } => ClientState::Connecting,
            State::AwaitWelcome { .. } => ClientState::WaitingForWelcome,
            State::Online { .. } => ClientState::Online,
            State::Backoff { until } => ClientState::Backoff { until },
            State::Stopped => ClientState::Stopped,
        }
    }

    /// Whether `welcome` was received on the current connection.
    pub fn is_online(&self) -> bool {
        matches!(self.state, State::Online { .. })
    }

    /// The agent id from the last `welcome`.
    pub fn agent_id(&self) -> Option<&str> {
        self.agent_id.as_deref()
    }

    /// The session id from the last `welcome`.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The `ice_servers` JSON of the last `welcome` (`[]` before one).
    pub fn ice_servers_json(&self) -> &str {
        if self.ice_servers.is_empty() {
            "[]"
        } else {
            &self.ice_servers
        }
    }

    /// The ICE servers of the last `welcome`, one entry per URL (at most
    /// [`MAX_ICE_URLS`]; entries too long for their fields are skipped).
    pub fn ice_servers(&self) -> heapless::Vec<IceServer, MAX_ICE_URLS> {
        parse_ice_servers(self.ice_servers_json())
    }

    /// The SDP offer of a ringing or answered call.
    pub fn offer(&self, call_id: &str) -> Option<&str> {
        self.slot(call_id).map(|i| self.slots[i].offer.as_str())
    }

    /// The verified attestation of a call.
    pub fn caller(&self, call_id: &str) -> Option<&HumanAttestation> {
        self.slot(call_id)
            .and_then(|i| self.slots[i].caller.as_ref())
    }

    /// Ids of the calls in progress (ringing or answered).
    pub fn calls(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().filter(|s| s.used).map(|s| s.id.as_str())
    }

    fn slot(&self, call_id: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.used && s.id.as_str() == call_id)
    }

    fn advance(&mut self, now: Instant) -> Instant {
        // Time that goes backwards is ignored.
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    fn unix_now(&self, now: Instant) -> u64 {
        match self.clock {
            Some((at, unix)) => unix + now.millis_since(at) / 1000,
            None => 0,
        }
    }

    fn event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.stats.dropped_events += 1;
        }
    }

    fn send(&mut self, msg: &Msg<'_>) -> Result<(), Error> {
        self.outbox.push(msg)
    }

    fn require_online(&self) -> Result<(), Error> {
        match self.state {
            State::Online { .. } => Ok(()),
            State::Stopped => Err(Error::Stopped),
            _ => Err(Error::Offline),
        }
    }

    /// Feeds one input. Errors are about this input only (a malformed or
    /// unexpected message, or misuse); the client stays usable.
    ///
    /// # Errors
    /// [`Error::BadMessage`], [`Error::Unexpected`], [`Error::TooLarge`]
    /// (a token too long for `hello`), [`Error::Stopped`].
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), Error> {
        let now = self.advance(now);
        match input {
            Input::Connected { token, unix_secs } => match self.state {
                State::Connecting { .. } => {
                    self.socket_open = true;
                    self.clock = Some((now, unix_secs));
                    self.outbox.clear();
                    let hello = Msg::Hello {
                        role: Role::Bot,
                        token: Some(Text::Str(token)),
                        max_calls: Some(u64::from(self.cfg.max_calls)),
                    };
                    if let Err(e) = self.send(&hello) {
                        self.fail(now, OfflineReason::ConnectFailed);
                        return Err(match e {
                            Error::Full | Error::TooLarge(_) => Error::TooLarge("token"),
                            e => e,
                        });
                    }
                    self.state = State::AwaitWelcome {
                        deadline: now.add_millis(WELCOME_TIMEOUT_MS),
                    };
                    Ok(())
                }
                State::Stopped => Err(Error::Stopped),
                s => Err(Error::Unexpected {
                    state: s.name(),
                    got: "connected",
                }),
            },
            Input::Activity => {
                self.touch(now);
                Ok(())
            }
            Input::Message(text) => {
                self.touch(now);
                self.on_message(now, text).inspect_err(|_| {
                    self.stats.bad_messages += 1;
                })
            }
            Input::Disconnected {
                close_code,
                retry_after_secs,
            } => {
                self.socket_open = false;
                self.want_close = false;
                let reason = match (close_code, self.state) {
                    (Some(close::REPLACED), _) => OfflineReason::Replaced,
                    (_, State::Connecting { .. }) => OfflineReason::ConnectFailed,
                    _ => OfflineReason::Disconnected,
                };
                match self.state {
                    State::Stopped | State::Backoff { .. } => Ok(()),
                    _ => {
                        // Consumed by `fail` when it schedules the next attempt.
                        self.retry_floor_ms = retry_after_secs
                            .map_or(0, |s| u64::from(s.min(RETRY_AFTER_MAX_SECS)) * 1000);
                        self.fail(now, reason);
                        Ok(())
                    }
                }
            }
        }
    }

    fn touch(&mut self, now: Instant) {
        if let State::Online { last_rx, pinged } = &mut self.state {
            *last_rx = now;
            *pinged = false;
        }
    }

    /// The session is over: calls end, the socket closes, a reconnect is
    /// scheduled (or not, for `Replaced`/`Shutdown`).
    fn fail(&mut self, now: Instant, reason: OfflineReason) {
        let was_online = self.is_online();
        self.outbox.clear();
        self.end_all_calls("disconnected");
        if self.socket_open {
            self.want_close = true;
            self.socket_open = false;
        }
        self.want_connect = false;
        self.state = match reason {
            OfflineReason::Replaced | OfflineReason::Shutdown => State::Stopped,
            // The daemon's Retry-After, if it gave one, is a floor.
            _ => State::Backoff {
                until: now.add_millis(
                    self.backoff
                        .next_delay()
                        .max(core::mem::take(&mut self.retry_floor_ms)),
                ),
            },
        };
        self.event(Event::Offline { reason, was_online });
    }

    fn end_all_calls(&mut self, reason: &str) {
        for i in 0..MAX_CALLS {
            if !self.slots[i].used {
                continue;
            }
            self.slots[i].used = false;
            self.slots[i].caller = None;
            if let Ok(call_id) = AgentId::new(&self.slots[i].id) {
                let mut r = Str::new();
                let _ = r.push_str(reason);
                self.event(Event::Hangup { call_id, reason: r });
            }
        }
    }

    fn on_message(&mut self, now: Instant, text: &str) -> Result<(), Error> {
        if text.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge("message"));
        }
        let msg = Msg::decode(text)?;
        match (self.state, msg) {
            (
                State::AwaitWelcome { .. },
                Msg::Welcome {
                    role: Role::Bot,
                    agent_id,
                    session,
                    heartbeat_interval,
                    ice_servers,
                    ..
                },
            ) => {
                let agent_id =
                    agent_id.ok_or(Error::BadMessage(ProtoError::Missing("agent_id")))?;
                let hb = heartbeat_interval.clamp(1, 3600);
                self.heartbeat_ms = hb * 1000;
                self.ice_servers.clear();
                if self.ice_servers.push_str(ice_servers.as_str()).is_err() {
                    // Too many servers to keep: go on with none rather than a cut list.
                    self.ice_servers.clear();
                }
                self.agent_id = Some(agent_id.clone());
                self.session = Some(session.clone());
                self.state = State::Online {
                    last_rx: now,
                    pinged: false,
                };
                self.backoff.reset();
                self.stats.sessions += 1;
                self.event(Event::Online {
                    agent_id,
                    session,
                    heartbeat_interval: hb as u32,
                });
                Ok(())
            }
            (
                State::AwaitWelcome { .. } | State::Online { .. },
                Msg::Error {
                    code,
                    message,
                    call_id,
                },
            ) => {
                self.event(Event::ServerError {
                    code: truncated(code),
                    message: truncated(message),
                    call_id,
                });
                Ok(())
            }
            (
                State::Online { .. },
                Msg::Incoming {
                    call_id,
                    sdp_offer,
                    attestation,
                    ice_servers,
                    ..
                },
            ) => {
                if let Some(fresh) = ice_servers {
                    self.refresh_turn(fresh.as_str());
                }
                self.on_incoming(now, call_id, sdp_offer, attestation)
            }
            (State::Online { .. }, Msg::Ice { call_id, candidate }) => {
                if self.slot(&call_id).is_none() {
                    return Ok(()); // a late candidate for a call that is gone
                }
                let (cand, mid) = match candidate {
                    Candidate::End | Candidate::Json(Value::Null) => (None, None),
                    c => {
                        let text = c
                            .candidate_text()
                            .ok_or(Error::BadMessage(ProtoError::BadField("candidate")))?;
                        if text.is_empty() {
                            (None, None)
                        } else {
                            let mut s = Str::new();
                            fill(&mut s, text).map_err(|_| Error::TooLarge("candidate"))?;
                            let mid = match c {
                                Candidate::Json(Value::Obj(o)) => {
                                    match o.opt_str("sdpMid").ok().flatten() {
                                        Some(m) => {
                                            let mut ms = Str::new();
                                            fill(&mut ms, Text::Json(m))
                                                .map_err(|_| Error::TooLarge("sdpMid"))?;
                                            Some(ms)
                                        }
                                        None => None,
                                    }
                                }
                                _ => None,
                            };
                            (Some(s), mid)
                        }
                    }
                };
                self.event(Event::RemoteCandidate {
                    call_id,
                    candidate: cand,
                    mid,
                });
                Ok(())
            }
            (State::Online { .. }, Msg::Hangup { call_id, reason }) => {
                if let Some(i) = self.slot(&call_id) {
                    self.slots[i].used = false;
                    self.slots[i].caller = None;
                    self.event(Event::Hangup {
                        call_id,
                        reason: truncated(reason),
                    });
                }
                Ok(())
            }
            (State::Online { .. }, Msg::Pong) => Ok(()),
            (State::Online { .. }, Msg::Ping) => self.send(&Msg::Pong),
            (s, m) => Err(Error::Unexpected {
                state: s.name(),
                got: m.type_name(),
            }),
        }
    }

    fn refuse(&mut self, call_id: AgentId, reason: RefuseReason) {
        self.stats.refused_calls += 1;
        // Best effort: with a full queue the daemon's ring timeout ends the call.
        let _ = self.send(&Msg::Reject {
            call_id: call_id.clone(),
            reason: Text::Str(reason.code()),
        });
        self.event(Event::Refused { call_id, reason });
    }

    /// Keeps the `welcome` list's STUN entries and takes the TURN servers
    /// (fresh credentials) from a call's `incoming`. Anything unreadable or
    /// too large leaves the current list as it was.
    fn refresh_turn(&mut self, fresh: &str) {
        let (Ok(json::Value::Arr(old)), Ok(json::Value::Arr(new))) =
            (json::parse(self.ice_servers_json()), json::parse(fresh))
        else {
            return;
        };
        // Whether every URL of an entry has this scheme prefix.
        let all_urls = |v: &json::Value<'_>, scheme: &str| {
            let json::Value::Obj(o) = v else { return false };
            match o.get("urls") {
                Some(json::Value::Str(u)) => u.raw().starts_with(scheme),
                Some(json::Value::Arr(a)) => {
                    !a.is_empty()
                        && a.iter().all(
                            |u| matches!(u, json::Value::Str(s) if s.raw().starts_with(scheme)),
                        )
                }
                _ => false,
            }
        };
        let is_stun = |v: &json::Value<'_>| all_urls(v, "stun:");
        let is_turn = |v: &json::Value<'_>| {
            let json::Value::Obj(o) = v else { return false };
            all_urls(v, "turn")
                && matches!(o.get("username"), Some(json::Value::Str(_)))
                && matches!(o.get("credential"), Some(json::Value::Str(_)))
        };
        if !new.iter().any(|v| is_turn(&v)) {
            return;
        }
        let mut out = heapless::Vec::<u8, MAX_ICE_SERVERS_LEN>::new();
        let mut w = json::Writer::new(&mut out);
        let written = (|| -> Result<(), json::write::Full> {
            w.begin_arr()?;
            for v in old.iter().filter(|v| is_stun(v)) {
                w.value(v)?;
            }
            for v in new.iter().filter(|v| is_turn(v)) {
                w.value(v)?;
            }
            w.end_arr()?;
            Ok(())
        })();
        if written.is_ok()
            && let Ok(text) = core::str::from_utf8(&out)
        {
            self.ice_servers.clear();
            // Same capacity as `out`: cannot fail.
            let _ = self.ice_servers.push_str(text);
        }
    }

    fn on_incoming(
        &mut self,
        now: Instant,
        call_id: AgentId,
        sdp_offer: Text<'_>,
        attestation: Text<'_>,
    ) -> Result<(), Error> {
        if self.slot(&call_id).is_some() {
            return Err(Error::Unexpected {
                state: "ringing (duplicate call id)",
                got: "incoming",
            });
        }
        let busy = self.slots.iter().filter(|s| s.used).count() >= usize::from(self.cfg.max_calls);
        let Some(i) = self.slots.iter().position(|s| !s.used).filter(|_| !busy) else {
            self.refuse(call_id, RefuseReason::Busy);
            return Ok(());
        };
        if fill(&mut self.slots[i].offer, sdp_offer).is_err() {
            self.slots[i].offer.clear();
            self.refuse(call_id, RefuseReason::OfferTooLarge);
            return Ok(());
        }
        let mut token_buf = [0u8; jwt::MAX_TOKEN_LEN];
        let Ok(token) = attestation.decode_into(&mut token_buf) else {
            self.refuse(
                call_id,
                RefuseReason::Attestation(AttestationError::Malformed),
            );
            return Ok(());
        };
        let Some(agent_id) = self.agent_id.as_deref() else {
            return Err(Error::Unexpected {
                state: "online without agent id",
                got: "incoming",
            });
        };
        let result = if self.jwks.is_empty() {
            Err(AttestationError::BadJwks)
        } else {
            verify_incoming(
                token,
                &self.jwks,
                &Expect {
                    agent_id,
                    call_id: &call_id,
                    sdp_offer: &self.slots[i].offer,
                    policy: self.cfg.policy,
                    issuer: None,
                },
                self.unix_now(now),
            )
        };
        match result {
            Ok(att) => {
                let slot = &mut self.slots[i];
                slot.used = true;
                slot.id.clear();
                // Ids are at most MAX_ID_LEN characters by construction.
                let _ = slot.id.push_str(&call_id);
                slot.state = SlotState::Ringing;
                slot.caller = Some(att);
                self.event(Event::Incoming { call_id });
            }
            Err(e) => {
                self.slots[i].offer.clear();
                self.refuse(call_id, RefuseReason::Attestation(e));
            }
        }
        Ok(())
    }

    /// Answers a ringing call with the bot's SDP answer.
    ///
    /// # Errors
    /// [`Error::Offline`], [`Error::UnknownCall`], [`Error::WrongCallState`]
    /// (already answered), [`Error::TooLarge`]/[`Error::Full`].
    pub fn answer(&mut self, call_id: &str, sdp_answer: &str) -> Result<(), Error> {
        self.answer_signed(call_id, sdp_answer, None)
    }

    /// As [`Client::answer`], with the bot's `answer_sig`
    /// ([`botcall_core::answer_sig::sign`] over this call's offer and
    /// `sdp_answer`), which lets the caller check the answer is the bot's.
    ///
    /// # Errors
    /// As [`Client::answer`].
    pub fn answer_signed(
        &mut self,
        call_id: &str,
        sdp_answer: &str,
        answer_sig: Option<&str>,
    ) -> Result<(), Error> {
        self.require_online()?;
        let i = self.slot(call_id).ok_or(Error::UnknownCall)?;
        if self.slots[i].state != SlotState::Ringing {
            return Err(Error::WrongCallState);
        }
        let id = AgentId::new(call_id).map_err(|_| Error::UnknownCall)?;
        self.send(&Msg::Answer {
            call_id: id,
            sdp_answer: Text::Str(sdp_answer),
            answer_sig: answer_sig.map(Text::Str),
        })?;
        self.slots[i].state = SlotState::Answered;
        Ok(())
    }

    /// Refuses a ringing call (`reason` ≤ 64 bytes, e.g. `busy`, `declined`).
    ///
    /// # Errors
    /// As [`Client::answer`].
    pub fn reject(&mut self, call_id: &str, reason: &str) -> Result<(), Error> {
        self.require_online()?;
        let i = self.slot(call_id).ok_or(Error::UnknownCall)?;
        if self.slots[i].state != SlotState::Ringing {
            return Err(Error::WrongCallState);
        }
        if reason.len() > botcall_core::protocol::MAX_REASON_LEN {
            return Err(Error::TooLarge("reason"));
        }
        let id = AgentId::new(call_id).map_err(|_| Error::UnknownCall)?;
        self.send(&Msg::Reject {
            call_id: id,
            reason: Text::Str(reason),
        })?;
        self.slots[i].used = false;
        self.slots[i].caller = None;
        Ok(())
    }

    /// Trickles a local ICE candidate (`candidate:…` text) to the caller, or
    /// end-of-candidates with `None`.
    ///
    /// # Errors
    /// As [`Client::answer`] (any live call state is fine).
    pub fn send_candidate(
        &mut self,
        call_id: &str,
        candidate: Option<&str>,
        mid: Option<&str>,
    ) -> Result<(), Error> {
        self.require_online()?;
        self.slot(call_id).ok_or(Error::UnknownCall)?;
        let id = AgentId::new(call_id).map_err(|_| Error::UnknownCall)?;
        let candidate = match candidate {
            Some(c) => Candidate::Sdp {
                candidate: c,
                sdp_mid: mid,
                mline_index: Some(0),
            },
            None => Candidate::End,
        };
        self.send(&Msg::Ice {
            call_id: id,
            candidate,
        })
    }

    /// Ends a call from the bot's side; its slot is free at once. Offline,
    /// the call is already over for the daemon: the slot is just freed.
    ///
    /// # Errors
    /// [`Error::UnknownCall`], [`Error::TooLarge`] (reason), [`Error::Full`].
    pub fn hangup(&mut self, call_id: &str, reason: &str) -> Result<(), Error> {
        let i = self.slot(call_id).ok_or(Error::UnknownCall)?;
        if reason.len() > botcall_core::protocol::MAX_REASON_LEN {
            return Err(Error::TooLarge("reason"));
        }
        if self.is_online() {
            let id = AgentId::new(call_id).map_err(|_| Error::UnknownCall)?;
            self.send(&Msg::Hangup {
                call_id: id,
                reason: Text::Str(reason),
            })?;
        }
        self.slots[i].used = false;
        self.slots[i].caller = None;
        Ok(())
    }

    /// Hangs up every call, closes the socket and stops reconnecting.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance(now);
        if self.state == State::Stopped {
            return;
        }
        let was_online = self.is_online();
        if was_online {
            for i in 0..MAX_CALLS {
                if self.slots[i].used
                    && let Ok(id) = AgentId::new(&self.slots[i].id)
                {
                    let _ = self.send(&Msg::Hangup {
                        call_id: id,
                        reason: Text::Str("shutdown"),
                    });
                }
            }
        }
        for s in self.slots.iter_mut() {
            s.used = false;
            s.caller = None;
        }
        if self.socket_open {
            self.want_close = true;
            self.socket_open = false;
        }
        self.want_connect = false;
        self.state = State::Stopped;
        self.event(Event::Offline {
            reason: OfflineReason::Shutdown,
            was_online,
        });
    }

    /// Time passed: timeouts, pings, reconnects.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        match self.state {
            State::Connecting { since } if now >= since.add_millis(CONNECT_TIMEOUT_MS) => {
                self.fail(now, OfflineReason::ConnectFailed);
            }
            State::AwaitWelcome { deadline } if now >= deadline => {
                self.fail(now, OfflineReason::Timeout);
            }
            State::Online { last_rx, pinged } => {
                let silent = now.millis_since(last_rx);
                if silent >= self.heartbeat_ms * 5 / 2 {
                    self.fail(now, OfflineReason::Timeout);
                } else if !pinged && silent >= self.heartbeat_ms * 3 / 2 {
                    if self.send(&Msg::Ping).is_ok() {
                        self.stats.pings_sent += 1;
                    }
                    self.state = State::Online {
                        last_rx,
                        pinged: true,
                    };
                }
            }
            State::Backoff { until } if now >= until => {
                self.state = State::Connecting { since: now };
                self.want_connect = true;
                self.stats.connect_attempts += 1;
            }
            _ => {}
        }
    }

    /// When [`Client::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Instant {
        match self.state {
            State::Connecting { since } => since.add_millis(CONNECT_TIMEOUT_MS),
            State::AwaitWelcome { deadline } => deadline,
            State::Online { last_rx, pinged } => {
                if pinged {
                    last_rx.add_millis(self.heartbeat_ms * 5 / 2)
                } else {
                    last_rx.add_millis(self.heartbeat_ms * 3 / 2)
                }
            }
            State::Backoff { until } => until,
            State::Stopped => Instant::NEVER,
        }
    }

    /// The next thing to do. Drain until [`Output::Timeout`].
    pub fn poll_output(&mut self) -> Output<'_> {
        if !self.outbox.is_empty() {
            // Not empty, so `front` has a message; the fallback is unreachable.
            let at = self.now;
            return self
                .outbox
                .front()
                .map_or(Output::Timeout(at), Output::Send);
        }
        if self.want_close {
            self.want_close = false;
            return Output::Close;
        }
        if self.want_connect {
            self.want_connect = false;
            return Output::Connect;
        }
        if let Some(e) = self.events.pop_front() {
            return Output::Event(e);
        }
        Output::Timeout(self.poll_timeout())
    }
}

#[cfg(test)]
mod tests;
