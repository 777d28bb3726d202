//! The default store: a fixed-capacity agent table.
//!
//! - Slots live in one `Vec` reserved at start and never reallocated; freed
//!   slots are reused from a free list. Pages are only touched as slots fill.
//! - An index (`hashbrown::HashTable<u32>` keyed by SipHash with a random key,
//!   so ids chosen by an attacker cannot collide on purpose) maps id → slot:
//!   O(1) insert, lookup and remove, 5 bytes per bucket.
//! - Expiry is a hashed timing wheel of one-second buckets with intrusive
//!   links in the slots: refreshing or removing is O(1), and each tick only
//!   visits the bucket that is due — never the whole table.
//! - Full is `Err(StoreError::Full)`: a live agent is never evicted.

use std::cell::RefCell;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::{AgentStore, AgentView, Attached, Owner, Page, Record, StoreError};
use crate::metrics::StoreGauges;

/// Seconds covered by the wheel; longer TTLs wait for extra turns.
const WHEEL: usize = 4096;
const NIL: u32 = u32::MAX;
/// Most slots one directory page may scan (bounds the work per request).
const MAX_SCAN: usize = 20_000;

#[derive(Debug)]
struct Slot {
    rec: Record,
    online: bool,
    /// Unix second at which an offline registration expires.
    expires_at: u64,
    prev: u32,
    next: u32,
    live: bool,
}

/// The table itself (synchronous; [`MemoryStore`] wraps it).
#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: RandomState,
    wheel: Box<[u32]>,
    /// Last second the wheel was advanced to.
    tick: u64,
    cap: usize,
    /// Slots self-certifying ids may fill: `cap` minus the reserved share.
    open_cap: usize,
    live: usize,
    online: usize,
    /// Live slots holding self-certifying ids.
    open: usize,
}

impl Table {
    /// A table for `cap` agents, `reserved` of them for keys-file agents
    /// only; every allocation happens here.
    pub(crate) fn new(cap: usize, reserved: usize, now: u64) -> Self {
        Table {
            slots: Vec::with_capacity(cap),
            free: Vec::with_capacity(cap),
            index: HashTable::with_capacity(cap),
            hasher: RandomState::new(),
            wheel: vec![NIL; WHEEL].into_boxed_slice(),
            tick: now,
            cap,
            open_cap: cap.saturating_sub(reserved),
            live: 0,
            online: 0,
            open: 0,
        }
    }

    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    fn find(&self, id: &str) -> Option<u32> {
        let h = self.hash(id);
        let slots = &self.slots;
        self.index
            .find(h, |&i| slots[i as usize].rec.agent_id.as_str() == id)
            .copied()
    }

    /// The slot for `id` if it is live and not yet expired at `now`.
    fn get(&self, id: &str, now: u64) -> Option<u32> {
        let i = self.find(id)?;
        let s = &self.slots[i as usize];
        (s.online || s.expires_at > now).then_some(i)
    }

    /// Like [`Table::get`], but drops an expired entry for `id` on the way.
    fn get_or_purge(&mut self, id: &str, now: u64) -> Option<u32> {
        let i = self.find(id)?;
        if self.get(id, now).is_none() {
            self.remove_slot(i);
            return None;
        }
        Some(i)
    }

    fn link(&mut self, i: u32) {
        let bucket = (self.slots[i as usize].expires_at % WHEEL as u64) as usize;
        let head = self.wheel[bucket];
        {
            let s = &mut self.slots[i as usize];
            s.prev = NIL;
            s.next = head;
        }
        if head != NIL {
            self.slots[head as usize].prev = i;
        }
        self.wheel[bucket] = i;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, bucket) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next, (s.expires_at % WHEEL as u64) as usize)
        };
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else if self.wheel[bucket] == i {
            self.wheel[bucket] = next;
        } else {
            // Not linked (online entries are kept out of the wheel).
            return;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        }
        let s = &mut self.slots[i as usize];
        s.prev = NIL;
        s.next = NIL;
    }

    fn remove_slot(&mut self, i: u32) {
        self.unlink(i);
        let h = self.hash(self.slots[i as usize].rec.agent_id.as_str());
        if let Ok(e) = self.index.find_entry(h, |&j| j == i) {
            e.remove();
        }
        let s = &mut self.slots[i as usize];
        if s.online {
            self.online -= 1;
        }
        if s.rec.open {
            self.open -= 1;
        }
        s.live = false;
        s.online = false;
        s.rec.endpoint = None;
        s.rec.name = None;
        self.live -= 1;
        self.free.push(i);
    }

    fn alloc(&mut self, rec: Record, online: bool, expires_at: u64) -> Result<u32, StoreError> {
        let open = rec.open;
        if open && self.open >= self.open_cap {
            return Err(StoreError::Full);
        }
        let slot = Slot {
            rec,
            online,
            expires_at,
            prev: NIL,
            next: NIL,
            live: true,
        };
        let i = if let Some(i) = self.free.pop() {
            self.slots[i as usize] = slot;
            i
        } else if self.slots.len() < self.cap {
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        } else {
            return Err(StoreError::Full);
        };
        let h = self.hash(self.slots[i as usize].rec.agent_id.as_str());
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(h, i, |&j| {
            hasher.hash_one(slots[j as usize].rec.agent_id.as_str())
        });
        self.live += 1;
        self.open += usize::from(open);
        if online {
            self.online += 1;
        } else {
            self.link(i);
        }
        Ok(i)
    }

    /// Inserts or refreshes a registration.
    pub(crate) fn register(&mut self, rec: Record, now: u64) -> Result<u64, StoreError> {
        self.expire(now);
        let ttl = u64::from(rec.ttl);
        match self.get_or_purge(rec.agent_id.as_str(), now) {
            Some(i) => {
                if self.slots[i as usize].rec.owner != rec.owner {
                    return Err(StoreError::Taken);
                }
                self.unlink(i);
                let online = self.slots[i as usize].online;
                let s = &mut self.slots[i as usize];
                // (An id both in the keys file and a key's thumbprint.)
                self.open = self.open + usize::from(rec.open) - usize::from(s.rec.open);
                s.rec = rec;
                s.expires_at = now + ttl;
                if !online {
                    self.link(i);
                }
                Ok(ttl)
            }
            None => {
                self.alloc(rec, false, now + ttl)?;
                Ok(ttl)
            }
        }
    }

    /// Removes a registration owned by `owner`.
    pub(crate) fn unregister(
        &mut self,
        id: &str,
        owner: &Owner,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.expire(now);
        match self.get_or_purge(id, now) {
            None => Ok(false),
            Some(i) if self.slots[i as usize].rec.owner != *owner => Err(StoreError::Taken),
            Some(i) => {
                self.remove_slot(i);
                Ok(true)
            }
        }
    }

    fn view(&self, i: u32, now: u64) -> AgentView {
        let s = &self.slots[i as usize];
        AgentView {
            rec: s.rec.clone(),
            online: s.online,
            expires_in: if s.online {
                u64::from(s.rec.ttl)
            } else {
                s.expires_at.saturating_sub(now)
            },
            daemon: None,
        }
    }

    /// Reads one agent.
    pub(crate) fn lookup(&self, id: &str, now: u64) -> Option<AgentView> {
        self.get(id, now).map(|i| self.view(i, now))
    }

    /// One directory page, in slot order; the cursor is a slot position.
    pub(crate) fn list(
        &self,
        online_only: bool,
        limit: usize,
        cursor: Option<&str>,
        now: u64,
    ) -> Page {
        let start: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut page = Page::default();
        let end = self.slots.len().min(start.saturating_add(MAX_SCAN));
        let mut pos = start;
        while pos < end && page.agents.len() < limit {
            let s = &self.slots[pos];
            if s.live
                && s.rec.listed
                && (s.online || s.expires_at > now)
                && (!online_only || s.online)
            {
                page.agents.push(self.view(pos as u32, now));
            }
            pos += 1;
        }
        if pos < self.slots.len() {
            page.next_cursor = Some(pos.to_string());
        }
        page
    }

    /// Marks an agent online, registering it with `rec` if absent.
    pub(crate) fn attach(&mut self, rec: Record, now: u64) -> Result<u8, StoreError> {
        self.expire(now);
        match self.get_or_purge(rec.agent_id.as_str(), now) {
            Some(i) => {
                if self.slots[i as usize].rec.owner != rec.owner {
                    return Err(StoreError::Taken);
                }
                self.unlink(i);
                let s = &mut self.slots[i as usize];
                if !s.online {
                    s.online = true;
                    self.online += 1;
                }
                Ok(s.rec.max_calls)
            }
            None => {
                let calls = rec.max_calls;
                self.alloc(rec, true, now).map(|_| calls)
            }
        }
    }

    /// Marks an agent offline; its TTL runs from `now`.
    pub(crate) fn detach(&mut self, id: &str, now: u64) {
        if let Some(i) = self.find(id) {
            let s = &mut self.slots[i as usize];
            if s.live && s.online {
                s.online = false;
                s.expires_at = now + u64::from(s.rec.ttl);
                self.online -= 1;
                self.link(i);
            }
        }
    }

    /// Advances the wheel to `now`, dropping what expired. Visits one bucket
    /// per elapsed second (at most the whole wheel once after a long pause).
    pub(crate) fn expire(&mut self, now: u64) -> usize {
        if now <= self.tick {
            return 0;
        }
        let steps = (now - self.tick).min(WHEEL as u64);
        let mut removed = 0;
        for t in (now + 1 - steps)..=now {
            let mut i = self.wheel[(t % WHEEL as u64) as usize];
            while i != NIL {
                let next = self.slots[i as usize].next;
                if self.slots[i as usize].expires_at <= now {
                    self.remove_slot(i);
                    removed += 1;
                }
                i = next;
            }
        }
        self.tick = now;
        removed
    }

    pub(crate) fn gauges(&self) -> StoreGauges {
        StoreGauges {
            registered: self.live as u64,
            online: self.online as u64,
            capacity: self.cap as u64,
        }
    }

    /// Bytes reserved per agent (slot + index bucket), for sizing docs.
    pub(crate) fn bytes_per_entry() -> usize {
        std::mem::size_of::<Slot>()
            + std::mem::size_of::<u32>() * 2
            + 1
            + std::mem::size_of::<u32>()
    }
}

/// [`Table`] behind the async [`AgentStore`] interface.
#[derive(Debug)]
pub(crate) struct MemoryStore(RefCell<Table>);

impl MemoryStore {
    pub(crate) fn new(cap: usize, reserved: usize, now: u64) -> Self {
        MemoryStore(RefCell::new(Table::new(cap, reserved, now)))
    }
}

impl AgentStore for MemoryStore {
    async fn register(&self, rec: Record, now: u64) -> Result<u64, StoreError> {
        self.0.borrow_mut().register(rec, now)
    }
    async fn unregister(&self, id: &str, owner: &Owner, now: u64) -> Result<bool, StoreError> {
        self.0.borrow_mut().unregister(id, owner, now)
    }
    async fn lookup(&self, id: &str, now: u64) -> Result<Option<AgentView>, StoreError> {
        Ok(self.0.borrow().lookup(id, now))
    }
    async fn list(
        &self,
        online_only: bool,
        limit: usize,
        cursor: Option<&str>,
        now: u64,
    ) -> Result<Page, StoreError> {
        Ok(self.0.borrow().list(online_only, limit, cursor, now))
    }
    async fn attach(&self, rec: Record, now: u64) -> Result<Attached, StoreError> {
        let max_calls = self.0.borrow_mut().attach(rec, now)?;
        Ok(Attached {
            max_calls,
            moved_from: None,
        })
    }
    async fn detach(&self, id: &str, now: u64) -> Result<(), StoreError> {
        self.0.borrow_mut().detach(id, now);
        Ok(())
    }
    fn expire(&self, now: u64) -> usize {
        self.0.borrow_mut().expire(now)
    }
    fn gauges(&self) -> StoreGauges {
        self.0.borrow().gauges()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botcall_core::id::AgentId;
    use botcall_core::protocol::Codecs;

    fn rec(id: &str, ttl: u32, owner: u8) -> Record {
        Record {
            agent_id: AgentId::new(id).unwrap(),
            endpoint: Some("wss://e".into()),
            name: None,
            audio: Codecs::OPUS,
            ttl,
            max_calls: 1,
            listed: true,
            owner: [owner; 8],
            open: false,
        }
    }

    fn open_rec(id: &str) -> Record {
        Record {
            open: true,
            ..rec(id, 60, 9)
        }
    }

    #[test]
    fn self_certifying_ids_cannot_take_the_reserved_share() {
        // 4 slots, 2 reserved: open ids get 2, keys-file agents all 4.
        let mut t = Table::new(4, 2, 0);
        t.register(open_rec("o1"), 0).unwrap();
        assert_eq!(t.attach(open_rec("o2"), 0), Ok(1));
        assert_eq!(t.register(open_rec("o3"), 0), Err(StoreError::Full));
        assert_eq!(t.attach(open_rec("o3"), 0), Err(StoreError::Full));
        // Refreshing an open id that is in is fine.
        assert_eq!(t.register(open_rec("o1"), 1), Ok(60));
        t.register(rec("k1", 60, 1), 0).unwrap();
        t.register(rec("k2", 60, 1), 0).unwrap();
        assert_eq!(t.register(rec("k3", 60, 1), 0), Err(StoreError::Full));
        // An open id leaving frees an open slot, not a reserved one.
        assert_eq!(t.unregister("o1", &[9; 8], 2), Ok(true));
        assert_eq!(t.register(rec("k3", 60, 1), 2), Ok(60));
        assert_eq!(t.register(open_rec("o3"), 2), Err(StoreError::Full));
        assert_eq!(t.unregister("k3", &[1; 8], 2), Ok(true));
        assert_eq!(t.register(open_rec("o3"), 2), Ok(60));
    }

    #[test]
    fn insert_lookup_refresh_remove() {
        let mut t = Table::new(4, 0, 1000);
        assert_eq!(t.register(rec("a", 60, 1), 1000), Ok(60));
        let v = t.lookup("a", 1010).unwrap();
        assert_eq!((v.online, v.expires_in), (false, 50));
        // Refresh restarts the TTL.
        t.register(rec("a", 60, 1), 1030).unwrap();
        assert_eq!(t.lookup("a", 1030).unwrap().expires_in, 60);
        // Another owner cannot take or delete it.
        assert_eq!(t.register(rec("a", 60, 2), 1031), Err(StoreError::Taken));
        assert_eq!(t.unregister("a", &[2; 8], 1031), Err(StoreError::Taken));
        assert_eq!(t.unregister("a", &[1; 8], 1031), Ok(true));
        assert_eq!(t.unregister("a", &[1; 8], 1031), Ok(false));
        assert!(t.lookup("a", 1031).is_none());
        assert_eq!(t.gauges().registered, 0);
    }

    #[test]
    fn full_table_refuses_without_evicting() {
        let mut t = Table::new(2, 0, 0);
        t.register(rec("a", 60, 1), 0).unwrap();
        t.register(rec("b", 60, 1), 0).unwrap();
        assert_eq!(t.register(rec("c", 60, 1), 0), Err(StoreError::Full));
        assert!(t.lookup("a", 1).is_some() && t.lookup("b", 1).is_some());
        // Refreshing an existing id still works when full.
        assert_eq!(t.register(rec("a", 60, 1), 1), Ok(60));
        // Space returns after expiry, and the slot is reused.
        assert_eq!(t.register(rec("c", 60, 1), 61), Ok(60));
        assert!(t.lookup("b", 61).is_none());
        assert_eq!(t.slots.len(), 2);
    }

    #[test]
    fn expiry_visits_only_due_buckets_and_handles_long_ttls() {
        let mut t = Table::new(100, 0, 0);
        t.register(rec("short", 30, 1), 0).unwrap();
        t.register(rec("long", 9000, 1), 0).unwrap(); // longer than the wheel
        assert_eq!(t.expire(29), 0);
        assert_eq!(t.expire(30), 1);
        assert!(t.lookup("long", 5000).is_some());
        assert_eq!(t.expire(5000), 0);
        assert_eq!(t.expire(9000), 1);
        assert_eq!(t.gauges().registered, 0);
    }

    #[test]
    fn expired_entries_are_invisible_before_the_sweep() {
        let mut t = Table::new(10, 0, 0);
        t.register(rec("a", 30, 1), 0).unwrap();
        assert!(t.lookup("a", 30).is_none());
        // And a new owner may take the id once it expired.
        assert_eq!(t.register(rec("a", 30, 9), 31), Ok(30));
    }

    #[test]
    fn online_agents_do_not_expire() {
        let mut t = Table::new(10, 0, 0);
        t.attach(rec("bot", 30, 1), 0).unwrap();
        assert_eq!(t.gauges().online, 1);
        t.expire(100);
        let v = t.lookup("bot", 100).unwrap();
        assert!(v.online);
        assert_eq!(v.expires_in, 30);
        t.detach("bot", 100);
        assert_eq!(t.gauges().online, 0);
        assert_eq!(t.lookup("bot", 110).unwrap().expires_in, 20);
        t.expire(130);
        assert!(t.lookup("bot", 130).is_none());
        // attach by another key is refused while registered
        t.register(rec("x", 60, 1), 130).unwrap();
        assert_eq!(t.attach(rec("x", 60, 2), 131), Err(StoreError::Taken));
    }

    #[test]
    fn directory_pages_and_filters() {
        let mut t = Table::new(100, 0, 0);
        for i in 0..25 {
            let mut r = rec(&format!("a{i}"), 60, 1);
            r.listed = i % 5 != 0;
            t.register(r, 0).unwrap();
        }
        t.attach(rec("a1", 60, 1), 0).unwrap();
        let mut seen = 0;
        let mut cursor: Option<String> = None;
        loop {
            let p = t.list(false, 7, cursor.as_deref(), 1);
            seen += p.agents.len();
            assert!(p.agents.iter().all(|a| a.rec.listed));
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, 20);
        let online = t.list(true, 50, None, 1);
        assert_eq!(online.agents.len(), 1);
        assert_eq!(online.agents[0].rec.agent_id.as_str(), "a1");
        // A junk cursor starts from the beginning instead of failing.
        assert_eq!(t.list(false, 3, Some("zz"), 1).agents.len(), 3);
    }

    #[test]
    fn churn_keeps_index_and_wheel_consistent() {
        // Deterministic xorshift churn against a simple model.
        let mut t = Table::new(64, 0, 0);
        let mut model = std::collections::HashMap::new();
        let mut x: u64 = 0x9E3779B97F4A7C15;
        for now in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = format!("id{}", x % 100);
            let ttl = 30 + (x >> 20) % 100;
            match (x >> 8) % 4 {
                0 | 1 => match t.register(rec(&id, ttl as u32, 1), now / 4) {
                    Ok(_) => {
                        model.insert(id, now / 4 + ttl);
                    }
                    Err(StoreError::Full) => {}
                    Err(e) => panic!("{e:?}"),
                },
                2 => {
                    let had = model.get(&id).is_some_and(|&e| e > now / 4);
                    assert_eq!(t.unregister(&id, &[1; 8], now / 4), Ok(had));
                    model.remove(&id);
                }
                _ => {
                    t.expire(now / 4);
                }
            }
            model.retain(|_, e| *e > now / 4);
            for (k, _) in model.iter() {
                assert!(t.lookup(k, now / 4).is_some(), "{k} missing at {now}");
            }
            assert!(t.gauges().registered as usize >= model.len());
        }
    }
}
