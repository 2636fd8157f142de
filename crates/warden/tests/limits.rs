//! End-to-end: caps and malformed HTTP. Oversized requests get 431/414/413;
//! each malformed framing case gets 400 and a closed connection, and nothing
//! reaches the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, raw, send};

async fn setup(limits: &str) -> (MockUpstream, TestGateway) {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        "{limits}services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: a\n  - id: small\n    path: {{ prefix: /small }}\n    service: a\n    policies:\n      - type: request_limits\n        max_body_bytes: 100\n        max_headers: 10\n        max_uri_bytes: 64\n",
        up.addr
    );
    (up, TestGateway::start(&yaml).await)
}

fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_uri_and_body_get_431_414_413() {
    let (up, gw) = setup("limits:\n  max_header_bytes: 4096\n  max_uri_bytes: 1024\n  max_body_bytes: 65536\n").await;
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(5000)
    );
    let resp = raw(gw.addr, big_header.as_bytes()).await.0;
    assert!(status_line(&resp).contains("431"), "{resp}");
    assert!(resp.contains("application/problem+json"));
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let resp = raw(
        gw.addr,
        format!("GET / HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .0;
    assert!(status_line(&resp).contains("431"), "{resp}");
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "u".repeat(2000)
    );
    let resp = raw(gw.addr, long_uri.as_bytes()).await.0;
    assert!(status_line(&resp).contains("414"), "{resp}");
    assert!(resp.contains("urn:warden:problem:uri-too-long"));
    let body = Bytes::from(vec![b'b'; 70_000]);
    let reply = send(&http1(), Request::post(gw.url("/up")).body(Full::new(body)).unwrap()).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["type"], "urn:warden:problem:payload-too-large");
    assert_eq!(up.hits(), 0, "nothing oversized reached the upstream");
    // Benign: just under every cap.
    let ok = send(
        &http1(),
        Request::post(gw.url("/up"))
            .body(Full::new(Bytes::from(vec![b'b'; 60_000])))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_route_cap_is_cut_off_with_413() {
    let (up, gw) = setup("").await;
    let chunk = format!("{:x}\r\n{}\r\n", 80, "c".repeat(80));
    let req = format!("POST /small/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n");
    let (resp, closed) = raw(gw.addr, req.as_bytes()).await;
    assert!(status_line(&resp).contains("413"), "{resp}");
    assert!(closed);
    assert!(
        up.seen().iter().all(|r| r.body.len() <= 100),
        "upstream never got more than the cap"
    );
    let ok = format!(
        "POST /small/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk}0\r\n\r\n"
    );
    assert!(status_line(&raw(gw.addr, ok.as_bytes()).await.0).contains("200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_request_limits_apply_on_top_of_listener_caps() {
    let (up, gw) = setup("").await;
    let resp = raw(
        gw.addr,
        format!(
            "GET /small/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "q".repeat(80)
        )
        .as_bytes(),
    )
    .await
    .0;
    assert!(status_line(&resp).contains("414"), "{resp}");
    let many: String = (0..12).map(|i| format!("X-H{i}: v\r\n")).collect();
    let resp = raw(
        gw.addr,
        format!("GET /small HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes(),
    )
    .await
    .0;
    assert!(status_line(&resp).contains("431"), "{resp}");
    let resp = raw(
        gw.addr,
        b"POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\nConnection: close\r\n\r\n",
    )
    .await
    .0;
    assert!(status_line(&resp).contains("413"), "{resp}");
    assert_eq!(up.hits(), 0);
    // The same requests are fine on the unrestricted route.
    let resp = raw(
        gw.addr,
        format!(
            "GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "q".repeat(80)
        )
        .as_bytes(),
    )
    .await
    .0;
    assert!(status_line(&resp).contains("200"), "{resp}");
}

const MALFORMED: [(&str, &str); 12] = [
    (
        "CL and TE",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE and CL",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    ),
    (
        "two different CLs",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    ),
    (
        "invalid chunk size",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "oversized chunk size",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n0\r\n\r\n",
    ),
    ("obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n  two\r\n\r\n"),
    ("bare LF", "GET / HTTP/1.1\nHost: x\n\n"),
    ("bare LF in header", "GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n"),
    ("bare CR", "GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n"),
    (
        "invalid header name",
        "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    ),
    ("space before colon", "GET / HTTP/1.1\r\nHost: x\r\nX-A : v\r\n\r\n"),
    (
        "TE not chunked",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_http_gets_400_and_a_closed_connection_and_never_reaches_upstream() {
    let (up, gw) = setup("").await;
    for (name, bytes) in MALFORMED {
        let (resp, closed) = raw(gw.addr, bytes.as_bytes()).await;
        assert!(status_line(&resp).starts_with("HTTP/1.1 400"), "{name}: {resp:?}");
        assert!(resp.contains("application/problem+json"), "{name}: {resp:?}");
        assert!(closed, "{name}: connection left open");
    }
    assert_eq!(up.hits(), 0, "a malformed request reached the upstream");
    // A smuggling attempt after a valid request on the same connection: the first
    // is answered, the second refused, the smuggled request never forwarded.
    let pipelined = "GET /first HTTP/1.1\r\nHost: x\r\n\r\nPOST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (resp, closed) = raw(gw.addr, pipelined.as_bytes()).await;
    assert!(closed, "{resp}");
    assert!(up.seen().iter().all(|r| r.uri != "/smuggle"));
    // Benign look-alikes pass: chunked with extension, repeated equal CLs.
    let ok = [
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "GET / HTTP/1.1\r\nHost: x\r\nX-Tab:\tvalue\r\nConnection: close\r\n\r\n",
    ];
    for bytes in ok {
        let resp = raw(gw.addr, bytes.as_bytes()).await.0;
        assert!(status_line(&resp).starts_with("HTTP/1.1 200"), "{bytes:?}: {resp}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_duplicate_host_is_refused() {
    let (up, gw) = setup("").await;
    let resp = raw(gw.addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await.0;
    assert!(status_line(&resp).contains("400"), "{resp}");
    let resp = raw(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .await
    .0;
    assert!(status_line(&resp).contains("400"), "{resp}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_breaking_the_shape_limits_never_reach_the_upstream() {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: orders\n    path: {{ prefix: /orders }}\n    service: a\n    policies:\n      - type: request_limits\n        json: {{ max_depth: 4, max_array_items: 50, max_string_bytes: 256 }}\n",
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let post = |body: String| {
        Request::post(gw.url("/orders"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let attacks = [
        (
            "deep",
            format!("{}1{}", "[".repeat(500), "]".repeat(500)),
            "/body/0/0/0/0",
        ),
        (
            "wide",
            format!(r#"{{"items":[{}]}}"#, vec!["1"; 51].join(",")),
            "/body/items",
        ),
        (
            "long string",
            format!(r#"{{"note":"{}"}}"#, "A".repeat(300)),
            "/body/note",
        ),
        (
            "duplicate",
            r#"{"role":"user","rOLE":"admin"}"#.to_owned(),
            "/body/rOLE",
        ),
        ("trailing", r#"{"a":1}{"role":"admin"}"#.to_owned(), "/body"),
    ];
    for (name, body, pointer) in attacks {
        let reply = send(&http1(), post(body)).await;
        assert_eq!(reply.status, 400, "{name}: {}", reply.text());
        let doc = reply.json();
        assert!(doc["detail"].as_str().unwrap().starts_with(pointer), "{name}: {doc}");
        assert!(
            !reply.text().contains("AAAA") && !reply.text().contains("admin"),
            "{name} echoed"
        );
    }
    assert_eq!(up.hits(), 0, "no refused document reached the upstream");
    // The benign look-alike: nested, with arrays and long-ish strings, within limits.
    let ok = r#"{"customer":{"name":"O'Brien","tags":["a","b"]},"lines":[{"sku":"X-1","qty":2}],"note":"select a plan from the menu"}"#;
    let reply = send(&http1(), post(ok.to_owned())).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(up.hits(), 1);
    assert_eq!(
        up.seen()[0].body,
        ok.as_bytes(),
        "the body reaches the upstream unchanged"
    );
}
