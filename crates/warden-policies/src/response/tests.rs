#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use warden_core::{Decision, Policy, RequestCtx};

use super::*;
use crate::block_on;

fn ctx() -> RequestCtx {
    RequestCtx::new(Arc::from("req-1"), "127.0.0.1".parse().unwrap(), 1 << 20)
}

fn parts(content_type: &str, status: u16) -> http::response::Parts {
    let (p, ()) = http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts();
    p
}

fn run(p: &impl Policy, content_type: &str, status: u16, body: &str) -> (Option<&'static str>, String) {
    let mut resp = parts(content_type, status);
    let mut body = Bytes::from(body.to_owned());
    let d = block_on(p.on_response_body(&mut resp, &mut body, &mut ctx())).unwrap();
    let code = match d {
        Decision::Continue => None,
        Decision::Reject(r) => Some(r.code),
    };
    (code, String::from_utf8(body.to_vec()).unwrap())
}

fn data_leak(yaml: &str) -> DataLeak {
    let cfg: DataLeakConfig = serde_saphyr::from_str(yaml).unwrap();
    cfg.build().unwrap()
}

#[test]
fn cards_are_masked_secrets_redacted_and_the_json_stays_valid() {
    let p = data_leak("{}");
    let body = r#"{"order":"4111111111111112","card":"4111 1111 1111 1111","n":4242424242424242,"password":"hunter2","email":"ada@example.com"}"#;
    let (code, out) = run(&p, "application/json", 200, body);
    assert_eq!(code, None);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["order"], "4111111111111112",
        "a Luhn-invalid order number is left alone"
    );
    assert_eq!(v["card"], "**** **** **** 1111");
    assert_eq!(v["n"], "************4242");
    assert_eq!(v["password"], "[REDACTED]");
    assert_eq!(v["email"], "ada@example.com", "e-mail is allowed by default");
}

#[test]
fn block_replaces_the_response_and_report_changes_nothing() {
    let key = r#"{"note":"key AKIAIOSFODNN7EXAMPLE"}"#;
    let (code, _) = run(
        &data_leak("actions: { cloud_key: block }"),
        "application/json",
        200,
        key,
    );
    assert_eq!(code, Some("data_leak_blocked"));
    let (code, out) = run(
        &data_leak("actions: { cloud_key: report }"),
        "application/json",
        200,
        key,
    );
    assert_eq!((code, out.as_str()), (None, key));
}

#[test]
fn plain_text_is_scanned_as_text_and_images_are_not_scanned() {
    let p = data_leak("{}");
    let (_, out) = run(&p, "text/plain", 200, "card 4111-1111-1111-1111 ok");
    assert_eq!(out, "card ****-****-****-1111 ok");
    let (_, out) = run(&p, "image/png", 200, "4111111111111111");
    assert_eq!(out, "4111111111111111");
}

#[test]
fn bad_config_lists_every_problem() {
    let cfg: DataLeakConfig =
        serde_saphyr::from_str("max_inspect_bytes: 10\nkeep_tail: 12\nactions: { cards: mask }").unwrap();
    let errs = cfg.build().unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["max_inspect_bytes", "keep_tail", "actions.cards"]);
}

#[test]
fn stack_traces_are_replaced_in_any_status_and_prose_passes() {
    let p: ErrorLeaksConfig = serde_saphyr::from_str("{}").unwrap();
    let p = p.build().unwrap();
    let java = "java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:17)";
    assert_eq!(run(&p, "text/plain", 500, java).0, Some("upstream_error_leak"));
    assert_eq!(run(&p, "text/html", 200, java).0, Some("upstream_error_leak"));
    let prose = r#"{"faq":"If an exception happens, retry the request."}"#;
    assert_eq!(run(&p, "application/json", 200, prose).0, None);
    let report: ErrorLeaksConfig = serde_saphyr::from_str("mode: report").unwrap();
    assert_eq!(run(&report.build().unwrap(), "text/plain", 500, java).0, None);
    // `statuses: errors`: a stored trace in a 200 listing passes, a 4xx/5xx is read.
    let errors: ErrorLeaksConfig = serde_saphyr::from_str("statuses: errors").unwrap();
    let errors = errors.build().unwrap();
    assert_eq!(run(&errors, "text/plain", 200, java).0, None);
    assert_eq!(run(&errors, "text/plain", 404, java).0, Some("upstream_error_leak"));
    assert_eq!(run(&errors, "text/plain", 503, java).0, Some("upstream_error_leak"));
}

/// The headers `data_leak` leaves on a response carrying `headers`, and
/// its decision.
fn headers_after(p: &DataLeak, headers: &[(&str, &str)]) -> (Option<&'static str>, http::HeaderMap) {
    let mut resp = parts("application/json", 200);
    for (n, v) in headers {
        resp.headers.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let d = block_on(p.on_response(&mut resp, &mut ctx())).unwrap();
    let code = match d {
        Decision::Continue => None,
        Decision::Reject(r) => Some(r.code),
    };
    (code, resp.headers)
}

#[test]
fn secrets_in_response_headers_are_redacted_and_session_cookies_left_alone() {
    let p = data_leak("{}");
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
    let cookie = format!("session={jwt}; HttpOnly; Secure");
    let (code, h) = headers_after(
        &p,
        &[
            ("x-debug-aws", "key=AKIAIOSFODNN7EXAMPLE"),
            ("x-api-key", "k-12345"),
            ("x-card", "4111 1111 1111 1111"),
            ("set-cookie", &cookie),
            ("x-order", "4111111111111112"),
            ("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\""),
        ],
    );
    assert_eq!(code, None);
    assert_eq!(h["x-debug-aws"], "key=[REDACTED]");
    assert_eq!(h["x-api-key"], "[REDACTED]", "a header named like a secret");
    assert_eq!(h["x-card"], "**** **** **** 1111");
    assert_eq!(
        h["set-cookie"],
        cookie.as_str(),
        "session cookies are credentials by design"
    );
    assert_eq!(h["x-order"], "4111111111111112", "a Luhn-invalid number is left alone");
    assert_eq!(h["etag"], "\"33a64df551425fcc55e4d42a148795d9f25f89d4\"");
    // Bytes past ASCII hide nothing and are kept as they were.
    let mut resp = parts("application/json", 200);
    resp.headers.insert(
        "x-debug",
        http::HeaderValue::from_bytes(b"card=4111 1111 1111 1111 user=Jos\xc3\xa9").unwrap(),
    );
    resp.headers
        .insert("x-api-key", http::HeaderValue::from_bytes(b"sk_\xff").unwrap());
    block_on(p.on_response(&mut resp, &mut ctx())).unwrap();
    assert_eq!(
        resp.headers["x-debug"].as_bytes(),
        b"card=**** **** **** 1111 user=Jos\xc3\xa9"
    );
    assert_eq!(resp.headers["x-api-key"], "[REDACTED]");
    // Inspected only when not skipped, and a blocking category blocks.
    let p = data_leak("actions: { jwt: block }\nskip_headers: []");
    assert_eq!(
        headers_after(&p, &[("set-cookie", &cookie)]).0,
        Some("data_leak_blocked")
    );
    let cfg: DataLeakConfig = serde_saphyr::from_str("skip_headers: [\"bad header\"]").unwrap();
    assert_eq!(cfg.build().unwrap_err()[0].path, "skip_headers[0]");
}

#[test]
fn a_scope_on_a_whole_response_is_refused_at_load() {
    let dir = std::env::temp_dir().join(format!("warden-response-root-scope-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("api.yaml");
    let doc = |schema: &str| {
        format!(
            "openapi: 3.0.3\ninfo: {{ title: t, version: \"1\" }}\npaths:\n  /ssns:\n    get:\n      responses:\n        \"200\":\n          description: ok\n          content:\n            application/json:\n              schema: {schema}\n"
        )
    };
    let build = |schema: &str| {
        std::fs::write(&spec, doc(schema)).unwrap();
        let cfg: ResponseContractConfig = serde_saphyr::from_str(&format!("spec: {}", spec.display())).unwrap();
        cfg.build().map(|_| ())
    };
    let errs = build("{ type: array, items: { type: string, x-warden-scopes: [pii] } }").unwrap_err();
    assert!(errs[0].message.contains("GET /ssns response 200"), "{errs:?}");
    assert!(build("{ type: object, properties: { ssn: { type: string, x-warden-scopes: [pii] } } }").is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
