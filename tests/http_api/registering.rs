//! Registering with HS256, ES256, open-mode and fleet keys.

use super::*;

#[test]
fn register_hs256_and_lookup_shows_every_field() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let body = json!({
        "agent_id": "hs-bot", "endpoint": "wss://example.org/bot", "name": "Weather \"W\"",
        "capabilities": {"audio": ["opus", "speex", "OPUS"]}, "ttl": 120, "max_calls": 3, "listed": true
    });
    let r = register(&d, &token(&k.hs, "hs-bot", 300), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"confirmed": true, "agent_id": "hs-bot", "expires_in": 120})
    );

    let l = d.get("/lookup/hs-bot");
    assert_eq!(l.status, 200, "{}", l.text());
    let v = l.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "agent_id",
        "answer_sig",
        "capabilities",
        "key",
        "endpoint",
        "expires_in",
        "listed",
        "max_calls",
        "name",
        "online",
    ];
    let mut got = keys.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "lookup fields: {v}");
    assert_eq!(v["agent_id"], "hs-bot");
    assert_eq!(v["endpoint"], "wss://example.org/bot");
    assert_eq!(v["name"], "Weather \"W\"");
    assert_eq!(v["online"], false);
    // Unknown codec names are ignored; names are case-insensitive.
    assert_eq!(v["capabilities"], json!({"audio": ["opus"]}));
    let e = v["expires_in"].as_u64().unwrap();
    assert!((118..=120).contains(&e), "expires_in {e}");
    assert_eq!(v["listed"], true);
    assert_eq!(v["max_calls"], 3);
    // An HS256 bot cannot prove its answers to a caller: nothing published.
    assert_eq!(
        (&v["answer_sig"], &v["key"]),
        (&json!("none"), &Value::Null)
    );

    // Defaults: no endpoint/name (null), opus, ttl 300, 1 call, unlisted.
    let r = reg(&d, &k.hs, "hs-bot-2", json!({}));
    assert_eq!(r.json()["expires_in"], 300);
    let v = d.get("/lookup/hs-bot-2").json();
    assert_eq!(v["endpoint"], Value::Null);
    assert_eq!(v["name"], Value::Null);
    assert_eq!(v["capabilities"], json!({"audio": ["opus"]}));
    assert_eq!(
        (v["listed"].clone(), v["max_calls"].clone()),
        (json!(false), json!(1))
    );
    // "capabilities": {} declares no codecs.
    reg(&d, &k.hs, "hs-bot-3", json!({"capabilities": {}}));
    assert_eq!(
        d.get("/lookup/hs-bot-3").json()["capabilities"],
        json!({"audio": []})
    );
}

#[test]
fn register_es256_and_cached_reregistration() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let t = token(&k.ec, "ec-bot", 300);
    let r = register(&d, &t, &reg_body("ec-bot"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["confirmed"], true);
    assert_eq!(r.json()["agent_id"], "ec-bot");
    assert_eq!(d.get("/lookup/ec-bot").status, 200);
    assert_eq!(d.metric("botcall_token_cache_misses_total"), 1.0);
    // The same token again: answered from the verified-token cache.
    assert_eq!(register(&d, &t, &reg_body("ec-bot")).status, 200);
    assert_eq!(d.metric("botcall_token_cache_hits_total"), 1.0);
    assert_eq!(d.metric("botcall_token_cache_misses_total"), 1.0);
    // The cache never turns a token into a pass for another id.
    let r = register(&d, &t, &reg_body("ec-bot-2"));
    assert_error(&r, 403, "wrong_agent");
}

#[test]
fn register_open_mode_uses_the_key_thumbprint() {
    let d = Daemon::start(&["--open-registration"]);
    let k = Keys::new();
    let id = Keys::thumbprint(&k.other_ec);
    assert_eq!(id.len(), 43);
    let r = register(&d, &open_token(&k.other_ec, &id), &reg_body(&id));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"confirmed": true, "agent_id": id, "expires_in": 300})
    );
    let v = d.get(&format!("/lookup/{id}")).json();
    assert_eq!(v["agent_id"], id);
    // The id is the key's thumbprint: the answer signature carries the key.
    assert_eq!(
        (&v["answer_sig"], &v["key"]),
        (&json!("thumbprint"), &Value::Null)
    );
    // Keys-file agents still work in open mode.
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 200);
    // An ES256 keys-file bot: `lookup` publishes its public JWK (no `d`).
    assert_eq!(reg(&d, &k.ec, "ec-bot", json!({})).status, 200);
    let v = d.get("/lookup/ec-bot").json();
    assert_eq!(v["answer_sig"], "key");
    let published: Value = serde_json::from_str(&Keys::public_jwk(&k.ec)).unwrap();
    assert_eq!(v["key"], published);
    assert!(v["key"].get("d").is_none());
    // Without open registration an embedded key proves nothing: no key for that id.
    let closed = Daemon::start(&[]);
    let r = register(&closed, &open_token(&k.other_ec, &id), &reg_body(&id));
    assert_error(&r, 403, "unknown_agent");
    assert_eq!(r.json()["reason"], "unknown_agent");
}

#[test]
fn register_with_a_fleet_key() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    for id in ["fleet-7.anything", "fleet-7.dev-0042", "fleet-7.a.b_c"] {
        let r = reg(&d, &k.fleet, id, json!({"listed": true}));
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(r.json()["agent_id"], id);
        assert_eq!(d.get(&format!("/lookup/{id}")).status, 200);
    }
    // The prefix alone is not an id under it; other prefixes are unknown.
    assert_error(
        &reg(&d, &k.fleet, "fleet-7.", json!({})),
        403,
        "unknown_agent",
    );
    assert_error(
        &reg(&d, &k.fleet, "fleet-8.x", json!({})),
        403,
        "unknown_agent",
    );
    // Another key cannot use the fleet's ids.
    assert_unauthorized(&reg(&d, &k.ec, "fleet-7.x", json!({})), "bad_signature");
}
