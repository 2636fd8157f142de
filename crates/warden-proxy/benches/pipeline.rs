//! Per-request pipeline cost: running the request phases of 0 and 10 no-op
//! policies, plus the real `ip_rules` + `request_limits` pair, and path
//! normalisation. Run with `cargo bench -p warden-proxy --bench pipeline`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use warden_core::{OnError, Policy, RequestCtx};
use warden_proxy::pipeline;

struct Noop;

impl Policy for Noop {
    fn name(&self) -> &'static str {
        "noop"
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn request() -> (http::request::Parts, RequestCtx) {
    let (parts, ()) = http::Request::get("/users/42?x=1")
        .header("host", "api.example.com")
        .header("accept", "application/json")
        .header("user-agent", "bench")
        .body(())
        .unwrap()
        .into_parts();
    let ctx = RequestCtx::new(
        Arc::from("0123456789abcdef0123456789abcdef"),
        "192.0.2.10".parse().unwrap(),
        1 << 20,
    );
    (parts, ctx)
}

/// The one route of a config whose catch-all route has `policies` (YAML list items).
fn route_with_policies(policies: &str) -> Arc<warden_config::snapshot::RouteRuntime> {
    let snapshot = warden_config::load_str(&format!(
        "listeners: [{{ name: a, bind: \"127.0.0.1:0\", plain_http: serve }}]
services: [{{ name: s, targets: [\"127.0.0.1:1\"] }}]
routes:
  - id: r
    path: {{ prefix: / }}
    service: s
    policies:{policies}"
    ))
    .unwrap();
    let warden_config::router::RouteMatch::Found { value, .. } =
        snapshot.router.lookup("x", &http::Method::GET, "/users/42")
    else {
        panic!("no route");
    };
    Arc::clone(value)
}

fn pipeline_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_on_request");
    for n in [0usize, 10] {
        let policies: Vec<(Noop, OnError)> = (0..n).map(|_| (Noop, OnError::Deny)).collect();
        group.bench_function(format!("{n}_noop_policies"), |b| {
            let (mut parts, mut ctx) = request();
            b.iter(|| black_box(block_on(pipeline::on_request(&policies, &mut parts, &mut ctx))).is_ok());
        });
    }
    let route = route_with_policies(
        "
      - type: ip_rules
        allow: [192.0.2.0/24, 10.0.0.0/8, \"2001:db8::/32\"]
        deny: [192.0.2.99/32]
      - type: request_limits
        max_body_bytes: 4096
        max_headers: 50
        max_uri_bytes: 2048
",
    );
    group.bench_function("ip_rules+request_limits", |b| {
        let (mut parts, mut ctx) = request();
        b.iter(|| black_box(block_on(pipeline::on_request(&route.policies, &mut parts, &mut ctx))).is_ok());
    });
    // The bench/run.sh LIMITS=1 policy: a rate and a daily quota by client
    // address that always admit, in memory, headers on.
    let route = route_with_policies(
        "
      - type: rate_limit
        limits:
          - { name: rate, key: [ip], rate: { requests: 1000000000, per_secs: 1 } }
          - { name: daily, key: [ip], quota: { requests: 1000000000, per: day } }
",
    );
    group.bench_function("rate_limit_memory", |b| {
        let (mut parts, mut ctx) = request();
        b.iter(|| {
            ctx.response_headers.clear();
            black_box(block_on(pipeline::on_request(&route.policies, &mut parts, &mut ctx))).is_ok()
        });
    });
    group.finish();

    let mut norm = c.benchmark_group("normalize_path");
    for path in ["/api/v1/users/42/orders", "/api/./v1//users/%7Ejo/../42/orders"] {
        norm.bench_function(path, |b| {
            b.iter(|| warden_config::router::normalize_path(black_box(path)))
        });
    }
    norm.finish();
}

criterion_group!(benches, pipeline_bench);
criterion_main!(benches);
