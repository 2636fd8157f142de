//! End-to-end: how the gateway reads HTTP/1.1 upstream responses. A scripted
//! upstream on raw TCP sends exactly the bytes each test needs: ambiguous
//! framing (the response-side smuggling shapes), bytes past the end of a
//! response, chunked bodies with extensions and trailers, interim responses,
//! an early refusal of a large body, and connections closed under a pooled
//! request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warden_testkit::{TestGateway, get, http1, send};

fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or_default()
}

/// What the scripted upstream does with one request.
enum Action {
    /// Writes these bytes and keeps the connection.
    Reply(Vec<u8>),
    /// Writes these bytes, stops writing, reads whatever else comes, closes.
    ReplyAndClose(Vec<u8>),
    /// Writes these bytes at once, reads nothing more, holds the connection.
    ReplyEarly(Vec<u8>),
    /// Writes the first bytes, then the second a moment later (bytes nobody
    /// asked for, in a segment of their own), and keeps the connection.
    ReplyThenStray(Vec<u8>, Vec<u8>),
    /// Closes without a byte.
    Close,
}

/// One request as the upstream saw it.
struct Seen {
    method: String,
    path: String,
    /// 1 for the first request on its connection.
    nth_on_conn: usize,
}

type Script = dyn Fn(&Seen) -> Action + Send + Sync;

struct Scripted {
    addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl Scripted {
    async fn start(script: impl Fn(&Seen) -> Action + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (a, r) = (Arc::clone(&accepts), Arc::clone(&requests));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, Arc::clone(&script), Arc::clone(&r)));
            }
        });
        Self {
            addr,
            accepts,
            requests,
        }
    }

    fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, script: Arc<Script>, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut nth = 0;
    loop {
        let Some(end) = read_until(&mut stream, &mut buf, b"\r\n\r\n").await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        nth += 1;
        requests.fetch_add(1, Ordering::SeqCst);
        let mut words = head.split(' ');
        let seen = Seen {
            method: words.next().unwrap_or_default().to_owned(),
            path: words.next().unwrap_or_default().to_owned(),
            nth_on_conn: nth,
        };
        let action = script(&seen);
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        match action {
            Action::Close => return,
            Action::ReplyEarly(bytes) => {
                let _ = stream.write_all(&bytes).await;
                tokio::time::sleep(Duration::from_secs(10)).await;
                return;
            }
            Action::ReplyAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                // Lingering close: drain the rest so the kernel does not reset
                // the connection over unread bytes.
                let mut sink = [0u8; 65536];
                while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut sink)).await {
                    if n == 0 {
                        break;
                    }
                }
                return;
            }
            Action::ReplyThenStray(bytes, stray) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                if stream.write_all(&stray).await.is_err() {
                    return;
                }
            }
            Action::Reply(bytes) => {
                while buf.len() < length {
                    let mut chunk = [0u8; 65536];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                buf.drain(..length);
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads into `buf` until `pat` appears; its index, or `None` at EOF.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, pat: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(pat.len()).position(|w| w == pat) {
            return Some(i);
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// POSTs `{}` to /order.
async fn post_order(gw: &TestGateway) -> warden_testkit::Reply {
    let req = Request::post(gw.url("/order")).body(Full::new(Bytes::from_static(b"{}")));
    send(&http1(), req.unwrap()).await
}

/// GETs `path` three times; each must be answered 200 with `body`.
async fn three_gets(gw: &TestGateway, path: &str, body: &str) {
    for _ in 0..3 {
        let reply = get(&gw.url(path)).await;
        assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, body));
    }
}

/// One worker, so every request uses the same per-worker pool.
async fn gateway(up: &Scripted) -> TestGateway {
    TestGateway::start_with_workers(
        &format!(
            "services:\n  - name: api\n    targets: [\"{}\"]\n    health: {{ passive: {{ consecutive_failures: 0 }} }}\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n",
            up.addr
        ),
        1,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_response_framing_gets_502_and_the_connection_is_dropped() {
    let bad: &[&str] = &[
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nevil",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 4\r\n\r\nevil",
        "HTTP/1.1 200 OK\r\nContent-Length : 4\r\n\r\nevil",
        "HTTP/1.1 200 OK\r\nX-A: a\rContent-Length: 4\r\n\r\nevil",
    ];
    for (i, raw) in bad.iter().enumerate() {
        let raw = raw.as_bytes().to_vec();
        let up = Scripted::start(move |seen| {
            if seen.path == "/bad" {
                Action::Reply(raw.clone())
            } else {
                Action::Reply(ok("fine"))
            }
        })
        .await;
        let gw = gateway(&up).await;
        let reply = get(&gw.url("/bad")).await;
        assert_eq!(reply.status, 502, "case {i}: {}", reply.text());
        assert_eq!(reply.headers["content-type"], "application/problem+json", "case {i}");
        assert!(!reply.text().contains("evil"), "case {i}");
        // The connection that carried the ambiguous response is gone: the
        // next request opens a new one and gets its own answer.
        let next = get(&gw.url("/ok")).await;
        assert_eq!((next.status.as_u16(), next.text().as_str()), (200, "fine"), "case {i}");
        assert_eq!(up.accepts(), 2, "case {i}: the ambiguous connection was reused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_a_response_never_reach_the_next_client() {
    // The upstream answers /first with its response and, in the same write,
    // a second complete response nobody asked for.
    let up = Scripted::start(|seen| match seen.path.as_str() {
        "/first" => {
            let mut bytes = ok("first");
            bytes.extend_from_slice(&ok("smuggled"));
            Action::Reply(bytes)
        }
        _ => Action::Reply(ok("second")),
    })
    .await;
    let gw = gateway(&up).await;
    let first = get(&gw.url("/first")).await;
    assert_eq!((first.status.as_u16(), first.text().as_str()), (200, "first"));
    three_gets(&gw, "/second", "second").await;
    assert_eq!(up.accepts(), 2, "the connection with stray bytes must not be pooled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_responses_are_decoded_and_the_connection_reused() {
    let up = Scripted::start(|_| {
        Action::Reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let gw = gateway(&up).await;
    three_gets(&gw, "/c", "hello, world").await;
    assert_eq!(
        up.accepts(),
        1,
        "a cleanly ended chunked response leaves the connection reusable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunk_ends_the_response_and_the_connection() {
    let up = Scripted::start(|seen| match seen.path.as_str() {
        "/bad" => {
            Action::Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX-5\r\n\r\n".to_vec())
        }
        _ => Action::Reply(ok("fine")),
    })
    .await;
    let gw = gateway(&up).await;
    let client = http1();
    let resp = client
        .request(Request::get(gw.url("/bad")).body(Full::default()).unwrap())
        .await;
    // The head may already be on its way when the bad chunk is found; the
    // body then fails instead of completing.
    if let Ok(resp) = resp {
        use http_body_util::BodyExt;
        assert!(resp.into_body().collect().await.is_err(), "a broken body was completed");
    }
    let next = get(&gw.url("/ok")).await;
    assert_eq!((next.status.as_u16(), next.text().as_str()), (200, "fine"));
    assert_eq!(up.accepts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_responses_are_skipped() {
    let up = Scripted::start(|_| {
        let mut bytes =
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n".to_vec();
        bytes.extend_from_slice(&ok("final"));
        Action::Reply(bytes)
    })
    .await;
    let gw = gateway(&up).await;
    let reply = get(&gw.url("/x")).await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "final"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_refusing_a_body_early_is_heard() {
    let up = Scripted::start(|_| {
        Action::ReplyAndClose(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!".to_vec(),
        )
    })
    .await;
    let gw = gateway(&up).await;
    let body = Bytes::from(vec![b'a'; 512 * 1024]);
    let reply = send(
        &http1(),
        Request::post(gw.url("/upload")).body(Full::new(body)).unwrap(),
    )
    .await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (413, "too big!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_closed_under_a_request_is_replayed_only_when_safe() {
    // Every connection answers one request; a second request on it is met
    // with a close, as when an upstream's keep-alive timer fires just as the
    // request arrives.
    let up = Scripted::start(|seen| {
        if seen.nth_on_conn > 1 {
            Action::Close
        } else {
            Action::Reply(ok(&format!("{} {}", seen.method, seen.path)))
        }
    })
    .await;
    let gw = gateway(&up).await;
    assert_eq!(get(&gw.url("/warm")).await.status, 200);
    // A GET without a body is safe to send again on a new connection.
    let reply = get(&gw.url("/again")).await;
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "GET /again"));
    assert_eq!(
        up.requests(),
        3,
        "/warm, /again on the old connection, /again on a new one"
    );
    // A POST is not: it fails rather than risk running twice.
    let post = post_order(&gw).await;
    assert_eq!(post.status, 502);
    assert_eq!(up.requests(), 4, "the POST reached the upstream once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_reaches_the_client_while_its_body_is_still_coming() {
    // The upstream refuses as soon as it has the head and stops reading; the
    // client has sent 1 KB of a declared 1 MB and is still "uploading".
    let up = Scripted::start(|_| {
        Action::ReplyEarly(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 7\r\n\r\nno auth".to_vec())
    })
    .await;
    let gw = gateway(&up).await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[b'a'; 1000]).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Well inside the 30 s first-byte default: the answer is not held back
    // until the body is done.
    let read = tokio::time::timeout(Duration::from_secs(3), async {
        while !got.windows(7).any(|w| w == b"no auth") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got);
    assert!(read.is_ok(), "no answer while the body was still coming: {text:?}");
    assert!(status_line(&text).contains("401"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_closed_after_its_answer_never_carries_the_next_request() {
    // Every connection answers one request and closes, without saying so (no
    // `Connection: close`): as an upstream with a very short keep-alive. The
    // close is seen before the connection is used again, so a POST goes out
    // once, on a new connection, and so does a GET.
    let up = Scripted::start(|seen| Action::ReplyAndClose(ok(&format!("{} {}", seen.method, seen.path)))).await;
    let gw = gateway(&up).await;
    assert_eq!(get(&gw.url("/warm")).await.status, 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let post = post_order(&gw).await;
    assert_eq!((post.status.as_u16(), post.text().as_str()), (200, "POST /order"));
    assert_eq!((up.requests(), up.accepts()), (2, 2));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = get(&gw.url("/again")).await;
    assert_eq!((again.status.as_u16(), again.text().as_str()), (200, "GET /again"));
    assert_eq!((up.requests(), up.accepts()), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_arriving_after_a_bodiless_response_never_answer_the_next_request() {
    // The upstream answers HEAD with its head only, then — a moment later, in
    // a segment of its own — writes a complete response nobody asked for (a
    // body sent for HEAD, shaped like a response). The next request, sent
    // well within a keep-alive, must not be answered with it.
    let up = Scripted::start(|seen| {
        if seen.method == "HEAD" {
            Action::ReplyThenStray(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n".to_vec(), ok("smuggled"))
        } else {
            Action::Reply(ok("fine"))
        }
    })
    .await;
    let gw = gateway(&up).await;
    let head = send(&http1(), Request::head(gw.url("/head")).body(Full::default()).unwrap()).await;
    assert_eq!(head.status, 200);
    tokio::time::sleep(Duration::from_millis(30)).await;
    three_gets(&gw, "/next", "fine").await;
    assert_eq!(
        up.accepts(),
        2,
        "the connection with stray bytes was dropped, the next one kept"
    );
}
