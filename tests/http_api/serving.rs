//! Health, the JWKS and the embedded PWA.

use super::*;

#[test]
fn healthz_and_jwks() {
    let d = Daemon::start(&[]);
    let r = d.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let r = d.get("/.well-known/jwks.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    let jwks = botcall_core::jwt::Jwks::parse(&text).expect("a JWKS");
    let v = r.json();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = keys[0]["kid"].as_str().unwrap();
    assert_eq!(
        (keys[0]["kty"].as_str(), keys[0]["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert!(keys[0].get("d").is_none(), "private key published");
    let botcall_core::jwt::Key::Es256(vk) = jwks.find_es256(Some(kid)).unwrap() else {
        panic!("not ES256")
    };
    // The kid is the key's thumbprint, and it is the key in the state dir.
    assert_eq!(botcall_core::jwt::thumbprint(&vk).as_str(), kid);
    let private = std::fs::read_to_string(d.dir.path().join("state/attestation.jwk")).unwrap();
    let sk = botcall_core::jwt::SigningKey::from_jwk(private.trim()).unwrap();
    assert_eq!(Keys::thumbprint(&sk), kid);
    // A token signed with that key verifies against the published set.
    let t = sign(&sk, &claims("x", 60), false);
    let mut scratch = botcall_core::jwt::Scratch::new();
    botcall_core::jwt::verify(&t, &jwks.find_es256(None).unwrap(), &mut scratch).unwrap();
}

#[test]
fn the_pwa_is_served_with_csp_and_etag() {
    let d = Daemon::start(&[]);
    let r = d.get("/");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{:?}",
        r.headers
    );
    let csp = r.header("content-security-policy").expect("CSP header");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(r.text().to_ascii_lowercase().contains("<html"));
    let etag = r.header("etag").expect("ETag").to_string();
    let r2 = http(d.addr, "GET", "/", &[("If-None-Match", &etag)], b"");
    assert_eq!(r2.status, 304);
    assert!(r2.body.is_empty());
    assert_eq!(r2.header("etag"), Some(etag.as_str()));
    let r3 = http(d.addr, "GET", "/", &[("If-None-Match", "\"stale\"")], b"");
    assert_eq!(r3.status, 200);
    // Deep links get the shell.
    assert_eq!(d.get("/call/weather-bot").body, r.body);
    assert_eq!(d.get("/app/main.js").status, 200);
}

/// `gzip -dc`: a decoder nobody here wrote, which also checks the CRC-32
/// and length in the trailer.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip (Debian's gzip package)");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip -dc refused the body");
    out.stdout
}

/// Every file under `pwa/`, as `(URL path, bytes)`.
fn pwa_files() -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((format!("/{rel}"), std::fs::read(&p).unwrap()));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pwa");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// Text files go out gzip-compressed to a client that accepts gzip and as
/// they are to one that does not (q=0, no header, other codings only), both
/// byte for byte the files under `pwa/`; each encoding has its own ETag and
/// 304, HEAD gives each encoding's length, and both say
/// `Vary: Accept-Encoding`.
#[test]
fn the_pwa_is_served_gzipped_or_plain_as_the_client_accepts() {
    let d = Daemon::start(&[]);
    let build = d.get("/healthz").json()["pwa_build"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut gzipped, mut wire, mut plain) = (0, 0, 0);
    for (path, mut want) in pwa_files() {
        if path == "/sw.js" {
            want = String::from_utf8(want)
                .unwrap()
                .replace("__BOTCALL_BUILD__", &build)
                .into_bytes();
        }
        let text = !path.ends_with(".png");
        let gz = http(
            d.addr,
            "GET",
            &path,
            &[("Accept-Encoding", "gzip, deflate, br, zstd")],
            b"",
        );
        assert_eq!(gz.status, 200, "{path}");
        plain += want.len();
        wire += gz.body.len();
        if text {
            gzipped += 1;
            assert_eq!(gz.header("content-encoding"), Some("gzip"), "{path}");
            assert_eq!(gz.header("vary"), Some("Accept-Encoding"), "{path}");
            assert!(gz.body.len() < want.len(), "{path}");
            assert_eq!(gunzip(&gz.body), want, "{path}: gzip body");
        } else {
            assert_eq!(gz.header("content-encoding"), None, "{path}");
            assert_eq!(gz.body, want, "{path}");
        }
        for refuse in [
            &[("Accept-Encoding", "gzip;q=0, deflate")][..],
            &[("Accept-Encoding", "br;q=1.0, *;q=0")][..],
            &[("Accept-Encoding", "identity")][..],
            &[][..],
        ] {
            let r = http(d.addr, "GET", &path, refuse, b"");
            assert_eq!(r.status, 200, "{path} {refuse:?}");
            assert_eq!(r.header("content-encoding"), None, "{path} {refuse:?}");
            assert_eq!(r.body, want, "{path} {refuse:?}: plain body");
            if text {
                assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path}");
            }
        }
        let id = http(d.addr, "GET", &path, &[], b"");
        let (gz_tag, id_tag) = (gz.header("etag").unwrap(), id.header("etag").unwrap());
        assert_eq!(gz_tag != id_tag, text, "{path}: {gz_tag} / {id_tag}");
        for (ae, tag, len, other) in [
            ("gzip", gz_tag, gz.body.len(), id_tag),
            ("gzip;q=0", id_tag, want.len(), gz_tag),
        ] {
            let h = http(d.addr, "HEAD", &path, &[("Accept-Encoding", ae)], b"");
            assert_eq!(h.status, 200, "{path} HEAD {ae}");
            assert!(h.body.is_empty(), "{path} HEAD {ae}");
            assert_eq!(
                h.header("content-length"),
                Some(len.to_string().as_str()),
                "{path}"
            );
            assert_eq!(h.header("etag"), Some(tag), "{path} HEAD {ae}");
            let ims = [("Accept-Encoding", ae), ("If-None-Match", tag)];
            let r = http(d.addr, "GET", &path, &ims, b"");
            assert_eq!(r.status, 304, "{path} {ae}");
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), Some(tag), "{path} {ae}");
            if text {
                assert_eq!(r.header("vary"), Some("Accept-Encoding"), "{path} 304");
                // The other encoding's ETag does not validate this one.
                let ims = [("Accept-Encoding", ae), ("If-None-Match", other)];
                assert_eq!(http(d.addr, "GET", &path, &ims, b"").status, 200, "{path}");
            }
        }
    }
    assert!(gzipped >= 10, "{gzipped} text files");
    // What a browser downloads, against the files as they are.
    println!("pwa: {wire} bytes with gzip, {plain} without");
    assert!(wire * 2 < plain, "{wire} of {plain}");
    assert!(wire <= 100 * 1024);
}
