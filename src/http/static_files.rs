//! The PWA shell, embedded at compile time by `build.rs` from `pwa/`.
//! Served with its content type, an `ETag` (304 on `If-None-Match`),
//! `Cache-Control: no-cache` (revalidate every load, so updates show up on
//! the next visit) and a strict Content-Security-Policy.
//!
//! Text files are embedded gzip-compressed: a client whose `Accept-Encoding`
//! takes gzip gets the embedded bytes with `Content-Encoding: gzip`; any other
//! gets the file inflated on the fly into a buffer of its known size. Each
//! encoding has its own strong ETag, and both say `Vary: Accept-Encoding`.

use super::{Body, Response};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct StaticFile {
    pub(crate) path: &'static str,
    /// The file, or (`gzip`) a gzip member of it.
    pub(crate) body: &'static [u8],
    pub(crate) gzip: bool,
    /// The file's own length (inflated).
    pub(crate) len: usize,
    pub(crate) content_type: &'static str,
    /// The ETag of the file as is.
    pub(crate) etag: &'static str,
    /// The ETag of its gzip encoding (`gzip` only).
    pub(crate) gzip_etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/pwa_files.rs"));

/// Only our own origin, WebSockets included (CSP 3: `'self'` matches `ws:`
/// and `wss:` on the page's own host); media from the page's own streams.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; media-src 'self' blob: mediastream:; worker-src 'self'; manifest-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// Bytes of the shell as embedded (text gzip-compressed).
pub(crate) fn embedded_bytes() -> usize {
    FILES.iter().map(|f| f.body.len()).sum()
}

/// Bytes of the shell as files (what a client without gzip downloads).
pub(crate) fn plain_bytes() -> usize {
    FILES.iter().map(|f| f.len).sum()
}

fn find(path: &str) -> Option<&'static StaticFile> {
    let path = match path {
        "/" | "" => "/index.html",
        p if p.starts_with("/call/") => "/index.html",
        p => p,
    };
    FILES.iter().find(|f| f.path == path)
}

/// Whether an `Accept-Encoding` value takes gzip (RFC 9110 §12.5.3): a
/// `gzip` (or `x-gzip`) entry decides by its weight, `q=0` meaning no;
/// without one, `*` does. No header, or an unreadable weight: no.
pub(crate) fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(v) = accept_encoding else {
        return false;
    };
    let (mut gzip, mut any) = (None, None);
    for item in v.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut ok = true;
        for p in parts {
            match p.split_once('=') {
                Some((k, q)) if k.trim().eq_ignore_ascii_case("q") => ok = qvalue_nonzero(q.trim()),
                _ => {}
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            // Listed twice: any refusal wins.
            gzip = Some(gzip.unwrap_or(true) && ok);
        } else if coding == "*" {
            any = Some(any.unwrap_or(true) && ok);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// A weight (`0`, `0.5`, `1.000`): true unless zero or not a weight.
fn qvalue_nonzero(q: &str) -> bool {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let valid = matches!(int, "0" | "1")
        && frac.len() <= 3
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || frac.bytes().all(|b| b == b'0'));
    valid && q.bytes().any(|b| matches!(b, b'1'..=b'9'))
}

/// The file inflated from its gzip member, into exactly its known length.
fn inflate(f: &StaticFile) -> Option<Vec<u8>> {
    // build.rs writes a 10-byte header (no optional fields) and an 8-byte
    // trailer around the deflate stream.
    let deflate = f.body.get(10..f.body.len().checked_sub(8)?)?;
    let mut out = vec![0u8; f.len];
    let n = super::inflate::inflate(deflate, &mut out)?;
    (n == f.len).then_some(out)
}

/// Answers a GET for `path`.
pub(crate) fn serve(
    path: &str,
    if_none_match: Option<&str>,
    accept_encoding: Option<&str>,
) -> Response {
    let Some(f) = find(path) else {
        return Response::error(404, "not_found", "no such route");
    };
    let gzip = f.gzip && accepts_gzip(accept_encoding);
    let etag = if gzip { f.gzip_etag } else { f.etag };
    let fresh =
        if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let cache = if f.content_type.starts_with("image/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    let body = if fresh {
        Body::Empty
    } else if gzip || !f.gzip {
        Body::Static(f.body)
    } else {
        match inflate(f) {
            Some(b) => Body::Owned(b),
            None => return Response::error(500, "internal", "embedded file unreadable"),
        }
    };
    let mut r = Response {
        status: if fresh { 304 } else { 200 },
        content_type: f.content_type,
        body,
        headers: super::Headers::new(),
        close: false,
        head_only: false,
    }
    .with_header("etag", etag)
    .with_header("cache-control", cache)
    .with_header("x-content-type-options", "nosniff")
    .with_header("referrer-policy", "no-referrer");
    if f.gzip {
        r = r.with_header("vary", "Accept-Encoding");
    }
    if gzip {
        r = r.with_header("content-encoding", "gzip");
    }
    if f.content_type.starts_with("text/html") {
        r = r
            .with_header("content-security-policy", CSP)
            .with_header("permissions-policy", "microphone=(self), camera=()");
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_ref())
    }

    #[test]
    fn index_and_deep_links() {
        for ae in [None, Some("gzip")] {
            let r = serve("/", None, ae);
            assert_eq!(r.status, 200);
            assert!(header(&r, "content-security-policy").is_some());
            let etag = header(&r, "etag").unwrap().to_string();
            assert_eq!(serve("/call/weather-bot", Some(&etag), ae).status, 304);
        }
        // The page may connect to its own origin only (no `ws:` to anywhere).
        assert!(CSP.contains("connect-src 'self';"), "{CSP}");
        assert_eq!(serve("/nope.js", None, None).status, 404);
    }

    /// Every file, in both encodings, is the file under `pwa/` (sw.js with
    /// its build id), with its own ETag per encoding.
    #[test]
    fn both_encodings_are_the_files() {
        let pwa = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pwa");
        for f in FILES {
            let mut want = std::fs::read(pwa.join(&f.path[1..])).unwrap();
            if f.path == "/sw.js" {
                want = String::from_utf8(want)
                    .unwrap()
                    .replace("__BOTCALL_BUILD__", BUILD)
                    .into_bytes();
            }
            let plain = serve(f.path, None, Some("gzip;q=0, br"));
            assert_eq!(plain.body.bytes(), want, "{}", f.path);
            assert_eq!(header(&plain, "content-encoding"), None);
            let text = !f.content_type.starts_with("image/png");
            assert_eq!(f.gzip, text, "{}: text is embedded gzipped", f.path);
            let gz = serve(f.path, None, Some("gzip, deflate, br"));
            if f.gzip {
                assert_eq!(header(&gz, "content-encoding"), Some("gzip"));
                assert_eq!(header(&gz, "vary"), Some("Accept-Encoding"));
                assert_eq!(header(&plain, "vary"), Some("Accept-Encoding"));
                assert!(gz.body.bytes().len() < want.len());
                assert_eq!(inflate(f).unwrap(), want);
                assert_ne!(header(&gz, "etag"), header(&plain, "etag"));
                // One encoding's ETag does not validate the other's.
                let plain_tag = header(&plain, "etag").unwrap();
                assert_eq!(serve(f.path, Some(plain_tag), Some("gzip")).status, 200);
            } else {
                assert_eq!(gz.body.bytes(), want);
                assert_eq!(header(&gz, "content-encoding"), None);
                assert_eq!(header(&gz, "vary"), None);
            }
        }
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        for (v, yes) in [
            ("gzip", true),
            ("GZip", true),
            ("x-gzip", true),
            ("gzip, deflate, br, zstd", true),
            ("br;q=1.0, gzip;q=0.8, *;q=0.1", true),
            ("gzip;q=0.001", true),
            ("gzip ; q=1", true),
            ("*", true),
            ("deflate, *;q=0.5", true),
            ("", false),
            ("identity", false),
            ("br, deflate", false),
            ("gzip;q=0", false),
            ("gzip;Q=0.000", false),
            ("gzip; q=0.0", false),
            ("*;q=0.5, gzip;q=0", false),
            ("gzip;q=0, *", false),
            ("*;q=0", false),
            ("gzip;q=2", false),
            ("gzip;q=abc", false),
            ("gzip;q=0.0001", false),
            ("gzip;q=1.5", false),
            ("gzip, gzip;q=0", false),
        ] {
            assert_eq!(accepts_gzip(Some(v)), yes, "{v:?}");
        }
        assert!(!accepts_gzip(None));
    }

    /// The brief's budget is what a phone downloads: the whole PWA, as
    /// served to a browser (gzip), at most 100 KiB. The files as they are
    /// (what a client without gzip gets) keep the same bound, so the budget
    /// did not grow threefold with compression. Every file under `pwa/` is in.
    #[test]
    fn the_pwa_is_complete_and_within_100_kb() {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { count(&p) } else { 1 })
                .sum()
        }
        let pwa = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pwa");
        assert_eq!(FILES.len(), count(&pwa));
        assert!(FILES.iter().any(|f| f.path == "/index.html"));
        let served: usize = FILES
            .iter()
            .map(|f| serve(f.path, None, Some("gzip")).body.bytes().len())
            .sum();
        assert_eq!(served, embedded_bytes());
        assert!(served <= 100 * 1024, "PWA downloads {served} bytes");
        let plain = plain_bytes();
        assert!(plain <= 100 * 1024, "PWA is {plain} bytes");
        assert!(served * 2 < plain, "gzip: {served} of {plain} bytes");
    }
}
