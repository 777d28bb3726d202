//! When the next 20 ms Opus frame is due, and its media timestamp.

use crate::time::Instant;

/// Opus in WebRTC: RTP clock rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Frame duration.
pub const FRAME_MS: u64 = 20;
/// Samples per channel in one frame (48 kHz × 20 ms).
pub const SAMPLES_PER_FRAME: u32 = 960;
/// A sender this many frames late skips ahead instead of bursting.
pub const MAX_LAG_FRAMES: u64 = 3;

/// One frame's slot on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSlot {
    /// Frame number since the pacer started.
    pub index: u64,
    /// When it was due.
    pub due: Instant,
    /// Its media time in samples since the start (48 kHz), for RTP.
    pub media_time: u64,
    /// The 32-bit RTP timestamp: `rtp_base + media_time` (wrapping).
    pub rtp_timestamp: u32,
}

/// Paces 20 ms frames against the caller's clock.
///
/// [`FramePacer::poll`] hands out one slot per 20 ms. A sender that falls
/// more than [`MAX_LAG_FRAMES`] behind (a stall, or an idle period with
/// nothing to send) skips to the present: the skipped frames are counted and
/// the timestamps keep following real time, as RTP expects for gaps.
#[derive(Debug, Clone)]
pub struct FramePacer {
    start: Instant,
    next: u64,
    rtp_base: u32,
    skipped: u64,
}

impl FramePacer {
    /// A pacer whose frame 0 is due at `start`.
    pub const fn new(start: Instant, rtp_base: u32) -> Self {
        FramePacer {
            start,
            next: 0,
            rtp_base,
            skipped: 0,
        }
    }

    /// When the next frame is due.
    pub fn next_due(&self) -> Instant {
        self.start.add_millis(self.next.saturating_mul(FRAME_MS))
    }

    /// The next frame's slot if it is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<FrameSlot> {
        let due = self.next_due();
        if now < due {
            return None;
        }
        let late = now.millis_since(due) / FRAME_MS;
        if late > MAX_LAG_FRAMES {
            self.skipped += late;
            self.next += late;
        }
        let index = self.next;
        self.next += 1;
        let media_time = index * u64::from(SAMPLES_PER_FRAME);
        Some(FrameSlot {
            index,
            due: self.start.add_millis(index * FRAME_MS),
            media_time,
            rtp_timestamp: self.rtp_base.wrapping_add(media_time as u32),
        })
    }

    /// Frames skipped because the sender was late.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_per_20ms() {
        let mut p = FramePacer::new(Instant(1000), u32::MAX - 959);
        let mut t = 1000;
        let mut got = 0;
        while t < 2000 {
            while let Some(s) = p.poll(Instant(t)) {
                assert_eq!(s.index, got);
                assert_eq!(s.due, Instant(1000 + 20 * got));
                assert_eq!(s.media_time, 960 * got);
                got += 1;
            }
            t += 1;
        }
        assert_eq!(got, 50);
        assert_eq!(p.next_due(), Instant(2000));
        assert_eq!(p.skipped(), 0);
        // The RTP timestamp wraps.
        let mut q = FramePacer::new(Instant(0), u32::MAX - 959);
        assert_eq!(q.poll(Instant(0)).unwrap().rtp_timestamp, u32::MAX - 959);
        assert_eq!(q.poll(Instant(20)).unwrap().rtp_timestamp, 0);
    }

    #[test]
    fn small_lag_catches_up_large_lag_skips() {
        let mut p = FramePacer::new(Instant(0), 0);
        // 50 ms late: frames 0, 1, 2 come out back to back.
        assert_eq!(p.poll(Instant(50)).unwrap().index, 0);
        assert_eq!(p.poll(Instant(50)).unwrap().index, 1);
        assert_eq!(p.poll(Instant(50)).unwrap().index, 2);
        assert_eq!(p.poll(Instant(50)), None);
        // A 1 s stall: skip to the present.
        let s = p.poll(Instant(1060)).unwrap();
        assert_eq!(s.index, 53);
        assert_eq!(s.media_time, 53 * 960);
        assert_eq!(p.skipped(), 50);
        assert_eq!(p.poll(Instant(1060)), None);
    }
}
