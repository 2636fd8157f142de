//! End-to-end: the `injection` policy in front of a real upstream. The whole
//! labelled corpus goes through the gateway three ways (a query parameter, a
//! JSON body field and a header); the figures are printed
//! (`cargo nextest run -p warden --test injection --no-capture`) and quoted in
//! `docs/policies/injection.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, send};

async fn setup(policy: &str) -> (MockUpstream, TestGateway) {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: /api }}\n    service: a\n    policies:\n      - type: injection\n{policy}  - id: report\n    path: {{ prefix: /report }}\n    service: a\n    policies:\n      - type: injection\n        mode: report\n",
        up.addr
    );
    (up, TestGateway::start(&yaml).await)
}

fn load(name: &str) -> Vec<(String, String)> {
    let path = format!("{}/../warden-waf/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.to_owned(), b.to_owned())
        })
        .collect()
}

/// Every byte but the unreserved ones percent-encoded, so the gateway's one
/// round of query decoding yields exactly the sample.
fn encode(s: &str) -> String {
    s.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

const PLACES: [&str; 3] = ["query", "json", "header"];

/// Sends `sample` in one place; true when the gateway refused it with 403.
async fn refused(gw: &TestGateway, place: &str, sample: &str) -> bool {
    // The field name marks a URL, so the SSRF checks run on every sample.
    let req = match place {
        "query" => Request::get(gw.url(&format!("/api/search?ref_url={}", encode(sample)))).body(Full::default()),
        "json" => Request::post(gw.url("/api/items"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                serde_json::json!({ "ref_url": sample }).to_string(),
            ))),
        _ => Request::get(gw.url("/api/search"))
            .header("x-ref-url", http::HeaderValue::from_bytes(sample.as_bytes()).unwrap())
            .body(Full::default()),
    };
    let reply = send(&http1(), req.unwrap()).await;
    match reply.status.as_u16() {
        403 => {
            assert_eq!(reply.json()["type"], "urn:warden:problem:forbidden");
            true
        }
        200 => false,
        other => panic!("{place}: unexpected {other} for {sample:?}: {}", reply.text()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_corpus_in_query_json_and_header_at_the_default_level() {
    let (up, gw) = setup("").await;
    let attacks = load("attacks.tsv");
    let benign = load("benign.tsv");
    assert!(attacks.len() >= 300 && benign.len() >= 300);

    let mut detected: BTreeMap<(String, &str), (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for (category, sample) in &attacks {
        for place in PLACES {
            let hit = refused(&gw, place, sample).await;
            let e = detected.entry((category.clone(), place)).or_default();
            e.0 += usize::from(hit);
            e.1 += 1;
            if !hit {
                misses.push(format!("{place}\t{category}\t{sample}"));
            }
        }
    }
    let mut false_positives: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (kind, sample) in &benign {
        for place in PLACES {
            if refused(&gw, place, sample).await {
                false_positives
                    .entry(place)
                    .or_default()
                    .push(format!("{kind}\t{sample}"));
            }
        }
    }
    let passed = benign.len() * 3 - false_positives.values().map(Vec::len).sum::<usize>() + misses.len();
    assert_eq!(up.hits(), passed, "only what passed reached the upstream");

    println!("category    query          json           header");
    let categories: Vec<&String> = attacks
        .iter()
        .map(|(c, _)| c)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for c in &categories {
        let mut line = format!("{c:<11}");
        for place in PLACES {
            let (hit, total) = detected[&((*c).clone(), place)];
            let _ = write!(line, " {hit:>3}/{total:<3} {:>5.1}%", 100.0 * hit as f64 / total as f64);
        }
        println!("{line}");
    }
    let mut line = format!("{:<11}", "benign FP");
    for place in PLACES {
        let n = false_positives.get(place).map_or(0, Vec::len);
        let _ = write!(
            line,
            " {n:>3}/{:<3} {:>5.1}%",
            benign.len(),
            100.0 * n as f64 / benign.len() as f64
        );
    }
    println!("{line}");
    for m in &misses {
        println!("missed: {m}");
    }
    for (place, fps) in &false_positives {
        for f in fps {
            println!("false positive: {place}\t{f}");
        }
    }
    for ((c, place), (hit, total)) in &detected {
        assert!(*hit as f64 >= 0.95 * *total as f64, "{c} in {place}: {hit}/{total}");
    }
    for place in PLACES {
        let n = false_positives.get(place).map_or(0, Vec::len);
        assert!(n as f64 <= 0.01 * benign.len() as f64, "{place}: {n} false positives");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_names_the_place_and_never_echoes_the_value() {
    let (up, gw) = setup("").await;
    let reply = send(
        &http1(),
        Request::post(gw.url("/api/users"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                r#"{"profile":{"bio":"<script>steal()</script>"}}"#,
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 403);
    let problem = reply.json();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("xss") && detail.contains("/body/profile/bio"),
        "{detail}"
    );
    assert!(!reply.text().contains("steal"), "{}", reply.text());
    assert!(
        problem["request_id"].is_string() || problem["instance"].is_string(),
        "{problem}"
    );
    assert_eq!(up.hits(), 0);

    // The benign look-alike goes through untouched.
    let ok = send(
        &http1(),
        Request::post(gw.url("/api/users"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                r#"{"profile":{"bio":"I <3 select plans & O'Brien's scripts"}}"#,
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(up.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_forwards_the_attack_and_counts_an_event() {
    let (up, gw) = setup("").await;
    let attack = format!("/report/search?q={}", encode("1 UNION SELECT password FROM users"));
    let reply = send(&http1(), Request::get(gw.url(&attack)).body(Full::default()).unwrap()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(up.hits(), 1);
    let enforced = send(
        &http1(),
        Request::get(gw.url(&attack.replace("/report", "/api")))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(enforced.status, 403);
    assert_eq!(up.hits(), 1);
    assert!(gw.security_events("injection").await >= 2);
}
