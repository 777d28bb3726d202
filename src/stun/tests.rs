//! Tests: RFC 5769 vectors, replies checked byte by byte and through our own
//! parser, every error path, and hostile input (truncations, mutations and
//! random bytes) checked against an independent reference validator.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::response::{BINDING_ERROR, BINDING_SUCCESS};
use super::{
    MAX_REQUEST_LEN, MAX_UNKNOWN, RESPONSE_BUF_LEN, StunError, attr, handle, parse,
    parse_xor_mapped_address,
};

// ---------------------------------------------------------------- helpers --

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Bitwise CRC-32 (IEEE, reflected), independent of the codec's table.
fn crc32_reference(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn fingerprint_reference(covered: &[u8]) -> u32 {
    crc32_reference(covered) ^ 0x5354_554E
}

const TXID: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

/// Builds a message by hand (not with the module's writer). Values are padded
/// with `pad_byte`; `fingerprint` appends a correct FINGERPRINT.
fn build(
    message_type: u16,
    txid: &[u8; 12],
    attrs: &[(u16, &[u8])],
    fingerprint: bool,
    pad_byte: u8,
) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&message_type.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(txid);
    for &(ty, value) in attrs {
        m.extend_from_slice(&ty.to_be_bytes());
        m.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        m.extend_from_slice(value);
        while m.len() % 4 != 0 {
            m.push(pad_byte);
        }
    }
    let body = u16::try_from(m.len() - 20 + if fingerprint { 8 } else { 0 }).unwrap();
    m[2..4].copy_from_slice(&body.to_be_bytes());
    if fingerprint {
        let crc = fingerprint_reference(&m);
        m.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
        m.extend_from_slice(&4u16.to_be_bytes());
        m.extend_from_slice(&crc.to_be_bytes());
    }
    m
}

fn binding_request(attrs: &[(u16, &[u8])], fingerprint: bool) -> Vec<u8> {
    build(0x0001, &TXID, attrs, fingerprint, 0)
}

fn v4(a: u8, b: u8, c: u8, d: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(a, b, c, d), port))
}

fn from_v4() -> SocketAddr {
    v4(192, 0, 2, 1, 32853)
}

fn from_v6() -> SocketAddr {
    let ip = Ipv6Addr::new(0x2001, 0xdb8, 0x1234, 0x5678, 0x11, 0x2233, 0x4455, 0x6677);
    SocketAddr::from((ip, 32853))
}

/// Runs `handle` and returns the reply bytes, if any.
fn answer(request: &[u8], from: SocketAddr) -> Result<Option<Vec<u8>>, StunError> {
    let mut out = [0u8; RESPONSE_BUF_LEN];
    Ok(handle(request, from, &mut out)?.map(|n| out[..n].to_vec()))
}

/// Independent validator: what `parse` should accept, written the obvious way.
fn reference_valid(m: &[u8]) -> bool {
    if m.len() < 20 || m[0] & 0xC0 != 0 || m[4..8] != [0x21, 0x12, 0xA4, 0x42] {
        return false;
    }
    let len = usize::from(u16::from_be_bytes([m[2], m[3]]));
    if len != m.len() - 20 || len % 4 != 0 {
        return false;
    }
    let mut i = 20;
    let mut seen_fingerprint = false;
    while i < m.len() {
        if seen_fingerprint || i + 4 > m.len() {
            return false;
        }
        let ty = u16::from_be_bytes([m[i], m[i + 1]]);
        let alen = usize::from(u16::from_be_bytes([m[i + 2], m[i + 3]]));
        let end = i + 4 + alen.div_ceil(4) * 4;
        if end > m.len() {
            return false;
        }
        if ty == attr::FINGERPRINT {
            if alen != 4 {
                return false;
            }
            let v = u32::from_be_bytes([m[i + 4], m[i + 5], m[i + 6], m[i + 7]]);
            if v != fingerprint_reference(&m[..i]) {
                return false;
            }
            seen_fingerprint = true;
        }
        i = end;
    }
    true
}

/// Checks the invariants of any reply: it parses, its length field and
/// padding are right, it echoes `txid`, ends with a FINGERPRINT that the
/// reference CRC agrees with, and carries SOFTWARE "botcalld". Returns the
/// attributes for further checks.
fn check_reply(reply: &[u8], txid: &[u8; 12]) -> Vec<(u16, Vec<u8>)> {
    assert!(reply.len() <= RESPONSE_BUF_LEN);
    assert_eq!(reply.len() % 4, 0);
    assert!(
        reference_valid(reply),
        "reply fails the reference validator"
    );
    let msg = parse(reply).expect("reply parses");
    assert_eq!(msg.transaction_id(), txid);
    assert!(msg.has_fingerprint());
    let attrs: Vec<(u16, Vec<u8>)> = msg.attributes().map(|(t, v)| (t, v.to_vec())).collect();
    let (last_ty, last_value) = attrs.last().expect("has attributes");
    assert_eq!(*last_ty, attr::FINGERPRINT);
    let crc = fingerprint_reference(&reply[..reply.len() - 8]);
    assert_eq!(last_value, &crc.to_be_bytes());
    assert_eq!(msg.attribute(attr::SOFTWARE), Some(&b"botcalld"[..]));
    attrs
}

/// Checks a Binding success reply and returns its XOR-MAPPED-ADDRESS.
fn check_success(reply: &[u8], txid: &[u8; 12]) -> SocketAddr {
    let attrs = check_reply(reply, txid);
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), BINDING_SUCCESS);
    let types: Vec<u16> = attrs.iter().map(|a| a.0).collect();
    assert_eq!(
        types,
        [attr::XOR_MAPPED_ADDRESS, attr::SOFTWARE, attr::FINGERPRINT]
    );
    parse_xor_mapped_address(&attrs[0].1, txid).expect("XOR-MAPPED-ADDRESS decodes")
}

/// Checks a 420 reply and returns the attribute types it lists.
fn check_420(reply: &[u8], txid: &[u8; 12]) -> Vec<u16> {
    let attrs = check_reply(reply, txid);
    assert_eq!(u16::from_be_bytes([reply[0], reply[1]]), BINDING_ERROR);
    let types: Vec<u16> = attrs.iter().map(|a| a.0).collect();
    assert_eq!(
        types,
        [
            attr::ERROR_CODE,
            attr::UNKNOWN_ATTRIBUTES,
            attr::SOFTWARE,
            attr::FINGERPRINT
        ]
    );
    assert_eq!(attrs[0].1, b"\0\0\x04\x14Unknown Attribute");
    let list = &attrs[1].1;
    assert_eq!(list.len() % 2, 0);
    list.chunks(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect()
}

/// xorshift64: deterministic, seedable, good enough to shake a parser.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// The one property every input must have: `handle` never panics, returns
/// `Ok` exactly for what the reference validator accepts (and fits
/// [`MAX_REQUEST_LEN`]), and replies only to Binding requests, with a reply
/// that passes [`check_reply`]. Returns whether there was a reply.
fn check_any_input(input: &[u8]) -> bool {
    let from = v4(198, 51, 100, 7, 40000);
    let result = answer(input, from);
    let acceptable = input.len() <= MAX_REQUEST_LEN && reference_valid(input);
    assert_eq!(
        result.is_ok(),
        acceptable,
        "handle and the reference disagree on {input:02x?}: {result:?}"
    );
    match result {
        Ok(Some(reply)) => {
            assert_eq!(
                &input[..2],
                &[0x00, 0x01],
                "replied to a non-Binding-request"
            );
            let txid: [u8; 12] = input[8..20].try_into().unwrap();
            if u16::from_be_bytes([reply[0], reply[1]]) == BINDING_SUCCESS {
                assert_eq!(check_success(&reply, &txid), from);
            } else {
                assert!(!check_420(&reply, &txid).is_empty());
            }
            true
        }
        Ok(None) => {
            assert_ne!(
                &input[..2],
                &[0x00, 0x01],
                "no reply to a valid Binding request"
            );
            false
        }
        Err(_) => false,
    }
}

// ------------------------------------------------------- RFC 5769 vectors --

/// RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED,
/// USERNAME, MESSAGE-INTEGRITY (short-term, password
/// "VOkJxbRl1RmTxUk/WvJxBt") and FINGERPRINT.
fn rfc5769_request() -> Vec<u8> {
    hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
         00 24 00 04 6e 00 01 ff
         80 29 00 08 93 2f f9 b1 51 26 3b 36
         00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
         00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
         80 28 00 04 e5 7a 3b cf")
}

/// RFC 5769 §2.2: Binding success response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
fn rfc5769_ipv4_response() -> Vec<u8> {
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 08 00 01 a1 47 e1 12 a6 43
         00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
         80 28 00 04 c0 7d 4c 96")
}

/// RFC 5769 §2.3: Binding success response, XOR-MAPPED-ADDRESS
/// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
fn rfc5769_ipv6_response() -> Vec<u8> {
    hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
         00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
         80 28 00 04 c8 fb 0b 4c")
}

const RFC5769_TXID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

#[test]
fn crc_reference_matches_the_check_value() {
    assert_eq!(crc32_reference(b"123456789"), 0xCBF4_3926);
    assert_eq!(botcall_core::stun::crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn rfc5769_sample_request_parses() {
    let req = rfc5769_request();
    assert!(reference_valid(&req));
    let msg = parse(&req).unwrap();
    assert_eq!(msg.message_type(), 0x0001);
    assert_eq!(msg.transaction_id(), &RFC5769_TXID);
    assert!(msg.has_fingerprint());
    let types: Vec<u16> = msg.attributes().map(|a| a.0).collect();
    assert_eq!(types, [0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028]);
    assert_eq!(
        msg.attribute(attr::SOFTWARE),
        Some(&b"STUN test client"[..])
    );
    assert_eq!(msg.attribute(attr::USERNAME), Some(&b"evtj:h6vY"[..]));
    assert_eq!(
        msg.attribute(attr::PRIORITY),
        Some(&[0x6e, 0x00, 0x01, 0xff][..])
    );
    assert_eq!(
        msg.attribute(attr::MESSAGE_INTEGRITY).map(<[u8]>::len),
        Some(20)
    );
    assert_eq!(msg.attribute(0x7777), None);
}

#[test]
fn rfc5769_sample_request_is_answered_over_ipv4() {
    let reply = answer(&rfc5769_request(), from_v4()).unwrap().unwrap();
    assert_eq!(check_success(&reply, &RFC5769_TXID), from_v4());
    // Same transaction id and address as RFC 5769 §2.2, so the
    // XOR-MAPPED-ADDRESS attribute must be byte-identical to the RFC's.
    assert_eq!(
        reply[20..32],
        hex("00 20 00 08 00 01 a1 47 e1 12 a6 43")[..]
    );
    // The whole reply, FINGERPRINT from the reference CRC.
    let mut expected = hex("01 01 00 20 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
                            00 20 00 08 00 01 a1 47 e1 12 a6 43
                            80 22 00 08");
    expected.extend_from_slice(b"botcalld");
    expected.extend_from_slice(&hex("80 28 00 04"));
    expected
        .extend_from_slice(&fingerprint_reference(&expected[..expected.len() - 4]).to_be_bytes());
    assert_eq!(reply, expected);
}

#[test]
fn rfc5769_sample_request_is_answered_over_ipv6() {
    let reply = answer(&rfc5769_request(), from_v6()).unwrap().unwrap();
    assert_eq!(reply.len(), 64);
    assert_eq!(check_success(&reply, &RFC5769_TXID), from_v6());
    assert_eq!(
        reply[20..44],
        hex("00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9")[..]
    );
}

#[test]
fn rfc5769_sample_responses_decode() {
    for (bytes, want) in [
        (rfc5769_ipv4_response(), from_v4()),
        (rfc5769_ipv6_response(), from_v6()),
    ] {
        assert!(reference_valid(&bytes));
        let msg = parse(&bytes).unwrap();
        assert_eq!(msg.message_type(), BINDING_SUCCESS);
        assert_eq!(msg.transaction_id(), &RFC5769_TXID);
        assert!(msg.has_fingerprint());
        // "test vector" padded with a space: padding content is ignored.
        assert_eq!(msg.attribute(attr::SOFTWARE), Some(&b"test vector"[..]));
        let xma = msg.attribute(attr::XOR_MAPPED_ADDRESS).unwrap();
        assert_eq!(
            parse_xor_mapped_address(xma, msg.transaction_id()),
            Ok(want)
        );
    }
    assert_eq!(from_v4().to_string(), "192.0.2.1:32853");
    assert_eq!(
        from_v6().to_string(),
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
    );
}

#[test]
fn rfc5769_sample_responses_get_no_reply() {
    for bytes in [rfc5769_ipv4_response(), rfc5769_ipv6_response()] {
        assert_eq!(answer(&bytes, from_v4()), Ok(None));
    }
}

#[test]
fn rfc5769_vectors_with_a_flipped_bit_fail_the_fingerprint() {
    for bytes in [
        rfc5769_request(),
        rfc5769_ipv4_response(),
        rfc5769_ipv6_response(),
    ] {
        // Any bit of the body before FINGERPRINT (but not the FINGERPRINT
        // header itself, which would change the structure).
        for byte in 20..bytes.len() - 8 {
            let mut m = bytes.clone();
            m[byte] ^= 0x10;
            let got = parse(&m).map(|_| ());
            // A flipped attribute length may break the structure first.
            assert!(
                matches!(
                    got,
                    Err(StunError::BadFingerprint
                        | StunError::TruncatedAttribute
                        | StunError::FingerprintNotLast)
                ),
                "byte {byte}: {got:?}"
            );
        }
        let mut m = bytes.clone();
        let last = m.len() - 1;
        m[last] ^= 1;
        assert_eq!(parse(&m).map(|_| ()), Err(StunError::BadFingerprint));
    }
}

// ------------------------------------------------------------ our replies --

#[test]
fn minimal_request_gets_a_success_reply() {
    for fingerprint in [false, true] {
        let req = binding_request(&[], fingerprint);
        assert_eq!(req.len(), if fingerprint { 28 } else { 20 });
        for from in [
            from_v4(),
            from_v6(),
            v4(0, 0, 0, 0, 0),
            v4(255, 255, 255, 255, 65535),
            SocketAddr::from((Ipv6Addr::LOCALHOST, 1)),
            "[fe80::1%7]:3478".parse().unwrap(),
        ] {
            let reply = answer(&req, from).unwrap().unwrap();
            let mapped = check_success(&reply, &TXID);
            // Scope id and flow info are not part of XOR-MAPPED-ADDRESS.
            assert_eq!(mapped.ip(), from.ip());
            assert_eq!(mapped.port(), from.port());
            assert_eq!(reply.len(), if from.is_ipv4() { 52 } else { 64 });
        }
    }
}

#[test]
fn ipv4_mapped_source_is_answered_as_ipv4() {
    let from: SocketAddr = "[::ffff:203.0.113.9]:5000".parse().unwrap();
    let reply = answer(&binding_request(&[], true), from).unwrap().unwrap();
    assert_eq!(check_success(&reply, &TXID), v4(203, 0, 113, 9, 5000));
    assert_eq!(reply[25], 0x01, "family IPv4");
}

#[test]
fn transaction_id_is_echoed() {
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    for _ in 0..200 {
        let txid: [u8; 12] = std::array::from_fn(|_| rng.byte());
        let req = build(0x0001, &txid, &[], true, 0);
        let reply = answer(&req, from_v6()).unwrap().unwrap();
        assert_eq!(reply[8..20], txid);
        assert_eq!(check_success(&reply, &txid), from_v6());
    }
}

#[test]
fn optional_and_known_attributes_are_ignored() {
    let req = binding_request(
        &[
            (attr::SOFTWARE, b"some client 1.0"),
            (0xC0DE, b"unknown but comprehension-optional"),
            (attr::PRIORITY, &[1, 2, 3, 4]),
            (attr::USE_CANDIDATE, b""),
            (attr::XOR_MAPPED_ADDRESS, &[0, 1, 0, 0, 0, 0, 0, 0]),
            (attr::MAPPED_ADDRESS, &[0, 1, 0, 0, 0, 0, 0, 0]),
            (attr::USERNAME, b"user"),
            (attr::MESSAGE_INTEGRITY, &[0; 20]),
        ],
        true,
    );
    let reply = answer(&req, from_v4()).unwrap().unwrap();
    assert_eq!(check_success(&reply, &TXID), from_v4());
}

#[test]
fn padding_content_is_ignored() {
    let req = build(
        0x0001,
        &TXID,
        &[(attr::SOFTWARE, b"x"), (0x8123, b"ab")],
        true,
        0xEE,
    );
    let reply = answer(&req, from_v4()).unwrap().unwrap();
    assert_eq!(check_success(&reply, &TXID), from_v4());
}

#[test]
fn largest_request_is_answered_and_one_word_more_is_not() {
    let filler = vec![0x55; MAX_REQUEST_LEN - 20 - 4 - 8];
    let req = binding_request(&[(0x8FFF, &filler)], true);
    assert_eq!(req.len(), MAX_REQUEST_LEN);
    assert!(answer(&req, from_v4()).unwrap().is_some());

    let filler = vec![0x55; MAX_REQUEST_LEN - 20 - 4 - 8 + 4];
    let req = binding_request(&[(0x8FFF, &filler)], true);
    assert_eq!(req.len(), MAX_REQUEST_LEN + 4);
    assert_eq!(answer(&req, from_v4()), Err(StunError::TooLong));
    assert_eq!(answer(&vec![0; 65_535], from_v4()), Err(StunError::TooLong));
}

// -------------------------------------------------- 420 Unknown Attribute --

#[test]
fn change_request_gets_420() {
    // RFC 5780 CHANGE-REQUEST: a server without NAT behaviour discovery
    // answers 420, which is how the client learns that.
    let req = binding_request(&[(0x0003, &[0, 0, 0, 6])], true);
    let reply = answer(&req, from_v4()).unwrap().unwrap();
    assert_eq!(check_420(&reply, &TXID), [0x0003]);
}

#[test]
fn unknown_required_attributes_are_listed_once_in_order() {
    let req = binding_request(
        &[
            (0x7FFF, b"a"),
            (0xC001, b"optional: not listed"),
            (0x0000, b""),
            (attr::SOFTWARE, b"client"),
            (0x7FFF, b"again"),
            (0x0003, &[0, 0, 0, 0]),
        ],
        false,
    );
    let reply = answer(&req, from_v6()).unwrap().unwrap();
    assert_eq!(check_420(&reply, &TXID), [0x7FFF, 0x0000, 0x0003]);
    // Odd count: UNKNOWN-ATTRIBUTES is 6 bytes, padded with zeros to 8.
    assert_eq!(
        &reply[48..60],
        &hex("00 0a 00 06 7f ff 00 00 00 03 00 00")[..]
    );
}

#[test]
fn at_most_max_unknown_are_listed() {
    let values: Vec<(u16, &[u8])> = (0..40u16).map(|i| (0x4000 + i, &b""[..])).collect();
    let req = binding_request(&values, true);
    let reply = answer(&req, from_v4()).unwrap().unwrap();
    let listed = check_420(&reply, &TXID);
    let want: Vec<u16> = (0..MAX_UNKNOWN as u16).map(|i| 0x4000 + i).collect();
    assert_eq!(listed, want);
    assert_eq!(reply.len(), 104, "the largest reply there is");
}

#[test]
fn attributes_after_message_integrity_are_not_judged() {
    let req = binding_request(
        &[
            (attr::USERNAME, b"u"),
            (attr::MESSAGE_INTEGRITY, &[0; 20]),
            (0x0003, &[0, 0, 0, 0]),
        ],
        true,
    );
    let reply = answer(&req, from_v4()).unwrap().unwrap();
    assert_eq!(check_success(&reply, &TXID), from_v4());
}

// ------------------------------------------------------------ no reply --

#[test]
fn other_classes_and_methods_get_no_reply() {
    for ty in [
        0x0011u16, // Binding indication
        0x0101,    // Binding success response
        0x0111,    // Binding error response
        0x0003,    // Allocate request (TURN)
        0x0002,    // Shared Secret request (RFC 3489)
        0x0004,    // Refresh request
        0x0016,    // Send indication
        0x3EEF,    // every method bit
    ] {
        let m = build(ty, &TXID, &[(0x0003, &[0; 4])], true, 0);
        assert_eq!(answer(&m, from_v4()), Ok(None), "type {ty:#06x}");
    }
}

#[test]
fn each_malformation_has_its_error() {
    let good = binding_request(&[(attr::SOFTWARE, b"abc")], true);
    assert!(answer(&good, from_v4()).unwrap().is_some());

    assert_eq!(answer(&[], from_v4()), Err(StunError::TooShort));
    assert_eq!(answer(&good[..19], from_v4()), Err(StunError::TooShort));

    for first in [0x40u8, 0x80, 0xC0] {
        let mut m = good.clone();
        m[0] |= first;
        assert_eq!(answer(&m, from_v4()), Err(StunError::NotStun));
    }

    // RFC 3489 request: no magic cookie, just a 16-byte transaction id.
    let mut classic = good.clone();
    classic[4..8].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(answer(&classic, from_v4()), Err(StunError::BadCookie));

    for len in [0u16, 4, 8, 2, 13, 0xFFFC] {
        let mut m = good.clone();
        m[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            answer(&m, from_v4()),
            Err(StunError::BadLength),
            "length {len}"
        );
    }
    // Length matches but is not a multiple of 4.
    let mut m = good.clone();
    m.push(0);
    let len = u16::try_from(m.len() - 20).unwrap();
    m[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(answer(&m, from_v4()), Err(StunError::BadLength));

    // Attribute length past the end.
    let mut m = binding_request(&[(attr::SOFTWARE, b"abcd")], false);
    m[22..24].copy_from_slice(&5u16.to_be_bytes());
    assert_eq!(answer(&m, from_v4()), Err(StunError::TruncatedAttribute));
    m[22..24].copy_from_slice(&0xFFFFu16.to_be_bytes());
    assert_eq!(answer(&m, from_v4()), Err(StunError::TruncatedAttribute));

    // FINGERPRINT wrong.
    let mut m = good.clone();
    let last = m.len() - 1;
    m[last] ^= 0x80;
    assert_eq!(answer(&m, from_v4()), Err(StunError::BadFingerprint));
    // FINGERPRINT of the wrong size.
    let m = binding_request(&[(attr::FINGERPRINT, &[0; 8])], false);
    assert_eq!(answer(&m, from_v4()), Err(StunError::BadFingerprint));
    let m = binding_request(&[(attr::FINGERPRINT, b"")], false);
    assert_eq!(answer(&m, from_v4()), Err(StunError::BadFingerprint));

    // Something after FINGERPRINT.
    let mut m = good.clone();
    m.extend_from_slice(&hex("80 22 00 00"));
    let len = u16::try_from(m.len() - 20).unwrap();
    m[2..4].copy_from_slice(&len.to_be_bytes());
    // FINGERPRINT covers the header, so fix it for the new length.
    let fp_at = good.len() - 8;
    let crc = fingerprint_reference(&m[..fp_at]);
    m[fp_at + 4..fp_at + 8].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(answer(&m, from_v4()), Err(StunError::FingerprintNotLast));
}

#[test]
fn bad_xor_mapped_addresses_are_refused() {
    let ok = hex("00 01 a1 47 e1 12 a6 43");
    assert_eq!(parse_xor_mapped_address(&ok, &RFC5769_TXID), Ok(from_v4()));
    for bad in [
        &b""[..],
        &ok[..7],
        &hex("00 01 a1 47 e1 12 a6 43 00")[..],
        &hex("00 03 a1 47 e1 12 a6 43")[..],
        &hex("00 02 a1 47 e1 12 a6 43")[..],
        &hex("00 01 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9")[..],
    ] {
        assert_eq!(
            parse_xor_mapped_address(bad, &RFC5769_TXID),
            Err(StunError::BadAddress)
        );
    }
}

#[test]
fn errors_display_distinct_messages() {
    let all = [
        StunError::TooShort,
        StunError::TooLong,
        StunError::NotStun,
        StunError::BadCookie,
        StunError::BadLength,
        StunError::TruncatedAttribute,
        StunError::FingerprintNotLast,
        StunError::BadFingerprint,
        StunError::BadAddress,
        StunError::ResponseTooLarge,
    ];
    let texts: Vec<String> = all.iter().map(ToString::to_string).collect();
    for (i, t) in texts.iter().enumerate() {
        assert!(t.starts_with("STUN") || t.starts_with("not a STUN"), "{t}");
        assert!(!texts[..i].contains(t), "duplicate: {t}");
    }
    let _: &dyn std::error::Error = &StunError::TooShort;
}

// ---------------------------------------------------------- hostile input --

fn sample_requests() -> Vec<Vec<u8>> {
    vec![
        rfc5769_request(),
        binding_request(&[], true),
        binding_request(&[(attr::SOFTWARE, b"abcde"), (0x8123, b"xy")], true),
        binding_request(&[(0x0003, &[0, 0, 0, 6]), (0x7001, b"zzz")], true),
        binding_request(
            &[(attr::USERNAME, b"evtj"), (attr::PRIORITY, &[0; 4])],
            false,
        ),
    ]
}

#[test]
fn every_truncation_is_refused() {
    for req in sample_requests() {
        for cut in 0..req.len() {
            assert!(answer(&req[..cut], from_v4()).is_err(), "cut at {cut}");
            assert!(!check_any_input(&req[..cut]));
        }
    }
}

#[test]
fn every_truncation_with_a_fixed_length_field_is_handled() {
    // The header now agrees with the cut; only cuts on an attribute boundary
    // that leave no broken FINGERPRINT behind may be answered.
    let mut answered = 0;
    for req in sample_requests() {
        for cut in 20..req.len() {
            let mut m = req[..cut].to_vec();
            let len = u16::try_from(cut - 20).unwrap();
            m[2..4].copy_from_slice(&len.to_be_bytes());
            if check_any_input(&m) {
                answered += 1;
            }
        }
    }
    assert!(answered > 5, "boundaries without FINGERPRINT are answered");
}

#[test]
fn mutated_requests_never_panic_and_agree_with_the_reference() {
    let samples = sample_requests();
    let mut rng = XorShift(0x0123_4567_89ab_cdef);
    let mut replies = 0;
    for _ in 0..50_000 {
        let mut m = samples[rng.below(samples.len())].clone();
        match rng.below(4) {
            // Flip a few bytes.
            0 | 1 => {
                for _ in 0..=rng.below(4) {
                    let i = rng.below(m.len());
                    m[i] ^= rng.byte() | 1;
                }
            }
            // Rewrite one 16-bit field anywhere (often a type or length).
            2 => {
                let i = rng.below(m.len() / 2) * 2;
                let v = rng.next() as u16;
                m[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
            // Append junk and keep the length field consistent.
            _ => {
                for _ in 0..rng.below(40) {
                    m.push(rng.byte());
                }
                if m.len() >= 20 {
                    let len = u16::try_from(m.len() - 20).unwrap();
                    m[2..4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
        if check_any_input(&m) {
            replies += 1;
        }
    }
    assert!(
        replies > 100,
        "some mutants are still valid requests: {replies}"
    );
}

#[test]
fn random_bytes_never_panic_and_agree_with_the_reference() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::with_capacity(600);
    let mut ok = 0;
    for _ in 0..100_000 {
        buf.clear();
        let len = rng.below(600);
        buf.extend((0..len).map(|_| rng.byte()));
        // Half the time, a plausible header so attribute parsing is reached.
        if len >= 20 && rng.below(2) == 0 {
            buf[0] &= 0x3F;
            if rng.below(2) == 0 {
                buf[0..2].copy_from_slice(&[0, 1]);
            }
            buf[4..8].copy_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
            let body = u16::try_from(len - 20).unwrap();
            buf[2..4].copy_from_slice(&body.to_be_bytes());
        }
        check_any_input(&buf);
        if parse(&buf).is_ok() {
            ok += 1;
        }
    }
    assert!(ok > 0, "the plausible-header half reaches valid messages");
}
