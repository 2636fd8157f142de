//! Response protection end to end: a real upstream answers with sensitive
//! data, secrets, stack traces and compressed bodies; the gateway's
//! `data_leak` and `error_leaks` policies decide what the client sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, send};

async fn setup() -> (MockUpstream, TestGateway) {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        r#"services:
  - name: a
    targets: ["{}"]
routes:
  - id: guarded
    path: {{ prefix: /guarded }}
    service: a
    policies:
      - type: data_leak
        max_inspect_bytes: 4096
        actions: {{ email: mask, private_key: block }}
      - type: error_leaks
  - id: plain
    path: {{ prefix: /plain }}
    service: a
    upstream_errors: pass_through
"#,
        up.addr
    );
    (up, TestGateway::start(&yaml).await)
}

/// The upstream answers `body` with this status, media type and encoding.
async fn reply(gw: &TestGateway, route: &str, status: u16, media: &str, body: &str) -> warden_testkit::Reply {
    let req = Request::post(gw.url(&format!("/{route}/reply")))
        .header("x-reply-status", status.to_string())
        .header("x-reply-type", media)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(&http1(), req).await
}

const USERS: &str = r#"{"users":[{"id":"u1","email":"ada@example.com","password":"hunter2","password_hash":"$2b$12$KIXQJ1vYjW0e3h2sM5aT1uZr9k6Q0pQ7yqv2m8bqY8aU0nE4xQ1aO","card":"4111 1111 1111 1111","order_no":"4111111111111112"}]}"#;

#[tokio::test]
async fn secrets_and_card_numbers_are_masked_and_look_alikes_pass() {
    let (up, gw) = setup().await;
    let r = reply(&gw, "guarded", 200, "application/json", USERS).await;
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let user = &v["users"][0];
    assert_eq!(user["password"], "[REDACTED]");
    assert_eq!(user["password_hash"], "[REDACTED]");
    assert_eq!(user["card"], "**** **** **** 1111");
    assert_eq!(user["order_no"], "4111111111111112", "fails Luhn: not a card");
    assert_eq!(
        user["email"], "***@******e.com",
        "masked on this route, the last 4 kept"
    );
    assert_eq!(user["id"], "u1");
    let len: usize = r.headers["content-length"].to_str().unwrap().parse().unwrap();
    assert_eq!(len, r.body.len());
    // The upstream was asked for a body the gateway can read.
    let seen = up.seen();
    assert_eq!(seen.last().unwrap().headers["accept-encoding"], "identity");
    // Without the policies the same answer passes untouched.
    let r = reply(&gw, "plain", 200, "application/json", USERS).await;
    assert_eq!(r.body, USERS.as_bytes());
}

#[tokio::test]
async fn an_aws_key_a_jwt_and_a_private_key_are_caught() {
    let (_up, gw) = setup().await;
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZGEiLCJyb2xlIjoiYWRtaW4ifQ.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let body = format!(r#"{{"config":"aws AKIAIOSFODNN7EXAMPLE","session":"{jwt}","note":"ok"}}"#);
    let r = reply(&gw, "guarded", 200, "application/json", &body).await;
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(!text.contains("AKIAIOSFODNN7EXAMPLE") && !text.contains(jwt), "{text}");
    assert!(text.contains(r#""note":"ok""#), "{text}");
    // `private_key: block` on this route: the whole response is replaced.
    let pem = r#"{"key":"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----"}"#;
    let r = reply(&gw, "guarded", 200, "application/json", pem).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(!String::from_utf8_lossy(&r.body).contains("PRIVATE KEY"));
}

const JAVA: &str = "java.lang.IllegalStateException: cart 17 is locked\n\tat com.shop.cart.CartService.add(CartService.java:88)\n\tat com.shop.api.CartController.post(CartController.java:41)\n";
const PYTHON: &str = "Traceback (most recent call last):\n  File \"/srv/app/views.py\", line 42, in checkout\n    total = cart.total()\nKeyError: 'price'\n";

#[tokio::test]
async fn java_and_python_stack_traces_are_replaced_in_a_500_and_in_a_200() {
    let (_up, gw) = setup().await;
    for (trace, status, media) in [
        (JAVA, 500, "text/plain"),
        (JAVA, 200, "text/html"),
        (PYTHON, 500, "text/plain"),
        (PYTHON, 200, "application/json"),
    ] {
        let r = reply(&gw, "guarded", status, media, trace).await;
        assert_eq!(r.status, 502, "{status} {media}");
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("upstream-error"), "{text}");
        assert!(!text.contains("CartService") && !text.contains("views.py"), "{text}");
    }
    // A benign look-alike: prose about errors.
    let faq = r#"{"faq":"When an exception occurs in our Java SDK, retry with back-off."}"#;
    let r = reply(&gw, "guarded", 200, "application/json", faq).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, faq.as_bytes());
    // Without `error_leaks`, a 200 carrying a trace is not the gateway's business.
    let r = reply(&gw, "plain", 200, "text/plain", JAVA).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn compressed_bodies_are_refused_and_long_ones_stream_on() {
    let (_up, gw) = setup().await;
    let req = Request::post(gw.url("/guarded/reply"))
        .header("x-reply-encoding", "gzip")
        .body(Full::new(Bytes::from_static(b"\x1f\x8b not really gzip")))
        .unwrap();
    let r = send(&http1(), req).await;
    assert_eq!(r.status, 502);
    // Past `max_inspect_bytes` (4096): the body streams on uninspected, whole.
    let long = format!(r#"{{"pad":"{}","card":"4111111111111111"}}"#, "x".repeat(5000));
    let r = reply(&gw, "guarded", 200, "application/json", &long).await;
    assert_eq!(r.status, 200);
    assert!(r.body == long.as_bytes(), "the long body came back changed");
}

#[tokio::test]
async fn a_token_in_a_response_header_is_redacted_and_the_session_cookie_kept() {
    let (_up, gw) = setup().await;
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
    let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let req = |route: &str| {
        Request::post(gw.url(&format!("/{route}/reply")))
            .header("x-reply-header", format!("x-debug-token: {token}"))
            .header("x-reply-header", format!("set-cookie: sid={jwt}; HttpOnly"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    };
    let r = send(&http1(), req("guarded")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-debug-token"], "[REDACTED]");
    assert_eq!(r.headers["set-cookie"], format!("sid={jwt}; HttpOnly").as_str());
    // The same answer without the policy: the token goes out (the upstream
    // really sent it).
    let r = send(&http1(), req("plain")).await;
    assert_eq!(r.headers["x-debug-token"], token);
}
