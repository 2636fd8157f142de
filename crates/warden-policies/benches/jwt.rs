//! `jwt` policy cost per request: verifying an RS256 / ES256 token from scratch
//! (cache off) and finding it in the verified-token cache.
//! Run with `cargo bench -p warden-policies --bench jwt`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};
use warden_core::{Decision, Policy, RequestCtx};
use warden_policies::PolicySpec;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("warden-jwt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rsa = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
    let ec = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    std::fs::write(dir.join("rsa.pem"), rsa.public_key_pem()).unwrap();
    std::fs::write(dir.join("ec.pem"), ec.public_key_pem()).unwrap();
    let claims = serde_json::json!({ "iss": "https://idp.test", "aud": "api", "sub": "alice", "iat": now(), "exp": now() + 3600 });
    let sign = |alg, kid: &str, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, key).unwrap()
    };
    let rs = sign(
        Algorithm::RS256,
        "rsa-1",
        &EncodingKey::from_rsa_pem(rsa.serialize_pem().as_bytes()).unwrap(),
    );
    let es = sign(
        Algorithm::ES256,
        "ec-1",
        &EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
    );
    let policy = |cache: usize| {
        let yaml = serde_json::json!({
            "type": "jwt",
            "cache_entries": cache,
            "issuers": [{
                "issuer": "https://idp.test", "audiences": ["api"], "algorithms": ["RS256", "ES256"],
                "keys": [
                    { "kid": "rsa-1", "public_key_file": dir.join("rsa.pem") },
                    { "kid": "ec-1", "public_key_file": dir.join("ec.pem") }
                ]
            }]
        });
        serde_json::from_value::<PolicySpec>(yaml).unwrap().build().unwrap()
    };
    let uncached = policy(0);
    let cached = policy(10_000);
    let run = |p: &warden_policies::CompiledPolicy, token: &str| {
        let (mut parts, ()) = http::Request::get("/orders/1")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap()
            .into_parts();
        let mut ctx = RequestCtx::new("bench".into(), "127.0.0.1".parse().unwrap(), 1024);
        let d = block_on(p.on_request(&mut parts, &mut ctx)).unwrap();
        assert!(matches!(d, Decision::Continue));
        black_box(ctx.consumer);
    };
    c.bench_function("jwt RS256 uncached", |b| b.iter(|| run(&uncached, &rs)));
    c.bench_function("jwt ES256 uncached", |b| b.iter(|| run(&uncached, &es)));
    c.bench_function("jwt RS256 cached", |b| b.iter(|| run(&cached, &rs)));
    c.bench_function("jwt ES256 cached", |b| b.iter(|| run(&cached, &es)));
}

criterion_group!(benches, bench);
criterion_main!(benches);
