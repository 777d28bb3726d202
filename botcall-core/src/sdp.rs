//! The one thing BotCall reads from SDP: the DTLS fingerprints
//! (`a=fingerprint:sha-256 AB:CD:…`, RFC 8122), which bind a human
//! attestation to the media of the caller who was checked.
//!
//! An offer may carry several `a=fingerprint` lines, at session and media
//! level, with different hash functions of its one certificate (aiortc sends
//! sha-256, sha-384 and sha-512). They are accepted as long as they can
//! describe one certificate: one value per hash function, and each digest
//! as long as its hash function makes it. The attestation is bound to the
//! sha-256 line ([`Fingerprints::primary`]: the hash every DTLS-SRTP stack
//! must verify, RFC 8122 §5 / RFC 8827 §6.5) and lists all of them, so a
//! bot whose DTLS stack verifies another line is bound just as well.
//!
//! One extractor reads a character stream: [`fingerprints`] feeds it the
//! decoded SDP, [`fingerprints_json`] the SDP still escaped inside a JSON
//! message (decoded on the fly, no buffer), so the daemon and the SDK can
//! never disagree about what an offer says.

use crate::json::JsonStr;

/// Longest fingerprint text kept: a 10-character hash name, a space and a
/// 64-byte (sha-512) digest in hex pairs is 202; longer is malformed.
pub const MAX_FP_LEN: usize = 202;
/// Most distinct hash functions in one offer (RFC 8122 names seven).
pub const MAX_FPS: usize = 8;

/// Why an offer's fingerprints are unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdpError {
    /// No `a=fingerprint:` line.
    Missing,
    /// Two different values for one hash function: the lines cannot all
    /// describe one certificate.
    Ambiguous,
    /// A value that is not `<hash-func> <hex pairs>`, is too long, or whose
    /// digest length does not fit its hash function.
    Malformed,
    /// More than [`MAX_FPS`] distinct hash functions.
    TooMany,
    /// Fingerprints, but none with sha-256 (the hash every DTLS-SRTP stack
    /// must support, RFC 8122 §5).
    NoSha256,
}

impl SdpError {
    /// A stable code for logs and tests.
    pub fn code(self) -> &'static str {
        match self {
            SdpError::Missing => "missing",
            SdpError::Ambiguous => "ambiguous",
            SdpError::Malformed => "malformed",
            SdpError::TooMany => "too_many",
            SdpError::NoSha256 => "no_sha256",
        }
    }
}

impl core::fmt::Display for SdpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SdpError::Missing => "SDP has no a=fingerprint line",
            SdpError::Ambiguous => {
                "SDP has two different DTLS fingerprints with one hash function (not one certificate)"
            }
            SdpError::Malformed => "SDP a=fingerprint line is malformed",
            SdpError::TooMany => "SDP has more than 8 DTLS fingerprint hash functions",
            SdpError::NoSha256 => "SDP has no sha-256 DTLS fingerprint (RFC 8122 requires one)",
        })
    }
}

/// A DTLS fingerprint as text, e.g. `sha-256 AB:CD:…`, normalised: hash name
/// lower-case, hex upper-case, single space.
pub type Fingerprint = heapless::String<MAX_FP_LEN>;

/// An offer's fingerprints: one per hash function, in order of first
/// appearance, always including sha-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    all: heapless::Vec<Fingerprint, MAX_FPS>,
    primary: usize,
}

impl Fingerprints {
    /// The sha-256 fingerprint: what the attestation's `fp` names.
    pub fn primary(&self) -> &Fingerprint {
        // `primary` indexes `all`, checked when the set was built.
        &self.all[self.primary]
    }
    /// All of them (the attestation's `fps`).
    pub fn as_slice(&self) -> &[Fingerprint] {
        &self.all
    }
    /// Whether `fp` (any case or spacing) is one of them.
    pub fn contains(&self, fp: &str) -> bool {
        normalise(fp).is_ok_and(|n| self.all.contains(&n))
    }
    /// Whether `other` names exactly these fingerprints (any order, any case,
    /// duplicates allowed).
    pub fn same_set<'a>(&self, other: impl IntoIterator<Item = &'a str> + Clone) -> bool {
        other.clone().into_iter().all(|f| self.contains(f))
            && self.all.iter().all(|mine| {
                other
                    .clone()
                    .into_iter()
                    .any(|f| normalise(f).is_ok_and(|n| n == *mine))
            })
    }
}

/// The offer's fingerprints.
///
/// # Errors
/// [`SdpError`]: none, two for one hash function, a malformed one, too many
/// hash functions, or no sha-256.
pub fn fingerprints(sdp: &str) -> Result<Fingerprints, SdpError> {
    of_chars(PlainLines(sdp.chars()))
}

/// As [`fingerprints`], reading an SDP still escaped inside JSON (decoded on
/// the fly, no buffer).
///
/// # Errors
/// [`SdpError`].
pub fn fingerprints_json(sdp: JsonStr<'_>) -> Result<Fingerprints, SdpError> {
    of_chars(sdp.chars())
}

/// Characters, and a fast way past the rest of a line that cannot be a
/// fingerprint (most of an SDP).
trait LineChars: Iterator<Item = char> {
    /// Moves towards the end of the current line without passing it: the
    /// next character is still read and is at most the line end.
    fn skip_in_line(&mut self);
}

/// An SDP as plain text.
struct PlainLines<'a>(core::str::Chars<'a>);

impl Iterator for PlainLines<'_> {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        self.0.next()
    }
}

impl LineChars for PlainLines<'_> {
    fn skip_in_line(&mut self) {
        let rest = self.0.as_str();
        let at = rest
            .bytes()
            .position(|b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        // `at` is an ASCII byte or the end: a char boundary.
        self.0 = rest.get(at..).unwrap_or("").chars();
    }
}

impl LineChars for crate::json::read::Chars<'_> {
    fn skip_in_line(&mut self) {
        // Inside JSON a line end is always an escape (`\n`, `\r`, `\u000a`…).
        self.skip_to_escape();
    }
}

/// The offer's sha-256 fingerprint ([`Fingerprints::primary`]).
///
/// # Errors
/// [`SdpError`], as [`fingerprints`].
pub fn fingerprint(sdp: &str) -> Result<Fingerprint, SdpError> {
    fingerprints(sdp).map(|f| f.primary().clone())
}

const PREFIX: &str = "a=fingerprint:";

/// Digest lengths in bytes of the hash functions RFC 8122 §5 names.
fn digest_len(hash: &str) -> Option<usize> {
    Some(match hash {
        "sha-1" => 20,
        "sha-224" => 28,
        "sha-256" => 32,
        "sha-384" => 48,
        "sha-512" => 64,
        "md5" | "md2" => 16,
        _ => return None,
    })
}

/// The extractor: lines end at `\n` or `\r`; a line that starts with
/// `a=fingerprint:` gives one value.
fn of_chars(mut chars: impl LineChars) -> Result<Fingerprints, SdpError> {
    let mut all: heapless::Vec<Fingerprint, MAX_FPS> = heapless::Vec::new();
    // State per line: how much of PREFIX matched, then the value collected.
    let mut matched = 0usize;
    let mut value = Fingerprint::new();
    let mut overflow = false;
    let mut in_value = false;
    let mut dead = false;
    loop {
        if dead {
            chars.skip_in_line();
        }
        // The text ends as if with one more line end.
        let (c, end) = match chars.next() {
            Some(c) => (c, false),
            None => ('\n', true),
        };
        if c == '\n' || c == '\r' {
            if in_value {
                if overflow {
                    return Err(SdpError::Malformed);
                }
                add(&mut all, normalise(&value)?)?;
                value.clear();
            }
            if end {
                break;
            }
            matched = 0;
            in_value = false;
            dead = false;
            overflow = false;
            continue;
        }
        if dead {
            continue;
        }
        if in_value {
            if value.push(c).is_err() {
                overflow = true;
            }
        } else if c.is_ascii() && PREFIX.as_bytes().get(matched) == Some(&(c as u8)) {
            matched += 1;
            in_value = matched == PREFIX.len();
        } else {
            dead = true;
        }
    }
    if all.is_empty() {
        return Err(SdpError::Missing);
    }
    let primary = all
        .iter()
        .position(|f| f.starts_with("sha-256 "))
        .ok_or(SdpError::NoSha256)?;
    Ok(Fingerprints { all, primary })
}

/// Adds `fp` unless its hash function is there already with the same value.
fn add(all: &mut heapless::Vec<Fingerprint, MAX_FPS>, fp: Fingerprint) -> Result<(), SdpError> {
    let hash = hash_of(&fp);
    match all.iter().find(|f| hash_of(f) == hash) {
        Some(f) if *f == fp => Ok(()),
        Some(_) => Err(SdpError::Ambiguous),
        None => all.push(fp).map_err(|_| SdpError::TooMany),
    }
}

fn hash_of(fp: &str) -> &str {
    fp.split(' ').next().unwrap_or("")
}

fn normalise(value: &str) -> Result<Fingerprint, SdpError> {
    let mut parts = value.trim().split(' ').filter(|p| !p.is_empty());
    let (Some(hash), Some(hex), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(SdpError::Malformed);
    };
    if hash.is_empty()
        || hash.len() > 10
        || !hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(SdpError::Malformed);
    }
    let pairs_ok = hex
        .split(':')
        .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    let bytes = hex.len().div_ceil(3);
    if !pairs_ok || !(2..=64).contains(&bytes) {
        return Err(SdpError::Malformed);
    }
    let mut out = Fingerprint::new();
    for c in hash.chars() {
        out.push(c.to_ascii_lowercase())
            .map_err(|_| SdpError::Malformed)?;
    }
    if digest_len(&out).is_some_and(|n| n != bytes) {
        return Err(SdpError::Malformed);
    }
    out.push(' ').map_err(|_| SdpError::Malformed)?;
    for c in hex.chars() {
        out.push(c.to_ascii_uppercase())
            .map_err(|_| SdpError::Malformed)?;
    }
    Ok(out)
}

/// Whether two fingerprint texts name the same certificate hash
/// (case-insensitive, whitespace-tolerant).
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    match (normalise(a), normalise(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1";
    const FP2: &str = "sha-256 FF:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1";
    const FP384: &str = "sha-384 D0:3E:19:B8:6B:70:58:68:8A:01:53:B4:D8:A4:4C:C6:C5:A0:6E:8E:2E:11:DD:6B:E1:30:5C:D5:DA:D2:B4:2C:B2:9F:19:70:83:A2:75:6E:A8:56:D8:57:BB:8C:41:8F";
    const FP512: &str = "sha-512 5C:3F:C6:2A:4C:6D:87:A0:A2:B4:6A:07:5D:83:43:2D:7E:E0:8D:6D:BA:1C:C2:36:A6:A3:74:2A:C5:18:92:80:94:B3:7A:6E:A8:EB:D6:89:BE:7B:59:1B:10:0A:AB:6F:40:76:E1:27:3A:27:1B:FE:B9:7F:7A:4A:97:7D:3E:75";

    /// The fingerprint lines of aiortc 1.16's offers (one certificate, three hashes).
    fn aiortc_offer() -> heapless::String<1024> {
        let mut s = heapless::String::new();
        s.push_str("v=0\r\no=- 3980000000 3980000000 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 0 8\r\n")
            .unwrap();
        for fp in [FP, FP384, FP512] {
            s.push_str("a=fingerprint:").unwrap();
            s.push_str(fp).unwrap();
            s.push_str("\r\n").unwrap();
        }
        s.push_str("a=setup:actpass\r\n").unwrap();
        s
    }

    #[test]
    fn finds_session_and_media_level() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\na=fingerprint:SHA-256 9b:36:0a:17:5e:2b:2a:0f:b5:8b:e5:de:f6:6b:9a:1b:4a:7f:28:1a:9c:5e:33:1c:5b:0e:27:99:9e:40:63:c1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert_eq!(fingerprint(sdp).unwrap().as_str(), FP);
        let media = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1\r\nm=video 9 x\r\na=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1\r\n";
        assert_eq!(fingerprint(media).unwrap().as_str(), FP);
        assert!(same_fingerprint(
            FP,
            "SHA-256  9b:36:0a:17:5e:2b:2a:0f:b5:8b:e5:de:f6:6b:9a:1b:4a:7f:28:1a:9c:5e:33:1c:5b:0e:27:99:9e:40:63:c1"
        ));
    }

    #[test]
    fn several_hashes_of_one_certificate_are_one_set() {
        let fps = fingerprints(&aiortc_offer()).unwrap();
        assert_eq!(fps.primary().as_str(), FP);
        assert_eq!(
            fps.as_slice()
                .iter()
                .map(|f| f.as_str())
                .collect::<heapless::Vec<&str, 4>>()
                .as_slice(),
            [FP, FP384, FP512]
        );
        // The primary is sha-256 wherever it stands.
        let mut late = heapless::String::<1024>::new();
        for fp in [FP512, FP384, FP] {
            late.push_str("a=fingerprint:").unwrap();
            late.push_str(fp).unwrap();
            late.push_str("\r\n").unwrap();
        }
        assert_eq!(fingerprint(&late).unwrap().as_str(), FP);
        assert!(fps.same_set([FP512, FP, FP384, FP]));
        assert!(!fps.same_set([FP, FP384]));
        assert!(!fps.same_set([FP, FP384, FP512, FP2]));
        assert!(fps.contains(FP384) && !fps.contains(FP2));
    }

    #[test]
    fn refuses_what_cannot_be_one_certificate() {
        assert_eq!(fingerprints("v=0\r\n"), Err(SdpError::Missing));
        let two = "a=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1\r\na=fingerprint:sha-256 FF:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1\r\n";
        assert_eq!(fingerprints(two), Err(SdpError::Ambiguous));
        // A digest that does not fit its hash function.
        assert_eq!(
            fingerprints("a=fingerprint:sha-256 AB:CD\r\n"),
            Err(SdpError::Malformed)
        );
        assert_eq!(
            fingerprints("a=fingerprint:sha-256\r\n"),
            Err(SdpError::Malformed)
        );
        assert_eq!(
            fingerprints("a=fingerprint:sha-256 XY:CD\r\n"),
            Err(SdpError::Malformed)
        );
        assert_eq!(
            fingerprints("x a=fingerprint:sha-256 AB:CD\r\n"),
            Err(SdpError::Missing)
        );
        // Only hashes a bot cannot be sure to verify.
        let mut only512 = heapless::String::<256>::new();
        only512.push_str("a=fingerprint:").unwrap();
        only512.push_str(FP512).unwrap();
        assert_eq!(fingerprints(&only512), Err(SdpError::NoSha256));
        // Unknown hash names are kept (for any length of hex pairs).
        let mut other = heapless::String::<512>::new();
        other.push_str("a=fingerprint:").unwrap();
        other.push_str(FP).unwrap();
        other
            .push_str("\na=fingerprint:blake-3 01:02:03\n")
            .unwrap();
        assert_eq!(fingerprints(&other).unwrap().as_slice().len(), 2);
        let mut many = heapless::String::<1024>::new();
        many.push_str("a=fingerprint:").unwrap();
        many.push_str(FP).unwrap();
        many.push('\n').unwrap();
        for i in 0..8 {
            many.push_str("a=fingerprint:h-").unwrap();
            many.push(char::from(b'0' + i)).unwrap();
            many.push_str(" 01:02\n").unwrap();
        }
        assert_eq!(fingerprints(&many), Err(SdpError::TooMany));
        let long = "a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB";
        assert_eq!(fingerprints(long), Err(SdpError::Malformed));
    }

    /// JSON-escapes `sdp`, escaping characters in several ways (`\n`,
    /// `\u000a`, `\/`, surrogate pairs) as chosen by `style`.
    fn escape(sdp: &str, style: u32, out: &mut heapless::String<4096>) {
        use core::fmt::Write;
        out.push_str("{\"s\":\"").unwrap();
        for (i, c) in sdp.chars().enumerate() {
            let pick = (style >> (i % 16)) & 1 == 1;
            match c {
                '"' => out.push_str("\\\"").unwrap(),
                '\\' => out.push_str("\\\\").unwrap(),
                '\r' if pick => out.push_str("\\u000D").unwrap(),
                '\r' => out.push_str("\\r").unwrap(),
                '\n' if pick => out.push_str("\\u000a").unwrap(),
                '\n' => out.push_str("\\n").unwrap(),
                '/' if pick => out.push_str("\\/").unwrap(),
                c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32).unwrap(),
                c if pick && (c as u32) > 0xFFFF => {
                    let v = c as u32 - 0x10000;
                    write!(
                        out,
                        "\\u{:04X}\\u{:04X}",
                        0xD800 + (v >> 10),
                        0xDC00 + (v & 0x3FF)
                    )
                    .unwrap()
                }
                c if pick && c.is_ascii_alphanumeric() => {
                    write!(out, "\\u{:04x}", c as u32).unwrap()
                }
                c => out.push(c).unwrap(),
            }
        }
        out.push_str("\"}").unwrap();
    }

    fn json_and_plain_agree(sdp: &str, style: u32) {
        let mut json = heapless::String::<4096>::new();
        escape(sdp, style, &mut json);
        let o = crate::json::parse_object(&json).unwrap();
        let js = o.req_str("s").unwrap();
        assert_eq!(
            fingerprints_json(js),
            fingerprints(sdp),
            "{sdp:?} as {json}"
        );
    }

    #[test]
    fn json_and_decoded_paths_agree() {
        let cases = [
            "v=0\r\na=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1\r\nm=audio\r\n",
            "a=fingerprint:sha-256 ab:cd\r\n",
            "v=0\r\nx a=fingerprint:sha-256 AB:CD\r\n",
            // The bug once in the fast path: an escaped backslash, then `n`.
            "v=0\\na=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1\r\n",
            "v=0\\ra=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1",
            "v=0\r\na=fingerprint:sha-256\r\n",
            "a=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1\\\r\n",
            "a=fingerprint:sha-256 9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1 \u{1F600}\r\n",
            "\u{1F600}a=fingerprint:x 01:02\n",
            "v=0\n",
        ];
        for sdp in cases {
            for style in [0, u32::MAX, 0x5555_5555, 0x0F0F_0F0F] {
                json_and_plain_agree(sdp, style);
            }
        }
        json_and_plain_agree(&aiortc_offer(), 0x1234_5678);
        // Every old case still reads the same in the escaped form.
        let mut lcg = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2000 {
            lcg = lcg
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let mut s = heapless::String::<512>::new();
            let mut x = lcg;
            let pieces = [
                "a=fingerprint:",
                "sha-256 ",
                "9B:36:0A:17:5E:2B:2A:0F:B5:8B:E5:DE:F6:6B:9A:1B:4A:7F:28:1A:9C:5E:33:1C:5B:0E:27:99:9E:40:63:C1",
                "\r\n",
                "\n",
                "\\",
                "n",
                "AB:",
                " ",
                "sha-384 ",
                "\u{e9}",
                "\"",
                "/",
                "\u{1F600}",
                "x",
                "\r",
            ];
            for _ in 0..12 {
                let p = pieces[(x % pieces.len() as u64) as usize];
                x /= pieces.len() as u64;
                if x == 0 {
                    x = lcg.rotate_left(17);
                }
                if s.push_str(p).is_err() {
                    break;
                }
            }
            json_and_plain_agree(&s, (lcg >> 32) as u32);
        }
    }
}
