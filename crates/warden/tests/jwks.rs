//! End-to-end JWKS against a real local key-set server: readiness waits for
//! the first fetch, a rotated-in `kid` is fetched once with no failed request,
//! cached keys keep working while the server is down (within the grace
//! period, and not beyond), and a burst of unknown `kid`s is rate-limited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use warden_testkit::jwt::{AUDIENCE, ISSUER, JwksServer, TestIssuer, jwk};
use warden_testkit::{MockUpstream, TestGateway, http1, send};

fn yaml(up: &MockUpstream, jwks: &JwksServer, extra: &str) -> String {
    format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: orders\n    path: {{ prefix: /orders }}\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - issuer: {ISSUER}\n            audiences: [{AUDIENCE}]\n            algorithms: [RS256, ES256]\n            jwks: {{ url: \"{}\"{extra} }}\n",
        up.addr,
        jwks.url()
    )
}

async fn status(gw: &TestGateway, token: &str) -> u16 {
    let req = Request::get(gw.url("/orders/1"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::<Bytes>::default())
        .unwrap();
    send(&http1(), req).await.status.as_u16()
}

async fn wait_ready(gw: &TestGateway) {
    for _ in 0..200 {
        if gw.admin_get("/readyz").await.status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_fetch() {
    let iss = TestIssuer::new();
    let jwks = JwksServer::start(vec![jwk(&iss.rsa, Algorithm::RS256, "rsa-1")]).await;
    jwks.set_up(false);
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&yaml(&up, &jwks, "")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = gw.admin_get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.text());
    jwks.set_up(true);
    wait_ready(&gw).await;
    assert_eq!(status(&gw, &iss.rs256(&iss.claims())).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_in_kid_is_fetched_once_with_no_failed_request() {
    let iss = TestIssuer::new();
    let jwks = JwksServer::start(vec![jwk(&iss.rsa, Algorithm::RS256, "rsa-1")]).await;
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&yaml(&up, &jwks, ", refetch_interval_secs: 1")).await;
    wait_ready(&gw).await;
    assert_eq!(status(&gw, &iss.rs256(&iss.claims())).await, 200);
    let before = jwks.hits();
    // The provider rotates in an EC key; the very first token signed with it passes.
    jwks.set_keys(vec![
        jwk(&iss.rsa, Algorithm::RS256, "rsa-1"),
        jwk(&iss.ec, Algorithm::ES256, "ec-2"),
    ]);
    let token = iss.sign(Algorithm::ES256, &iss.ec, Some("ec-2"), &iss.claims());
    for _ in 0..5 {
        assert_eq!(status(&gw, &token).await, 200);
    }
    assert_eq!(jwks.hits() - before, 1, "the new kid is fetched exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_unknown_kids_causes_at_most_one_fetch_per_interval() {
    let iss = TestIssuer::new();
    let jwks = JwksServer::start(vec![jwk(&iss.rsa, Algorithm::RS256, "rsa-1")]).await;
    let up = MockUpstream::start("a").await;
    let gw = std::sync::Arc::new(TestGateway::start(&yaml(&up, &jwks, ", refetch_interval_secs: 60")).await);
    wait_ready(&gw).await;
    let before = jwks.hits();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let token = iss.sign(
            Algorithm::RS256,
            &iss.attacker_rsa,
            Some(&format!("random-{i}")),
            &iss.claims(),
        );
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move { status(&gw, &token).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    assert!(
        jwks.hits() - before <= 1,
        "{} fetches for 50 unknown kids",
        jwks.hits() - before
    );
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_serve_while_the_provider_is_down_within_the_grace_period_only() {
    let iss = TestIssuer::new();
    let jwks = JwksServer::start(vec![jwk(&iss.rsa, Algorithm::RS256, "rsa-1")]).await;
    let up = MockUpstream::start("a").await;
    // Keys go stale after 1 s; within grace the long-grace gateway keeps them,
    // the short-grace one drops them 1 s later.
    let long = TestGateway::start(&yaml(
        &up,
        &jwks,
        ", min_cache_secs: 1, max_cache_secs: 1, stale_grace_secs: 3600",
    ))
    .await;
    let short = TestGateway::start(&yaml(
        &up,
        &jwks,
        ", min_cache_secs: 1, max_cache_secs: 1, stale_grace_secs: 1",
    ))
    .await;
    wait_ready(&long).await;
    wait_ready(&short).await;
    let token = iss.rs256(&iss.claims());
    assert_eq!(status(&long, &token).await, 200);
    assert_eq!(status(&short, &token).await, 200);
    jwks.set_up(false);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(jwks.hits() >= 4, "refreshes were attempted while down");
    assert_eq!(status(&long, &token).await, 200, "within the grace period");
    assert_eq!(status(&short, &token).await, 401, "past the grace period");
    // Back up: the short-grace gateway recovers by itself.
    jwks.set_up(true);
    let mut recovered = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if status(&short, &token).await == 200 {
            recovered = true;
            break;
        }
    }
    assert!(recovered);
}

fn discovery_yaml(up: &MockUpstream, issuer: &str) -> String {
    format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: orders\n    path: {{ prefix: /orders }}\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - issuer: \"{issuer}\"\n            discovery: true\n            audiences: [{AUDIENCE}]\n            algorithms: [RS256]\n",
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_url_is_enough_with_oidc_discovery() {
    let iss = TestIssuer::new();
    let idp = JwksServer::start(vec![jwk(&iss.rsa, Algorithm::RS256, "rsa-1")]).await;
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&discovery_yaml(&up, &idp.base())).await;
    wait_ready(&gw).await;
    let mut claims = iss.claims();
    claims["iss"] = serde_json::json!(idp.base());
    assert_eq!(status(&gw, &iss.rs256(&claims)).await, 200);
    // A token from the default test issuer is not this issuer's.
    assert_eq!(status(&gw, &iss.rs256(&iss.claims())).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_naming_another_issuer_is_not_trusted() {
    let iss = TestIssuer::new();
    let idp = JwksServer::start(vec![jwk(&iss.rsa, Algorithm::RS256, "rsa-1")]).await;
    idp.set_discovery_issuer("https://evil.test");
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&discovery_yaml(&up, &idp.base())).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(gw.admin_get("/readyz").await.status, 503);
    let mut claims = iss.claims();
    claims["iss"] = serde_json::json!(idp.base());
    assert_eq!(status(&gw, &iss.rs256(&claims)).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_token_stops_working_when_its_key_leaves_the_set() {
    let iss = TestIssuer::new();
    let jwks = JwksServer::start(vec![jwk(&iss.rsa, Algorithm::RS256, "rsa-1")]).await;
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&yaml(&up, &jwks, ", refetch_interval_secs: 1")).await;
    wait_ready(&gw).await;
    let old = iss.rs256(&iss.claims());
    assert_eq!(status(&gw, &old).await, 200);
    assert_eq!(status(&gw, &old).await, 200, "served from the cache");
    // The provider drops rsa-1 and publishes ec-2; the first ec-2 token makes
    // the gateway refetch, which replaces the key set.
    jwks.set_keys(vec![jwk(&iss.ec, Algorithm::ES256, "ec-2")]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = iss.sign(Algorithm::ES256, &iss.ec, Some("ec-2"), &iss.claims());
    assert_eq!(status(&gw, &new).await, 200);
    assert_eq!(
        status(&gw, &old).await,
        401,
        "a cached verification must not outlive its key"
    );
}
