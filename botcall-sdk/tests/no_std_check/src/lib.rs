//! Uses the core's main entry points so they are compiled and linked.
#![no_std]

use botcall_sdk::client::{Client, ClientConfig, Input, Output};
use botcall_sdk::media::{FramePacer, JitterBuffer};
use botcall_sdk::turn::{Incoming, TurnClient};
use botcall_sdk::{Instant, verify_human_attestation};

const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

/// Drives a client through connect/hello with a fake clock.
#[unsafe(no_mangle)]
pub extern "C" fn botcall_no_std_check(seed: u64) -> u64 {
    let mut client = Client::new(ClientConfig::default(), seed, Instant(0));
    let _ = client.handle_input(Instant(1), Input::Connected { token: "a.b.c", unix_secs: 0 });
    let mut n = 0u64;
    loop {
        match client.poll_output() {
            Output::Timeout(t) => {
                n += t.0;
                break;
            }
            Output::Send(s) => n += s.len() as u64,
            _ => n += 1,
        }
    }
    let jwks = core::hint::black_box(JWKS);
    n += verify_human_attestation("x.y.z", jwks, "bot", 0).is_ok() as u64;
    let _ = client.set_jwks(jwks);
    let mut p = FramePacer::new(Instant(0), 0);
    if let Some(s) = p.poll(Instant(40)) {
        n += s.media_time;
    }
    let mut j = JitterBuffer::new(3);
    j.push(1, 0, &[1, 2, 3]);
    if let Some(f) = j.pop() {
        n += f.data.len() as u64;
    }
    // The TURN client: allocate, wrap, unwrap (MD5/HMAC-SHA1 included).
    let server = core::net::SocketAddr::from(([192, 0, 2, 1], 3478));
    if let Ok(mut t) = TurnClient::new(server, "1:bot", "secret", seed) {
        t.allocate(Instant(0));
        let mut buf = [0u8; botcall_sdk::turn::MAX_CONTROL_LEN];
        if let Ok(Some(len)) = t.poll_transmit(&mut buf) {
            n += len as u64;
        }
        let input = core::hint::black_box(&buf[..20]);
        if let Ok(Incoming::Data { data, .. }) = t.handle_input(Instant(1), input) {
            n += data.len() as u64;
        }
        n += t.poll_timeout().0;
    }
    n += botcall_sdk::stun::long_term_key("u", "r", "p")[0] as u64;
    core::hint::black_box(n)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
