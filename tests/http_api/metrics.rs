//! /metrics counts routes, statuses, reasons and limits.

use super::*;

#[test]
fn metrics_count_routes_statuses_reasons_limits() {
    let d = Daemon::start(&[
        "--max-agents",
        "1",
        "--rate-agent",
        "1",
        "--rate-agent-burst",
        "1",
    ]);
    let k = Keys::new();
    d.get("/lookup/nobody");
    d.get("/lookup/nobody-2");
    d.get("/lookup/a!b");
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 200);
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 429);
    assert_eq!(reg(&d, &k.hs, "hs-bot-2", json!({})).status, 503);
    assert_eq!(
        register(&d, &token(&k.other_ec, "ec-bot", 300), &reg_body("ec-bot")).status,
        401
    );
    let n = now_i();
    let expired = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-a","exp":{}}}"#, n - 1000),
        false,
    );
    assert_eq!(register(&d, &expired, &reg_body("hs-a")).status, 401);
    assert_eq!(
        post(
            &d,
            &[("Content-Type", "application/json")],
            reg_body("hs-a").as_bytes()
        )
        .status,
        401
    );
    raw(d.addr, b"\x01\x02\r\n\r\n");
    d.get("/healthz");

    let text = d.get("/metrics");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = |s: &str| d.metric(s);
    assert_eq!(
        m("botcall_http_requests_total{route=\"lookup\",status=\"404\"}"),
        2.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"lookup\",status=\"400\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"429\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"503\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"401\"}"),
        3.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"invalid\",status=\"400\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"healthz\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_auth_failures_total{reason=\"bad_signature\"}"),
        1.0
    );
    assert_eq!(m("botcall_auth_failures_total{reason=\"expired\"}"), 1.0);
    assert_eq!(
        m("botcall_auth_failures_total{reason=\"missing_token\"}"),
        1.0
    );
    assert_eq!(m("botcall_rate_limited_total{scope=\"agent\"}"), 1.0);
    assert_eq!(m("botcall_table_full_total"), 1.0);
    assert_eq!(m("botcall_agents_registered"), 1.0);
    assert_eq!(m("botcall_agents_online"), 0.0);
    assert_eq!(m("botcall_agent_table_capacity"), 1.0);
    assert!(m("botcall_connections_total") >= 12.0);
    assert_eq!(m("botcall_connections_open"), 1.0); // this request's
    assert!(m("botcall_process_resident_memory_bytes") > 1_000_000.0);
    // Every series line is `name{labels} number`, every family has TYPE.
    for line in text
        .text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, v) = line.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{line}");
        let family = name.split('{').next().unwrap();
        assert!(text.text().contains(&format!("# TYPE {family} ")), "{line}");
    }
}
