//! Slow and flooding clients lose their connections while everyone else keeps
//! being served: a slowloris client (one header byte a second) runs out of
//! `header_read_timeout_ms`, a slow-POST client falls below
//! `min_body_rate_bytes_per_sec` and gets 408, an upload at a healthy rate
//! outlives the base body timeout, and HTTP/2 PING / SETTINGS / empty-DATA
//! floods are cut off without stopping ordinary requests (rapid reset:
//! `overload.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use warden_testkit::{Bystanders, MockUpstream, TestGateway};

/// Outer bound for anything that should end on the gateway's own timeouts.
const PATIENCE: Duration = Duration::from_secs(30);

async fn setup(limits: &str) -> (MockUpstream, TestGateway) {
    let up = MockUpstream::start("api").await;
    let gw = TestGateway::start(&format!(
        "limits:\n{limits}\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: /api }}\n    service: api\n",
        up.addr
    ))
    .await;
    (up, gw)
}

/// Writes `bytes` one per `every`; returns how many were written before the
/// gateway closed the connection or answered (None: it never did).
async fn trickle(s: &mut TcpStream, bytes: &[u8], every: Duration) -> Option<usize> {
    for (i, b) in bytes.iter().enumerate() {
        if s.write_all(&[*b]).await.is_err() {
            return Some(i);
        }
        // Anything readable (an EOF, an error, an answer) means it is over.
        let mut probe = [0u8; 1024];
        if tokio::time::timeout(every, s.read(&mut probe)).await.is_ok() {
            return Some(i + 1);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_disconnected_and_others_are_served() {
    let (_up, gw) = setup("  header_read_timeout_ms: 2000").await;
    let others = Bystanders::start(gw.url("/api/ok"));
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let head = b"GET /api/x HTTP/1.1\r\nHost: t\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let sent = tokio::time::timeout(PATIENCE, trickle(&mut s, head, Duration::from_secs(1)))
        .await
        .expect("the trickle outlived any timeout");
    let sent = sent.expect("a slowloris head was served in full");
    assert!(sent < head.len(), "closed only after {sent} of {} bytes", head.len());
    let statuses = others.statuses().await;
    assert!(statuses.len() >= 5, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200), "bystanders refused: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_post_gets_408_and_a_steady_upload_outlives_the_base_timeout() {
    let (up, gw) = setup("  body_read_timeout_ms: 1000\n  min_body_rate_bytes_per_sec: 500").await;
    let others = Bystanders::start(gw.url("/api/ok"));

    // Slow POST: 2,000 bytes declared, one a second.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /api/slow-post HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let cut = tokio::time::timeout(PATIENCE, async {
        for _ in 0..2000 {
            if s.write_all(b"x").await.is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut answer)).await;
    })
    .await;
    assert!(cut.is_ok(), "the slow POST was never cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");

    // 3,000 bytes at ~1,000 B/s take 3 s, three times the base second: the
    // rate earns the time (without it the upload would be cut at 1 s).
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /api/steady HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..30 {
        s.write_all(&[b'y'; 100]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut reply = String::new();
    tokio::time::timeout(PATIENCE, s.read_to_string(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let seen = up.seen();
    let steady = seen
        .iter()
        .find(|r| r.uri == "/api/steady")
        .expect("steady upload reached the upstream");
    assert_eq!(steady.body.len(), 3000);

    let statuses = others.statuses().await;
    assert!(statuses.iter().all(|s| *s == 200), "bystanders refused: {statuses:?}");
}

/// An HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HEADERS opening stream 1 as `POST /api/upload` (HPACK: static-table
/// method and scheme, literal path and authority), its body still to come.
fn open_stream_1() -> Vec<u8> {
    let mut block = vec![0x83, 0x86, 0x44, 11];
    block.extend_from_slice(b"/api/upload");
    block.extend_from_slice(&[0x41, 9]);
    block.extend_from_slice(b"localhost");
    frame(1, 0x4, 1, &block)
}

/// Opens an h2c connection with stream 1 open and sends `frames` `rounds`
/// times (unread answers pile up on the gateway's side); true when the
/// gateway closed it within `patience`.
async fn h2_flood(addr: SocketAddr, frames: &[u8], rounds: usize, patience: Duration) -> bool {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    s.write_all(&frame(4, 0, 0, &[])).await.unwrap();
    s.write_all(&open_stream_1()).await.unwrap();
    for _ in 0..rounds {
        if s.write_all(frames).await.is_err() {
            return true;
        }
    }
    // Drain what the gateway answered until it closes (or stays open).
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(patience, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    closed.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_control_frame_floods_lose_their_connection_and_others_are_served() {
    let (_up, gw) = setup("  max_h2_control_frames_per_sec: 100").await;
    let others = Bystanders::start(gw.url("/api/ok"));

    let pings: Vec<u8> = (0..500u64).flat_map(|i| frame(6, 0, 0, &i.to_be_bytes())).collect();
    let settings: Vec<u8> = (0..500).flat_map(|_| frame(4, 0, 0, &[])).collect();
    // Empty and padding-only DATA frames on the open stream 1.
    let empty_data: Vec<u8> = (0..500)
        .flat_map(|i| {
            if i % 2 == 0 {
                frame(0, 0, 1, &[])
            } else {
                frame(0, 0x8, 1, &[0])
            }
        })
        .collect();
    let floods = [("PING", &pings), ("SETTINGS", &settings), ("empty DATA", &empty_data)];
    for (name, flood) in floods {
        assert!(
            h2_flood(gw.addr, flood, 40, PATIENCE).await,
            "a {name} flood kept its connection"
        );
    }
    // The control: with a budget no flood reaches, PING and SETTINGS floods
    // keep their connections, so it is the budget that closed them above.
    // (Empty DATA floods are also refused by the HTTP/2 library itself:
    // GOAWAY ENHANCE_YOUR_CALM `too_many_data_frames`.)
    let (_up2, lax) = setup("  max_h2_control_frames_per_sec: 100000000").await;
    for (name, flood) in &floods[..2] {
        assert!(
            !h2_flood(lax.addr, flood, 40, Duration::from_secs(2)).await,
            "a {name} flood was closed by something else"
        );
    }
    assert!(h2_flood(lax.addr, &empty_data, 40, PATIENCE).await);

    // The benign look-alike: a keep-alive PING every 100 ms stays connected
    // (the gateway answers each and does not close).
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    s.write_all(&frame(4, 0, 0, &[])).await.unwrap();
    let mut got = Vec::new();
    for i in 0..20u64 {
        s.write_all(&frame(6, 0, 0, &i.to_be_bytes())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut buf = [0u8; 4096];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            let n = r.unwrap();
            assert!(n > 0, "a polite PING client was disconnected");
            got.extend_from_slice(&buf[..n]);
        }
    }
    // Every PING was acknowledged: type 6 with the ACK flag, 20 times.
    let acks = got
        .windows(5)
        .filter(|w| w[0..3] == [0, 0, 8] && w[3] == 6 && w[4] == 1)
        .count();
    assert_eq!(acks, 20, "PING acknowledgements");

    let statuses = others.statuses().await;
    assert!(statuses.len() >= 5, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200), "bystanders refused: {statuses:?}");
}

/// Reads from `s` until the end of a response head; false on EOF first.
async fn read_head(s: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_timeout_ends_idle_http1_waits_but_not_returning_clients_or_http2() {
    let (_up, gw) = setup("  header_read_timeout_ms: 1000").await;

    // HTTP/1.1: answered once, then silent. The wait for the next head is
    // bounded by the header timeout (the idle timeout, 60 s, is not what
    // closes it), and not cut short of it.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    // Taken before the request goes: the gateway's count starts when its
    // answer ends, later still, so a slow test runner cannot shorten it.
    let asked = std::time::Instant::now();
    s.write_all(b"GET /api/once HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    assert!(read_head(&mut s).await, "no answer");
    let closed = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/1.1 connection outlived the header timeout"
    );
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(950), "closed after {waited:?}");

    // The benign look-alike: a client back within the timeout every time
    // keeps its connection for more than twice as long.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    for i in 0..8 {
        let req = format!("GET /api/again/{i} HTTP/1.1\r\nHost: t\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        assert!(
            read_head(&mut s).await,
            "request {i}: the returning client lost its connection"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // HTTP/2 (h2c): an idle connection without requests is left to the idle
    // timeout; after three header timeouts a PING is still acknowledged.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    s.write_all(&frame(4, 0, 0, &[])).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.write_all(&frame(6, 0, 0, &7u64.to_be_bytes())).await.unwrap();
    let mut got = Vec::new();
    let acked = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            let ack = got.windows(5).any(|w| w[0..3] == [0, 0, 8] && w[3] == 6 && w[4] == 1);
            if ack {
                return true;
            }
        }
    })
    .await;
    assert_eq!(acked, Ok(true), "the idle HTTP/2 connection was closed");
}
