//! End-to-end: timeouts, dead upstreams, retries, passive ejection and active
//! health checks — each answered with a problem document that names no upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use warden_testkit::{MockUpstream, Reply, TestGateway, dead_addr, get};

fn service(targets: &[String], extra: &str) -> String {
    format!(
        "services:\n  - name: api\n    targets: [{}]\n{extra}\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n",
        targets
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn assert_problem(reply: &Reply, status: u16, slug: &str, hidden: &[String]) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(reply.headers["content-type"], "application/problem+json");
    assert_eq!(reply.headers["cache-control"], "no-store");
    let v = reply.json();
    assert_eq!(v["type"], format!("urn:warden:problem:{slug}"));
    assert_eq!(v["status"], status);
    assert_eq!(v["request_id"], reply.headers["x-request-id"].to_str().unwrap());
    let text = reply.text();
    for h in hidden {
        assert!(!text.contains(h.as_str()), "{h} leaked in {text}");
    }
    for word in ["hyper", "tokio", "connection refused", "127.0.0.1"] {
        assert!(!text.to_lowercase().contains(word), "{word} leaked in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_gets_504() {
    let up = MockUpstream::start("slow").await;
    let gw = TestGateway::start(&service(&[up.addr.to_string()], "    timeouts: { first_byte_ms: 200 }")).await;
    let reply = get(&gw.url("/slow/2000")).await;
    assert_problem(&reply, 504, "gateway-timeout", &[up.addr.to_string()]);
    // A quick request on the same route is fine.
    assert_eq!(get(&gw.url("/fast")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_upstream_gets_502_and_the_last_target_is_never_ejected() {
    let dead = dead_addr().await.to_string();
    let gw = TestGateway::start(&service(
        std::slice::from_ref(&dead),
        "    retries: { attempts: 0 }\n    health: { passive: { consecutive_failures: 2, cooldown_secs: 60 } }",
    ))
    .await;
    for path in ["/a", "/b", "/c", "/d"] {
        // Failures a client could provoke must not take the whole service out:
        // the only target stays in, so every answer is a 502, never a 503.
        assert_problem(
            &get(&gw.url(path)).await,
            502,
            "bad-gateway",
            std::slice::from_ref(&dead),
        );
    }
    gw.wait_for_log_lines(4).await;
    assert!(
        gw.access_log()
            .iter()
            .all(|l| l["rejection"] == "upstream_connect_failed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_failing_health_checks_gets_503() {
    let (a, b) = (MockUpstream::start("a").await, MockUpstream::start("b").await);
    let gw = TestGateway::start(&service(
        &[a.addr.to_string(), b.addr.to_string()],
        "    health:\n      active: { path: /health, interval_ms: 100, healthy_threshold: 1, unhealthy_threshold: 1 }",
    ))
    .await;
    a.set_healthy(false);
    b.set_healthy(false);
    wait_until(|| async { metric(&gw, &a).await == Some(0) && metric(&gw, &b).await == Some(0) }).await;
    let hidden = [a.addr.to_string(), b.addr.to_string()];
    assert_problem(&get(&gw.url("/x")).await, 503, "service-unavailable", &hidden);
    gw.wait_for_log_lines(1).await;
    assert_eq!(gw.access_log()[0]["rejection"], "no_healthy_target");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_stalling_its_body_does_not_get_the_target_ejected() {
    let up = MockUpstream::start("a").await;
    let other = MockUpstream::start("b").await;
    let gw = TestGateway::start(&service(
        &[up.addr.to_string(), other.addr.to_string()],
        "    timeouts: { first_byte_ms: 150 }\n    health: { passive: { consecutive_failures: 1, cooldown_secs: 60 } }",
    ))
    .await;
    // Declares 100 bytes, sends 4, stalls: the first-byte timeout fires while
    // the body is incomplete. That is the client's doing, not the target's.
    let (resp, _) = warden_testkit::raw(
        gw.addr,
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabcd",
    )
    .await;
    assert!(
        resp.starts_with("HTTP/1.1 504") || resp.starts_with("HTTP/1.1 408"),
        "{resp}"
    );
    let metrics = gw.admin_get("/metrics").await.text();
    assert!(
        !metrics.contains("warden_upstream_ejections_total{"),
        "a target was ejected: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_request_retries_on_another_target_after_connect_failure() {
    let dead = dead_addr().await.to_string();
    let up = MockUpstream::start("live").await;
    let gw = TestGateway::start(&service(
        &[dead.clone(), up.addr.to_string()],
        "    retries: { attempts: 1 }\n    health: { passive: { consecutive_failures: 0 } }",
    ))
    .await;
    for _ in 0..6 {
        assert_eq!(
            get(&gw.url("/x")).await.status,
            200,
            "GET is retried on the live target"
        );
    }
    assert_eq!(up.hits(), 6);
    // POST is not idempotent: when round-robin lands on the dead target, it fails.
    let client = warden_testkit::http1();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let req = http::Request::post(gw.url("/x"))
            .body(http_body_util::Full::new(bytes::Bytes::from("a")))
            .unwrap();
        statuses.push(warden_testkit::send(&client, req).await.status.as_u16());
    }
    assert!(statuses.contains(&502) && statuses.contains(&200), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_ejection_takes_a_failing_target_out_and_cooldown_brings_it_back() {
    let a = MockUpstream::start("a").await;
    let b = MockUpstream::start("b").await;
    let gw = TestGateway::start(&service(
        &[a.addr.to_string(), b.addr.to_string()],
        "    retries: { attempts: 0 }\n    health: { passive: { consecutive_failures: 2, cooldown_secs: 1 } }",
    ))
    .await;
    // Take `a` down: its failures eject it; traffic then flows to `b` only.
    let a_addr = a.addr;
    a.stop();
    let mut failures = 0;
    for _ in 0..10 {
        if get(&gw.url("/x")).await.status != 200 {
            failures += 1;
        }
    }
    assert_eq!(failures, 2, "exactly the two failures that eject the target");
    let metrics = gw.admin_get("/metrics").await.text();
    assert!(
        metrics.contains(&format!(
            "warden_upstream_ejections_total{{service=\"api\",target=\"{a_addr}\"}} 1"
        )),
        "{metrics}"
    );
    // Bring `a` back on the same port; after the cool-down it receives traffic again.
    let a2 = MockUpstream::start_on("a2", a_addr).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..6 {
        assert_eq!(get(&gw.url("/x")).await.status, 200);
    }
    assert!(a2.hits() >= 2, "re-admitted target got {} requests", a2.hits());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_eject_and_readmit_a_target() {
    let a = MockUpstream::start("a").await;
    let b = MockUpstream::start("b").await;
    let gw = TestGateway::start(&service(
        &[a.addr.to_string(), b.addr.to_string()],
        "    health:\n      active: { path: /health, interval_ms: 100, healthy_threshold: 2, unhealthy_threshold: 2 }",
    ))
    .await;
    a.set_healthy(false);
    wait_until(|| async { metric(&gw, &a).await == Some(0) }).await;
    let before = a.hits();
    for _ in 0..10 {
        assert_eq!(get(&gw.url("/x")).await.status, 200);
    }
    assert_eq!(a.hits(), before, "unhealthy target received traffic");
    a.set_healthy(true);
    wait_until(|| async { metric(&gw, &a).await == Some(1) }).await;
    for _ in 0..10 {
        get(&gw.url("/x")).await;
    }
    assert!(a.hits() >= before + 4, "re-admitted target gets its share");
}

async fn metric(gw: &TestGateway, up: &MockUpstream) -> Option<u8> {
    let text = gw.admin_get("/metrics").await.text();
    let key = format!("warden_upstream_healthy{{service=\"api\",target=\"{}\"}} ", up.addr);
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

async fn wait_until<F, Fut>(mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 5 s");
}
