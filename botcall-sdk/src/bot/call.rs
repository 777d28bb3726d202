//! A call as the application holds it: the [`Call`] handle (send and
//! receive Opus, hang up, stats), what it shares with the call's media task
//! ([`CallShared`]), and the commands it sends there ([`MediaCmd`]). The
//! media task itself is [`super::media`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_io::Timer;
use futures_lite::future;

use super::{BotError, EndReason, HumanAttestation};

/// One Opus frame as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusFrame {
    /// The Opus packet.
    pub data: Vec<u8>,
    /// Its RTP timestamp (48 kHz clock).
    pub rtp_timestamp: u32,
    /// Its extended RTP sequence number.
    pub seq: u64,
}

/// Counters of one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Whether ICE and DTLS connected.
    pub connected: bool,
    /// Frames handed to the application.
    pub rx_frames: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Frames lost in the network (gaps in sequence numbers).
    pub rx_lost: u64,
    /// Late or duplicate frames dropped.
    pub rx_late: u64,
    /// Frames dropped because the application did not read them in time.
    pub rx_dropped: u64,
    /// 20 ms send slots skipped because the application was late.
    pub tx_skipped: u64,
    /// The call's TURN-relayed address, once allocated.
    pub relay_addr: Option<SocketAddr>,
    /// Datagrams (ICE, DTLS, RTP) sent to the caller through a TURN relay.
    pub relay_tx: u64,
    /// Datagrams received from the caller through a TURN relay.
    pub relay_rx: u64,
    /// Datagrams sent to the caller directly (not relayed).
    pub direct_tx: u64,
    /// Datagrams received from the caller directly (not relayed).
    pub direct_rx: u64,
}

#[derive(Debug, Default)]
pub(crate) struct CallShared {
    pub(super) connected: AtomicBool,
    pub(super) rx_frames: AtomicU64,
    pub(super) tx_frames: AtomicU64,
    pub(super) rx_lost: AtomicU64,
    pub(super) rx_late: AtomicU64,
    pub(super) rx_dropped: AtomicU64,
    pub(super) tx_skipped: AtomicU64,
    pub(super) relay_tx: AtomicU64,
    pub(super) relay_rx: AtomicU64,
    pub(super) direct_tx: AtomicU64,
    pub(super) direct_rx: AtomicU64,
    pub(super) relay_addr: Mutex<Option<SocketAddr>>,
    pub(super) end: Mutex<Option<EndReason>>,
}

impl CallShared {
    pub(super) fn end_reason(&self) -> Option<EndReason> {
        self.end
            .lock()
            .map(|e| e.clone())
            .unwrap_or(Some(EndReason::Shutdown))
    }
    pub(super) fn set_end(&self, r: EndReason) {
        if let Ok(mut e) = self.end.lock()
            && e.is_none()
        {
            *e = Some(r);
        }
    }
}

/// Commands for a call's media task.
#[derive(Debug)]
pub(crate) enum MediaCmd {
    /// A trickled remote candidate (`candidate:…`).
    Candidate(String),
    /// The call ended on the signaling side.
    Ended(EndReason),
    /// The application hangs up.
    Hangup,
    /// Drop the audio queued for sending (barge-in).
    ClearAudio,
}

/// A verified, answered call. Cheap to share by reference between a
/// receiving and a sending task (`&Call` is all the methods need).
///
/// Dropping it hangs up.
#[derive(Debug)]
pub struct Call {
    pub(super) id: String,
    pub(super) caller: HumanAttestation,
    pub(super) audio_tx: Sender<Vec<u8>>,
    pub(super) frames: Receiver<OpusFrame>,
    pub(super) ctl: Sender<MediaCmd>,
    pub(super) shared: Arc<CallShared>,
    pub(super) done: Receiver<()>,
}

impl Call {
    /// The call id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Who calls: the verified attestation (session id, `hv` method,
    /// DTLS fingerprint, times).
    pub fn caller(&self) -> &HumanAttestation {
        &self.caller
    }

    /// Queues one Opus frame (20 ms) for sending. Frames go out paced at
    /// 20 ms once media is connected; with 8 frames (160 ms)
    /// waiting this waits, so a loop that produces audio is paced by it.
    ///
    /// # Errors
    /// [`BotError::Ended`] once the call is over; [`BotError::Media`] for a
    /// frame larger than an Opus packet can be.
    pub async fn send_audio_opus(&self, frame: &[u8]) -> Result<(), BotError> {
        if frame.is_empty() || frame.len() > 1275 {
            return Err(BotError::Media(format!(
                "an Opus packet is 1..=1275 bytes, not {}",
                frame.len()
            )));
        }
        if let Some(r) = self.end_reason() {
            return Err(BotError::Ended(r));
        }
        self.audio_tx
            .send(frame.to_vec())
            .await
            .map_err(|_| BotError::Ended(self.end_reason().unwrap_or(EndReason::Shutdown)))
    }

    /// The next received Opus frame, in sequence order.
    ///
    /// # Errors
    /// [`BotError::Ended`] with the reason once the call is over (after the
    /// frames already received).
    pub async fn receive_audio_opus(&self) -> Result<OpusFrame, BotError> {
        self.frames
            .recv()
            .await
            .map_err(|_| BotError::Ended(self.end_reason().unwrap_or(EndReason::Shutdown)))
    }

    /// Hangs up and waits (up to a second) until the hangup is on its way.
    pub async fn hangup(&self) {
        let _ = self.ctl.try_send(MediaCmd::Hangup);
        let _ = future::or(
            async {
                let _ = self.done.recv().await;
            },
            async {
                Timer::after(Duration::from_secs(1)).await;
            },
        )
        .await;
    }

    /// Drops the audio queued for sending and not yet sent (up to the
    /// ~160 ms [`Call::send_audio_opus`] buffers): for barge-in, when the
    /// caller starts talking over the bot. Frames queued after this call are
    /// sent as usual.
    pub fn clear_audio(&self) {
        let _ = self.ctl.try_send(MediaCmd::ClearAudio);
    }

    /// Waits until the call is over, and says why.
    pub async fn ended(&self) -> EndReason {
        let _ = self.done.recv().await;
        self.end_reason().unwrap_or(EndReason::Shutdown)
    }

    /// Why the call ended, or `None` while it goes on.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.shared.end_reason()
    }

    /// Whether ICE and DTLS are connected (media can flow).
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Counters.
    pub fn stats(&self) -> CallStats {
        let s = &self.shared;
        CallStats {
            connected: s.connected.load(Ordering::Relaxed),
            rx_frames: s.rx_frames.load(Ordering::Relaxed),
            tx_frames: s.tx_frames.load(Ordering::Relaxed),
            rx_lost: s.rx_lost.load(Ordering::Relaxed),
            rx_late: s.rx_late.load(Ordering::Relaxed),
            rx_dropped: s.rx_dropped.load(Ordering::Relaxed),
            tx_skipped: s.tx_skipped.load(Ordering::Relaxed),
            relay_addr: s.relay_addr.lock().ok().and_then(|a| *a),
            relay_tx: s.relay_tx.load(Ordering::Relaxed),
            relay_rx: s.relay_rx.load(Ordering::Relaxed),
            direct_tx: s.direct_tx.load(Ordering::Relaxed),
            direct_rx: s.direct_rx.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let _ = self.ctl.try_send(MediaCmd::Hangup);
    }
}
