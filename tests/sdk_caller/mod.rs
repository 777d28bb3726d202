//! A Rust WebRTC caller for the SDK tests: a str0m peer that talks to
//! `botcalld` over a tungstenite WebSocket like the PWA does, offers audio,
//! trickles its candidate, sends a 440 Hz tone at 0.5 and decodes what it
//! hears; and [`bot_talk`], the bot side of such a call. Shared by
//! `sdk_call.rs`, `sdk_turn.rs` and `sdk_footprint.rs` (`mod sdk_caller;`).
#![allow(dead_code)]

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use botcall_core::answer_sig::{self, AnswerSigError};
use botcall_core::jwt::Key;
use botcall_sdk::codec::{OpusDecoder, OpusEncoder, Tone, rms};
use botcall_sdk::{Bot, BotConfig, BotError, Call, EndReason, register_with_discovery};
use futures_lite::future;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::common::{Daemon, Ws, caller, send};

/// A caller: a str0m peer that offers audio, trickles its candidate over the
/// daemon's socket, sends a 440 Hz tone at 0.5 and decodes what comes back.
pub struct Caller {
    pub ws: Ws,
    pub rtc: Rtc,
    pub sock: UdpSocket,
    pub local: SocketAddr,
    pub pending: Option<SdpPendingOffer>,
    pub offer_sdp: String,
    pub call_id: Option<String>,
    pub mid: Mid,
    pub pt: Option<Pt>,
    pub connected_at: Option<Instant>,
    pub next_send: Instant,
    pub sent: u64,
    pub enc: OpusEncoder,
    pub dec: OpusDecoder,
    pub tone: Tone,
    pub rx_frames: usize,
    pub pcm: Vec<f32>,
    pub hangup: Option<String>,
    pub bot_candidates: usize,
    pub end_of_candidates: bool,
    /// The bot's trickled candidates (`candidate:…` lines), in order.
    pub bot_candidate_lines: Vec<String>,
    /// Every address a datagram came from on the media socket.
    pub rx_sources: std::collections::BTreeSet<SocketAddr>,
    /// Check the answer's `answer_sig` as a caller should: (agent id, the
    /// bot's key if known). `None`: apply any answer (the other tests).
    pub answer_check: Option<(String, Option<Key>)>,
    /// The check's verdict on the answer; an `Err` answer is not applied,
    /// so no media can flow.
    pub answer_verdict: Option<Result<Option<answer_sig::Trust>, AnswerSigError>>,
}

impl Caller {
    pub fn new(d: &Daemon) -> Self {
        let (ws, welcome) = caller(d);
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws.get_ref().set_nonblocking(true).unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = sock.local_addr().unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        Caller {
            ws,
            rtc,
            sock,
            local,
            pending: Some(pending),
            offer_sdp: offer.to_sdp_string(),
            call_id: None,
            mid,
            pt: None,
            connected_at: None,
            next_send: Instant::now(),
            sent: 0,
            enc: OpusEncoder::new(1).unwrap(),
            dec: OpusDecoder::new(1).unwrap(),
            tone: Tone::new(440.0, 0.5),
            rx_frames: 0,
            pcm: Vec::new(),
            hangup: None,
            bot_candidates: 0,
            end_of_candidates: false,
            bot_candidate_lines: Vec::new(),
            rx_sources: std::collections::BTreeSet::new(),
            answer_check: None,
            answer_verdict: None,
        }
    }

    /// Sends a message (blocking for the write; reads stay non-blocking).
    pub fn send(&mut self, v: serde_json::Value) {
        self.ws.get_ref().set_nonblocking(false).unwrap();
        send(&mut self.ws, v);
        self.ws.get_ref().set_nonblocking(true).unwrap();
    }

    /// Places the call; the offer has no candidates: ours is trickled.
    pub fn call(&mut self, to: &str) -> String {
        let offer = self.offer_sdp.clone();
        self.send(serde_json::json!({"type": "call", "to": to, "sdp_offer": offer}));
        let ringing = self.recv_msg(Duration::from_secs(60));
        assert_eq!(ringing["type"], "ringing", "{ringing}");
        let call_id = ringing["call_id"].as_str().unwrap().to_string();
        let host = Candidate::host(self.local, "udp").unwrap();
        let cand = self.rtc.add_local_candidate(host).unwrap().to_sdp_string();
        self.send(serde_json::json!({"type": "ice", "call_id": call_id,
            "candidate": {"candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0}}));
        self.call_id = Some(call_id.clone());
        call_id
    }

    pub fn recv_msg(&mut self, within: Duration) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            if let Some(v) = self.poll_ws() {
                return v;
            }
            assert!(t0.elapsed() < within, "no signaling message in {within:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn poll_ws(&mut self) -> Option<serde_json::Value> {
        match self.ws.read() {
            Ok(tungstenite::Message::Text(t)) => Some(serde_json::from_str(&t).unwrap()),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("caller websocket: {e}"),
        }
    }

    pub fn on_signal(&mut self, v: serde_json::Value) {
        match v["type"].as_str() {
            Some("answer") => {
                let sdp = v["sdp_answer"].as_str().unwrap();
                if let Some((agent, key)) = &self.answer_check {
                    let verdict = answer_sig::check(
                        v["answer_sig"].as_str(),
                        &answer_sig::Expect {
                            agent_id: agent,
                            call_id: self.call_id.as_deref().unwrap_or(""),
                            offer_sdp: &self.offer_sdp,
                            answer_sdp: sdp,
                            key: match key {
                                Some(Key::Es256(vk)) => Some(vk),
                                _ => None,
                            },
                        },
                        super::common::now(),
                    )
                    .map(|v| v.map(|v| v.trust));
                    let refused = verdict.is_err();
                    self.answer_verdict = Some(verdict);
                    if refused {
                        // As the PWA: tell the bot, never apply the answer.
                        self.hang_up("error");
                        return;
                    }
                }
                let answer = SdpAnswer::from_sdp_string(sdp).unwrap();
                let pending = self.pending.take().expect("one answer");
                self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
            }
            Some("ice") => match v["candidate"]
                .as_object()
                .and_then(|o| o["candidate"].as_str())
            {
                Some(c) => {
                    self.bot_candidates += 1;
                    self.bot_candidate_lines.push(c.to_string());
                    self.rtc
                        .add_remote_candidate(Candidate::from_sdp_string(c).unwrap());
                }
                None => self.end_of_candidates = true,
            },
            Some("hangup") => self.hangup = Some(v["reason"].as_str().unwrap_or("").to_string()),
            _ => panic!("caller got {v}"),
        }
    }

    /// Media has been connected for at least `d`.
    pub fn connected_for(&self, d: Duration) -> bool {
        self.connected_at.is_some_and(|t| t.elapsed() > d)
    }

    /// Runs the media loop until `stop` says so or `within` passes.
    pub fn run(&mut self, within: Duration, mut stop: impl FnMut(&Caller) -> bool) {
        let t0 = Instant::now();
        let mut buf = vec![0u8; 2000];
        loop {
            let deadline = loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Timeout(t) => break t,
                    Output::Transmit(t) => {
                        self.sock.send_to(&t.contents, t.destination).unwrap();
                    }
                    Output::Event(Event::Connected) => {
                        self.connected_at = Some(Instant::now());
                        self.next_send = Instant::now();
                        self.pt = self.rtc.writer(self.mid).and_then(|w| {
                            w.payload_params()
                                .find(|p| p.spec().codec == Codec::Opus)
                                .map(|p| p.pt())
                        });
                    }
                    Output::Event(Event::MediaData(m)) => {
                        self.rx_frames += 1;
                        self.pcm
                            .extend_from_slice(self.dec.decode(&m.data).unwrap());
                    }
                    Output::Event(_) => {}
                }
            };
            if stop(self) || t0.elapsed() > within {
                return;
            }
            if let Some(v) = self.poll_ws() {
                self.on_signal(v);
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                self.rtc.handle_input(Input::Timeout(now)).unwrap();
                continue;
            }
            if let (Some(_), Some(pt)) = (self.connected_at, self.pt)
                && now >= self.next_send
            {
                self.next_send += Duration::from_millis(20);
                // The bot's DTLS close may arrive before its relayed hangup:
                // then there is no writer any more, and nothing to send.
                let Some(writer) = self.rtc.writer(self.mid) else {
                    continue;
                };
                let pkt = self.enc.encode(&self.tone.next_frame()).unwrap();
                let t = MediaTime::new(self.sent * 960, Frequency::FORTY_EIGHT_KHZ);
                writer.write(pt, now, t, pkt).unwrap();
                self.sent += 1;
                continue;
            }
            let mut wait = deadline.min(now + Duration::from_millis(3));
            if self.connected_at.is_some() {
                wait = wait.min(self.next_send);
            }
            let wait = wait
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                self.rx_sources.insert(from);
                let r = Receive::new(Protocol::Udp, from, self.local, &buf[..n]).unwrap();
                self.rtc
                    .handle_input(Input::Receive(Instant::now(), r))
                    .unwrap();
            }
        }
    }

    /// Closes the peer connection as a browser's `pc.close()` does (RTCP
    /// BYE, DTLS close_notify) without a `hangup` over signaling.
    pub fn close_media(&mut self) {
        self.rtc.close().unwrap();
        for _ in 0..64 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    self.sock.send_to(&t.contents, t.destination).unwrap();
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    }

    /// The next signaling message of `type`, skipping others (`ice`, …).
    pub fn wait_for(&mut self, kind: &str, within: Duration) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let left = within.saturating_sub(t0.elapsed());
            assert!(!left.is_zero(), "no {kind} within {within:?}");
            let m = self.recv_msg(left);
            if m["type"] == kind {
                return m;
            }
        }
    }

    /// Runs the media loop until the caller and the bot (its count in
    /// `bot_heard`, shared with [`bot_talk`]) have each received `frames`
    /// frames. Counting what arrived, not a wall-clock window, keeps the
    /// test's verdict the same on a loaded machine or under qemu; the limit
    /// ([`MEDIA_LIMIT`]) only stops a call that never carries audio.
    pub fn run_until_heard(&mut self, frames: usize, bot_heard: &AtomicUsize) {
        self.run(MEDIA_LIMIT, |c| {
            c.rx_frames >= frames && bot_heard.load(Ordering::Relaxed) >= frames
        });
        assert!(
            self.rx_frames >= frames && bot_heard.load(Ordering::Relaxed) >= frames,
            "in {MEDIA_LIMIT:?}: caller received {} of {frames} frames, the bot {} (caller sent {}, media connected: {})",
            self.rx_frames,
            bot_heard.load(Ordering::Relaxed),
            self.sent,
            self.connected_at.is_some()
        );
    }

    pub fn hang_up(&mut self, reason: &str) {
        let id = self.call_id.clone().unwrap();
        self.send(serde_json::json!({"type": "hangup", "call_id": id, "reason": reason}));
    }
}

/// How long a test waits for a call to carry the audio it counts: far more
/// than the few seconds it takes, so only a broken call hits it.
pub const MEDIA_LIMIT: Duration = Duration::from_secs(120);

/// The bot's received-frame count, shared live with the caller's loop.
pub type Heard = Arc<AtomicUsize>;

/// What an SDK bot heard and sent during one call.
#[derive(Debug)]
pub struct BotAudio {
    pub rx_frames: usize,
    /// RMS of the decoded audio after the first 10 frames (codec start-up).
    pub rx_rms: f32,
    pub tx_frames: usize,
    /// How the call ended, as `receive_audio_opus` reported it.
    pub end: Option<EndReason>,
}

/// The bot side of a test call: sends a 660 Hz tone at 0.3 and decodes what
/// it hears until the call ends, counting received frames in `heard` as they
/// arrive. With `hang_up_after`, the bot hangs up itself after that many
/// received frames.
pub async fn bot_talk(call: &Call, hang_up_after: Option<usize>, heard: &AtomicUsize) -> BotAudio {
    let mut dec = OpusDecoder::new(1).unwrap();
    let mut pcm = Vec::new();
    let mut rx_frames = 0;
    let receive = async {
        loop {
            match call.receive_audio_opus().await {
                Ok(f) => {
                    rx_frames += 1;
                    heard.store(rx_frames, Ordering::Relaxed);
                    pcm.extend_from_slice(dec.decode(&f.data).unwrap());
                    if Some(rx_frames) == hang_up_after {
                        call.hangup().await;
                    }
                }
                Err(BotError::Ended(r)) => return Some(r),
                Err(e) => panic!("receive: {e}"),
            }
        }
    };
    let send = async {
        let mut enc = OpusEncoder::new(1).unwrap();
        let mut tone = Tone::new(660.0, 0.3);
        let mut n = 0;
        while call
            .send_audio_opus(&enc.encode(&tone.next_frame()).unwrap())
            .await
            .is_ok()
        {
            n += 1;
        }
        n
    };
    let (end, tx_frames) = future::zip(receive, send).await;
    BotAudio {
        rx_frames,
        rx_rms: rms(pcm.get(9600..).unwrap_or(&[])),
        tx_frames,
        end,
    }
}

/// Opus both ways, decoded: the caller's 440 Hz at 0.5 reaches the bot as
/// RMS 0.354 and the bot's 660 Hz at 0.3 reaches the caller as RMS 0.212,
/// with at least `min_frames` 20 ms frames each way.
pub fn assert_tones_both_ways(bot: &BotAudio, c: &Caller, min_frames: usize) {
    assert!(
        bot.rx_frames >= min_frames,
        "bot received {}",
        bot.rx_frames
    );
    assert!(
        (bot.rx_rms - 0.354).abs() < 0.03,
        "bot decoded RMS {}",
        bot.rx_rms
    );
    assert!(bot.tx_frames >= min_frames, "bot sent {}", bot.tx_frames);
    assert!(c.rx_frames >= min_frames, "caller received {}", c.rx_frames);
    let caller_rms = rms(c.pcm.get(9600..).unwrap_or(&[]));
    assert!(
        (caller_rms - 0.212).abs() < 0.03,
        "caller decoded RMS {caller_rms}"
    );
}

/// Runs an SDK bot on its own thread: registers it with `cfg`, returns once
/// it is online (panics if it does not get there within 60 s), and then runs
/// `body` with it; `body`'s result comes back through the handle.
pub fn spawn_sdk_bot<T, Fut>(
    cfg: BotConfig,
    body: impl FnOnce(Bot) -> Fut + Send + 'static,
) -> JoinHandle<T>
where
    T: Send + 'static,
    Fut: Future<Output = T>,
{
    let (online_tx, online_rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        future::block_on(async move {
            let bot = register_with_discovery(cfg).await.expect("bot registers");
            let _ = online_tx.send(());
            body(bot).await
        })
    });
    if online_rx.recv_timeout(Duration::from_secs(60)).is_err() {
        match h.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(_) => panic!("bot not online within 60 s"),
        }
    }
    h
}
