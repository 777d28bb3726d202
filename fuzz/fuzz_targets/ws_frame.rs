//! Fuzzes the daemon's sans-IO WebSocket framing (`src/ws/frame.rs` over
//! botcall-core's `ws` codec, through the daemon's library).
//!
//! - `parse` never panics on any bytes and any payload limit; a parsed frame
//!   lies within the input, its payload within the limit, control frames are
//!   final and ≤ 125 bytes; every strict prefix is "incomplete" (so a frame
//!   split across reads parses the same); re-masking the payload in place
//!   gives back the input bytes.
//! - A client frame built from fuzzer bytes (any opcode/fin/mask/length
//!   encoding) parses back to its payload.
//! - `check_close` never panics; `close_frame` output is a valid final
//!   close frame whose payload `check_close` accepts with the same code.
//!
//! Run: `cargo +nightly fuzz run ws_frame -- -max_total_time=600`
#![no_main]

use libfuzzer_sys::fuzz_target;

use botcalld::fuzzing::frame::{self, Op};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let max = usize::from(ctl) * 2;
    parse_any(input, max);
    build_and_parse(ctl, input);
    let _ = frame::check_close(input);
    if input.len() >= 2 {
        let code = u16::from_be_bytes([input[0], input[1]]);
        let reason = String::from_utf8_lossy(&input[2..]);
        let f = frame::close_frame(code, &reason);
        assert_eq!(f[0], 0x88);
        assert!(f.len() <= 2 + 125);
        assert_eq!(usize::from(f[1]), f.len() - 2);
        let payload = &f[2..];
        assert!(
            std::str::from_utf8(&payload[2..]).is_ok(),
            "reason cut inside a char"
        );
        let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
        assert_eq!(frame::check_close(payload).is_ok(), valid);
        if valid {
            assert_eq!(frame::check_close(payload), Ok(code));
        }
    }
});

fn parse_any(input: &[u8], max: usize) {
    let mut buf = input.to_vec();
    let (fin, op, payload, used) = match frame::parse(&mut buf, max) {
        Ok(None) | Err(_) => return,
        Ok(Some((f, used))) => (f.fin, f.op, f.payload.to_vec(), used),
    };
    assert!(used <= input.len());
    assert!(payload.len() <= max);
    assert!(used >= payload.len() + 6);
    if op.is_control() {
        assert!(fin && payload.len() <= 125);
    }
    let at = used - payload.len();
    let mask = &input[at - 4..at];
    let remasked: Vec<u8> = payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i & 3])
        .collect();
    assert_eq!(&remasked[..], &input[at..used]);
    // Only the payload changed in the buffer.
    assert_eq!(&buf[..at], &input[..at]);
    assert_eq!(&buf[used..], &input[used..]);
    for cut in [0, 1, used / 2, used - 1] {
        let cut = cut.min(used - 1);
        let mut part = input[..cut].to_vec();
        assert_eq!(frame::parse(&mut part, max), Ok(None), "prefix {cut}");
    }
}

fn build_and_parse(ctl: u8, payload: &[u8]) {
    let ops = [
        Op::Continuation,
        Op::Text,
        Op::Binary,
        Op::Close,
        Op::Ping,
        Op::Pong,
    ];
    let codes = [0u8, 1, 2, 8, 9, 10];
    let k = usize::from(ctl) % ops.len();
    let fin = ctl & 0x80 != 0;
    let mask = [ctl, ctl.rotate_left(3), !ctl, ctl ^ 0x5a];
    let n = payload.len();
    let mut v = vec![u8::from(fin) << 7 | codes[k]];
    // Any valid length encoding, including non-minimal ones.
    match ctl & 0x60 {
        0x00 if n < 126 => v.push(0x80 | n as u8),
        0x20 | 0x00 if n <= 0xffff => {
            v.push(0x80 | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            v.push(0x80 | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    v.extend_from_slice(&mask);
    v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    let total = v.len();
    v.extend_from_slice(b"\x81\x80trailing");
    let max = 4096;
    match frame::parse(&mut v, max) {
        Ok(Some((f, used))) => {
            assert!(!ops[k].is_control() || (fin && n <= 125));
            assert_eq!(used, total);
            assert_eq!((f.fin, f.op, f.payload), (fin, ops[k], payload));
        }
        Err(e) => assert!(
            ops[k].is_control() && (!fin || n > 125) || n > max,
            "refused a valid frame: {e:?}"
        ),
        Ok(None) => panic!("complete frame reported incomplete"),
    }
    // Server frames: encode gives the unmasked twin.
    let mut out = Vec::new();
    frame::encode(ops[k], payload, &mut out);
    assert_eq!(out[0], 0x80 | codes[k]);
    assert!(out.ends_with(payload));
}
