//! Lookup, the /v1 aliases and the directory's pages.

use super::*;

#[test]
fn lookup_not_found_and_invalid_ids() {
    let d = Daemon::start(&[]);
    assert_error(&d.get("/lookup/nobody"), 404, "not_found");
    let long = "a".repeat(65);
    for bad in [
        "/lookup/",
        "/lookup/a%2Fb",
        "/lookup/a/b",
        "/lookup/caf%C3%A9",
        "/lookup/a:b",
        &format!("/lookup/{long}"),
    ] {
        assert_error(&d.get(bad), 400, "invalid_agent_id");
    }
    // 64 characters is still an id.
    let max = "b".repeat(64);
    assert_error(&d.get(&format!("/lookup/{max}")), 404, "not_found");
    // Raw UTF-8 in the target (httparse allows it) is still not an id.
    let r = raw_one(&d, "GET /lookup/bötli HTTP/1.1\r\n\r\n".as_bytes());
    assert_error(&r, 400, "invalid_agent_id");
}

#[test]
fn v1_aliases_answer_like_the_plain_routes() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let auth = format!("Bearer {}", token(&k.hs, "hs-bot", 300));
    let r = http(
        d.addr,
        "POST",
        "/v1/register",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        reg_body("hs-bot").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get("/v1/lookup/hs-bot").json()["agent_id"], "hs-bot");
    assert_error(&d.get("/v1/lookup/nobody"), 404, "not_found");
    assert_eq!(d.get("/v1/agents").status, 200);
    assert_eq!(d.get("/v1/healthz").json()["status"], "ok");
    assert_eq!(d.get("/v1/.well-known/jwks.json").status, 200);
    assert!(
        d.get("/v1/metrics")
            .text()
            .contains("botcall_agents_registered 1")
    );
    let r = http(
        d.addr,
        "DELETE",
        "/v1/register/hs-bot",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.json(), json!({"deleted": true, "agent_id": "hs-bot"}));
    assert_error(&d.get("/v1/lookup/hs-bot"), 404, "not_found");
    // Only one /v1 prefix is stripped.
    assert_error(&d.get("/v1/v1/healthz"), 404, "not_found");
}

#[test]
fn directory_lists_only_listed_agents_and_filters_online() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    for id in ["hs-a", "hs-b", "hs-c"] {
        assert_eq!(reg(&d, &k.hs, id, json!({"listed": true})).status, 200);
    }
    assert_eq!(reg(&d, &k.hs, "hs-d", json!({"listed": false})).status, 200);
    assert_eq!(reg(&d, &k.hs, "hs-e", json!({})).status, 200);
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let all = d.get("/agents").json();
    assert_eq!(ids(&all), ["hs-a", "hs-b", "hs-c"]);
    assert_eq!(all["next_cursor"], Value::Null);
    // Entries have the lookup shape (expires_in may tick between the two reads).
    let mut first = all["agents"][0].clone();
    let mut hs_a = d.get("/lookup/hs-a").json();
    first.as_object_mut().unwrap().remove("expires_in");
    hs_a.as_object_mut().unwrap().remove("expires_in");
    assert_eq!(first, hs_a);
    assert_eq!(
        ids(&d.get("/agents?online=true").json()),
        Vec::<String>::new()
    );

    // hs-b's bot connects: it is online, and the only one under online=true.
    let (mut ws, welcome) = bot(&d, &token(&k.hs, "hs-b", 300));
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    d.eventually("hs-b online", Duration::from_secs(30), || {
        d.get("/lookup/hs-b").json()["online"] == true
    });
    let online = d.get("/agents?online=true").json();
    assert_eq!(ids(&online), ["hs-b"]);
    assert_eq!(online["agents"][0]["online"], true);
    assert_eq!(ids(&d.get("/agents?online=1").json()), ["hs-b"]);
    assert_eq!(ids(&d.get("/agents?online=false").json()).len(), 3);
    let _ = ws.close(None);
}

#[test]
fn directory_pages_with_limit_and_cursor() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let mut listed = Vec::new();
    for (i, id) in ["hs-a", "hs-b", "hs-c", "hs-d", "hs-e", "hs-f", "hs-bot"]
        .iter()
        .enumerate()
    {
        // Unlisted agents interleaved with listed ones.
        let l = i % 3 != 2;
        assert_eq!(reg(&d, &k.hs, id, json!({"listed": l})).status, 200);
        if l {
            listed.push(id.to_string());
        }
    }
    assert_eq!(listed.len(), 5);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/agents?limit=2&cursor={c}"),
            None => "/agents?limit=2".to_string(),
        };
        let v = d.get(&path).json();
        let page = v["agents"].as_array().unwrap();
        assert!(page.len() <= 2, "limit exceeded: {v}");
        for a in page {
            assert_eq!(a["listed"], true);
            seen.push(a["agent_id"].as_str().unwrap().to_string());
        }
        pages += 1;
        assert!(pages < 10, "pagination does not end");
        match &v["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor {other}"),
        }
    }
    assert!(pages >= 3, "5 agents at limit 2 need 3 pages, got {pages}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        seen.len(),
        "duplicates across pages: {seen:?}"
    );
    listed.sort();
    assert_eq!(sorted, listed);
    // Default limit is 50, max 100.
    assert_eq!(
        d.get("/agents?limit=100").json()["agents"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn directory_bad_limit_or_cursor_is_400() {
    let d = Daemon::start(&[]);
    let long = "1".repeat(65);
    for q in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=",
        "limit=1e3",
        "online=maybe",
        "cursor=a!b",
        "cursor=%2F",
        &format!("cursor={long}"),
    ] {
        assert_error(&d.get(&format!("/agents?{q}")), 400, "bad_field");
    }
    assert_eq!(d.get("/agents?limit=1&cursor=0").status, 200);
}
