//! What the gateway writes never holds a card number or an API key that went
//! through it: a real `warden run` process, its access log file and its
//! standard error (debug level) are read after requests that carry both in
//! the path, the query, a header, a request body and upstream responses
//! (one of them a stack trace, whose original the log keeps, scrubbed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use warden_testkit::process::{Proc, free_port, wait_ready};
use warden_testkit::{MockUpstream, http1, send, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_warden");
const CARD: &str = "4111111111111111";
const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const TOKEN: &str = "ghp_R8x2Lq9ZtV4mN7pK3sW6yB1cD5fH0jG2aE8u";

#[tokio::test]
async fn a_card_number_and_an_api_key_never_reach_the_logs() {
    let up = MockUpstream::start("a").await;
    let dir = temp_dir("log-redaction");
    let (port, admin) = (free_port().await, free_port().await);
    let access = dir.join("access.log");
    let config = dir.join("gw.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  - name: m\n    bind: 127.0.0.1:{port}\n    plain_http: serve\nadmin:\n  bind: 127.0.0.1:{admin}\naccess_log: {{ file: \"{}\" }}\nservices:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: pay\n    path: {{ prefix: /pay }}\n    service: a\n    policies:\n      - type: data_leak\n      - type: error_leaks\n  - id: plain\n    path: {{ prefix: /plain }}\n    service: a\n",
            access.display(),
            up.addr
        ),
    )
    .unwrap();
    let log = dir.join("stderr.log");
    let child = Command::new(BIN)
        .args(["run", "--watch-secs", "0", "--config"])
        .arg(&config)
        .env("WARDEN_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    wait_ready(admin, &log).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = http1();
    let post = |path: &str, status: u16, media: &str, body: String| {
        Request::post(format!("{base}{path}"))
            .header("x-reply-status", status.to_string())
            .header("x-reply-type", media)
            .header("x-api-key", TOKEN)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };

    // In the path and the query of a route without response policies.
    let r = send(
        &client,
        Request::get(format!("{base}/plain/cards/{CARD}?key={KEY}"))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    // In a JSON response: masked for the client too.
    let body = format!(r#"{{"card":"{CARD}","aws":"{KEY}","api_token":"{TOKEN}"}}"#);
    let r = send(&client, post("/pay/reply", 200, "application/json", body)).await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        !text.contains(CARD) && !text.contains(KEY) && !text.contains(TOKEN),
        "{text}"
    );
    // In a stack trace: replaced for the client, kept (scrubbed) in the log.
    let trace = format!(
        "java.lang.IllegalStateException: charge failed for card {CARD} with key {KEY}\n\tat com.shop.billing.ChargeService.charge(ChargeService.java:77)\n"
    );
    let r = send(&client, post("/pay/reply", 500, "text/plain", trace)).await;
    assert_eq!(r.status, 502);
    assert!(!String::from_utf8_lossy(&r.body).contains("ChargeService"));

    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(proc);
    let stderr = std::fs::read_to_string(&log).unwrap();
    let access = std::fs::read_to_string(&access).unwrap();
    for (name, text) in [("standard error", &stderr), ("access log", &access)] {
        for secret in [CARD, KEY, TOKEN] {
            assert!(!text.contains(secret), "{name} holds {secret}");
        }
    }
    assert!(
        access.contains("/plain/cards/[REDACTED:card]"),
        "the access log keeps the rest of the path"
    );
    let leak = stderr
        .lines()
        .find(|l| l.contains("warden::leak"))
        .expect("the replaced trace is logged");
    assert!(
        leak.contains("ChargeService.java:77")
            && leak.contains("[REDACTED:card]")
            && leak.contains("[REDACTED:cloud_key]"),
        "{leak}"
    );
}
