//! End-to-end TLS: real rustls clients (and hand-built ClientHellos for the
//! protocol versions rustls will not speak) against TLS listeners — versions,
//! post-quantum and classical key exchange, ALPN, SNI, certificate reload,
//! HSTS, and the plain-HTTP refuse/redirect modes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rustls::NamedGroup;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_testkit::pki::{TestCa, client_config_with};
use warden_testkit::{MockUpstream, TestGateway, get, https_get};

fn tls_config(listener_tls: &str, up: &MockUpstream) -> String {
    format!(
        "listeners:\n  - name: tls\n    bind: 127.0.0.1:0\n    tls:\n{listener_tls}\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n",
        up.addr
    )
}

fn certs_yaml(pairs: &[&warden_testkit::pki::CertFiles]) -> String {
    let mut out = String::from("      certificates:\n");
    for c in pairs {
        out.push_str(&format!(
            "        - {{ cert: \"{}\", key: \"{}\" }}\n",
            c.cert_str(),
            c.key_str()
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_negotiates_x25519mlkem768_and_serves_h2_and_http1_with_hsts() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("pq");
    let server = ca.server("server", &["api.test"]);
    let gw = TestGateway::start(&tls_config(&certs_yaml(&[&server]), &up)).await;

    let r = https_get(gw.addr, "api.test", ca.client_config(&["h2", "http/1.1"], None), "/pq")
        .await
        .unwrap();
    assert_eq!(r.reply.status, 200);
    assert_eq!(r.version, Some(rustls::ProtocolVersion::TLSv1_3));
    assert_eq!(r.group, Some(NamedGroup::X25519MLKEM768));
    assert_eq!(r.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(r.http, http::Version::HTTP_2);
    assert_eq!(
        r.reply.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let seen = up.seen();
    assert_eq!(seen[0].headers["x-forwarded-proto"], "https");

    let r = https_get(gw.addr, "api.test", ca.client_config(&["http/1.1"], None), "/h1")
        .await
        .unwrap();
    assert_eq!(r.reply.status, 200);
    assert_eq!(r.http, http::Version::HTTP_11);
    assert!(r.reply.headers.contains_key("strict-transport-security"));

    gw.wait_for_log_lines(2).await;
    let log = gw.access_log();
    let tls = &log[0]["tls"];
    assert_eq!(tls["version"], "TLSv1.3");
    assert_eq!(tls["group"], "X25519MLKEM768");
    assert_eq!(tls["post_quantum"], true);
    assert_eq!(tls["sni"], "api.test");
    let metrics = gw.admin_get("/metrics").await.text();
    assert!(
        metrics.contains("warden_tls_handshakes_total{version=\"TLSv1.3\",group=\"X25519MLKEM768\",post_quantum=\"true\",client_cert=\"false\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_only_x25519_still_connects_classically() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("classic");
    let server = ca.server("server", &["api.test"]);
    let gw = TestGateway::start(&tls_config(&certs_yaml(&[&server]), &up)).await;
    let cfg = client_config_with(
        &ca,
        &["http/1.1"],
        None,
        Some(vec![rustls::crypto::aws_lc_rs::kx_group::X25519]),
    );
    let r = https_get(gw.addr, "api.test", cfg, "/").await.unwrap();
    assert_eq!(r.reply.status, 200);
    assert_eq!(r.group, Some(NamedGroup::X25519));
    gw.wait_for_log_lines(1).await;
    assert_eq!(gw.access_log()[0]["tls"]["post_quantum"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_the_certificate_and_unknown_names_get_the_first() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("sni");
    let a = ca.server("a", &["a.test"]);
    let b = ca.server("b", &["b.test"]);
    let w = ca.server("w", &["*.w.test"]);
    let gw = TestGateway::start(&tls_config(&certs_yaml(&[&a, &b, &w]), &up)).await;
    let der = |c: &warden_testkit::pki::CertFiles| c.load().0[0].clone();
    for (sni, want) in [("a.test", der(&a)), ("b.test", der(&b)), ("x.w.test", der(&w))] {
        let r = https_get(gw.addr, sni, ca.client_config(&["http/1.1"], None), "/")
            .await
            .unwrap();
        assert_eq!(r.server_cert.as_ref(), Some(&want), "SNI {sni}");
    }
    // A name no certificate covers gets the first one (and the client,
    // checking names, refuses it).
    let err = https_get(gw.addr, "other.test", ca.client_config(&["http/1.1"], None), "/")
        .await
        .unwrap_err();
    assert!(err.contains("handshake"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_file_reaches_new_handshakes_without_restart() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("reload");
    let first = ca.server("live", &["api.test"]);
    let first_der = first.load().0[0].clone();
    let gw = TestGateway::start_with(
        &tls_config(&certs_yaml(&[&first]), &up),
        Some(Duration::from_millis(100)),
    )
    .await;
    let cfg = ca.client_config(&["http/1.1"], None);
    let r = https_get(gw.addr, "api.test", cfg.clone(), "/").await.unwrap();
    assert_eq!(r.server_cert.as_ref(), Some(&first_der));

    // Overwrite the same two files with a new certificate and key.
    let next = ca.server("next", &["api.test"]);
    std::fs::copy(&next.cert, &first.cert).unwrap();
    std::fs::copy(&next.key, &first.key).unwrap();
    let next_der = next.load().0[0].clone();
    let mut served = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A fresh client each time: a resumed session would show the
        // certificate of the handshake it resumes.
        let fresh = ca.client_config(&["http/1.1"], None);
        let r = https_get(gw.addr, "api.test", fresh, "/").await.unwrap();
        if r.server_cert.as_ref() == Some(&next_der) {
            served = r.server_cert;
            break;
        }
    }
    assert_eq!(served.as_ref(), Some(&next_der), "the new certificate was never served");
}

/// A TLS 1.x ClientHello built by hand: `version` in the hello, ECDHE or
/// other `suites`, SNI `localhost`, groups x25519/P-256, ECDSA/RSA signatures.
fn client_hello(version: u16, suites: &[u16]) -> Vec<u8> {
    let mut ext = Vec::new();
    let mut push_ext = |ty: u16, body: &[u8]| {
        ext.extend_from_slice(&ty.to_be_bytes());
        ext.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        ext.extend_from_slice(body);
    };
    let host = b"localhost";
    let mut sni = Vec::new();
    sni.extend_from_slice(&u16::try_from(host.len() + 3).unwrap().to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&u16::try_from(host.len()).unwrap().to_be_bytes());
    sni.extend_from_slice(host);
    push_ext(0x0000, &sni);
    push_ext(0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]);
    push_ext(0x000b, &[1, 0]);
    push_ext(0x000d, &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01]);
    push_ext(0x0017, &[]);
    push_ext(0xff01, &[0]);
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&u16::try_from(suites.len() * 2).unwrap().to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&u16::try_from(ext.len()).unwrap().to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1u8];
    hs.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// What the server answered a hand-built hello with.
#[derive(Debug, PartialEq)]
enum HelloAnswer {
    ServerHello,
    Alert(u8),
    Closed,
}

async fn send_hello(addr: std::net::SocketAddr, hello: &[u8]) -> HelloAnswer {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(hello).await.unwrap();
    let mut buf = [0u8; 7];
    match tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf)).await {
        Ok(Ok(_)) if buf[0] == 0x16 && buf[5] == 2 => HelloAnswer::ServerHello,
        Ok(Ok(_)) if buf[0] == 0x15 => HelloAnswer::Alert(buf[6]),
        _ => HelloAnswer::Closed,
    }
}

const ECDHE_ECDSA_AES128_GCM: u16 = 0xc02b;
const ECDHE_ECDSA_CHACHA20: u16 = 0xcca9;
/// Static-RSA and CBC suites: no forward secrecy or no AEAD.
const NON_FS_SUITES: [u16; 6] = [0x009c, 0x009d, 0x002f, 0x0035, 0x000a, 0xc009];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls10_11_and_12_are_refused_by_default() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("old");
    let server = ca.server("server", &["localhost"]);
    let gw = TestGateway::start(&tls_config(&certs_yaml(&[&server]), &up)).await;
    for version in [0x0301, 0x0302, 0x0303] {
        let answer = send_hello(gw.addr, &client_hello(version, &[ECDHE_ECDSA_AES128_GCM])).await;
        // 70 = protocol_version alert.
        assert_eq!(answer, HelloAnswer::Alert(70), "hello version {version:#06x}");
    }
    // A rustls client restricted to TLS 1.2 fails too.
    let cfg = warden_testkit::pki::tls12_only_client_config(&ca);
    let err = https_get(gw.addr, "localhost", cfg, "/").await.unwrap_err();
    assert!(err.contains("handshake"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_when_enabled_offers_only_forward_secret_aead_suites() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("tls12");
    let server = ca.server("server", &["localhost"]);
    let listener = format!("{}      min_version: \"1.2\"\n", certs_yaml(&[&server]));
    let gw = TestGateway::start(&tls_config(&listener, &up)).await;
    for suite in [ECDHE_ECDSA_AES128_GCM, ECDHE_ECDSA_CHACHA20] {
        let answer = send_hello(gw.addr, &client_hello(0x0303, &[suite])).await;
        assert_eq!(answer, HelloAnswer::ServerHello, "suite {suite:#06x}");
    }
    // 40 = handshake_failure: no suite in common.
    let answer = send_hello(gw.addr, &client_hello(0x0303, &NON_FS_SUITES)).await;
    assert_eq!(answer, HelloAnswer::Alert(40));
    // TLS 1.0 and 1.1 stay refused.
    for version in [0x0301, 0x0302] {
        let answer = send_hello(gw.addr, &client_hello(version, &[ECDHE_ECDSA_AES128_GCM])).await;
        assert_eq!(answer, HelloAnswer::Alert(70), "hello version {version:#06x}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_listeners_refuse_by_default_or_redirect_and_never_send_hsts() {
    let up = MockUpstream::start("a").await;
    let cfg = |mode: &str| {
        format!(
            "listeners:\n  - name: plain\n    bind: 127.0.0.1:0\n{mode}services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n",
            up.addr
        )
    };
    let gw = TestGateway::start(&cfg("")).await;
    let r = get(&gw.url("/users/1?x=2")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], "urn:warden:problem:https-required");
    assert!(!r.headers.contains_key("strict-transport-security"));
    assert_eq!(up.hits(), 0, "a refused request must not reach the upstream");

    let gw = TestGateway::start(&cfg("    plain_http: redirect\n    https_port: 8443\n")).await;
    let req = http::Request::get(gw.url("/users/%41/../1?x=2"))
        .header("host", "api.example:8080")
        .body(http_body_util::Full::default())
        .unwrap();
    let r = warden_testkit::send(&warden_testkit::http1(), req).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.headers["location"], "https://api.example:8443/users/1?x=2");
    assert!(!r.headers.contains_key("strict-transport-security"));
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_other_than_the_sni_name_gets_421() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("fronting");
    let both = ca.server("both", &["a.test", "b.test"]);
    let gw = TestGateway::start(&tls_config(&certs_yaml(&[&both]), &up)).await;
    let send = |host: &'static str| {
        let req = http::Request::get("/x")
            .header("host", host)
            .body(http_body_util::Full::default())
            .unwrap();
        warden_testkit::https(gw.addr, "a.test", ca.client_config(&["http/1.1"], None), req)
    };
    let r = send("b.test").await.unwrap().reply;
    assert_eq!(r.status, 421);
    assert_eq!(r.json()["type"], "urn:warden:problem:misdirected-request");
    assert_eq!(send("A.test:443").await.unwrap().reply.status, 200);
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_reload_sighup_path_picks_up_a_replaced_certificate() {
    let up = MockUpstream::start("a").await;
    let mut ca = TestCa::new("hup");
    let first = ca.server("live", &["api.test"]);
    // No file watching: only an explicit reload (what SIGHUP calls) may change it.
    let first_der = first.load().0[0].clone();
    let gw = TestGateway::start(&tls_config(&certs_yaml(&[&first]), &up)).await;
    let next = ca.server("next", &["api.test"]);
    std::fs::copy(&next.cert, &first.cert).unwrap();
    std::fs::copy(&next.key, &first.key).unwrap();
    let cfg = || ca.client_config(&["http/1.1"], None);
    let r = https_get(gw.addr, "api.test", cfg(), "/").await.unwrap();
    assert_eq!(r.server_cert.as_ref(), Some(&first_der), "not reloaded yet");
    gw.gw().reload().await.unwrap();
    let r = https_get(gw.addr, "api.test", cfg(), "/").await.unwrap();
    assert_eq!(r.server_cert.as_ref(), Some(&next.load().0[0]));
}
