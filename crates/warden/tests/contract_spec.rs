//! End-to-end: a realistic 23-operation OpenAPI document
//! (`tests/fixtures/shop-api.yaml`: parameters in every location, nested
//! bodies, `readOnly`, enums, formats, `$ref`s, `allOf`, 3.0 `nullable`) goes
//! through `warden import openapi`; the config it writes validates, and served
//! by the gateway it enforces every contract rule: each rule has a request that
//! must pass and one that must be refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, send, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_warden");
const P: &str = "/products/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93";
const JSON: &str = "application/json";

/// (rule, method, path, headers, content type, body, expected status)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
    u16,
);

const TRACE: &[(&str, &str)] = &[("x-request-trace", "abcdefgh")];
const TENANT: &[(&str, &str)] = &[("x-tenant", "eu")];
const SESSION: &[(&str, &str)] = &[("cookie", "session=s1")];
const BAD_SESSION: &[(&str, &str)] = &[("cookie", "theme=dark; session=Sx-1")];
const QUOTED_SESSION: &[(&str, &str)] = &[("cookie", "theme=dark; session=\"s2\"")];
const NONE: &[(&str, &str)] = &[];

const PRODUCT: &str = r#"{"name":"Earl Grey","price":{"amount":"8.50","currency":"EUR"},"tags":["tea"]}"#;
const ORDER: &str = r#"{"email":"ada@example.com","items":[{"productId":"7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93","quantity":2}],"shipping":{"country":"IE","ip":"203.0.113.7"}}"#;

const CASES: &[Case] = &[
    // (`/health` is documented too, but the mock upstream does not record
    // health probes, so a user path stands in.)
    (
        "documented path",
        "GET",
        "/users/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93",
        NONE,
        "",
        "",
        200,
    ),
    ("undocumented path", "GET", "/admin", NONE, "", "", 404),
    ("documented method", "GET", "/products", NONE, "", "", 200),
    ("undocumented method", "PATCH", "/products", NONE, "", "", 405),
    ("query enum ok", "GET", "/products?category=tea", NONE, "", "", 200),
    ("query enum", "GET", "/products?category=weapons", NONE, "", "", 400),
    (
        "query integer bounds ok",
        "GET",
        "/products?limit=50",
        NONE,
        "",
        "",
        200,
    ),
    ("query integer bounds", "GET", "/products?limit=0", NONE, "", "", 400),
    ("query integer type", "GET", "/products?limit=ten", NONE, "", "", 400),
    ("query boolean ok", "GET", "/products?in_stock=true", NONE, "", "", 200),
    ("query boolean", "GET", "/products?in_stock=yes", NONE, "", "", 400),
    ("unknown query parameter", "GET", "/products?debug=1", NONE, "", "", 400),
    ("required query ok", "GET", "/search?q=earl+grey", NONE, "", "", 200),
    ("required query missing", "GET", "/search", NONE, "", "", 400),
    ("query minLength", "GET", "/search?q=e", NONE, "", "", 400),
    (
        "required header ($ref) ok",
        "POST",
        "/products",
        TENANT,
        JSON,
        PRODUCT,
        200,
    ),
    ("required header missing", "POST", "/products", NONE, JSON, PRODUCT, 400),
    (
        "header enum",
        "POST",
        "/products",
        &[("x-tenant", "asia")],
        JSON,
        PRODUCT,
        400,
    ),
    ("header minLength ok", "GET", "/orders", TRACE, "", "", 200),
    (
        "header minLength",
        "GET",
        "/orders",
        &[("x-request-trace", "abc")],
        "",
        "",
        400,
    ),
    (
        "query enum via $ref ok",
        "GET",
        "/orders?status=paid",
        TRACE,
        "",
        "",
        200,
    ),
    ("query enum via $ref", "GET", "/orders?status=lost", TRACE, "", "", 400),
    ("path uuid ok", "GET", P, NONE, "", "", 200),
    ("path uuid", "GET", "/products/123", NONE, "", "", 400),
    ("path pattern ok", "GET", "/carts/c-123456", SESSION, "", "", 200),
    ("path pattern", "GET", "/carts/cart-1", SESSION, "", "", 400),
    ("required cookie", "GET", "/carts/c-123456", NONE, "", "", 400),
    ("cookie pattern", "GET", "/carts/c-123456", BAD_SESSION, "", "", 400),
    (
        "quoted cookie ok",
        "GET",
        "/carts/c-123456",
        QUOTED_SESSION,
        "",
        "",
        200,
    ),
    ("path integer ok", "GET", "/orders/5", NONE, "", "", 200),
    ("path integer minimum", "GET", "/orders/0", NONE, "", "", 400),
    ("path integer type", "GET", "/orders/abc", NONE, "", "", 400),
    (
        "date-time ok",
        "GET",
        "/products/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93/reviews?since=2026-11-29T10:00:00Z",
        NONE,
        "",
        "",
        200,
    ),
    (
        "date-time",
        "GET",
        "/products/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93/reviews?since=yesterday",
        NONE,
        "",
        "",
        400,
    ),
    ("literal path beats template", "GET", "/users/me", NONE, "", "", 200),
    ("required body", "POST", "/users", NONE, JSON, "", 400),
    ("media type", "POST", "/users", NONE, "text/plain", "hello", 415),
    (
        "binary media type ok",
        "POST",
        "/uploads",
        NONE,
        "image/png",
        "\u{89}PNG",
        200,
    ),
    ("binary route refuses JSON", "POST", "/uploads", NONE, JSON, "{}", 415),
    ("no body documented", "DELETE", P, NONE, JSON, r#"{"x":1}"#, 400),
    ("no body documented ok", "DELETE", P, NONE, "", "", 200),
    ("nested body ok", "POST", "/orders", NONE, JSON, ORDER, 200),
    (
        "email format",
        "POST",
        "/orders",
        NONE,
        JSON,
        r#"{"email":"ada","items":[{"productId":"7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93","quantity":2}]}"#,
        400,
    ),
    (
        "minItems",
        "POST",
        "/orders",
        NONE,
        JSON,
        r#"{"email":"ada@example.com","items":[]}"#,
        400,
    ),
    (
        "nested maximum",
        "POST",
        "/orders",
        NONE,
        JSON,
        r#"{"email":"ada@example.com","items":[{"productId":"7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93","quantity":50}]}"#,
        400,
    ),
    (
        "nested maxLength",
        "POST",
        "/orders",
        NONE,
        JSON,
        r#"{"email":"ada@example.com","items":[{"productId":"7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93","quantity":1}],"shipping":{"country":"IRL"}}"#,
        400,
    ),
    (
        "ipv4 format",
        "POST",
        "/orders",
        NONE,
        JSON,
        r#"{"email":"ada@example.com","items":[{"productId":"7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93","quantity":1}],"shipping":{"country":"IE","ip":"999.1.1.1"}}"#,
        400,
    ),
    (
        "required property",
        "POST",
        "/orders",
        NONE,
        JSON,
        r#"{"email":"ada@example.com"}"#,
        400,
    ),
    (
        "readOnly via allOf sibling",
        "POST",
        "/orders",
        NONE,
        JSON,
        r#"{"email":"ada@example.com","items":[{"productId":"7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93","quantity":1}],"total":{"amount":"0.01","currency":"EUR"}}"#,
        400,
    ),
    (
        "mass assignment benign",
        "POST",
        "/users",
        NONE,
        JSON,
        r#"{"email":"eve@example.com","name":"Eve"}"#,
        200,
    ),
    (
        "mass assignment role",
        "POST",
        "/users",
        NONE,
        JSON,
        r#"{"email":"eve@example.com","role":"admin"}"#,
        400,
    ),
    (
        "mass assignment is_admin",
        "PATCH",
        "/users/me",
        NONE,
        JSON,
        r#"{"is_admin":true}"#,
        400,
    ),
    (
        "mass assignment nested",
        "PATCH",
        "/users/me",
        NONE,
        JSON,
        r#"{"address":{"street":"Main St","verified":true}}"#,
        400,
    ),
    (
        "mass assignment inline schema",
        "POST",
        "/products/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93/reviews",
        NONE,
        JSON,
        r#"{"rating":5,"verified":true}"#,
        400,
    ),
    (
        "inline schema ok",
        "POST",
        "/products/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93/reviews",
        NONE,
        JSON,
        r#"{"rating":5,"text":"lovely"}"#,
        200,
    ),
    (
        "inline schema maximum",
        "POST",
        "/products/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93/reviews",
        NONE,
        JSON,
        r#"{"rating":6}"#,
        400,
    ),
    (
        "nullable ok",
        "PATCH",
        "/orders/5",
        NONE,
        JSON,
        r#"{"note":null,"status":"paid"}"#,
        200,
    ),
    (
        "enum via $ref in body",
        "PATCH",
        "/orders/5",
        NONE,
        JSON,
        r#"{"status":"lost"}"#,
        400,
    ),
    (
        "not nullable",
        "PATCH",
        "/orders/5",
        NONE,
        JSON,
        r#"{"status":null}"#,
        400,
    ),
    (
        "uri format ok",
        "POST",
        "/webhooks",
        NONE,
        JSON,
        r#"{"url":"https://hooks.example.com/shop","events":["order.paid"]}"#,
        200,
    ),
    (
        "uri format",
        "POST",
        "/webhooks",
        NONE,
        JSON,
        r#"{"url":"not a uri","events":["order.paid"]}"#,
        400,
    ),
    (
        "array item enum",
        "POST",
        "/webhooks",
        NONE,
        JSON,
        r#"{"url":"https://hooks.example.com/shop","events":["order.deleted"]}"#,
        400,
    ),
    (
        "pattern in nested $ref",
        "POST",
        "/products",
        TENANT,
        JSON,
        r#"{"name":"Earl Grey","price":{"amount":"8.5","currency":"EUR"}}"#,
        400,
    ),
    (
        "maxItems",
        "POST",
        "/products",
        TENANT,
        JSON,
        r#"{"name":"Earl Grey","price":{"amount":"8.50","currency":"EUR"},"tags":["a","b","c","d","e","f"]}"#,
        400,
    ),
    (
        "type",
        "PUT",
        P,
        NONE,
        JSON,
        r#"{"name":42,"price":{"amount":"8.50","currency":"EUR"}}"#,
        400,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_realistic_spec_enforces_every_rule() {
    let up = MockUpstream::start("shop").await;
    let dir = temp_dir("shop-spec");
    let spec_text = std::fs::read_to_string(format!("{}/tests/fixtures/shop-api.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("127.0.0.1:1", &up.addr.to_string());
    let spec = dir.join("shop-api.yaml");
    std::fs::write(&spec, spec_text).unwrap();

    let out = Command::new(BIN)
        .args(["import", "openapi"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = String::from_utf8(out.stdout).unwrap();
    assert_eq!(config.matches("  - id: ").count(), 23, "one route per operation");
    let config_path = dir.join("shop-gateway.yaml");
    std::fs::write(&config_path, &config).unwrap();
    let validated = Command::new(BIN).arg("validate").arg(&config_path).output().unwrap();
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stdout)
    );

    let gw = TestGateway::start(&config[config.find("services:").unwrap()..]).await;
    let mut failures = Vec::new();
    let mut passed = 0;
    for (rule, method, path, headers, content_type, body, expected) in CASES {
        let mut b = Request::builder().method(*method).uri(gw.url(path));
        for (k, v) in *headers {
            b = b.header(*k, *v);
        }
        if !content_type.is_empty() {
            b = b.header("content-type", *content_type);
        }
        let reply = send(&http1(), b.body(Full::new(Bytes::from(*body))).unwrap()).await;
        if reply.status.as_u16() != *expected {
            failures.push(format!(
                "{rule}: {method} {path} -> {} (expected {expected}) {}",
                reply.status,
                reply.text()
            ));
        }
        if *expected == 200 {
            passed += 1;
        } else if reply.status.as_u16() == *expected && *expected != 405 && *expected != 404 {
            // A refusal names a place, never echoes the value.
            let detail = reply.json()["detail"].as_str().unwrap_or("").to_owned();
            assert!(
                !detail.contains("weapons") && !detail.contains("999.1.1.1"),
                "{rule}: {detail}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    assert_eq!(up.hits(), passed, "exactly the passing requests reached the upstream");
}
