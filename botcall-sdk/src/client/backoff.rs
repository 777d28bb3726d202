//! Reconnect delays: exponential backoff with "equal jitter", from a seed
//! given at construction (the core has no random number generator).

/// First delay ceiling (the first retry waits 250–500 ms).
pub const BACKOFF_INITIAL_MS: u64 = 500;
/// Largest delay ceiling (retries wait 15–30 s at most).
pub const BACKOFF_MAX_MS: u64 = 30_000;
/// The longest `Retry-After` obeyed (a daemon's larger value is cut to this).
pub const RETRY_AFTER_MAX_SECS: u32 = 600;

/// SplitMix64: tiny, seedable, good enough for jitter (not for secrets).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) const fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Delay policy: attempt `n` (0-based) waits a random time in
/// `[c/2, c]` with `c = min(INITIAL · 2ⁿ, MAX)`. Never zero, so a dead
/// daemon is never hammered; reset after a successful `welcome`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    pub(crate) const fn new(seed: u64) -> Self {
        Backoff {
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// The ceiling for the next delay.
    pub(crate) fn ceiling(&self) -> u64 {
        let shift = self.attempt.min(16);
        (BACKOFF_INITIAL_MS << shift).min(BACKOFF_MAX_MS)
    }

    /// The next delay in milliseconds; counts an attempt.
    pub(crate) fn next_delay(&mut self) -> u64 {
        let c = self.ceiling();
        let half = c / 2;
        let jitter = self.rng.next_u64() % (c - half + 1);
        self.attempt = self.attempt.saturating_add(1);
        half + jitter
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::new(42);
        let mut ceilings = [0u64; 10];
        for c in ceilings.iter_mut() {
            let ceil = b.ceiling();
            let d = b.next_delay();
            assert!(
                d >= ceil / 2 && d <= ceil,
                "{d} not in [{}, {ceil}]",
                ceil / 2
            );
            *c = ceil;
        }
        assert_eq!(
            ceilings,
            [
                500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000
            ]
        );
        b.reset();
        assert!(b.next_delay() <= 500);
    }

    #[test]
    fn seeds_differ() {
        let a: [u64; 4] = core::array::from_fn(|_| Backoff::new(1).next_delay());
        let mut b1 = Backoff::new(1);
        let mut b2 = Backoff::new(2);
        let x: [u64; 8] = core::array::from_fn(|_| {
            let d = b1.next_delay();
            b1.reset();
            d
        });
        let y: [u64; 8] = core::array::from_fn(|_| {
            let d = b2.next_delay();
            b2.reset();
            d
        });
        assert_eq!(a[0], a[1]);
        assert_ne!(x, y);
    }
}
