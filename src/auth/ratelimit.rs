//! Token-bucket rate limits in fixed-capacity tables (per client IP, per
//! agent id). When a table is full, buckets that have refilled completely
//! (they hold no information) are dropped; if it is still full, newcomers
//! share one overflow bucket, so the table never grows and limiting never
//! switches off.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

/// A table of buckets with one rate and burst.
#[derive(Debug)]
pub(crate) struct Limiter<K> {
    map: HashMap<K, Bucket>,
    overflow: Bucket,
    cap: usize,
    rate: f64,
    burst: f64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `rate` tokens per second, `burst` at most; `rate == 0` disables limiting.
    pub(crate) fn new(cap: usize, rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Limiter {
            map: HashMap::with_capacity(cap.min(1 << 16)),
            overflow: Bucket {
                tokens: burst,
                last_ms: 0,
            },
            cap,
            rate: f64::from(rate),
            burst,
        }
    }

    fn take(b: &mut Bucket, now_ms: u64, rate: f64, burst: f64) -> Result<(), u64> {
        let dt = now_ms.saturating_sub(b.last_ms) as f64 / 1000.0;
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.last_ms = now_ms;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            // Seconds until one token is back, rounded up (Retry-After).
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// `count` tokens an hour, `count` at most (`count == 0` disables).
    pub(crate) fn per_hour(cap: usize, count: u32) -> Self {
        let mut l = Self::new(cap, 0, count);
        l.rate = f64::from(count) / 3600.0;
        l
    }

    /// Takes one token for `key` at `now_ms` (monotonic milliseconds).
    /// `Err(retry_after_secs)` when empty.
    pub(crate) fn check(&mut self, key: &K, now_ms: u64) -> Result<(), u64> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let (rate, burst) = (self.rate, self.burst);
        if let Some(b) = self.map.get_mut(key) {
            return Self::take(b, now_ms, rate, burst);
        }
        if self.map.len() >= self.cap {
            self.map.retain(|_, b| {
                let dt = now_ms.saturating_sub(b.last_ms) as f64 / 1000.0;
                b.tokens + dt * rate < burst
            });
        }
        if self.map.len() >= self.cap {
            return Self::take(&mut self.overflow, now_ms, rate, burst);
        }
        let mut b = Bucket {
            tokens: burst,
            last_ms: now_ms,
        };
        let r = Self::take(&mut b, now_ms, rate, burst);
        self.map.insert(key.clone(), b);
        r
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let mut l = Limiter::new(10, 2, 3);
        for _ in 0..3 {
            assert!(l.check(&1, 0).is_ok());
        }
        assert_eq!(l.check(&1, 0), Err(1));
        assert!(l.check(&1, 500).is_ok());
        assert!(l.check(&1, 500).is_err());
        assert!(l.check(&2, 500).is_ok());
    }

    #[test]
    fn table_stays_bounded() {
        let mut l = Limiter::new(4, 1, 1);
        for k in 0..100 {
            let _ = l.check(&k, 0);
            assert!(l.len() <= 4);
        }
        // Newcomers share the overflow bucket while the table is full of busy keys.
        assert!(l.check(&1000, 0).is_err());
        // Later, refilled buckets are dropped and newcomers get their own.
        assert!(l.check(&2000, 10_000).is_ok());
    }

    #[test]
    fn hourly_quota() {
        let mut l = Limiter::per_hour(10, 3);
        for _ in 0..3 {
            assert!(l.check(&"a", 0).is_ok());
        }
        // The next one in 20 minutes (Retry-After in seconds).
        assert_eq!(l.check(&"a", 1_000), Err(1199));
        assert!(l.check(&"a", 1_200_000).is_ok());
        assert!(l.check(&"b", 1_200_000).is_ok());
        assert!(Limiter::per_hour(1, 0).check(&"a", 0).is_ok());
    }

    #[test]
    fn zero_rate_disables() {
        let mut l = Limiter::new(1, 0, 0);
        for _ in 0..1000 {
            assert!(l.check(&"x", 0).is_ok());
        }
        assert_eq!(l.len(), 0);
    }
}
