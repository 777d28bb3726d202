//! The same attestation and JWKS bytes through the C ABI
//! (`botcall_verify_attestation`, called as C calls it) and through the Rust
//! API (`botcall_sdk::verify_human_attestation`) give the same verdict for
//! every case: good, tampered and Wycheproof-derived (tests/cases).
mod cases;

use std::ffi::CStr;

use botcall::*;

fn abi(c: &cases::Case) -> (BotcallStatus, Option<BotcallClaims>) {
    let mut out = std::mem::MaybeUninit::<BotcallClaims>::zeroed();
    // SAFETY: each pointer/length pair is a live slice; `out` is writable.
    let s = unsafe {
        botcall_verify_attestation(
            c.token.as_ptr(),
            c.token.len(),
            c.jwks.as_ptr(),
            c.jwks.len(),
            c.agent.as_ptr(),
            c.agent.len(),
            c.now,
            out.as_mut_ptr(),
        )
    };
    // SAFETY: written on BOTCALL_OK.
    (s, (s == BOTCALL_OK).then(|| unsafe { out.assume_init() }))
}

fn text(a: &[core::ffi::c_char]) -> &str {
    // SAFETY: the ABI NUL-terminates every field within its array.
    unsafe { CStr::from_ptr(a.as_ptr()) }.to_str().unwrap()
}

#[test]
fn c_abi_and_rust_api_agree_on_every_case() {
    let all = cases::all();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for c in &all {
        let rust = cases::rust_verdict(c);
        let (s, claims) = abi(c);
        let name = botcall::status_name(s).to_str().unwrap();
        assert_eq!(name, rust, "{}: C ABI {name}, Rust API {rust}", c.name);
        if let Some(want) = c.want {
            assert_eq!(rust, want, "{}", c.name);
        }
        if c.name.starts_with("wycheproof") {
            assert_ne!(rust, "ok", "{} verified", c.name);
        }
        if let Some(cl) = claims {
            let a =
                botcall_sdk::verify_human_attestation(&c.token, &c.jwks, &c.agent, c.now).unwrap();
            assert_eq!(text(&cl.agent_id), a.agent_id.as_str());
            assert_eq!(text(&cl.session), a.caller.as_str());
            assert_eq!(text(&cl.call_id), a.call_id.as_str());
            assert_eq!(text(&cl.hv), a.hv.as_str());
            assert_eq!(text(&cl.fingerprint), a.fp.as_str());
            assert_eq!(text(&cl.issuer), a.iss.as_str());
            assert_eq!((cl.iat, cl.exp), (a.iat, a.exp));
        }
        *counts.entry(rust).or_default() += 1;
    }
    eprintln!("{} cases: {counts:?}", all.len());
    assert!(counts["ok"] >= 2 && counts["forged"] > 200, "{counts:?}");
}

#[test]
fn incoming_checks_agree_too() {
    let j = cases::jwks(7);
    let good = cases::tampered()[0].token.clone();
    let offer = |fp: &str| {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:{fp}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        )
    };
    let other_fp = cases::FP.replace("0A:1B", "FF:1B");
    for (call, sdp, policy, want) in [
        ("c-1", offer(cases::FP), 0u8, "ok"),
        ("c-2", offer(cases::FP), 0, "wrong_call"),
        ("c-1", offer(&other_fp), 0, "wrong_fingerprint"),
        ("c-1", "v=0\r\n".to_string(), 0, "offer_without_fingerprint"),
        ("c-1", offer(cases::FP), 1, "method_not_accepted"),
    ] {
        // SAFETY: live slices; a null `out` is allowed.
        let s = unsafe {
            botcall_verify_incoming(
                good.as_ptr(),
                good.len(),
                j.as_ptr(),
                j.len(),
                cases::AGENT.as_ptr(),
                cases::AGENT.len(),
                call.as_ptr(),
                call.len(),
                sdp.as_ptr(),
                sdp.len(),
                std::ptr::null(),
                0,
                policy,
                cases::NOW,
                std::ptr::null_mut(),
            )
        };
        let expect = botcall_sdk::Expect {
            agent_id: cases::AGENT,
            call_id: call,
            sdp_offer: &sdp,
            policy: if policy == 0 {
                botcall_sdk::HvPolicy::ANY
            } else {
                botcall_sdk::HvPolicy(policy)
            },
            issuer: None,
        };
        let rust = match botcall_sdk::verify_incoming(&good, &j, &expect, cases::NOW) {
            Ok(_) => "ok",
            Err(e) => botcall::status_name(attestation_status(e))
                .to_str()
                .unwrap(),
        };
        assert_eq!(botcall::status_name(s).to_str().unwrap(), rust);
        assert_eq!(rust, want);
    }
}
