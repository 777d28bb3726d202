//! The PWA shell, embedded at compile time by `build.rs` from `pwa/`.
//! Served with its content type, an `ETag` (304 on `If-None-Match`),
//! `Cache-Control: no-cache` (revalidate every load, so updates show up on
//! the next visit) and a strict Content-Security-Policy.

use super::{Body, Response};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct StaticFile {
    pub(crate) path: &'static str,
    pub(crate) body: &'static [u8],
    pub(crate) content_type: &'static str,
    pub(crate) etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/pwa_files.rs"));

/// Only our own origin, WebSockets included (CSP 3: `'self'` matches `ws:`
/// and `wss:` on the page's own host); media from the page's own streams.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; media-src 'self' blob: mediastream:; worker-src 'self'; manifest-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// Total bytes of the embedded shell.
pub(crate) fn total_bytes() -> usize {
    FILES.iter().map(|f| f.body.len()).sum()
}

fn find(path: &str) -> Option<&'static StaticFile> {
    let path = match path {
        "/" | "" => "/index.html",
        p if p.starts_with("/call/") => "/index.html",
        p => p,
    };
    FILES.iter().find(|f| f.path == path)
}

/// Answers a GET for `path`.
pub(crate) fn serve(path: &str, if_none_match: Option<&str>) -> Response {
    let Some(f) = find(path) else {
        return Response::error(404, "not_found", "no such route");
    };
    let fresh =
        if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == f.etag || t.trim() == "*"));
    let cache = if f.content_type.starts_with("image/") {
        "public, max-age=86400"
    } else {
        "no-cache"
    };
    let mut r = Response {
        status: if fresh { 304 } else { 200 },
        content_type: f.content_type,
        body: if fresh {
            Body::Empty
        } else {
            Body::Static(f.body)
        },
        headers: super::Headers::new(),
        close: false,
        head_only: false,
    }
    .with_header("etag", f.etag)
    .with_header("cache-control", cache)
    .with_header("x-content-type-options", "nosniff")
    .with_header("referrer-policy", "no-referrer");
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

    #[test]
    fn index_and_deep_links() {
        let r = serve("/", None);
        assert_eq!(r.status, 200);
        assert!(
            r.headers
                .iter()
                .any(|(k, _)| *k == "content-security-policy")
        );
        let etag = r
            .headers
            .iter()
            .find(|(k, _)| *k == "etag")
            .unwrap()
            .1
            .to_string();
        assert_eq!(serve("/call/weather-bot", Some(&etag)).status, 304);
        // The page may connect to its own origin only (no `ws:` to anywhere).
        assert!(CSP.contains("connect-src 'self';"), "{CSP}");
        assert_eq!(serve("/nope.js", None).status, 404);
    }

    /// The brief's budget: the whole PWA, as embedded, at most 100 KB, and
    /// every file under `pwa/` is in it.
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
        let total = total_bytes();
        assert!(total <= 100 * 1024, "PWA is {total} bytes");
    }
}
