//! The outbound message queue: encoded JSON messages back to back in one
//! fixed buffer, each behind a 2-byte length. `poll_output` lends the oldest
//! one out as `&str`; it is released at the next poll.

use botcall_core::json::{Sink, write::Full};
use botcall_core::protocol::Msg;

use super::{MAX_MESSAGE_LEN, OUTBOX_LEN};
use crate::error::Error;

/// A FIFO of encoded messages in a fixed buffer.
pub(crate) struct Outbox {
    buf: [u8; OUTBOX_LEN],
    start: usize,
    end: usize,
    /// Bytes of the message lent out by the last `front`, dropped on the next call.
    lent: usize,
}

struct Tail<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Sink for Tail<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.len.checked_add(bytes.len()).ok_or(Full)?;
        if end > MAX_MESSAGE_LEN {
            return Err(Full);
        }
        self.buf
            .get_mut(self.len..end)
            .ok_or(Full)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl Outbox {
    pub(crate) const fn new() -> Self {
        Outbox {
            buf: [0; OUTBOX_LEN],
            start: 0,
            end: 0,
            lent: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start + self.lent >= self.end
    }

    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.lent = 0;
    }

    fn release(&mut self) {
        self.start += self.lent;
        self.lent = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Encodes `msg` at the back.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the message is longer than [`MAX_MESSAGE_LEN`],
    /// [`Error::Full`] if the queue has no room for it now.
    pub(crate) fn push(&mut self, msg: &Msg<'_>) -> Result<(), Error> {
        self.release();
        if self.start > 0 && OUTBOX_LEN - self.end < MAX_MESSAGE_LEN + 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let body_at = self.end + 2;
        // Room ≥ a whole message means a failure is the message's fault.
        let room = OUTBOX_LEN.saturating_sub(body_at);
        let Some(space) = self.buf.get_mut(body_at..) else {
            return Err(Error::Full);
        };
        let mut tail = Tail { buf: space, len: 0 };
        if msg.encode(&mut tail).is_err() {
            return Err(if room >= MAX_MESSAGE_LEN {
                Error::TooLarge("message")
            } else {
                Error::Full
            });
        }
        let n = tail.len;
        // n ≤ MAX_MESSAGE_LEN < 65536.
        let len = (n as u16).to_be_bytes();
        self.buf[self.end..body_at].copy_from_slice(&len);
        self.end = body_at + n;
        Ok(())
    }

    /// Lends the oldest message; it is dropped on the next `front`/`push`.
    pub(crate) fn front(&mut self) -> Option<&str> {
        self.release();
        if self.start >= self.end {
            return None;
        }
        let len_bytes = self.buf.get(self.start..self.start + 2)?;
        let n = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let body = self.buf.get(self.start + 2..self.start + 2 + n)?;
        self.lent = n + 2;
        // Only `Msg::encode` output is stored: JSON text, valid UTF-8.
        core::str::from_utf8(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botcall_core::id::AgentId;
    use botcall_core::protocol::Text;

    fn hangup(reason: &str) -> Msg<'_> {
        Msg::Hangup {
            call_id: AgentId::new("c").unwrap(),
            reason: Text::Str(reason),
        }
    }

    #[test]
    fn fifo_order_and_release() {
        let mut o = Outbox::new();
        o.push(&Msg::Ping).unwrap();
        o.push(&hangup("a")).unwrap();
        assert_eq!(o.front(), Some(r#"{"type":"ping"}"#));
        assert_eq!(
            o.front(),
            Some(r#"{"type":"hangup","call_id":"c","reason":"a"}"#)
        );
        assert_eq!(o.front(), None);
        assert!(o.is_empty());
    }

    #[test]
    fn full_and_too_large_are_errors() {
        let mut o = Outbox::new();
        let big = "x".repeat(9000);
        let msg = Msg::Answer {
            call_id: AgentId::new("c").unwrap(),
            sdp_answer: Text::Str(&big),
            answer_sig: None,
        };
        // Fits a few times, then the queue is full.
        let mut n = 0;
        loop {
            match o.push(&msg) {
                Ok(()) => n += 1,
                Err(e) => {
                    assert_eq!(e, Error::Full);
                    break;
                }
            }
        }
        assert!(n >= 2);
        // Draining makes room again (compaction).
        assert!(o.front().is_some());
        assert!(o.front().is_some());
        o.push(&msg).unwrap();
        let huge = "x".repeat(MAX_MESSAGE_LEN + 1);
        o.clear();
        let msg = Msg::Answer {
            call_id: AgentId::new("c").unwrap(),
            sdp_answer: Text::Str(&huge),
            answer_sig: None,
        };
        assert_eq!(o.push(&msg), Err(Error::TooLarge("message")));
        assert!(o.is_empty());
    }
}
