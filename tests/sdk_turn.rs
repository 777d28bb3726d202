//! TURN through a real coturn: `botcalld` hands out coturn REST credentials
//! (`--turn-urls`, `--turn-secret`), an SDK bot in relay-only mode
//! allocates on coturn, and a str0m caller (which knows nothing of TURN)
//! talks to the bot's relayed candidate. Opus flows both ways, and every
//! datagram between them went through the relay: the bot's only candidate
//! is `typ relay` at coturn's relay address, all the caller's datagrams
//! came from coturn's relay ports, the bot counted relayed datagrams and
//! no direct ones, and coturn's log shows the allocation and permission.
//!
//! Needs `turnserver` (Debian package `coturn`, installed by tests/setup);
//! without it this test fails.
mod common;
mod sdk_caller;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use botcall_sdk::codec::rms;
use botcall_sdk::{BotConfig, BotError, CallStats, IcePolicy};
use common::*;
use sdk_caller::{BotAudio, Caller, Heard, assert_tones_both_ways, bot_talk, spawn_sdk_bot};

const SECRET: &str = "turn-test-secret-0123456789";
/// coturn may live this long at most, even if this process is killed.
const COTURN_MAX_SECS: &str = "180";

/// A `turnserver` (coturn) on a free loopback UDP port with the REST-API
/// shared secret; stopped by PID on drop.
struct Coturn {
    child: Option<Child>,
    port: u16,
    relay_ports: (u16, u16),
    log: Arc<Mutex<String>>,
    dir: TempDir,
}

/// A UDP port nobody uses right now.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Coturn {
    fn start() -> Coturn {
        let dir = TempDir::new("coturn");
        let port = free_udp_port();
        // A relay port range of our own: 40 ports, spread by PID and by
        // instance (tests run in parallel).
        static N: AtomicU32 = AtomicU32::new(0);
        let slot = std::process::id()
            .wrapping_mul(4)
            .wrapping_add(N.fetch_add(1, Ordering::Relaxed))
            % 500;
        let min = 40_000 + slot as u16 * 40;
        let max = min + 39;
        let bin = std::env::var("BOTCALL_TURNSERVER").unwrap_or_else(|_| "turnserver".into());
        // `timeout` bounds its life even if this test process dies; it
        // passes our SIGTERM on to turnserver.
        let mut child = Command::new("timeout")
            .args(["--kill-after=5", COTURN_MAX_SECS, &bin])
            .args([
                "-n", // no config file
                &format!("--listening-port={port}"),
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                &format!("--min-port={min}"),
                &format!("--max-port={max}"),
                "--use-auth-secret",
                &format!("--static-auth-secret={SECRET}"),
                "--realm=botcall",
                "--allow-loopback-peers",
                "--no-tls",
                "--no-dtls",
                "--no-tcp",
                "--no-cli",
                "--fingerprint",
                "--verbose",
                "--simple-log",
                "--log-file=stdout",
            ])
            .arg(format!(
                "--pidfile={}",
                dir.path().join("turnserver.pid").display()
            ))
            .arg(format!("--userdb={}", dir.path().join("turndb").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start timeout/{bin}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = log.clone();
            let ready = ready_tx.clone();
            let want = format!("UDP listener opened on: 127.0.0.1:{port}");
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if line.contains(&want) {
                        let _ = ready.send(());
                    }
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let mut c = Coturn {
            child: None,
            port,
            relay_ports: (min, max),
            log,
            dir,
        };
        let t0 = Instant::now();
        loop {
            if ready_rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                break;
            }
            if let Some(st) = child.try_wait().unwrap() {
                panic!(
                    "turnserver is missing or exited at start ({st}); tests/setup installs the \
                     Debian package coturn\n{}",
                    c.log()
                );
            }
            if t0.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                panic!("turnserver did not open its UDP listener:\n{}", c.log());
            }
        }
        c.child = Some(child);
        c
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn is_relay_addr(&self, a: &SocketAddr) -> bool {
        a.ip().is_loopback() && (self.relay_ports.0..=self.relay_ports.1).contains(&a.port())
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // turnserver's own PID (from its pidfile), then `timeout`'s.
        let pidfile = self.dir.path().join("turnserver.pid");
        let pids: Vec<String> = std::fs::read_to_string(&pidfile)
            .ok()
            .map(|p| p.trim().to_string())
            .into_iter()
            .chain([child.id().to_string()])
            .filter(|p| !p.is_empty())
            .collect();
        for pid in &pids {
            let _ = Command::new("kill").args(["-TERM", pid]).status();
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in &pids {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What the bot side saw.
#[derive(Debug)]
struct BotSide {
    audio: BotAudio,
    stats: CallStats,
}

/// A bot that accepts one call, sends a 660 Hz tone at 0.3 and decodes
/// what it hears until the caller hangs up.
fn spawn_bot(d: &Daemon, policy: IcePolicy, heard: Heard) -> std::thread::JoinHandle<BotSide> {
    let cfg = BotConfig::new(d.url(""), Keys::new().ec)
        .agent_id("ec-bot")
        .ice_policy(policy)
        .seed(11);
    spawn_sdk_bot(cfg, |bot| async move {
        let call = bot.accept_call().await.expect("a verified call");
        let side = BotSide {
            audio: bot_talk(&call, None, &heard).await,
            stats: call.stats(),
        };
        drop(call);
        bot.shutdown().await;
        side
    })
}

#[test]
fn relay_only_bot_talks_through_coturn() {
    let turn = Coturn::start();
    // A TCP TURN URL too: the SDK skips it (UDP only) and uses the UDP one.
    let urls = format!(
        "turn:127.0.0.1:{p}?transport=udp,turn:127.0.0.1:{p}?transport=tcp",
        p = turn.port
    );
    let d = Daemon::start(&["--turn-urls", &urls, "--turn-secret", SECRET]);
    let heard = Heard::default();
    let bot = spawn_bot(&d, IcePolicy::Relay, heard.clone());

    let mut c = Caller::new(&d);
    c.call("ec-bot");
    // 3 s of audio (150 frames) each way through the relay, however long it takes here.
    c.run(sdk_caller::MEDIA_LIMIT, |c| {
        c.rx_frames >= 150 && heard.load(Ordering::Relaxed) >= 150
    });
    assert!(
        c.rx_frames >= 150 && heard.load(Ordering::Relaxed) >= 150,
        "no audio through the relay: caller got {} frames, bot {}\n--- coturn ---\n{}\n--- daemon ---\n{}",
        c.rx_frames,
        heard.load(Ordering::Relaxed),
        turn.log(),
        d.log()
    );
    c.hang_up("bye");
    let side = bot.join().expect("bot thread");
    let caller_rms = rms(c.pcm.get(9600..).unwrap_or(&[]));
    let coturn_log = turn.log();
    for l in coturn_log.lines().filter(|l| {
        l.contains("processed, success") || l.contains("usage:") || l.contains("closed")
    }) {
        eprintln!("coturn: {l}");
    }
    eprintln!(
        "bot: rx_frames={} rx_rms={:.3} tx_frames={} {:?}\ncaller: rx_frames={} rx_rms={caller_rms:.3} sent={} bot candidates={:?} datagram sources={:?}",
        side.audio.rx_frames,
        side.audio.rx_rms,
        side.audio.tx_frames,
        side.stats,
        c.rx_frames,
        c.sent,
        c.bot_candidate_lines,
        c.rx_sources,
    );

    assert_tones_both_ways(&side.audio, &c, 120);

    // The relay was used, and nothing else.
    // 1. The bot's relayed address is one of coturn's relay ports.
    let relay = side.stats.relay_addr.expect("the bot allocated on coturn");
    assert!(turn.is_relay_addr(&relay), "relayed address {relay}");
    // 2. The bot offered that and only that: one `typ relay` candidate.
    assert_eq!(
        c.bot_candidate_lines.len(),
        1,
        "{:?}",
        c.bot_candidate_lines
    );
    let cand = &c.bot_candidate_lines[0];
    assert!(cand.contains(" typ relay"), "{cand}");
    assert!(
        cand.contains(&format!(" {} {} typ relay", relay.ip(), relay.port())),
        "{cand} is not {relay}"
    );
    assert!(
        c.end_of_candidates,
        "end-of-candidates after the allocation"
    );
    // 3. Every datagram the caller got came from coturn's relay ports.
    assert!(!c.rx_sources.is_empty());
    assert!(
        c.rx_sources.iter().all(|a| turn.is_relay_addr(a)),
        "datagrams from {:?}, relay ports {:?}",
        c.rx_sources,
        turn.relay_ports
    );
    // 4. The bot's media went through TURN indications only.
    assert!(side.stats.relay_rx >= 120, "{:?}", side.stats);
    assert!(side.stats.relay_tx >= 120, "{:?}", side.stats);
    assert_eq!(
        (side.stats.direct_rx, side.stats.direct_tx),
        (0, 0),
        "{:?}",
        side.stats
    );
    // 5. coturn authenticated the daemon's REST credentials for this bot,
    //    allocated, and installed the caller's permission.
    for want in [
        "ALLOCATE processed, success",
        "CREATE_PERMISSION processed, success",
        ":ec-bot>",
    ] {
        assert!(
            coturn_log.contains(want),
            "coturn log lacks {want:?}:\n{coturn_log}"
        );
    }
}

#[test]
fn default_policy_adds_a_relay_candidate_beside_the_host_one() {
    let turn = Coturn::start();
    let urls = format!("turn:127.0.0.1:{}", turn.port);
    let d = Daemon::start(&["--turn-urls", &urls, "--turn-secret", SECRET]);
    let heard = Heard::default();
    let bot = spawn_bot(&d, IcePolicy::All, heard.clone());
    let mut c = Caller::new(&d);
    c.call("ec-bot");
    // Until media flows both ways and gathering is over (the relayed
    // candidate trickled, then end-of-candidates).
    c.run(sdk_caller::MEDIA_LIMIT, |c| {
        c.end_of_candidates && c.rx_frames > 0 && heard.load(Ordering::Relaxed) > 0
    });
    assert!(
        c.connected_at.is_some(),
        "media never connected\n{}",
        d.log()
    );
    c.hang_up("bye");
    let side = bot.join().expect("bot thread");
    eprintln!("bot {:?}; trickled {:?}", side.stats, c.bot_candidate_lines);
    assert!(c.end_of_candidates);
    let relay = side.stats.relay_addr.expect("allocated");
    assert!(turn.is_relay_addr(&relay), "{relay}");
    assert!(
        c.bot_candidate_lines.iter().any(|l| l.contains(&format!(
            " {} {} typ relay",
            relay.ip(),
            relay.port()
        ))),
        "{:?}",
        c.bot_candidate_lines
    );
    assert!(side.audio.rx_frames > 0 && c.rx_frames > 0);
}

#[test]
fn relay_only_with_refused_turn_credentials_ends_the_call_quickly() {
    let turn = Coturn::start();
    let urls = format!("turn:127.0.0.1:{}", turn.port);
    // The daemon signs the REST credentials with another secret than
    // coturn's: coturn answers the authenticated Allocate with 401.
    let d = Daemon::start(&["--turn-urls", &urls, "--turn-secret", "not-the-secret"]);
    let cfg = BotConfig::new(d.url(""), Keys::new().ec)
        .agent_id("ec-bot")
        .ice_policy(IcePolicy::Relay)
        .seed(13);
    let bot = spawn_sdk_bot(cfg, |bot| async move {
        let call = bot
            .accept_call()
            .await
            .expect("answered: a relay is configured");
        let t0 = Instant::now();
        let end = call.ended().await;
        let took = t0.elapsed();
        let stats = call.stats();
        drop(call);
        bot.shutdown().await;
        (end, took, stats)
    });
    let mut c = Caller::new(&d);
    c.call("ec-bot");
    let (end, took, stats) = bot.join().unwrap();
    eprintln!("bot: {end:?} after {took:?}, {stats:?}");
    assert!(
        matches!(&end, botcall_sdk::EndReason::Error(m) if m.contains("credentials")),
        "{end:?}"
    );
    // Not the 20 s media timeout (that would end it as `MediaTimeout`, and
    // only after 20 s): the 401 ends it with the credentials error.
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(stats.relay_addr, None);
    // The caller is told.
    let t0 = Instant::now();
    loop {
        let m = c.recv_msg(Duration::from_secs(60));
        if m["type"] == "hangup" {
            assert_eq!(m["reason"], "error", "{m}");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "caller got {m}");
    }
    assert!(
        turn.log().contains("401"),
        "coturn refused the credentials:\n{}",
        turn.log()
    );
}

#[test]
fn relay_only_without_a_turn_server_refuses_the_call() {
    // No --turn-urls: only the daemon's STUN server is handed out.
    let d = Daemon::start(&[]);
    let cfg = BotConfig::new(d.url(""), Keys::new().ec)
        .agent_id("ec-bot")
        .ice_policy(IcePolicy::Relay)
        .seed(12);
    let bot = spawn_sdk_bot(cfg, |bot| async move {
        let r = bot.accept_call().await.map(|_| ());
        bot.shutdown().await;
        r
    });
    let mut c = Caller::new(&d);
    c.call("ec-bot");
    let err = bot.join().unwrap().expect_err("no call without a relay");
    assert!(
        matches!(&err, BotError::Media(m) if m.contains("relay-only")),
        "{err:?}"
    );
    // The caller is told (the bot rejected the call).
    let t0 = Instant::now();
    loop {
        let m = c.recv_msg(Duration::from_secs(60));
        if m["type"] == "hangup" || m["type"] == "reject" || m["type"] == "error" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "caller got {m}");
    }
}

#[test]
fn each_call_brings_fresh_turn_credentials() {
    let turn = Coturn::start();
    let urls = format!("turn:127.0.0.1:{}?transport=udp", turn.port);
    // Credentials live 6 s: the ones in `welcome` are stale by the time of
    // the call, 8 s later; the call's own are fresh for 6 s, ample time for
    // the bot to allocate even on a loaded machine.
    let d = Daemon::start(&[
        "--turn-urls",
        &urls,
        "--turn-secret",
        SECRET,
        "--turn-ttl",
        "6",
    ]);
    let heard = Heard::default();
    let bot = spawn_bot(&d, IcePolicy::Relay, heard.clone());
    std::thread::sleep(Duration::from_secs(8));
    let mut c = Caller::new(&d);
    c.call("ec-bot");
    c.run(sdk_caller::MEDIA_LIMIT, |c| {
        c.rx_frames > 0 && heard.load(Ordering::Relaxed) > 0
    });
    assert!(
        c.rx_frames > 0 && heard.load(Ordering::Relaxed) > 0,
        "relay-only call failed with stale credentials\n--- coturn ---\n{}",
        turn.log()
    );
    c.hang_up("bye");
    let side = bot.join().expect("bot thread");
    assert!(
        side.stats.relay_rx > 0 && side.stats.relay_tx > 0,
        "{:?}",
        side.stats
    );
    assert!(
        turn.log().contains("ALLOCATE processed, success"),
        "{}",
        turn.log()
    );
}
