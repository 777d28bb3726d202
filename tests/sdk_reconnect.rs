//! A bot built on the SDK survives a daemon restart: the daemon is killed,
//! the port answers nothing useful for a while (a listener that counts the
//! bot's connection attempts and closes them: backoff, not a busy loop),
//! then the daemon comes back on the same port and state directory, and the
//! bot reconnects and registers again by itself — online and listed under
//! its name, with no help from the application.
mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use botcall_sdk::{BotConfig, register_with_discovery};
use common::*;
use futures_lite::future;

#[test]
fn bot_reconnects_and_reregisters_after_a_daemon_restart() {
    let d = Daemon::start(&[]);
    let addr = d.addr;
    let cfg = BotConfig::new(d.url(""), Keys::new().ec)
        .agent_id("ec-bot")
        .name("Echo")
        .listed(true)
        .seed(3);
    let bot = future::block_on(register_with_discovery(cfg)).expect("bot registers");
    let lookup = d.get("/lookup/ec-bot").json();
    assert_eq!(
        (
            lookup["online"].as_bool(),
            lookup["name"].as_str(),
            lookup["listed"].as_bool()
        ),
        (Some(true), Some("Echo"), Some(true)),
        "{lookup}"
    );
    assert_eq!(bot.status().sessions, 1);
    let attempts_before = bot.status().connect_attempts;

    // Kill the daemon (SIGKILL: no goodbye on the socket).
    let dir = d.stop();
    // Hold its port: count connection attempts, close each at once.
    let listener = TcpListener::bind(addr).expect("rebind the daemon's port");
    listener.set_nonblocking(true).unwrap();
    let outage = Duration::from_secs(4);
    let t_out = Instant::now();
    let mut accepted = 0;
    while t_out.elapsed() < outage {
        match listener.accept() {
            Ok((s, _)) => {
                accepted += 1;
                drop(s);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    drop(listener);
    let st = bot.status();
    assert!(!st.online, "{st:?}");
    // Backoff: 0.25–0.5 s, then 0.5–1, 1–2, 2–4 s → 2 to 4 attempts in 4 s
    // (a busy loop would make hundreds).
    let made = st.connect_attempts - attempts_before;
    eprintln!(
        "outage of {outage:?}: {accepted} connections accepted, {made} attempts, last error: {:?}",
        st.last_error
    );
    // At least one: it keeps trying; at most five: it backs off (a busy loop
    // would make hundreds). A loaded machine only makes fewer.
    assert!(
        (1..=5).contains(&accepted),
        "{accepted} connections in {outage:?}"
    );
    assert!((1..=5).contains(&made), "{made} attempts in {outage:?}");

    // The daemon comes back on the same port with the same state directory.
    let port = addr.to_string();
    let d = Daemon::start_in(dir, &["--listen", &port]);
    assert_eq!(d.addr, addr);
    d.eventually(
        "the bot to be online again",
        Duration::from_secs(20),
        || d.get("/lookup/ec-bot").json()["online"] == true,
    );
    let back = t_out.elapsed();
    // Re-registered over HTTP (name and listing survive a memory-store restart).
    let lookup = d.get("/lookup/ec-bot").json();
    assert_eq!(
        (lookup["name"].as_str(), lookup["listed"].as_bool()),
        (Some("Echo"), Some(true)),
        "{lookup}"
    );
    assert_eq!(
        d.metric(r#"botcall_http_requests_total{route="register",status="200"}"#),
        1.0
    );
    let agents = d.get("/agents?online=true").json();
    assert!(
        agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["agent_id"] == "ec-bot"),
        "{agents}"
    );
    let st = bot.status();
    assert!(st.online && st.sessions == 2, "{st:?}");
    eprintln!(
        "back online {back:?} after the kill; {} attempts in all",
        st.connect_attempts
    );
    future::block_on(bot.shutdown());
    d.eventually("the bot to go offline", Duration::from_secs(5), || {
        d.get("/lookup/ec-bot").json()["online"] == false
    });
}

/// A registration the daemon rate-limits comes back as a typed error that
/// carries the daemon's `Retry-After` (the reconnect loop waits at least that
/// long: `client::tests::a_retry_after_is_a_floor_for_one_wait_and_is_capped`).
#[test]
fn a_rate_limited_registration_reports_retry_after() {
    let d = Daemon::start(&["--rate-agent", "1", "--rate-agent-burst", "1"]);
    let cfg = || {
        BotConfig::new(d.url(""), Keys::new().ec)
            .agent_id("ec-bot")
            .seed(9)
    };
    let bot = future::block_on(register_with_discovery(cfg())).expect("first registration");
    future::block_on(bot.shutdown());
    match future::block_on(register_with_discovery(cfg())) {
        Err(botcall_sdk::BotError::Http {
            status: 429,
            code,
            retry_after: Some(s),
            ..
        }) => {
            assert_eq!(code, "rate_limited");
            assert!((1..=2).contains(&s), "Retry-After {s}");
        }
        other => panic!("expected 429 with Retry-After, got {:?}", other.err()),
    }
    assert_eq!(
        d.metric(r#"botcall_http_requests_total{route="register",status="429"}"#),
        1.0
    );
}
