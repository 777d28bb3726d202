//! The operator commands: `botcalld keygen`, `token`, `verify-token` — run
//! as processes, checked by exit code, output and the files they write.
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use botcall_core::jwt::SigningKey;
use common::*;
use serde_json::Value;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `botcalld args` in `cwd` with a clean environment (bounded).
fn run_in(cwd: &Path, args: &[&str]) -> Out {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("botcalld {args:?} did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ok(o: Out) -> Out {
    assert_eq!(o.code, 0, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
    o
}

/// Asserts a refusal: exit `code`, `needle` on stderr, nothing on stdout.
#[track_caller]
fn refused(o: &Out, code: i32, needle: &str) {
    assert_eq!(o.code, code, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
    assert!(
        o.stderr.contains(needle),
        "stderr does not say {needle:?}: {}",
        o.stderr
    );
    assert!(o.stdout.is_empty(), "stdout on failure: {}", o.stdout);
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `keygen --out NAME` in `dir`; returns the private key.
fn keygen(dir: &Path, name: &str) -> SigningKey {
    ok(run_in(dir, &["keygen", "--out", name]));
    SigningKey::from_jwk(std::fs::read_to_string(dir.join(name)).unwrap().trim()).unwrap()
}

fn mint(dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["token"];
    a.extend_from_slice(args);
    let o = ok(run_in(dir, &a));
    let t = o.stdout.trim().to_string();
    assert_eq!(t.split('.').count(), 3, "{t}");
    assert_eq!(o.stdout.lines().count(), 1);
    t
}

fn verify(dir: &Path, jwk: &str, token: &str, extra: &[&str]) -> Out {
    let mut a = vec!["verify-token", "--jwk", jwk];
    a.extend_from_slice(extra);
    a.push(token);
    run_in(dir, &a)
}

#[test]
fn keygen_es256_writes_a_private_0600_file_and_a_public_jwk() {
    let d = TempDir::new("cli");
    let o = ok(run_in(
        d.path(),
        &["keygen", "--out", "bot.jwk", "--kid", "k1"],
    ));
    let private = d.path().join("bot.jwk");
    let public = d.path().join("bot.pub.jwk");
    assert_eq!(mode(&private), 0o600);
    let priv_jwk = json(&std::fs::read_to_string(&private).unwrap());
    let pub_jwk = json(&std::fs::read_to_string(&public).unwrap());
    assert_eq!(
        (priv_jwk["kty"].as_str(), priv_jwk["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert!(priv_jwk["d"].is_string());
    assert!(
        pub_jwk.get("d").is_none(),
        "private scalar in the public file: {pub_jwk}"
    );
    assert_eq!(pub_jwk["kid"], "k1");
    assert_eq!(
        (pub_jwk["x"].clone(), pub_jwk["y"].clone()),
        (priv_jwk["x"].clone(), priv_jwk["y"].clone())
    );
    // stdout is the public JWK; stderr names the files and the thumbprint.
    assert_eq!(json(&o.stdout), pub_jwk);
    let sk = SigningKey::from_jwk(std::fs::read_to_string(&private).unwrap().trim()).unwrap();
    assert!(o.stderr.contains(&Keys::thumbprint(&sk)), "{}", o.stderr);
    // The default name is bot.jwk.
    let fresh = TempDir::new("cli");
    ok(run_in(fresh.path(), &["keygen"]));
    assert_eq!(mode(&fresh.path().join("bot.jwk")), 0o600);
    assert!(fresh.path().join("bot.pub.jwk").exists());
    // Two runs, two different keys.
    ok(run_in(d.path(), &["keygen", "-o", "second.jwk"]));
    assert_ne!(
        std::fs::read_to_string(&public).unwrap(),
        std::fs::read_to_string(d.path().join("second.pub.jwk")).unwrap()
    );
}

#[test]
fn keygen_refuses_to_overwrite_a_key() {
    let d = TempDir::new("cli");
    ok(run_in(d.path(), &["keygen", "--out", "bot.jwk"]));
    let before = std::fs::read(d.path().join("bot.jwk")).unwrap();
    refused(
        &run_in(d.path(), &["keygen", "--out", "bot.jwk"]),
        1,
        "exists",
    );
    refused(
        &run_in(d.path(), &["keygen", "--out", "bot.jwk", "--hs256"]),
        1,
        "exists",
    );
    assert_eq!(std::fs::read(d.path().join("bot.jwk")).unwrap(), before);
    // Any file is kept, not just keys.
    std::fs::write(d.path().join("notes.txt"), "mine").unwrap();
    refused(
        &run_in(d.path(), &["keygen", "--out", "notes.txt"]),
        1,
        "exists",
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn keygen_private_file_is_0600_whatever_else_is_in_the_directory() {
    // A leftover or unrelated file where the writer puts its temporary copy
    // must neither loosen the key's mode nor be overwritten.
    let d = TempDir::new("cli");
    for name in ["bot.tmp", "bot.jwk.tmp"] {
        let p = d.path().join(name);
        std::fs::write(&p, "someone else's file").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    ok(run_in(d.path(), &["keygen", "--out", "bot.jwk"]));
    assert_eq!(
        mode(&d.path().join("bot.jwk")),
        0o600,
        "private key readable by others"
    );
    assert_eq!(
        std::fs::read_to_string(d.path().join("bot.tmp")).unwrap(),
        "someone else's file"
    );
    ok(run_in(d.path(), &["keygen", "--out", "hs.jwk", "--hs256"]));
    assert_eq!(mode(&d.path().join("hs.jwk")), 0o600);
}

#[test]
fn keygen_hs256_writes_a_32_byte_secret() {
    let d = TempDir::new("cli");
    let o = ok(run_in(d.path(), &["keygen", "--hs256", "--out", "hs.jwk"]));
    let p = d.path().join("hs.jwk");
    assert_eq!(mode(&p), 0o600);
    let jwk = json(&std::fs::read_to_string(&p).unwrap());
    assert_eq!(jwk["kty"], "oct");
    // 32 bytes in unpadded base64url.
    assert_eq!(jwk["k"].as_str().unwrap().len(), 43);
    assert!(
        !d.path().join("hs.pub.jwk").exists(),
        "a 'public' copy of a shared secret"
    );
    assert!(o.stdout.is_empty(), "secret printed: {}", o.stdout);
    assert!(o.stderr.contains("HS256"));
    // It signs and verifies (the same JWK on both sides).
    let t = mint(d.path(), &["--key", "hs.jwk", "--sub", "hs-bot"]);
    let v = json(&ok(verify(d.path(), "hs.jwk", &t, &[])).stdout);
    assert_eq!(v["header"]["alg"], "HS256");
}

#[test]
fn keygen_usage_errors_exit_2() {
    let d = TempDir::new("cli");
    refused(&run_in(d.path(), &["keygen", "--bogus"]), 2, "--bogus");
    refused(&run_in(d.path(), &["keygen", "extra"]), 2, "positional");
    refused(&run_in(d.path(), &["keygen", "--out"]), 2, "--out");
    assert!(
        std::fs::read_dir(d.path()).unwrap().next().is_none(),
        "files written on a usage error"
    );
}

#[test]
fn token_verifies_with_verify_token() {
    let d = TempDir::new("cli");
    let sk = keygen(d.path(), "bot.jwk");
    let before = now();
    let t = mint(
        d.path(),
        &["--key", "bot.jwk", "--sub", "my-bot", "--ttl", "120"],
    );
    let o = ok(verify(d.path(), "bot.pub.jwk", &t, &[]));
    let v = json(&o.stdout);
    assert_eq!(v["header"]["alg"], "ES256");
    assert!(v["header"].get("jwk").is_none());
    assert_eq!(v["claims"]["sub"], "my-bot");
    let iat = v["claims"]["iat"].as_u64().unwrap();
    let exp = v["claims"]["exp"].as_u64().unwrap();
    assert!(iat >= before && iat <= now());
    assert_eq!(exp - iat, 120);
    assert!(v["claims"].get("aud").is_none());
    // The token verifies with the library too, with the public key.
    let mut scratch = botcall_core::jwt::Scratch::new();
    botcall_core::jwt::verify(&t, &sk.verify_key(), &mut scratch).unwrap();
    // Default lifetime 300 s; the maximum, 600 s, is allowed.
    let v = json(
        &ok(verify(
            d.path(),
            "bot.pub.jwk",
            &mint(d.path(), &["--key", "bot.jwk", "--sub", "b"]),
            &[],
        ))
        .stdout,
    );
    assert_eq!(
        v["claims"]["exp"].as_u64().unwrap() - v["claims"]["iat"].as_u64().unwrap(),
        300
    );
    let t600 = mint(d.path(), &["-k", "bot.jwk", "-s", "b", "--ttl", "600"]);
    ok(verify(d.path(), "bot.pub.jwk", &t600, &[]));
    // --aud is carried and checked when asked for.
    let ta = mint(
        d.path(),
        &["--key", "bot.jwk", "--sub", "b", "--aud", "botcall.example"],
    );
    let v = json(
        &ok(verify(
            d.path(),
            "bot.pub.jwk",
            &ta,
            &["--aud", "botcall.example"],
        ))
        .stdout,
    );
    assert_eq!(v["claims"]["aud"], "botcall.example");
    ok(verify(d.path(), "bot.pub.jwk", &ta, &[]));
}

#[test]
fn token_refuses_long_lifetimes_and_bad_subjects() {
    let d = TempDir::new("cli");
    keygen(d.path(), "bot.jwk");
    for ttl in ["601", "0", "86400"] {
        refused(
            &run_in(
                d.path(),
                &["token", "--key", "bot.jwk", "--sub", "b", "--ttl", ttl],
            ),
            1,
            "--ttl",
        );
    }
    refused(
        &run_in(
            d.path(),
            &["token", "--key", "bot.jwk", "--sub", "b", "--ttl", "-5"],
        ),
        2,
        "--ttl",
    );
    refused(
        &run_in(
            d.path(),
            &["token", "--key", "bot.jwk", "--sub", "b", "--ttl", "ten"],
        ),
        2,
        "--ttl",
    );
    let long = "a".repeat(65);
    for sub in ["a/b", "", "bötli", "a b", long.as_str()] {
        refused(
            &run_in(d.path(), &["token", "--key", "bot.jwk", "--sub", sub]),
            1,
            "--sub",
        );
    }
    // 64 characters is an id.
    mint(d.path(), &["--key", "bot.jwk", "--sub", &"a".repeat(64)]);
    refused(
        &run_in(d.path(), &["token", "--key", "bot.jwk"]),
        2,
        "--sub",
    );
    refused(&run_in(d.path(), &["token", "--sub", "b"]), 2, "--key");
    refused(
        &run_in(d.path(), &["token", "--key", "nope.jwk", "--sub", "b"]),
        1,
        "nope.jwk",
    );
    // A public key cannot sign.
    refused(
        &run_in(d.path(), &["token", "--key", "bot.pub.jwk", "--sub", "b"]),
        1,
        "bot.pub.jwk",
    );
    refused(
        &run_in(
            d.path(),
            &["token", "--key", "bot.jwk", "--sub", "b", "--frobnicate"],
        ),
        2,
        "--frobnicate",
    );
}

#[test]
fn token_with_embedded_key_registers_in_open_mode() {
    let d = TempDir::new("cli");
    let o = ok(run_in(d.path(), &["keygen", "--out", "bot.jwk"]));
    // The thumbprint keygen prints is the open-registration id.
    let id = o
        .stderr
        .lines()
        .find_map(|l| {
            l.split("thumbprint (agent id with open registration): ")
                .nth(1)
        })
        .expect("thumbprint line")
        .trim()
        .to_string();
    let t = mint(d.path(), &["--key", "bot.jwk", "--sub", &id, "--embed-jwk"]);
    let v = json(&ok(verify(d.path(), "bot.pub.jwk", &t, &[])).stdout);
    assert_eq!(v["header"]["jwk"]["kty"], "EC");
    assert!(
        v["header"]["jwk"].get("d").is_none(),
        "private key embedded"
    );
    let body = format!(r#"{{"agent_id":"{id}"}}"#);
    // Every form of a boolean flag: `--flag`, `--flag true`, `--flag=true`
    // turn it on; `--flag false`, `--flag=false` leave it off.
    for (args, on) in [
        (&["--open-registration"][..], true),
        (&["--open-registration", "true"], true),
        (&["--open-registration=true"], true),
        (&["--open-registration", "false"], false),
        (&["--open-registration=false"], false),
    ] {
        let daemon = Daemon::start(args);
        let r = register(&daemon, &t, &body);
        if on {
            assert_eq!(r.status, 200, "{args:?}: {}", r.text());
            assert_eq!(r.json()["agent_id"], id.as_str());
        } else {
            assert_eq!(
                (r.status, r.code().as_str()),
                (403, "unknown_agent"),
                "{args:?}: {}",
                r.text()
            );
        }
    }
    // `--help` shows them as flags, not as valued options.
    let help = ok(run_in(d.path(), &["--help"])).stdout;
    let line = help
        .lines()
        .find(|l| l.trim_start().starts_with("--open-registration"))
        .unwrap();
    assert!(line.contains("[flag, off by default]"), "{line}");
}

#[test]
fn verify_token_says_why_not() {
    let d = TempDir::new("cli");
    let sk = keygen(d.path(), "bot.jwk");
    keygen(d.path(), "other.jwk");
    ok(run_in(d.path(), &["keygen", "--hs256", "--out", "hs.jwk"]));
    let hs = SigningKey::from_jwk(
        std::fs::read_to_string(d.path().join("hs.jwk"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let n = now() as i64;
    let good = mint(d.path(), &["--key", "bot.jwk", "--sub", "b"]);
    let cases: Vec<(String, &str, Vec<&str>, &str)> = vec![
        (
            sign(
                &sk,
                &format!(r#"{{"sub":"b","iat":{},"exp":{}}}"#, n - 400, n - 120),
                false,
            ),
            "bot.pub.jwk",
            vec![],
            "expired",
        ),
        (good.clone(), "other.pub.jwk", vec![], "bad_signature"),
        (good.clone(), "hs.jwk", vec![], "alg_mismatch"),
        (
            mint(d.path(), &["--key", "hs.jwk", "--sub", "b"]),
            "bot.pub.jwk",
            vec![],
            "alg_mismatch",
        ),
        (
            mint(d.path(), &["--key", "bot.jwk", "--sub", "b", "--aud", "x"]),
            "bot.pub.jwk",
            vec!["--aud", "y"],
            "wrong_audience",
        ),
        (
            good.clone(),
            "bot.pub.jwk",
            vec!["--aud", "y"],
            "missing_claim",
        ),
        (
            good.clone(),
            "bot.pub.jwk",
            vec!["--iss", "z"],
            "missing_claim",
        ),
        (
            sign(&sk, &format!(r#"{{"sub":"b","iat":{n}}}"#), false),
            "bot.pub.jwk",
            vec![],
            "missing_claim",
        ),
        (
            sign(&hs, r#"{"sub":"b"}"#, false),
            "hs.jwk",
            vec![],
            "missing_claim",
        ),
        (
            sign(
                &sk,
                &format!(r#"{{"sub":"b","nbf":{},"exp":{}}}"#, n + 300, n + 400),
                false,
            ),
            "bot.pub.jwk",
            vec![],
            "not_yet_valid",
        ),
        (
            sign(
                &sk,
                &format!(r#"{{"sub":"b","exp":{},"exp":{}}}"#, n + 60, n + 60),
                false,
            ),
            "bot.pub.jwk",
            vec![],
            "bad_json",
        ),
        ("not-a-token".into(), "bot.pub.jwk", vec![], "malformed"),
        (format!("{}x", good), "bot.pub.jwk", vec![], "invalid token"),
    ];
    for (token, jwk, extra, reason) in cases {
        let o = verify(d.path(), jwk, &token, &extra);
        refused(&o, 1, reason);
        assert!(o.stderr.contains("invalid token"), "{}", o.stderr);
    }
    // Leeway: 30 s past exp passes with the default 60 s, not with --leeway 0.
    let late = sign(
        &sk,
        &format!(r#"{{"sub":"b","iat":{},"exp":{}}}"#, n - 100, n - 30),
        false,
    );
    ok(verify(d.path(), "bot.pub.jwk", &late, &[]));
    refused(
        &verify(d.path(), "bot.pub.jwk", &late, &["--leeway", "0"]),
        1,
        "expired",
    );
    // Usage errors.
    refused(
        &run_in(d.path(), &["verify-token", "--jwk", "bot.pub.jwk"]),
        2,
        "TOKEN",
    );
    refused(&run_in(d.path(), &["verify-token", &good]), 2, "--jwk");
    refused(
        &run_in(
            d.path(),
            &["verify-token", "--jwk", "bot.pub.jwk", &good, &good],
        ),
        2,
        "one TOKEN",
    );
    refused(
        &run_in(d.path(), &["verify-token", "--jwk", "missing.jwk", &good]),
        1,
        "missing.jwk",
    );
    refused(
        &run_in(
            d.path(),
            &[
                "verify-token",
                "--jwk",
                "bot.pub.jwk",
                "--leeway",
                "x",
                &good,
            ],
        ),
        2,
        "--leeway",
    );
    // And the good one, to be sure the cases above failed for their reason.
    ok(verify(d.path(), "bot.pub.jwk", &good, &[]));
}

/// `botcalld healthcheck` (the container image's HEALTHCHECK): exit 0 with
/// the `/healthz` body from a running daemon, 1 when nothing answers; it
/// takes the daemon's own options and environment to find the address.
#[test]
fn healthcheck_asks_the_daemon_it_is_configured_for() {
    let d = Daemon::start(&[]);
    let dir = TempDir::new("healthcheck");
    let listen = d.addr.to_string();
    let o = ok(run_in(dir.path(), &["healthcheck", "--listen", &listen]));
    assert_eq!(json(&o.stdout)["status"], "ok", "{}", o.stdout);
    // A wildcard listen address is asked on loopback.
    let wildcard = format!("0.0.0.0:{}", d.addr.port());
    ok(run_in(dir.path(), &["healthcheck", "--listen", &wildcard]));
    let port = d.addr.port();
    drop(d);
    let o = run_in(dir.path(), &["healthcheck", "--listen", &listen]);
    refused(&o, 1, &format!(":{port}"));
    let o = run_in(dir.path(), &["healthcheck", "--no-such-option"]);
    refused(&o, 2, "unknown option");
}
