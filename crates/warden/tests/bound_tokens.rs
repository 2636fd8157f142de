//! Certificate-bound access tokens (RFC 8705) over real mTLS, anonymous
//! access where a route allows it, and the client certificate as consumer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use serde_json::json;
use warden_testkit::jwt::TestIssuer;
use warden_testkit::pki::{CertFiles, TestCa};
use warden_testkit::{MockUpstream, TestGateway, https, https_get};

struct Setup {
    gw: TestGateway,
    ca: TestCa,
    iss: TestIssuer,
    alice: CertFiles,
    other: CertFiles,
}

async fn setup() -> Setup {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("bound");
    let server = ca.server("server", &["api.test"]);
    let alice = ca.client("alice", "alice", &["spiffe://example.org/alice"]);
    let other = ca.client("other", "other", &["spiffe://example.org/other"]);
    let iss = TestIssuer::new();
    let yaml = format!(
        "listeners:\n  - name: tls\n    bind: 127.0.0.1:0\n    tls:\n      certificates: [{{ cert: \"{}\", key: \"{}\" }}]\n      client_auth: {{ mode: optional, ca: \"{}\" }}\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: bound\n    path: {{ prefix: /bound }}\n    service: api\n    policies:\n{}  - id: open\n    path: {{ prefix: /open }}\n    service: api\n    policies:\n{}  - id: certs\n    path: {{ prefix: /certs }}\n    service: api\n    client_cert: required\n",
        server.cert_str(),
        server.key_str(),
        ca.ca_str(),
        up.addr,
        iss.policy_yaml("        require_certificate_bound: true\n"),
        iss.policy_yaml("        anonymous: true\n"),
    );
    Setup {
        gw: TestGateway::start(&yaml).await,
        ca,
        iss,
        alice,
        other,
    }
}

fn thumbprint(c: &CertFiles) -> String {
    let der = c.load().0[0].clone();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

async fn status(s: &Setup, path: &str, cert: Option<&CertFiles>, token: Option<&str>) -> u16 {
    let mut req = http::Request::get(path).header("host", "api.test");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let cfg = s.ca.client_config(&["http/1.1"], cert);
    let req = req.body(http_body_util::Full::<bytes::Bytes>::default()).unwrap();
    https(s.gw.addr, "api.test", cfg, req)
        .await
        .unwrap()
        .reply
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_bound_token_works_only_over_its_certificate() {
    let s = setup().await;
    let mut claims = s.iss.claims();
    claims["cnf"] = json!({ "x5t#S256": thumbprint(&s.alice) });
    let bound = s.iss.rs256(&claims);
    assert_eq!(status(&s, "/bound/1", Some(&s.alice), Some(&bound)).await, 200);
    assert_eq!(
        status(&s, "/bound/1", Some(&s.other), Some(&bound)).await,
        401,
        "another client certificate"
    );
    assert_eq!(
        status(&s, "/bound/1", None, Some(&bound)).await,
        401,
        "no client certificate"
    );
    // The route takes bound tokens only.
    let unbound = s.iss.rs256(&s.iss.claims());
    assert_eq!(status(&s, "/bound/1", Some(&s.alice), Some(&unbound)).await, 401);
    // A bound token is checked on every route, from the cache too.
    assert_eq!(status(&s, "/open/1", Some(&s.other), Some(&bound)).await, 401);
    assert_eq!(status(&s, "/open/1", Some(&s.alice), Some(&bound)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_bound_tokens_are_refused_until_proofs_are_checked() {
    let s = setup().await;
    let mut claims = s.iss.claims();
    claims["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
    assert_eq!(
        status(&s, "/open/1", Some(&s.alice), Some(&s.iss.rs256(&claims))).await,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_routes_admit_requests_without_tokens_but_not_bad_tokens() {
    let s = setup().await;
    assert_eq!(status(&s, "/open/1", None, None).await, 200);
    assert_eq!(status(&s, "/open/1", None, Some("garbage")).await, 401);
    assert_eq!(status(&s, "/bound/1", None, None).await, 401, "not anonymous elsewhere");
    s.gw.wait_for_log_lines(3).await;
    assert!(s.gw.access_log()[0]["consumer"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_certificate_names_the_consumer_on_client_cert_routes() {
    let s = setup().await;
    let cfg = s.ca.client_config(&["http/1.1"], Some(&s.alice));
    assert_eq!(
        https_get(s.gw.addr, "api.test", cfg, "/certs/1")
            .await
            .unwrap()
            .reply
            .status,
        200
    );
    s.gw.wait_for_log_lines(1).await;
    assert_eq!(s.gw.access_log()[0]["consumer"], "spiffe://example.org/alice");
}
