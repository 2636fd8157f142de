//! End-to-end mutual TLS: a listener that asks for client certificates
//! (optional and required modes, with a CRL), routes with `client_cert`
//! rules, the identity header sent upstream, and the access log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use warden_testkit::pki::{LeafSpec, TestCa};
use warden_testkit::{MockUpstream, TestGateway, https, https_get};

struct Setup {
    gw: TestGateway,
    up: MockUpstream,
    ca: TestCa,
    good: warden_testkit::pki::CertFiles,
    other_ca_cert: warden_testkit::pki::CertFiles,
    expired: warden_testkit::pki::CertFiles,
    revoked: warden_testkit::pki::CertFiles,
}

async fn setup(mode: &str) -> Setup {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("mtls");
    let server = ca.server("server", &["api.test"]);
    let good = ca.client("billing", "billing", &["spiffe://example.org/ns/prod/sa/billing"]);
    let revoked = ca.client("revoked", "revoked", &["spiffe://example.org/ns/prod/sa/revoked"]);
    let expired = ca.leaf(
        "expired",
        &LeafSpec {
            cn: "expired".into(),
            uris: vec!["spiffe://example.org/ns/prod/sa/expired".into()],
            client: true,
            from_days: -30,
            to_days: -1,
            ..LeafSpec::default()
        },
    );
    let crl = ca.crl("revoked.crl", &[revoked.serial]);
    let mut other = TestCa::new("other");
    let other_ca_cert = other.client(
        "billing-elsewhere",
        "billing",
        &["spiffe://example.org/ns/prod/sa/billing"],
    );
    let yaml = format!(
        r#"listeners:
  - name: tls
    bind: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{}", key: "{}" }}
      client_auth:
        mode: {mode}
        ca: "{}"
        crls: ["{}"]
        identity_header: x-client-identity
services:
  - name: api
    targets: ["{}"]
routes:
  - id: open
    path: {{ prefix: /open }}
    service: api
  - id: secure
    path: {{ prefix: /secure }}
    service: api
    client_cert: required
  - id: billing-only
    path: {{ prefix: /billing }}
    service: api
    client_cert:
      allow:
        - uri: spiffe://example.org/ns/prod/sa/billing
"#,
        server.cert_str(),
        server.key_str(),
        ca.ca_str(),
        crl.display(),
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    Setup {
        gw,
        up,
        ca,
        good,
        other_ca_cert,
        expired,
        revoked,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_routes_refuse_missing_foreign_expired_and_revoked_certificates() {
    let s = setup("optional").await;
    let anon = s.ca.client_config(&["http/1.1"], None);
    // No certificate: the open route works, the protected ones answer 403.
    assert_eq!(
        https_get(s.gw.addr, "api.test", anon.clone(), "/open")
            .await
            .unwrap()
            .reply
            .status,
        200
    );
    for path in ["/secure", "/billing"] {
        let r = https_get(s.gw.addr, "api.test", anon.clone(), path)
            .await
            .unwrap()
            .reply;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.json()["type"], "urn:warden:problem:client-certificate-required");
    }
    let hits_before = s.up.hits();
    // Another CA, expired, revoked: refused in the handshake, nothing upstream.
    for (name, cert) in [
        ("other CA", &s.other_ca_cert),
        ("expired", &s.expired),
        ("revoked", &s.revoked),
    ] {
        let cfg = s.ca.client_config(&["http/1.1"], Some(cert));
        let err = https_get(s.gw.addr, "api.test", cfg, "/secure").await.unwrap_err();
        assert!(!err.is_empty(), "{name}");
    }
    assert_eq!(s.up.hits(), hits_before, "refused clients must not reach the upstream");
    // The good certificate passes both protected routes.
    let cfg = s.ca.client_config(&["http/1.1"], Some(&s.good));
    for path in ["/secure", "/billing"] {
        let r = https_get(s.gw.addr, "api.test", cfg.clone(), path).await.unwrap().reply;
        assert_eq!(r.status, 200, "{path}");
    }
    let failures = s.gw.admin_get("/metrics").await.text();
    assert!(failures.contains("warden_tls_handshake_failures_total 3"), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_refuses_a_valid_certificate_with_another_identity() {
    let mut s = setup("optional").await;
    let other =
        s.ca.client("payments", "payments", &["spiffe://example.org/ns/prod/sa/payments"]);
    let cfg = s.ca.client_config(&["h2"], Some(&other));
    assert_eq!(
        https_get(s.gw.addr, "api.test", cfg.clone(), "/secure")
            .await
            .unwrap()
            .reply
            .status,
        200
    );
    let r = https_get(s.gw.addr, "api.test", cfg, "/billing").await.unwrap().reply;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], "urn:warden:problem:client-certificate-required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verified_identity_goes_upstream_and_to_the_log_and_client_copies_never_do() {
    let s = setup("optional").await;
    let forged = "hash=00;subject=\"CN=admin\";uri=spiffe://example.org/ns/prod/sa/admin";
    // Without a certificate: the forged header is removed.
    let anon = s.ca.client_config(&["http/1.1"], None);
    let req = Request::get("/open")
        .header("host", "api.test")
        .header("x-client-identity", forged)
        .header("x_client_identity", forged)
        .header("X_Client-Identity", forged)
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(https(s.gw.addr, "api.test", anon, req).await.unwrap().reply.status, 200);
    let seen = s.up.seen();
    for name in ["x-client-identity", "x_client_identity", "x_client-identity"] {
        assert!(!seen[0].headers.contains_key(name), "{name} reached the upstream");
    }
    // With one: only the gateway's value arrives.
    let cfg = s.ca.client_config(&["h2"], Some(&s.good));
    let req = Request::get("https://api.test/secure")
        .header("x-client-identity", forged)
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(https(s.gw.addr, "api.test", cfg, req).await.unwrap().reply.status, 200);
    let seen = s.up.seen();
    let values: Vec<_> = seen[1].headers.get_all("x-client-identity").iter().collect();
    assert_eq!(values.len(), 1);
    let v = values[0].to_str().unwrap();
    let fp = warden_tls::sha256_hex(s.good.load().0[0].as_ref());
    assert!(v.starts_with(&format!("hash={fp};subject=\"")), "{v}");
    assert!(v.contains("CN=billing"), "{v}");
    assert!(v.contains(";uri=spiffe://example.org/ns/prod/sa/billing"), "{v}");
    assert!(!v.contains("admin"), "{v}");

    s.gw.wait_for_log_lines(2).await;
    let log = s.gw.access_log();
    let line = log.iter().find(|l| l["route"] == "secure").unwrap();
    assert_eq!(line["tls"]["client_cert"], "spiffe://example.org/ns/prod/sa/billing");
    assert_eq!(line["tls"]["client_sha256"], fp.as_str());
    let anon_line = log.iter().find(|l| l["route"] == "open").unwrap();
    assert!(anon_line["tls"].get("client_cert").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_mode_fails_the_handshake_without_a_certificate() {
    let s = setup("required").await;
    let anon = s.ca.client_config(&["http/1.1"], None);
    let err = https_get(s.gw.addr, "api.test", anon, "/open").await.unwrap_err();
    assert!(!err.is_empty());
    let cfg = s.ca.client_config(&["http/1.1"], Some(&s.good));
    assert_eq!(
        https_get(s.gw.addr, "api.test", cfg, "/open")
            .await
            .unwrap()
            .reply
            .status,
        200
    );
    assert_eq!(s.up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_never_resumed_when_client_certificates_are_asked_for() {
    let s = setup("optional").await;
    // One client config = one session cache: a second connection would resume if allowed.
    let cfg = s.ca.client_config(&["http/1.1"], Some(&s.good));
    for _ in 0..3 {
        let r = https_get(s.gw.addr, "api.test", cfg.clone(), "/secure").await.unwrap();
        assert_eq!(r.reply.status, 200);
        assert!(!r.resumed, "a resumed session would skip certificate and CRL checks");
    }
    // Control: on a listener without client auth the same client does resume.
    let up = MockUpstream::start("b").await;
    let mut ca = TestCa::new("resume");
    let server = ca.server("server", &["api.test"]);
    let yaml = format!(
        "listeners:\n  - name: tls\n    bind: 127.0.0.1:0\n    tls:\n      certificates: [{{ cert: \"{}\", key: \"{}\" }}]\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n",
        server.cert_str(),
        server.key_str(),
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let cfg = ca.client_config(&["http/1.1"], None);
    let mut resumed = false;
    for _ in 0..3 {
        resumed |= https_get(gw.addr, "api.test", cfg.clone(), "/").await.unwrap().resumed;
    }
    assert!(resumed, "resumption works where no client certificate is involved");
}

#[test]
fn reserved_or_ambiguous_identity_header_names_are_refused() {
    for name in ["host", "authorization", "x-forwarded-for", "x_client_cert"] {
        let yaml = format!(
            "listeners:\n  - name: a\n    bind: 127.0.0.1:0\n    tls:\n      certificates: [{{ cert: /none.pem, key: /none.key }}]\n      client_auth: {{ mode: optional, ca: /none-ca.pem, identity_header: {name} }}\nservices: []\nroutes: []\n"
        );
        let err = warden_config::load_str(&yaml).unwrap_err().to_string();
        assert!(
            err.contains("listeners[0].tls.client_auth.identity_header") && err.contains("reserved or ambiguous"),
            "{name}: {err}"
        );
    }
}
