//! Connection- and gateway-level defences: one client address cannot hold
//! more than its share of connections, past the in-flight cap requests are
//! shed with 503 and `Retry-After` while health checks still answer, a
//! concurrency limit caps one key's requests in flight, and an HTTP/2
//! rapid-reset flood loses its connection while ordinary streams do not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use warden_testkit::{Bystanders, MockUpstream, TestGateway, http1, send};

/// Sends one keep-alive request on `s` and returns the status code.
async fn request(s: &mut TcpStream) -> Option<u16> {
    s.write_all(b"GET /api/x HTTP/1.1\r\nhost: t\r\n\r\n").await.ok()?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1)?.parse().ok()
}

/// `n` concurrent requests the upstream answers after 600 ms.
async fn slow_burst(gw: &TestGateway, n: usize) -> Vec<warden_testkit::Reply> {
    let one = |_| {
        let url = gw.url("/slow/600");
        async move {
            send(
                &http1(),
                http::Request::get(url).body(http_body_util::Full::default()).unwrap(),
            )
            .await
        }
    };
    futures_util::future::join_all((0..n).map(one)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_at_most_its_connections() {
    let up = MockUpstream::start("api").await;
    let gw = TestGateway::start(&format!(
        "limits:\n  max_connections_per_ip: 3\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: /api }}\n    service: api\n",
        up.addr
    ))
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        assert_eq!(request(&mut s).await, Some(200));
        held.push(s);
    }
    // The fourth is closed without an answer.
    let mut fourth = TcpStream::connect(gw.addr).await.unwrap();
    assert_eq!(request(&mut fourth).await, None);
    // One closes: a place is free again (the gateway notices the close).
    drop(held.pop());
    let mut ok = false;
    for _ in 0..50 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        if request(&mut s).await == Some(200) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the freed place never came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_cap_requests_are_shed_and_health_still_answers() {
    let up = MockUpstream::start("api").await;
    let gw = TestGateway::start(&format!(
        "limits:\n  max_in_flight: 2\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: / }}\n    service: api\n",
        up.addr
    ))
    .await;
    let replies = slow_burst(&gw, 5).await;
    let shed: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    let served = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!((served, shed.len()), (2, 3));
    assert_eq!(shed[0].headers["retry-after"], "1");
    assert_eq!(shed[0].json()["status"], 503);
    // The admin listener is never shed; once the load is gone, requests pass.
    assert_eq!(
        warden_testkit::get(&format!("http://{}/healthz", gw.admin))
            .await
            .status,
        200
    );
    assert_eq!(warden_testkit::get(&gw.url("/x")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_limit_caps_requests_in_flight_per_key() {
    let up = MockUpstream::start("api").await;
    let gw = TestGateway::start(&format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: / }}\n    service: api\n    policies:\n      - type: rate_limit\n        concurrency:\n          - {{ key: [ip], max: 2 }}\n",
        up.addr
    ))
    .await;
    let replies = slow_burst(&gw, 4).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{statuses:?}");
    let refused = replies.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(refused.headers["retry-after"], "1");
    // The places come back when the responses end.
    for _ in 0..3 {
        assert_eq!(warden_testkit::get(&gw.url("/x")).await.status, 200);
    }
}

/// Opens `n` streams on one HTTP/2 connection, resetting each right away
/// when `reset`, else reading each answer; then asks once more on the same
/// connection. Returns whether the server closed it (the last request, or
/// one before it, failed).
async fn h2_streams(addr: std::net::SocketAddr, n: usize, reset: bool) -> bool {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client;
    let get = || http::Request::get(format!("http://{addr}/api/x")).body(()).unwrap();
    for _ in 0..n {
        let Ok(mut c) = client.ready().await else { return true };
        match c.send_request(get(), true) {
            Ok((resp, _)) if reset => drop(resp),
            Ok((resp, _)) => {
                // A normal client reads each answer to its end: dropping a
                // body whose last DATA frame has not arrived yet resets the
                // stream (RST_STREAM), which a slow moment on a loaded
                // machine turns into a reset flood of its own.
                let Ok(resp) = resp.await else { return true };
                let mut body = resp.into_body();
                while let Some(chunk) = body.data().await {
                    let Ok(chunk) = chunk else { return true };
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
            }
            Err(_) => return true,
        }
        client = c;
    }
    let last = async move {
        let mut c = client.ready().await.ok()?;
        let (resp, _) = c.send_request(get(), true).ok()?;
        resp.await.ok().map(|r| r.status())
    };
    !matches!(tokio::time::timeout(Duration::from_secs(10), last).await, Ok(Some(s)) if s == 200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_rapid_reset_flood_closes_the_connection_and_normal_streams_do_not() {
    let up = MockUpstream::start("api").await;
    let gw = TestGateway::start(&format!(
        "limits:\n  max_h2_pending_resets: 20\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: /api }}\n    service: api\n",
        up.addr
    ))
    .await;
    assert!(!h2_streams(gw.addr, 200, false).await, "normal streams were cut off");
    // Three floods at once while ordinary clients keep asking.
    let others = Bystanders::start(gw.url("/api/ok"));
    let addr = gw.addr;
    let floods: Vec<_> = (0..3).map(|_| tokio::spawn(h2_streams(addr, 5_000, true))).collect();
    for f in floods {
        assert!(f.await.unwrap(), "a reset flood kept its connection");
    }
    let statuses = others.statuses().await;
    assert!(statuses.iter().all(|s| *s == 200), "bystanders refused: {statuses:?}");
}
