//! Rate limits end to end: a concurrent burst against one gateway admits
//! exactly the limit with correct headers and problem documents; three
//! `warden run` processes sharing one real Redis admit the limit across all
//! of them, keep answering (local share or fail closed, as configured) while
//! Redis is cut off, and limit exactly again once it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use warden_testkit::process::{Cuttable, TestCluster, free_port, redis_url, run_gateway};
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, send, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_warden");

async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = http::Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(&http1(), req.body(Full::<Bytes>::default()).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_burst_admits_exactly_the_limit_with_headers() {
    let up = MockUpstream::start("api").await;
    let gw = TestGateway::start(&format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: limited\n    path: {{ prefix: /limited }}\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - {{ name: per-ip, key: [ip], rate: {{ requests: 10, per_secs: 60 }} }}\n          - {{ name: daily, key: [ip], quota: {{ requests: 1000, per: day }} }}\n",
        up.addr
    ))
    .await;
    let url = gw.url("/limited/x");
    let replies = futures_util::future::join_all((0..40).map(|_| get(&url, &[]))).await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!((ok.len(), refused.len()), (10, 30));
    assert_eq!(up.hits(), 10, "refused requests reached the upstream");
    let policy = ok[0].headers["ratelimit-policy"].to_str().unwrap();
    assert_eq!(policy, "\"per-ip\";q=10;w=60, \"daily\";q=1000;w=86400");
    let state = ok[0].headers["ratelimit"].to_str().unwrap();
    assert!(state.starts_with("\"per-ip\";r="), "{state}");
    let r = refused[0];
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.json()["status"], 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&retry), "retry-after {retry}");
    assert!(r.headers["ratelimit"].to_str().unwrap().contains("\"per-ip\";r=0"));
}

/// Sends `n` requests for `tenant` spread over `bases` (concurrently) and
/// returns how many each gateway admitted, and the slowest answer.
async fn load(bases: &[String], path: &str, tenant: &str, n: usize) -> (Vec<usize>, Vec<u16>, Duration) {
    let tasks = (0..n).map(|i| {
        let url = format!("{}{path}", bases[i % bases.len()]);
        let tenant = tenant.to_owned();
        async move {
            let t = Instant::now();
            let r = get(&url, &[("x-tenant", &tenant)]).await;
            (i % 3, r.status.as_u16(), t.elapsed())
        }
    });
    let results = futures_util::future::join_all(tasks).await;
    let mut per = vec![0; bases.len()];
    let mut statuses = Vec::new();
    let mut slowest = Duration::ZERO;
    for (g, status, took) in results {
        if status == 200 {
            per[g] += 1;
        }
        statuses.push(status);
        slowest = slowest.max(took);
    }
    (per, statuses, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_share_limits_in_redis_and_survive_its_outage() {
    let up = MockUpstream::start("api").await;
    let redis = Cuttable::start(redis_url().trim_start_matches("redis://").trim_end_matches('/'))
        .await
        .unwrap();
    let dir = temp_dir("rl-cluster");
    let prefix = format!("warden-test:{}:", dir.file_name().unwrap().to_string_lossy());
    let limit = |fallback: &str| {
        format!(
            "      - type: rate_limit\n        limits:\n          - {{ name: tenant, key: [\"header:x-tenant\"], rate: {{ requests: 100, per_secs: 60 }} }}\n        on_shared_unavailable: {fallback}\n        nodes: 3\n"
        )
    };
    let mut procs = Vec::new();
    let mut bases = Vec::new();
    for n in 0..3 {
        let (port, admin) = (free_port().await, free_port().await);
        let config = dir.join(format!("gw{n}.yaml"));
        std::fs::write(
            &config,
            format!(
                "listeners:\n  - name: m\n    bind: 127.0.0.1:{port}\n    plain_http: serve\nadmin:\n  bind: 127.0.0.1:{admin}\naccess_log: off\n# 300 parallel clients share one loopback address here.\nlimits:\n  max_connections_per_ip: 1000\nshared_state:\n  redis_url: \"redis://{}\"\n  key_prefix: \"{prefix}\"\n  timeout_ms: 200\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: local\n    path: {{ prefix: /local }}\n    service: api\n    policies:\n{}  - id: closed\n    path: {{ prefix: /closed }}\n    service: api\n    policies:\n{}",
                redis.addr,
                up.addr,
                limit("local"),
                limit("fail_closed"),
            ),
        )
        .unwrap();
        procs.push(run_gateway(BIN, &config, admin, &dir.join(format!("gw{n}.log"))).await);
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    // Redis up: 300 parallel requests through three gateways, one limit of 100.
    let (per, _, _) = load(&bases, "/local/x", "t1", 300).await;
    let total: usize = per.iter().sum();
    eprintln!("redis up: admitted {total} of 300 ({per:?})");
    assert!((100..=102).contains(&total), "admitted {total}");

    // Redis cut off: `local` keeps limiting at each node's share (100 / 3 →
    // 34), `fail_closed` refuses with 503; nothing hangs.
    redis.set(false);
    let (per, _, slowest) = load(&bases, "/local/x", "t2", 150).await;
    eprintln!("redis down, local: admitted {per:?}, slowest answer {slowest:?}");
    assert_eq!(per, vec![34, 34, 34]);
    assert!(slowest < Duration::from_secs(3), "a request hung {slowest:?}");
    let (_, statuses, slowest) = load(&bases, "/closed/x", "t2", 30).await;
    eprintln!("redis down, fail_closed: slowest answer {slowest:?}");
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    assert!(slowest < Duration::from_secs(3), "a request hung {slowest:?}");

    // Redis back: the gateways return to it by themselves, exact again.
    redis.set(true);
    let mut back = false;
    for i in 0..100 {
        let (_, statuses, _) = load(&bases, "/closed/x", &format!("probe-{i}"), 3).await;
        if statuses.iter().all(|s| *s == 200) {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the gateways did not return to redis");
    let (per, _, _) = load(&bases, "/local/x", "t3", 300).await;
    let total: usize = per.iter().sum();
    eprintln!("redis back: admitted {total} of 300 ({per:?})");
    assert!((100..=102).contains(&total), "admitted {total}");
    drop(procs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_roll_over_with_the_injected_clock() {
    let up = MockUpstream::start("api").await;
    // 2027-02-28 23:59:58 UTC: two seconds before both the day and the month end.
    let clock = std::sync::Arc::new(warden_core::ManualClock::at(1_803_859_198));
    let gw = TestGateway::start_with_clock(
        &format!(
            "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: q\n    path: {{ prefix: /q }}\n    service: api\n    policies:\n      - type: rate_limit\n        limits:\n          - {{ name: daily, key: [\"header:x-tenant\"], quota: {{ requests: 3, per: day }} }}\n          - {{ name: monthly, key: [\"header:x-tenant\"], quota: {{ requests: 5, per: month }} }}\n",
            up.addr
        ),
        std::sync::Arc::clone(&clock),
    )
    .await;
    let url = gw.url("/q/x");
    let call = || get(&url, &[("x-tenant", "acme")]);
    for _ in 0..3 {
        assert_eq!(call().await.status, 200);
    }
    let r = call().await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "2");
    assert_eq!(
        r.headers["ratelimit"].to_str().unwrap(),
        "\"daily\";r=0;t=2, \"monthly\";r=2;t=2"
    );
    // March 1st: the daily quota is back, and so is the monthly one.
    clock.advance(2);
    for _ in 0..3 {
        assert_eq!(call().await.status, 200);
    }
    let r = call().await;
    assert_eq!(r.status, 429);
    let state = r.headers["ratelimit"].to_str().unwrap().to_owned();
    assert!(
        state.starts_with("\"daily\";r=0;t=86400, \"monthly\";r=2;t=2678400"),
        "{state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_on_a_redis_cluster_limits_exactly() {
    let cluster = TestCluster::start();
    let up = MockUpstream::start("api").await;
    let nodes = cluster
        .nodes
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let gw = TestGateway::start(&format!(
        "shared_state:\n  redis_cluster_nodes: [{nodes}]\n  key_prefix: \"warden-test:\"\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: limited\n    path: {{ prefix: /limited }}\n    service: api\n    policies:\n      - type: rate_limit\n        on_shared_unavailable: fail_closed\n        limits:\n          - {{ name: per-ip, key: [ip], rate: {{ requests: 10, per_secs: 60 }} }}\n          - {{ name: daily, key: [ip], quota: {{ requests: 1000, per: day }} }}\n",
        up.addr
    ))
    .await;
    let url = gw.url("/limited/x");
    let replies = futures_util::future::join_all((0..40).map(|_| get(&url, &[]))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        30,
        "no 503: the cluster answered"
    );
    let state = replies.iter().find(|r| r.status == 200).unwrap().headers["ratelimit"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(state.contains("\"daily\";r="), "{state}");
}
