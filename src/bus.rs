//! The queue of envelopes bound for other daemons: the hub's
//! `Output::Remote`s go in (through [`crate::app::App::deliver`]), the
//! cluster's publisher task ([`crate::cluster`]) takes them out in order.
//! Bounded: a full queue drops the envelope and says so.

use std::cell::RefCell;
use std::collections::VecDeque;

use event_listener::Event;

use crate::ids::DaemonId;

/// Most envelopes waiting to be published; more are dropped and counted.
const QUEUE_MAX: usize = 10_000;

/// Envelopes on their way to other daemons, published in order by one task.
#[derive(Debug, Default)]
pub(crate) struct Bus {
    pub(crate) queue: RefCell<VecDeque<(DaemonId, Vec<u8>)>>,
    pub(crate) ready: Event,
}

impl Bus {
    /// Queues an envelope; `false` when the queue is full.
    pub(crate) fn push(&self, to: DaemonId, env: Vec<u8>) -> bool {
        let mut q = self.queue.borrow_mut();
        if q.len() >= QUEUE_MAX {
            return false;
        }
        q.push_back((to, env));
        self.ready.notify(1);
        true
    }
}
