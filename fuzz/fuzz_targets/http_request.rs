//! Fuzzes the daemon's sans-IO HTTP/1.1 request parser
//! (`src/http/request.rs`, through the daemon's library: `botcalld::fuzzing`).
//!
//! The first input byte picks small limits and a mode; the rest is the wire
//! bytes. Invariants checked on every input:
//!
//! - `parse_head` never panics; an accepted head lies within the input and the
//!   head limit, its `Content-Length` is within the body limit, and a
//!   rejected-as-partial input is no longer than the head limit.
//! - Restartable: every prefix of an accepted head is "need more bytes", and
//!   the head alone parses to the same result (the connection re-parses as
//!   bytes arrive, so a split read must never change the answer).
//! - A request-line verdict (505 for another HTTP version, 400 for a
//!   malformed line) is the same for every prefix that decides at all.
//! - `Request::parse` accepts every head `parse_head` accepted; the view's
//!   accessors never panic; `path` has no `?`.
//! - `body_range` starts at the head's end and, when the body has arrived,
//!   lies within the input.
//! - `decode_chunked` never panics; a decoded body is within the body limit
//!   and no longer than the coding it came from; the coding's prefixes are
//!   all `Partial`; decoding exactly the consumed bytes gives the same body.
//! - Round trip: any bytes, chunk-encoded with fuzzer-chosen chunk sizes,
//!   decode back to themselves (or `BodyTooLarge` when over the limit).
//!
//! Run: `cargo +nightly fuzz run http_request -- -max_total_time=600`
#![no_main]

use libfuzzer_sys::fuzz_target;

use botcalld::fuzzing::request::{self, Chunked, Framing, HttpError, Request};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    // Small limits so the fuzzer reaches every branch with short inputs.
    let max_head = 16 + usize::from(ctl & 0x0f) * 32; // 16..=496
    let max_body = usize::from(ctl >> 4) * 24; // 0..=360
    match ctl % 3 {
        0 | 1 => head(input, max_head, max_body),
        _ => {
            chunked(input, max_body);
            round_trip(input, max_body);
        }
    }
});

fn head(buf: &[u8], max_head: usize, max_body: usize) {
    let r = request::parse_head(buf, max_head, max_body);
    match r {
        Ok(None) => assert!(buf.len() <= max_head, "partial beyond the head limit"),
        Err(e) => {
            assert!((400..=505).contains(&e.status()));
            assert!(!e.code().is_empty() && !e.message().is_empty());
            // Request-line verdicts (505 vs a malformed line) do not depend
            // on how the line was split across reads.
            if matches!(
                e,
                HttpError::Version | HttpError::BadRequest("malformed request line")
            ) {
                for cut in [buf.len() / 3, buf.len() / 2, buf.len().saturating_sub(1)] {
                    let r = request::parse_head(&buf[..cut], max_head, max_body);
                    assert!(
                        r == Ok(None) || r == Err(e),
                        "prefix {cut} of a {e:?} input gave {r:?}"
                    );
                }
            }
        }
        Ok(Some(info)) => {
            assert!(info.head_len > 0 && info.head_len <= buf.len());
            assert!(info.head_len <= max_head);
            match info.framing {
                Framing::Length(n) => assert!(n > 0 && n <= max_body),
                Framing::None | Framing::Chunked => {}
            }
            // Restartable: the head alone gives the same answer ...
            assert_eq!(
                request::parse_head(&buf[..info.head_len], max_head, max_body),
                Ok(Some(info))
            );
            // ... and any prefix of it is "need more bytes".
            for cut in [0, 1, info.head_len / 2, info.head_len - 1] {
                let cut = cut.min(info.head_len - 1);
                assert_eq!(
                    request::parse_head(&buf[..cut], max_head, max_body),
                    Ok(None),
                    "prefix {cut} of an accepted head"
                );
            }
            let range = request::body_range(&info);
            assert_eq!(range.start, info.head_len);
            let body = if range.end <= buf.len() {
                &buf[range.clone()]
            } else {
                &[][..]
            };
            if let Framing::Length(n) = info.framing {
                assert_eq!(range.len(), n);
            } else {
                assert!(range.is_empty());
            }
            let req = Request::parse(&buf[..info.head_len], body)
                .expect("Request::parse refused a head parse_head accepted");
            assert!(!req.method.is_empty());
            assert!(!req.path.contains('?'));
            assert!(req.header_count <= request::MAX_HEADERS);
            assert!(req.minor_version <= 1);
            let _ = req.keep_alive();
            let _ = req.bearer();
            let _ = req.header("content-type");
            let _ = req.header_has_token("connection", "upgrade");
            for name in ["limit", "cursor", "online", ""] {
                if let Some(v) = req.query_param(name) {
                    assert!(!v.contains('&'));
                }
            }
            if info.framing == Framing::Chunked {
                chunked(&buf[info.head_len..], max_body);
            }
        }
    }
}

fn chunked(buf: &[u8], max_body: usize) {
    match request::decode_chunked(buf, max_body) {
        Ok(Chunked::Partial) => {}
        Err(e) => assert!(matches!(
            e,
            HttpError::BadRequest(_) | HttpError::BodyTooLarge | HttpError::HeadTooLarge
        )),
        Ok(Chunked::Done { body, consumed }) => {
            assert!(consumed <= buf.len());
            assert!(body.len() <= max_body);
            assert!(body.len() < consumed, "body longer than its coding");
            assert_eq!(
                request::decode_chunked(&buf[..consumed], max_body),
                Ok(Chunked::Done {
                    body: body.clone(),
                    consumed
                })
            );
            for cut in [0, consumed / 3, consumed / 2, consumed - 1] {
                assert_eq!(
                    request::decode_chunked(&buf[..cut], max_body),
                    Ok(Chunked::Partial),
                    "prefix {cut} of a complete chunked body"
                );
            }
        }
    }
}

/// Encodes `data` as a chunked body (chunk sizes taken from `data` itself)
/// and checks it decodes back.
fn round_trip(data: &[u8], max_body: usize) {
    let mut enc = Vec::new();
    let mut rest = data;
    let mut i = 0usize;
    while !rest.is_empty() {
        let n = (usize::from(data[i % data.len()]) % 40 + 1).min(rest.len());
        if i % 2 == 0 {
            enc.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        } else {
            enc.extend_from_slice(format!("{n:X};ext=\"v\"\r\n").as_bytes());
        }
        enc.extend_from_slice(&rest[..n]);
        enc.extend_from_slice(b"\r\n");
        rest = &rest[n..];
        i += 1;
    }
    enc.extend_from_slice(b"0\r\n");
    if data.first().is_some_and(|b| b & 1 == 1) {
        enc.extend_from_slice(b"X-Trailer: 1\r\n");
    }
    enc.extend_from_slice(b"\r\n");
    let len = enc.len();
    enc.extend_from_slice(b"GET / HTTP/1.1\r\n"); // a pipelined next request
    match request::decode_chunked(&enc, max_body) {
        Ok(Chunked::Done { body, consumed }) => {
            assert!(data.len() <= max_body);
            assert_eq!(body, data);
            assert_eq!(consumed, len);
        }
        Err(HttpError::BodyTooLarge) => assert!(data.len() > max_body),
        other => panic!("round trip failed: {other:?}"),
    }
}
