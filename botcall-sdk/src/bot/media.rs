//! The media task of one call: it drives a str0m [`Rtc`] (ICE, DTLS-SRTP,
//! Opus over RTP) on the SDK's background thread, between the call's UDP
//! socket, the application's [`Call`] handle and the presence task.
//!
//! Candidates: a host candidate on the call's UDP socket, a server-reflexive
//! one from the daemon's STUN responder, and a relayed one per usable
//! `turn:` server: a core [`TurnClient`] allocates on the same socket, and
//! str0m's transmits whose source is the relayed address go out as TURN Send
//! indications, while Data indications from the TURN server come back in
//! as datagrams from the peer to the relayed address.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError};
use async_io::{Async, Timer};
use futures_lite::future;
use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

use super::call::{Call, CallShared, MediaCmd, OpusFrame};
use super::cmd::Cmd;
use super::gather::{Gatherer, Liveness};
use super::ice_url::{stun_servers, turn_servers};
use super::{BotError, EndReason, HumanAttestation, IcePolicy, IceServerConfig};
use crate::client::Rng;
use crate::media::{FramePacer, JitterBuffer, MAX_FRAME_LEN};
use crate::turn::{self, Incoming, TurnClient, TurnEvent, TurnState};

/// Frames the application may queue ahead of the pacer (160 ms).
const AUDIO_QUEUE: usize = 8;
/// Received frames held for a slow application (1 s); more are dropped.
const RECEIVE_QUEUE: usize = 50;
/// Most outputs drained from str0m after a call ends (RTCP BYE, DTLS
/// close_notify), so the caller learns at once.
const CLOSE_DRAIN: usize = 32;
/// Largest datagram read or relayed.
const MAX_DATAGRAM: usize = 2000;

/// A TURN allocation of this call.
#[derive(Debug)]
struct Relay {
    client: TurnClient,
    /// The relayed address, while allocated.
    relayed: Option<SocketAddr>,
}

/// What the media task needs to start.
pub(crate) struct MediaSetup {
    pub(crate) call_id: String,
    pub(crate) caller: HumanAttestation,
    pub(crate) offer: String,
    /// The local IP the daemon is reached from (host candidate).
    pub(crate) local_ip: IpAddr,
    /// `stun:` servers for a server-reflexive candidate, `turn:` servers
    /// (with credentials) for relayed ones.
    pub(crate) ice_servers: Vec<IceServerConfig>,
    /// Which local candidates to offer.
    pub(crate) ice_policy: IcePolicy,
    /// How long connected media may stop before the call ends.
    pub(crate) media_timeout: Duration,
    pub(crate) sig: Sender<Cmd>,
    pub(crate) rng: Rng,
}

/// The running media side of a call.
pub(crate) struct Media {
    call_id: String,
    rtc: Rtc,
    sock: Async<UdpSocket>,
    local: SocketAddr,
    mid: Option<Mid>,
    pt: Option<Pt>,
    pacer: Option<FramePacer>,
    queue: VecDeque<Vec<u8>>,
    jitter: Box<JitterBuffer>,
    last_rx: Instant,
    /// Connect timeout and media lost (sans-IO).
    liveness: Liveness,
    base: Instant,
    /// STUN probes and end-of-candidates (sans-IO).
    gather: Gatherer,
    relays: Vec<Relay>,
    /// [`IcePolicy::Relay`]: no host/srflx candidates, no direct datagrams.
    relay_only: bool,
    /// Scratch for TURN messages (Send indications, requests).
    tbuf: Vec<u8>,
    frames_tx: Sender<OpusFrame>,
    audio_rx: Receiver<Vec<u8>>,
    ctl_rx: Receiver<MediaCmd>,
    sig: Sender<Cmd>,
    shared: Arc<CallShared>,
    rng: Rng,
    _done: Sender<()>,
}

/// What [`start`] hands back.
pub(crate) struct Started {
    /// The SDP answer.
    pub(crate) answer: String,
    /// The task to spawn.
    pub(crate) media: Media,
    /// The application's handle.
    pub(crate) call: Call,
    /// The presence task's way to reach the media task.
    pub(crate) ctl: Sender<MediaCmd>,
}

/// Sets up media for an offer.
pub(crate) fn start(setup: MediaSetup) -> Result<Started, BotError> {
    let MediaSetup {
        call_id,
        caller,
        offer,
        local_ip,
        ice_servers,
        ice_policy,
        media_timeout,
        sig,
        mut rng,
    } = setup;
    let relay_only = ice_policy == IcePolicy::Relay;
    let mut relays = Vec::new();
    for t in turn_servers(&ice_servers, local_ip.is_ipv6()) {
        match TurnClient::new(t.addr, &t.username, &t.credential, rng.next_u64()) {
            Ok(client) => relays.push(Relay {
                client,
                relayed: None,
            }),
            Err(e) => tracing::warn!(server = %t.addr, "skipping a TURN server: {e}"),
        }
    }
    for r in &mut relays {
        // The media task's clock starts at 0 (`Media::ms`).
        r.client.allocate(crate::Instant(0));
    }
    if relay_only && relays.is_empty() {
        return Err(BotError::Media(
            "ICE policy is relay-only but there is no usable turn: server (UDP, with credentials)"
                .into(),
        ));
    }
    let bind: SocketAddr = if local_ip.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(|e| BotError::io("binding UDP", &e))?;
    let port = sock
        .local_addr()
        .map_err(|e| BotError::io("UDP local address", &e))?
        .port();
    let sock = Async::new(sock).map_err(|e| BotError::io("UDP socket", &e))?;
    let local = SocketAddr::new(local_ip, port);
    let now = Instant::now();
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .build(now);
    if !relay_only {
        let host = Candidate::host(local, "udp")
            .map_err(|e| BotError::Media(format!("host candidate {local}: {e}")))?;
        rtc.add_local_candidate(host);
    }
    let offer =
        SdpOffer::from_sdp_string(&offer).map_err(|e| BotError::Media(format!("offer: {e}")))?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| BotError::Media(format!("offer: {e}")))?;
    let stun_list = if relay_only {
        Vec::new()
    } else {
        stun_servers(&ice_servers, local_ip.is_ipv6())
    };
    let gather = Gatherer::new(stun_list, &mut rng, now);
    let (audio_tx, audio_rx) = async_channel::bounded(AUDIO_QUEUE);
    let (frames_tx, frames_rx) = async_channel::bounded(RECEIVE_QUEUE);
    let (ctl_tx, ctl_rx) = async_channel::bounded(64);
    let (done_tx, done_rx) = async_channel::bounded(1);
    let shared = Arc::new(CallShared::default());
    let call = Call {
        id: call_id.clone(),
        caller,
        audio_tx,
        frames: frames_rx,
        ctl: ctl_tx.clone(),
        shared: shared.clone(),
        done: done_rx,
    };
    let media = Media {
        call_id,
        rtc,
        sock,
        local,
        mid: None,
        pt: None,
        pacer: None,
        queue: VecDeque::with_capacity(3),
        jitter: Box::new(JitterBuffer::new(3)),
        last_rx: now,
        liveness: Liveness::new(media_timeout, now),
        base: now,
        gather,
        relays,
        relay_only,
        tbuf: vec![0u8; (MAX_DATAGRAM + turn::SEND_OVERHEAD).max(turn::MAX_CONTROL_LEN)],
        frames_tx,
        audio_rx,
        ctl_rx,
        sig,
        shared,
        rng,
        _done: done_tx,
    };
    Ok(Started {
        answer: answer.to_sdp_string(),
        media,
        call,
        ctl: ctl_tx,
    })
}

enum Wake {
    Udp(usize, SocketAddr),
    UdpError,
    Ctl(MediaCmd),
    Audio(Vec<u8>),
    Tick,
}

impl Media {
    fn ms(&self, t: Instant) -> crate::Instant {
        crate::Instant(t.saturating_duration_since(self.base).as_millis() as u64)
    }

    /// Ends the call with `r` (the first reason wins); tells the daemon
    /// unless it ended there (`tell: None`). `Some(true)`: the caller's DTLS
    /// close ended it.
    fn end_with(&mut self, r: EndReason, tell: Option<bool>) {
        if self.shared.end_reason().is_some() {
            return;
        }
        if let Some(reason) = tell.and_then(|media_closed| r.hangup_reason(media_closed)) {
            let _ = self.sig.try_send(Cmd::Hangup {
                call_id: self.call_id.clone(),
                reason,
            });
        }
        tracing::debug!(call = %self.call_id, "call ended: {r}");
        self.shared.set_end(r);
    }

    fn end(&mut self, r: EndReason) {
        self.end_with(r, Some(false));
    }

    /// After the end: sends what str0m has for the caller (RTCP BYE, DTLS
    /// close_notify), bounded.
    async fn close_media(&mut self) {
        if self.rtc.is_alive() {
            let _ = self.rtc.close();
        }
        for _ in 0..CLOSE_DRAIN {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    self.transmit(&t.contents, t.source, t.destination).await;
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
        self.rtc.disconnect();
    }

    fn on_event(&mut self, e: Event, now: Instant) {
        match e {
            Event::Connected => {
                self.shared.connected.store(true, Ordering::Relaxed);
                self.liveness.on_connected(now);
                let base = self.rng.next_u64() as u32;
                self.pacer = Some(FramePacer::new(self.ms(now), base));
            }
            Event::MediaAdded(m) => {
                self.mid = Some(m.mid);
                self.pt = self.rtc.writer(m.mid).and_then(|w| {
                    w.payload_params()
                        .find(|p| p.spec().codec == Codec::Opus)
                        .map(|p| p.pt())
                });
            }
            Event::MediaData(d) => {
                self.last_rx = now;
                let seq: u64 = **d.seq_range.start();
                let ts = d.time.numer() as u32;
                self.jitter.push(seq, ts, &d.data);
                self.deliver();
            }
            Event::IceConnectionStateChange(s) => match s {
                IceConnectionState::Disconnected => self.liveness.on_ice_disconnected(true, now),
                IceConnectionState::Connected | IceConnectionState::Completed => {
                    self.liveness.on_ice_disconnected(false, now)
                }
                _ => {}
            },
            // The caller closed its peer connection (DTLS close_notify).
            Event::Closed => {
                self.end_with(EndReason::RemoteHangup("dtls_close".into()), Some(true))
            }
            _ => {}
        }
    }

    fn deliver(&mut self) {
        while let Some(f) = self.jitter.pop() {
            let frame = OpusFrame {
                data: f.data.to_vec(),
                rtp_timestamp: f.timestamp,
                seq: f.seq,
            };
            match self.frames_tx.try_send(frame) {
                Ok(()) => {
                    self.shared.rx_frames.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) => {
                    self.shared.rx_dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Closed(_)) => {}
            }
        }
        let st = self.jitter.stats();
        self.shared.rx_lost.store(st.lost, Ordering::Relaxed);
        self.shared
            .rx_late
            .store(st.late + st.duplicates, Ordering::Relaxed);
    }

    /// The next frame to write, if one is due and queued.
    fn frame_due(&mut self, now: Instant) -> Option<(u64, Vec<u8>)> {
        if self.queue.is_empty() || self.mid.is_none() || self.pt.is_none() {
            return None;
        }
        let t = self.ms(now);
        let pacer = self.pacer.as_mut()?;
        let slot = pacer.poll(t)?;
        self.shared
            .tx_skipped
            .store(pacer.skipped(), Ordering::Relaxed);
        let frame = self.queue.pop_front()?;
        Some((slot.media_time, frame))
    }

    fn send_due(&self) -> Option<Instant> {
        if self.queue.is_empty() || self.pt.is_none() {
            return None;
        }
        let p = self.pacer.as_ref()?;
        Some(self.base + Duration::from_millis(p.next_due().0))
    }

    async fn send_probes(&mut self, now: Instant) {
        while let Some((server, req)) = self.gather.poll_transmit(now) {
            let _ = self.sock.send_to(&req, server).await;
        }
    }

    /// A TURN allocation is still being made (end-of-candidates waits).
    fn relays_pending(&self) -> bool {
        self.relays
            .iter()
            .any(|r| matches!(r.client.state(), TurnState::Idle | TurnState::Allocating))
    }

    fn maybe_end_of_candidates(&mut self, now: Instant) {
        let pending = self.relays_pending();
        if self.gather.poll_end_of_candidates(now, pending) {
            let _ = self.sig.try_send(Cmd::LocalCandidate {
                call_id: self.call_id.clone(),
                candidate: None,
                mid: None,
            });
        }
    }

    /// Adds a local candidate to str0m and trickles it.
    fn add_local(&mut self, c: Result<Candidate, str0m::error::IceError>) {
        if let Ok(c) = c
            && let Some(c) = self.rtc.add_local_candidate(c)
        {
            let _ = self.sig.try_send(Cmd::LocalCandidate {
                call_id: self.call_id.clone(),
                candidate: Some(c.to_sdp_string()),
                mid: self.mid.map(|m| m.to_string()),
            });
        }
    }

    /// Sends one of str0m's datagrams: through the TURN relay when its
    /// source is a relayed address, else straight from the socket.
    async fn transmit(&mut self, data: &[u8], source: SocketAddr, destination: SocketAddr) {
        if let Some(r) = self.relays.iter_mut().find(|r| r.relayed == Some(source)) {
            // `NoPermission`: one is on its way now, and ICE retransmits.
            // Otherwise (the allocation is gone, the peer refused) the
            // datagram is dropped.
            if let Ok(n) = r.client.send(destination, data, &mut self.tbuf) {
                let _ = self.sock.send_to(&self.tbuf[..n], r.client.server()).await;
                self.shared.relay_tx.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if self.relay_only {
            return;
        }
        let _ = self.sock.send_to(data, destination).await;
        self.shared.direct_tx.fetch_add(1, Ordering::Relaxed);
    }

    /// Drives the TURN clients: timers, requests out, events in. Returns
    /// whether str0m was changed (a new local candidate).
    async fn service_relays(&mut self, now: Instant) -> bool {
        let t = self.ms(now);
        let mut changed = false;
        for i in 0..self.relays.len() {
            let r = &mut self.relays[i];
            if r.client.poll_timeout() <= t {
                r.client.handle_timeout(t);
            }
            while let Ok(Some(n)) = r.client.poll_transmit(&mut self.tbuf) {
                let _ = self.sock.send_to(&self.tbuf[..n], r.client.server()).await;
            }
            while let Some(e) = self.relays[i].client.poll_event() {
                changed |= self.on_turn_event(i, e);
            }
        }
        changed
    }

    fn on_turn_event(&mut self, i: usize, e: TurnEvent) -> bool {
        let server = self.relays[i].client.server();
        match e {
            TurnEvent::Allocated {
                relayed, mapped, ..
            } => {
                self.relays[i].relayed = Some(relayed);
                if let Ok(mut a) = self.shared.relay_addr.lock() {
                    a.get_or_insert(relayed);
                }
                self.add_local(Candidate::relayed(relayed, self.local, "udp"));
                if !self.relay_only
                    && let Some(m) = mapped
                {
                    self.add_local(Candidate::server_reflexive(m, self.local, "udp"));
                }
                true
            }
            TurnEvent::Failed(e) => {
                self.relays[i].relayed = None;
                tracing::warn!(server = %server, call = %self.call_id, "TURN allocation failed: {e}");
                // Relay-only without any relay left: nothing can connect.
                if self.relay_only
                    && self
                        .relays
                        .iter()
                        .all(|r| matches!(r.client.state(), TurnState::Done(_)))
                {
                    self.end(EndReason::Error(format!(
                        "relay-only call without a relay: {e}"
                    )));
                }
                false
            }
            TurnEvent::PermissionFailed { ip, error } => {
                tracing::warn!(server = %server, peer = %ip, "TURN permission refused: {error}");
                false
            }
            TurnEvent::Refreshed { .. } | TurnEvent::PermissionCreated(_) | TurnEvent::Closed => {
                false
            }
        }
    }

    /// A datagram from a TURN server: a Data indication goes to str0m as
    /// the peer's datagram to the relayed address. `false` if it is not for
    /// a TURN client (another address, or e.g. the answer to a STUN probe
    /// sent to the same server).
    fn on_relay_datagram(&mut self, data: &[u8], from: SocketAddr) -> bool {
        let Some(i) = self.relays.iter().position(|r| r.client.server() == from) else {
            return false;
        };
        let now = Instant::now();
        let t = self.ms(now);
        let relayed = self.relays[i].relayed;
        match self.relays[i].client.handle_input(t, data) {
            Ok(Incoming::Data { peer, data }) => {
                if let Some(relayed) = relayed
                    && let Ok(r) = Receive::new(Protocol::Udp, peer, relayed, data)
                {
                    self.shared.relay_rx.fetch_add(1, Ordering::Relaxed);
                    if self.rtc.handle_input(Input::Receive(now, r)).is_ok() {
                        self.liveness.on_heard(now);
                    }
                }
                true
            }
            Ok(Incoming::Handled) => true,
            Err(_) => false,
        }
    }

    /// The earliest TURN timer.
    fn relay_due(&self) -> Option<Instant> {
        self.relays
            .iter()
            .map(|r| r.client.poll_timeout())
            .filter(|t| *t != crate::Instant::NEVER)
            .min()
            .map(|t| self.base + Duration::from_millis(t.0))
    }

    /// Best effort: deallocates (one Refresh with LIFETIME 0 each).
    async fn close_relays(&mut self) {
        let t = self.ms(Instant::now());
        for r in self.relays.iter_mut() {
            if r.relayed.is_none() {
                continue;
            }
            r.client.close(t);
            while let Ok(Some(n)) = r.client.poll_transmit(&mut self.tbuf) {
                let _ = self.sock.send_to(&self.tbuf[..n], r.client.server()).await;
            }
        }
    }

    /// A datagram that answers one of our STUN probes.
    fn on_stun_answer(&mut self, buf: &[u8], from: SocketAddr) -> bool {
        let Some(mapped) = self.gather.handle_datagram(buf, from, Instant::now()) else {
            return false;
        };
        self.add_local(Candidate::server_reflexive(mapped, self.local, "udp"));
        true
    }

    /// Runs the call until it ends.
    pub(crate) async fn run(mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            // Drain str0m to its next timeout (the single-mutation rule).
            let rtc_deadline = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        self.transmit(&t.contents, t.source, t.destination).await;
                    }
                    Ok(Output::Event(e)) => self.on_event(e, Instant::now()),
                    Err(e) => {
                        self.end(EndReason::Error(e.to_string()));
                        break Instant::now();
                    }
                }
            };
            if !self.rtc.is_alive() || self.shared.end_reason().is_some() {
                break;
            }
            let now = Instant::now();
            // One mutation per turn, then drain again.
            if now >= rtc_deadline {
                let _ = self.rtc.handle_input(Input::Timeout(now));
                continue;
            }
            if let Some((media_time, frame)) = self.frame_due(now) {
                if let (Some(mid), Some(pt)) = (self.mid, self.pt)
                    && let Some(w) = self.rtc.writer(mid)
                {
                    let t = MediaTime::new(media_time, Frequency::FORTY_EIGHT_KHZ);
                    if w.write(pt, now, t, frame).is_ok() {
                        self.shared.tx_frames.fetch_add(1, Ordering::Relaxed);
                    }
                }
                continue;
            }
            self.send_probes(now).await;
            if self.service_relays(now).await {
                continue;
            }
            self.maybe_end_of_candidates(now);
            if let Some(r) = self.liveness.check(now) {
                self.end(r);
                continue;
            }
            // A gap that no newer packet resolves: give up on it after 60 ms.
            if !self.jitter.is_empty()
                && now.duration_since(self.last_rx) > Duration::from_millis(60)
            {
                self.jitter.skip_gap();
                self.deliver();
            }
            let mut deadline = rtc_deadline.min(now + Duration::from_secs(1));
            for t in [
                self.send_due(),
                self.gather.poll_timeout(),
                self.gather.end_of_candidates_due(self.relays_pending()),
                self.relay_due(),
                self.liveness.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            {
                deadline = deadline.min(t);
            }
            let wake = {
                let sock = &self.sock;
                let buf = &mut buf;
                let udp = async move {
                    match sock.recv_from(buf).await {
                        Ok((n, from)) => Wake::Udp(n, from),
                        Err(_) => Wake::UdpError,
                    }
                };
                let ctl = async {
                    match self.ctl_rx.recv().await {
                        Ok(c) => Wake::Ctl(c),
                        Err(_) => Wake::Ctl(MediaCmd::Hangup),
                    }
                };
                let room = self.queue.len() < 3;
                let audio = async {
                    if room && let Ok(f) = self.audio_rx.recv().await {
                        return Wake::Audio(f);
                    }
                    future::pending::<Wake>().await
                };
                let tick = async {
                    Timer::at(deadline).await;
                    Wake::Tick
                };
                future::or(udp, future::or(ctl, future::or(audio, tick))).await
            };
            match wake {
                Wake::Udp(n, from) => {
                    let Some(data) = buf.get(..n) else { continue };
                    if self.on_relay_datagram(data, from) || self.on_stun_answer(data, from) {
                        continue;
                    }
                    // Relay-only: nothing reaches str0m but through the relay.
                    if self.relay_only {
                        continue;
                    }
                    if let Ok(r) = Receive::new(Protocol::Udp, from, self.local, data) {
                        self.shared.direct_rx.fetch_add(1, Ordering::Relaxed);
                        let now = Instant::now();
                        if self.rtc.handle_input(Input::Receive(now, r)).is_ok() {
                            self.liveness.on_heard(now);
                        }
                    }
                }
                Wake::UdpError => {
                    // ICMP errors surface here on some systems; keep going.
                    Timer::after(Duration::from_millis(5)).await;
                }
                Wake::Ctl(MediaCmd::Candidate(s)) => {
                    if let Ok(c) = Candidate::from_sdp_string(&s) {
                        // The relay must let this peer's datagrams through.
                        let t = self.ms(Instant::now());
                        for r in self.relays.iter_mut() {
                            let _ = r.client.create_permission(t, c.addr().ip());
                        }
                        self.rtc.add_remote_candidate(c);
                    }
                }
                // The daemon (or the SDK's signaling side) knows already.
                Wake::Ctl(MediaCmd::Ended(r)) => self.end_with(r, None),
                Wake::Ctl(MediaCmd::Hangup) => self.end(EndReason::Local),
                Wake::Ctl(MediaCmd::ClearAudio) => {
                    self.queue.clear();
                    while self.audio_rx.try_recv().is_ok() {}
                }
                Wake::Audio(f) => {
                    if f.len() <= MAX_FRAME_LEN {
                        self.queue.push_back(f);
                    }
                }
                Wake::Tick => {}
            }
        }
        if self.shared.end_reason().is_none() {
            // str0m stopped by itself: say so rather than leave no reason.
            self.end(EndReason::Error("the media stack stopped".into()));
        }
        self.close_media().await;
        self.close_relays().await;
        self.shared.connected.store(false, Ordering::Relaxed);
        // Frames already received stay readable; the channels close as
        // `self` drops, which ends `receive_audio_opus` and `ended`.
    }
}
