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
use crate::auth::attest::{Attestation, Signer};
use crate::config::HumanCheck;
use crate::metrics::Metrics;

const OFFER: &str = "v=0\r\na=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n";

/// Signs nothing: says what it was asked to sign. The router only carries
/// the attestation; its signature is tested where it is made (auth/attest.rs)
/// and checked end to end by the SDK in the integration tests.
struct FakeSigner;

impl Signer for FakeSigner {
    fn sign(&self, what: &Attestation<'_>, now: u64, ttl: u64) -> String {
        format!("signed:{}:{}:{now}+{ttl}", what.call_id, what.agent)
    }
}

fn attestor() -> Rc<dyn Signer> {
    Rc::new(FakeSigner)
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
        &format!(
            r#"{{"type":"answer","call_id":"{call_id}","sdp_answer":"v=0","answer_sig":"e30.e30.c2ln\u002d"}}"#
        ),
        t0,
    );
    let answer = &msg_for(&drain(&mut h), 2)[0];
    assert_eq!(answer["type"], "answer");
    // The bot's signature reaches the caller untouched (escapes decoded the same).
    assert_eq!(answer["answer_sig"], "e30.e30.c2ln-");
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
            r#"{{"type":"answer","call_id":"{call_id}","sdp_answer":"v=0","answer_sig":"h.p.s"}}"#
        ))
        .unwrap(),
        None,
        t0,
        0,
    );
    let db = drain(&mut b);
    pass(&db, &mut [("d-a", &mut a)], t0);
    let answer = &msg_for(&drain(&mut a), 1)[0];
    assert_eq!(answer["type"], "answer");
    assert_eq!(
        answer["answer_sig"], "h.p.s",
        "relayed across daemons untouched"
    );
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

/// A call from caller conn 1 on `a` to the bot (conn 7) on `b`; answered
/// when `answer`. Returns the call id.
fn remote_call(a: &mut Hub, b: &mut Hub, t0: Instant, answer: bool) -> String {
    a.open(1, t0);
    a.hello_caller(1, "[]", t0);
    b.open(7, t0);
    b.hello_bot(7, bot_hello("bot"), "[]", t0);
    drain(a);
    drain(b);
    let text = format!(
        r#"{{"type":"call","to":"bot","sdp_offer":{}}}"#,
        serde_json::json!(OFFER)
    );
    a.handle(
        1,
        Msg::decode(&text).unwrap(),
        Some("d-b".into()),
        t0,
        1_000_000,
    );
    let da = drain(a);
    pass(&da, &mut [("d-b", b)], t0);
    let db = drain(b);
    let call_id = msg_for(&db, 7)[0]["call_id"].as_str().unwrap().to_string();
    pass(&db, &mut [("d-a", a)], t0);
    assert_eq!(msg_for(&drain(a), 1)[0]["type"], "ringing");
    if answer {
        handle(
            b,
            7,
            &format!(r#"{{"type":"answer","call_id":"{call_id}","sdp_answer":"v=0"}}"#),
            t0,
        );
        let db = drain(b);
        pass(&db, &mut [("d-a", a)], t0);
        assert_eq!(msg_for(&drain(a), 1)[0]["type"], "answer");
    }
    call_id
}

/// The bot says hello on `to` (conn `conn`) while `from` holds its socket:
/// `moved`, then `adopt`/`rebind`, passed around until quiet.
fn move_bot(
    hubs: &mut [(&str, &mut Hub)],
    to: &str,
    from: &str,
    conn: ConnId,
    now: Instant,
) -> Vec<(String, Drained)> {
    let hello = BotHello {
        moved_from: Some(from.into()),
        ..bot_hello("bot")
    };
    let h = hubs.iter_mut().find(|(n, _)| *n == to).unwrap();
    h.1.open(conn, now);
    h.1.hello_bot(conn, hello, "[]", now);
    pass_until_quiet(hubs, now)
}

fn sent_to(seen: &[(String, Drained)], hub: &str, conn: ConnId) -> Vec<serde_json::Value> {
    seen.iter()
        .filter(|(h, _)| h == hub)
        .flat_map(|(_, d)| msg_for(d, conn))
        .collect()
}

/// Messages in both directions still reach the right party, by value.
fn call_flows(
    hubs: &mut [(&str, &mut Hub)],
    caller: (&str, ConnId),
    bot: (&str, ConnId),
    call_id: &str,
    now: Instant,
) {
    let ice = format!(
        r#"{{"type":"ice","call_id":"{call_id}","candidate":"candidate:9 1 udp 1 127.0.0.1 9 typ host"}}"#
    );
    for (from, to) in [(caller, bot), (bot, caller)] {
        let h = hubs.iter_mut().find(|(n, _)| *n == from.0).unwrap();
        handle(h.1, from.1, &ice, now);
        let seen = pass_until_quiet(hubs, now);
        let got = sent_to(&seen, to.0, to.1);
        assert!(
            got.iter()
                .any(|m| m["type"] == "ice" && m["call_id"] == call_id),
            "ice from {from:?} did not reach {to:?}: {seen:#?}"
        );
        let errors: Vec<_> = seen
            .iter()
            .flat_map(|(_, d)| d.sent.iter())
            .filter(|(_, m)| m["type"] == "error")
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
}

/// Drains every hub and passes envelopes around until none is left.
fn pass_until_quiet(hubs: &mut [(&str, &mut Hub)], now: Instant) -> Vec<(String, Drained)> {
    let mut seen = Vec::new();
    loop {
        let mut quiet = true;
        for i in 0..hubs.len() {
            let d = drain(hubs[i].1);
            if !d.remote.is_empty() {
                quiet = false;
            }
            for (dest, env) in &d.remote {
                let h = hubs.iter_mut().find(|(n, _)| *n == &**dest).unwrap();
                h.1.handle_remote(remote::decode(env).unwrap(), now, 1_000_000);
            }
            seen.push((hubs[i].0.to_string(), d));
        }
        if quiet {
            return seen;
        }
    }
}

#[test]
fn a_bot_moving_to_the_callers_daemon_keeps_the_call_and_its_timeouts() {
    for answered in [true, false] {
        let t0 = Instant::now();
        let (mut a, mut b) = (hub("d-a", t0), hub("d-b", t0));
        let call_id = remote_call(&mut a, &mut b, t0, answered);
        let seen = move_bot(&mut [("d-a", &mut a), ("d-b", &mut b)], "d-a", "d-b", 8, t0);
        assert!(
            seen.iter()
                .any(|(h, d)| h == "d-b" && d.closes == vec![(7, 4000)]),
            "B closes the old socket"
        );
        // A keeps its caller; the bot's side is local now. Nobody is told
        // `not_your_call`.
        call_flows(
            &mut [("d-a", &mut a), ("d-b", &mut b)],
            ("d-a", 1),
            ("d-a", 8),
            &call_id,
            t0,
        );
        assert_eq!(b.metrics.calls_active.get(), 0, "B let go of it");
        assert_eq!(a.metrics.calls_active.get(), 1);
        if answered {
            // The bot's socket drops: the call waits the grace, then ends.
            a.close(8, t0 + Duration::from_secs(1));
            assert!(msg_for(&drain(&mut a), 1).is_empty());
            a.tick(t0 + Duration::from_secs(12));
            let m = msg_for(&drain(&mut a), 1);
            assert_eq!(
                (m[0]["type"].as_str(), m[0]["reason"].as_str()),
                (Some("hangup"), Some("peer_gone"))
            );
            assert_eq!(a.metrics.calls_ended.snapshot(), vec![("bot_gone", 1)]);
        } else {
            // Still ringing: the ring timeout ends it for both.
            a.tick(t0 + Duration::from_secs(31));
            let d = drain(&mut a);
            for conn in [1, 8] {
                assert!(
                    msg_for(&d, conn).iter().any(|m| m["reason"] == "timeout"),
                    "{d:?}"
                );
            }
            assert_eq!(a.metrics.calls_ended.snapshot(), vec![("ring_timeout", 1)]);
        }
        assert_eq!(a.metrics.calls_active.get(), 0);
    }
}

#[test]
fn a_bot_moving_to_a_third_daemon_and_back_keeps_the_call() {
    let t0 = Instant::now();
    let (mut a, mut b, mut c) = (hub("d-a", t0), hub("d-b", t0), hub("d-c", t0));
    let call_id = remote_call(&mut a, &mut b, t0, true);
    {
        let hubs = &mut [("d-a", &mut a), ("d-b", &mut b), ("d-c", &mut c)];
        move_bot(hubs, "d-c", "d-b", 8, t0);
        call_flows(hubs, ("d-a", 1), ("d-c", 8), &call_id, t0);
        // ... and back to B.
        move_bot(hubs, "d-b", "d-c", 9, t0);
        call_flows(hubs, ("d-a", 1), ("d-b", 9), &call_id, t0);
        // ... and to the caller's daemon, and away from it again.
        move_bot(hubs, "d-a", "d-b", 10, t0);
        call_flows(hubs, ("d-a", 1), ("d-a", 10), &call_id, t0);
        move_bot(hubs, "d-c", "d-a", 11, t0);
        call_flows(hubs, ("d-a", 1), ("d-c", 11), &call_id, t0);
    }
    assert_eq!(
        (
            a.metrics.calls_active.get(),
            b.metrics.calls_active.get(),
            c.metrics.calls_active.get()
        ),
        (1, 0, 1)
    );
    // The bot hangs up: the caller hears it, both halves end.
    handle(
        &mut c,
        11,
        &format!(r#"{{"type":"hangup","call_id":"{call_id}","reason":"bye"}}"#),
        t0,
    );
    let seen = pass_until_quiet(&mut [("d-a", &mut a), ("d-b", &mut b), ("d-c", &mut c)], t0);
    assert_eq!(sent_to(&seen, "d-a", 1)[0]["reason"], "bye");
    assert_eq!(
        a.metrics.calls_active.get() + c.metrics.calls_active.get(),
        0
    );
    assert_eq!(a.metrics.calls_ended.snapshot(), vec![("bot_hangup", 1)]);
}

#[test]
fn end_labels_say_who_and_why_from_a_bounded_set() {
    use super::call::{Side, end_label};
    let cases = [
        (Side::Caller, "normal", "caller_hangup"),
        (Side::Caller, "hangup", "caller_hangup"),
        (Side::Bot, "hangup", "bot_hangup"),
        (Side::Bot, "shutdown", "bot_hangup"),
        (Side::Caller, "media_lost", "media_lost"),
        (Side::Bot, "media_lost", "media_lost"),
        (Side::Bot, "media_timeout", "media_timeout"),
        (Side::Bot, "media_closed", "caller_hangup"),
        (Side::Caller, "media_closed", "bot_hangup"),
        (Side::Caller, "error", "error"),
        (Side::Bot, "timeout", "ring_timeout"),
        (Side::Caller, "peer_gone", "caller_gone"),
        (Side::Bot, "peer_gone", "bot_gone"),
        (Side::Caller, "\u{1F600} anything at all", "caller_hangup"),
    ];
    for (side, reason, want) in cases {
        let got = end_label(side, &Text::Str(reason));
        assert_eq!(got, want, "{side:?} {reason}");
        assert!(crate::metrics::CALL_END_REASONS.contains(&got));
    }
    // Escaped JSON reasons read the same.
    let m = Msg::decode(r#"{"type":"hangup","call_id":"c","reason":"media\u005flost"}"#).unwrap();
    let Msg::Hangup { reason, .. } = m else {
        panic!()
    };
    assert_eq!(end_label(Side::Caller, &reason), "media_lost");
}

#[test]
fn a_reject_after_the_answer_is_refused_from_here_and_from_another_daemon() {
    let t0 = Instant::now();
    let (mut a, mut b) = (hub("d-a", t0), hub("d-b", t0));
    let call_id = remote_call(&mut a, &mut b, t0, true);
    let reject = format!(r#"{{"type":"reject","call_id":"{call_id}"}}"#);
    // The bot's own daemon refuses it: the call is not ringing.
    handle(&mut b, 7, &reject, t0);
    let db = drain(&mut b);
    assert_eq!(msg_for(&db, 7)[0]["code"], "wrong_state");
    assert!(db.remote.is_empty());
    // The same reject arriving as an envelope from the bot's daemon (an
    // older daemon, or a forged one on the bus) changes nothing either.
    let env = remote::encode(
        "d-b",
        remote::Kind::Signal,
        &remote::Out {
            call_id: Some(&id(&call_id)),
            ..Default::default()
        },
        Some(&Msg::decode(&reject).unwrap()),
    );
    a.handle_remote(
        remote::decode(std::str::from_utf8(&env).unwrap()).unwrap(),
        t0,
        0,
    );
    assert!(msg_for(&drain(&mut a), 1).is_empty());
    // The call is still up on both: the caller's hangup reaches the bot.
    handle(
        &mut a,
        1,
        &format!(r#"{{"type":"hangup","call_id":"{call_id}","reason":"normal"}}"#),
        t0,
    );
    let da = drain(&mut a);
    pass(&da, &mut [("d-b", &mut b)], t0);
    assert_eq!(msg_for(&drain(&mut b), 7)[0]["type"], "hangup");
}
