//! Dynamic blocks end to end: the admin API (bearer token, clear refusals)
//! blocks an IPv4 network, an IPv6 /64 and a consumer, and nothing else; a
//! block expires by itself and can be lifted. Two `warden run` processes
//! sharing one real Redis: a block set with `warden blocks add` through one
//! is enforced by the other, listed by it, and lifted through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use warden_testkit::process::{free_port, redis_url, run_gateway};
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, run_cli, send, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_warden");
const TOKEN: &str = "admin-token-0123456789abcdef0123456789";

async fn call(url: &str, xff: &str, key: Option<&str>) -> Reply {
    let mut req = http::Request::get(url).header("x-forwarded-for", xff);
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    send(&http1(), req.body(Full::<Bytes>::default()).unwrap()).await
}

async fn admin(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(&http1(), req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await
}

/// Polls `url` (as client `xff`) until it answers `want`; panics after 10 s.
async fn until_status(url: &str, xff: &str, want: u16) {
    for _ in 0..200 {
        if call(url, xff, None).await.status == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} as {xff} never answered {want}");
}

fn write_token(dir: &Path) -> String {
    let file = dir.join("admin.token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    file.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_blocks_networks_and_consumers_and_nothing_else() {
    let up = MockUpstream::start("api").await;
    let dir = temp_dir("blocks");
    let config = dir.join("warden.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  - name: m\n    bind: 127.0.0.1:0\n    plain_http: serve\nadmin:\n  bind: 127.0.0.1:0\n  api_token_file: {}\ntrusted_proxies: [127.0.0.1/32]\nstore:\n  data_dir: \"{}\"\nconsumers:\n  - {{ name: alice }}\n  - {{ name: bob }}\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: open\n    path: {{ prefix: /open }}\n    service: api\n  - id: keyed\n    path: {{ prefix: /keyed }}\n    service: api\n    policies:\n      - type: api_key\n",
            write_token(&dir),
            dir.join("data").display(),
            up.addr
        ),
    )
    .unwrap();
    let gw = TestGateway::start_file(&config).await;
    let adm = gw.gw().admin_addr().unwrap();
    let alice = run_cli(BIN, &config, &["keys", "create", "--consumer", "alice"]);
    let bob = run_cli(BIN, &config, &["keys", "create", "--consumer", "bob"]);
    let (alice, bob) = (alice.trim(), bob.trim());
    let open = gw.url("/open/x");
    let keyed = gw.url("/keyed/x");

    // The admin API wants the token.
    let add = r#"{"target": "203.0.113.0/24", "ttl_secs": 3600, "reason": "scanner from ticket 42"}"#;
    let r = admin(adm, "POST", "/blocks", None, add).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("www-authenticate"));
    assert_eq!(
        admin(adm, "POST", "/blocks", Some("admin-token-wrong"), add)
            .await
            .status,
        401
    );
    assert_eq!(
        admin(adm, "GET", "/blocks", Some(&TOKEN[..TOKEN.len() - 1]), "")
            .await
            .status,
        401
    );
    assert_eq!(
        call(&open, "203.0.113.9", None).await.status,
        200,
        "nothing blocked yet"
    );

    // An IPv4 network: its addresses are refused, the neighbour is not.
    let r = admin(adm, "POST", "/blocks", Some(TOKEN), add).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["target"], "203.0.113.0/24");
    let before = up.hits();
    let r = call(&open, "203.0.113.9", None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(
        !r.text().contains("scanner"),
        "the reason reached the client: {}",
        r.text()
    );
    assert_eq!(call(&keyed, "203.0.113.200", Some(alice)).await.status, 403);
    assert_eq!(up.hits(), before, "a blocked request reached the upstream");
    assert_eq!(call(&open, "203.0.114.1", None).await.status, 200);

    // An IPv6 /64: the whole prefix, not the next one.
    let v6 = r#"{"target": "2001:db8:1:2::77/64", "ttl_secs": 600}"#;
    let r = admin(adm, "POST", "/blocks", Some(TOKEN), v6).await;
    assert_eq!(r.json()["target"], "2001:db8:1:2::/64", "host bits cleared");
    assert_eq!(call(&open, "2001:db8:1:2:abcd::1", None).await.status, 403);
    assert_eq!(call(&open, "2001:db8:1:3::1", None).await.status, 200);

    // A consumer: refused from any address; another consumer is not.
    let r = admin(
        adm,
        "POST",
        "/blocks",
        Some(TOKEN),
        r#"{"target": "consumer:bob", "ttl_secs": 600}"#,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(call(&keyed, "198.51.100.1", Some(bob)).await.status, 403);
    assert_eq!(call(&keyed, "198.51.100.1", Some(alice)).await.status, 200);

    // Listed with their reasons (operators only).
    let list = admin(adm, "GET", "/blocks", Some(TOKEN), "").await.json();
    let targets: Vec<&str> = list["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["2001:db8:1:2::/64", "203.0.113.0/24", "consumer:bob"]);
    assert_eq!(list["blocks"][1]["reason"], "scanner from ticket 42");

    // Lifted: served again; lifting twice is a 404.
    let lift = "/blocks?target=consumer%3Abob";
    assert_eq!(admin(adm, "DELETE", lift, Some(TOKEN), "").await.status, 204);
    assert_eq!(call(&keyed, "198.51.100.1", Some(bob)).await.status, 200);
    assert_eq!(admin(adm, "DELETE", lift, Some(TOKEN), "").await.status, 404);

    // Bad requests are refused with a reason, and change nothing.
    for bad in [
        r#"{"target": "0.0.0.0/0", "ttl_secs": 60}"#,
        r#"{"target": "not-an-address", "ttl_secs": 60}"#,
        r#"{"target": "192.0.2.1", "ttl_secs": 0}"#,
        r#"{"target": "192.0.2.1", "ttl_secs": 99999999}"#,
        r#"{"target": "192.0.2.1", "ttl_secs": 60, "extra": true}"#,
        "not json",
    ] {
        let r = admin(adm, "POST", "/blocks", Some(TOKEN), bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.json()["detail"].as_str().is_some_and(|d| !d.is_empty()), "{bad}");
    }
    assert_eq!(call(&open, "192.0.2.1", None).await.status, 200);

    // A block ends by itself.
    let r = admin(
        adm,
        "POST",
        "/blocks",
        Some(TOKEN),
        r#"{"target": "192.0.2.50", "ttl_secs": 1}"#,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(call(&open, "192.0.2.50", None).await.status, 403);
    until_status(&open, "192.0.2.50", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_set_through_one_gateway_is_enforced_by_another_sharing_redis() {
    let up = MockUpstream::start("api").await;
    let dir = temp_dir("blocks-cluster");
    let prefix = format!("warden-test:{}:", dir.file_name().unwrap().to_string_lossy());
    let token = write_token(&dir);
    let mut procs = Vec::new();
    let mut bases = Vec::new();
    let mut configs = Vec::new();
    for n in 0..2 {
        let (port, admin) = (free_port().await, free_port().await);
        let config = dir.join(format!("gw{n}.yaml"));
        std::fs::write(
            &config,
            format!(
                "listeners:\n  - name: m\n    bind: 127.0.0.1:{port}\n    plain_http: serve\nadmin:\n  bind: 127.0.0.1:{admin}\n  api_token_file: {token}\naccess_log: off\ntrusted_proxies: [127.0.0.1/32]\nshared_state:\n  redis_url: \"{}\"\n  key_prefix: \"{prefix}\"\n  block_refresh_ms: 200\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: all\n    path: {{ prefix: / }}\n    service: api\n",
                redis_url(),
                up.addr,
            ),
        )
        .unwrap();
        procs.push(run_gateway(BIN, &config, admin, &dir.join(format!("gw{n}.log"))).await);
        bases.push(format!("http://127.0.0.1:{port}/x"));
        configs.push(config);
    }
    let (a, b) = (&bases[0], &bases[1]);
    assert_eq!(call(b, "192.0.2.1", None).await.status, 200);

    let out = run_cli(
        BIN,
        &configs[0],
        &["blocks", "add", "192.0.2.0/24", "--for", "1h", "--reason", "incident 7"],
    );
    assert!(out.starts_with("blocked 192.0.2.0/24 until "), "{out}");
    assert_eq!(call(a, "192.0.2.1", None).await.status, 403, "the gateway that set it");
    until_status(b, "192.0.2.1", 403).await;
    assert_eq!(call(b, "192.0.3.1", None).await.status, 200, "outside the block");

    let listed = run_cli(BIN, &configs[1], &["blocks", "list"]);
    assert!(
        listed.contains("192.0.2.0/24") && listed.contains("incident 7"),
        "{listed}"
    );

    let out = run_cli(BIN, &configs[1], &["blocks", "remove", "192.0.2.0/24"]);
    assert!(out.contains("lifted"), "{out}");
    assert_eq!(call(b, "192.0.2.1", None).await.status, 200);
    until_status(a, "192.0.2.1", 200).await;
    let err = warden_testkit::run_cli_fails(BIN, &configs[1], &["blocks", "remove", "192.0.2.0/24"]);
    assert!(err.contains("404"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_cuts_a_websocket_opened_before_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = MockUpstream::start("api").await;
    let dir = temp_dir("blocks-ws");
    let config = dir.join("warden.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  - name: m\n    bind: 127.0.0.1:0\n    plain_http: serve\nadmin:\n  bind: 127.0.0.1:0\n  api_token_file: {}\ntrusted_proxies: [127.0.0.1/32]\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: open\n    path: {{ prefix: / }}\n    service: api\n",
            write_token(&dir),
            up.addr
        ),
    )
    .unwrap();
    let gw = TestGateway::start_file(&config).await;
    let adm = gw.gw().admin_addr().unwrap();
    let open_ws = |xff: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let head = format!(
            "GET /ws HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {xff}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
        s
    };
    let echo = |mut s: tokio::net::TcpStream| async move {
        s.write_all(b"frame").await.ok()?;
        let mut got = [0u8; 5];
        match tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut got)).await {
            Ok(Ok(_)) if &got == b"frame" => Some(s),
            _ => None,
        }
    };
    let blocked = echo(open_ws("198.51.100.7").await)
        .await
        .expect("tunnel works before the block");
    let neighbour = echo(open_ws("198.51.100.8").await)
        .await
        .expect("neighbour tunnel works");

    let add = r#"{"target": "198.51.100.7", "ttl_secs": 600, "reason": "incident 7"}"#;
    assert_eq!(admin(adm, "POST", "/blocks", Some(TOKEN), add).await.status, 201);
    // The open tunnel of the blocked address ends (the guard only stops a hang).
    let mut blocked = blocked;
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(15), blocked.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the blocked client's tunnel stayed open");
    // The neighbour's tunnel is untouched.
    assert!(echo(neighbour).await.is_some(), "an unblocked tunnel was cut");
}
