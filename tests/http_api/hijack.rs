//! Hijack attempts: another agent's token, another key, bad tokens.

use super::*;

#[test]
fn a_token_for_one_agent_cannot_register_another() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let r = register(&d, &token(&k.hs, "hs-bot", 300), &reg_body("ec-bot"));
    assert_error(&r, 403, "wrong_agent");
    assert_error(&d.get("/lookup/ec-bot"), 404, "not_found");
    assert_eq!(
        d.metric("botcall_auth_failures_total{reason=\"wrong_agent\"}"),
        1.0
    );
}

#[test]
fn open_mode_embedded_key_must_match_the_subject() {
    let d = Daemon::start(&["--open-registration"]);
    let k = Keys::new();
    let a = &k.other_ec;
    let b_id = Keys::thumbprint(&k.fleet);
    // Signed by A with A's key embedded, but sub = B's thumbprint.
    let r = register(&d, &open_token(a, &b_id), &reg_body(&b_id));
    assert_unauthorized(&r, "wrong_subject");
    // Signed by B, header claims A's key, sub = A's thumbprint: does not verify.
    let a_id = Keys::thumbprint(a);
    let forged = {
        let real_a = open_token(a, &a_id);
        let real_b = sign(&k.fleet, &claims(&a_id, 300), false);
        let h = real_a.split('.').next().unwrap();
        let rest: Vec<&str> = real_b.split('.').skip(1).collect();
        format!("{h}.{}.{}", rest[0], rest[1])
    };
    assert_unauthorized(&register(&d, &forged, &reg_body(&a_id)), "bad_signature");
    // Another key embedded, claiming ec-bot (a keys-file id, not its thumbprint).
    let r = register(&d, &open_token(a, "ec-bot"), &reg_body("ec-bot"));
    assert_unauthorized(&r, "wrong_subject");
    for id in [&b_id, &a_id, &"ec-bot".to_string()] {
        assert_error(&d.get(&format!("/lookup/{id}")), 404, "not_found");
    }
}

#[test]
fn another_key_cannot_register_ec_bot() {
    let k = Keys::new();
    // Closed mode: the header's jwk is ignored, the keys file's key decides.
    let d = Daemon::start(&[]);
    let t = open_token(&k.other_ec, "ec-bot");
    assert_unauthorized(&register(&d, &t, &reg_body("ec-bot")), "bad_signature");
    let t = token(&k.other_ec, "ec-bot", 300);
    assert_unauthorized(&register(&d, &t, &reg_body("ec-bot")), "bad_signature");
    assert_error(&d.get("/lookup/ec-bot"), 404, "not_found");
    // Open mode: same refusal (the embedded key's thumbprint is not "ec-bot").
    let d = Daemon::start(&["--open-registration"]);
    let t = open_token(&k.other_ec, "ec-bot");
    assert_unauthorized(&register(&d, &t, &reg_body("ec-bot")), "wrong_subject");
    assert_error(&d.get("/lookup/ec-bot"), 404, "not_found");
}

#[test]
fn an_owned_id_cannot_be_taken_by_another_valid_key() {
    let (d, id) = two_keys_one_id(&["--min-ttl", "1"]);
    let k = Keys::new();
    let r = register(
        &d,
        &open_token(&k.other_ec, &id),
        &json!({"agent_id": id, "name": "owner", "ttl": 2}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t0 = now();
    // The HS256 key is valid for this id (keys file) but does not own it.
    let hs = token(&k.hs, &id, 300);
    let r = register(
        &d,
        &hs,
        &json!({"agent_id": id, "name": "thief"}).to_string(),
    );
    assert_error(&r, 403, "id_taken");
    assert_eq!(d.get(&format!("/lookup/{id}")).json()["name"], "owner");
    // Once the owner's registration expired (at ≤ t0 + 2), the id is free again.
    while now() < t0 + 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = register(
        &d,
        &hs,
        &json!({"agent_id": id, "name": "next"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // ... and now the first key is the stranger.
    let r = register(&d, &open_token(&k.other_ec, &id), &reg_body(&id));
    assert_error(&r, 403, "id_taken");
}

#[test]
fn bad_tokens_are_401_with_a_reason() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let body = reg_body("hs-bot");
    let wrong_secret = botcall_core::jwt::SigningKey::from_jwk(
        r#"{"kty":"oct","k":"b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci1zZWNyZXQ"}"#,
    )
    .unwrap();
    assert_unauthorized(
        &register(&d, &token(&wrong_secret, "hs-bot", 300), &body),
        "bad_signature",
    );
    let n = now_i();
    let none = format!(
        "{}.{}.c2ln",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims("hs-bot", 300).as_bytes())
    );
    assert_unauthorized(&register(&d, &none, &body), "alg_none");
    let expired = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","iat":{},"exp":{}}}"#, n - 400, n - 100),
        false,
    );
    assert_unauthorized(&register(&d, &expired, &body), "expired");
    let no_exp = sign(&k.hs, &format!(r#"{{"sub":"hs-bot","iat":{n}}}"#), false);
    assert_unauthorized(&register(&d, &no_exp, &body), "missing_claim");
    let too_long_life = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","iat":{n},"exp":{}}}"#, n + 3600),
        false,
    );
    assert_unauthorized(&register(&d, &too_long_life, &body), "lifetime_too_long");
    let future = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","nbf":{},"exp":{}}}"#, n + 300, n + 500),
        false,
    );
    assert_unauthorized(&register(&d, &future, &body), "not_yet_valid");
    // An ES256 token for an HS256 agent: the key decides the algorithm.
    assert_unauthorized(
        &register(&d, &token(&k.ec, "hs-bot", 300), &body),
        "alg_mismatch",
    );
    // Duplicate claim keys: strict JSON.
    let dup = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","sub":"ec-bot","exp":{}}}"#, n + 60),
        false,
    );
    assert_unauthorized(&register(&d, &dup, &body), "bad_json");
    // Garbled, missing, wrong scheme.
    assert_unauthorized(&register(&d, "not-a-token", &body), "malformed");
    assert_unauthorized(&register(&d, "a.b", &body), "malformed");
    assert_unauthorized(&register(&d, "!!!.???.***", &body), "bad_base64");
    let ct = ("Content-Type", "application/json");
    assert_unauthorized(&post(&d, &[ct], body.as_bytes()), "missing_token");
    assert_unauthorized(
        &post(
            &d,
            &[ct, ("Authorization", "Basic aGk6aG8=")],
            body.as_bytes(),
        ),
        "missing_token",
    );
    assert_unauthorized(
        &post(&d, &[ct, ("Authorization", "Bearer")], body.as_bytes()),
        "missing_token",
    );
    // Longer than 4096 bytes (still well inside the 8 KiB head).
    let long = format!(
        "{}.{}.{}",
        "a".repeat(2000),
        "b".repeat(2000),
        "c".repeat(200)
    );
    assert_unauthorized(&register(&d, &long, &body), "too_long");
    // No key for that id at all.
    let r = register(&d, &token(&k.hs, "stranger", 300), &reg_body("stranger"));
    assert_error(&r, 403, "unknown_agent");
    assert_error(&d.get("/lookup/hs-bot"), 404, "not_found");
    assert_eq!(d.metric("botcall_agents_registered"), 0.0);
}
