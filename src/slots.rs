//! Dense per-connection tables keyed by [`ConnId`]: the slot index in the
//! low 32 bits, a generation in the high 32, so an id is never reused and a
//! late message for a closed socket can never reach its successor. No hash
//! table: a connection costs its value plus a few bytes, which matters with
//! tens of thousands of idle bots.

pub(crate) use crate::ids::ConnId;

fn split(id: ConnId) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> 32) as u32)
}

/// Values stored at the index an [`IdAllocator`] handed out.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    items: Vec<Option<(u32, T)>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { items: Vec::new() }
    }
}

impl<T> Slots<T> {
    /// Stores `v` for `id` (replacing whatever an older generation left).
    pub(crate) fn insert(&mut self, id: ConnId, v: T) {
        let (i, generation) = split(id);
        if self.items.len() <= i {
            self.items.resize_with(i + 1, || None);
        }
        self.items[i] = Some((generation, v));
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&T> {
        let (i, generation) = split(id);
        match self.items.get(i)? {
            Some((g, v)) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        let (i, generation) = split(id);
        match self.items.get_mut(i)? {
            Some((g, v)) if *g == generation => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, id: ConnId) -> Option<T> {
        let (i, generation) = split(id);
        let slot = self.items.get_mut(i)?;
        match slot {
            Some((g, _)) if *g == generation => slot.take().map(|(_, v)| v),
            _ => None,
        }
    }

    /// Every live `(id, value)`.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (ConnId, &mut T)> {
        self.items.iter_mut().enumerate().filter_map(|(i, s)| {
            s.as_mut()
                .map(|(g, v)| ((u64::from(*g) << 32) | i as u64, v))
        })
    }

    /// Every live id.
    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|(g, _)| (u64::from(*g) << 32) | i as u64))
            .collect()
    }
}

/// Hands out ids: freed indices are reused with the next generation.
#[derive(Debug, Default)]
pub(crate) struct IdAllocator {
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl IdAllocator {
    pub(crate) fn alloc(&mut self) -> ConnId {
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.generations.push(0);
                self.generations.len() - 1
            }
        };
        self.generations[i] = self.generations[i].wrapping_add(1);
        (u64::from(self.generations[i]) << 32) | i as u64
    }

    pub(crate) fn release(&mut self, id: ConnId) {
        let (i, generation) = split(id);
        if self.generations.get(i) == Some(&generation) {
            self.free.push(i as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused() {
        let mut ids = IdAllocator::default();
        let mut slots = Slots::default();
        let a = ids.alloc();
        slots.insert(a, "a");
        ids.release(a);
        slots.remove(a);
        let b = ids.alloc();
        slots.insert(b, "b");
        assert_ne!(a, b, "same index, new generation");
        assert_eq!(a & 0xffff_ffff, b & 0xffff_ffff);
        assert_eq!(slots.get(a), None, "a stale id sees nothing");
        assert_eq!(slots.get(b), Some(&"b"));
        assert_eq!(slots.remove(a), None);
        assert_eq!(slots.ids(), vec![b]);
        ids.release(a); // stale release is ignored
        let c = ids.alloc();
        assert_ne!(
            c & 0xffff_ffff,
            b & 0xffff_ffff,
            "b's index is still in use"
        );
    }
}
