//! The TURN client against a scripted server: hand-built responses, a fake
//! clock.

use std::format;
use std::string::{String as StdString, ToString};
use std::vec::Vec as StdVec;

use super::*;
use crate::stun::long_term_key;

const USER: &str = "1700000000:ec-bot";
const PASS: &str = "c2VjcmV0LWNyZWRlbnRpYWw=";
const REALM: &str = "botcall";

fn server() -> SocketAddr {
    "192.0.2.10:3478".parse().unwrap()
}
fn relayed() -> SocketAddr {
    "192.0.2.10:50000".parse().unwrap()
}
fn mapped() -> SocketAddr {
    "198.51.100.4:40000".parse().unwrap()
}
fn peer() -> SocketAddr {
    "203.0.113.5:61000".parse().unwrap()
}
fn key() -> [u8; 16] {
    long_term_key(USER, REALM, PASS)
}

/// A client and a scratch buffer.
struct H {
    c: TurnClient,
    buf: [u8; MAX_CONTROL_LEN],
}

/// What the fake server saw in one request.
#[derive(Debug)]
struct Req {
    txid: [u8; 12],
    method: u16,
    username: Option<StdString>,
    nonce: Option<StdString>,
    realm: Option<StdString>,
    integrity_ok: bool,
    has_integrity: bool,
    lifetime: Option<u32>,
    peer: Option<SocketAddr>,
    transport: Option<u8>,
}

impl H {
    fn new() -> Self {
        H {
            c: TurnClient::new(server(), USER, PASS, 42).unwrap(),
            buf: [0; MAX_CONTROL_LEN],
        }
    }

    /// The next control message, parsed as a server would.
    fn next(&mut self) -> Option<Req> {
        let n = self.c.poll_transmit(&mut self.buf).unwrap()?;
        let m = Message::parse(&self.buf[..n]).expect("well-formed request");
        assert_eq!(m.class(), Class::Request);
        assert_eq!(m.check_fingerprint(), Some(true), "FINGERPRINT");
        let s = |k| m.attr_str(k).map(ToString::to_string);
        Some(Req {
            txid: m.txid(),
            method: m.method(),
            username: s(attr::USERNAME),
            nonce: s(attr::NONCE),
            realm: s(attr::REALM),
            integrity_ok: m.check_integrity(&key()),
            has_integrity: m.has_integrity(),
            lifetime: m.attr_u32(attr::LIFETIME),
            peer: m.xor_addr(attr::XOR_PEER_ADDRESS),
            transport: m
                .attr(attr::REQUESTED_TRANSPORT)
                .and_then(|v| v.first().copied()),
        })
    }

    fn input(&mut self, now: u64, msg: &[u8]) -> Result<(), TurnError> {
        self.c.handle_input(Instant(now), msg).map(|_| ())
    }

    fn events(&mut self) -> StdVec<TurnEvent> {
        core::iter::from_fn(|| self.c.poll_event()).collect()
    }

    /// Allocate → 401 → authenticated Allocate → success, at t = 0.
    fn allocated() -> Self {
        let mut h = H::new();
        h.c.allocate(Instant(0));
        let r = h.next().unwrap();
        h.input(0, &challenge(&r, 401, "n1")).unwrap();
        let r = h.next().unwrap();
        h.input(0, &alloc_ok(&r, 600)).unwrap();
        assert_eq!(h.c.state(), TurnState::Allocated);
        h.events();
        h
    }
}

/// A server response for `req`.
fn response(
    req: &Req,
    class: Class,
    f: impl FnOnce(&mut MessageWriter<'_>),
    integrity: Option<[u8; 16]>,
) -> StdVec<u8> {
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::new(&mut buf, req.method, class, &req.txid).unwrap();
    f(&mut w);
    if let Some(k) = integrity {
        w.message_integrity(&k).unwrap();
    }
    w.fingerprint().unwrap();
    let n = w.finish();
    buf[..n].to_vec()
}

fn error_code(code: u16) -> [u8; 4] {
    [0, 0, (code / 100) as u8, (code % 100) as u8]
}

fn challenge(req: &Req, code: u16, nonce: &str) -> StdVec<u8> {
    response(
        req,
        Class::Error,
        |w| {
            w.attr(attr::ERROR_CODE, &error_code(code)).unwrap();
            w.attr(attr::REALM, REALM.as_bytes()).unwrap();
            w.attr(attr::NONCE, nonce.as_bytes()).unwrap();
        },
        None,
    )
}

fn error(req: &Req, code: u16) -> StdVec<u8> {
    response(
        req,
        Class::Error,
        |w| w.attr(attr::ERROR_CODE, &error_code(code)).unwrap(),
        Some(key()),
    )
}

fn alloc_ok(req: &Req, lifetime: u32) -> StdVec<u8> {
    response(
        req,
        Class::Success,
        |w| {
            w.xor_addr(attr::XOR_RELAYED_ADDRESS, relayed()).unwrap();
            w.xor_addr(attr::XOR_MAPPED_ADDRESS, mapped()).unwrap();
            w.attr_u32(attr::LIFETIME, lifetime).unwrap();
        },
        Some(key()),
    )
}

fn ok(req: &Req, lifetime: Option<u32>) -> StdVec<u8> {
    response(
        req,
        Class::Success,
        |w| {
            if let Some(l) = lifetime {
                w.attr_u32(attr::LIFETIME, l).unwrap();
            }
        },
        Some(key()),
    )
}

fn data_indication(peer: SocketAddr, data: &[u8]) -> StdVec<u8> {
    let mut buf = [0u8; 256];
    let mut w = MessageWriter::new(&mut buf, method::DATA, Class::Indication, &[3; 12]).unwrap();
    w.xor_addr(attr::XOR_PEER_ADDRESS, peer).unwrap();
    w.attr(attr::DATA, data).unwrap();
    let n = w.finish();
    buf[..n].to_vec()
}

#[test]
fn allocate_with_the_long_term_credential_challenge() {
    let mut h = H::new();
    assert_eq!(h.c.state(), TurnState::Idle);
    assert_eq!(h.c.poll_timeout(), Instant::NEVER);
    assert!(h.next().is_none(), "nothing before allocate()");
    h.c.allocate(Instant(5));
    assert_eq!(h.c.poll_timeout(), Instant(5));
    // 1: unauthenticated, REQUESTED-TRANSPORT = UDP.
    let r1 = h.next().unwrap();
    assert_eq!(r1.method, method::ALLOCATE);
    assert_eq!(r1.transport, Some(17));
    assert!(r1.username.is_none() && !r1.has_integrity);
    assert!(h.next().is_none());
    // 2: the 401 brings realm and nonce; the retry is authenticated.
    h.input(6, &challenge(&r1, 401, "nonce-1")).unwrap();
    assert_eq!(h.c.realm(), REALM);
    let r2 = h.next().unwrap();
    assert_ne!(r2.txid, r1.txid);
    assert_eq!(r2.method, method::ALLOCATE);
    assert_eq!(r2.username.as_deref(), Some(USER));
    assert_eq!(r2.realm.as_deref(), Some(REALM));
    assert_eq!(r2.nonce.as_deref(), Some("nonce-1"));
    assert!(
        r2.integrity_ok,
        "MESSAGE-INTEGRITY keyed with MD5(user:realm:pass)"
    );
    // 3: the success response.
    h.input(7, &alloc_ok(&r2, 600)).unwrap();
    assert_eq!(
        h.events(),
        [TurnEvent::Allocated {
            relayed: relayed(),
            mapped: Some(mapped()),
            lifetime_secs: 600
        }]
    );
    assert_eq!(h.c.state(), TurnState::Allocated);
    assert_eq!(h.c.relayed_addr(), Some(relayed()));
    assert_eq!(h.c.mapped_addr(), Some(mapped()));
    // Refreshed a minute before it expires.
    assert_eq!(h.c.poll_timeout(), Instant(7 + 540_000));
    // The response again (a duplicate): not ours any more.
    assert_eq!(
        h.input(8, &alloc_ok(&r2, 600)),
        Err(TurnError::UnknownTransaction)
    );
}

#[test]
fn success_without_valid_integrity_is_ignored() {
    let mut h = H::new();
    h.c.allocate(Instant(0));
    let r = h.next().unwrap();
    h.input(0, &challenge(&r, 401, "n")).unwrap();
    let r = h.next().unwrap();
    let mut forged = alloc_ok(&r, 600);
    // No integrity at all.
    let bare = response(
        &r,
        Class::Success,
        |w| w.xor_addr(attr::XOR_RELAYED_ADDRESS, relayed()).unwrap(),
        None,
    );
    assert_eq!(h.input(1, &bare), Err(TurnError::BadIntegrity));
    // Integrity with another key.
    let other = response(
        &r,
        Class::Success,
        |w| w.xor_addr(attr::XOR_RELAYED_ADDRESS, relayed()).unwrap(),
        Some([7; 16]),
    );
    assert_eq!(h.input(1, &other), Err(TurnError::BadIntegrity));
    // A flipped bit in the relayed address (FINGERPRINT recomputed would
    // still fail the integrity; here the fingerprint catches it first).
    forged[26] ^= 1;
    assert!(h.input(1, &forged).is_err());
    assert_eq!(h.c.state(), TurnState::Allocating);
    assert!(h.events().is_empty());
    // The request is still in flight: retransmitted, then answered.
    h.c.handle_timeout(Instant(500));
    let again = h.next().unwrap();
    assert_eq!(again.txid, r.txid);
    h.input(600, &alloc_ok(&again, 600)).unwrap();
    assert_eq!(h.c.state(), TurnState::Allocated);
}

#[test]
fn stale_nonce_is_retried_with_the_new_nonce() {
    let mut h = H::allocated();
    h.c.create_permission(Instant(10), peer().ip()).unwrap();
    let r = h.next().unwrap();
    assert_eq!(r.method, method::CREATE_PERMISSION);
    assert_eq!(r.peer.map(|p| p.ip()), Some(peer().ip()));
    assert_eq!(r.nonce.as_deref(), Some("n1"));
    assert!(r.integrity_ok);
    h.input(11, &challenge(&r, 438, "n2")).unwrap();
    let r2 = h.next().unwrap();
    assert_ne!(r2.txid, r.txid);
    assert_eq!(r2.nonce.as_deref(), Some("n2"));
    assert!(r2.integrity_ok);
    h.input(12, &ok(&r2, None)).unwrap();
    assert_eq!(h.events(), [TurnEvent::PermissionCreated(peer().ip())]);
    assert!(h.c.has_permission(peer().ip()));
    // Later requests use the new nonce too.
    h.c.handle_timeout(Instant(540_000));
    let refresh = h.next().unwrap();
    assert_eq!(refresh.method, method::REFRESH);
    assert_eq!(refresh.nonce.as_deref(), Some("n2"));
}

#[test]
fn endless_stale_nonces_fail_the_request() {
    let mut h = H::allocated();
    h.c.create_permission(Instant(10), peer().ip()).unwrap();
    for i in 0..=MAX_NONCE_RETRIES {
        let r = h.next().unwrap();
        h.input(11, &challenge(&r, 438, &format!("n{i}x"))).unwrap();
    }
    assert!(h.next().is_none());
    assert_eq!(
        h.events(),
        [TurnEvent::PermissionFailed {
            ip: peer().ip(),
            error: TurnError::StaleNonce
        }]
    );
    assert_eq!(
        h.c.create_permission(Instant(12), peer().ip()),
        Err(TurnError::StaleNonce)
    );
}

#[test]
fn wrong_credentials_fail_the_allocation() {
    let mut h = H::new();
    h.c.allocate(Instant(0));
    let r = h.next().unwrap();
    h.input(0, &challenge(&r, 401, "n")).unwrap();
    let r = h.next().unwrap();
    h.input(0, &challenge(&r, 401, "n")).unwrap();
    assert_eq!(h.events(), [TurnEvent::Failed(TurnError::Unauthorized)]);
    assert_eq!(h.c.state(), TurnState::Done(Some(TurnError::Unauthorized)));
    assert!(h.next().is_none());
    assert_eq!(h.c.poll_timeout(), Instant::NEVER);
    // A 401 without a nonce is malformed, and other codes map to errors.
    for (code, want) in [
        (486, TurnError::QuotaReached),
        (508, TurnError::InsufficientCapacity),
        (442, TurnError::UnsupportedTransport),
        (437, TurnError::AllocationMismatch),
        (500, TurnError::Server(500)),
    ] {
        let mut h = H::new();
        h.c.allocate(Instant(0));
        let r = h.next().unwrap();
        h.input(0, &error(&r, code)).unwrap();
        assert_eq!(h.events(), [TurnEvent::Failed(want)], "{code}");
    }
    let mut h = H::new();
    h.c.allocate(Instant(0));
    let r = h.next().unwrap();
    let no_nonce = response(
        &r,
        Class::Error,
        |w| w.attr(attr::ERROR_CODE, &error_code(401)).unwrap(),
        None,
    );
    h.input(0, &no_nonce).unwrap();
    assert_eq!(h.events(), [TurnEvent::Failed(TurnError::Malformed)]);
}

#[test]
fn retransmissions_back_off_then_time_out() {
    let mut h = H::new();
    h.c.allocate(Instant(0));
    let mut sent_at = StdVec::new();
    let mut now = 0;
    let first = h.next().unwrap();
    sent_at.push(now);
    loop {
        let at = h.c.poll_timeout();
        if at == Instant::NEVER {
            break;
        }
        now = at.0;
        h.c.handle_timeout(at);
        if let Some(r) = h.next() {
            assert_eq!(r.txid, first.txid, "a retransmission keeps the id");
            sent_at.push(now);
        }
    }
    assert_eq!(sent_at, [0, 500, 1500, 3500, 6500, 9500, 12500]);
    assert_eq!(now, 15_500);
    assert_eq!(h.events(), [TurnEvent::Failed(TurnError::Timeout)]);
    assert_eq!(h.c.state(), TurnState::Done(Some(TurnError::Timeout)));
}

#[test]
fn refreshes_allocation_and_permissions_on_time() {
    let mut h = H::allocated();
    h.c.create_permission(Instant(0), peer().ip()).unwrap();
    let p = h.next().unwrap();
    h.input(10, &ok(&p, None)).unwrap();
    assert!(h.next().is_none());
    // Nothing until 240 s: then the permission.
    assert_eq!(h.c.poll_timeout(), Instant(10 + PERMISSION_REFRESH_MS));
    h.c.handle_timeout(Instant(239_000));
    assert!(h.next().is_none());
    h.c.handle_timeout(Instant(240_010));
    let p2 = h.next().unwrap();
    assert_eq!(p2.method, method::CREATE_PERMISSION);
    h.input(240_020, &ok(&p2, None)).unwrap();
    // Re-installing is not a new event.
    assert_eq!(h.events(), [TurnEvent::PermissionCreated(peer().ip())]);
    // The allocation at 540 s, without LIFETIME (the server's default).
    h.c.handle_timeout(Instant(540_000));
    let r = h.next().unwrap();
    assert_eq!(r.method, method::REFRESH);
    assert_eq!(r.lifetime, None);
    assert!(r.integrity_ok);
    h.input(540_100, &ok(&r, Some(300))).unwrap();
    assert!(
        h.events()
            .contains(&TurnEvent::Refreshed { lifetime_secs: 300 })
    );
    // A 300 s lifetime is refreshed after 240 s.
    h.c.handle_timeout(Instant(540_100 + 239_999));
    while let Some(r) = h.next() {
        assert_ne!(r.method, method::REFRESH);
    }
    h.c.handle_timeout(Instant(540_100 + 240_000));
    let mut methods = StdVec::new();
    while let Some(r) = h.next() {
        methods.push(r.method);
    }
    assert!(methods.contains(&method::REFRESH), "{methods:?}");
}

#[test]
fn lost_allocation_on_refresh_error() {
    let mut h = H::allocated();
    h.c.handle_timeout(Instant(540_000));
    let r = h.next().unwrap();
    h.input(540_001, &error(&r, 437)).unwrap();
    assert_eq!(
        h.events(),
        [TurnEvent::Failed(TurnError::AllocationMismatch)]
    );
    assert_eq!(h.c.relayed_addr(), None);
    let mut out = [0u8; 64];
    assert_eq!(
        h.c.send(peer(), b"x", &mut out),
        Err(TurnError::NotAllocated)
    );
}

#[test]
fn send_and_data_indications() {
    let mut h = H::allocated();
    let mut out = [0u8; 256];
    // No permission yet: one is requested, the datagram is refused.
    assert_eq!(
        h.c.send(peer(), b"ping", &mut out),
        Err(TurnError::NoPermission)
    );
    let p = h.next().unwrap();
    assert_eq!(p.method, method::CREATE_PERMISSION);
    // In flight: wrapped optimistically.
    let n = h.c.send(peer(), b"ping", &mut out).unwrap();
    assert!(n <= 4 + SEND_OVERHEAD);
    let m = Message::parse(&out[..n]).unwrap();
    assert_eq!((m.method(), m.class()), (method::SEND, Class::Indication));
    assert_eq!(m.xor_addr(attr::XOR_PEER_ADDRESS), Some(peer()));
    assert_eq!(m.attr(attr::DATA), Some(&b"ping"[..]));
    h.input(1, &ok(&p, None)).unwrap();
    // Another port on the same IP shares the permission.
    let other_port = SocketAddr::new(peer().ip(), 1234);
    assert!(h.c.send(other_port, b"x", &mut out).is_ok());
    // Indications have fresh transaction ids.
    let n2 = h.c.send(peer(), b"ping", &mut out[..]).unwrap();
    assert_eq!(n2, n);
    // Too small a buffer.
    assert_eq!(
        h.c.send(peer(), &[0u8; 100], &mut out[..60]),
        Err(TurnError::BufferTooSmall)
    );
    // IPv6 peers cannot use an IPv4 relay.
    assert_eq!(
        h.c.send("[2001:db8::1]:5".parse().unwrap(), b"x", &mut out),
        Err(TurnError::WrongFamily)
    );
    // Data indications come out as the peer's datagram.
    let d = data_indication(peer(), b"pong");
    assert_eq!(
        h.c.handle_input(Instant(2), &d),
        Ok(Incoming::Data {
            peer: peer(),
            data: b"pong"
        })
    );
    // One without DATA or without a peer is malformed.
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(&mut buf, method::DATA, Class::Indication, &[1; 12]).unwrap();
    w.xor_addr(attr::XOR_PEER_ADDRESS, peer()).unwrap();
    let n = w.finish();
    assert_eq!(
        h.c.handle_input(Instant(3), &buf[..n]),
        Err(TurnError::Malformed)
    );
    // Before an allocation there is nothing to deliver.
    let mut fresh = H::new();
    assert_eq!(
        fresh.c.handle_input(Instant(0), &d),
        Err(TurnError::NotAllocated)
    );
}

#[test]
fn permissions_asked_early_wait_for_the_allocation() {
    let mut h = H::new();
    h.c.create_permission(Instant(0), peer().ip()).unwrap();
    h.c.allocate(Instant(0));
    let r = h.next().unwrap();
    assert_eq!(r.method, method::ALLOCATE);
    assert!(h.next().is_none(), "no permission before the allocation");
    h.input(1, &challenge(&r, 401, "n")).unwrap();
    let r = h.next().unwrap();
    h.input(2, &alloc_ok(&r, 600)).unwrap();
    let p = h.next().unwrap();
    assert_eq!(p.method, method::CREATE_PERMISSION);
    assert!(p.integrity_ok);
    h.input(3, &error(&p, 403)).unwrap();
    let ev = h.events();
    assert_eq!(
        ev.last(),
        Some(&TurnEvent::PermissionFailed {
            ip: peer().ip(),
            error: TurnError::Forbidden
        })
    );
    let mut out = [0u8; 64];
    assert_eq!(h.c.send(peer(), b"x", &mut out), Err(TurnError::Forbidden));
}

#[test]
fn permission_table_is_bounded() {
    let mut h = H::allocated();
    for i in 0..MAX_PERMISSIONS {
        let ip = IpAddr::V4(core::net::Ipv4Addr::new(10, 0, 0, i as u8));
        h.c.create_permission(Instant(1), ip).unwrap();
        // Idempotent.
        h.c.create_permission(Instant(1), ip).unwrap();
    }
    assert_eq!(
        h.c.create_permission(Instant(1), peer().ip()),
        Err(TurnError::TableFull)
    );
    let mut n = 0;
    while h.next().is_some() {
        n += 1;
    }
    assert_eq!(n, MAX_PERMISSIONS);
}

#[test]
fn close_deallocates() {
    let mut h = H::allocated();
    h.c.close(Instant(100));
    assert_eq!(h.c.state(), TurnState::Closing);
    let r = h.next().unwrap();
    assert_eq!(r.method, method::REFRESH);
    assert_eq!(r.lifetime, Some(0));
    assert!(r.integrity_ok);
    h.input(101, &ok(&r, Some(0))).unwrap();
    assert_eq!(h.events(), [TurnEvent::Closed]);
    assert_eq!(h.c.state(), TurnState::Done(None));
    assert_eq!(
        h.c.create_permission(Instant(102), peer().ip()),
        Err(TurnError::Closed)
    );
    // Closing before anything was allocated just stops.
    let mut h = H::new();
    h.c.allocate(Instant(0));
    h.c.close(Instant(1));
    assert!(h.next().is_none());
    assert_eq!(h.events(), [TurnEvent::Closed]);
    // An unanswered deallocation ends too.
    let mut h = H::allocated();
    h.c.close(Instant(0));
    let _ = h.next();
    for t in 1..100 {
        h.c.handle_timeout(Instant(t * 1000));
        while h.next().is_some() {}
    }
    assert_eq!(h.events(), [TurnEvent::Closed]);
}

#[test]
fn bad_construction_and_input() {
    let long = "x".repeat(MAX_USERNAME_LEN + 1);
    assert_eq!(
        TurnClient::new(server(), &long, PASS, 1).err(),
        Some(TurnError::TooLong)
    );
    assert_eq!(
        TurnClient::new(server(), USER, &long, 1).err(),
        Some(TurnError::TooLong)
    );
    let mut h = H::new();
    h.c.allocate(Instant(0));
    let r = h.next().unwrap();
    // A realm longer than kept fails the allocation with a typed error.
    let long_realm = response(
        &r,
        Class::Error,
        |w| {
            w.attr(attr::ERROR_CODE, &error_code(401)).unwrap();
            w.attr(attr::REALM, "r".repeat(MAX_REALM_LEN + 1).as_bytes())
                .unwrap();
            w.attr(attr::NONCE, b"n").unwrap();
        },
        None,
    );
    h.input(0, &long_realm).unwrap();
    assert_eq!(h.events(), [TurnEvent::Failed(TurnError::TooLong)]);
    // Not STUN, requests, unknown indications.
    let mut h = H::allocated();
    assert_eq!(h.input(1, b"hello"), Err(TurnError::Malformed));
    assert_eq!(h.input(1, &[0x40; 40]), Err(TurnError::Malformed));
    let mut buf = [0u8; 32];
    let w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Request, &[1; 12]).unwrap();
    let n = w.finish();
    assert_eq!(h.input(1, &buf[..n]), Err(TurnError::Malformed));
    // A control buffer too small is an error that consumes nothing.
    h.c.create_permission(Instant(2), peer().ip()).unwrap();
    let mut tiny = [0u8; 30];
    assert_eq!(h.c.poll_transmit(&mut tiny), Err(TurnError::BufferTooSmall));
    assert!(h.next().is_some());
}

#[test]
fn time_going_backwards_is_ignored() {
    let mut h = H::new();
    h.c.allocate(Instant(10_000));
    let _ = h.next().unwrap();
    h.c.handle_timeout(Instant(5));
    assert!(h.next().is_none());
    assert_eq!(h.c.poll_timeout(), Instant(10_500));
}

#[test]
fn garbage_and_mutated_responses_never_panic() {
    let mut x: u64 = 0x1234_5678_9ABC_DEF1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let mut h = H::new();
        h.c.allocate(Instant(0));
        let r = h.next().unwrap();
        let templates = [
            challenge(&r, 401, "n"),
            challenge(&r, 438, "n"),
            alloc_ok(&r, 600),
            data_indication(peer(), b"data"),
            error(&r, 403),
        ];
        for t in &templates {
            for _ in 0..20 {
                let mut m = t.clone();
                let flips = 1 + (rnd() % 4) as usize;
                for _ in 0..flips {
                    let i = (rnd() as usize) % m.len();
                    m[i] = rnd() as u8;
                }
                let cut = if round % 3 == 0 {
                    (rnd() as usize) % (m.len() + 1)
                } else {
                    m.len()
                };
                let _ = h.c.handle_input(Instant(round), &m[..cut]);
                let _ = h.c.poll_transmit(&mut h.buf);
                let _ = h.c.poll_event();
                h.c.handle_timeout(Instant(round * 100));
            }
            // Random bytes with a STUN header.
            let mut g = [0u8; 96];
            for b in g.iter_mut() {
                *b = rnd() as u8;
            }
            g[0] &= 0x3F;
            g[2] = 0;
            g[3] = (rnd() % 76) as u8 & !3;
            g[4..8].copy_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
            g[8..20].copy_from_slice(&r.txid);
            let _ = h.c.handle_input(Instant(round), &g);
        }
    }
}

#[test]
fn the_largest_request_fits_max_control_len() {
    assert_eq!(MAX_CONTROL_LEN, 728);
    let user = "u".repeat(MAX_USERNAME_LEN);
    let pass = "p".repeat(MAX_PASSWORD_LEN);
    let mut c = TurnClient::new(server(), &user, &pass, 1).unwrap();
    let mut buf = [0u8; MAX_CONTROL_LEN];
    c.allocate(Instant(0));
    let n = c.poll_transmit(&mut buf).unwrap().unwrap();
    let txid: [u8; 12] = buf[8..20].try_into().unwrap();
    let realm = "r".repeat(MAX_REALM_LEN);
    let nonce = "n".repeat(MAX_NONCE_LEN);
    let mut resp = [0u8; 700];
    let mut w = MessageWriter::new(&mut resp, method::ALLOCATE, Class::Error, &txid).unwrap();
    w.attr(attr::ERROR_CODE, &error_code(401)).unwrap();
    w.attr(attr::REALM, realm.as_bytes()).unwrap();
    w.attr(attr::NONCE, nonce.as_bytes()).unwrap();
    let m = w.finish();
    assert!(n < MAX_CONTROL_LEN);
    c.handle_input(Instant(1), &resp[..m]).unwrap();
    let n = c.poll_transmit(&mut buf).unwrap().unwrap();
    let txid: [u8; 12] = buf[8..20].try_into().unwrap();
    let key = long_term_key(&user, &realm, &pass);
    assert!(Message::parse(&buf[..n]).unwrap().check_integrity(&key));
    let mut ok = [0u8; 128];
    let mut w = MessageWriter::new(&mut ok, method::ALLOCATE, Class::Success, &txid).unwrap();
    w.xor_addr(
        attr::XOR_RELAYED_ADDRESS,
        "[2001:db8::2]:5000".parse().unwrap(),
    )
    .unwrap();
    w.message_integrity(&key).unwrap();
    let m = w.finish();
    c.handle_input(Instant(2), &ok[..m]).unwrap();
    // An IPv6 permission: the longest request there is.
    c.create_permission(Instant(3), "2001:db8::9".parse().unwrap())
        .unwrap();
    let n = c.poll_transmit(&mut buf).unwrap().unwrap();
    assert_eq!(n, MAX_CONTROL_LEN);
}

#[test]
fn a_401_with_a_fresh_nonce_is_retried_boundedly() {
    // Accepted once the fresh nonce is used.
    let mut h = H::allocated();
    h.c.create_permission(Instant(1), peer().ip()).unwrap();
    let r = h.next().unwrap();
    h.input(2, &challenge(&r, 401, "fresh")).unwrap();
    let r2 = h.next().unwrap();
    assert_eq!(r2.nonce.as_deref(), Some("fresh"));
    h.input(3, &ok(&r2, None)).unwrap();
    assert_eq!(h.events(), [TurnEvent::PermissionCreated(peer().ip())]);
    // A server that answers every authenticated request with 401 and a new
    // nonce (wrong credentials) fails after MAX_NONCE_RETRIES retries.
    let mut h = H::new();
    h.c.allocate(Instant(0));
    let mut n = 0;
    while let Some(r) = h.next() {
        h.input(1, &challenge(&r, 401, &format!("nonce-{n}")))
            .unwrap();
        n += 1;
    }
    assert_eq!(n, 2 + usize::from(MAX_NONCE_RETRIES));
    assert_eq!(h.events(), [TurnEvent::Failed(TurnError::Unauthorized)]);
}

#[test]
fn footprint_is_small_and_fixed() {
    let n = core::mem::size_of::<TurnClient>();
    std::eprintln!("size_of::<TurnClient>() = {n}");
    assert!(n < 3 * 1024, "{n}");
}
