//! STUN (RFC 8489) for the Binding probe and the TURN client
//! ([`crate::turn`]): the message codec is botcall-core's (one codec for
//! the daemon and the SDK); the long-term credential key (MD5) is here.

pub use botcall_core::stun::*;

/// The long-term credential key (RFC 8489 §9.2.2):
/// `MD5(username ":" realm ":" password)`. The strings are used as given
/// (no SASLprep/OpaqueString processing: TURN REST credentials are ASCII).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.4: a request with long-term authentication (USERNAME,
    /// NONCE, REALM, MESSAGE-INTEGRITY; no FINGERPRINT).
    const RFC5769_LONG_TERM: [u8; 116] = [
        0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
        0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
        0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
        0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
        0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
        0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
        0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
        0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
    ];
    /// "マトリックス" (the RFC's username, already through SASLprep).
    const RFC5769_USERNAME: &str = "\u{30de}\u{30c8}\u{30ea}\u{30c3}\u{30af}\u{30b9}";
    /// The RFC's password "The\u{00AD}M\u{00AA}tr\u{2168}" after SASLprep.
    const RFC5769_LT_PASSWORD: &str = "TheMatrIX";

    #[test]
    fn rfc5769_long_term_integrity() {
        let m = Message::parse(&RFC5769_LONG_TERM).unwrap();
        assert_eq!(m.attr_str(attr::USERNAME), Some(RFC5769_USERNAME));
        assert_eq!(m.attr_str(attr::REALM), Some("example.org"));
        assert_eq!(
            m.attr_str(attr::NONCE),
            Some("f//499k954d6OL34oL9FSTvy64sA")
        );
        let key = long_term_key(RFC5769_USERNAME, "example.org", RFC5769_LT_PASSWORD);
        assert!(m.check_integrity(&key));
        assert_eq!(m.check_fingerprint(), None);
        // The writer reproduces the vector byte for byte.
        let txid: [u8; 12] = RFC5769_LONG_TERM[8..20].try_into().unwrap();
        let mut buf = [0u8; 200];
        let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, &txid).unwrap();
        w.attr(attr::USERNAME, RFC5769_USERNAME.as_bytes()).unwrap();
        w.attr(attr::NONCE, b"f//499k954d6OL34oL9FSTvy64sA")
            .unwrap();
        w.attr(attr::REALM, b"example.org").unwrap();
        w.message_integrity(&key).unwrap();
        let n = w.finish();
        assert_eq!(&buf[..n], &RFC5769_LONG_TERM[..]);
    }
}
