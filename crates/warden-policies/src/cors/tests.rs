#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use warden_core::{Decision, Policy, ProblemKind, Rejection, RequestCtx};

use super::{Cors, CorsConfig};
use crate::block_on;

fn policy(yaml: &str) -> Cors {
    let cfg: CorsConfig = serde_saphyr::from_str(yaml).unwrap();
    cfg.build().unwrap()
}

fn run(p: &Cors, method: &str, headers: &[(&str, &str)]) -> (Option<Rejection>, RequestCtx) {
    let mut b = http::Request::builder().method(method).uri("/orders");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    let r = match block_on(p.on_request(&mut parts, &mut ctx)).unwrap() {
        Decision::Reject(r) => Some(r),
        Decision::Continue => None,
    };
    (r, ctx)
}

fn header<'a>(r: &'a Rejection, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, v)| v.to_str().ok())
}

const APP: (&str, &str) = ("origin", "https://app.example.com");

#[test]
fn preflights_from_allowed_origins_are_answered_and_others_refused() {
    let p = policy(
        "allow_origins: [https://app.example.com]\nallow_methods: [GET, PUT]\nallow_headers: [authorization, x-trace]\nallow_credentials: true\nmax_age_secs: 120",
    );
    let ask = |origin: (&'static str, &'static str), method: &'static str, hdrs: &'static str| {
        run(
            &p,
            "OPTIONS",
            &[
                origin,
                ("access-control-request-method", method),
                ("access-control-request-headers", hdrs),
            ],
        )
        .0
        .unwrap()
    };
    let ok = ask(APP, "PUT", "Authorization, content-type");
    assert_eq!(ok.kind, ProblemKind::PreflightAnswered);
    assert_eq!(
        header(&ok, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(header(&ok, "access-control-allow-credentials"), Some("true"));
    assert_eq!(header(&ok, "access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(header(&ok, "access-control-max-age"), Some("120"));
    // Every accepted requested header is named, safelisted ones included.
    assert_eq!(
        header(&ok, "access-control-allow-headers"),
        Some("authorization, content-type")
    );
    for refused in [
        ask(("origin", "https://evil.example"), "PUT", ""),
        ask(("origin", "null"), "GET", ""),
        ask(APP, "DELETE", ""),
        ask(APP, "PUT", "x-admin"),
    ] {
        assert_eq!(refused.kind, ProblemKind::Forbidden);
        assert_eq!(header(&refused, "access-control-allow-origin"), None);
    }
}

#[test]
fn actual_requests_get_headers_only_for_allowed_origins() {
    let p = policy("allow_origins: [https://app.example.com]\nexpose_headers: [x-request-id]");
    let (r, ctx) = run(&p, "GET", &[APP]);
    assert!(r.is_none());
    let names: Vec<&str> = ctx.response_headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["vary", "access-control-allow-origin", "access-control-expose-headers"]
    );
    let (r, ctx) = run(&p, "GET", &[("origin", "https://evil.example")]);
    assert!(r.is_none(), "not refused: the browser withholds the response");
    let names: Vec<&str> = ctx.response_headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["vary"]);
    // No Origin: no CORS headers, but caches must still keep origins apart.
    let names: Vec<String> = run(&p, "GET", &[])
        .1
        .response_headers
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(names, ["vary"]);
}

#[test]
fn the_upstreams_own_cors_headers_are_removed() {
    let p = policy("allow_origins: [https://app.example.com]");
    let (mut resp, ()) = http::Response::builder()
        .header("access-control-allow-origin", "https://evil.example")
        .header("access-control-allow-credentials", "true")
        .header("content-type", "application/json")
        .body(())
        .unwrap()
        .into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    block_on(p.on_response(&mut resp, &mut ctx)).unwrap();
    assert!(resp.headers.get("access-control-allow-origin").is_none());
    assert!(resp.headers.get("access-control-allow-credentials").is_none());
    assert!(resp.headers.get("content-type").is_some());
}

#[test]
fn wildcard_answers_star_and_cannot_carry_credentials() {
    let p = policy("allow_origins: ['*']");
    let (_, ctx) = run(&p, "GET", &[("origin", "https://anyone.example")]);
    let acao = ctx
        .response_headers
        .iter()
        .find(|(n, _)| n.as_str() == "access-control-allow-origin");
    assert_eq!(acao.map(|(_, v)| v.to_str().unwrap()), Some("*"));
    let cfg: CorsConfig =
        serde_saphyr::from_str("allow_origins: ['*', 'https://x.example/path']\nallow_credentials: true\nallow_methods: ['B@D']\nmax_age_secs: 100000")
            .unwrap();
    let paths: Vec<String> = cfg.build().unwrap_err().into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "allow_origins[1]",
            "allow_credentials",
            "allow_methods[0]",
            "max_age_secs"
        ]
    );
}
