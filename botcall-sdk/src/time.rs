//! Time as the core sees it: milliseconds on a monotonic clock that the
//! caller owns. The core never reads a clock; every entry point takes `now`.

/// A point on the caller's monotonic clock, in milliseconds.
///
/// Any origin works (boot, process start, a test's zero); only differences
/// matter. Time that goes backwards is ignored by the state machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Instant(pub u64);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);
    /// The far future: "no timeout".
    pub const NEVER: Instant = Instant(u64::MAX);

    /// `ms` milliseconds after the origin.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `ms` (saturating at [`Instant::NEVER`]).
    #[must_use]
    pub const fn add_millis(self, ms: u64) -> Self {
        Instant(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn millis_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant(5).add_millis(10), Instant(15));
        assert_eq!(Instant::NEVER.add_millis(1), Instant::NEVER);
        assert_eq!(Instant(5).millis_since(Instant(10)), 0);
        assert_eq!(Instant(10).millis_since(Instant(4)), 6);
    }
}
