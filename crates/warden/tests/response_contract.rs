//! `response_contract` end to end: a real upstream returns whole user rows;
//! the gateway returns only what the OpenAPI document declares (filter),
//! replaces the response (block), or reports; a property marked
//! `x-warden-scopes` reaches only a token holding the scope.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};
use warden_testkit::jwt::TestIssuer;
use warden_testkit::{MockUpstream, TestGateway, http1, send, temp_dir};

const SPEC: &str = r##"openapi: 3.0.3
info: { title: Users, version: "1" }
paths:
  /users/reply:
    post:
      responses:
        "200":
          description: users
          content:
            application/json:
              schema:
                type: object
                properties:
                  users: { type: array, items: { $ref: "#/components/schemas/User" } }
                  next: { type: string }
            text/plain:
              schema: { type: string }
        "4XX":
          description: problem
          content:
            application/json:
              schema: { type: object, properties: { error: { type: string } } }
components:
  schemas:
    User:
      type: object
      properties:
        id: { type: string }
        email: { type: string, format: email }
        address:
          type: object
          properties: { city: { type: string }, country: { type: string } }
        tags: { type: array, items: { type: string } }
        salary: { type: integer, x-warden-scopes: [hr.read] }
        settings: { type: object }
"##;

const ROWS: &str = r#"{"users":[{"id":"u1","email":"ada@example.com","password":"hunter2","password_hash":"$2b$12$abcdefghijklmnopqrstuv","address":{"city":"Dublin","country":"IE","geo_internal":"53.34,-6.26"},"tags":["a"],"salary":91000,"settings":{"theme":"dark","beta":true}}],"next":"c2","debug":{"sql":"select * from users"}}"#;

async fn setup(iss: &TestIssuer) -> (MockUpstream, TestGateway) {
    let up = MockUpstream::start("a").await;
    let dir = temp_dir("response-contract");
    let spec = dir.join("users.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let route = |id: &str, mode: &str| {
        format!(
            "  - id: {id}\n    path: {{ prefix: /{id} }}\n    service: a\n    policies:\n{}      - type: response_contract\n        spec: \"{}\"\n        base_path: /{id}\n        mode: {mode}\n        max_inspect_bytes: 1024\n",
            iss.policy_yaml(""),
            spec.display()
        )
    };
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n{}{}{}",
        up.addr,
        route("filter", "filter"),
        route("block", "block"),
        route("report", "report")
    );
    (up, TestGateway::start(&yaml).await)
}

async fn call(gw: &TestGateway, route: &str, token: &str, status: u16, body: &str) -> warden_testkit::Reply {
    call_as(gw, route, token, status, "application/json", body).await
}

async fn call_as(
    gw: &TestGateway,
    route: &str,
    token: &str,
    status: u16,
    media: &str,
    body: &str,
) -> warden_testkit::Reply {
    let req = Request::post(gw.url(&format!("/{route}/users/reply")))
        .header("authorization", format!("Bearer {token}"))
        .header("x-reply-status", status.to_string())
        .header("x-reply-type", media)
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    send(&http1(), req).await
}

#[tokio::test]
async fn json_labelled_as_text_is_filtered_and_real_text_passes() {
    let iss = TestIssuer::new();
    let (_up, gw) = setup(&iss).await;
    let r = call_as(&gw, "filter", &token(&iss, ""), 200, "text/plain", ROWS).await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["users"][0].get("password").is_none(), "{v}");
    assert!(v.get("debug").is_none());
    for text in ["all good", "[not json"] {
        let r = call_as(&gw, "filter", &token(&iss, ""), 200, "text/plain", text).await;
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], text.as_bytes());
    }
}

fn token(iss: &TestIssuer, scope: &str) -> String {
    let mut claims = iss.claims();
    claims["scope"] = json!(scope);
    iss.rs256(&claims)
}

#[tokio::test]
async fn filter_mode_returns_only_declared_properties_at_every_depth() {
    let iss = TestIssuer::new();
    let (_up, gw) = setup(&iss).await;
    let r = call(&gw, "filter", &token(&iss, "users.read"), 200, ROWS).await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        json!({"users":[{"id":"u1","email":"ada@example.com","address":{"city":"Dublin","country":"IE"},"tags":["a"],"settings":{"theme":"dark","beta":true}}],"next":"c2"}),
        "password, password_hash, address.geo_internal and debug removed; salary needs hr.read; settings is free-form"
    );
    let len: usize = r.headers["content-length"].to_str().unwrap().parse().unwrap();
    assert_eq!(len, r.body.len());
    // The right token sees the scoped field.
    let r = call(&gw, "filter", &token(&iss, "users.read hr.read"), 200, ROWS).await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["users"][0]["salary"], 91000);
    assert!(v["users"][0].get("password").is_none());
    // A documented range (4XX) is filtered with its own schema.
    let r = call(
        &gw,
        "filter",
        &token(&iss, ""),
        404,
        r#"{"error":"no such user","trace_id":"x"}"#,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"error":"no such user"})
    );
}

#[tokio::test]
async fn block_mode_replaces_the_response_and_report_mode_changes_nothing_but_scopes() {
    let iss = TestIssuer::new();
    let (_up, gw) = setup(&iss).await;
    let t = token(&iss, "users.read");
    let r = call(&gw, "block", &t, 200, ROWS).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(!String::from_utf8_lossy(&r.body).contains("hunter2"));
    // A response that keeps to the contract passes block mode untouched.
    let clean = r#"{"users":[{"id":"u1","tags":[]}],"next":"c2"}"#;
    let r = call(&gw, "block", &t, 200, clean).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, clean.as_bytes());
    // An undocumented status: refused in block mode; in filter mode refused
    // when it carries data (2xx), passed when it is an error.
    let r = call(&gw, "block", &t, 201, "{}").await;
    assert_eq!(r.status, 502);
    let r = call(&gw, "filter", &t, 201, "{}").await;
    assert_eq!(r.status, 502);
    let r = call(&gw, "filter", &t, 409, r#"{"error":"conflict"}"#).await;
    assert_eq!(r.status, 409);
    // What the policy cannot read fails closed in filter mode: a 2xx body
    // that is not JSON, or one nested past the parser's depth.
    let r = call(&gw, "filter", &t, 200, "not json").await;
    assert_eq!(r.status, 502);
    let deep = format!(r#"{{"users":[{{"settings":{}{}}}]}}"#, "[".repeat(200), "]".repeat(200));
    let r = call(&gw, "filter", &t, 200, &deep).await;
    assert_eq!(r.status, 502);
    // Longer than max_inspect_bytes: refused in filter mode, passed in report mode.
    let long = format!(r#"{{"users":[],"next":"{}"}}"#, "x".repeat(2000));
    assert_eq!(call(&gw, "filter", &t, 200, &long).await.status, 502);
    assert_eq!(call(&gw, "report", &t, 200, &long).await.status, 200);
    // A trailing slash reaches the same operation, filtered the same.
    let req = Request::post(gw.url("/filter/users/reply/"))
        .header("authorization", format!("Bearer {t}"))
        .body(Full::new(Bytes::from(ROWS)))
        .unwrap();
    let r = send(&http1(), req).await;
    assert!(!String::from_utf8_lossy(&r.body).contains("hunter2"));
    // Report mode keeps undeclared properties but still applies scope views.
    let r = call(&gw, "report", &t, 200, ROWS).await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["users"][0]["password"], "hunter2");
    assert!(v["users"][0].get("salary").is_none());
}

#[tokio::test]
async fn a_rewritten_body_loses_the_upstreams_validators_and_digests_and_an_untouched_one_keeps_them() {
    let iss = TestIssuer::new();
    let (_up, gw) = setup(&iss).await;
    let stale = [
        ("etag", "\"v1\""),
        ("last-modified", "Tue, 01 Dec 2026 04:00:00 GMT"),
        ("content-md5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
        ("digest", "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="),
        ("repr-digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"),
        (
            "content-digest",
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        ),
    ];
    let send_with = async |body: &'static str| {
        let mut req = Request::post(gw.url("/filter/users/reply"))
            .header("authorization", format!("Bearer {}", token(&iss, "")))
            .header("x-reply-status", "200")
            .header("x-reply-type", "application/json");
        for (name, value) in stale {
            req = req.header("x-reply-header", format!("{name}: {value}"));
        }
        send(&http1(), req.body(Full::new(Bytes::from(body))).unwrap()).await
    };
    // Filtered: the upstream's validators describe another body.
    let r = send_with(ROWS).await;
    assert_eq!(r.status, 200);
    assert!(!String::from_utf8_lossy(&r.body).contains("password"));
    for (name, _) in stale {
        assert!(r.headers.get(name).is_none(), "{name} kept on a rewritten body");
    }
    assert_eq!(r.headers["cache-control"], "private, no-store");
    // Nothing to remove: the body and its validators are the upstream's.
    let clean = r#"{"users":[{"id":"u1"}],"next":"c2"}"#;
    let r = send_with(clean).await;
    assert_eq!(&r.body[..], clean.as_bytes());
    for (name, value) in stale {
        assert_eq!(r.headers.get(name).map(|v| v.to_str().unwrap()), Some(value), "{name}");
    }
}

/// `response_contract` and `data_leak` on one route (the benchmark's
/// "both" route): the filter runs first, `data_leak` scans what is left, so
/// the client gets the filtered body with its kept secrets masked and one
/// `data_leak` event.
#[tokio::test]
async fn filtering_and_data_leak_on_one_route_each_do_their_part() {
    let up = MockUpstream::start("a").await;
    let dir = temp_dir("response-contract-leak");
    let spec = dir.join("users.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: both\n    path: {{ prefix: /both }}\n    service: a\n    policies:\n      - type: response_contract\n        spec: \"{}\"\n        base_path: /both\n      - type: data_leak\n",
        up.addr,
        spec.display()
    );
    let gw = TestGateway::start(&yaml).await;
    let body = r#"{"users":[{"id":"u1","email":"ada@example.com","password":"hunter2","card":"4111 1111 1111 1111","settings":{"card":"4111 1111 1111 1111","order":"4111111111111112","api_token":"ghp_abcdefghijklmnopqrstuvwxyz0123456789"}}],"next":"c2"}"#;
    let leaks = gw.security_events("data_leak").await;
    let r = call_as(&gw, "both", "none", 200, "application/json", body).await;
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        json!({"users":[{"id":"u1","email":"ada@example.com","settings":{"card":"**** **** **** 1111","order":"4111111111111112","api_token":"[REDACTED]"}}],"next":"c2"}),
        "undeclared password and card removed; the kept card masked, the token redacted, the Luhn-invalid order number and the e-mail (allowed by default) left"
    );
    assert_eq!(gw.security_events("data_leak").await, leaks + 1);
    // Nothing to mask: the filtered body as it is.
    let r = call_as(&gw, "both", "none", 200, "application/json", ROWS).await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v,
        json!({"users":[{"id":"u1","email":"ada@example.com","address":{"city":"Dublin","country":"IE"},"tags":["a"],"settings":{"theme":"dark","beta":true}}],"next":"c2"})
    );
}
