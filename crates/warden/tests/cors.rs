//! End-to-end: the `cors` policy. Preflights are answered by the gateway (204
//! or a 403 problem) and never reach the upstream; actual responses carry the
//! CORS headers only for allowed origins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_are_answered_by_the_gateway_and_responses_carry_the_headers() {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: /api }}\n    service: a\n    policies:\n      - type: cors\n        allow_origins: [https://app.example.com]\n        allow_methods: [GET, POST, DELETE]\n        allow_headers: [authorization]\n        allow_credentials: true\n",
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let preflight = |origin: &'static str, method: &'static str| {
        Request::options(gw.url("/api/orders/7"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization")
            .body(Full::default())
            .unwrap()
    };
    let ok = send(&http1(), preflight("https://app.example.com", "DELETE")).await;
    assert_eq!(ok.status, 204);
    assert!(ok.body.is_empty());
    assert_eq!(ok.headers["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(ok.headers["access-control-allow-credentials"], "true");
    assert_eq!(ok.headers["access-control-allow-methods"], "GET, POST, DELETE");
    assert_eq!(ok.headers["access-control-allow-headers"], "authorization");
    let refused = send(&http1(), preflight("https://evil.example", "DELETE")).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["type"], "urn:warden:problem:forbidden");
    assert!(refused.headers.get("access-control-allow-origin").is_none());
    assert_eq!(up.hits(), 0, "preflights never reach the upstream");

    let get = |origin: &'static str| {
        Request::get(gw.url("/api/orders/7"))
            .header("origin", origin)
            .body(Full::default())
            .unwrap()
    };
    let allowed = send(&http1(), get("https://app.example.com")).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(allowed.headers["vary"], "Origin");
    let other = send(&http1(), get("https://evil.example")).await;
    assert_eq!(other.status, 200);
    assert!(other.headers.get("access-control-allow-origin").is_none());
    assert_eq!(up.hits(), 2);
}
