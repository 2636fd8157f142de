#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use warden_core::limits::LimitCheck;
use warden_core::{Decision, ManualClock, Policy, RequestCtx, Services};

use super::RateLimitConfig;
use crate::block_on;

fn policy(yaml: &str, clock: &Arc<ManualClock>) -> super::RateLimit {
    let cfg: RateLimitConfig = serde_saphyr::from_str(yaml).unwrap();
    let p = cfg.build().unwrap();
    p.start(&Services {
        clock: Some(Arc::clone(clock) as Arc<dyn warden_core::Clock>),
        ..Services::default()
    });
    p
}

fn call(
    p: &super::RateLimit,
    ip: &str,
    consumer: Option<&str>,
    groups: &[&str],
) -> (bool, RequestCtx, Option<warden_core::Rejection>) {
    let (mut parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
    let mut ctx = RequestCtx::new("r".into(), ip.parse().unwrap(), 0);
    ctx.route_id = Some("orders".into());
    ctx.consumer = consumer.map(Arc::from);
    ctx.groups = groups.iter().map(|g| Arc::from(*g)).collect();
    match decide(p, &mut parts, &mut ctx) {
        Decision::Continue => (true, ctx, None),
        Decision::Reject(r) => (false, ctx, Some(r)),
    }
}

/// The decision as the pipeline gets it: without waiting when the policy
/// can, else awaited.
fn decide(p: &super::RateLimit, parts: &mut http::request::Parts, ctx: &mut RequestCtx) -> Decision {
    match p.on_request_now(parts, ctx) {
        Some(outcome) => outcome.unwrap(),
        None => block_on(p.on_request(parts, ctx)).unwrap(),
    }
}

#[test]
fn in_memory_limits_decide_without_waiting_and_agree_with_the_awaited_path() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let yaml = "limits:\n  - { name: per-ip, key: [ip], rate: { requests: 3, per_secs: 60 } }\n";
    let (now, awaited) = (policy(yaml, &clock), policy(yaml, &clock));
    for i in 0..5 {
        let (mut parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
        let mut a = RequestCtx::new("r".into(), "192.0.2.7".parse().unwrap(), 0);
        let mut b = RequestCtx::new("r".into(), "192.0.2.7".parse().unwrap(), 0);
        let quick = now
            .on_request_now(&mut parts, &mut a)
            .expect("decided at once")
            .unwrap();
        let slow = block_on(awaited.on_request(&mut parts, &mut b)).unwrap();
        assert_eq!(matches!(quick, Decision::Continue), i < 3, "request {i}");
        assert_eq!(matches!(slow, Decision::Continue), i < 3, "request {i}");
        assert_eq!(a.response_headers, b.response_headers, "request {i}");
    }
    // Throttling and concurrency keep their own books: always awaited, and
    // asking first counts nothing.
    for extra in [
        "throttle: { max_wait_ms: 100 }\n",
        "concurrency:\n  - { key: [ip], max: 1 }\n",
    ] {
        let p = policy(&format!("{yaml}{extra}"), &clock);
        let (mut parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
        let mut ctx = RequestCtx::new("r".into(), "192.0.2.7".parse().unwrap(), 0);
        assert!(p.on_request_now(&mut parts, &mut ctx).is_none(), "{extra}");
        assert!(ctx.response_headers.is_empty() && ctx.holds.is_empty(), "{extra}");
    }
}

#[test]
fn without_a_lent_clock_a_request_is_decided_at_its_own_start_time() {
    // No clock lent (as in production): the first decision takes the time
    // the request's context was created with, not a second clock read.
    let cfg: RateLimitConfig =
        serde_saphyr::from_str("limits:\n  - { name: per-ip, key: [ip], rate: { requests: 1, per_secs: 60 } }\n")
            .unwrap();
    let p = cfg.build().unwrap();
    p.start(&Services::default());
    let at = |now_ms: i64| {
        let (mut parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
        let mut ctx = RequestCtx::new("r".into(), "192.0.2.7".parse().unwrap(), 0);
        assert!(
            (ctx.now_ms.div_euclid(1000) - ctx.now_secs).abs() <= 1,
            "one moment, two units"
        );
        ctx.now_ms = now_ms;
        let admitted = matches!(decide(&p, &mut parts, &mut ctx), Decision::Continue);
        (admitted, ctx.response_headers)
    };
    // Long ago, by the requests' own times: the wall clock would see all
    // three at once and refuse the third too.
    let t = 1_000_000_000;
    assert!(at(t).0);
    let (second, headers) = at(t + 30_000);
    assert!(!second, "the one place of the minute is taken");
    assert!(headers.is_empty(), "a refusal carries its headers on the rejection");
    let (third, headers) = at(t + 60_000);
    assert!(third, "a minute later by the request's time, the place is back");
    let state = headers.iter().find(|(k, _)| k == "ratelimit").unwrap();
    assert_eq!(state.1, "\"per-ip\";r=0;t=60");
}

#[test]
fn exactly_the_limit_is_admitted_with_correct_headers() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let p = policy(
        "limits:\n  - { name: per-ip, key: [ip], rate: { requests: 10, per_secs: 60 } }\n",
        &clock,
    );
    let results: Vec<_> = (0..25).map(|_| call(&p, "192.0.2.7", None, &[])).collect();
    assert_eq!(results.iter().filter(|r| r.0).count(), 10);
    let (_, first, _) = &results[0];
    let h: Vec<String> = first
        .response_headers
        .iter()
        .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
        .collect();
    assert_eq!(
        h,
        [
            "ratelimit-policy: \"per-ip\";q=10;w=60",
            "ratelimit: \"per-ip\";r=9;t=6"
        ]
    );
    let refused = results[24].2.as_ref().unwrap();
    assert_eq!(refused.kind.status().as_u16(), 429);
    let retry = refused
        .headers
        .iter()
        .find(|(k, _)| k == http::header::RETRY_AFTER)
        .map(|(_, v)| v.to_str().unwrap().to_owned());
    assert_eq!(retry.as_deref(), Some("6"), "one request every 6 s");
    // Another client is not affected; six seconds later one more fits.
    assert!(call(&p, "192.0.2.8", None, &[]).0);
    clock.advance(6);
    assert!(call(&p, "192.0.2.7", None, &[]).0);
    assert!(!call(&p, "192.0.2.7", None, &[]).0);
}

#[test]
fn quotas_roll_over_at_midnight_by_the_injected_clock() {
    // 2027-03-01 23:59:58 UTC.
    let clock = Arc::new(ManualClock::at(1_803_945_600 + 86_398));
    let p = policy(
        "limits:\n  - { name: daily, key: [consumer], quota: { requests: 3, per: day } }\n",
        &clock,
    );
    for _ in 0..3 {
        assert!(call(&p, "192.0.2.1", Some("alice"), &[]).0);
    }
    let (ok, _, r) = call(&p, "192.0.2.1", Some("alice"), &[]);
    assert!(!ok);
    let r = r.unwrap();
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == http::header::RETRY_AFTER && v == "2"),
        "{:?}",
        r.headers
    );
    assert!(call(&p, "192.0.2.1", Some("bob"), &[]).0, "per consumer");
    clock.advance(2);
    assert!(call(&p, "192.0.2.1", Some("alice"), &[]).0, "a new day");
}

#[test]
fn ipv6_clients_in_one_64_share_a_bucket_and_plans_replace_limits() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let p = policy(
        concat!(
            "limits:\n  - { key: [ip], rate: { requests: 2, per_secs: 60 } }\n",
            "plans:\n  gold:\n    - { key: [consumer], rate: { requests: 5, per_secs: 60 } }\n",
        ),
        &clock,
    );
    assert!(call(&p, "2001:db8:1:2::1", None, &[]).0);
    assert!(call(&p, "2001:db8:1:2:ffff:ffff:ffff:9", None, &[]).0);
    assert!(!call(&p, "2001:db8:1:2::77", None, &[]).0, "same /64");
    assert!(call(&p, "2001:db8:1:3::1", None, &[]).0, "another /64");
    // IPv4-mapped addresses count as the IPv4 address.
    assert!(call(&p, "::ffff:192.0.2.9", None, &[]).0);
    assert!(call(&p, "192.0.2.9", None, &[]).0);
    assert!(!call(&p, "192.0.2.9", None, &[]).0);
    // Gold consumers get five, by consumer, from any address.
    let gold: usize = (0..8)
        .filter(|i| call(&p, &format!("198.51.100.{i}"), Some("carol"), &["users", "gold"]).0)
        .count();
    assert_eq!(gold, 5);
}

#[test]
fn config_problems_are_listed() {
    let cfg: RateLimitConfig = serde_saphyr::from_str(concat!(
        "limits:\n",
        "  - { key: [ip, nope], rate: { requests: 0 } }\n",
        "  - { key: [], quota: { requests: 5, per: week } }\n",
        "  - { key: [\"header:X-Up\"], rate: { requests: 1 }, quota: { requests: 1, per: day } }\n",
        "nodes: 0\n",
    ))
    .unwrap();
    let paths: Vec<String> = cfg.build().unwrap_err().into_iter().map(|e| e.path).collect();
    for want in [
        "limits[0].key[1]",
        "limits[0].rate",
        "limits[1].key",
        "limits[1].quota.per",
        "limits[2].key[0]",
        "limits[2]",
        "nodes",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} missing from {paths:?}");
    }
}

/// Five concurrent requests from one address through `p` (system clock,
/// real waits); how many were admitted.
async fn burst(p: &super::RateLimit) -> usize {
    let one = || async {
        let (mut parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
        let mut ctx = RequestCtx::new("r".into(), "192.0.2.9".parse().unwrap(), 0);
        ctx.route_id = Some("orders".into());
        matches!(p.on_request(&mut parts, &mut ctx).await.unwrap(), Decision::Continue)
    };
    let (a, b, c, d, e) = tokio::join!(one(), one(), one(), one(), one());
    [a, b, c, d, e].iter().filter(|ok| **ok).count()
}

fn system_policy(yaml: &str) -> super::RateLimit {
    let cfg: RateLimitConfig = serde_saphyr::from_str(yaml).unwrap();
    let p = cfg.build().unwrap();
    p.start(&Services::default());
    p
}

#[tokio::test]
async fn throttling_delays_requests_into_their_places_instead_of_refusing_them() {
    let limit = "limits:\n  - { name: r, key: [ip], rate: { requests: 10, per_secs: 1, burst: 1 } }\n";
    // One place every 100 ms: without throttling a burst of five gets one.
    assert_eq!(burst(&system_policy(limit)).await, 1);
    // Throttled with 2 s to wait: all five, one after another.
    let waited = system_policy(&format!("{limit}throttle: {{ max_wait_ms: 2000 }}\n"));
    assert_eq!(burst(&waited).await, 5);
    // At most two may wait: the first passes, two wait, two are refused.
    let few = system_policy(&format!("{limit}throttle: {{ max_wait_ms: 2000, max_waiting: 2 }}\n"));
    assert_eq!(burst(&few).await, 3);
    // A place further away than max_wait_ms is refused at once.
    let slow =
        "limits:\n  - { name: r, key: [ip], rate: { requests: 1, per_secs: 60 } }\nthrottle: { max_wait_ms: 500 }\n";
    assert_eq!(burst(&system_policy(slow)).await, 1);
    // Quotas are never waited for.
    let quota =
        "limits:\n  - { name: q, key: [ip], quota: { requests: 1, per: day } }\nthrottle: { max_wait_ms: 30000 }\n";
    assert_eq!(burst(&system_policy(quota)).await, 1);
}

#[test]
fn throttle_settings_out_of_range_are_refused() {
    for bad in [
        "{ max_wait_ms: 0 }",
        "{ max_wait_ms: 30001 }",
        "{ max_wait_ms: 10, max_waiting: 0 }",
    ] {
        let yaml = format!("limits:\n  - {{ key: [ip], rate: {{ requests: 1 }} }}\nthrottle: {bad}\n");
        let cfg: RateLimitConfig = serde_saphyr::from_str(&yaml).unwrap();
        let errors = cfg.build().unwrap_err();
        assert!(
            errors.iter().any(|e| e.path.starts_with("throttle.")),
            "{bad}: {errors:?}"
        );
    }
}

#[test]
fn counter_keys_are_length_prefixed_and_shared_parts_agree() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let p = policy(
        "limits:\n  - { name: a, key: [ip], rate: { requests: 9 } }\n  - { name: b, key: [ip], quota: { requests: 9, per: day } }\n  - { name: c, key: [consumer, ip], rate: { requests: 9 } }\n  - { name: d, key: [\"header:x-tenant\"], rate: { requests: 9 } }\n",
        &clock,
    );
    let keys = |ip: &str, consumer: Option<&str>, tenant: Option<&str>| {
        let mut req = http::Request::get("/x");
        if let Some(t) = tenant {
            req = req.header("x-tenant", t);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let mut ctx = RequestCtx::new("r".into(), ip.parse().unwrap(), 0);
        ctx.route_id = Some("orders".into());
        ctx.consumer = consumer.map(Arc::from);
        let set = p.limits_for(&ctx);
        let subjects = p.subjects(set, &parts, &ctx);
        let checks = super::policy::checks(set, &subjects);
        assert_eq!(subjects.len(), 3, "a and b are keyed alike: one subject");
        assert!(std::ptr::eq(checks[0].subject, checks[1].subject));
        checks.iter().map(LimitCheck::key).collect::<Vec<_>>()
    };
    assert_eq!(
        keys("192.0.2.7", Some("alice"), Some("acme")),
        [
            "rl:{orders}:12:ip=192.0.2.7#a:r",
            "rl:{orders}:12:ip=192.0.2.7#b:q",
            "rl:{orders}:7:c=alice12:ip=192.0.2.7#c:r",
            "rl:{orders}:16:hs:x-tenant=acme#d:r",
        ]
    );
    // Every octet width; a missing consumer or header counts by address; a
    // mapped address is its IPv4; a long header value goes in as its SHA-256.
    let long = "t".repeat(80);
    let k = keys("::ffff:10.0.100.255", None, Some(&long));
    assert_eq!(k[0], "rl:{orders}:15:ip=10.0.100.255#a:r");
    assert_eq!(k[2], "rl:{orders}:15:ip=10.0.100.25515:ip=10.0.100.255#c:r");
    assert!(k[3].starts_with("rl:{orders}:h:") && k[3].ends_with("#d:r"));
    assert_eq!(k[3].len(), "rl:{orders}:h:#d:r".len() + 64);
    // Values holding the key's own punctuation stay inside their length prefix.
    assert_eq!(
        keys("192.0.2.7", None, Some("a#b:r"))[3],
        "rl:{orders}:17:hs:x-tenant=a#b:r#d:r"
    );
    assert_ne!(
        keys("192.0.2.7", None, Some("}:1"))[3],
        keys("192.0.2.7", None, Some("}:2"))[3]
    );
    let k = keys("0.0.0.0", None, None);
    assert_eq!(k[1], "rl:{orders}:10:ip=0.0.0.0#b:q");
    assert_eq!(k[3], "rl:{orders}:10:ip=0.0.0.0#d:r");
    assert_eq!(
        keys("2001:db8:1:2:3::9", None, None)[0],
        "rl:{orders}:20:ip=2001:db8:1:2::/64#a:r"
    );
}

#[test]
fn a_monthly_quota_announces_the_length_of_the_current_month() {
    // 2027-02-10 and, 28 days later, 2027-03-10 (UTC).
    let clock = Arc::new(ManualClock::at(1_802_217_600));
    let p = policy(
        "limits:\n  - { name: m, key: [ip], quota: { requests: 5, per: month } }\n  - { name: r, key: [ip], rate: { requests: 5, per_secs: 10 } }\n",
        &clock,
    );
    let policy_header = |ctx: &RequestCtx| {
        ctx.response_headers
            .iter()
            .find(|(k, _)| k == "ratelimit-policy")
            .map(|(_, v)| v.to_str().unwrap().to_owned())
    };
    let (ok, feb, _) = call(&p, "192.0.2.7", None, &[]);
    assert!(ok);
    assert_eq!(
        policy_header(&feb).as_deref(),
        Some("\"m\";q=5;w=2419200, \"r\";q=5;w=10")
    );
    clock.advance(28 * 86_400);
    let (ok, mar, _) = call(&p, "192.0.2.7", None, &[]);
    assert!(ok);
    assert_eq!(
        policy_header(&mar).as_deref(),
        Some("\"m\";q=5;w=2678400, \"r\";q=5;w=10")
    );
}

#[test]
fn header_and_claim_values_of_different_forms_count_apart() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let p = policy(
        "limits:\n  - { name: h, key: [\"header:x-tenant\"], rate: { requests: 9 } }\n  - { name: t, key: [\"claim:org\"], rate: { requests: 9 } }\n",
        &clock,
    );
    let subjects = |tenant: &[u8], claims: &str| {
        let (mut parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
        parts
            .headers
            .insert("x-tenant", http::HeaderValue::from_bytes(tenant).unwrap());
        let mut ctx = RequestCtx::new("r".into(), "192.0.2.7".parse().unwrap(), 0);
        ctx.route_id = Some("orders".into());
        ctx.token_claims = Some(Arc::new(serde_json::from_str(claims).unwrap()));
        p.subjects(p.limits_for(&ctx), &parts, &ctx)
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    // Two bytes that are not UTF-8 (a lossy decoding makes both U+FFFD).
    let (a, b) = (subjects(b"\xff", r#"{"org": "7"}"#), subjects(b"\xfe", r#"{"org": 7}"#));
    assert_eq!(a[0], "rl:{orders}:14:hx:x-tenant=ff");
    assert_ne!(a[0], b[0]);
    // The string "7" and the number 7 are two organisations.
    assert_eq!(a[1], "rl:{orders}:8:ts3:org7");
    assert_eq!(b[1], "rl:{orders}:8:tj3:org7");
}

/// One keep-alive connection from `peer`: every request carries the same
/// memo; `client` is the address the gateway trusts (`peer`, or forwarded
/// by a trusted proxy).
fn call_on(p: &super::RateLimit, memo: &Arc<warden_core::ConnMemo>, peer: &str, client: &str, route: &str) -> bool {
    let (mut parts, mut ctx) = on_conn(memo, peer, client, route);
    matches!(decide(p, &mut parts, &mut ctx), Decision::Continue)
}

/// A request on the connection `memo` belongs to, as [`call_on`] sends it.
fn on_conn(
    memo: &Arc<warden_core::ConnMemo>,
    peer: &str,
    client: &str,
    route: &str,
) -> (http::request::Parts, RequestCtx) {
    let (parts, ()) = http::Request::get("/x").body(()).unwrap().into_parts();
    let mut ctx = RequestCtx::new("r".into(), peer.parse().unwrap(), 0);
    ctx.client_ip = client.parse().unwrap();
    ctx.route_id = Some(route.into());
    ctx.conn_memo = Some(Arc::clone(memo));
    (parts, ctx)
}

/// 3 requests a minute by client address.
const PER_IP_3: &str = "limits:\n  - { name: per-ip, key: [ip], rate: { requests: 3, per_secs: 60 } }\n";

#[test]
fn subjects_kept_for_a_connection_count_each_client_and_route_apart() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let p = policy(PER_IP_3, &clock);
    let memo = Arc::new(warden_core::ConnMemo::default());
    let admitted = |ip: &str, route: &str, n: usize| (0..n).filter(|_| call_on(&p, &memo, ip, ip, route)).count();
    // The kept subject counts as the fresh one did: exactly the limit.
    assert_eq!(admitted("192.0.2.1", "orders", 5), 3);
    assert_eq!(memo.len(), 1, "the client's subjects were kept");
    let kept = || {
        let (parts, ctx) = on_conn(&memo, "192.0.2.1", "192.0.2.1", "orders");
        p.memo_subjects(p.limits_for(&ctx), &parts, &ctx).unwrap()
    };
    assert!(Arc::ptr_eq(&kept(), &kept()), "made once, then read");
    // The same client on another route of the policy (its bucket) is
    // counted on its own, and does not free the first route's count.
    assert_eq!(admitted("192.0.2.1", "users", 5), 3);
    assert_eq!(admitted("192.0.2.1", "orders", 1), 0);
    // IPv6: one /64 is one client, on a kept subject or a fresh one.
    assert_eq!(admitted("2001:db8:1:2::1", "orders", 2), 2);
    assert_eq!(admitted("2001:db8:1:2::2", "orders", 2), 1);
    // Without a memo (another connection), the same counters.
    assert!(!call(&p, "192.0.2.1", None, &[]).0);
}

#[test]
fn clients_forwarded_by_a_trusted_proxy_are_counted_apart_without_the_memo() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let p = policy(PER_IP_3, &clock);
    let memo = Arc::new(warden_core::ConnMemo::default());
    let proxy = "10.0.0.1";
    let admitted = |client: &str, n: usize| (0..n).filter(|_| call_on(&p, &memo, proxy, client, "orders")).count();
    assert_eq!(admitted("192.0.2.1", 5), 3);
    assert_eq!(admitted("192.0.2.2", 5), 3, "another client behind the same proxy");
    assert_eq!(admitted("192.0.2.1", 1), 0, "and the first is still counted");
    assert!(memo.is_empty(), "a proxy's many clients would only churn the memo");
}

#[test]
fn only_limits_keyed_by_what_a_connection_keeps_use_its_memo() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let memo = Arc::new(warden_core::ConnMemo::default());
    for limits in [
        "  - { name: per-consumer, key: [consumer], rate: { requests: 3, per_secs: 60 } }\n",
        // One limit of the set keyed by something a request may change.
        "  - { name: per-ip, key: [ip], rate: { requests: 3, per_secs: 60 } }\n  - { name: per-consumer, key: [consumer], rate: { requests: 3, per_secs: 60 } }\n",
    ] {
        let p = policy(&format!("limits:\n{limits}"), &clock);
        assert!(call_on(&p, &memo, "192.0.2.1", "192.0.2.1", "orders"));
        assert!(memo.is_empty(), "a consumer may change between requests");
    }
    let per_route = "limits:\n  - { name: per-route, key: [route, ip], rate: { requests: 3, per_secs: 60 } }\n";
    let p = policy(per_route, &clock);
    for _ in 0..3 {
        assert!(call_on(&p, &memo, "192.0.2.1", "192.0.2.1", "orders"));
    }
    assert_eq!(memo.len(), 1);
    // A reloaded policy (a new instance, its counters in a new store) never
    // reads its predecessor's subjects: it files its own.
    let q = policy(per_route, &clock);
    assert!(call_on(&q, &memo, "192.0.2.1", "192.0.2.1", "orders"));
    assert_eq!(memo.len(), 2);
}

#[test]
fn the_ratelimit_value_holds_any_numbers_and_many_long_names() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let names: Vec<String> = (0..6).map(|i| format!("limit-{i}-{}", "x".repeat(40))).collect();
    let yaml: String = names
        .iter()
        .map(|n| format!("  - {{ name: {n}, key: [ip], rate: {{ requests: 3, per_secs: 60 }} }}\n"))
        .collect();
    let p = policy(&format!("limits:\n{yaml}"), &clock);
    let (_, ctx, _) = call(&p, "192.0.2.1", None, &[]);
    let set = p.limits_for(&ctx);
    let max = warden_core::limits::LimitOutcome {
        allowed: true,
        remaining: u64::MAX,
        reset_secs: u64::MAX,
        retry_after_secs: 0,
        retry_after_ms: 0,
    };
    let value = super::policy::state_value(set, &vec![max; names.len()]).expect("a value");
    let want: Vec<String> = names
        .iter()
        .map(|n| format!("\"{n}\";r={m};t={m}", m = u64::MAX))
        .collect();
    assert_eq!(value.to_str().unwrap(), want.join(", "));
    // Through the policy, the same value reaches the response headers.
    let (_, ctx, _) = call(&p, "192.0.2.2", None, &[]);
    let h = ctx.response_headers.iter().find(|(k, _)| k == "ratelimit").unwrap();
    assert!(h.1.to_str().unwrap().starts_with(&format!("\"{}\";r=2;t=", names[0])));
}
