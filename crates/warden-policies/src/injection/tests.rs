#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use warden_core::{Decision, Policy, ProblemKind, Rejection, RequestCtx};

use super::{Injection, InjectionConfig};
use crate::block_on;

fn policy(yaml: &str) -> Injection {
    let cfg: InjectionConfig = serde_saphyr::from_str(yaml).unwrap();
    cfg.build().unwrap()
}

fn ctx(path: &str) -> RequestCtx {
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    ctx.path = path.into();
    ctx
}

fn rejection(d: Decision) -> Option<Rejection> {
    match d {
        Decision::Reject(r) => Some(r),
        Decision::Continue => None,
    }
}

fn head(p: &Injection, req: http::Request<()>) -> Option<Rejection> {
    let (mut parts, ()) = req.into_parts();
    let mut ctx = ctx(parts.uri.path());
    rejection(block_on(p.on_request(&mut parts, &mut ctx)).unwrap())
}

fn body(p: &Injection, content_type: &str, body: &str) -> Option<Rejection> {
    let (parts, ()) = http::Request::post("/x")
        .header("content-type", content_type)
        .body(())
        .unwrap()
        .into_parts();
    let mut ctx = ctx("/x");
    rejection(block_on(p.on_request_body(&parts, &Bytes::from(body.to_owned()), &mut ctx)).unwrap())
}

#[test]
fn query_attack_is_refused_with_its_location_and_no_value() {
    let p = policy("{}");
    let r = head(
        &p,
        http::Request::get("/s?page=2&q=%27%20OR%20%271%27%3D%271")
            .body(())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(r.kind, ProblemKind::Forbidden);
    let detail = r.detail.unwrap();
    assert!(detail.contains("sqli") && detail.contains("/query/q"), "{detail}");
    assert!(!detail.contains("OR") && !detail.contains('\''), "{detail}");
    assert!(head(&p, http::Request::get("/s?q=O%27Brien&page=2").body(()).unwrap()).is_none());
}

#[test]
fn headers_and_cookies_are_scanned_but_credentials_are_not() {
    let p = policy("{}");
    let ua = http::Request::get("/")
        .header("user-agent", "${jndi:ldap://x/a}")
        .body(())
        .unwrap();
    assert!(head(&p, ua).unwrap().detail.unwrap().contains("/header/user-agent"));
    let cookie = http::Request::get("/")
        .header("cookie", "a=1; pref=<script>alert(1)</script>")
        .body(())
        .unwrap();
    assert!(head(&p, cookie).unwrap().detail.unwrap().contains("/cookie/pref"));
    // A bearer token is not prose: never scanned.
    let auth = http::Request::get("/")
        .header("authorization", "Bearer ' OR '1'='1")
        .body(())
        .unwrap();
    assert!(head(&p, auth).is_none());
}

#[test]
fn json_leaves_and_keys_are_scanned() {
    let p = policy("{}");
    let r = body(
        &p,
        "application/json",
        r#"{"items":[{"note":"ok"},{"note":"<svg onload=alert(1)>"}]}"#,
    )
    .unwrap();
    assert!(r.detail.unwrap().contains("/body/items/1/note"));
    let r = body(&p, "application/json", r#"{"user":"admin","password":{"$ne":null}}"#).unwrap();
    assert!(r.detail.unwrap().contains("nosql"));
    assert!(
        body(
            &p,
            "application/json",
            r#"{"name":"O'Brien","bio":"select a plan from the menu"}"#
        )
        .is_none()
    );
}

#[test]
fn url_fields_get_ssrf_checks_and_other_fields_do_not() {
    let p = policy("{}");
    let r = body(
        &p,
        "application/json",
        r#"{"webhook_url":"http://169.254.169.254/latest/meta-data/"}"#,
    )
    .unwrap();
    assert!(r.detail.unwrap().contains("ssrf"));
    assert!(body(&p, "application/json", r#"{"note":"our server is 10.0.0.5"}"#).is_none());
    assert!(
        body(
            &p,
            "application/json",
            r#"{"webhook_url":"https://hooks.example.com/a"}"#
        )
        .is_none()
    );
}

#[test]
fn form_and_xml_bodies_are_scanned() {
    let p = policy("{}");
    let r = body(
        &p,
        "application/x-www-form-urlencoded",
        "name=a&cmd=x%3B+cat+%2Fetc%2Fpasswd",
    )
    .unwrap();
    assert!(r.detail.unwrap().contains("/body/cmd"));
    let xml = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    assert!(
        body(&p, "application/xml", xml)
            .unwrap()
            .detail
            .unwrap()
            .contains("xxe")
    );
    assert!(body(&p, "application/xml", r#"<?xml version="1.0"?><r><a>1 &lt; 2</a></r>"#).is_none());
}

#[test]
fn unparsable_json_is_refused_in_enforce_mode_only() {
    let r = body(&policy("{}"), "application/json", r#"{"a":1,"a":2}"#).unwrap();
    assert_eq!(r.kind, ProblemKind::BadRequest);
    assert!(body(&policy("mode: report"), "application/json", "{oops").is_none());
}

#[test]
fn report_mode_lets_the_attack_through() {
    let p = policy("mode: report");
    assert!(head(&p, http::Request::get("/s?q=%3Cscript%3E").body(()).unwrap()).is_none());
}

#[test]
fn exceptions_lift_categories_at_one_place_only() {
    let p = policy("exceptions: [{in: body, name: /items/*/code, categories: [xss]}]");
    let code = r#"{"items":[{"code":"<iframe src=x></iframe>"}]}"#;
    assert!(body(&p, "application/json", code).is_none());
    // Other categories still apply there, and XSS still applies elsewhere.
    assert!(body(&p, "application/json", r#"{"items":[{"code":"' OR '1'='1"}]}"#).is_some());
    assert!(
        body(
            &p,
            "application/json",
            r#"{"items":[{"name":"<iframe src=x></iframe>"}]}"#
        )
        .is_some()
    );
}

#[test]
fn selected_categories_and_places_limit_the_scan() {
    let p = policy("categories: [xss]\nscan: [query]");
    assert!(
        head(
            &p,
            http::Request::get("/s?q=%27%20OR%20%271%27%3D%271").body(()).unwrap()
        )
        .is_none()
    );
    assert!(head(&p, http::Request::get("/s?q=%3Cscript%3E").body(()).unwrap()).is_some());
    let ua = http::Request::get("/")
        .header("user-agent", "<script>")
        .body(())
        .unwrap();
    assert!(head(&p, ua).is_none());
    assert!(!p.needs_request_body());
}

#[test]
fn bad_config_lists_every_error() {
    let cfg: InjectionConfig = serde_saphyr::from_str(
        "level: extreme\ncategories: [sqli, rce]\nexceptions: [{in: path, name: abc}]\nskip_headers: ['bad header']",
    )
    .unwrap();
    let errs = cfg.build().unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        ["level", "categories[1]", "exceptions[0].name", "skip_headers[0]"]
    );
}

fn body_with(p: &Injection, headers: &[(&str, &str)], body: &str) -> Option<Rejection> {
    let mut b = http::Request::post("/x");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (parts, ()) = b.body(()).unwrap().into_parts();
    let mut ctx = ctx("/x");
    rejection(block_on(p.on_request_body(&parts, &Bytes::from(body.to_owned()), &mut ctx)).unwrap())
}

#[test]
fn bodies_that_cannot_be_read_are_refused_unless_allowed() {
    let p = policy("{}");
    let form = "application/x-www-form-urlencoded";
    for headers in [
        vec![("content-type", "multipart/form-data; boundary=x")],
        vec![("content-type", form), ("content-encoding", "gzip")],
        vec![("content-type", "application/x-www-form-urlencoded; charset=ibm037")],
        vec![("content-type", "application/octet-stream")],
    ] {
        let r = body_with(&p, &headers, "name=a").unwrap_or_else(|| panic!("{headers:?}"));
        assert_eq!(r.kind, ProblemKind::UnsupportedMediaType, "{headers:?}");
    }
    let utf7 = r#"<?xml version="1.0" encoding="UTF-7"?><r>+ADw-!DOCTYPE</r>"#;
    assert_eq!(
        body(&p, "application/xml", utf7).unwrap().kind,
        ProblemKind::UnsupportedMediaType
    );
    // Benign neighbours: an explicit UTF-8 charset, `identity`, and the opt-out.
    assert!(
        body_with(
            &p,
            &[("content-type", "application/json; charset=UTF-8")],
            r#"{"a":"b"}"#
        )
        .is_none()
    );
    assert!(body_with(&p, &[("content-type", form), ("content-encoding", "identity")], "a=b").is_none());
    let open = policy("unscannable_bodies: allow");
    assert!(body_with(&open, &[("content-type", "multipart/form-data; boundary=x")], "x").is_none());
}

#[test]
fn untyped_and_text_bodies_are_scanned_as_json_or_as_text() {
    let p = policy("{}");
    let r = body_with(&p, &[], r#"{"q":"' OR '1'='1"}"#).unwrap();
    assert!(r.detail.unwrap().contains("/body/q"));
    assert!(body_with(&p, &[("content-type", "text/plain")], "<script>alert(1)</script>").is_some());
    assert!(
        body_with(
            &p,
            &[("content-type", "text/plain")],
            "Dear team, O'Brien here & thanks"
        )
        .is_none()
    );
}

#[test]
fn names_are_scanned_and_structured_headers_get_lookup_checks() {
    let p = policy("{}");
    let q = http::Request::get("/s?%3Cscript%3Ealert(1)%3C%2Fscript%3E=1")
        .body(())
        .unwrap();
    assert!(head(&p, q).is_some());
    assert!(body(&p, "application/json", r#"{"name') or 1=1--": 1}"#).is_some());
    let cookie = http::Request::get("/")
        .header("cookie", "user[$ne]=x")
        .body(())
        .unwrap();
    assert!(head(&p, cookie).is_some());
    let accept = http::Request::get("/")
        .header("accept", "${jndi:ldap://x/a}")
        .body(())
        .unwrap();
    assert!(head(&p, accept).is_some());
    // user `${jndi:ldap://x/a}`, password `p`.
    let basic = http::Request::get("/")
        .header("authorization", "Basic JHtqbmRpOmxkYXA6Ly94L2F9OnA=")
        .body(())
        .unwrap();
    assert!(head(&p, basic).is_some());
    // A password full of punctuation is not an attack.
    let pw = http::Request::get("/")
        .header("authorization", "Basic YWxpY2U6UEBzcyd3MHJkOy0t")
        .body(())
        .unwrap();
    assert!(head(&p, pw).is_none());
    // An internal http URL is refused in any field, not only URL-named ones.
    assert!(body(&p, "application/json", r#"{"to":"http://169.254.169.254/latest"}"#).is_some());
    assert!(body(&p, "application/json", r#"{"to":"https://example.com/a"}"#).is_none());
}

#[test]
fn a_field_is_url_like_when_its_name_holds_a_url_fragment_in_any_case() {
    use super::fields::url_like;
    let fragments = [
        "url", "uri", "href", "link", "callback", "webhook", "redirect", "endpoint", "feed", "proxy", "src", "dest",
    ];
    for f in fragments {
        let upper = f.to_ascii_uppercase();
        for name in [
            f.to_owned(),
            format!("x_{f}"),
            format!("{upper}_to"),
            format!("my{upper}z"),
        ] {
            assert!(url_like(&name, &[]), "{name}");
        }
        // One letter short of the fragment is not it.
        assert!(!url_like(&f[..f.len() - 1], &[]), "{f}");
    }
    for name in [
        "",
        "id",
        "name",
        "email",
        "created_at",
        "note",
        "qty",
        "unit_price",
        "ur",
        "hre_f",
        "lnk",
        "é",
    ] {
        assert!(!url_like(name, &[]), "{name}");
    }
    assert!(url_like("feeD_", &[]) && url_like("éurl", &[]));
    // Names the route lists are URL fields too, compared whole and without case.
    let extra = ["target".to_owned()];
    assert!(url_like("Target", &extra));
    assert!(!url_like("targets", &extra));
}
