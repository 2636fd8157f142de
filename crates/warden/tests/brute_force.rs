//! Brute-force protection end to end, with the injected clock: failed logins
//! (the upstream's 401s) lock an identity out after the limit, for twice as
//! long the second time; a success resets the count; other identities are
//! unaffected; many identities from one address are flagged as credential
//! stuffing and block the address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use warden_core::ManualClock;
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, send};

async fn login(gw: &TestGateway, user: &str, ok: bool, xff: &str) -> Reply {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
    let path = if ok { "/status/200" } else { "/status/401" };
    let req = http::Request::post(gw.url(path))
        .header("authorization", format!("Basic {basic}"))
        .header("x-forwarded-for", xff)
        .body(Full::<Bytes>::default())
        .unwrap();
    send(&http1(), req).await
}

async fn start() -> (TestGateway, MockUpstream, Arc<ManualClock>) {
    let up = MockUpstream::start("login").await;
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let gw = TestGateway::start_with_clock(
        &format!(
            "trusted_proxies: [127.0.0.1/32]\nservices:\n  - name: auth\n    targets: [\"{}\"]\nroutes:\n  - id: login\n    path: {{ prefix: /status }}\n    service: auth\n    upstream_errors: pass_through\n    policies:\n      - type: brute_force\n        identity: {{ basic_auth: true }}\n        max_failures: 5\n        ip_max_failures: 1000\n        lockout_secs: 60\n        stuffing: {{ distinct_identities: 20, window_secs: 300, block_secs: 600 }}\n",
            up.addr
        ),
        Arc::clone(&clock),
    )
    .await;
    (gw, up, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_lock_an_identity_out_progressively_and_success_resets() {
    let (gw, up, clock) = start().await;
    let ip = "198.51.100.7";
    // Four failures, then a success: the count starts again.
    for _ in 0..4 {
        assert_eq!(login(&gw, "alice", false, ip).await.status, 401);
    }
    assert_eq!(login(&gw, "alice", true, ip).await.status, 200);
    for _ in 0..4 {
        assert_eq!(login(&gw, "alice", false, ip).await.status, 401);
    }
    // The fifth failure in a row locks her out: even the right password waits.
    assert_eq!(login(&gw, "Alice ", false, ip).await.status, 401);
    let hits = up.hits();
    let r = login(&gw, "alice", true, ip).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "60");
    assert_eq!(r.json()["detail"], "too many failed attempts; retry in 60 s");
    assert_eq!(up.hits(), hits, "a locked-out attempt reached the upstream");
    // Bob, from the same address, is not affected.
    assert_eq!(login(&gw, "bob", true, ip).await.status, 200);
    // After the lock-out, five more failures lock her out twice as long.
    clock.advance(61);
    for _ in 0..5 {
        assert_eq!(login(&gw, "alice", false, ip).await.status, 401);
    }
    let r = login(&gw, "alice", true, ip).await;
    assert_eq!(
        (r.status.as_u16(), r.headers["retry-after"].to_str().unwrap()),
        (429, "120")
    );
    clock.advance(121);
    assert_eq!(login(&gw, "alice", true, ip).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_identities_from_one_address_are_flagged_and_blocked() {
    let (gw, _up, _clock) = start().await;
    let stuffer = "203.0.113.50";
    let mut blocked_at = None;
    for i in 0..30 {
        let st = login(&gw, &format!("user{i}"), false, stuffer).await.status;
        if st == 429 && blocked_at.is_none() {
            blocked_at = Some(i);
        }
    }
    assert_eq!(blocked_at, Some(20), "the 21st distinct identity blocks the address");
    assert_eq!(login(&gw, "user0", true, stuffer).await.status, 429);
    // A user retrying their own account from elsewhere is fine.
    for _ in 0..10 {
        assert_eq!(login(&gw, "carol", false, "192.0.2.33").await.status, 401);
        assert_eq!(login(&gw, "carol", true, "192.0.2.33").await.status, 200);
    }
    assert_eq!(gw.security_events("credential_stuffing").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_count_before_the_upstream_answers_and_unreadable_logins_are_refused() {
    let (gw, up, _clock) = start().await;
    let burst = futures_util::future::join_all((0..20).map(|_| login(&gw, "dave", false, "192.0.2.90"))).await;
    let reached = burst.iter().filter(|r| r.status == 401).count();
    assert_eq!(reached, 5, "guesses past the limit reached the upstream");
    assert_eq!(up.hits(), 5);
    assert!(burst.iter().filter(|r| r.status == 429).count() == 15);
    // An identity the gateway cannot read is not let through uncounted.
    let req = http::Request::post(gw.url("/status/401"))
        .header("authorization", "Basic !!not-base64!!")
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 400);
}
