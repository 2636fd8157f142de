#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use warden_core::{ApiKeyVerifier, Decision, KeyOwner, KeyRefusal, Policy, RequestCtx, Services};

use super::ApiKeyConfig;
use crate::block_on;

/// Accepts `good` (consumer `alice`, group `eng`); `revoked` is revoked.
struct Stub;

impl ApiKeyVerifier for Stub {
    fn verify(&self, presented: &str, _now: i64) -> Result<KeyOwner, KeyRefusal> {
        match presented {
            "good" => Ok(KeyOwner {
                consumer: "alice".into(),
                prefix: "p".into(),
                groups: vec![Arc::from("eng")].into(),
            }),
            "revoked" => Err(KeyRefusal::Revoked),
            _ => Err(KeyRefusal::Unknown),
        }
    }

    fn is_ready(&self) -> bool {
        true
    }
}

fn config(yaml: &str) -> ApiKeyConfig {
    serde_saphyr::from_str(yaml).unwrap()
}

fn started(yaml: &str) -> super::ApiKey {
    let p = config(yaml).build().unwrap();
    p.start(&Services {
        api_keys: Some(Arc::new(Stub)),
        ..Services::default()
    });
    p
}

fn request(uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut b = http::Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn run(p: &super::ApiKey, req: &mut http::request::Parts) -> (Decision, RequestCtx) {
    let mut ctx = RequestCtx::new("r".into(), "127.0.0.1".parse().unwrap(), 1024);
    let d = block_on(p.on_request(req, &mut ctx)).unwrap();
    (d, ctx)
}

fn rejected(d: &Decision) -> (u16, &'static str) {
    match d {
        Decision::Reject(r) => (r.kind.status().as_u16(), r.code),
        Decision::Continue => panic!("expected a rejection"),
    }
}

#[test]
fn every_config_problem_is_listed() {
    let errs = config("header: \"bad header\"\nconsumer_header: x_consumer\nquery_param: \"a b\"\ngroups: [\" \"]\n")
        .build()
        .unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["header", "consumer_header", "query_param", "groups[0]"]);
    let errs = config("header: authorization\n").build().unwrap_err();
    assert!(errs[0].message.contains("manages itself"));
    let errs = config("header: x-key\nconsumer_header: x-key\n").build().unwrap_err();
    assert_eq!(errs[0].path, "consumer_header");
}

#[test]
fn a_good_key_names_the_consumer_and_is_removed() {
    let p = started("{}");
    let mut req = request("/x", &[("x-api-key", "good"), ("X_Api_Key", "smuggled")]);
    let (d, ctx) = run(&p, &mut req);
    assert!(matches!(d, Decision::Continue));
    assert_eq!(ctx.consumer.as_deref(), Some("alice"));
    assert_eq!(req.headers["x-warden-consumer"], "alice");
    assert!(!req.headers.contains_key("x-api-key"));
    assert!(!req.headers.contains_key("x_api_key"));
}

#[test]
fn refusals_are_401_and_say_nothing_about_the_key() {
    let p = started("{}");
    for (headers, code) in [
        (vec![], "api_key_missing"),
        (vec![("x-api-key", "nope")], "api_key_unknown"),
        (vec![("x-api-key", "revoked")], "api_key_revoked"),
        (vec![("x-api-key", "good"), ("x-api-key", "good")], "api_key_ambiguous"),
    ] {
        let mut req = request("/x", &headers);
        let (d, ctx) = run(&p, &mut req);
        assert_eq!(rejected(&d), (401, code));
        assert!(ctx.consumer.is_none());
        if let Decision::Reject(r) = &d {
            assert!(r.headers.iter().any(|(h, _)| h == http::header::WWW_AUTHENTICATE));
        }
    }
    // Same client-facing detail for an unknown and a revoked key.
    let detail = |key| {
        let mut req = request("/x", &[("x-api-key", key)]);
        match run(&p, &mut req).0 {
            Decision::Reject(r) => r.detail,
            Decision::Continue => None,
        }
    };
    assert_eq!(detail("nope"), detail("revoked"));
}

#[test]
fn the_query_string_is_read_only_when_allowed_and_then_stripped() {
    let header_only = started("{}");
    let mut req = request("/x?api_key=good", &[]);
    assert_eq!(rejected(&run(&header_only, &mut req).0), (401, "api_key_missing"));
    let query = started("query_param: api_key\n");
    let mut req = request("/x?a=1&api_key=good", &[]);
    assert!(matches!(run(&query, &mut req).0, Decision::Continue));
    assert_eq!(req.uri, "/x?a=1");
    let mut req = request("/x?api_key=good&api%5Fkey=other", &[]);
    assert_eq!(rejected(&run(&query, &mut req).0), (401, "api_key_ambiguous"));
}

#[test]
fn groups_anonymous_and_no_store() {
    let eng = started("groups: [eng, ops]\n");
    let mut req = request("/x", &[("x-api-key", "good")]);
    assert!(matches!(run(&eng, &mut req).0, Decision::Continue));
    let ops = started("groups: [ops]\n");
    let mut req = request("/x", &[("x-api-key", "good")]);
    assert_eq!(rejected(&run(&ops, &mut req).0), (403, "consumer_group_denied"));

    let anon = started("anonymous: true\n");
    let mut req = request("/x", &[("x-warden-consumer", "forged")]);
    let (d, ctx) = run(&anon, &mut req);
    assert!(matches!(d, Decision::Continue) && ctx.consumer.is_none());
    assert!(
        !req.headers.contains_key("x-warden-consumer"),
        "forged consumer header kept"
    );
    let mut req = request("/x", &[("x-api-key", "nope")]);
    assert_eq!(
        rejected(&run(&anon, &mut req).0).0,
        401,
        "a bad key is refused even where anonymous is allowed"
    );

    // Never started with a store: fails closed, and is not ready.
    let unstarted = config("{}").build().unwrap();
    assert!(!unstarted.is_ready());
    let mut ctx = RequestCtx::new("r".into(), "127.0.0.1".parse().unwrap(), 1024);
    let mut req = request("/x", &[("x-api-key", "good")]);
    assert!(block_on(unstarted.on_request(&mut req, &mut ctx)).is_err());
}
