//! A small fixed-capacity jitter buffer for Opus packets: reorders by
//! sequence number, drops late and duplicate packets, bounds its depth, and
//! counts losses.

/// Packets held at most.
pub const JITTER_CAPACITY: usize = 16;
/// Largest packet kept (an Opus packet is at most 1275 bytes per frame).
pub const MAX_FRAME_LEN: usize = 1500;

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Buffered.
    Accepted,
    /// Older than what was already played out: dropped.
    Late,
    /// Already buffered: dropped.
    Duplicate,
    /// Larger than [`MAX_FRAME_LEN`]: dropped.
    TooLarge,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted.
    pub received: u64,
    /// Packets handed out.
    pub played: u64,
    /// Packets that never arrived in time (gaps skipped).
    pub lost: u64,
    /// Late packets dropped.
    pub late: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Oversized packets dropped.
    pub too_large: u64,
    /// Buffered packets dropped because a far newer one arrived (the reader fell behind).
    pub overflow: u64,
}

/// A packet handed out in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterFrame<'a> {
    /// Extended sequence number.
    pub seq: u64,
    /// RTP timestamp.
    pub timestamp: u32,
    /// The payload.
    pub data: &'a [u8],
}

#[derive(Clone, Copy)]
struct Slot {
    used: bool,
    seq: u64,
    timestamp: u32,
    len: u16,
    data: [u8; MAX_FRAME_LEN],
}

const EMPTY: Slot = Slot {
    used: false,
    seq: 0,
    timestamp: 0,
    len: 0,
    data: [0; MAX_FRAME_LEN],
};

/// Reorders packets by (extended) sequence number.
///
/// [`JitterBuffer::pop`] hands out the next packet in order as soon as it is
/// there. A missing packet is declared lost once `depth` newer packets wait
/// behind it (or by [`JitterBuffer::skip_gap`], e.g. after a timeout), so
/// the added delay is at most `depth` frames. Fixed memory:
/// [`JITTER_CAPACITY`] × [`MAX_FRAME_LEN`] bytes.
pub struct JitterBuffer {
    slots: [Slot; JITTER_CAPACITY],
    next: Option<u64>,
    buffered: usize,
    depth: usize,
    stats: JitterStats,
}

impl core::fmt::Debug for JitterBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JitterBuffer")
            .field("next", &self.next)
            .field("buffered", &self.buffered)
            .field("depth", &self.depth)
            .field("stats", &self.stats)
            .finish()
    }
}

impl JitterBuffer {
    /// A buffer that gives up on a missing packet once `depth` newer ones
    /// wait (clamped to 1..[`JITTER_CAPACITY`]).
    pub const fn new(depth: usize) -> Self {
        let depth = if depth == 0 {
            1
        } else if depth >= JITTER_CAPACITY {
            JITTER_CAPACITY - 1
        } else {
            depth
        };
        JitterBuffer {
            slots: [EMPTY; JITTER_CAPACITY],
            next: None,
            buffered: 0,
            depth,
            stats: JitterStats {
                received: 0,
                played: 0,
                lost: 0,
                late: 0,
                duplicates: 0,
                too_large: 0,
                overflow: 0,
            },
        }
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.buffered
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.buffered == 0
    }

    fn idx(seq: u64) -> usize {
        (seq % JITTER_CAPACITY as u64) as usize
    }

    /// Offers a packet. O(1), except when a far newer packet forces the
    /// window forward (O([`JITTER_CAPACITY`])).
    pub fn push(&mut self, seq: u64, timestamp: u32, payload: &[u8]) -> Push {
        if payload.len() > MAX_FRAME_LEN {
            self.stats.too_large += 1;
            return Push::TooLarge;
        }
        let next = *self.next.get_or_insert(seq);
        if seq < next {
            self.stats.late += 1;
            return Push::Late;
        }
        let cap = JITTER_CAPACITY as u64;
        if seq >= next + cap {
            // Slide the window so `seq` fits; what falls out is lost or dropped.
            let new_next = seq + 1 - cap;
            let span = (new_next - next).min(cap);
            for s in next..next + span {
                let slot = &mut self.slots[Self::idx(s)];
                if slot.used && slot.seq == s {
                    slot.used = false;
                    self.buffered -= 1;
                    self.stats.overflow += 1;
                } else {
                    self.stats.lost += 1;
                }
            }
            self.stats.lost += (new_next - next).saturating_sub(span);
            self.next = Some(new_next);
        }
        let slot = &mut self.slots[Self::idx(seq)];
        if slot.used && slot.seq == seq {
            self.stats.duplicates += 1;
            return Push::Duplicate;
        }
        slot.used = true;
        slot.seq = seq;
        slot.timestamp = timestamp;
        slot.len = payload.len() as u16;
        slot.data[..payload.len()].copy_from_slice(payload);
        self.buffered += 1;
        self.stats.received += 1;
        Push::Accepted
    }

    /// The next packet in order, if it is there or the gap before it is
    /// given up (`depth` newer packets waiting).
    pub fn pop(&mut self) -> Option<JitterFrame<'_>> {
        let next = self.next?;
        if self.buffered == 0 {
            return None;
        }
        let here = self.slots[Self::idx(next)].used && self.slots[Self::idx(next)].seq == next;
        if !here {
            if self.buffered < self.depth {
                return None;
            }
            self.skip_gap();
        }
        let next = self.next?;
        let i = Self::idx(next);
        if !(self.slots[i].used && self.slots[i].seq == next) {
            return None;
        }
        self.slots[i].used = false;
        self.buffered -= 1;
        self.next = Some(next + 1);
        self.stats.played += 1;
        let s = &self.slots[i];
        Some(JitterFrame {
            seq: s.seq,
            timestamp: s.timestamp,
            data: &s.data[..usize::from(s.len)],
        })
    }

    /// Gives up on the missing packets before the oldest buffered one
    /// (counted as lost). Does nothing if nothing is buffered.
    pub fn skip_gap(&mut self) {
        let Some(next) = self.next else { return };
        if self.buffered == 0 {
            return;
        }
        let oldest = self
            .slots
            .iter()
            .filter(|s| s.used)
            .map(|s| s.seq)
            .min()
            .unwrap_or(next);
        if oldest > next {
            self.stats.lost += oldest - next;
            self.next = Some(oldest);
        }
    }
}

/// Extends 16-bit RTP sequence numbers to 64 bits across wraparound.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeqExtender {
    last: Option<u64>,
}

impl SeqExtender {
    /// A fresh extender.
    pub const fn new() -> Self {
        SeqExtender { last: None }
    }

    /// The extended value of `seq`: the one closest to the last seen.
    pub fn extend(&mut self, seq: u16) -> u64 {
        let Some(last) = self.last else {
            let v = u64::from(seq) + (1 << 16); // room to go back a little
            self.last = Some(v);
            return v;
        };
        let base = last & !0xFFFF;
        let candidates = [
            base.wrapping_sub(1 << 16) | u64::from(seq),
            base | u64::from(seq),
            (base + (1 << 16)) | u64::from(seq),
        ];
        let v = candidates
            .into_iter()
            .min_by_key(|c| c.abs_diff(last))
            .unwrap_or(base | u64::from(seq));
        if v > last {
            self.last = Some(v);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(j: &mut JitterBuffer) -> std::vec::Vec<u64> {
        let mut out = std::vec::Vec::new();
        while let Some(f) = j.pop() {
            assert_eq!(f.data, &[f.seq as u8; 3]);
            out.push(f.seq);
        }
        out
    }

    fn push(j: &mut JitterBuffer, seq: u64) -> Push {
        j.push(seq, seq as u32 * 960, &[seq as u8; 3])
    }

    #[test]
    fn in_order_passes_straight_through() {
        let mut j = JitterBuffer::new(3);
        for s in 100..110 {
            assert_eq!(push(&mut j, s), Push::Accepted);
            assert_eq!(drain(&mut j), [s]);
        }
        assert_eq!(j.stats().played, 10);
        assert_eq!(j.stats().lost, 0);
    }

    #[test]
    fn reorders_and_drops_late_and_duplicates() {
        let mut j = JitterBuffer::new(3);
        push(&mut j, 10);
        assert_eq!(drain(&mut j), [10]);
        push(&mut j, 12);
        assert_eq!(drain(&mut j), std::vec::Vec::<u64>::new());
        push(&mut j, 11);
        assert_eq!(drain(&mut j), [11, 12]);
        assert_eq!(push(&mut j, 11), Push::Late);
        push(&mut j, 14);
        assert_eq!(push(&mut j, 14), Push::Duplicate);
        assert_eq!(j.stats().late, 1);
        assert_eq!(j.stats().duplicates, 1);
        assert_eq!(j.stats().lost, 0);
    }

    #[test]
    fn gives_up_on_a_gap_after_depth_packets() {
        let mut j = JitterBuffer::new(3);
        push(&mut j, 1);
        assert_eq!(drain(&mut j), [1]);
        // 2 is lost.
        push(&mut j, 3);
        push(&mut j, 4);
        assert_eq!(drain(&mut j), std::vec::Vec::<u64>::new());
        push(&mut j, 5);
        assert_eq!(drain(&mut j), [3, 4, 5]);
        assert_eq!(j.stats().lost, 1);
        // A timeout-driven skip.
        push(&mut j, 8);
        assert_eq!(drain(&mut j), std::vec::Vec::<u64>::new());
        j.skip_gap();
        assert_eq!(drain(&mut j), [8]);
        assert_eq!(j.stats().lost, 3);
    }

    #[test]
    fn bounded_depth_when_the_reader_stalls() {
        let mut j = JitterBuffer::new(3);
        push(&mut j, 0);
        // Nobody pops while 40 more arrive: only the last 16 can be held.
        for s in 1..=40 {
            push(&mut j, s);
        }
        assert!(j.len() <= JITTER_CAPACITY);
        let got = drain(&mut j);
        assert_eq!(got.first(), Some(&25));
        assert_eq!(got.last(), Some(&40));
        let st = j.stats();
        assert_eq!(st.overflow + st.played + st.lost, 41);
        // A huge jump forward: the gap is given up by depth or by a timeout.
        push(&mut j, 1_000_000);
        assert_eq!(drain(&mut j), std::vec::Vec::<u64>::new());
        j.skip_gap();
        assert_eq!(drain(&mut j), [1_000_000]);
        assert_eq!(j.push(5, 0, &[0u8; MAX_FRAME_LEN + 1]), Push::TooLarge);
    }

    #[test]
    fn sequence_extension_wraps() {
        let mut e = SeqExtender::new();
        let a = e.extend(65534);
        let b = e.extend(65535);
        let c = e.extend(0);
        let d = e.extend(1);
        assert_eq!([b - a, c - b, d - c], [1, 1, 1]);
        // A reordered packet from before the wrap.
        assert_eq!(e.extend(65535), b);
        assert_eq!(e.extend(2), d + 1);
    }
}
