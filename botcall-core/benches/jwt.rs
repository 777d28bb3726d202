//! JWT hot paths: what one daemon core does per registration / per call.
//!
//! `cargo bench -p botcall-core --bench jwt -- --warm-up-time 1 --measurement-time 5`
//! Throughput is one token per iteration, so criterion's `elem/s` is ops/s on one core.

use std::hint::black_box;

use botcall_core::answer_sig;
use botcall_core::jwt::{self, HeaderOpts, Scratch, SigningKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

// RFC 7515 A.1 and A.3 keys.
const HS_JWK: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const ES_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const NOW: u64 = 1_700_000_000;
const CLAIMS: &str = r#"{"sub":"weather-bot.eu-1","aud":"botcalld","iat":1700000000,"exp":1700000300,"jti":"3f9c1a7e"}"#;

fn token(sk: &SigningKey) -> String {
    let mut out = [0u8; 1024];
    let opts = HeaderOpts {
        kid: Some("fleet-1"),
        ..Default::default()
    };
    jwt::sign_claims(sk, opts, CLAIMS, &mut out)
        .unwrap()
        .to_owned()
}

fn benches(c: &mut Criterion) {
    let hs = SigningKey::from_jwk(HS_JWK).unwrap();
    let es = SigningKey::from_jwk(ES_JWK).unwrap();
    let (hs_key, es_key) = (hs.verify_key(), es.verify_key());
    let (hs_token, es_token) = (token(&hs), token(&es));

    let mut g = c.benchmark_group("jwt");
    g.throughput(Throughput::Elements(1));
    g.bench_function("hs256_verify", |b| {
        b.iter(|| {
            let mut scratch = Scratch::new();
            jwt::verify(black_box(&hs_token), &hs_key, &mut scratch)
                .map(|v| v.payload.len())
                .unwrap()
        })
    });
    g.bench_function("es256_verify", |b| {
        b.iter(|| {
            let mut scratch = Scratch::new();
            jwt::verify(black_box(&es_token), &es_key, &mut scratch)
                .map(|v| v.payload.len())
                .unwrap()
        })
    });
    g.bench_function("hs256_sign", |b| {
        let mut out = [0u8; 1024];
        b.iter(|| {
            jwt::sign_claims(&hs, HeaderOpts::default(), black_box(CLAIMS), &mut out)
                .unwrap()
                .len()
        })
    });
    g.bench_function("es256_sign", |b| {
        let mut out = [0u8; 1024];
        b.iter(|| {
            jwt::sign_claims(&es, HeaderOpts::default(), black_box(CLAIMS), &mut out)
                .unwrap()
                .len()
        })
    });
    // The two ES256 backends side by side (`--features ring`: es256_* above
    // run ring; these always run RustCrypto's p256, what no_std runs).
    let Some(jwt::Key::Es256(vk)) = Some(es_key.clone()) else {
        unreachable!()
    };
    let SigningKey::Es256(esk) = &es else {
        unreachable!()
    };
    let msg = es_token.rsplit_once('.').unwrap().0.as_bytes();
    let sig = esk.sign(msg);
    g.bench_function("es256_raw_sign_backend", |b| {
        b.iter(|| esk.sign(black_box(msg)))
    });
    g.bench_function("es256_raw_sign_p256", |b| {
        b.iter(|| esk.sign_rfc6979(black_box(msg)))
    });
    g.bench_function("es256_raw_verify_backend", |b| {
        b.iter(|| jwt::es256::verify(&vk, black_box(msg), &sig).unwrap())
    });
    g.bench_function("es256_raw_verify_p256", |b| {
        b.iter(|| jwt::es256::verify_p256(&vk, black_box(msg), &sig).unwrap())
    });
    g.bench_function("verify_bot_auth_hs256", |b| {
        b.iter(|| {
            jwt::verify_bot_auth(black_box(&hs_token), &hs_key, 60, Some("botcalld"), NOW).unwrap()
        })
    });
    g.bench_function("verify_bot_auth_es256", |b| {
        b.iter(|| {
            jwt::verify_bot_auth(black_box(&es_token), &es_key, 60, Some("botcalld"), NOW).unwrap()
        })
    });
    // The bot's answer signature: the SDK signs one per answered call, a
    // caller verifies one per call (self-certifying: with a thumbprint).
    let offer = "v=0\r\na=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n";
    let answer = "v=0\r\na=fingerprint:sha-256 B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:A1\r\n";
    let id = jwt::thumbprint(&vk);
    let mut buf = [0u8; answer_sig::MAX_LEN];
    let sig = answer_sig::sign(esk, &id, "c-1", offer, answer, NOW, &mut buf)
        .unwrap()
        .to_owned();
    g.bench_function("answer_sig_sign", |b| {
        let mut out = [0u8; answer_sig::MAX_LEN];
        b.iter(|| {
            answer_sig::sign(esk, &id, "c-1", black_box(offer), answer, NOW, &mut out)
                .unwrap()
                .len()
        })
    });
    g.bench_function("answer_sig_verify_self_certifying", |b| {
        let expect = answer_sig::Expect {
            agent_id: &id,
            call_id: "c-1",
            offer_sdp: offer,
            answer_sdp: answer,
            key: None,
        };
        b.iter(|| answer_sig::verify(black_box(&sig), &expect, NOW).unwrap())
    });
    g.finish();
}

criterion_group!(jwt_benches, benches);
criterion_main!(jwt_benches);
