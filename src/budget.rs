//! One budget for every byte a client can make the daemon hold in a
//! per-connection buffer: partial WebSocket frames, messages being
//! reassembled, outbound queues, HTTP requests and pipelined answers.
//! Each holder tracks what it took and gives it back; when the budget is
//! spent, the growth is refused (the connection is closed with 1013 or
//! answered 503) instead of allocated. Single-threaded, like the daemon.
//!
//! What clients send us (partial and reassembled messages, HTTP requests:
//! [`Held`]) may use at most half of the budget, so strangers parking half
//! messages can never leave the daemon without room to queue what it must
//! send to everyone else (an `incoming` to a bot, an answer to a caller).

use std::cell::Cell;
use std::rc::Rc;

/// The shared budget (`buffer_budget` bytes).
#[derive(Debug)]
pub(crate) struct Budget {
    used: Cell<usize>,
    /// The part of `used` held by [`Held`] (inbound buffers).
    inbound: Cell<usize>,
    limit: usize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget {
            used: Cell::new(0),
            inbound: Cell::new(0),
            limit,
        }
    }

    /// Takes `n` bytes; `false` (nothing taken) when that would pass the limit.
    pub(crate) fn try_take(&self, n: usize) -> bool {
        match self.used.get().checked_add(n) {
            Some(u) if u <= self.limit => {
                self.used.set(u);
                true
            }
            _ => false,
        }
    }

    /// Takes `n` bytes even past the limit: for the few bytes that must go
    /// out whatever happens (a close frame, at most 125 bytes a socket).
    pub(crate) fn take_anyway(&self, n: usize) {
        self.used.set(self.used.get().saturating_add(n));
    }

    /// Gives back `n` bytes taken earlier.
    pub(crate) fn give(&self, n: usize) {
        self.used.set(self.used.get().saturating_sub(n));
    }

    /// Inbound buffers growing by `n`: within their half, and within the
    /// whole budget.
    fn try_take_inbound(&self, n: usize) -> bool {
        let fits = self
            .inbound
            .get()
            .checked_add(n)
            .is_some_and(|i| i <= self.limit / 2);
        if fits && self.try_take(n) {
            self.inbound.set(self.inbound.get() + n);
            true
        } else {
            false
        }
    }

    fn give_inbound(&self, n: usize) {
        self.inbound.set(self.inbound.get().saturating_sub(n));
        self.give(n);
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }

    /// The configured limit.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }
}

/// What one connection's own buffers hold against the budget; given back
/// when it is dropped, however the connection ends.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Rc<Budget>,
    n: usize,
}

impl Held {
    pub(crate) fn new(budget: &Rc<Budget>) -> Self {
        Held {
            budget: budget.clone(),
            n: 0,
        }
    }

    /// Now holding `now` bytes; `false` (unchanged) if growing is refused.
    pub(crate) fn resize(&mut self, now: usize) -> bool {
        if now > self.n {
            if !self.budget.try_take_inbound(now - self.n) {
                return false;
            }
        } else {
            self.budget.give_inbound(self.n - now);
        }
        self.n = now;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give_inbound(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back() {
        let b = Budget::new(100);
        assert!(b.try_take(60));
        assert!(!b.try_take(41));
        assert_eq!(b.used(), 60);
        assert!(b.try_take(40));
        assert!(!b.try_take(1));
        b.give(100);
        assert_eq!(b.used(), 0);
        assert!(!b.try_take(usize::MAX));
        b.give(5);
        assert_eq!(b.used(), 0);
        b.take_anyway(120);
        assert_eq!(b.used(), 120);
        assert!(!b.try_take(1));
    }

    #[test]
    fn held_gives_back_when_dropped() {
        let b = Rc::new(Budget::new(200));
        let mut h = Held::new(&b);
        assert!(h.resize(80));
        assert!(!Held::new(&b).resize(21));
        assert!(h.resize(30));
        assert_eq!(b.used(), 30);
        drop(h);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn inbound_buffers_leave_half_for_outbound_queues() {
        let b = Rc::new(Budget::new(200));
        let mut a = Held::new(&b);
        let mut c = Held::new(&b);
        assert!(a.resize(60) && c.resize(40));
        // Inbound is at its half: more inbound is refused ...
        assert!(!c.resize(41));
        // ... while outbound queues still get the rest.
        assert!(b.try_take(100));
        assert!(!b.try_take(1));
        b.give(100);
        assert!(a.resize(0));
        assert!(c.resize(100));
        drop(c);
        drop(a);
        assert_eq!((b.used(), b.inbound.get()), (0, 0));
    }
}
