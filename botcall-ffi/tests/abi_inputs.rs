//! Bad input over the C ABI gets a status code and a message, never a crash:
//! null pointers, text that is not UTF-8, small buffers, malformed and
//! random messages, bad options. No daemon needed (the key and argument
//! checks come before any network I/O).
use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};

use botcall::*;

fn last_error() -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: a live 256-byte buffer.
    let n = unsafe { botcall_last_error(buf.as_mut_ptr(), buf.len()) };
    // SAFETY: NUL-terminated by botcall_last_error.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert!(n >= s.len(), "the full length is returned");
    s
}

#[test]
fn version_and_names() {
    assert_eq!(botcall_version(), BOTCALL_ABI_VERSION);
    // SAFETY: static NUL-terminated names.
    let name = |s| {
        unsafe { CStr::from_ptr(botcall_status_name(s)) }
            .to_str()
            .unwrap()
    };
    assert_eq!(name(BOTCALL_OK), "ok");
    assert_eq!(name(BOTCALL_ATT_FORGED), "forged");
    assert_eq!(name(12345), "internal");
}

#[test]
fn last_error_truncates_and_reports_the_full_length() {
    // SAFETY: a null pointer with length 5 is the bad input under test.
    let s = unsafe { botcall_validate_id(null(), 5) };
    assert_eq!(s, BOTCALL_ERR_INVALID_ARGUMENT);
    let full = last_error();
    assert!(full.contains("null"), "{full}");
    let mut small = [0x55 as c_char; 5];
    // SAFETY: a live 5-byte buffer.
    let n = unsafe { botcall_last_error(small.as_mut_ptr(), small.len()) };
    assert_eq!(n, full.len());
    assert_eq!(small[4], 0, "NUL-terminated within cap");
    // SAFETY: asking for the length only.
    assert_eq!(unsafe { botcall_last_error(null_mut(), 0) }, full.len());
}

#[test]
fn connect_refuses_bad_arguments_before_any_io() {
    let url = CString::new("http://127.0.0.1:9").unwrap();
    let mut bot = null_mut();
    let connect =
        |url: *const c_char, file: *const c_char, jwk: &[u8], opts: *const BotcallOptions, out| {
            // SAFETY: every pointer is null, a live C string, or a live slice.
            unsafe { botcall_bot_connect(url, file, jwk.as_ptr(), jwk.len(), null(), opts, out) }
        };
    assert_eq!(
        connect(url.as_ptr(), null(), b"{}", null(), null_mut()),
        BOTCALL_ERR_INVALID_ARGUMENT
    );
    assert_eq!(
        connect(null(), null(), b"{}", null(), &mut bot),
        BOTCALL_ERR_INVALID_ARGUMENT
    );
    // Neither or both keys.
    assert_eq!(
        connect(url.as_ptr(), null(), b"", null(), &mut bot),
        BOTCALL_ERR_INVALID_ARGUMENT
    );
    let file = CString::new("/nonexistent/bot.jwk").unwrap();
    assert_eq!(
        connect(url.as_ptr(), file.as_ptr(), b"{}", null(), &mut bot),
        BOTCALL_ERR_INVALID_ARGUMENT
    );
    // Unusable keys.
    assert_eq!(
        connect(url.as_ptr(), file.as_ptr(), b"", null(), &mut bot),
        BOTCALL_ERR_KEY
    );
    assert!(last_error().contains("/nonexistent/bot.jwk"));
    assert_eq!(
        connect(url.as_ptr(), null(), b"\xff\xfe", null(), &mut bot),
        BOTCALL_ERR_KEY
    );
    assert_eq!(
        connect(url.as_ptr(), null(), b"{\"kty\":\"EC\"}", null(), &mut bot),
        BOTCALL_ERR_KEY
    );
    assert!(bot.is_null());
    // Options from another header, and bad values.
    let mut d = [7u8; 32];
    d[0] = 1;
    let sk = botcall_core::jwt::SigningKey::Es256(
        botcall_core::jwt::EcSigningKey::from_slice(&d).unwrap(),
    );
    let mut key = Vec::new();
    sk.write_jwk(&mut botcall_core::json::Writer::new(&mut key), None)
        .unwrap();
    let key = &key[..];
    let mut o = std::mem::MaybeUninit::<BotcallOptions>::uninit();
    // SAFETY: writable.
    unsafe { botcall_options_init(o.as_mut_ptr()) };
    // SAFETY: initialized above.
    let o = unsafe { o.assume_init() };
    let mut wrong = o;
    wrong.struct_size = 8;
    let mut pol = o;
    pol.policy = 8;
    let mut calls = o;
    calls.max_calls = 1000;
    for (opts, want) in [
        (wrong, BOTCALL_ERR_INVALID_ARGUMENT),
        (pol, BOTCALL_ERR_CONFIG),
        (calls, BOTCALL_ERR_CONFIG),
    ] {
        let s = connect(url.as_ptr(), null(), key, &opts, &mut bot);
        assert_eq!(s, want, "{}", last_error());
    }
}

#[test]
fn null_handles_and_cancel_tokens() {
    let mut call = null_mut();
    // SAFETY: null handles are the bad input under test.
    unsafe {
        assert_eq!(
            botcall_bot_next_call(null(), 0, null(), &mut call),
            BOTCALL_ERR_INVALID_ARGUMENT
        );
        assert_eq!(botcall_call_answer(null()), BOTCALL_ERR_INVALID_ARGUMENT);
        assert_eq!(
            botcall_call_reject(null(), null()),
            BOTCALL_ERR_INVALID_ARGUMENT
        );
        assert_eq!(botcall_call_hangup(null()), BOTCALL_ERR_INVALID_ARGUMENT);
        let mut len = 0;
        assert_eq!(
            botcall_call_recv_opus(null(), 0, null(), null_mut(), 0, &mut len),
            BOTCALL_ERR_INVALID_ARGUMENT
        );
        botcall_call_free(null_mut());
        botcall_bot_free(null_mut());
        botcall_cancel_free(null_mut());
        botcall_cancel_trigger(null());
        let c = botcall_cancel_new();
        assert!(!c.is_null());
        botcall_cancel_trigger(c);
        botcall_cancel_trigger(c);
        botcall_cancel_free(c);
    }
}

#[test]
fn messages_decode_strictly_and_encode_into_caller_buffers() {
    let decode = |json: &[u8], scratch: &mut [u8]| {
        let mut m = std::mem::MaybeUninit::<BotcallMsg>::uninit();
        // SAFETY: live slices, writable out.
        let s = unsafe {
            botcall_msg_decode(
                json.as_ptr(),
                json.len(),
                scratch.as_mut_ptr(),
                scratch.len(),
                m.as_mut_ptr(),
            )
        };
        // SAFETY: written on BOTCALL_OK.
        (s, (s == BOTCALL_OK).then(|| unsafe { m.assume_init() }))
    };
    let mut scratch = [0u8; 512];
    let hangup = br#"{"type":"hangup","call_id":"c-1","reason":"caf\u00e9 \"done\""}"#;
    let (s, m) = decode(hangup, &mut scratch);
    assert_eq!(s, BOTCALL_OK);
    let m = m.unwrap();
    assert_eq!(m.kind, BOTCALL_MSG_HANGUP);
    // SAFETY: points into `scratch`, still alive.
    let reason = unsafe { std::slice::from_raw_parts(m.text.ptr, m.text.len) };
    assert_eq!(reason, "café \"done\"".as_bytes());
    // Too small a scratch buffer, and bad messages.
    assert_eq!(
        decode(hangup, &mut [0u8; 4]).0,
        BOTCALL_ERR_BUFFER_TOO_SMALL
    );
    for bad in [
        &b"{"[..],
        b"",
        b"\xff",
        br#"{"type":"nope"}"#,
        br#"{"type":"hangup","call_id":"c 1","reason":"x"}"#,
        br#"{"type":"hangup","call_id":"c-1","call_id":"c-2","reason":"x"}"#,
    ] {
        let s = decode(bad, &mut scratch).0;
        assert!(
            s == BOTCALL_ERR_MALFORMED || s == BOTCALL_ERR_INVALID_ARGUMENT,
            "{bad:?}: {s}"
        );
    }
    // Random bytes never crash (bounded: 20,000 inputs, a fixed seed).
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        let mut buf = Vec::with_capacity(64);
        for _ in 0..(x % 64) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const ALPHABET: &[u8] = b"{}[]\":,typecall_id0123456789 \\u";
            buf.push(ALPHABET[(x % ALPHABET.len() as u64) as usize]);
        }
        let _ = decode(&buf, &mut scratch);
    }
    // Encoding: the size needed is reported for a small buffer.
    let mut out = [0u8; 16];
    let mut len = 0;
    // SAFETY: live slices, writable out.
    let s = unsafe {
        botcall_msg_encode_end(
            false,
            b"c-1".as_ptr(),
            3,
            b"busy".as_ptr(),
            4,
            out.as_mut_ptr(),
            out.len(),
            &mut len,
        )
    };
    assert_eq!(s, BOTCALL_ERR_BUFFER_TOO_SMALL);
    let mut big = vec![0u8; len];
    // SAFETY: as above.
    let s = unsafe {
        botcall_msg_encode_end(
            false,
            b"c-1".as_ptr(),
            3,
            b"busy".as_ptr(),
            4,
            big.as_mut_ptr(),
            big.len(),
            &mut len,
        )
    };
    assert_eq!(s, BOTCALL_OK);
    assert_eq!(
        &big[..len],
        br#"{"type":"reject","call_id":"c-1","reason":"busy"}"#
    );
    // An answer with its answer_sig, and back.
    let mut ans = vec![0u8; 256];
    // SAFETY: as above.
    let s = unsafe {
        botcall_msg_encode_answer(
            b"c-1".as_ptr(),
            3,
            b"v=0\r\n".as_ptr(),
            5,
            b"h.p.s".as_ptr(),
            5,
            ans.as_mut_ptr(),
            ans.len(),
            &mut len,
        )
    };
    assert_eq!(s, BOTCALL_OK);
    let (s, m) = decode(&ans[..len], &mut scratch);
    assert_eq!(s, BOTCALL_OK);
    let m = m.unwrap();
    assert_eq!(m.kind, BOTCALL_MSG_ANSWER);
    // SAFETY: points into `scratch`, still alive.
    assert_eq!(
        unsafe { std::slice::from_raw_parts(m.text.ptr, m.text.len) },
        b"h.p.s"
    );
    let long = [b'x'; 65];
    // SAFETY: as above.
    let s = unsafe {
        botcall_msg_encode_end(
            true,
            b"c-1".as_ptr(),
            3,
            long.as_ptr(),
            long.len(),
            big.as_mut_ptr(),
            big.len(),
            &mut len,
        )
    };
    assert_eq!(s, BOTCALL_ERR_MALFORMED, "a reason over 64 bytes");
}
