//! The daemon starts with defaults on loopback and answers health checks.
mod common;
use common::*;

#[test]
fn starts_and_answers_healthz() {
    let d = Daemon::start(&[]);
    let r = d.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert!(d.stun.is_some());
}
