//! The proof-of-work human check: find `nonce` such that
//! `SHA-256(challenge ":" nonce)` starts with `difficulty` zero bits.
//!
//! Cheap for one caller (~2^difficulty hashes in a Web Worker), expensive for
//! someone placing thousands of robocalls. See `docs/protocol.md`.

use sha2::{Digest, Sha256};

/// Longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 32;
/// Highest difficulty the daemon will ask for.
pub const MAX_DIFFICULTY: u8 = 32;

/// Why a proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PowError {
    /// Nonce empty, too long, or not `[A-Za-z0-9]`.
    BadNonce,
    /// The hash does not have enough leading zero bits.
    TooEasy,
}

/// Leading zero bits of `hash`.
pub fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut n = 0;
    for &b in hash {
        if b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Checks a proof.
///
/// # Errors
/// [`PowError::BadNonce`] or [`PowError::TooEasy`].
pub fn check(challenge: &str, nonce: &str, difficulty: u8) -> Result<(), PowError> {
    if nonce.is_empty()
        || nonce.len() > MAX_NONCE_LEN
        || !nonce.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(PowError::BadNonce);
    }
    let mut h = Sha256::new();
    h.update(challenge.as_bytes());
    h.update(b":");
    h.update(nonce.as_bytes());
    if leading_zero_bits(&h.finalize()) >= u32::from(difficulty) {
        Ok(())
    } else {
        Err(PowError::TooEasy)
    }
}

/// Searches nonces `start..start + tries` (written in base 36); for tests,
/// benchmarks and non-browser callers.
pub fn solve(
    challenge: &str,
    difficulty: u8,
    start: u64,
    tries: u64,
) -> Option<heapless::String<MAX_NONCE_LEN>> {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    for i in start..start.saturating_add(tries) {
        let mut buf = [0u8; 13];
        let mut n = i;
        let mut at = buf.len();
        loop {
            at -= 1;
            buf[at] = DIGITS[(n % 36) as usize];
            n /= 36;
            if n == 0 {
                break;
            }
        }
        let nonce = core::str::from_utf8(&buf[at..]).ok()?;
        if check(challenge, nonce, difficulty).is_ok() {
            let mut out = heapless::String::new();
            out.push_str(nonce).ok()?;
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_checks() {
        let nonce = solve("abc", 12, 0, 1 << 20).unwrap();
        assert_eq!(check("abc", &nonce, 12), Ok(()));
        assert_eq!(check("abc", &nonce, 32), Err(PowError::TooEasy));
        assert_eq!(check("abc", "", 1), Err(PowError::BadNonce));
        assert_eq!(check("abc", "a:b", 1), Err(PowError::BadNonce));
        assert_eq!(check("abc", &"a".repeat_33(), 1), Err(PowError::BadNonce));
        assert_eq!(leading_zero_bits(&[0, 0x10]), 11);
    }

    #[test]
    fn difficulty_zero_accepts_any_valid_nonce() {
        assert_eq!(check("x", "1", 0), Ok(()));
    }

    trait R {
        fn repeat_33(&self) -> heapless::String<33>;
    }
    impl R for str {
        fn repeat_33(&self) -> heapless::String<33> {
            let mut s = heapless::String::new();
            while s.push_str(self).is_ok() {}
            s
        }
    }
}
