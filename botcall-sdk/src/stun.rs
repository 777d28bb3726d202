//! Just enough STUN (RFC 8489) to learn the bot's server-reflexive address
//! from the daemon's STUN responder: a Binding request, and the
//! XOR-MAPPED-ADDRESS of its success response.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The STUN magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of a Binding request without attributes.
pub const REQUEST_LEN: usize = 20;

/// Why a datagram is not the response we wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunError {
    /// Not STUN, or truncated.
    NotStun,
    /// STUN, but not a Binding success for our transaction.
    NotOurs,
    /// No usable (XOR-)MAPPED-ADDRESS attribute.
    NoAddress,
}

/// A Binding request with transaction id `txid`.
pub fn binding_request(txid: &[u8; 12]) -> [u8; REQUEST_LEN] {
    let mut m = [0u8; REQUEST_LEN];
    m[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
    // Message length 0: no attributes.
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(txid);
    m
}

/// Whether `buf` looks like a STUN message (first two bits zero, cookie).
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= 20 && buf[0] & 0xC0 == 0 && buf[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// The mapped address from a Binding success response to `txid`.
///
/// # Errors
/// [`StunError`].
pub fn parse_binding_response(buf: &[u8], txid: &[u8; 12]) -> Result<SocketAddr, StunError> {
    if !is_stun(buf) {
        return Err(StunError::NotStun);
    }
    let ty = u16::from_be_bytes([buf[0], buf[1]]);
    if ty != 0x0101 || buf[8..20] != *txid {
        return Err(StunError::NotOurs);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let attrs = buf.get(20..20 + len).ok_or(StunError::NotStun)?;
    let mut plain = None;
    let mut at = 0;
    while let Some(h) = attrs.get(at..at + 4) {
        let kind = u16::from_be_bytes([h[0], h[1]]);
        let alen = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let Some(v) = attrs.get(at + 4..at + 4 + alen) else {
            return Err(StunError::NotStun);
        };
        match kind {
            0x0020 => return decode_addr(v, Some(&buf[4..20])).ok_or(StunError::NoAddress),
            0x0001 => plain = decode_addr(v, None),
            _ => {}
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    plain.ok_or(StunError::NoAddress)
}

/// Decodes a (XOR-)MAPPED-ADDRESS value; `xor` is cookie + transaction id.
fn decode_addr(v: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        1 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(v.get(4..8)?);
            if let Some(x) = xor {
                for (b, k) in a.iter_mut().zip(x) {
                    *b ^= k;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        2 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v.get(4..20)?);
            if let Some(x) = xor {
                for (b, k) in a.iter_mut().zip(x) {
                    *b ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5769_ipv4_response() {
        // RFC 5769 §2.2 sample IPv4 response (XOR-MAPPED-ADDRESS 192.0.2.1:32853).
        let resp: [u8; 80] = [
            0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
            0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
            0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
            0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
            0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
            0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
        ];
        let txid: [u8; 12] = resp[8..20].try_into().unwrap();
        assert_eq!(
            parse_binding_response(&resp, &txid),
            Ok("192.0.2.1:32853".parse().unwrap())
        );
        assert_eq!(
            parse_binding_response(&resp, &[0; 12]),
            Err(StunError::NotOurs)
        );
        assert_eq!(
            parse_binding_response(&resp[..30], &txid),
            Err(StunError::NotStun)
        );
        assert_eq!(
            parse_binding_response(b"hello", &txid),
            Err(StunError::NotStun)
        );
        let req = binding_request(&txid);
        assert!(is_stun(&req));
        assert_eq!(&req[..4], &[0, 1, 0, 0]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 99;
        let txid = [7u8; 12];
        for n in 0..500usize {
            let mut buf = [0u8; 64];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            buf[0] = 1;
            buf[1] = 1;
            buf[2] = 0;
            buf[3] = (n % 48) as u8;
            buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            buf[8..20].copy_from_slice(&txid);
            let _ = parse_binding_response(&buf[..20 + n % 45], &txid);
        }
    }
}
