//! The one thing BotCall reads from SDP: the DTLS fingerprint
//! (`a=fingerprint:sha-256 AB:CD:…`), which binds a human attestation to the
//! media of the caller who was checked.

use crate::json::JsonStr;

/// Longest fingerprint line value kept (`sha-512` is 7 + 1 + 191 characters).
pub const MAX_FP_LEN: usize = 200;

/// Why no usable fingerprint was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpError {
    /// No `a=fingerprint:` line.
    Missing,
    /// Two different fingerprints (one certificate is expected).
    Ambiguous,
    /// A fingerprint value that is not `<hash-func> <hex pairs>` or is too long.
    Malformed,
}

impl core::fmt::Display for SdpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SdpError::Missing => "SDP has no a=fingerprint line",
            SdpError::Ambiguous => "SDP has more than one distinct DTLS fingerprint",
            SdpError::Malformed => "SDP a=fingerprint line is malformed",
        })
    }
}

/// A DTLS fingerprint as text, e.g. `sha-256 AB:CD:…`, normalised: hash name
/// lower-case, hex upper-case, single space.
pub type Fingerprint = heapless::String<MAX_FP_LEN>;

/// The offer's DTLS fingerprint.
///
/// # Errors
/// [`SdpError`] when there is none, more than one distinct, or a malformed one.
pub fn fingerprint(sdp: &str) -> Result<Fingerprint, SdpError> {
    fingerprint_of_chars(sdp.chars())
}

/// As [`fingerprint`], reading an SDP still escaped inside JSON (no buffer needed).
///
/// # Errors
/// [`SdpError`].
pub fn fingerprint_json(sdp: JsonStr<'_>) -> Result<Fingerprint, SdpError> {
    let raw = sdp.raw();
    // Fast path, no decoding: lines end in `\r\n` escapes and a fingerprint
    // value needs no escapes. Anything unusual takes the character path.
    if raw.contains("\\u") {
        return fingerprint_of_chars(sdp.chars());
    }
    let mut found: Option<Fingerprint> = None;
    for (at, _) in raw.match_indices(PREFIX) {
        let before = &raw[..at];
        if !(before.is_empty() || before.ends_with("\\n") || before.ends_with("\\r")) {
            continue;
        }
        let rest = &raw[at + PREFIX.len()..];
        let value = rest.split('\\').next().unwrap_or("");
        if value.len() > MAX_FP_LEN {
            return Err(SdpError::Malformed);
        }
        let fp = normalise(value)?;
        match &found {
            Some(f) if *f != fp => return Err(SdpError::Ambiguous),
            Some(_) => {}
            None => found = Some(fp),
        }
    }
    found.ok_or(SdpError::Missing)
}

const PREFIX: &str = "a=fingerprint:";

fn fingerprint_of_chars(chars: impl Iterator<Item = char>) -> Result<Fingerprint, SdpError> {
    let mut found: Option<Fingerprint> = None;
    // State per line: how much of PREFIX matched, then the value collected.
    let mut matched = 0usize;
    let mut value: heapless::String<MAX_FP_LEN> = heapless::String::new();
    let mut overflow = false;
    let mut in_value = false;
    let mut dead = false;
    let mut finish =
        |value: &mut heapless::String<MAX_FP_LEN>, overflow: bool| -> Result<(), SdpError> {
            if overflow {
                return Err(SdpError::Malformed);
            }
            let fp = normalise(value)?;
            match &found {
                Some(f) if *f != fp => return Err(SdpError::Ambiguous),
                Some(_) => {}
                None => found = Some(fp),
            }
            value.clear();
            Ok(())
        };
    for c in chars.chain(core::iter::once('\n')) {
        if c == '\n' || c == '\r' {
            if in_value {
                finish(&mut value, overflow)?;
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
        } else if PREFIX.as_bytes().get(matched) == Some(&(c as u8)) && c.is_ascii() {
            matched += 1;
            if matched == PREFIX.len() {
                in_value = true;
            }
        } else {
            dead = true;
        }
    }
    found.ok_or(SdpError::Missing)
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
    if !pairs_ok || hex.len() < 5 {
        return Err(SdpError::Malformed);
    }
    let mut out = Fingerprint::new();
    for c in hash.chars() {
        out.push(c.to_ascii_lowercase())
            .map_err(|_| SdpError::Malformed)?;
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
    fn refuses_missing_ambiguous_malformed() {
        assert_eq!(fingerprint("v=0\r\n"), Err(SdpError::Missing));
        assert_eq!(
            fingerprint("a=fingerprint:sha-256 AB:CD\r\na=fingerprint:sha-256 AB:CE\r\n"),
            Err(SdpError::Ambiguous)
        );
        assert_eq!(
            fingerprint("a=fingerprint:sha-256\r\n"),
            Err(SdpError::Malformed)
        );
        assert_eq!(
            fingerprint("a=fingerprint:sha-256 XY:CD\r\n"),
            Err(SdpError::Malformed)
        );
        assert_eq!(
            fingerprint("x a=fingerprint:sha-256 AB:CD\r\n"),
            Err(SdpError::Missing)
        );
        let long = "a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB";
        assert_eq!(fingerprint(long), Err(SdpError::Malformed));
    }

    #[test]
    fn fast_and_slow_json_paths_agree() {
        let cases = [
            "v=0\r\na=fingerprint:sha-256 AB:CD:EF\r\nm=audio\r\n",
            "a=fingerprint:sha-256 ab:cd\r\n",
            "v=0\r\nx a=fingerprint:sha-256 AB:CD\r\n",
            "v=0\r\na=fingerprint:sha-256 AB:CD\r\na=fingerprint:sha-256 AB:CE\r\n",
            "v=0\r\na=fingerprint:sha-256 AB:CD\r\na=fingerprint:sha-256 ab:cd\r\n",
            "v=0\r\na=fingerprint:sha-256\r\n",
            "v=0\n",
        ];
        for sdp in cases {
            let mut json = heapless::String::<256>::new();
            json.push_str("{\"s\":\"").unwrap();
            for c in sdp.chars() {
                match c {
                    '\r' => json.push_str("\\r").unwrap(),
                    '\n' => json.push_str("\\n").unwrap(),
                    c => json.push(c).unwrap(),
                }
            }
            json.push_str("\"}").unwrap();
            let o = crate::json::parse_object(&json).unwrap();
            let js = o.req_str("s").unwrap();
            assert_eq!(fingerprint_json(js), fingerprint(sdp), "{sdp:?}");
            assert_eq!(
                fingerprint_of_chars(js.chars()),
                fingerprint(sdp),
                "{sdp:?}"
            );
        }
    }

    #[test]
    fn reads_escaped_json_sdp() {
        let doc = r#"{"s":"v=0\r\na=fingerprint:sha-256 AB:CD:EF\r\n"}"#;
        let o = crate::json::parse_object(doc).unwrap();
        assert_eq!(
            fingerprint_json(o.req_str("s").unwrap()).unwrap().as_str(),
            "sha-256 AB:CD:EF"
        );
    }
}
