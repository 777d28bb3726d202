//! The router without sockets: two hubs, a fake clock, envelopes passed by
//! hand. What the integration tests show over real sockets, here shown
//! step by step, including timeouts that would be slow to wait for.

use std::rc::Rc;
use std::time::{Duration, Instant};

use botcall_core::id::AgentId;
use botcall_core::protocol::{Msg, Text};

use super::hub::{BotHello, ConnId, DaemonId, Hub, HubConfig, Output};
use super::ice::IceConfig;
use super::remote;
use crate::auth::attest::Attestor;
use crate::config::HumanCheck;
use crate::metrics::Metrics;

const OFFER: &str = "v=0\r\na=fingerprint:sha-256 AB:CD:EF\r\n";

fn attestor() -> Rc<Attestor> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("botcall-hub-test-{}-{n}", std::process::id()));
    let (a, _) = Attestor::load_or_create(&dir.join("k.jwk"), "test").unwrap();
    Rc::new(a)
}

fn hub(me: &str, t0: Instant) -> Hub {
    hub_with(me, t0, |_| {})
}

fn hub_with(me: &str, t0: Instant, tune: impl FnOnce(&mut HubConfig)) -> Hub {
    let mut n = 0u8;
    let mut cfg = HubConfig {
        heartbeat: Duration::from_secs(30),
        hello_timeout: Duration::from_secs(10),
        ring_timeout: Duration::from_secs(30),
        reconnect_grace: Duration::from_secs(10),
        max_calls_per_caller: 2,
        rate_calls_bot: 0,
        rate_calls_bot_burst: 1,
        max_ice_per_call: 50,
        max_ice_bytes_per_call: 16384,
        human_check: HumanCheck::None,
        pow_difficulty: 8,
        pow_calls: 10,
        pow_lifetime: Duration::from_secs(1800),
        challenge_ttl: Duration::from_secs(300),
        attestation_ttl: 120,
        ice: IceConfig {
            stun_port: Some(3478),
            turn_urls: vec!["turn:t:3478".into()],
            turn_secret: Some("s".into()),
            turn_ttl: 600,
        },
    };
    tune(&mut cfg);
    Hub::new(
        cfg,
        me.into(),
        Box::new(move |b: &mut [u8]| {
            n = n.wrapping_add(1);
            b.fill(n);
        }),
        attestor(),
        Rc::new(Metrics::default()),
        t0,
    )
}

fn bot_hello(agent: &str) -> BotHello {
    BotHello {
        agent: id(agent),
        owner: [1; 8],
        max_calls: 1,
        moved_from: None,
    }
}

fn id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}

/// Drains outputs: messages per connection (as JSON), closes, envelopes.
#[derive(Default, Debug)]
struct Drained {
    sent: Vec<(ConnId, serde_json::Value)>,
    pings: Vec<ConnId>,
    closes: Vec<(ConnId, u16)>,
    offline: Vec<String>,
    remote: Vec<(DaemonId, String)>,
}

fn drain(h: &mut Hub) -> Drained {
    let mut d = Drained::default();
    while let Some(o) = h.poll_output() {
        match o {
            Output::Send(c, b) => d.sent.push((c, serde_json::from_slice(&b).unwrap())),
            Output::Ping(c) => d.pings.push(c),
            Output::Close(c, code, _) => d.closes.push((c, code)),
            Output::BotOffline(a) => d.offline.push(a.to_string()),
            Output::Remote(to, env) => d.remote.push((to, String::from_utf8(env).unwrap())),
        }
    }
    d
}

fn msg_for(d: &Drained, conn: ConnId) -> Vec<serde_json::Value> {
    d.sent
        .iter()
        .filter(|(c, _)| *c == conn)
        .map(|(_, v)| v.clone())
        .collect()
}

fn handle(h: &mut Hub, conn: ConnId, json: &str, now: Instant) {
    h.handle(conn, Msg::decode(json).unwrap(), None, now, 1_000_000);
}

#[test]
fn local_call_ring_answer_hangup() {
    let t0 = Instant::now();
    let mut h = hub("d-a", t0);
    h.open(1, t0);
    h.open(2, t0);
    h.hello_bot(1, bot_hello("bot"), "[]", t0);
    h.hello_caller(2, "[]", t0);
    drain(&mut h);
    handle(
        &mut h,
        2,
        &format!(
            r#"{{"type":"call","to":"bot","sdp_offer":{}}}"#,
            serde_json::json!(OFFER)
        ),
        t0,
    );
    let d = drain(&mut h);
    let ringing = &msg_for(&d, 2)[0];
    assert_eq!(ringing["type"], "ringing");
    let call_id = ringing["call_id"].as_str().unwrap().to_string();
    let incoming = &msg_for(&d, 1)[0];
    assert_eq!(incoming["type"], "incoming");
    // Fresh TURN credentials ride along with every call.
    assert_eq!(incoming["ice_servers"][0]["urls"][0], "turn:t:3478");
    assert_eq!(incoming["ice_servers"][0]["username"], "1000600:bot");
    handle(
        &mut h,
        1,
        &format!(r#"{{"type":"answer","call_id":"{call_id}","sdp_answer":"v=0"}}"#),
        t0,
    );
    assert_eq!(msg_for(&drain(&mut h), 2)[0]["type"], "answer");
    handle(
        &mut h,
        2,
        &format!(r#"{{"type":"hangup","call_id":"{call_id}","reason":"bye"}}"#),
        t0,
    );
    assert_eq!(msg_for(&drain(&mut h), 1)[0]["reason"], "bye");
}

#[test]
fn heartbeats_hello_and_ring_timeouts_on_a_fake_clock() {
    let t0 = Instant::now();
    let mut h = hub("d-a", t0);
    h.open(1, t0);
    h.open(2, t0);
    h.open(3, t0); // never says hello
    h.hello_bot(1, bot_hello("bot"), "[]", t0);
    h.hello_caller(2, "[]", t0);
    handle(
        &mut h,
        2,
        &format!(
            r#"{{"type":"call","to":"bot","sdp_offer":{}}}"#,
            serde_json::json!(OFFER)
        ),
        t0,
    );
    drain(&mut h);
    h.tick(t0 + Duration::from_secs(10));
    let d = drain(&mut h);
    assert_eq!(d.closes, vec![(3, 1008)], "hello timeout");
    h.tick(t0 + Duration::from_secs(30));
    let d = drain(&mut h);
    assert!(d.pings.contains(&1) && d.pings.contains(&2));
    // Ring timeout: both sides hear `timeout`.
    assert!(
        msg_for(&d, 2)
            .iter()
            .any(|m| m["type"] == "hangup" && m["reason"] == "timeout")
    );
    assert!(
        msg_for(&d, 1)
            .iter()
            .any(|m| m["type"] == "hangup" && m["reason"] == "timeout")
    );
    // A socket heard from within the interval is not pinged; a silent one is.
    h.touch(2, t0 + Duration::from_secs(50));
    h.tick(t0 + Duration::from_secs(60));
    assert_eq!(drain(&mut h).pings, vec![1]);
    // The caller keeps answering (touch); the bot goes silent for 75 s.
    h.touch(2, t0 + Duration::from_secs(70));
    h.tick(t0 + Duration::from_secs(75));
    let d = drain(&mut h);
    assert_eq!(d.closes, vec![(1, 4001)]);
    assert_eq!(d.offline, vec!["bot".to_string()], "offline at once");
}

#[test]
fn an_answered_call_waits_for_its_bot_then_gives_up() {
    let t0 = Instant::now();
    let mut h = hub("d-a", t0);
    h.open(1, t0);
    h.open(2, t0);
    h.hello_bot(1, bot_hello("bot"), "[]", t0);
    h.hello_caller(2, "[]", t0);
    drain(&mut h);
    handle(
        &mut h,
        2,
        &format!(
            r#"{{"type":"call","to":"bot","sdp_offer":{}}}"#,
            serde_json::json!(OFFER)
        ),
        t0,
    );
    let call_id = msg_for(&drain(&mut h), 2)[0]["call_id"]
        .as_str()
        .unwrap()
        .to_string();
    handle(
        &mut h,
        1,
        &format!(r#"{{"type":"answer","call_id":"{call_id}","sdp_answer":"v=0"}}"#),
        t0,
    );
    drain(&mut h);
    h.close(1, t0 + Duration::from_secs(1));
    assert!(
        msg_for(&drain(&mut h), 2).is_empty(),
        "no hangup during the grace"
    );
    // Back within the grace on a new socket: the call continues there.
    h.open(5, t0 + Duration::from_secs(2));
    h.hello_bot(5, bot_hello("bot"), "[]", t0 + Duration::from_secs(2));
    drain(&mut h);
    handle(
        &mut h,
        2,
        &format!(r#"{{"type":"ice","call_id":"{call_id}","candidate":null}}"#),
        t0 + Duration::from_secs(3),
    );
    assert_eq!(msg_for(&drain(&mut h), 5)[0]["type"], "ice");
    // Gone again, for good: after the grace the caller hears `peer_gone`.
    h.close(5, t0 + Duration::from_secs(4));
    h.tick(t0 + Duration::from_secs(20));
    let d = drain(&mut h);
    assert_eq!(msg_for(&d, 2)[0]["reason"], "peer_gone");
}

/// Delivers every envelope `from` produced to the hub it names.
fn pass(d: &Drained, hubs: &mut [(&str, &mut Hub)], now: Instant) {
    for (to, env) in &d.remote {
        let h = hubs
            .iter_mut()
            .find(|(n, _)| *n == &**to)
            .map(|(_, h)| h)
            .unwrap();
        h.handle_remote(remote::decode(env).unwrap(), now, 1_000_000);
    }
}

#[test]
fn a_call_across_two_hubs() {
    let t0 = Instant::now();
    let (mut a, mut b) = (hub("d-a", t0), hub("d-b", t0));
    a.open(1, t0);
    a.hello_caller(1, "[]", t0);
    b.open(7, t0);
    b.hello_bot(7, bot_hello("bot"), "[]", t0);
    drain(&mut a);
    drain(&mut b);
    let text = format!(
        r#"{{"type":"call","to":"bot","sdp_offer":{}}}"#,
        serde_json::json!(OFFER)
    );
    let call = Msg::decode(&text).unwrap();
    a.handle(1, call, Some("d-b".into()), t0, 1_000_000);
    let da = drain(&mut a);
    assert!(
        msg_for(&da, 1).is_empty(),
        "no ringing before the bot's daemon confirms"
    );
    pass(&da, &mut [("d-b", &mut b)], t0);
    let db = drain(&mut b);
    let inc = &msg_for(&db, 7)[0];
    assert_eq!(inc["type"], "incoming");
    let call_id = inc["call_id"].as_str().unwrap().to_string();
    pass(&db, &mut [("d-a", &mut a)], t0);
    assert_eq!(msg_for(&drain(&mut a), 1)[0]["type"], "ringing");
    b.handle(
        7,
        Msg::decode(&format!(
            r#"{{"type":"answer","call_id":"{call_id}","sdp_answer":"v=0"}}"#
        ))
        .unwrap(),
        None,
        t0,
        0,
    );
    let db = drain(&mut b);
    pass(&db, &mut [("d-a", &mut a)], t0);
    assert_eq!(msg_for(&drain(&mut a), 1)[0]["type"], "answer");
    // A forged envelope from a third daemon about this call is ignored.
    let forged = remote::encode(
        "d-evil",
        remote::Kind::Signal,
        &remote::Out {
            call_id: Some(&call_id),
            ..Default::default()
        },
        Some(&Msg::Hangup {
            call_id: id(&call_id),
            reason: Text::Str("x"),
        }),
    );
    a.handle_remote(
        remote::decode(std::str::from_utf8(&forged).unwrap()).unwrap(),
        t0,
        0,
    );
    assert!(msg_for(&drain(&mut a), 1).is_empty());
}

fn call_json() -> String {
    format!(
        r#"{{"type":"call","to":"bot","sdp_offer":{}}}"#,
        serde_json::json!(OFFER)
    )
}

fn types(d: &Drained, conn: ConnId) -> Vec<String> {
    msg_for(d, conn)
        .iter()
        .map(|m| match m["type"].as_str() {
            Some("error") => format!("error:{}", m["code"].as_str().unwrap_or("")),
            t => t.unwrap_or("").to_string(),
        })
        .collect()
}

#[test]
fn one_bot_is_offered_calls_at_a_bounded_pace() {
    let t0 = Instant::now();
    let mut h = hub_with("d-a", t0, |c| {
        c.rate_calls_bot = 1;
        c.rate_calls_bot_burst = 2;
    });
    h.open(1, t0);
    let mut hello = bot_hello("bot");
    hello.max_calls = 4;
    h.hello_bot(1, hello, "[]", t0);
    for c in 2..=4 {
        h.open(c, t0);
        h.hello_caller(c, "[]", t0);
    }
    drain(&mut h);
    for c in 2..=4 {
        handle(&mut h, c, &call_json(), t0);
    }
    let d = drain(&mut h);
    assert_eq!(types(&d, 2), ["ringing"]);
    assert_eq!(types(&d, 3), ["ringing"]);
    assert_eq!(types(&d, 4), ["error:rate_limited"]);
    // The bot never saw the excess.
    assert_eq!(types(&d, 1), ["incoming", "incoming"]);
    assert_eq!(h.metrics.rate_limited.get(&"call_bot"), 1);
    // A second later there is room for one more.
    let t1 = t0 + Duration::from_secs(1);
    handle(&mut h, 4, &call_json(), t1);
    let d = drain(&mut h);
    assert_eq!(types(&d, 4), ["ringing"]);
    assert_eq!(types(&d, 1), ["incoming"]);
}

#[test]
fn ice_is_bounded_per_side_per_call() {
    let t0 = Instant::now();
    let mut h = hub_with("d-a", t0, |c| c.max_ice_per_call = 2);
    h.open(1, t0);
    h.open(2, t0);
    h.hello_bot(1, bot_hello("bot"), "[]", t0);
    h.hello_caller(2, "[]", t0);
    drain(&mut h);
    handle(&mut h, 2, &call_json(), t0);
    let d = drain(&mut h);
    let call_id = msg_for(&d, 2)[0]["call_id"].as_str().unwrap().to_string();
    let ice = format!(
        r#"{{"type":"ice","call_id":"{call_id}","candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}}"#
    );
    // While ringing, the caller trickles: two reach the bot, the third does not.
    for _ in 0..3 {
        handle(&mut h, 2, &ice, t0);
    }
    let d = drain(&mut h);
    assert_eq!(types(&d, 1), ["ice", "ice"]);
    assert_eq!(types(&d, 2), ["error:too_many_candidates"]);
    // The bot's side has its own count.
    handle(&mut h, 1, &ice, t0);
    assert_eq!(types(&drain(&mut h), 2), ["ice"]);
}

#[test]
fn a_proof_of_work_buys_a_bounded_number_of_calls() {
    let t0 = Instant::now();
    let mut h = hub_with("d-a", t0, |c| {
        c.human_check = HumanCheck::Pow;
        c.pow_calls = 2;
        c.max_calls_per_caller = 16;
        c.pow_lifetime = Duration::from_secs(60);
    });
    h.open(1, t0);
    let mut hello = bot_hello("bot");
    hello.max_calls = 16;
    h.hello_bot(1, hello, "[]", t0);
    h.open(2, t0);
    h.hello_caller(2, "[]", t0);
    let d = drain(&mut h);
    let challenge = msg_for(&d, 2)[0]["challenge"]["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    let solve = |ch: &str| botcall_core::pow::solve(ch, 8, 0, 1 << 20).unwrap();
    let nonce = solve(&challenge);
    handle(
        &mut h,
        2,
        &format!(
            r#"{{"type":"verify","proof":{{"method":"pow","challenge":"{challenge}","nonce":"{nonce}"}}}}"#
        ),
        t0,
    );
    assert_eq!(types(&drain(&mut h), 2), ["verified"]);
    // Two calls on that solution, then a new challenge.
    handle(&mut h, 2, &call_json(), t0);
    handle(&mut h, 2, &call_json(), t0);
    assert_eq!(types(&drain(&mut h), 2), ["ringing", "ringing"]);
    handle(&mut h, 2, &call_json(), t0);
    let d = drain(&mut h);
    assert_eq!(types(&d, 2), ["error:human_check_required", "challenge"]);
    // A new solution works; and it expires with pow_lifetime.
    let challenge = msg_for(&d, 2)[1]["challenge"].as_str().unwrap().to_string();
    let nonce = solve(&challenge);
    handle(
        &mut h,
        2,
        &format!(
            r#"{{"type":"verify","proof":{{"method":"pow","challenge":"{challenge}","nonce":"{nonce}"}}}}"#
        ),
        t0,
    );
    handle(&mut h, 2, &call_json(), t0);
    assert_eq!(types(&drain(&mut h), 2), ["verified", "ringing"]);
    handle(&mut h, 2, &call_json(), t0 + Duration::from_secs(61));
    assert_eq!(types(&drain(&mut h), 2)[0], "error:human_check_required");
}
