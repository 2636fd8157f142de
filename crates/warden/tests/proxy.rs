//! End-to-end: the proxy path on both protocols, balancing, headers, errors,
//! upgrades and the access log, against real mock upstreams over TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_testkit::{MockUpstream, TestGateway, get, http1, http2, send};

fn config(targets: &[&MockUpstream], extra_service: &str, extra_route: &str) -> String {
    let list = targets
        .iter()
        .map(|u| format!("\"{}\"", u.addr))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "services:\n  - name: api\n    targets: [{list}]\n{extra_service}\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n{extra_route}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_clients_reach_http1_and_http2_upstreams() {
    let up = MockUpstream::start("a").await;
    for protocol in ["http1", "http2"] {
        let gw = TestGateway::start(&config(&[&up], &format!("    protocol: {protocol}"), "")).await;
        for (client, name) in [(http1(), "h1"), (http2(), "h2")] {
            let reply = send(
                &client,
                Request::get(gw.url("/things?x=1")).body(Full::default()).unwrap(),
            )
            .await;
            assert_eq!(reply.status, 200, "{name} client → {protocol} upstream");
            let v = reply.json();
            assert_eq!(v["uri"], "/things?x=1");
            let expected = if protocol == "http2" { "HTTP/2.0" } else { "HTTP/1.1" };
            assert_eq!(v["version"], expected, "{name} client → {protocol} upstream");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_requests_evenly() {
    let (a, b, c) = (
        MockUpstream::start("a").await,
        MockUpstream::start("b").await,
        MockUpstream::start("c").await,
    );
    let gw = TestGateway::start(&config(&[&a, &b, &c], "    balance: round_robin", "")).await;
    let mut counts = HashMap::new();
    for _ in 0..30 {
        let v = get(&gw.url("/x")).await.json();
        *counts.entry(v["upstream"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(
        counts.values().all(|n| *n == 10),
        "round robin must be exact: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_outstanding_avoids_the_busy_target() {
    let (a, b) = (MockUpstream::start("a").await, MockUpstream::start("b").await);
    let gw = TestGateway::start(&config(&[&a, &b], "    balance: least_outstanding", "")).await;
    // Hold several slow requests open; P2C with two targets compares both, so
    // quick requests issued meanwhile must go to whichever target is less busy.
    let mut slow = Vec::new();
    for i in 1..=4 {
        let url = gw.url("/slow/1500");
        slow.push(tokio::spawn(async move { get(&url).await }));
        // Wait until the upstream holds request i, so each pick sees the previous ones in flight.
        for _ in 0..500 {
            if a.hits() + b.hits() >= i {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let slow_a = a.seen().iter().filter(|r| r.uri.starts_with("/slow")).count();
    let slow_b = b.seen().iter().filter(|r| r.uri.starts_with("/slow")).count();
    assert_eq!(slow_a + slow_b, 4);
    assert_eq!(
        slow_a, 2,
        "slow requests alternate onto the less busy target ({slow_a}/{slow_b})"
    );
    for s in slow {
        assert_eq!(s.await.unwrap().status, 200);
    }
    // Both targets are used for quick traffic.
    for _ in 0..20 {
        get(&gw.url("/quick")).await;
    }
    assert!(a.hits() > 2 && b.hits() > 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_fingerprints_are_stripped_and_security_headers_added() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "")).await;
    let reply = get(&gw.url("/x")).await;
    assert_eq!(reply.status, 200);
    for h in ["server", "x-powered-by", "x-aspnet-version"] {
        assert!(!reply.headers.contains_key(h), "{h} leaked: {:?}", reply.headers);
    }
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(
        reply.headers["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'"
    );
    assert_eq!(reply.headers["referrer-policy"], "no-referrer");
    assert_eq!(reply.headers["x-request-id"].len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_can_be_turned_off_per_route() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "    security_headers: false")).await;
    let reply = get(&gw.url("/x")).await;
    assert!(!reply.headers.contains_key("content-security-policy"));
    assert!(
        !reply.headers.contains_key("server"),
        "fingerprints are stripped regardless"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_are_written_and_spoofed_ones_replaced() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "")).await;
    let req = Request::get(gw.url("/headers"))
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6")
        .header("x-request-id", "spoofed-id")
        .header("connection", "x-hop")
        .header("x-hop", "secret")
        .header("host", "api.example.com")
        .body(Full::default())
        .unwrap();
    let reply = send(&http1(), req).await;
    let v = reply.json();
    assert_eq!(v["x-forwarded-for"], "127.0.0.1");
    assert_eq!(v["x-forwarded-proto"], "http");
    assert_eq!(v["x-forwarded-host"], "api.example.com");
    assert_eq!(v["forwarded"], "for=127.0.0.1;proto=http;host=\"api.example.com\"");
    assert_eq!(v["host"], "api.example.com");
    assert!(v.get("x-hop").is_none(), "connection-listed header forwarded: {v}");
    let id = v["x-request-id"].as_str().unwrap();
    assert_ne!(id, "spoofed-id", "untrusted peers cannot set the request id");
    assert_eq!(reply.headers["x-request-id"], id, "same id upstream and back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_chain_and_request_id_are_kept() {
    let up = MockUpstream::start("a").await;
    let yaml = format!("trusted_proxies: [127.0.0.1/32]\n{}", config(&[&up], "", ""));
    let gw = TestGateway::start(&yaml).await;
    let req = Request::get(gw.url("/headers"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-request-id", "edge-1234")
        .body(Full::default())
        .unwrap();
    let v = send(&http1(), req).await.json();
    assert_eq!(v["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(v["x-request-id"], "edge-1234");
    gw.wait_for_log_lines(1).await;
    assert_eq!(gw.access_log()[0]["client_ip"], "203.0.113.7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_5xx_body_is_replaced_unless_the_route_passes_it_through() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(
        &[&up],
        "    health: { passive: { consecutive_failures: 0 } }",
        "",
    ))
    .await;
    let reply = get(&gw.url("/status/500")).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    let text = reply.text();
    for leak in [
        "NullPointer",
        "10.0.0.5",
        "Billing",
        "secret-server",
        &up.addr.to_string(),
    ] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    assert_eq!(reply.json()["type"], "urn:warden:problem:upstream-error");
    assert!(!reply.headers.contains_key("server"));

    let gw = TestGateway::start(&config(
        &[&up],
        "    health: { passive: { consecutive_failures: 0 } }",
        "    upstream_errors: pass_through",
    ))
    .await;
    let reply = get(&gw.url("/status/503")).await;
    assert_eq!(reply.status, 503);
    assert!(reply.text().contains("NullPointer"), "pass_through keeps the body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_is_passed_through_both_ways() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "")).await;
    let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
    s.write_all(b"ping-frame-bytes").await.unwrap();
    let mut echoed = vec![0u8; 16];
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping-frame-bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_stream_through_both_protocols() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "")).await;
    let payload = Bytes::from(vec![b'z'; 256 * 1024]);
    for client in [http1(), http2()] {
        let req = Request::post(gw.url("/upload"))
            .body(Full::new(payload.clone()))
            .unwrap();
        let v = send(&client, req).await.json();
        assert_eq!(v["body_len"], 256 * 1024);
    }
    assert!(up.seen().iter().all(|r| r.body == payload));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_reach_the_access_log() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "")).await;
    let secrets = [
        "Bearer-s3cr3t-token-value",
        "session-cookie-value-42",
        "apikey-value-9f8e7d",
    ];
    let req = Request::get(gw.url(&format!("/orders?apikey={}&page=2", secrets[2])))
        .header("authorization", format!("Bearer {}", secrets[0]))
        .header("cookie", format!("sid={}", secrets[1]))
        .header("x-api-key", secrets[2])
        .body(Full::default())
        .unwrap();
    let reply = send(&http1(), req).await;
    assert_eq!(reply.status, 200);
    // The upstream did receive them: the gateway forwards, it only keeps them out of the log.
    let seen = &up.seen()[0];
    assert!(seen.uri.contains(secrets[2]));
    assert!(seen.headers["authorization"].to_str().unwrap().contains(secrets[0]));
    gw.wait_for_log_lines(1).await;
    let log = gw.access_log_text();
    for s in secrets {
        assert!(!log.contains(s), "{s} reached the access log: {log}");
    }
    let line = &gw.access_log()[0];
    assert_eq!(line["path"], "/orders");
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "all");
    assert_eq!(line["upstream"], up.addr.to_string());
    assert_eq!(line["request_id"], reply.headers["x-request-id"].to_str().unwrap());
    for key in ["time", "client_ip", "method", "latency_ms", "bytes_in", "bytes_out"] {
        assert!(line.get(key).is_some(), "{key} missing: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_serves_health_readiness_and_metrics() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "")).await;
    get(&gw.url("/x")).await;
    assert_eq!(gw.admin_get("/healthz").await.status, 200);
    let ready = gw.admin_get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["config_generation"], 1);
    let metrics = gw.admin_get("/metrics").await.text();
    assert!(
        metrics.contains("warden_requests_total{route=\"all\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("warden_request_duration_seconds_bucket"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "warden_upstream_healthy{{service=\"api\",target=\"{}\"}} 1",
            up.addr
        )),
        "{metrics}"
    );
    assert_eq!(gw.admin_get("/nope").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runtimes_serve_both_protocols_and_keep_round_robin_exact() {
    let (a, b) = (MockUpstream::start("a").await, MockUpstream::start("b").await);
    let gw = TestGateway::start_with_workers(&config(&[&a, &b], "", ""), 2).await;
    let payload = Bytes::from(vec![b'w'; 64 * 1024]);
    for client in [http1(), http2()] {
        for _ in 0..10 {
            let req = Request::post(gw.url("/w")).body(Full::new(payload.clone())).unwrap();
            let reply = send(&client, req).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json()["body_len"], 64 * 1024);
        }
    }
    // Targets' counters are shared by all workers: 20 requests split 10/10.
    assert_eq!((a.hits(), b.hits()), (10, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused_and_closed_ones_replaced() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start_with_workers(&config(&[&up], "", ""), 1).await;
    for _ in 0..20 {
        assert_eq!(get(&gw.url("/x")).await.status, 200);
    }
    assert_eq!(
        up.connections(),
        1,
        "sequential requests share one pooled upstream connection"
    );
    // The upstream closes the connection after each of these answers; the next
    // request must get a fresh connection, not an error.
    for _ in 0..5 {
        assert_eq!(get(&gw.url("/x/close")).await.status, 200);
        assert_eq!(get(&gw.url("/x")).await.status, 200);
    }
    assert_eq!(up.hits(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_connections_to_a_restarted_upstream_are_not_used() {
    let up = MockUpstream::start("a").await;
    let addr = up.addr;
    let gw = TestGateway::start(&config(
        &[&up],
        "    health: { passive: { consecutive_failures: 0 } }",
        "",
    ))
    .await;
    assert_eq!(get(&gw.url("/x")).await.status, 200);
    up.stop();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let again = MockUpstream::start_on("a2", addr).await;
    assert_eq!(
        get(&gw.url("/x")).await.status,
        200,
        "a dead pooled connection must not fail the request"
    );
    assert_eq!(again.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_upstreams_get_origin_form_and_the_clients_host() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&config(&[&up], "", "")).await;
    let req = Request::get(gw.url("/o?q=1"))
        .header("host", "api.example.com")
        .body(Full::default())
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 200);
    let seen = &up.seen()[0];
    assert_eq!(
        seen.target_authority, None,
        "internal target address leaked into the request line"
    );
    assert_eq!(seen.uri, "/o?q=1");
    assert_eq!(seen.headers["host"], "api.example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_that_differs_from_the_routed_authority_is_refused() {
    let admin = MockUpstream::start("admin").await;
    let public = MockUpstream::start("public").await;
    let yaml = format!(
        "services:\n  - name: admin\n    targets: [\"{}\"]\n  - name: public\n    targets: [\"{}\"]\nroutes:\n  - id: admin\n    hosts: [admin.example.com]\n    path: {{ prefix: / }}\n    service: admin\n    policies:\n      - type: ip_rules\n        deny: [127.0.0.0/8]\n  - id: www\n    hosts: [www.example.com]\n    path: {{ prefix: / }}\n    service: public\n",
        admin.addr, public.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let (resp, _) = warden_testkit::raw(
        gw.addr,
        b"GET http://www.example.com/admin/users HTTP/1.1\r\nHost: admin.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(admin.hits() + public.hits(), 0);
    // The benign look-alike: absolute-form whose Host agrees.
    let (resp, _) = warden_testkit::raw(
        gw.addr,
        b"GET http://www.example.com/x HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(public.hits(), 1);
}
