//! Differential: the fingerprint extractor reading an SDP still escaped in
//! JSON (`sdp::fingerprints_json`, what the daemon signs) and reading the
//! decoded SDP (`sdp::fingerprints`, what the SDK checks) agree on every
//! input — the same fingerprints or the same error.
//!
//! The input is taken as the decoded SDP text; it is escaped into JSON by
//! serde_json (short escapes) and again with every character as `\uXXXX`
//! (surrogate pairs above U+FFFF), then read back through our JSON reader.
//! Inputs that are JSON string bodies already are also read as such and
//! compared with serde_json's decoding.
//!
//! Run: `cargo +nightly fuzz run sdp_fingerprint fuzz/corpus/sdp_fingerprint fuzz/seeds/sdp_fingerprint`
#![no_main]

use botcall_core::json;
use botcall_core::sdp;
use libfuzzer_sys::fuzz_target;

fn via_json(doc: &str) -> Option<Result<sdp::Fingerprints, sdp::SdpError>> {
    let o = json::parse_object(doc).ok()?;
    let s = o.req_str("s").ok()?;
    Some(sdp::fingerprints_json(s))
}

fn u_escaped(text: &str) -> String {
    let mut out = String::from("{\"s\":\"");
    let mut units = [0u16; 2];
    for c in text.chars() {
        for u in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{u:04x}"));
        }
    }
    out.push_str("\"}");
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let plain = sdp::fingerprints(text);
    // Short escapes (serde_json's choice).
    let doc = format!("{{\"s\":{}}}", serde_json::to_string(text).unwrap());
    assert_eq!(via_json(&doc), Some(plain.clone()), "{text:?} as {doc}");
    // Every character escaped.
    let doc = u_escaped(text);
    assert_eq!(via_json(&doc), Some(plain), "{text:?} as {doc}");
    // The input as a JSON string body, where it is one: our reading of it
    // agrees with the decoded text serde_json sees.
    let doc = format!("{{\"s\":\"{text}\"}}");
    if let (Some(ours), Ok(v)) = (via_json(&doc), serde_json::from_str::<serde_json::Value>(&doc)) {
        let decoded = v["s"].as_str().unwrap();
        assert_eq!(ours, sdp::fingerprints(decoded), "{doc}");
    }
});
