#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use warden_core::{Decision, Policy, RequestCtx};

use super::{Csrf, CsrfConfig};
use crate::block_on;
use crate::origin::normalise_origin;

fn policy(yaml: &str) -> Csrf {
    let cfg: CsrfConfig = serde_saphyr::from_str(yaml).unwrap();
    cfg.build().unwrap()
}

fn refused(p: &Csrf, method: &str, headers: &[(&str, &str)]) -> bool {
    let mut b = http::Request::builder().method(method).uri("/account/email");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    ctx.secure = true;
    matches!(
        block_on(p.on_request(&mut parts, &mut ctx)).unwrap(),
        Decision::Reject(_)
    )
}

const SESSION: (&str, &str) = ("cookie", "session=abc");

#[test]
fn cross_site_unsafe_requests_with_the_session_cookie_are_refused() {
    let p = policy("allow_origins: [https://app.example.com]");
    assert!(refused(&p, "POST", &[SESSION, ("origin", "https://evil.example")]));
    assert!(refused(&p, "DELETE", &[SESSION, ("origin", "null")]));
    assert!(refused(
        &p,
        "POST",
        &[SESSION, ("referer", "https://evil.example/app.example.com")]
    ));
    assert!(refused(&p, "PUT", &[SESSION]), "no Origin and no Referer");
    // The benign look-alikes.
    assert!(!refused(&p, "POST", &[SESSION, ("origin", "https://app.example.com")]));
    assert!(!refused(
        &p,
        "POST",
        &[SESSION, ("origin", "HTTPS://APP.example.com:443")]
    ));
    assert!(!refused(
        &p,
        "POST",
        &[SESSION, ("referer", "https://app.example.com/settings?tab=1")]
    ));
    assert!(!refused(&p, "GET", &[SESSION, ("origin", "https://evil.example")]));
    assert!(!refused(
        &p,
        "POST",
        &[("origin", "https://evil.example"), ("authorization", "Bearer t")]
    ));
}

#[test]
fn without_a_list_only_the_gateways_own_origin_passes() {
    let p = policy("{}");
    let host = ("host", "api.example.com");
    assert!(!refused(
        &p,
        "POST",
        &[SESSION, host, ("origin", "https://api.example.com")]
    ));
    assert!(
        refused(&p, "POST", &[SESSION, host, ("origin", "http://api.example.com")]),
        "scheme differs"
    );
    assert!(refused(
        &p,
        "POST",
        &[SESSION, host, ("origin", "https://api.example.com.evil.example")]
    ));
}

#[test]
fn named_session_cookies_and_missing_origin_opt_in() {
    let p = policy("allow_origins: [https://app.example.com]\nsession_cookies: [sid]\nallow_missing_origin: true");
    assert!(!refused(
        &p,
        "POST",
        &[("cookie", "theme=dark"), ("origin", "https://evil.example")]
    ));
    assert!(refused(
        &p,
        "POST",
        &[("cookie", "theme=dark; sid=1"), ("origin", "https://evil.example")]
    ));
    assert!(!refused(&p, "POST", &[("cookie", "sid=1")]));
    // A non-ASCII cookie beside the session cookie does not hide it.
    let mixed = http::HeaderValue::from_bytes("pref=caf\u{e9}; sid=1".as_bytes()).unwrap();
    let mut b = http::Request::post("/x").header("origin", "https://evil.example");
    b = b.header("cookie", mixed);
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    assert!(matches!(
        block_on(p.on_request(&mut parts, &mut ctx)).unwrap(),
        Decision::Reject(_)
    ));
    // An unreadable Referer is not a missing one.
    let odd = http::HeaderValue::from_bytes(b"https://app.example.com/\xff").unwrap();
    let (mut parts, ()) = http::Request::post("/x")
        .header("cookie", "sid=1")
        .header("referer", odd)
        .body(())
        .unwrap()
        .into_parts();
    assert!(matches!(
        block_on(p.on_request(&mut parts, &mut ctx)).unwrap(),
        Decision::Reject(_)
    ));
}

#[test]
fn double_submit_needs_the_header_to_repeat_the_cookie() {
    let p = policy("allow_origins: [https://app.example.com]\ndouble_submit: { cookie: csrf, header: x-csrf-token }");
    let origin = ("origin", "https://app.example.com");
    assert!(!refused(
        &p,
        "POST",
        &[("cookie", "session=a; csrf=t0k3n"), origin, ("x-csrf-token", "t0k3n")]
    ));
    assert!(refused(
        &p,
        "POST",
        &[("cookie", "session=a; csrf=t0k3n"), origin, ("x-csrf-token", "t0k3m")]
    ));
    assert!(refused(&p, "POST", &[("cookie", "session=a; csrf=t0k3n"), origin]));
    assert!(refused(
        &p,
        "POST",
        &[("cookie", "session=a; csrf="), origin, ("x-csrf-token", "")]
    ));
}

#[test]
fn origins_are_normalised_and_bad_ones_refused_at_load() {
    assert_eq!(
        normalise_origin("https://App.Example.com:443").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        normalise_origin("http://[::1]:8080").as_deref(),
        Some("http://[::1]:8080")
    );
    for bad in [
        "app.example.com",
        "https://*.example.com",
        "https://a.example/path",
        "null",
        "ftp://x",
    ] {
        assert_eq!(normalise_origin(bad), None, "{bad}");
    }
    let cfg: CsrfConfig = serde_saphyr::from_str(
        "allow_origins: [x, https://ok.example]\ndouble_submit: { cookie: 'a b', header: 'x y' }",
    )
    .unwrap();
    let paths: Vec<String> = cfg.build().unwrap_err().into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        ["allow_origins[0]", "double_submit.cookie", "double_submit.header"]
    );
}
