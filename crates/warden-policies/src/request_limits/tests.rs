use std::sync::Arc;

use warden_core::{Decision, Policy, ProblemKind, RequestCtx};

use super::RequestLimitsConfig;
use crate::block_on;

fn limits(
    body: Option<u64>,
    headers: Option<usize>,
    hbytes: Option<usize>,
    uri: Option<usize>,
) -> super::RequestLimits {
    RequestLimitsConfig {
        max_body_bytes: body,
        max_headers: headers,
        max_header_bytes: hbytes,
        max_uri_bytes: uri,
        json: None,
        on_error: Default::default(),
    }
    .build()
    .unwrap()
}

fn run(p: &super::RequestLimits, req: http::Request<()>) -> (Option<ProblemKind>, RequestCtx) {
    let (mut parts, ()) = req.into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    let kind = match block_on(p.on_request(&mut parts, &mut ctx)).unwrap() {
        Decision::Reject(r) => Some(r.kind),
        Decision::Continue => None,
    };
    (kind, ctx)
}

#[test]
fn long_uri_gets_414_and_short_passes() {
    let p = limits(None, None, None, Some(16));
    let long = http::Request::get("/aaaaaaaaaaaaaaaaaaaa").body(()).unwrap();
    assert_eq!(run(&p, long).0, Some(ProblemKind::UriTooLong));
    let short = http::Request::get("/aaaa?b=1").body(()).unwrap();
    assert_eq!(run(&p, short).0, None);
}

#[test]
fn too_many_headers_and_too_many_header_bytes_get_431() {
    let p = limits(None, Some(2), Some(64), None);
    let many = http::Request::get("/")
        .header("a", "1")
        .header("b", "2")
        .header("c", "3")
        .body(())
        .unwrap();
    assert_eq!(run(&p, many).0, Some(ProblemKind::HeadersTooLarge));
    let big = http::Request::get("/").header("a", "x".repeat(80)).body(()).unwrap();
    assert_eq!(run(&p, big).0, Some(ProblemKind::HeadersTooLarge));
    let fine = http::Request::get("/").header("a", "1").body(()).unwrap();
    assert_eq!(run(&p, fine).0, None);
}

#[test]
fn declared_body_over_cap_gets_413_and_cap_lowers_ctx_limit() {
    let p = limits(Some(100), None, None, None);
    let big = http::Request::post("/")
        .header("content-length", "101")
        .body(())
        .unwrap();
    assert_eq!(run(&p, big).0, Some(ProblemKind::PayloadTooLarge));
    let ok = http::Request::post("/")
        .header("content-length", "100")
        .body(())
        .unwrap();
    let (kind, ctx) = run(&p, ok);
    assert_eq!(kind, None);
    assert_eq!(
        ctx.max_body_bytes, 100,
        "streamed bodies are capped by the driver at this limit"
    );
}

#[test]
fn config_without_any_limit_or_with_zero_is_refused() {
    assert!(
        RequestLimitsConfig {
            max_body_bytes: None,
            max_headers: None,
            max_header_bytes: None,
            max_uri_bytes: None,
            json: None,
            on_error: Default::default()
        }
        .build()
        .is_err()
    );
    let errs = RequestLimitsConfig {
        max_body_bytes: None,
        max_headers: Some(0),
        max_header_bytes: Some(0),
        max_uri_bytes: None,
        json: None,
        on_error: Default::default(),
    }
    .build()
    .unwrap_err();
    assert_eq!(errs.len(), 2);
}

fn json_rule(yaml: &str) -> Result<super::RequestLimits, Vec<crate::SpecError>> {
    let config: RequestLimitsConfig = serde_saphyr::from_str(yaml).unwrap();
    config.build()
}

fn body_decision(p: &super::RequestLimits, content_type: &str, body: &str) -> Option<(ProblemKind, String)> {
    let (parts, ()) = http::Request::post("/orders")
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    let body = bytes::Bytes::from(body.to_owned());
    match block_on(p.on_request_body(&parts, &body, &mut ctx)).unwrap() {
        Decision::Reject(r) => Some((r.kind, r.detail.unwrap_or_default())),
        Decision::Continue => None,
    }
}

#[test]
fn json_bodies_are_held_to_their_shape_limits() {
    let p = json_rule("json: { max_depth: 3, max_array_items: 2, max_bytes: 64 }").unwrap();
    assert!(p.needs_request_body());
    assert_eq!(body_decision(&p, "application/json", r#"{"items":[1,2]}"#), None);
    assert_eq!(
        body_decision(&p, "application/json; charset=utf-8", r#"{"items":[1,2,3]}"#),
        Some((ProblemKind::BadRequest, "/body/items: more than 2 items".to_owned()))
    );
    assert_eq!(
        body_decision(&p, "application/merge-patch+json", r#"{"a":{"b":{"c":{}}}}"#),
        Some((ProblemKind::BadRequest, "/body/a/b/c: nested deeper than 3".to_owned()))
    );
    let big = format!(r#"{{"note":"{}"}}"#, "x".repeat(80));
    assert_eq!(
        body_decision(&p, "application/json", &big).map(|d| d.0),
        Some(ProblemKind::PayloadTooLarge)
    );
    // Not JSON by its media type: not this rule's business.
    assert_eq!(body_decision(&p, "text/plain", r#"{"items":[1,2,3]}"#), None);
}

#[test]
fn json_limits_must_be_usable() {
    let errs = json_rule("json: { max_depth: 0, max_object_keys: 0 }").unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    let errs = json_rule("json: { max_depth: 129 }").unwrap_err();
    assert_eq!(errs[0].path, "json.max_depth");
    assert!(json_rule("json: {}").is_ok(), "every json key has a default");
}
