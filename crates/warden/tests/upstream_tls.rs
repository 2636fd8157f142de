//! End-to-end upstream TLS: verification against a configured CA (and the
//! system roots by default), SNI, SPKI pinning inside the handshake, and a
//! client certificate for upstreams that require mTLS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use warden_testkit::pki::{TestCa, server_config};
use warden_testkit::{MockUpstream, TestGateway, get};

fn config(up: &MockUpstream, protocol: &str, tls: &str) -> String {
    format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\n    protocol: {protocol}\n    retries: {{ attempts: 0 }}\n    timeouts: {{ first_byte_ms: 5000 }}\n    tls:\n{tls}\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n",
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_upstream_is_reached_over_tls_with_http1_and_http2() {
    let mut ca = TestCa::new("up");
    // Default SNI/verification name is the target host: an IP SAN here.
    let cert = ca.server("upstream", &["127.0.0.1"]);
    let up = MockUpstream::start_tls("a", server_config(&cert, None)).await;
    for protocol in ["http1", "http2"] {
        let gw = TestGateway::start(&config(&up, protocol, &format!("      ca: \"{}\"", ca.ca_str()))).await;
        let r = get(&gw.url("/hello")).await;
        assert_eq!(r.status, 200, "{protocol}: {}", r.text());
        let want = if protocol == "http2" { "HTTP/2.0" } else { "HTTP/1.1" };
        assert_eq!(r.json()["version"], want);
    }
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_name_sets_sni_and_the_name_checked() {
    let mut ca = TestCa::new("sni-up");
    let cert = ca.server("upstream", &["orders.internal"]);
    let up = MockUpstream::start_tls("a", server_config(&cert, None)).await;
    let tls = format!("      ca: \"{}\"\n      server_name: orders.internal", ca.ca_str());
    let gw = TestGateway::start(&config(&up, "http1", &tls)).await;
    assert_eq!(get(&gw.url("/")).await.status, 200);
    // Without server_name the IP target does not match the certificate: 502.
    let gw = TestGateway::start(&config(&up, "http1", &format!("      ca: \"{}\"", ca.ca_str()))).await;
    let r = get(&gw.url("/")).await;
    assert_eq!(r.status, 502);
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_upstream_fails_closed_with_a_502_problem() {
    let mut ca = TestCa::new("untrusted");
    let cert = ca.server("upstream", &["127.0.0.1"]);
    let up = MockUpstream::start_tls("a", server_config(&cert, None)).await;
    // No `ca`: the system roots, which do not include the test CA.
    for protocol in ["http1", "http2"] {
        let gw = TestGateway::start(&config(&up, protocol, "      pins: []")).await;
        let r = get(&gw.url("/")).await;
        assert_eq!(r.status, 502, "{protocol}");
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert!(!r.text().contains("127.0.0.1"), "no upstream details: {}", r.text());
    }
    assert_eq!(up.hits(), 0);
    assert!(up.connections() >= 2, "the gateway did try to connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_upstream_presenting_another_key_gets_502_and_no_request_bytes() {
    let mut ca = TestCa::new("pins");
    let served = ca.server("served", &["127.0.0.1"]);
    let expected = ca.server("expected", &["127.0.0.1"]);
    let pin_of = |c: &warden_testkit::pki::CertFiles| warden_tls::spki_pin(&c.load().0[0]).unwrap();
    let up = MockUpstream::start_tls("a", server_config(&served, None)).await;
    for protocol in ["http1", "http2"] {
        // Same CA, valid chain: only the pin differs.
        let tls = format!(
            "      ca: \"{}\"\n      pins: [\"sha256/{}\"]",
            ca.ca_str(),
            pin_of(&expected)
        );
        let gw = TestGateway::start(&config(&up, protocol, &tls)).await;
        let r = get(&gw.url("/secret")).await;
        assert_eq!(r.status, 502, "{protocol}");
        assert_eq!(up.hits(), 0, "{protocol}: no request may reach a mispinned upstream");
    }
    // Any-of: the right pin among others passes.
    let tls = format!(
        "      ca: \"{}\"\n      pins: [\"{}\", \"{}\"]",
        ca.ca_str(),
        pin_of(&expected),
        pin_of(&served)
    );
    let gw = TestGateway::start(&config(&up, "http1", &tls)).await;
    assert_eq!(get(&gw.url("/secret")).await.status, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_mtls_presents_the_configured_client_certificate() {
    let mut ca = TestCa::new("up-mtls");
    let cert = ca.server("upstream", &["127.0.0.1"]);
    let client = ca.client("gateway", "gateway", &["spiffe://example.org/gateway"]);
    let up = MockUpstream::start_tls("a", server_config(&cert, Some(&ca))).await;
    let base = format!("      ca: \"{}\"", ca.ca_str());
    let gw = TestGateway::start(&config(&up, "http1", &base)).await;
    // TLS 1.3 reports a missing client certificate after the client's side
    // of the handshake is done: usually the alert arrives at once (502); if
    // the connection dies without it, the first-byte timeout answers (504).
    let status = get(&gw.url("/")).await.status.as_u16();
    assert!(matches!(status, 502 | 504), "no client certificate: {status}");
    assert_eq!(up.hits(), 0);
    let with_cert = format!(
        "{base}\n      client_cert: {{ cert: \"{}\", key: \"{}\" }}",
        client.cert_str(),
        client.key_str()
    );
    for protocol in ["http1", "http2"] {
        let gw = TestGateway::start(&config(&up, protocol, &with_cert)).await;
        assert_eq!(get(&gw.url("/")).await.status, 200, "{protocol}");
    }
    assert_eq!(up.hits(), 2);
}

#[test]
fn bad_upstream_tls_settings_are_all_listed() {
    let yaml = "listeners: [{ name: a, bind: \"127.0.0.1:0\", plain_http: serve }]\nservices:\n  - name: api\n    targets: [\"127.0.0.1:1\"]\n    tls:\n      ca: /nonexistent/ca.pem\n      pins: [\"not-base64!\"]\n      server_name: \"bad name\"\n      client_cert: { cert: /nonexistent/c.pem, key: /nonexistent/k.pem }\nroutes: []\n";
    let err = warden_config::load_str(yaml).unwrap_err().to_string();
    for want in [
        "services[0].tls.ca: cannot read `/nonexistent/ca.pem`",
        "services[0].tls.pins[0]",
        "services[0].tls.server_name",
        "services[0].tls.client_cert.cert: cannot read",
        "services[0].tls.client_cert.key: cannot read",
    ] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_upstream_client_certificate_is_used_without_restart() {
    let mut ca = TestCa::new("rotate");
    let cert = ca.server("upstream", &["127.0.0.1"]);
    let up = MockUpstream::start_tls("a", server_config(&cert, Some(&ca))).await;
    // The gateway starts with a client certificate from a CA the upstream does not trust.
    let mut other = TestCa::new("rotate-other");
    let stale = other.client("gateway", "gateway", &[]);
    let tls = format!(
        "      ca: \"{}\"\n      client_cert: {{ cert: \"{}\", key: \"{}\" }}",
        ca.ca_str(),
        stale.cert_str(),
        stale.key_str()
    );
    let gw = TestGateway::start_with(&config(&up, "http1", &tls), Some(std::time::Duration::from_millis(100))).await;
    assert_eq!(get(&gw.url("/")).await.status, 502);
    // Renewal in place (cert-manager style): same paths, new contents.
    let fresh = ca.client("gateway-new", "gateway", &[]);
    std::fs::copy(&fresh.key, &stale.key).unwrap();
    std::fs::copy(&fresh.cert, &stale.cert).unwrap();
    let mut status = 0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        status = get(&gw.url("/")).await.status.as_u16();
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "the renewed client certificate was never used");
}
