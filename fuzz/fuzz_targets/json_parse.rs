//! Fuzzes the strict JSON reader against serde_json.
//!
//! - Never panics, on any bytes.
//! - Whatever we accept, serde_json accepts too (we are the stricter one).
//! - Where both accept, both read the same values (strings decoded, integers).
//! - Where only serde_json accepts, the reason is one of our deliberate
//!   limits: duplicate keys, depth, member count.
//! - Accessors on an accepted document agree with each other.
//!
//! Run: `cargo +nightly fuzz run json_parse fuzz/corpus/json_parse fuzz/seeds/json_parse -- -dict=fuzz/jwt.dict`
#![no_main]

use botcall_core::json::{self, JsonError, JsonStr, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        let lossy = String::from_utf8_lossy(data);
        let _ = json::parse(&lossy);
        return;
    };
    let ours = json::parse(text);
    let grammar_ok = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    match ours {
        Ok(v) => {
            assert!(
                grammar_ok,
                "accepted JSON that serde_json rejects: {text:?}"
            );
            walk(v);
            // Numbers outside f64 range are valid JSON but serde_json's
            // `Value` refuses them; compare whenever it can read the document.
            if let Ok(theirs) = serde_json::from_str::<serde_json::Value>(text) {
                same(v, &theirs);
            }
        }
        Err(e) => {
            if serde_json::from_str::<serde_json::Value>(text).is_ok() {
                assert!(
                    matches!(
                        e,
                        JsonError::DuplicateKey | JsonError::TooDeep | JsonError::TooManyMembers
                    ),
                    "rejected valid JSON with {e:?}: {text:?}"
                );
            }
        }
    }
});

fn decoded(s: JsonStr<'_>) -> String {
    s.chars().collect()
}

fn walk(v: Value<'_>) {
    match v {
        Value::Str(s) => {
            let d = decoded(s);
            assert_eq!(s.decoded_len(), d.len());
            assert!(s.eq_str(&d));
            let mut buf = vec![0u8; d.len()];
            assert_eq!(s.decode_into(&mut buf), Ok(d.as_str()));
            if d.len() > 0 {
                let mut short = vec![0u8; d.len() - 1];
                assert_eq!(s.decode_into(&mut short), Err(JsonError::TooLong));
            }
            if let Some(p) = s.as_plain() {
                assert_eq!(p, d);
            }
        }
        Value::Num(n) => {
            if let Some(u) = n.as_u64() {
                assert_eq!(n.as_i64(), Some(u as i64));
            }
        }
        Value::Arr(a) => {
            assert_eq!(a.len(), a.iter().count());
            assert_eq!(a.is_empty(), a.len() == 0);
            a.iter().for_each(walk);
        }
        Value::Obj(o) => {
            let members: Vec<_> = o.iter().collect();
            for (i, (k, v)) in members.iter().enumerate() {
                for (k2, _) in &members[..i] {
                    assert!(!k.eq_decoded(k2), "duplicate key survived");
                }
                assert_eq!(o.get(&decoded(*k)), Some(*v));
                walk(*v);
            }
        }
        Value::Null | Value::Bool(_) => {}
    }
}

fn same(ours: Value<'_>, theirs: &serde_json::Value) {
    use serde_json::Value as S;
    match (ours, theirs) {
        (Value::Null, S::Null) => {}
        (Value::Bool(a), S::Bool(b)) => assert_eq!(a, *b),
        (Value::Str(a), S::String(b)) => assert_eq!(decoded(a), *b),
        (Value::Num(a), S::Number(b)) => {
            if let Some(i) = a.as_i64() {
                // serde_json reads `-0` as the float -0.0.
                let same = b.as_i64() == Some(i) || (i == 0 && b.as_f64() == Some(0.0));
                assert!(same, "integer {:?} read as {b:?}", a.as_str());
            }
        }
        (Value::Arr(a), S::Array(b)) => {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                same(x, y);
            }
        }
        (Value::Obj(a), S::Object(b)) => {
            assert_eq!(a.iter().count(), b.len());
            for (k, v) in a.iter() {
                let y = b
                    .get(&decoded(k))
                    .expect("key missing in serde_json's reading");
                same(v, y);
            }
        }
        (a, b) => panic!("different readings: {a:?} vs {b:?}"),
    }
}
