//! The `std` client: [`register_with_discovery`] → [`Bot`] →
//! [`Bot::accept_call`] → [`Call`].
//!
//! Everything that touches the network runs on one background thread per
//! bot (an `async-io` reactor with a local executor): the presence task
//! drives the core [`crate::client::Client`], and each call has a media
//! task driving a str0m `Rtc`. The application talks to them over bounded
//! channels, so the handles work from any executor (smol, Tokio, or
//! `futures_lite::future::block_on` in plain threads).

mod call;
mod cmd;
mod error;
mod gather;
mod ice_url;
mod incoming;
mod media;
mod net;
mod presence;
#[cfg(feature = "tls")]
mod tls;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_executor::LocalExecutor;
use botcall_core::jwt::{self, SigningKey};

pub(crate) use crate::attest::HumanAttestation;
pub use call::{Call, CallStats, OpusFrame};
pub use error::{BotError, EndReason};
pub use incoming::Incoming;

use crate::attest::HvPolicy;
use crate::client::MAX_CALLS;
use cmd::Cmd;
use net::DaemonUrl;
use presence::{Pending, Presence};

/// An ICE server the bot uses for its own candidates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServerConfig {
    /// `stun:host[:port]` for a server-reflexive candidate;
    /// `turn:host[:port][?transport=udp]` for a relayed one (needs
    /// `username` and `credential`; `turns:` and `?transport=tcp` are
    /// skipped with a warning: the SDK's TURN client speaks UDP only).
    pub urls: Vec<String>,
    /// TURN username (long-term credential; for coturn's REST scheme
    /// `expiry:user`, as the daemon hands out).
    pub username: Option<String>,
    /// TURN credential (password).
    pub credential: Option<String>,
}

impl IceServerConfig {
    /// A TURN server with long-term credentials.
    pub fn turn(
        url: impl Into<String>,
        username: impl Into<String>,
        credential: impl Into<String>,
    ) -> Self {
        IceServerConfig {
            urls: vec![url.into()],
            username: Some(username.into()),
            credential: Some(credential.into()),
        }
    }
}

/// Which local candidates a call offers (like `RTCIceTransportPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IcePolicy {
    /// Host, server-reflexive and relayed candidates (the default).
    #[default]
    All,
    /// Only TURN-relayed candidates: the bot's own addresses are never
    /// revealed to the caller and all media goes through the relay. A call
    /// without a usable `turn:` server is refused with a media error.
    Relay,
}

/// How to register and run a bot. Build with [`BotConfig::new`] and the
/// builder methods.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// The daemon's base URL, e.g. `http://127.0.0.1:8080`.
    pub daemon: String,
    /// The key that signs BotAuth tokens (ES256 or HS256).
    pub key: SigningKey,
    /// The agent id; `None`: the key's RFC 7638 thumbprint (open registration, ES256 only).
    pub agent_id: Option<String>,
    /// Display name (≤ 64 bytes).
    pub name: Option<String>,
    /// Where else the bot can be reached (free text, ≤ 256 bytes).
    pub endpoint: Option<String>,
    /// Whether to appear in `GET /agents`.
    pub listed: Option<bool>,
    /// Simultaneous calls (1..=4).
    pub max_calls: u8,
    /// Registration TTL in seconds (the daemon's default: 300).
    pub ttl: Option<u32>,
    /// BotAuth token lifetime in seconds (60..=600; a fresh one per connection).
    pub token_ttl: u64,
    /// `aud` for BotAuth tokens, if the daemon requires one.
    pub token_audience: Option<String>,
    /// Accepted human-check methods.
    pub policy: HvPolicy,
    /// Replaces the daemon's `ice_servers` for the bot's own candidates.
    pub ice_servers: Option<Vec<IceServerConfig>>,
    /// Added to the daemon's (or the replacement) list.
    pub extra_ice_servers: Vec<IceServerConfig>,
    /// Which local candidates calls offer ([`IcePolicy::All`] by default).
    pub ice_policy: IcePolicy,
    /// Seed for backoff jitter and WebSocket masks (`None`: from the OS).
    pub seed: Option<u64>,
    /// Limit for one connection attempt (JWKS + register + upgrade).
    pub connect_timeout: Duration,
    /// A connected call whose media stopped (ICE disconnected, or nothing
    /// from the caller: no RTP, RTCP or ICE consent) this long ends with
    /// [`EndReason::MediaLost`] and frees its slot at the daemon. 1–120 s,
    /// default [`DEFAULT_MEDIA_TIMEOUT`] (8 s: more than one ICE consent
    /// interval, RFC 7675, for a caller that sends no audio).
    pub media_timeout: Duration,
    /// A PEM file of CA certificates trusted for an `https://` daemon besides
    /// the webpki roots: the private CA that issued the daemon's certificate
    /// (feature `tls`; a plain self-signed `openssl req -x509` certificate is
    /// refused by rustls as a server certificate, see docs/sdk.md). Read at start (a bad file is a config error) and on
    /// every reconnect, so a replaced file is picked up.
    pub tls_ca_file: Option<PathBuf>,
}

impl BotConfig {
    /// A config for `daemon` with `key`; everything else at its default.
    pub fn new(daemon: impl Into<String>, key: SigningKey) -> Self {
        BotConfig {
            daemon: daemon.into(),
            key,
            agent_id: None,
            name: None,
            endpoint: None,
            listed: None,
            max_calls: 1,
            ttl: None,
            token_ttl: 300,
            token_audience: None,
            policy: HvPolicy::default(),
            ice_servers: None,
            extra_ice_servers: Vec::new(),
            ice_policy: IcePolicy::All,
            seed: None,
            connect_timeout: Duration::from_secs(10),
            media_timeout: DEFAULT_MEDIA_TIMEOUT,
            tls_ca_file: None,
        }
    }
    /// Sets the agent id.
    #[must_use]
    pub fn agent_id(mut self, id: impl Into<String>) -> Self {
        self.agent_id = Some(id.into());
        self
    }
    /// Sets the display name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Sets the endpoint text.
    #[must_use]
    pub fn endpoint(mut self, e: impl Into<String>) -> Self {
        self.endpoint = Some(e.into());
        self
    }
    /// Lists the bot in the directory (or not).
    #[must_use]
    pub fn listed(mut self, listed: bool) -> Self {
        self.listed = Some(listed);
        self
    }
    /// Simultaneous calls (clamped to 1..=4).
    #[must_use]
    pub fn max_calls(mut self, n: u8) -> Self {
        self.max_calls = n;
        self
    }
    /// Registration TTL in seconds.
    #[must_use]
    pub fn ttl(mut self, secs: u32) -> Self {
        self.ttl = Some(secs);
        self
    }
    /// Accepted human-check methods.
    #[must_use]
    pub fn policy(mut self, p: HvPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Replaces the daemon's ICE servers.
    #[must_use]
    pub fn ice_servers(mut self, list: Vec<IceServerConfig>) -> Self {
        self.ice_servers = Some(list);
        self
    }
    /// Adds an ICE server (e.g. TURN) to the list.
    #[must_use]
    pub fn add_ice_server(mut self, s: IceServerConfig) -> Self {
        self.extra_ice_servers.push(s);
        self
    }
    /// Which local candidates calls offer: [`IcePolicy::Relay`] for
    /// TURN-relayed candidates only.
    #[must_use]
    pub fn ice_policy(mut self, p: IcePolicy) -> Self {
        self.ice_policy = p;
        self
    }
    /// How long a connected call's media may stop before the call ends
    /// ([`EndReason::MediaLost`]; 1–120 s).
    #[must_use]
    pub fn media_timeout(mut self, d: Duration) -> Self {
        self.media_timeout = d;
        self
    }
    /// Also trusts the CA certificates in this PEM file (feature `tls`).
    #[must_use]
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }
    /// Fixes the seed (tests).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// Reads a signing key from a JWK file (`botcalld keygen` writes one).
///
/// # Errors
/// [`BotError::Io`] or [`BotError::Key`].
pub fn load_key(path: impl AsRef<Path>) -> Result<SigningKey, BotError> {
    let p = path.as_ref();
    let text =
        std::fs::read_to_string(p).map_err(|e| BotError::io(&p.display().to_string(), &e))?;
    SigningKey::from_jwk(text.trim()).map_err(BotError::Key)
}

/// What the bot's presence looks like now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotStatus {
    /// Whether the presence WebSocket is up (`welcome` received).
    pub online: bool,
    /// The agent id.
    pub agent_id: String,
    /// Connection attempts so far (the first included).
    pub connect_attempts: u32,
    /// Successful sessions (`welcome`s) so far.
    pub sessions: u32,
    /// Incoming calls refused before the application saw them.
    pub refused_calls: u32,
    /// The last problem seen (connection or daemon error), if any.
    pub last_error: Option<String>,
}

/// A registered bot. Calls arrive through [`Bot::accept_call`]; dropping
/// the bot (or [`Bot::shutdown`]) hangs up and goes offline.
#[derive(Debug)]
pub struct Bot {
    agent_id: String,
    status: Arc<Mutex<BotStatus>>,
    cmd: Sender<Cmd>,
    incoming: Receiver<Result<Pending, BotError>>,
    done: Receiver<()>,
}

/// [`BotConfig::media_timeout`] by default.
pub const DEFAULT_MEDIA_TIMEOUT: Duration = Duration::from_secs(8);

/// Calls and refusals queued for `accept_call`.
const INCOMING_QUEUE: usize = 8;

/// Registers the bot with the daemon and brings it online.
///
/// Fetches the daemon's JWKS, `POST /register`s with a fresh BotAuth token,
/// opens the presence WebSocket and says `hello`; returns once `welcome`
/// arrived. From then on a background thread keeps the bot online: after a
/// network loss or a daemon restart it reconnects with backoff (0.25–0.5 s
/// at first, doubling to 15–30 s) and registers again with a new token.
///
/// # Errors
/// The first attempt's failure: [`BotError::Config`], [`BotError::Key`],
/// [`BotError::Io`] (daemon unreachable), [`BotError::Http`] (e.g. 401, 403
/// `id_taken`), [`BotError::Refused`], [`BotError::Timeout`].
pub async fn register_with_discovery(cfg: BotConfig) -> Result<Bot, BotError> {
    let mut url = DaemonUrl::parse(&cfg.daemon)?;
    if let Some(ca) = &cfg.tls_ca_file {
        if !url.tls {
            return Err(BotError::Config(format!(
                "tls_ca_file is set but the daemon URL {:?} is not https://",
                cfg.daemon
            )));
        }
        // Fail now on a bad file, not on every reconnect.
        #[cfg(feature = "tls")]
        tls::roots_with(ca)?;
        url.tls_ca = Some(ca.clone());
    }
    let thumbprint = match &cfg.key {
        SigningKey::Es256(sk) => Some(jwt::thumbprint(sk.verifying_key()).to_string()),
        SigningKey::Hs256(_) => None,
    };
    let agent_id = match (&cfg.agent_id, &thumbprint) {
        (Some(id), _) => id.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => {
            return Err(BotError::Config(
                "an HS256 key needs an explicit agent id (open registration uses ES256 thumbprints)".into(),
            ));
        }
    };
    botcall_core::id::validate(&agent_id)
        .map_err(|e| BotError::Config(format!("agent id {agent_id:?}: {e}")))?;
    if !(Duration::from_secs(1)..=Duration::from_secs(120)).contains(&cfg.media_timeout) {
        return Err(BotError::Config(format!(
            "media_timeout must be 1..=120 s, not {:?}",
            cfg.media_timeout
        )));
    }
    if !(1..=MAX_CALLS as u8).contains(&cfg.max_calls) {
        return Err(BotError::Config(format!(
            "max_calls must be 1..={MAX_CALLS}"
        )));
    }
    if cfg
        .name
        .as_ref()
        .is_some_and(|n| n.len() > botcall_core::protocol::MAX_NAME_LEN)
        || cfg
            .endpoint
            .as_ref()
            .is_some_and(|e| e.len() > botcall_core::protocol::MAX_ENDPOINT_LEN)
    {
        return Err(BotError::Config(
            "name ≤ 64 bytes, endpoint ≤ 256 bytes".into(),
        ));
    }
    let embed_jwk = thumbprint.as_deref() == Some(agent_id.as_str());
    let seed = match cfg.seed {
        Some(s) => s,
        None => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b)
                .map_err(|e| BotError::Config(format!("no OS randomness: {e}")))?;
            u64::from_le_bytes(b)
        }
    };
    let status = Arc::new(Mutex::new(BotStatus {
        agent_id: agent_id.clone(),
        ..BotStatus::default()
    }));
    let (cmd_tx, cmd_rx) = async_channel::bounded(256);
    let (in_tx, in_rx) = async_channel::bounded(INCOMING_QUEUE);
    let (ready_tx, ready_rx) = async_channel::bounded(1);
    let (done_tx, done_rx) = async_channel::bounded::<()>(1);
    let thread_status = status.clone();
    let thread_cmd = cmd_tx.clone();
    let thread_agent = agent_id.clone();
    std::thread::Builder::new()
        .name("botcall-sdk".into())
        .spawn(move || {
            let _done = done_tx;
            let ex = Rc::new(LocalExecutor::new());
            let p = Presence::new(
                ex.clone(),
                cfg,
                url,
                thread_agent,
                embed_jwk,
                thread_status,
                in_tx,
                (thread_cmd, cmd_rx),
                ready_tx,
                seed,
            );
            async_io::block_on(ex.run(p.run()));
        })
        .map_err(|e| BotError::io("starting the SDK thread", &e))?;
    match ready_rx.recv().await {
        Ok(Ok(())) => Ok(Bot {
            agent_id,
            status,
            cmd: cmd_tx,
            incoming: in_rx,
            done: done_rx,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BotError::Closed),
    }
}

impl Bot {
    /// The agent id.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// Presence status and counters.
    pub fn status(&self) -> BotStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for the next call whose attestation verified (signature, time,
    /// audience, call id, the offer's DTLS fingerprint, `hv` policy), answers
    /// it and returns it. Media connects in the background.
    ///
    /// # Errors
    /// [`BotError::CallRefused`] for a call that was refused before the
    /// application saw it (a `reject` was sent; call `accept_call` again);
    /// [`BotError::Media`] if media could not be set up for an offer;
    /// [`BotError::Closed`] after shutdown.
    pub async fn accept_call(&self) -> Result<Call, BotError> {
        loop {
            let call = self.next_incoming().await?;
            match self.answer(call).await {
                // The caller hung up while the call waited: take the next one.
                Err(BotError::Ended(EndReason::RemoteGone)) => continue,
                r => return r,
            }
        }
    }

    /// Hangs up every call, closes the presence socket and waits (up to 2 s)
    /// for the background thread to finish.
    pub async fn shutdown(self) {
        let _ = self.cmd.send(Cmd::Shutdown).await;
        let _ = futures_lite::future::or(
            async {
                let _ = self.done.recv().await;
            },
            async {
                async_io::Timer::after(Duration::from_secs(2)).await;
            },
        )
        .await;
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.cmd.try_send(Cmd::Shutdown);
    }
}
