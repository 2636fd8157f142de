//! End-to-end RFC 7662 introspection of opaque tokens against a real local
//! introspection endpoint: client authentication, active/inactive answers,
//! issuer/audience/expiry checks, caching bounded by `max_cache_secs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use warden_testkit::jwt::{AUDIENCE, ISSUER, now};
use warden_testkit::{MockUpstream, TestGateway, http1, send};

/// Answers POST /introspect for the tokens in `answers`, only with the right
/// Basic credentials (`warden:s3cret`); counts calls.
struct Endpoint {
    addr: std::net::SocketAddr,
    answers: Arc<Mutex<HashMap<String, Value>>>,
    calls: Arc<AtomicUsize>,
}

async fn endpoint() -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answers: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (a, c) = (answers.clone(), calls.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (a, c) = (a.clone(), c.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (a, c) = (a.clone(), c.clone());
                    async move {
                        c.fetch_add(1, Ordering::SeqCst);
                        let auth_ok = req.headers().get("authorization").and_then(|v| v.to_str().ok())
                            == Some("Basic d2FyZGVuOnMzY3JldA==");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let form = String::from_utf8_lossy(&body).into_owned();
                        let token = form
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("token="))
                            .unwrap_or("")
                            .replace("%2E", ".");
                        let (status, answer) = if !auth_ok {
                            (401, json!({ "error": "invalid_client" }))
                        } else {
                            (
                                200,
                                a.lock()
                                    .unwrap()
                                    .get(&token)
                                    .cloned()
                                    .unwrap_or(json!({ "active": false })),
                            )
                        };
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Endpoint { addr, answers, calls }
}

async fn gateway(ep: &Endpoint, secret: &str, up: &MockUpstream) -> TestGateway {
    let dir = std::env::temp_dir().join(format!("warden-introspect-{}-{}", std::process::id(), ep.addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, secret).unwrap();
    let yaml = format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: r\n    path: {{ prefix: / }}\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - issuer: {ISSUER}\n            audiences: [{AUDIENCE}]\n            algorithms: []\n            introspection:\n              url: \"http://{}/introspect\"\n              client_id: warden\n              client_secret_file: \"{}\"\n              max_cache_secs: 60\n",
        up.addr,
        ep.addr,
        secret_file.display()
    );
    TestGateway::start(&yaml).await
}

async fn status(gw: &TestGateway, token: &str) -> u16 {
    let req = Request::get(gw.url("/x"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::<Bytes>::default())
        .unwrap();
    send(&http1(), req).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_opaque_tokens_pass_and_everything_else_is_refused() {
    let ep = endpoint().await;
    let up = MockUpstream::start("a").await;
    let gw = gateway(&ep, "s3cret", &up).await;
    {
        let mut a = ep.answers.lock().unwrap();
        a.insert(
            "good-token".into(),
            json!({ "active": true, "sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300 }),
        );
        a.insert(
            "client.only.token".into(),
            json!({ "active": true, "client_id": "billing-svc", "aud": [AUDIENCE, "x"], "exp": now() + 300 }),
        );
        a.insert(
            "no-aud".into(),
            json!({ "active": true, "sub": "bob", "exp": now() + 300 }),
        );
        a.insert(
            "refresh".into(),
            json!({ "active": true, "sub": "bob", "aud": AUDIENCE, "token_type": "refresh_token", "exp": now() + 300 }),
        );
        a.insert(
            "other-aud".into(),
            json!({ "active": true, "sub": "bob", "aud": ["billing-api"], "exp": now() + 300 }),
        );
        a.insert(
            "other-iss".into(),
            json!({ "active": true, "sub": "bob", "iss": "https://evil.test", "exp": now() + 300 }),
        );
        a.insert(
            "expired".into(),
            json!({ "active": true, "sub": "bob", "exp": now() - 10 }),
        );
        a.insert("revoked".into(), json!({ "active": false }));
    }
    assert_eq!(status(&gw, "good-token").await, 200);
    assert_eq!(
        status(&gw, "client.only.token").await,
        200,
        "opaque token with dots, consumer from client_id"
    );
    for bad in [
        "other-aud",
        "other-iss",
        "expired",
        "revoked",
        "unknown",
        "no-aud",
        "refresh",
    ] {
        assert_eq!(status(&gw, bad).await, 401, "{bad}");
    }
    gw.wait_for_log_lines(9).await;
    let consumers: Vec<Value> = gw.access_log().iter().map(|l| l["consumer"].clone()).collect();
    assert_eq!(consumers[0], "alice");
    assert_eq!(consumers[1], "billing-svc");
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_cached_and_a_refused_client_secret_fails_closed() {
    let ep = endpoint().await;
    let up = MockUpstream::start("a").await;
    ep.answers.lock().unwrap().insert(
        "good-token".into(),
        json!({ "active": true, "sub": "alice", "aud": AUDIENCE, "exp": now() + 300 }),
    );
    let gw = gateway(&ep, "s3cret", &up).await;
    for _ in 0..5 {
        assert_eq!(status(&gw, "good-token").await, 200);
    }
    assert_eq!(
        ep.calls.load(Ordering::SeqCst),
        1,
        "one introspection call for five requests"
    );
    // The same bad token repeated is asked about once, not five times.
    for _ in 0..5 {
        assert_eq!(status(&gw, "bad-token").await, 401);
    }
    assert_eq!(ep.calls.load(Ordering::SeqCst), 2);
    // Wrong client secret: the endpoint refuses the gateway, so the token is refused.
    let gw2 = gateway(&ep, "wrong", &up).await;
    assert_eq!(status(&gw2, "good-token").await, 401);
}
