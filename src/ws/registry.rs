//! The outbound side of every WebSocket: one queue of encoded frames per
//! socket, reachable from any task (the hub's outputs land here), bounded
//! per socket by `ws_queue_bytes` and in all by the daemon's [`Budget`].
//! The socket's own task ([`super::conn`]) writes the queue out.

use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;

use super::frame::{self, Op};
use crate::budget::Budget;
use crate::ids::ConnId;
use crate::slots::{IdAllocator, Slots};

/// Outbound state of one socket, reachable from any task.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub(super) out: VecDeque<Vec<u8>>,
    /// Bytes in `out`, all taken from the budget.
    pub(super) out_bytes: usize,
    pub(super) sent: usize,
    pub(super) waker: Option<Waker>,
    /// No more frames after the queued ones; close when flushed.
    pub(super) closing: bool,
    /// The last queued frame is a pong nobody started writing: a newer
    /// ping replaces it (RFC 6455 §5.5.3 asks only for the latest).
    pub(super) pong_at_tail: bool,
}

/// All open WebSockets, by never-reused id.
#[derive(Debug)]
pub(crate) struct Registry {
    pub(super) conns: Slots<Entry>,
    ids: IdAllocator,
    /// The socket whose task is running right now: it flushes its queue
    /// before it sleeps, so waking it would only cost a spurious poll.
    pub(super) running: Option<ConnId>,
    pub(super) budget: Rc<Budget>,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The socket's queue is over `ws_queue_bytes`: its reader is too slow.
    QueueFull,
    /// The daemon's buffer budget is spent.
    Budget,
}

impl Registry {
    pub(crate) fn new(budget: Rc<Budget>) -> Self {
        Registry {
            conns: Slots::default(),
            ids: IdAllocator::default(),
            running: None,
            budget,
        }
    }

    pub(crate) fn insert(&mut self) -> ConnId {
        let id = self.ids.alloc();
        self.conns.insert(id, Entry::default());
        id
    }

    pub(crate) fn remove(&mut self, id: ConnId) {
        if let Some(e) = self.conns.remove(id) {
            self.budget.give(e.out_bytes);
        }
        self.ids.release(id);
    }

    fn wake(e: &mut Entry, id: ConnId, running: Option<ConnId>) {
        if running == Some(id) {
            return;
        }
        if let Some(w) = e.waker.take() {
            w.wake();
        }
    }

    /// Queues a frame. Unknown ids (already gone) are ignored.
    pub(crate) fn push(
        &mut self,
        id: ConnId,
        frame: Vec<u8>,
        limit: usize,
    ) -> Result<(), PushError> {
        let Some(e) = self.conns.get_mut(id) else {
            return Ok(());
        };
        if e.closing {
            return Ok(());
        }
        if e.out_bytes + frame.len() > limit {
            return Err(PushError::QueueFull);
        }
        if !self.budget.try_take(frame.len()) {
            return Err(PushError::Budget);
        }
        e.out_bytes += frame.len();
        e.out.push_back(frame);
        e.pong_at_tail = false;
        Self::wake(e, id, self.running);
        Ok(())
    }

    /// Queues the answer to a ping, replacing a pong still waiting at the
    /// end of the queue: a client that pings without reading holds one
    /// pong here, not one per ping.
    pub(crate) fn push_pong(
        &mut self,
        id: ConnId,
        payload: &[u8],
        limit: usize,
    ) -> Result<(), PushError> {
        let Some(e) = self.conns.get_mut(id) else {
            return Ok(());
        };
        // Not the frame being written right now (the only one with `sent > 0`).
        let replaceable = e.pong_at_tail && !(e.out.len() == 1 && e.sent > 0);
        if replaceable && let Some(old) = e.out.pop_back() {
            e.out_bytes -= old.len();
            self.budget.give(old.len());
        }
        let mut pong = Vec::with_capacity(2 + payload.len());
        frame::encode(Op::Pong, payload, &mut pong);
        self.push(id, pong, limit)?;
        if let Some(e) = self.conns.get_mut(id) {
            e.pong_at_tail = true;
        }
        Ok(())
    }

    /// Queues a close frame after what is queued (or instead of it, when
    /// `discard`), and stops further output. The close frame itself is
    /// always queued (a few bytes, taken from the budget even past its limit).
    pub(crate) fn close(&mut self, id: ConnId, code: u16, reason: &str, discard: bool) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        if e.closing {
            return;
        }
        if discard {
            // Keep a frame that is half written, or the stream would be corrupt.
            let keep = usize::from(e.sent > 0);
            e.out.truncate(keep);
            let left: usize = e.out.iter().map(Vec::len).sum();
            self.budget.give(e.out_bytes - left);
            e.out_bytes = left;
        }
        let f = frame::close_frame(code, reason);
        self.budget.take_anyway(f.len());
        e.out_bytes += f.len();
        e.out.push_back(f);
        e.closing = true;
        e.pong_at_tail = false;
        Self::wake(e, id, self.running);
    }

    /// Close frames to every socket (shutdown).
    pub(crate) fn close_all(&mut self, code: u16, reason: &str) {
        let ids = self.conns.ids();
        for id in ids {
            self.close(id, code, reason, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pongs_coalesce_and_every_queued_byte_is_budgeted() {
        let budget = Rc::new(Budget::new(10_000));
        let mut reg = Registry::new(budget.clone());
        let id = reg.insert();
        // A client that pings without reading holds one pong, not one per ping.
        for i in 0..1000u32 {
            reg.push_pong(id, &i.to_be_bytes(), 1000).unwrap();
        }
        let e = reg.conns.get(id).unwrap();
        assert_eq!(e.out.len(), 1);
        assert_eq!(e.out[0], [0x8a, 4, 0, 0, 3, 231]);
        assert_eq!(budget.used(), 6);
        // A message after it ends the coalescing: the next pong queues behind.
        reg.push(id, vec![0; 100], 1000).unwrap();
        reg.push_pong(id, b"x", 1000).unwrap();
        reg.push_pong(id, b"y", 1000).unwrap();
        assert_eq!(reg.conns.get(id).unwrap().out.len(), 3);
        assert_eq!(budget.used(), 6 + 100 + 3);
        // The socket's own bound, then the daemon's budget.
        assert_eq!(reg.push(id, vec![0; 900], 1000), Err(PushError::QueueFull));
        let other = reg.insert();
        assert_eq!(
            reg.push(other, vec![0; 9_900], 20_000),
            Err(PushError::Budget)
        );
        // Closing with discard, and removal, give everything back.
        reg.close(id, 1000, "bye", true);
        assert_eq!(budget.used(), 4 + 3);
        reg.remove(id);
        reg.remove(other);
        assert_eq!(budget.used(), 0);
    }
}
