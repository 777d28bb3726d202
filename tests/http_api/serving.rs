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
