//! One WebSocket's protocol state, sans-IO: parsed frames in, what to do
//! out — a whole text message for the router, a pong, a close, a frame
//! dropped over the socket's message rate. Fragment reassembly and the rate
//! budget (a token bucket) live here; the socket task ([`super::conn`])
//! only moves bytes and carries the [`Action`]s out. Time is passed in.

use std::time::Instant;

use botcall_core::protocol::close;

use super::frame::Frame;
use super::frame::{self, FrameError, Op};

/// Drops past this many close the socket (1008).
const MAX_DROPPED: u32 = 200;
/// The first drop, and every this-many-th after it, tells the client.
const TELL_EVERY: u32 = 20;

/// The limits a session enforces (from the config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest message, fragments included (`max_message_bytes`).
    pub(crate) max_message: usize,
    /// Frames per second (`ws_rate`; 0: unlimited) and the burst (`ws_burst`).
    pub(crate) rate: u32,
    pub(crate) burst: u32,
}

/// What a frame asks of the socket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action<'a> {
    /// Nothing to do (a fragment kept, a pong read).
    None,
    /// A whole text message for the router (not yet checked for UTF-8).
    Message(Vec<u8>),
    /// Answer a ping with this payload.
    Pong(&'a [u8]),
    /// A frame over the rate was dropped (and is counted).
    Dropped(Dropped),
    /// Close the socket with this code and reason: the client broke the
    /// protocol or sent too much.
    Close(u16, &'static str),
    /// The client closed: echo its code (RFC 6455 §5.5.1), no reason.
    PeerClosed(u16),
}

/// What happened to a frame over the socket's message rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Dropped and counted.
    Quietly,
    /// Dropped, and the client is to be told (`error rate_limited`).
    Told,
    /// Too many: the socket is closing (1008).
    Closed,
}

/// Per-socket protocol state.
#[derive(Debug)]
pub(crate) struct Session {
    limits: Limits,
    /// A fragmented text message being assembled.
    fragments: Option<Vec<u8>>,
    tokens: f32,
    last_refill: Instant,
    dropped: u32,
}

impl Session {
    /// A session opened at `now`, its bucket full.
    pub(crate) fn new(limits: Limits, now: Instant) -> Self {
        Session {
            limits,
            fragments: None,
            tokens: limits.burst as f32,
            last_refill: now,
            dropped: 0,
        }
    }

    /// Whether a fragmented message is waiting for its end.
    pub(crate) fn is_partial(&self) -> bool {
        self.fragments.is_some()
    }

    /// Bytes the session holds (for the buffer budget).
    pub(crate) fn held(&self) -> usize {
        self.fragments.as_ref().map_or(0, Vec::capacity)
    }

    /// Frees a message being assembled (the socket is closing).
    pub(crate) fn drop_inbound(&mut self) {
        self.fragments = None;
    }

    /// One parsed frame, at `now`.
    pub(crate) fn on_frame<'a>(&mut self, frame: Frame<'a>, now: Instant) -> Action<'a> {
        match frame.op {
            Op::Ping | Op::Pong => {
                // Control frames count too: a ping costs us a pong.
                if !self.take_token(now) {
                    return Action::Dropped(self.over_rate());
                }
                if frame.op == Op::Ping {
                    Action::Pong(frame.payload)
                } else {
                    Action::None
                }
            }
            Op::Close => {
                let code = match frame::check_close(frame.payload) {
                    Ok(c) => c,
                    Err(FrameError(c, _)) => c,
                };
                Action::PeerClosed(code)
            }
            Op::Binary => Action::Close(close::UNSUPPORTED, "only JSON text messages"),
            Op::Text | Op::Continuation => {
                let max = self.limits.max_message;
                let is_start = frame.op == Op::Text;
                let message = match (&mut self.fragments, is_start) {
                    (None, true) if frame.fin => Some(frame.payload.to_vec()),
                    (None, true) => {
                        self.fragments = Some(frame.payload.to_vec());
                        None
                    }
                    (Some(buf), false) => {
                        if buf.len() + frame.payload.len() > max {
                            return Action::Close(close::TOO_BIG, "message too big");
                        }
                        buf.extend_from_slice(frame.payload);
                        if frame.fin {
                            self.fragments.take()
                        } else {
                            None
                        }
                    }
                    _ => return Action::Close(close::PROTOCOL, "unexpected continuation"),
                };
                let Some(message) = message else {
                    return Action::None;
                };
                if !self.take_token(now) {
                    return Action::Dropped(self.over_rate());
                }
                Action::Message(message)
            }
        }
    }

    /// A frame over the rate: the first and every 20th drop are told,
    /// past 200 the socket is closed.
    fn over_rate(&mut self) -> Dropped {
        self.dropped += 1;
        if self.dropped > MAX_DROPPED {
            return Dropped::Closed;
        }
        if self.dropped == 1 || self.dropped.is_multiple_of(TELL_EVERY) {
            return Dropped::Told;
        }
        Dropped::Quietly
    }

    /// Takes one token from the bucket, refilled at `rate` per second up to
    /// `burst`; `false` when it is empty.
    fn take_token(&mut self, now: Instant) -> bool {
        let rate = self.limits.rate as f32;
        if rate == 0.0 {
            return true;
        }
        let dt = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f32();
        self.last_refill = now;
        self.tokens = (self.tokens + dt * rate).min(self.limits.burst.max(1) as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frame(op: Op, fin: bool, payload: &[u8]) -> Frame<'_> {
        Frame { fin, op, payload }
    }

    fn session(rate: u32, burst: u32, t0: Instant) -> Session {
        let limits = Limits {
            max_message: 10,
            rate,
            burst,
        };
        Session::new(limits, t0)
    }

    #[test]
    fn fragments_make_one_message_within_the_limit() {
        let t0 = Instant::now();
        let mut s = session(0, 1, t0);
        assert_eq!(s.on_frame(frame(Op::Text, false, b"hel"), t0), Action::None);
        assert!(s.is_partial() && s.held() >= 3);
        assert_eq!(
            s.on_frame(frame(Op::Continuation, true, b"lo"), t0),
            Action::Message(b"hello".to_vec())
        );
        assert!(!s.is_partial());
        assert_eq!(
            s.on_frame(frame(Op::Text, false, b"123456"), t0),
            Action::None
        );
        assert_eq!(
            s.on_frame(frame(Op::Continuation, true, b"78901"), t0),
            Action::Close(close::TOO_BIG, "message too big")
        );
        let mut s = session(0, 1, t0);
        assert_eq!(
            s.on_frame(frame(Op::Continuation, true, b"x"), t0),
            Action::Close(close::PROTOCOL, "unexpected continuation")
        );
        assert_eq!(
            s.on_frame(frame(Op::Binary, true, b"x"), t0),
            Action::Close(close::UNSUPPORTED, "only JSON text messages")
        );
    }

    #[test]
    fn pings_pongs_and_closes() {
        let t0 = Instant::now();
        let mut s = session(0, 1, t0);
        assert_eq!(
            s.on_frame(frame(Op::Ping, true, b"p"), t0),
            Action::Pong(b"p")
        );
        assert_eq!(s.on_frame(frame(Op::Pong, true, b""), t0), Action::None);
        assert_eq!(
            s.on_frame(frame(Op::Close, true, &[0x0f, 0xa0]), t0),
            Action::PeerClosed(4000)
        );
        assert_eq!(
            s.on_frame(frame(Op::Close, true, b""), t0),
            Action::PeerClosed(1000)
        );
        // A close that breaks the rules is answered with the rule's code.
        assert_eq!(
            s.on_frame(frame(Op::Close, true, &[3]), t0),
            Action::PeerClosed(close::PROTOCOL)
        );
    }

    #[test]
    fn the_rate_budget_on_a_fake_clock() {
        let t0 = Instant::now();
        let mut s = session(2, 3, t0);
        let text = |s: &mut Session, at| s.on_frame(frame(Op::Text, true, b"m"), at);
        // A burst of 3, then drops: the first is told.
        for _ in 0..3 {
            assert!(matches!(text(&mut s, t0), Action::Message(_)));
        }
        assert_eq!(text(&mut s, t0), Action::Dropped(Dropped::Told));
        assert_eq!(text(&mut s, t0), Action::Dropped(Dropped::Quietly));
        // Half a second at 2/s buys one more.
        let t1 = t0 + Duration::from_millis(500);
        assert!(matches!(text(&mut s, t1), Action::Message(_)));
        // Pings spend the same budget.
        assert_eq!(
            s.on_frame(frame(Op::Ping, true, b""), t1),
            Action::Dropped(Dropped::Quietly)
        );
        // Every 20th drop is told; past 200 the socket goes.
        let mut told = 0;
        for _ in 4..=MAX_DROPPED {
            match text(&mut s, t1) {
                Action::Dropped(Dropped::Told) => told += 1,
                Action::Dropped(Dropped::Quietly) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(told, 10);
        assert_eq!(text(&mut s, t1), Action::Dropped(Dropped::Closed));
    }
}
