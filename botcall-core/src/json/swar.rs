//! Eight bytes at a time: finding the few bytes that matter (quotes,
//! backslashes, control characters) in kilobytes of plain string text.

/// One bit pattern per byte of a `u64`.
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `x` is below `n` (`n` ≤ 128; exact as a boolean).
pub(super) const fn has_less(x: u64, n: u8) -> bool {
    x.wrapping_sub(LO * n as u64) & !x & HI != 0
}

/// Whether any byte of `x` equals `b`.
pub(super) const fn has_byte(x: u64, b: u8) -> bool {
    has_less(x ^ (LO * b as u64), 1)
}

/// The next 8 bytes of `s` from `pos`, as one word.
pub(super) fn word(s: &[u8], pos: usize) -> Option<u64> {
    let chunk = s.get(pos..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*chunk))
}

/// How many bytes from `pos` on, in whole words, hold no quote, backslash or
/// control character (a lower bound: the scan stops at the first word with one).
pub(super) fn plain_run(s: &[u8], pos: usize) -> usize {
    let mut at = pos;
    while let Some(x) = word(s, at) {
        if has_byte(x, b'"') || has_byte(x, b'\\') || has_less(x, 0x20) {
            break;
        }
        at += 8;
    }
    at - pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_tests_agree_with_bytewise_ones() {
        // Every byte value at every position of a word, over a plain background.
        for pos in 0..8 {
            for b in 0..=255u8 {
                let mut w = [b'a'; 8];
                w[pos] = b;
                let x = u64::from_le_bytes(w);
                assert_eq!(has_byte(x, b'"'), b == b'"', "{b} at {pos}");
                assert_eq!(has_byte(x, b'\\'), b == b'\\', "{b} at {pos}");
                assert_eq!(has_less(x, 0x20), b < 0x20, "{b} at {pos}");
            }
        }
        assert_eq!(plain_run(b"abcdefghijklmnop\"xyz", 0), 16);
        assert_eq!(plain_run(b"abcdefghijklmno\"", 0), 8);
        assert_eq!(plain_run(b"abc", 0), 0);
    }
}
