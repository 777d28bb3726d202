//! Strict base64url without padding (RFC 7515 §2), on `base64ct`.
//!
//! Padding, whitespace, the standard alphabet and non-canonical trailing bits
//! are all rejected, so one token has exactly one encoding.

use base64ct::{Base64UrlUnpadded, Encoding};

/// The text is not canonical unpadded base64url, or the output buffer is too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct B64Error;

/// Decodes `src` into `dst`, returning the decoded bytes.
///
/// # Errors
/// [`B64Error`] for any non-canonical input or a too-small `dst`.
pub fn decode<'d>(src: &[u8], dst: &'d mut [u8]) -> Result<&'d [u8], B64Error> {
    // base64ct rejects padding, foreign characters and, in its last-block
    // check, non-zero trailing bits; a length of 1 (mod 4) is impossible.
    if src.len() % 4 == 1 {
        return Err(B64Error);
    }
    Base64UrlUnpadded::decode(src, dst).map_err(|_| B64Error)
}

/// Decoded length of `n` base64url characters (upper bound for invalid input).
pub const fn decoded_len(n: usize) -> usize {
    n / 4 * 3 + (n % 4) * 3 / 4
}

/// Encoded length of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n / 3 * 4 + (n % 3 * 4).div_ceil(3)
}

/// Encodes `src` into `dst`, returning the text.
///
/// # Errors
/// [`B64Error`] if `dst` is shorter than [`encoded_len`]`(src.len())`.
pub fn encode<'d>(src: &[u8], dst: &'d mut [u8]) -> Result<&'d str, B64Error> {
    Base64UrlUnpadded::encode(src, dst).map_err(|_| B64Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_lengths() {
        for n in 0..40usize {
            let data: heapless::Vec<u8, 40> = (0..n as u8).collect();
            let mut enc = [0u8; 64];
            let s = encode(&data, &mut enc).unwrap();
            assert_eq!(s.len(), encoded_len(n));
            let mut dec = [0u8; 40];
            assert_eq!(decode(s.as_bytes(), &mut dec).unwrap(), &data[..]);
            assert_eq!(decoded_len(s.len()), n);
        }
    }

    #[test]
    fn rejects_non_canonical() {
        let mut out = [0u8; 16];
        // "QQ" is "A"; "QR" decodes to "A" too with non-zero trailing bits.
        assert!(decode(b"QQ", &mut out).is_ok());
        assert_eq!(decode(b"QR", &mut out), Err(B64Error));
        assert_eq!(decode(b"QQ==", &mut out), Err(B64Error));
        assert_eq!(decode(b"Q Q", &mut out), Err(B64Error));
        assert_eq!(decode(b"Q+", &mut out), Err(B64Error));
        assert_eq!(decode(b"Q/", &mut out), Err(B64Error));
        assert_eq!(decode(b"QUJD\n", &mut out), Err(B64Error));
        assert_eq!(decode(b"QUJDR", &mut out), Err(B64Error));
        // "_-" are the url alphabet and must pass.
        assert!(decode(b"_-8", &mut out).is_ok());
    }
}
