//! The client driven by a fake clock and scripted daemon messages.

use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use super::*;
use crate::attest::HvPolicy;
use crate::attest::tests::{Claims, FP, NOW, OTHER_FP, jwks, offer, token};

#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Send(String),
    Connect,
    Close,
    Event(Event),
}

struct Harness {
    c: std::boxed::Box<Client>,
    now: u64,
}

impl Harness {
    fn new() -> Self {
        Self::with(ClientConfig::default())
    }

    fn with(cfg: ClientConfig) -> Self {
        let mut c = std::boxed::Box::new(Client::new(cfg, 7, Instant(0)));
        c.set_jwks(&jwks(7)).unwrap();
        Harness { c, now: 0 }
    }

    /// Drains outputs until Timeout; returns them and the timeout.
    fn drain(&mut self) -> (Vec<Out>, Instant) {
        let mut out = Vec::new();
        loop {
            match self.c.poll_output() {
                Output::Send(t) => out.push(Out::Send(t.to_string())),
                Output::Connect => out.push(Out::Connect),
                Output::Close => out.push(Out::Close),
                Output::Event(e) => out.push(Out::Event(e)),
                Output::Timeout(t) => return (out, t),
            }
        }
    }

    fn outs(&mut self) -> Vec<Out> {
        self.drain().0
    }

    fn at(&mut self, ms: u64) {
        self.now = ms;
        self.c.handle_timeout(Instant(ms));
    }

    fn input(&mut self, i: Input<'_>) -> Result<(), Error> {
        self.c.handle_input(Instant(self.now), i)
    }

    fn msg(&mut self, text: &str) -> Result<(), Error> {
        self.input(Input::Message(text))
    }

    /// Connect + hello + welcome.
    fn online(&mut self) {
        assert_eq!(self.outs(), vec![Out::Connect]);
        self.input(Input::Connected {
            token: "h.p.s",
            unix_secs: NOW,
        })
        .unwrap();
        let outs = self.outs();
        assert_eq!(
            outs,
            vec![Out::Send(
                r#"{"type":"hello","role":"bot","v":1,"token":"h.p.s","max_calls":1}"#.into()
            )]
        );
        self.msg(WELCOME).unwrap();
        let outs = self.outs();
        assert!(
            matches!(&outs[..], [Out::Event(Event::Online { agent_id, .. })] if agent_id.as_str() == "ec-bot"),
            "{outs:?}"
        );
    }
}

const WELCOME: &str = r#"{"type":"welcome","role":"bot","agent_id":"ec-bot","session":"ec-bot","heartbeat_interval":30,"ice_servers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":"turn:127.0.0.1:3478?transport=udp","username":"1:ec-bot","credential":"c2VjcmV0"}]}"#;

fn incoming(call_id: &str, sdp: &str, att: &str) -> String {
    let sdp = sdp.replace("\r\n", "\\r\\n");
    format!(
        r#"{{"type":"incoming","call_id":"{call_id}","from":"s-caller","sdp_offer":"{sdp}","attestation":"{att}","hv":"pow"}}"#
    )
}

fn good(call_id: &str) -> String {
    let c = Claims {
        call_id,
        ..Claims::default()
    };
    incoming(call_id, &offer(FP), &token(7, 7, &c))
}

#[test]
fn hello_welcome_and_ice_servers() {
    let mut h = Harness::new();
    assert_eq!(h.c.state(), ClientState::Connecting);
    h.online();
    assert!(h.c.is_online());
    assert_eq!(h.c.agent_id(), Some("ec-bot"));
    let ice = h.c.ice_servers();
    assert_eq!(ice.len(), 2);
    assert_eq!(ice[0].url.as_str(), "stun:127.0.0.1:3478");
    assert_eq!(ice[1].username.as_str(), "1:ec-bot");
    assert_eq!(ice[1].credential.as_str(), "c2VjcmV0");
    assert_eq!(h.c.stats().sessions, 1);
    // Next timeout: the idle ping at 1.5 heartbeats.
    assert_eq!(h.drain().1, Instant(45_000));
}

#[test]
fn incoming_brings_fresh_turn_credentials() {
    let mut h = Harness::new();
    h.online();
    let msg = good("c-1");
    let fresh = r#","ice_servers":[{"urls":"turn:127.0.0.1:3478?transport=udp","username":"9999:ec-bot","credential":"bmV3"}]}"#;
    let msg = format!("{}{fresh}", msg.strip_suffix('}').unwrap());
    h.msg(&msg).unwrap();
    let ice = h.c.ice_servers();
    assert_eq!(ice.len(), 2, "{}", h.c.ice_servers_json());
    assert_eq!(
        ice[0].url.as_str(),
        "stun:127.0.0.1:3478",
        "STUN from welcome kept"
    );
    assert_eq!(ice[1].username.as_str(), "9999:ec-bot", "TURN replaced");
    assert_eq!(ice[1].credential.as_str(), "bmV3");
    // A garbled list changes nothing.
    let bad = format!(
        "{}{}",
        good("c-2").strip_suffix('}').unwrap(),
        r#","ice_servers":[{"urls":5}]}"#
    );
    let _ = h.msg(&bad);
    assert_eq!(h.c.ice_servers()[1].username.as_str(), "9999:ec-bot");
}

#[test]
fn a_verified_call_is_answered_with_trickle_ice_and_hangup() {
    let mut h = Harness::new();
    h.online();
    h.msg(&good("c-1")).unwrap();
    let outs = h.outs();
    let [Out::Event(Event::Incoming { call_id })] = &outs[..] else {
        panic!("{outs:?}")
    };
    assert_eq!(call_id.as_str(), "c-1");
    let caller = h.c.caller("c-1").unwrap().clone();
    assert_eq!(caller.fp.as_str(), FP);
    assert_eq!(caller.hv.as_str(), "pow");
    assert!(h.c.offer("c-1").unwrap().contains("a=fingerprint:"));
    assert_eq!(h.c.caller("c-1").unwrap().caller.as_str(), "s-caller");
    // The caller trickles: object form, string form, end-of-candidates.
    h.msg(r#"{"type":"ice","call_id":"c-1","candidate":{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#).unwrap();
    h.msg(r#"{"type":"ice","call_id":"c-1","candidate":"candidate:2 1 udp 1 127.0.0.1 5001 typ host"}"#).unwrap();
    h.msg(r#"{"type":"ice","call_id":"c-1","candidate":null}"#)
        .unwrap();
    h.msg(r#"{"type":"ice","call_id":"c-1","candidate":{"candidate":""}}"#)
        .unwrap();
    let outs = h.outs();
    assert_eq!(outs.len(), 4);
    let Out::Event(Event::RemoteCandidate { candidate, mid, .. }) = &outs[0] else {
        panic!()
    };
    assert_eq!(
        candidate.as_deref(),
        Some("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host")
    );
    assert_eq!(mid.as_deref(), Some("0"));
    assert!(matches!(
        &outs[2],
        Out::Event(Event::RemoteCandidate {
            candidate: None,
            ..
        })
    ));
    assert!(matches!(
        &outs[3],
        Out::Event(Event::RemoteCandidate {
            candidate: None,
            ..
        })
    ));
    // Answer, then trickle ours.
    h.c.answer("c-1", "v=0\r\nanswer").unwrap();
    assert_eq!(h.c.answer("c-1", "again"), Err(Error::WrongCallState));
    assert_eq!(h.c.reject("c-1", "no"), Err(Error::WrongCallState));
    h.c.send_candidate(
        "c-1",
        Some("candidate:9 1 udp 5 10.0.0.1 9 typ srflx"),
        Some("0"),
    )
    .unwrap();
    h.c.send_candidate("c-1", None, None).unwrap();
    assert_eq!(
        h.outs(),
        vec![
            Out::Send(r#"{"type":"answer","call_id":"c-1","sdp_answer":"v=0\r\nanswer"}"#.into()),
            Out::Send(r#"{"type":"ice","call_id":"c-1","candidate":{"candidate":"candidate:9 1 udp 5 10.0.0.1 9 typ srflx","sdpMid":"0","sdpMLineIndex":0}}"#.into()),
            Out::Send(r#"{"type":"ice","call_id":"c-1","candidate":null}"#.into()),
        ]
    );
    // The caller hangs up; late messages for the call are ignored.
    h.msg(r#"{"type":"hangup","call_id":"c-1","reason":"bye"}"#)
        .unwrap();
    let outs = h.outs();
    assert!(matches!(&outs[..], [Out::Event(Event::Hangup { reason, .. })] if reason == "bye"));
    h.msg(r#"{"type":"ice","call_id":"c-1","candidate":null}"#)
        .unwrap();
    h.msg(r#"{"type":"hangup","call_id":"c-1","reason":"bye"}"#)
        .unwrap();
    assert_eq!(h.outs(), vec![]);
    assert_eq!(h.c.answer("c-1", "x"), Err(Error::UnknownCall));
    assert_eq!(h.c.calls().count(), 0);
}

#[test]
fn a_signed_answer_carries_answer_sig_verbatim() {
    let mut h = Harness::new();
    h.online();
    h.msg(&good("c-1")).unwrap();
    h.outs();
    h.c.answer_signed("c-1", "v=0", Some("h.p.s")).unwrap();
    assert_eq!(
        h.c.answer_signed("c-1", "v=0", Some("h.p.s")),
        Err(Error::WrongCallState)
    );
    assert_eq!(
        h.outs(),
        vec![Out::Send(
            r#"{"type":"answer","call_id":"c-1","sdp_answer":"v=0","answer_sig":"h.p.s"}"#.into()
        )]
    );
}

#[test]
fn bad_attestations_are_rejected_and_the_next_call_works() {
    let mut h = Harness::new();
    h.online();
    let cases: [(String, &str, AttestationError); 6] = [
        (
            incoming(
                "c-1",
                &offer(FP),
                &token(
                    9,
                    7,
                    &Claims {
                        call_id: "c-1",
                        ..Claims::default()
                    },
                ),
            ),
            "c-1",
            AttestationError::Forged,
        ),
        (
            incoming(
                "c-2",
                &offer(FP),
                &token(
                    7,
                    7,
                    &Claims {
                        call_id: "c-2",
                        iat: NOW - 500,
                        exp: NOW - 400,
                        ..Claims::default()
                    },
                ),
            ),
            "c-2",
            AttestationError::Expired,
        ),
        (
            incoming(
                "c-3",
                &offer(FP),
                &token(
                    7,
                    7,
                    &Claims {
                        call_id: "c-3",
                        aud: "other-bot",
                        ..Claims::default()
                    },
                ),
            ),
            "c-3",
            AttestationError::WrongAgent,
        ),
        (
            incoming(
                "c-4",
                &offer(FP),
                &token(
                    7,
                    7,
                    &Claims {
                        call_id: "c-9",
                        ..Claims::default()
                    },
                ),
            ),
            "c-4",
            AttestationError::WrongCall,
        ),
        (
            incoming(
                "c-5",
                &offer(OTHER_FP),
                &token(
                    7,
                    7,
                    &Claims {
                        call_id: "c-5",
                        ..Claims::default()
                    },
                ),
            ),
            "c-5",
            AttestationError::WrongFingerprint,
        ),
        (
            incoming("c-6", &offer(FP), "garbage"),
            "c-6",
            AttestationError::Malformed,
        ),
    ];
    for (text, id, err) in &cases {
        h.msg(text).unwrap();
        let outs = h.outs();
        assert_eq!(
            outs,
            vec![
                Out::Send(format!(
                    r#"{{"type":"reject","call_id":"{id}","reason":"{}"}}"#,
                    err.code()
                )),
                Out::Event(Event::Refused {
                    call_id: AgentId::new(id).unwrap(),
                    reason: RefuseReason::Attestation(*err),
                }),
            ],
            "{id}"
        );
        assert_eq!(h.c.calls().count(), 0);
    }
    assert_eq!(h.c.stats().refused_calls, 6);
    // The wall clock follows the monotonic clock: 30 min later the same
    // token (exp NOW+55) has expired.
    h.now = 30 * 60 * 1000;
    h.input(Input::Activity).unwrap();
    h.msg(&good("c-7")).unwrap();
    let outs = h.outs();
    assert!(
        matches!(
            &outs[1],
            Out::Event(Event::Refused {
                reason: RefuseReason::Attestation(AttestationError::Expired),
                ..
            })
        ),
        "{outs:?}"
    );
    // A policy that wants a real human check.
    let mut strict = Harness::with(ClientConfig {
        policy: HvPolicy::VERIFIED,
        ..ClientConfig::default()
    });
    strict.online();
    let c = Claims {
        call_id: "c-8",
        hv: "none",
        ..Claims::default()
    };
    strict
        .msg(&incoming("c-8", &offer(FP), &token(7, 7, &c)))
        .unwrap();
    let outs = strict.outs();
    assert!(matches!(
        &outs[1],
        Out::Event(Event::Refused {
            reason: RefuseReason::Attestation(AttestationError::MethodNotAccepted),
            ..
        })
    ));
    // And a good one still goes through.
    strict.msg(&good("c-9")).unwrap();
    assert!(matches!(
        &strict.outs()[..],
        [Out::Event(Event::Incoming { .. })]
    ));
}

#[test]
fn busy_when_all_slots_are_used() {
    let mut h = Harness::new();
    h.online();
    h.msg(&good("c-1")).unwrap();
    h.outs();
    h.msg(&good("c-2")).unwrap();
    assert_eq!(
        h.outs(),
        vec![
            Out::Send(r#"{"type":"reject","call_id":"c-2","reason":"busy"}"#.into()),
            Out::Event(Event::Refused {
                call_id: AgentId::new("c-2").unwrap(),
                reason: RefuseReason::Busy
            })
        ]
    );
    // A duplicate incoming for a live call is an error, not a second call.
    assert!(matches!(h.msg(&good("c-1")), Err(Error::Unexpected { .. })));
    h.c.reject("c-1", "declined").unwrap();
    assert_eq!(
        h.outs(),
        vec![Out::Send(
            r#"{"type":"reject","call_id":"c-1","reason":"declined"}"#.into()
        )]
    );
    h.msg(&good("c-3")).unwrap();
    assert!(matches!(
        &h.outs()[..],
        [Out::Event(Event::Incoming { .. })]
    ));
    assert_eq!(
        h.c.reject("c-3", &"x".repeat(65)),
        Err(Error::TooLarge("reason"))
    );
}

#[test]
fn malformed_messages_are_errors_not_panics() {
    let mut h = Harness::new();
    // Before welcome: anything but welcome/error is unexpected.
    h.outs();
    h.input(Input::Connected {
        token: "t",
        unix_secs: NOW,
    })
    .unwrap();
    h.outs();
    assert!(matches!(
        h.msg(&good("c-1")),
        Err(Error::Unexpected {
            state: "waiting for welcome",
            got: "incoming"
        })
    ));
    // A caller's welcome without agent id is refused.
    assert_eq!(
        h.msg(r#"{"type":"welcome","role":"bot","session":"s","heartbeat_interval":30,"ice_servers":[]}"#),
        Err(Error::BadMessage(ProtoError::Missing("agent_id")))
    );
    h.msg(WELCOME).unwrap();
    h.outs();
    let bad = [
        "",
        "{",
        "[]",
        "null",
        r#"{"type":"incoming"}"#,
        r#"{"type":"incoming","call_id":"c/1","from":"s","sdp_offer":"v=0","attestation":"x"}"#,
        r#"{"type":"ice","call_id":"c-1","candidate":5}"#,
        r#"{"type":"hangup","call_id":"c-1","reason":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        r#"{"type":"dance"}"#,
        r#"{"type":"ping","type":"ping"}"#,
        r#"{"type":"welcome","role":"bot","agent_id":"ec-bot","session":"s","heartbeat_interval":30,"ice_servers":[]}"#,
        r#"{"type":"call","to":"ec-bot","sdp_offer":"v=0"}"#,
        r#"{"type":"error"}"#,
        "{\"type\":\"incoming\",\"call_id\":\"c\u{0}\"}",
    ];
    for text in bad {
        assert!(h.msg(text).is_err(), "{text}");
        assert!(h.c.is_online());
    }
    // Plus the two refused before the welcome.
    assert_eq!(h.c.stats().bad_messages as usize, bad.len() + 2);
    // Oversized.
    let huge = format!(
        r#"{{"type":"error","code":"x","message":"{}"}}"#,
        "y".repeat(MAX_MESSAGE_LEN)
    );
    assert_eq!(h.msg(&huge), Err(Error::TooLarge("message")));
    // An offer too large for a message (and so for the slot).
    let big_offer = format!("{}{}", offer(FP), "a=x\r\n".repeat(MAX_OFFER_LEN / 5));
    assert_eq!(
        h.msg(&incoming("c-9", &big_offer, "x.y.z")),
        Err(Error::TooLarge("message"))
    );
    assert_eq!(h.outs(), vec![]);
    // Deterministic random bytes (as text) through the input path.
    let mut x: u32 = 1;
    for round in 0..3000 {
        let mut s = String::from(if round % 2 == 0 { "{\"type\":\"" } else { "" });
        for _ in 0..(round % 70) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let pool = b"{}[]\":,incomgtypehaswlc-01 \\un";
            s.push(pool[(x as usize) % pool.len()] as char);
        }
        let _ = h.msg(&s);
        h.outs();
    }
    assert!(h.c.is_online());
    // Errors from the daemon are events.
    h.msg(r#"{"type":"error","code":"wrong_state","message":"call is already answered","call_id":"c-1"}"#).unwrap();
    let outs = h.outs();
    assert!(
        matches!(&outs[..], [Out::Event(Event::ServerError { code, call_id: Some(_), .. })] if code == "wrong_state")
    );
    // A text ping is answered.
    h.msg(r#"{"type":"ping"}"#).unwrap();
    assert_eq!(h.outs(), vec![Out::Send(r#"{"type":"pong"}"#.into())]);
}

#[test]
fn reconnects_with_growing_jittered_backoff() {
    let mut h = Harness::new();
    h.online();
    h.msg(&good("c-1")).unwrap();
    h.outs();
    h.now = 1000;
    h.input(Input::Disconnected {
        close_code: Some(1001),
        retry_after_secs: None,
    })
    .unwrap();
    let (outs, t) = h.drain();
    assert_eq!(
        outs,
        vec![
            Out::Event(Event::Hangup {
                call_id: AgentId::new("c-1").unwrap(),
                reason: "disconnected".try_into().unwrap()
            }),
            Out::Event(Event::Offline {
                reason: OfflineReason::Disconnected,
                was_online: true
            }),
        ]
    );
    assert_eq!(h.c.calls().count(), 0);
    assert!(t.0 >= 1250 && t.0 <= 1500, "{t:?}");
    assert_eq!(h.c.answer("c-1", "x"), Err(Error::Offline));
    // Time before the deadline does nothing.
    h.at(t.0 - 1);
    assert_eq!(h.drain(), (vec![], t));
    // Fail repeatedly: each wait is in [ceiling/2, ceiling], ceilings double to 30 s.
    let mut waits = Vec::new();
    let mut deadline = t;
    for _ in 0..9 {
        h.at(deadline.0);
        assert_eq!(h.outs(), vec![Out::Connect]);
        h.input(Input::Disconnected {
            close_code: None,
            retry_after_secs: None,
        })
        .unwrap();
        let (outs, next) = h.drain();
        assert_eq!(
            outs,
            vec![Out::Event(Event::Offline {
                reason: OfflineReason::ConnectFailed,
                was_online: false
            })]
        );
        waits.push(next.0 - deadline.0);
        deadline = next;
    }
    let ceilings = [1000u64, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000];
    for (w, c) in waits.iter().zip(ceilings) {
        assert!(*w >= c / 2 && *w <= c, "{waits:?}");
    }
    // 10 attempts in ~2 minutes of outage: no busy loop.
    assert_eq!(h.c.stats().connect_attempts, 10);
    // A successful session resets the backoff.
    h.at(deadline.0);
    assert_eq!(h.outs(), vec![Out::Connect]);
    h.input(Input::Connected {
        token: "t2",
        unix_secs: NOW,
    })
    .unwrap();
    h.outs();
    h.msg(WELCOME).unwrap();
    h.outs();
    h.input(Input::Disconnected {
        close_code: None,
        retry_after_secs: None,
    })
    .unwrap();
    let (_, next) = h.drain();
    assert!(next.0 - h.now <= 500, "{}", next.0 - h.now);
    assert_eq!(h.c.stats().sessions, 2);
}

#[test]
fn a_retry_after_is_a_floor_for_one_wait_and_is_capped() {
    let mut h = Harness::new();
    let (outs, _) = h.drain();
    assert_eq!(outs, vec![Out::Connect]);
    // 429 with Retry-After: 20 → the next attempt is not before 20 s.
    h.input(Input::Disconnected {
        close_code: None,
        retry_after_secs: Some(20),
    })
    .unwrap();
    let (_, t) = h.drain();
    assert_eq!(t.0 - h.now, 20_000, "{t:?}");
    h.at(t.0 - 1);
    assert_eq!(h.drain().0, vec![]);
    h.at(t.0);
    assert_eq!(h.outs(), vec![Out::Connect]);
    // Without one, the backoff alone decides again (second ceiling: 1 s).
    h.input(Input::Disconnected {
        close_code: None,
        retry_after_secs: None,
    })
    .unwrap();
    let (_, t2) = h.drain();
    assert!((500..=1000).contains(&(t2.0 - h.now)), "{t2:?}");
    // A huge value is cut to RETRY_AFTER_MAX_SECS.
    h.at(t2.0);
    assert_eq!(h.outs(), vec![Out::Connect]);
    h.input(Input::Disconnected {
        close_code: None,
        retry_after_secs: Some(u32::MAX),
    })
    .unwrap();
    let (_, t3) = h.drain();
    assert_eq!(
        t3.0 - h.now,
        u64::from(crate::client::RETRY_AFTER_MAX_SECS) * 1000
    );
}

#[test]
fn connect_and_welcome_timeouts() {
    let mut h = Harness::new();
    let (outs, t) = h.drain();
    assert_eq!(outs, vec![Out::Connect]);
    assert_eq!(t, Instant(CONNECT_TIMEOUT_MS));
    h.at(CONNECT_TIMEOUT_MS);
    let (outs, t) = h.drain();
    assert_eq!(
        outs,
        vec![Out::Event(Event::Offline {
            reason: OfflineReason::ConnectFailed,
            was_online: false
        })]
    );
    h.at(t.0);
    assert_eq!(h.outs(), vec![Out::Connect]);
    h.input(Input::Connected {
        token: "t",
        unix_secs: NOW,
    })
    .unwrap();
    let (_, t) = h.drain();
    assert_eq!(t, Instant(h.now + WELCOME_TIMEOUT_MS));
    // The daemon refuses the token, but does not close: the timeout closes.
    h.msg(r#"{"type":"error","code":"unauthorized","message":"expired"}"#)
        .unwrap();
    assert!(matches!(
        &h.outs()[..],
        [Out::Event(Event::ServerError { .. })]
    ));
    h.at(t.0);
    assert_eq!(
        h.outs(),
        vec![
            Out::Close,
            Out::Event(Event::Offline {
                reason: OfflineReason::Timeout,
                was_online: false
            })
        ]
    );
    // A late Disconnected for the closed socket changes nothing.
    h.input(Input::Disconnected {
        close_code: Some(1008),
        retry_after_secs: None,
    })
    .unwrap();
    assert_eq!(h.outs(), vec![]);
    // Connected while not connecting is misuse.
    assert!(matches!(
        h.input(Input::Connected {
            token: "t",
            unix_secs: NOW
        }),
        Err(Error::Unexpected {
            got: "connected",
            ..
        })
    ));
}

#[test]
fn idle_ping_then_dead_socket() {
    let mut h = Harness::new();
    h.online();
    h.msg(&good("c-1")).unwrap();
    h.outs();
    // Daemon pings (WebSocket frames) keep it alive without app pings.
    for t in (30_000..=300_000).step_by(30_000) {
        h.at(t);
        h.input(Input::Activity).unwrap();
        assert_eq!(h.outs(), vec![]);
    }
    // Silence: a ping at 1.5 intervals, then the verdict at 2.5.
    h.at(300_000 + 45_000);
    assert_eq!(h.outs(), vec![Out::Send(r#"{"type":"ping"}"#.into())]);
    h.at(300_000 + 60_000);
    assert_eq!(h.outs(), vec![]);
    h.at(300_000 + 75_000);
    let outs = h.outs();
    assert_eq!(outs[0], Out::Close);
    assert!(matches!(&outs[1], Out::Event(Event::Hangup { .. })));
    assert_eq!(
        outs[2],
        Out::Event(Event::Offline {
            reason: OfflineReason::Timeout,
            was_online: true
        })
    );
    assert_eq!(h.c.stats().pings_sent, 1);
    // A pong would have reset it.
    let mut h = Harness::new();
    h.online();
    h.at(45_000);
    h.outs();
    h.msg(r#"{"type":"pong"}"#).unwrap();
    h.at(75_000);
    assert_eq!(h.outs(), vec![]);
}

#[test]
fn time_going_backwards_is_ignored() {
    let mut h = Harness::new();
    h.online();
    h.at(40_000);
    h.now = 10;
    h.input(Input::Activity).unwrap();
    // Activity "at 10" counts as at 40 000: the ping is due at 85 000.
    assert_eq!(h.drain().1, Instant(85_000));
}

#[test]
fn replaced_stops_and_shutdown_hangs_up() {
    let mut h = Harness::new();
    h.online();
    h.input(Input::Disconnected {
        close_code: Some(4000),
        retry_after_secs: None,
    })
    .unwrap();
    let (outs, t) = h.drain();
    assert_eq!(
        outs,
        vec![Out::Event(Event::Offline {
            reason: OfflineReason::Replaced,
            was_online: true
        })]
    );
    assert_eq!(t, Instant::NEVER);
    assert_eq!(h.c.state(), ClientState::Stopped);
    h.at(1_000_000);
    assert_eq!(h.outs(), vec![]);

    let mut h = Harness::new();
    h.online();
    h.msg(&good("c-1")).unwrap();
    h.outs();
    h.c.shutdown(Instant(5));
    assert_eq!(
        h.outs(),
        vec![
            Out::Send(r#"{"type":"hangup","call_id":"c-1","reason":"shutdown"}"#.into()),
            Out::Close,
            Out::Event(Event::Offline {
                reason: OfflineReason::Shutdown,
                was_online: true
            }),
        ]
    );
    assert_eq!(h.c.answer("c-1", "x"), Err(Error::Stopped));
    assert!(matches!(
        h.input(Input::Connected {
            token: "t",
            unix_secs: 0
        }),
        Err(Error::Stopped)
    ));
}

#[test]
fn local_hangup_and_messages_while_offline() {
    let mut h = Harness::new();
    assert_eq!(h.c.send_candidate("c-1", None, None), Err(Error::Offline));
    h.online();
    h.msg(&good("c-1")).unwrap();
    h.outs();
    h.c.answer("c-1", "v=0").unwrap();
    h.c.hangup("c-1", "bye").unwrap();
    assert_eq!(
        h.outs(),
        vec![
            Out::Send(r#"{"type":"answer","call_id":"c-1","sdp_answer":"v=0"}"#.into()),
            Out::Send(r#"{"type":"hangup","call_id":"c-1","reason":"bye"}"#.into()),
        ]
    );
    assert_eq!(h.c.hangup("c-1", "bye"), Err(Error::UnknownCall));
    // A token too long for hello is an error and a failed attempt.
    let mut h = Harness::new();
    h.outs();
    let long = "t".repeat(MAX_MESSAGE_LEN);
    assert_eq!(
        h.input(Input::Connected {
            token: &long,
            unix_secs: NOW
        }),
        Err(Error::TooLarge("token"))
    );
    assert!(matches!(h.c.state(), ClientState::Backoff { .. }));
    assert_eq!(h.c.set_jwks("{}"), Err(Error::BadJwks));
}

#[test]
fn jwks_missing_refuses_calls() {
    let c = std::boxed::Box::new(Client::new(ClientConfig::default(), 1, Instant(0)));
    let mut h = Harness { c, now: 0 };
    h.online();
    h.msg(&good("c-1")).unwrap();
    let outs = h.outs();
    assert!(matches!(
        &outs[1],
        Out::Event(Event::Refused {
            reason: RefuseReason::Attestation(AttestationError::BadJwks),
            ..
        })
    ));
}

#[test]
fn fixed_size() {
    // Documented in the module docs and docs/sdk.md.
    let n = core::mem::size_of::<Client>();
    std::eprintln!("size_of::<Client>() = {n}");
    assert!(n < 128 * 1024, "{n}");
    assert!(core::mem::size_of::<crate::ws::Decoder>() < 33 * 1024);
}
