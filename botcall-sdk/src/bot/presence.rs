//! The presence task: owns the core [`Client`] and the WebSocket, registers
//! over HTTP before every connection, routes events to the application and
//! to the calls' media tasks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_channel::{Receiver, Sender, TrySendError};
use async_executor::LocalExecutor;
use async_io::Timer;
use botcall_core::json::Writer;
use botcall_core::jwt::{self, HeaderOpts, SigningKey};
use botcall_core::protocol::close;
use futures_lite::future;

use super::call::MediaCmd;
use super::cmd::Cmd;
use super::media::{self, MediaSetup};
use super::net::{self, DaemonUrl, WsConn, WsIn};
use super::{BotConfig, BotError, BotStatus, Call, EndReason, HumanAttestation, IceServerConfig};
use crate::client::{Client, ClientConfig, Event, Input, OfflineReason, Output, Rng};

/// A verified call waiting for `accept_call`.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) call_id: String,
    /// The verified attestation it arrived with.
    pub(crate) caller: HumanAttestation,
}

/// Pending remote candidates kept per ringing call.
const MAX_PENDING_CANDIDATES: usize = 32;

#[derive(Default)]
struct CallEntry {
    media: Option<Sender<MediaCmd>>,
    candidates: Vec<String>,
}

enum Wake {
    Ws(Result<WsIn, BotError>),
    Cmd(Cmd),
    Tick,
}

pub(crate) struct Presence {
    pub(crate) ex: Rc<LocalExecutor<'static>>,
    pub(crate) cfg: BotConfig,
    pub(crate) url: DaemonUrl,
    pub(crate) agent_id: String,
    pub(crate) embed_jwk: bool,
    pub(crate) client: Box<Client>,
    pub(crate) base: Instant,
    pub(crate) conn: Option<WsConn>,
    pub(crate) local_ip: Option<IpAddr>,
    pub(crate) status: Arc<Mutex<BotStatus>>,
    pub(crate) incoming: Sender<Result<Pending, BotError>>,
    pub(crate) cmd_rx: Receiver<Cmd>,
    pub(crate) cmd_tx: Sender<Cmd>,
    pub(crate) ready: Option<Sender<Result<(), BotError>>>,
    pub(crate) rng: Rng,
    calls: HashMap<String, CallEntry>,
    /// Why the last connection attempt failed (for the first attempt's answer).
    last_error: Option<BotError>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Presence {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ex: Rc<LocalExecutor<'static>>,
        cfg: BotConfig,
        url: DaemonUrl,
        agent_id: String,
        embed_jwk: bool,
        status: Arc<Mutex<BotStatus>>,
        incoming: Sender<Result<Pending, BotError>>,
        cmd: (Sender<Cmd>, Receiver<Cmd>),
        ready: Sender<Result<(), BotError>>,
        seed: u64,
    ) -> Self {
        let base = Instant::now();
        let client = Box::new(Client::new(
            ClientConfig {
                max_calls: cfg.max_calls,
                policy: cfg.policy,
            },
            seed,
            crate::Instant(0),
        ));
        Presence {
            ex,
            cfg,
            url,
            agent_id,
            embed_jwk,
            client,
            base,
            conn: None,
            local_ip: None,
            status,
            incoming,
            cmd_rx: cmd.1,
            cmd_tx: cmd.0,
            ready: Some(ready),
            rng: Rng::new(seed ^ 0x5DEE_CE66_D1CE_4E5B),
            calls: HashMap::new(),
            last_error: None,
        }
    }

    fn now(&self) -> crate::Instant {
        crate::Instant(self.base.elapsed().as_millis() as u64)
    }

    fn instant(&self, t: crate::Instant) -> Option<Instant> {
        if t == crate::Instant::NEVER {
            None
        } else {
            self.base.checked_add(std::time::Duration::from_millis(t.0))
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut BotStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    fn mint_token(&self) -> Result<String, BotError> {
        let now = unix_now();
        let ttl = self.cfg.token_ttl.clamp(60, 600);
        let mut claims = Vec::with_capacity(160);
        let mut w = Writer::new(&mut claims);
        let full = |_| BotError::Key(jwt::JwtError::BufferTooSmall);
        w.begin_obj()
            .and_then(|w| w.field_str("sub", &self.agent_id))
            .and_then(|w| w.key("iat"))
            .and_then(|w| w.u64(now))
            .and_then(|w| w.key("exp"))
            .and_then(|w| w.u64(now + ttl))
            .map_err(full)?;
        if let Some(aud) = &self.cfg.token_audience {
            w.field_str("aud", aud).map_err(full)?;
        }
        w.end_obj().map_err(full)?;
        let claims =
            String::from_utf8(claims).map_err(|_| BotError::Key(jwt::JwtError::BufferTooSmall))?;
        let mut out = vec![0u8; jwt::MAX_TOKEN_LEN];
        let opts = HeaderOpts {
            kid: None,
            embed_jwk: self.embed_jwk,
            typ: None,
        };
        jwt::sign_claims(&self.cfg.key, opts, &claims, &mut out)
            .map(str::to_string)
            .map_err(BotError::Key)
    }

    fn register_body(&self) -> String {
        let c = &self.cfg;
        let mut v = Vec::with_capacity(256);
        let mut w = Writer::new(&mut v);
        // A Vec sink never fills up.
        let _ = (|| -> Result<(), botcall_core::json::write::Full> {
            w.begin_obj()?.field_str("agent_id", &self.agent_id)?;
            if let Some(e) = &c.endpoint {
                w.field_str("endpoint", e)?;
            }
            if let Some(n) = &c.name {
                w.field_str("name", n)?;
            }
            w.key("capabilities")?
                .begin_obj()?
                .key("audio")?
                .begin_arr()?
                .str("opus")?
                .end_arr()?
                .end_obj()?;
            if let Some(t) = c.ttl {
                w.field_u64("ttl", u64::from(t))?;
            }
            w.field_u64("max_calls", u64::from(c.max_calls))?;
            if let Some(l) = c.listed {
                w.key("listed")?.bool(l)?;
            }
            w.end_obj()?;
            Ok(())
        })();
        String::from_utf8(v).unwrap_or_default()
    }

    /// JWKS, `POST /register`, WebSocket upgrade.
    async fn try_connect(&mut self, token: &str) -> Result<WsConn, BotError> {
        let jwks = net::http(&self.url, "GET", "/.well-known/jwks.json", None, None)
            .await?
            .ok_body()?;
        self.client.set_jwks(&jwks).map_err(BotError::Signaling)?;
        let body = self.register_body();
        net::http(&self.url, "POST", "/register", Some(token), Some(&body))
            .await?
            .ok_body()?;
        WsConn::connect(&self.url, &mut self.rng).await
    }

    async fn connect(&mut self) {
        let token = match self.mint_token() {
            Ok(t) => t,
            Err(e) => {
                self.last_error = Some(e);
                let _ = self.client.handle_input(
                    self.now(),
                    Input::Disconnected {
                        close_code: None,
                        retry_after_secs: None,
                    },
                );
                return;
            }
        };
        let d = self.cfg.connect_timeout;
        let r = net::timeout(d, "connecting to the daemon", self.try_connect(&token)).await;
        match r {
            Ok(conn) => {
                self.local_ip = Some(conn.local.ip());
                self.conn = Some(conn);
                let _ = self.client.handle_input(
                    self.now(),
                    Input::Connected {
                        token: &token,
                        unix_secs: unix_now(),
                    },
                );
            }
            Err(e) => {
                self.set_status(|s| s.last_error = Some(e.to_string()));
                let retry_after_secs = match &e {
                    BotError::Http { retry_after, .. } => *retry_after,
                    _ => None,
                };
                self.last_error = Some(e);
                let _ = self.client.handle_input(
                    self.now(),
                    Input::Disconnected {
                        close_code: None,
                        retry_after_secs,
                    },
                );
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Online { agent_id, .. } => {
                self.last_error = None;
                let stats = self.client.stats();
                self.set_status(|s| {
                    s.online = true;
                    s.agent_id = agent_id.to_string();
                    s.sessions = stats.sessions;
                    s.last_error = None;
                });
                if let Some(r) = self.ready.take() {
                    let _ = r.try_send(Ok(()));
                }
            }
            Event::Offline { reason, was_online } => {
                self.set_status(|s| s.online = false);
                if reason == OfflineReason::Replaced {
                    self.set_status(|s| {
                        s.last_error = Some("replaced by a newer connection for this agent".into())
                    });
                }
                if !was_online && let Some(r) = self.ready.take() {
                    // The first attempt failed: register_with_discovery reports it.
                    let err = self
                        .last_error
                        .take()
                        .unwrap_or(BotError::Timeout("waiting for welcome"));
                    let _ = r.try_send(Err(err));
                    self.client.shutdown(self.now());
                }
            }
            Event::Incoming { call_id } => {
                let id = call_id.to_string();
                let Some(caller) = self.client.caller(&id).cloned() else {
                    return;
                };
                self.calls.insert(id.clone(), CallEntry::default());
                if let Err(TrySendError::Full(_) | TrySendError::Closed(_)) =
                    self.incoming.try_send(Ok(Pending {
                        call_id: id.clone(),
                        caller,
                    }))
                {
                    let _ = self.client.reject(&id, "busy");
                    self.calls.remove(&id);
                }
            }
            Event::Refused { call_id, reason } => {
                self.set_status(|s| s.refused_calls += 1);
                let _ = self.incoming.try_send(Err(BotError::CallRefused {
                    call_id: call_id.to_string(),
                    reason,
                }));
            }
            Event::RemoteCandidate {
                call_id, candidate, ..
            } => {
                let Some(c) = candidate else { return };
                if let Some(entry) = self.calls.get_mut(call_id.as_str()) {
                    match &entry.media {
                        Some(m) => {
                            let _ = m.try_send(MediaCmd::Candidate(c.to_string()));
                        }
                        None if entry.candidates.len() < MAX_PENDING_CANDIDATES => {
                            entry.candidates.push(c.to_string());
                        }
                        None => {}
                    }
                }
            }
            Event::Hangup { call_id, reason } => {
                if let Some(entry) = self.calls.remove(call_id.as_str())
                    && let Some(m) = entry.media
                {
                    let _ = m.try_send(MediaCmd::Ended(EndReason::from_hangup(&reason)));
                }
            }
            Event::ServerError {
                code,
                message,
                call_id,
            } => {
                // An error about a call that already ended here (both sides
                // hung up at once) is no news.
                let stale = call_id
                    .as_ref()
                    .is_some_and(|id| !self.calls.contains_key(id.as_str()));
                if !stale {
                    let text = format!("{code}: {message}");
                    self.set_status(|s| s.last_error = Some(text));
                }
                if !self.client.is_online() {
                    self.last_error = Some(BotError::Refused {
                        code: code.to_string(),
                        message: message.to_string(),
                    });
                }
                // The daemon no longer knows the call: end it here too.
                if let Some(id) = call_id
                    && matches!(
                        code.as_str(),
                        "unknown_call" | "wrong_state" | "not_your_call"
                    )
                    && let Some(entry) = self.calls.remove(id.as_str())
                {
                    let _ = self.client.hangup(id.as_str(), "error");
                    if let Some(m) = entry.media {
                        let _ = m.try_send(MediaCmd::Ended(EndReason::Error(code.to_string())));
                    }
                }
            }
        }
    }

    /// The ICE servers for a call's own candidates: the configured
    /// replacement or the daemon's `welcome.ice_servers` (one entry per
    /// URL, with its TURN credentials), plus the extra ones.
    fn ice_servers(&self) -> Vec<IceServerConfig> {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let mut list: Vec<IceServerConfig> = match &self.cfg.ice_servers {
            Some(list) => list.clone(),
            None => self
                .client
                .ice_servers()
                .iter()
                .map(|s| IceServerConfig {
                    urls: vec![s.url.to_string()],
                    username: nonempty(&s.username),
                    credential: nonempty(&s.credential),
                })
                .collect(),
        };
        list.extend(self.cfg.extra_ice_servers.iter().cloned());
        list
    }

    fn accept(&mut self, call_id: String) -> Result<Call, Option<BotError>> {
        if !self.calls.contains_key(&call_id) {
            return Err(None);
        }
        let (Some(offer), Some(caller)) =
            (self.client.offer(&call_id), self.client.caller(&call_id))
        else {
            self.calls.remove(&call_id);
            return Err(None);
        };
        let offer = offer.to_string();
        let setup = MediaSetup {
            call_id: call_id.clone(),
            caller: caller.clone(),
            offer: offer.clone(),
            local_ip: self
                .local_ip
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            ice_servers: self.ice_servers(),
            ice_policy: self.cfg.ice_policy,
            media_timeout: self.cfg.media_timeout,
            sig: self.cmd_tx.clone(),
            rng: Rng::new(self.rng.next_u64()),
        };
        let started = match media::start(setup) {
            Ok(s) => s,
            Err(e) => {
                let _ = self.client.reject(&call_id, "media_error");
                self.calls.remove(&call_id);
                return Err(Some(e));
            }
        };
        let sig = self.answer_sig(&call_id, &offer, &started.answer);
        if let Err(e) = self
            .client
            .answer_signed(&call_id, &started.answer, sig.as_deref())
        {
            let _ = self.client.hangup(&call_id, "error");
            self.calls.remove(&call_id);
            return Err(Some(BotError::Signaling(e)));
        }
        if let Some(entry) = self.calls.get_mut(&call_id) {
            for c in entry.candidates.drain(..) {
                let _ = started.ctl.try_send(MediaCmd::Candidate(c));
            }
            entry.media = Some(started.ctl.clone());
        }
        self.ex.spawn(started.media.run()).detach();
        Ok(started.call)
    }

    /// The `answer_sig` of an ES256 bot (HS256 keys cannot prove anything
    /// to a caller: they sign nothing). A failure is logged and the answer
    /// goes out unsigned, which a caller that knows the bot's key refuses.
    fn answer_sig(&self, call_id: &str, offer: &str, answer: &str) -> Option<String> {
        let SigningKey::Es256(key) = &self.cfg.key else {
            return None;
        };
        let mut out = vec![0u8; botcall_core::answer_sig::MAX_LEN];
        match botcall_core::answer_sig::sign(
            key,
            &self.agent_id,
            call_id,
            offer,
            answer,
            unix_now(),
            &mut out,
        ) {
            Ok(t) => Some(t.to_string()),
            Err(e) => {
                tracing::warn!(call_id, error = %e, "answer not signed");
                None
            }
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Accept { call_id, reply } => {
                let r = self.accept(call_id);
                let _ = reply.try_send(r);
            }
            Cmd::LocalCandidate {
                call_id,
                candidate,
                mid,
            } => {
                let _ = self
                    .client
                    .send_candidate(&call_id, candidate.as_deref(), mid.as_deref());
            }
            Cmd::Reject { call_id, reason } => {
                if self.calls.remove(&call_id).is_some() {
                    let _ = self.client.reject(&call_id, &reason);
                }
            }
            Cmd::Hangup { call_id, reason } => {
                self.calls.remove(&call_id);
                let _ = self.client.hangup(&call_id, reason);
            }
            Cmd::Shutdown => {
                for (_, entry) in self.calls.drain() {
                    if let Some(m) = entry.media {
                        let _ = m.try_send(MediaCmd::Ended(EndReason::Shutdown));
                    }
                }
                self.client.shutdown(self.now());
            }
        }
    }

    /// Runs until shut down.
    pub(crate) async fn run(mut self) {
        loop {
            let mut want_connect = false;
            let mut io_failed = false;
            let deadline = loop {
                match self.client.poll_output() {
                    Output::Send(text) => {
                        if let Some(c) = self.conn.as_mut()
                            && c.send_text(text).await.is_err()
                        {
                            io_failed = true;
                        }
                    }
                    Output::Connect => want_connect = true,
                    Output::Close => {
                        if let Some(c) = self.conn.take() {
                            c.close(close::NORMAL).await;
                        }
                    }
                    Output::Event(e) => self.on_event(e),
                    Output::Timeout(t) => break t,
                }
            };
            if io_failed {
                self.conn = None;
                let _ = self.client.handle_input(
                    self.now(),
                    Input::Disconnected {
                        close_code: None,
                        retry_after_secs: None,
                    },
                );
                continue;
            }
            if want_connect {
                self.connect().await;
                continue;
            }
            let stopped = self.client.state() == crate::client::ClientState::Stopped;
            if stopped && self.conn.is_none() {
                break;
            }
            let stats = self.client.stats();
            self.set_status(|s| s.connect_attempts = stats.connect_attempts);
            let at = self.instant(deadline);
            let wake = {
                let tick = async {
                    match at {
                        Some(t) => Timer::at(t).await,
                        None => future::pending::<Instant>().await,
                    };
                    Wake::Tick
                };
                let cmd = async {
                    match self.cmd_rx.recv().await {
                        Ok(c) => Wake::Cmd(c),
                        Err(_) => Wake::Cmd(Cmd::Shutdown),
                    }
                };
                match self.conn.as_mut() {
                    Some(c) => {
                        future::or(async { Wake::Ws(c.recv().await) }, future::or(cmd, tick)).await
                    }
                    None => future::or(cmd, tick).await,
                }
            };
            let now = self.now();
            match wake {
                Wake::Tick => self.client.handle_timeout(now),
                Wake::Cmd(c) => self.on_cmd(c),
                Wake::Ws(Ok(WsIn::Text(t))) => {
                    // Malformed or unexpected messages are counted by the client.
                    let _ = self.client.handle_input(now, Input::Message(&t));
                }
                Wake::Ws(Ok(WsIn::Ping(p))) => {
                    let _ = self.client.handle_input(now, Input::Activity);
                    let failed = match self.conn.as_mut() {
                        Some(c) => c.send_pong(&p).await.is_err(),
                        None => false,
                    };
                    if failed {
                        self.conn = None;
                        let _ = self.client.handle_input(
                            now,
                            Input::Disconnected {
                                close_code: None,
                                retry_after_secs: None,
                            },
                        );
                    }
                }
                Wake::Ws(Ok(WsIn::Other)) => {
                    let _ = self.client.handle_input(now, Input::Activity);
                }
                Wake::Ws(Ok(WsIn::Close(code))) => {
                    if let Some(c) = self.conn.take() {
                        c.close(code.unwrap_or(close::NORMAL)).await;
                    }
                    let _ = self.client.handle_input(
                        now,
                        Input::Disconnected {
                            close_code: code,
                            retry_after_secs: None,
                        },
                    );
                }
                Wake::Ws(Err(e)) => {
                    self.set_status(|s| s.last_error = Some(e.to_string()));
                    if let Some(c) = self.conn.take() {
                        let code = match e {
                            BotError::WebSocket(crate::ws::WsError::TooLarge) => close::TOO_BIG,
                            BotError::WebSocket(crate::ws::WsError::BadUtf8) => close::BAD_DATA,
                            BotError::WebSocket(_) => close::PROTOCOL,
                            _ => close::NORMAL,
                        };
                        c.close(code).await;
                    }
                    let _ = self.client.handle_input(
                        now,
                        Input::Disconnected {
                            close_code: None,
                            retry_after_secs: None,
                        },
                    );
                }
            }
        }
        self.set_status(|s| s.online = false);
        // Calls still running get told; their tasks end on their own.
        for (_, entry) in self.calls.drain() {
            if let Some(m) = entry.media {
                let _ = m.try_send(MediaCmd::Ended(EndReason::Shutdown));
            }
        }
    }
}
