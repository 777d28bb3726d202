//! A TURN client (RFC 8656) as a sans-IO state machine: one allocation on a
//! TURN server over UDP, with long-term credentials (RFC 8489 §9.2), for
//! the bot's relayed ICE candidate.
//!
//! The client owns no socket and reads no clock. Its owner sends what
//! [`TurnClient::poll_transmit`] and [`TurnClient::send`] write to
//! [`TurnClient::server`], and hands every datagram that came *from* that
//! address to [`TurnClient::handle_input`]:
//!
//! ```text
//! turn.allocate(now);
//! loop {
//!     while let Some(n) = turn.poll_transmit(&mut buf)? { udp.send_to(&buf[..n], turn.server()) }
//!     while let Some(e) = turn.poll_event() { ... }      // Allocated { relayed, .. }, Failed(..), ...
//!     wait for a datagram or turn.poll_timeout();
//!     datagram from turn.server() => match turn.handle_input(now, bytes) {
//!         Ok(Incoming::Data { peer, data }) => the peer sent `data` to our relayed address,
//!         Ok(Incoming::Handled) | Err(_)    => nothing to deliver,
//!     }
//!     timeout => turn.handle_timeout(now),
//!     to send `data` to `peer` through the relay:
//!         turn.create_permission(now, peer.ip())   // once per peer IP (also done by `send`)
//!         let n = turn.send(peer, data, &mut buf)?; udp.send_to(&buf[..n], turn.server())
//! }
//! turn.close(now);  // Refresh with LIFETIME 0, then drain poll_transmit once more
//! ```
//!
//! What it does:
//! - **Allocate** with REQUESTED-TRANSPORT = UDP; the server's 401 brings
//!   REALM and NONCE; the request is repeated with USERNAME, REALM, NONCE and
//!   MESSAGE-INTEGRITY (HMAC-SHA1 keyed with `MD5(username:realm:password)`)
//!   and FINGERPRINT. The success response's XOR-RELAYED-ADDRESS,
//!   XOR-MAPPED-ADDRESS and LIFETIME become [`TurnEvent::Allocated`].
//!   Success responses to authenticated requests must carry a valid
//!   MESSAGE-INTEGRITY, or they are ignored.
//! - **438 Stale Nonce** (or a 401 naming a new NONCE): the new NONCE is
//!   taken and the request repeated (up to [`MAX_NONCE_RETRIES`] times in a
//!   row); a 401 to our credentials otherwise is [`TurnError::Unauthorized`].
//! - **Refresh** [`REFRESH_MARGIN_SECS`] before the allocation expires.
//! - **CreatePermission** for every peer IP the owner asks for (a
//!   fixed table of [`MAX_PERMISSIONS`]), refreshed every
//!   [`PERMISSION_REFRESH_MS`] (they last 300 s on the server).
//! - **Send/Data indications** wrap and unwrap the peer's datagrams
//!   (ChannelBind is not used).
//! - Requests are retransmitted over UDP from [`RTO_MS`], doubling up to
//!   [`MAX_RTO_MS`], [`MAX_TRANSMITS`] times in all (≈ 15.5 s); then the
//!   transaction fails with [`TurnError::Timeout`].
//!
//! Memory: fixed, under 3 KiB (`size_of::<TurnClient>()` is 2808 bytes:
//! `heapless` strings and tables), no allocator.
//! Bad input is an `Err` or ignored, never a panic.

use core::net::{IpAddr, SocketAddr};

use heapless::{Deque, String, Vec};

use crate::client::Rng;
use crate::stun::{self, Class, Message, MessageWriter, StunError, attr, method};
use crate::time::Instant;

/// Longest USERNAME (TURN REST usernames are `expiry:user`).
pub const MAX_USERNAME_LEN: usize = 128;
/// Longest password (credential).
pub const MAX_PASSWORD_LEN: usize = 128;
/// Longest REALM kept from the server.
pub const MAX_REALM_LEN: usize = 256;
/// Longest NONCE kept from the server.
pub const MAX_NONCE_LEN: usize = 256;
/// Peer IPs with a permission at once.
pub const MAX_PERMISSIONS: usize = 8;
/// Requests in flight at once (an Allocate or Refresh, and one
/// CreatePermission per permission).
pub const MAX_TRANSACTIONS: usize = MAX_PERMISSIONS + 2;
/// Events held until [`TurnClient::poll_event`]; more are dropped.
pub const EVENT_QUEUE_LEN: usize = 16;
/// A buffer this large always holds a control message from
/// [`TurnClient::poll_transmit`].
pub const MAX_CONTROL_LEN: usize = 20 // header
    + 24 // XOR-PEER-ADDRESS for IPv6 (or the shorter REQUESTED-TRANSPORT, LIFETIME)
    + 4 + MAX_USERNAME_LEN
    + 4 + MAX_REALM_LEN
    + 4 + MAX_NONCE_LEN
    + stun::INTEGRITY_LEN
    + stun::FINGERPRINT_LEN;
/// Bytes a Send indication adds to the datagram it carries (at most:
/// header, XOR-PEER-ADDRESS for IPv6, DATA header and padding).
pub const SEND_OVERHEAD: usize = 20 + 24 + 4 + 3;
/// First retransmission timeout.
pub const RTO_MS: u64 = 500;
/// Retransmission timeouts double up to this.
pub const MAX_RTO_MS: u64 = 3_000;
/// Transmissions of one request before it times out.
pub const MAX_TRANSMITS: u32 = 7;
/// 438 Stale Nonce answers accepted in a row for one request.
pub const MAX_NONCE_RETRIES: u8 = 3;
/// Permissions are refreshed this long after they were installed (they
/// last 300 s).
pub const PERMISSION_REFRESH_MS: u64 = 240_000;
/// The allocation is refreshed this long before it expires (or at half
/// its lifetime if that is shorter).
pub const REFRESH_MARGIN_SECS: u32 = 60;
/// Lifetime assumed when a success response has no LIFETIME.
pub const DEFAULT_LIFETIME_SECS: u32 = 600;

/// What went wrong with the allocation, a permission, or a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnError {
    /// A username, password, realm or nonce longer than the client keeps.
    TooLong,
    /// The output buffer is too small.
    BufferTooSmall,
    /// No response after [`MAX_TRANSMITS`] transmissions.
    Timeout,
    /// 401 to an authenticated request: wrong or expired credentials.
    Unauthorized,
    /// 438 Stale Nonce more than [`MAX_NONCE_RETRIES`] times in a row.
    StaleNonce,
    /// 403 Forbidden (e.g. a peer address the server refuses to relay to).
    Forbidden,
    /// 437 Allocation Mismatch (the allocation is gone, or another exists).
    AllocationMismatch,
    /// 440/443: address family not supported or not matching.
    WrongFamily,
    /// 442 Unsupported Transport Protocol.
    UnsupportedTransport,
    /// 486 Allocation Quota Reached.
    QuotaReached,
    /// 508 Insufficient Capacity.
    InsufficientCapacity,
    /// Another error code.
    Server(u16),
    /// Not a well-formed STUN/TURN message, or one that lacks a required
    /// attribute.
    Malformed,
    /// A success response whose MESSAGE-INTEGRITY is missing or wrong.
    BadIntegrity,
    /// A response to no request in flight (late, duplicate or forged).
    UnknownTransaction,
    /// There is no allocation (yet, or any more).
    NotAllocated,
    /// No permission for the peer yet: one has been requested; try again.
    NoPermission,
    /// The permission table is full.
    TableFull,
    /// The client was closed.
    Closed,
}

impl TurnError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            TurnError::TooLong => "too_long",
            TurnError::BufferTooSmall => "buffer_too_small",
            TurnError::Timeout => "timeout",
            TurnError::Unauthorized => "unauthorized",
            TurnError::StaleNonce => "stale_nonce",
            TurnError::Forbidden => "forbidden",
            TurnError::AllocationMismatch => "allocation_mismatch",
            TurnError::WrongFamily => "wrong_family",
            TurnError::UnsupportedTransport => "unsupported_transport",
            TurnError::QuotaReached => "quota_reached",
            TurnError::InsufficientCapacity => "insufficient_capacity",
            TurnError::Server(_) => "server_error",
            TurnError::Malformed => "malformed",
            TurnError::BadIntegrity => "bad_integrity",
            TurnError::UnknownTransaction => "unknown_transaction",
            TurnError::NotAllocated => "not_allocated",
            TurnError::NoPermission => "no_permission",
            TurnError::TableFull => "table_full",
            TurnError::Closed => "closed",
        }
    }

    /// The error for a STUN error code.
    pub fn from_code(code: u16) -> Self {
        match code {
            401 => TurnError::Unauthorized,
            403 => TurnError::Forbidden,
            437 => TurnError::AllocationMismatch,
            438 => TurnError::StaleNonce,
            440 | 443 => TurnError::WrongFamily,
            442 => TurnError::UnsupportedTransport,
            486 => TurnError::QuotaReached,
            508 => TurnError::InsufficientCapacity,
            c => TurnError::Server(c),
        }
    }
}

impl core::fmt::Display for TurnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TurnError::TooLong => f.write_str("TURN credentials, realm or nonce too long"),
            TurnError::BufferTooSmall => f.write_str("buffer too small for the TURN message"),
            TurnError::Timeout => f.write_str("the TURN server did not answer"),
            TurnError::Unauthorized => f.write_str("the TURN server refused the credentials"),
            TurnError::StaleNonce => f.write_str("the TURN server keeps answering stale nonce"),
            TurnError::Forbidden => f.write_str("the TURN server forbids this (403)"),
            TurnError::AllocationMismatch => f.write_str("TURN allocation mismatch (437)"),
            TurnError::WrongFamily => f.write_str("TURN address family not supported"),
            TurnError::UnsupportedTransport => f.write_str("TURN transport not supported"),
            TurnError::QuotaReached => f.write_str("TURN allocation quota reached"),
            TurnError::InsufficientCapacity => f.write_str("the TURN server is out of capacity"),
            TurnError::Server(c) => write!(f, "TURN error {c}"),
            TurnError::Malformed => f.write_str("malformed TURN message"),
            TurnError::BadIntegrity => f.write_str("TURN response fails its integrity check"),
            TurnError::UnknownTransaction => f.write_str("TURN response to no pending request"),
            TurnError::NotAllocated => f.write_str("no TURN allocation"),
            TurnError::NoPermission => f.write_str("TURN permission requested, not installed yet"),
            TurnError::TableFull => f.write_str("TURN permission table full"),
            TurnError::Closed => f.write_str("TURN client closed"),
        }
    }
}

impl From<StunError> for TurnError {
    fn from(e: StunError) -> Self {
        match e {
            StunError::BufferTooSmall => TurnError::BufferTooSmall,
            StunError::TooLong => TurnError::TooLong,
            // NotStun, NotOurs, NoAddress, and whatever else reads as bad input.
            _ => TurnError::Malformed,
        }
    }
}

/// Where the allocation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnState {
    /// Created; [`TurnClient::allocate`] not called yet.
    Idle,
    /// Allocate in flight (possibly the authenticated retry).
    Allocating,
    /// The relayed address is ours.
    Allocated,
    /// Deallocating ([`TurnClient::close`]).
    Closing,
    /// Done: closed, or failed with this error.
    Done(Option<TurnError>),
}

/// Something the owner should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEvent {
    /// The allocation succeeded.
    Allocated {
        /// The relayed transport address (the relay candidate).
        relayed: SocketAddr,
        /// Our address as the TURN server sees it (a reflexive candidate).
        mapped: Option<SocketAddr>,
        /// Seconds until it expires unless refreshed (the client refreshes).
        lifetime_secs: u32,
    },
    /// A Refresh succeeded.
    Refreshed {
        /// The new lifetime.
        lifetime_secs: u32,
    },
    /// A permission for this peer IP is installed.
    PermissionCreated(IpAddr),
    /// A permission could not be installed.
    PermissionFailed {
        /// The peer IP.
        ip: IpAddr,
        /// Why.
        error: TurnError,
    },
    /// The allocation failed or was lost; the client is done.
    Failed(TurnError),
    /// Deallocated after [`TurnClient::close`].
    Closed,
}

/// What a datagram from the TURN server was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A Data indication: `peer` sent `data` to our relayed address.
    Data {
        /// The peer (XOR-PEER-ADDRESS).
        peer: SocketAddr,
        /// The datagram.
        data: &'a [u8],
    },
    /// A response to one of our requests (see [`TurnClient::poll_event`]).
    Handled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Allocate,
    /// `None`: the server's default lifetime; `Some(0)`: deallocate.
    Refresh(Option<u32>),
    Permission(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Txn {
    id: [u8; 12],
    kind: Kind,
    authed: bool,
    /// Waiting to go out in `poll_transmit`.
    due: bool,
    transmits: u32,
    next_at: Instant,
    nonce_retries: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PermState {
    /// Waiting for the allocation, or for its next refresh.
    Idle,
    /// CreatePermission in flight, never installed yet.
    Pending,
    /// Installed; refreshed at `refresh_at`.
    Installed,
    Failed(TurnError),
}

#[derive(Debug, Clone, Copy)]
struct Permission {
    ip: IpAddr,
    state: PermState,
    refresh_at: Instant,
    in_flight: bool,
}

#[derive(Debug, Clone, Copy)]
struct Allocation {
    relayed: SocketAddr,
    mapped: Option<SocketAddr>,
    refresh_at: Instant,
}

/// One TURN allocation over UDP. See the [module docs](self).
#[derive(Debug)]
pub struct TurnClient {
    server: SocketAddr,
    username: String<MAX_USERNAME_LEN>,
    password: String<MAX_PASSWORD_LEN>,
    realm: String<MAX_REALM_LEN>,
    nonce: String<MAX_NONCE_LEN>,
    key: Option<[u8; 16]>,
    state: TurnState,
    alloc: Option<Allocation>,
    txns: Vec<Txn, MAX_TRANSACTIONS>,
    perms: Vec<Permission, MAX_PERMISSIONS>,
    events: Deque<TurnEvent, EVENT_QUEUE_LEN>,
    rng: Rng,
    now: Instant,
}

fn copy_str<const N: usize>(s: &str) -> Result<String<N>, TurnError> {
    let mut out = String::new();
    out.push_str(s).map_err(|_| TurnError::TooLong)?;
    Ok(out)
}

impl TurnClient {
    /// A client for the TURN server at `server` with long-term credentials
    /// (for coturn's REST scheme: `username` = `expiry:user`, `password` =
    /// base64(HMAC-SHA1(secret, username))). `seed` feeds the transaction
    /// ids: give each client its own random seed.
    ///
    /// # Errors
    /// [`TurnError::TooLong`] for credentials longer than
    /// [`MAX_USERNAME_LEN`] / [`MAX_PASSWORD_LEN`].
    pub fn new(
        server: SocketAddr,
        username: &str,
        password: &str,
        seed: u64,
    ) -> Result<Self, TurnError> {
        Ok(TurnClient {
            server,
            username: copy_str(username)?,
            password: copy_str(password)?,
            realm: String::new(),
            nonce: String::new(),
            key: None,
            state: TurnState::Idle,
            alloc: None,
            txns: Vec::new(),
            perms: Vec::new(),
            events: Deque::new(),
            rng: Rng::new(seed ^ 0x7475_726E_5EED_0001),
            now: Instant::ZERO,
        })
    }

    /// The TURN server: where every datagram from this client goes, and
    /// whose datagrams go to [`TurnClient::handle_input`].
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Where the allocation stands.
    pub fn state(&self) -> TurnState {
        self.state
    }

    /// The relayed address once allocated.
    pub fn relayed_addr(&self) -> Option<SocketAddr> {
        match self.state {
            TurnState::Allocated => self.alloc.map(|a| a.relayed),
            _ => None,
        }
    }

    /// Our address as the TURN server saw it, once allocated.
    pub fn mapped_addr(&self) -> Option<SocketAddr> {
        self.alloc.and_then(|a| a.mapped)
    }

    /// The realm the server named (empty before its first 401).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Whether a permission for `ip` is installed on the server.
    pub fn has_permission(&self, ip: IpAddr) -> bool {
        self.perms
            .iter()
            .any(|p| p.ip == ip && p.state == PermState::Installed)
    }

    fn tick(&mut self, now: Instant) {
        // Time that goes backwards is ignored.
        if now > self.now {
            self.now = now;
        }
    }

    fn new_txid(&mut self) -> [u8; 12] {
        let a = self.rng.next_u64().to_le_bytes();
        let b = self.rng.next_u64().to_le_bytes();
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&a);
        id[8..].copy_from_slice(&b[..4]);
        id
    }

    /// Starts a request of `kind` (a new transaction id), replacing any
    /// request of the same kind in flight.
    fn request(&mut self, kind: Kind, nonce_retries: u8) {
        self.txns.retain(|t| t.kind != kind);
        let id = self.new_txid();
        let txn = Txn {
            id,
            kind,
            authed: self.key.is_some(),
            due: true,
            transmits: 0,
            next_at: self.now,
            nonce_retries,
        };
        if self.txns.push(txn).is_err() {
            // Cannot happen: one Allocate/Refresh and one request per
            // permission at most. Fail the permission rather than panic.
            if let Kind::Permission(ip) = kind {
                self.fail_permission(ip, TurnError::TableFull);
            }
        }
    }

    fn event(&mut self, e: TurnEvent) {
        let _ = self.events.push_back(e);
    }

    fn fail(&mut self, e: TurnError) {
        self.txns.clear();
        self.alloc = None;
        self.state = TurnState::Done(Some(e));
        self.event(TurnEvent::Failed(e));
    }

    fn fail_permission(&mut self, ip: IpAddr, error: TurnError) {
        if let Some(p) = self.perms.iter_mut().find(|p| p.ip == ip) {
            p.state = PermState::Failed(error);
            p.in_flight = false;
        }
        self.event(TurnEvent::PermissionFailed { ip, error });
    }

    /// Starts the allocation (the first Allocate goes out with the next
    /// [`TurnClient::poll_transmit`]). Does nothing unless [`TurnState::Idle`].
    pub fn allocate(&mut self, now: Instant) {
        self.tick(now);
        if self.state == TurnState::Idle {
            self.state = TurnState::Allocating;
            self.request(Kind::Allocate, 0);
        }
    }

    /// Asks for a permission for `ip` (installed once allocated, refreshed
    /// while the client lives). Idempotent.
    ///
    /// # Errors
    /// [`TurnError::TableFull`] with [`MAX_PERMISSIONS`] peers already;
    /// [`TurnError::Closed`] after close or failure; a permission the server
    /// refused before gives its error.
    pub fn create_permission(&mut self, now: Instant, ip: IpAddr) -> Result<(), TurnError> {
        self.tick(now);
        if matches!(self.state, TurnState::Done(_) | TurnState::Closing) {
            return Err(TurnError::Closed);
        }
        if let Some(p) = self.perms.iter().find(|p| p.ip == ip) {
            return match p.state {
                PermState::Failed(e) => Err(e),
                _ => Ok(()),
            };
        }
        self.perms
            .push(Permission {
                ip,
                state: PermState::Idle,
                refresh_at: self.now,
                in_flight: false,
            })
            .map_err(|_| TurnError::TableFull)?;
        if self.state == TurnState::Allocated {
            self.start_permission(ip);
        }
        Ok(())
    }

    fn start_permission(&mut self, ip: IpAddr) {
        if let Some(p) = self.perms.iter_mut().find(|p| p.ip == ip) {
            p.in_flight = true;
            if p.state == PermState::Idle {
                p.state = PermState::Pending;
            }
            self.request(Kind::Permission(ip), 0);
        }
    }

    /// Wraps `data` for `peer` in a Send indication written to `out`; send
    /// `out[..n]` to [`TurnClient::server`]. Needs at most
    /// `data.len() + SEND_OVERHEAD` bytes.
    ///
    /// A peer without a permission gets one requested, and this datagram is
    /// refused with [`TurnError::NoPermission`] (ICE retransmits). While
    /// the permission is in flight datagrams are wrapped optimistically.
    ///
    /// # Errors
    /// [`TurnError::NotAllocated`], [`TurnError::NoPermission`],
    /// [`TurnError::WrongFamily`] (the relayed address is of the other IP
    /// family), [`TurnError::BufferTooSmall`], [`TurnError::TooLong`], or the
    /// error the server refused the permission with.
    pub fn send(
        &mut self,
        peer: SocketAddr,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize, TurnError> {
        let relayed = self.relayed_addr().ok_or(TurnError::NotAllocated)?;
        if relayed.is_ipv4() != peer.is_ipv4() {
            return Err(TurnError::WrongFamily);
        }
        match self
            .perms
            .iter()
            .find(|p| p.ip == peer.ip())
            .map(|p| p.state)
        {
            None => {
                let now = self.now;
                self.create_permission(now, peer.ip())?;
                return Err(TurnError::NoPermission);
            }
            Some(PermState::Failed(e)) => return Err(e),
            Some(_) => {}
        }
        let id = self.new_txid();
        let mut w = MessageWriter::new(out, method::SEND, Class::Indication, &id)?;
        w.xor_addr(attr::XOR_PEER_ADDRESS, peer)?;
        w.attr(attr::DATA, data)?;
        Ok(w.finish())
    }

    /// Deallocates: a Refresh with LIFETIME 0 goes out with the next
    /// [`TurnClient::poll_transmit`] (one transmission is enough; the
    /// allocation expires on its own otherwise). Before the allocation
    /// exists it just stops.
    pub fn close(&mut self, now: Instant) {
        self.tick(now);
        match self.state {
            TurnState::Allocated => {
                self.txns.clear();
                self.state = TurnState::Closing;
                self.request(Kind::Refresh(Some(0)), 0);
            }
            TurnState::Idle | TurnState::Allocating => {
                self.txns.clear();
                self.alloc = None;
                self.state = TurnState::Done(None);
                self.event(TurnEvent::Closed);
            }
            TurnState::Closing | TurnState::Done(_) => {}
        }
    }

    /// When [`TurnClient::handle_timeout`] wants to run next
    /// ([`Instant::NEVER`] when nothing is scheduled). A request waiting to
    /// go out makes it "now".
    pub fn poll_timeout(&self) -> Instant {
        let mut at = Instant::NEVER;
        for t in &self.txns {
            at = at.min(if t.due { self.now } else { t.next_at });
        }
        if self.state == TurnState::Allocated {
            if let Some(a) = &self.alloc
                && !self.txns.iter().any(|t| matches!(t.kind, Kind::Refresh(_)))
            {
                at = at.min(a.refresh_at);
            }
            for p in &self.perms {
                if !p.in_flight && matches!(p.state, PermState::Idle | PermState::Installed) {
                    at = at.min(p.refresh_at);
                }
            }
        }
        at
    }

    /// Advances time: retransmissions, timeouts, refreshes.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tick(now);
        let now = self.now;
        // Retransmit, or give up.
        let mut i = 0;
        while i < self.txns.len() {
            let t = self.txns[i];
            if t.due || now < t.next_at {
                i += 1;
                continue;
            }
            if t.transmits < MAX_TRANSMITS {
                self.txns[i].due = true;
                i += 1;
                continue;
            }
            self.txns.swap_remove(i);
            match t.kind {
                Kind::Allocate => self.fail(TurnError::Timeout),
                Kind::Refresh(Some(0)) => {
                    self.state = TurnState::Done(None);
                    self.alloc = None;
                    self.event(TurnEvent::Closed);
                }
                Kind::Refresh(_) => self.fail(TurnError::Timeout),
                Kind::Permission(ip) => self.fail_permission(ip, TurnError::Timeout),
            }
        }
        if self.state != TurnState::Allocated {
            return;
        }
        if let Some(a) = self.alloc
            && now >= a.refresh_at
            && !self.txns.iter().any(|t| matches!(t.kind, Kind::Refresh(_)))
        {
            self.request(Kind::Refresh(None), 0);
        }
        let mut due: Vec<IpAddr, MAX_PERMISSIONS> = Vec::new();
        for p in &self.perms {
            if !p.in_flight
                && matches!(p.state, PermState::Idle | PermState::Installed)
                && now >= p.refresh_at
            {
                let _ = due.push(p.ip);
            }
        }
        for ip in due {
            self.start_permission(ip);
        }
    }

    /// The next control message (Allocate, Refresh, CreatePermission) to
    /// send to [`TurnClient::server`], written to `out` (size it
    /// [`MAX_CONTROL_LEN`]). Drain until `Ok(None)`.
    ///
    /// # Errors
    /// [`TurnError::BufferTooSmall`] (nothing is consumed: call again with
    /// a larger buffer).
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<Option<usize>, TurnError> {
        let Some(i) = self.txns.iter().position(|t| t.due) else {
            return Ok(None);
        };
        let t = self.txns[i];
        let n = self.encode(&t, out)?;
        let rto = RTO_MS
            .saturating_mul(1u64 << t.transmits.min(16))
            .min(MAX_RTO_MS);
        let txn = &mut self.txns[i];
        txn.due = false;
        txn.transmits += 1;
        txn.next_at = self.now.add_millis(rto);
        Ok(Some(n))
    }

    fn encode(&self, t: &Txn, out: &mut [u8]) -> Result<usize, TurnError> {
        let m = match t.kind {
            Kind::Allocate => method::ALLOCATE,
            Kind::Refresh(_) => method::REFRESH,
            Kind::Permission(_) => method::CREATE_PERMISSION,
        };
        let mut w = MessageWriter::new(out, m, Class::Request, &t.id)?;
        match t.kind {
            // Protocol 17 (UDP), then RFFU.
            Kind::Allocate => w.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0])?,
            Kind::Refresh(Some(l)) => w.attr_u32(attr::LIFETIME, l)?,
            Kind::Refresh(None) => {}
            Kind::Permission(ip) => w.xor_addr(attr::XOR_PEER_ADDRESS, SocketAddr::new(ip, 0))?,
        }
        if let (true, Some(key)) = (t.authed, &self.key) {
            w.attr(attr::USERNAME, self.username.as_bytes())?;
            w.attr(attr::REALM, self.realm.as_bytes())?;
            w.attr(attr::NONCE, self.nonce.as_bytes())?;
            w.message_integrity(key)?;
        }
        w.fingerprint()?;
        Ok(w.finish())
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// A datagram that came from [`TurnClient::server`].
    ///
    /// # Errors
    /// [`TurnError::Malformed`] (not STUN, or a response without a required
    /// attribute), [`TurnError::UnknownTransaction`], [`TurnError::BadIntegrity`]
    /// (ignored: the request stays in flight), [`TurnError::NotAllocated`]
    /// (a Data indication without an allocation). Nothing changes for
    /// these.
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        buf: &'a [u8],
    ) -> Result<Incoming<'a>, TurnError> {
        self.tick(now);
        let m = Message::parse(buf).map_err(|_| TurnError::Malformed)?;
        if m.check_fingerprint() == Some(false) {
            return Err(TurnError::Malformed);
        }
        match m.class() {
            Class::Indication => {
                if m.method() != method::DATA {
                    return Err(TurnError::Malformed);
                }
                if self.state != TurnState::Allocated {
                    return Err(TurnError::NotAllocated);
                }
                let peer = m
                    .xor_addr(attr::XOR_PEER_ADDRESS)
                    .ok_or(TurnError::Malformed)?;
                let data = m.attr(attr::DATA).ok_or(TurnError::Malformed)?;
                Ok(Incoming::Data { peer, data })
            }
            Class::Request => Err(TurnError::Malformed),
            Class::Success | Class::Error => {
                let id = m.txid();
                let i = self
                    .txns
                    .iter()
                    .position(|t| t.id == id)
                    .ok_or(TurnError::UnknownTransaction)?;
                let t = self.txns[i];
                let want = match t.kind {
                    Kind::Allocate => method::ALLOCATE,
                    Kind::Refresh(_) => method::REFRESH,
                    Kind::Permission(_) => method::CREATE_PERMISSION,
                };
                if m.method() != want {
                    return Err(TurnError::UnknownTransaction);
                }
                if m.class() == Class::Success {
                    if t.authed {
                        let ok = self.key.is_some_and(|k| m.check_integrity(&k));
                        if !ok {
                            return Err(TurnError::BadIntegrity);
                        }
                    }
                    self.txns.swap_remove(i);
                    self.on_success(t, &m)?;
                } else {
                    // Error responses (401/438 carry no usable integrity)
                    // are taken as they are; a wrong MESSAGE-INTEGRITY on an
                    // authenticated one still marks a forgery.
                    if t.authed
                        && m.has_integrity()
                        && !self.key.is_some_and(|k| m.check_integrity(&k))
                    {
                        return Err(TurnError::BadIntegrity);
                    }
                    self.txns.swap_remove(i);
                    self.on_error(t, &m);
                }
                Ok(Incoming::Handled)
            }
        }
    }

    fn on_success(&mut self, t: Txn, m: &Message<'_>) -> Result<(), TurnError> {
        let now = self.now;
        match t.kind {
            Kind::Allocate => {
                if self.state != TurnState::Allocating {
                    return Ok(());
                }
                let Some(relayed) = m.xor_addr(attr::XOR_RELAYED_ADDRESS) else {
                    self.fail(TurnError::Malformed);
                    return Err(TurnError::Malformed);
                };
                let mapped = m.xor_addr(attr::XOR_MAPPED_ADDRESS);
                let lifetime = m.attr_u32(attr::LIFETIME).unwrap_or(DEFAULT_LIFETIME_SECS);
                self.alloc = Some(Allocation {
                    relayed,
                    mapped,
                    refresh_at: now.add_millis(refresh_delay_ms(lifetime)),
                });
                self.state = TurnState::Allocated;
                self.event(TurnEvent::Allocated {
                    relayed,
                    mapped,
                    lifetime_secs: lifetime,
                });
                // Permissions asked for while allocating.
                let mut wanted: Vec<IpAddr, MAX_PERMISSIONS> = Vec::new();
                for p in &self.perms {
                    if p.state == PermState::Idle && !p.in_flight {
                        let _ = wanted.push(p.ip);
                    }
                }
                for ip in wanted {
                    self.start_permission(ip);
                }
            }
            Kind::Refresh(Some(0)) => {
                self.alloc = None;
                self.state = TurnState::Done(None);
                self.event(TurnEvent::Closed);
            }
            Kind::Refresh(_) => {
                let lifetime = m.attr_u32(attr::LIFETIME).unwrap_or(DEFAULT_LIFETIME_SECS);
                if let Some(a) = self.alloc.as_mut() {
                    a.refresh_at = now.add_millis(refresh_delay_ms(lifetime));
                }
                self.event(TurnEvent::Refreshed {
                    lifetime_secs: lifetime,
                });
            }
            Kind::Permission(ip) => {
                if let Some(p) = self.perms.iter_mut().find(|p| p.ip == ip) {
                    let first = p.state != PermState::Installed;
                    p.state = PermState::Installed;
                    p.in_flight = false;
                    p.refresh_at = now.add_millis(PERMISSION_REFRESH_MS);
                    if first {
                        self.event(TurnEvent::PermissionCreated(ip));
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes REALM and NONCE from a 401/438 and derives the key.
    fn take_challenge(&mut self, m: &Message<'_>) -> Result<(), TurnError> {
        let nonce = m.attr_str(attr::NONCE).ok_or(TurnError::Malformed)?;
        let realm = match m.attr_str(attr::REALM) {
            Some(r) => r,
            None if !self.realm.is_empty() => self.realm.as_str(),
            None => return Err(TurnError::Malformed),
        };
        let realm: String<MAX_REALM_LEN> = copy_str(realm)?;
        self.nonce = copy_str(nonce)?;
        self.key = Some(stun::long_term_key(&self.username, &realm, &self.password));
        self.realm = realm;
        Ok(())
    }

    fn on_error(&mut self, t: Txn, m: &Message<'_>) {
        let code = m.error_code().unwrap_or(0);
        // A 401 to an authenticated request that names another nonce is a
        // stale nonce in disguise (some servers answer so): retried like
        // 438, boundedly.
        let new_nonce = m
            .attr_str(attr::NONCE)
            .is_some_and(|n| n != self.nonce.as_str());
        let retry = match code {
            // The first 401 is the challenge; one after our credentials is
            // a refusal.
            401 if !t.authed => self.take_challenge(m).map(|()| 0),
            401 if new_nonce && t.nonce_retries < MAX_NONCE_RETRIES => {
                self.take_challenge(m).map(|()| t.nonce_retries + 1)
            }
            438 if t.nonce_retries < MAX_NONCE_RETRIES => {
                self.take_challenge(m).map(|()| t.nonce_retries + 1)
            }
            438 => Err(TurnError::StaleNonce),
            0 => Err(TurnError::Malformed),
            c => Err(TurnError::from_code(c)),
        };
        match (retry, t.kind) {
            (Ok(n), kind) => self.request(kind, n),
            (Err(_), Kind::Refresh(Some(0))) => {
                self.alloc = None;
                self.state = TurnState::Done(None);
                self.event(TurnEvent::Closed);
            }
            (Err(e), Kind::Allocate | Kind::Refresh(_)) => self.fail(e),
            (Err(e), Kind::Permission(ip)) => self.fail_permission(ip, e),
        }
    }
}

/// When to refresh an allocation of `lifetime` seconds.
fn refresh_delay_ms(lifetime: u32) -> u64 {
    let secs = if lifetime > 2 * REFRESH_MARGIN_SECS {
        lifetime - REFRESH_MARGIN_SECS
    } else {
        lifetime / 2
    };
    u64::from(secs.max(1)) * 1000
}

#[cfg(test)]
mod tests;
