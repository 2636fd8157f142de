//! Criterion benches of `Router::lookup` over a 1,000-route table (exact, prefix and
//! template patterns spread over any-host, exact-host and wildcard-host tables), plus
//! `normalize_path` on the common already-normal case and on an attack string.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use warden_config::router::{PathPattern, RouteMatch, Router, RouterBuilder, normalize_path};

/// Number of routes in the benched table.
const ROUTES: usize = 1_000;

/// The host rule of route `i`: mostly any host, some exact hosts, some wildcards.
fn host_of(i: usize) -> Option<String> {
    match i % 10 {
        0 => Some(format!("svc{}.example.com", i % 4)),
        1 => Some("*.tenants.example.com".to_owned()),
        _ => None,
    }
}

/// The pattern of route `i`.
fn pattern_of(i: usize) -> PathPattern {
    match i % 3 {
        0 => PathPattern::Exact(format!("/api/v1/exact{i}/items")),
        1 => PathPattern::Prefix(format!("/static/p{i}")),
        _ => PathPattern::Template(format!("/api/v1/users{i}/{{id}}/orders/{{order}}")),
    }
}

/// A router with `ROUTES` routes.
fn build_router() -> Router<usize> {
    let mut builder = RouterBuilder::new();
    for i in 0..ROUTES {
        let methods = [Method::GET, Method::POST];
        let methods = (i % 2 == 0).then_some(&methods[..]);
        if let Err(err) = builder.add(host_of(i).as_deref(), methods, pattern_of(i), i) {
            panic!("route {i}: {err}");
        }
    }
    builder.build()
}

/// Panics unless `answer` is the route `expected`.
fn check(answer: RouteMatch<'_, usize>, expected: Option<usize>) {
    match (answer, expected) {
        (RouteMatch::Found { value, .. }, Some(want)) if *value == want => {}
        (RouteMatch::NotFound, None) => {}
        (other, _) => panic!("unexpected answer {other:?}, wanted {expected:?}"),
    }
}

fn bench_lookup(c: &mut Criterion) {
    let router = build_router();
    let get = Method::GET;
    // The last exact route (999 is `i % 3 == 0`, any host).
    let last = ("www.example.com", "/api/v1/exact999/items");
    // A template route near the end (998 is `i % 3 == 2`, any host).
    let templ = ("www.example.com", "/api/v1/users998/42/orders/7");
    // A path no route answers, on a host with its own table.
    let miss = ("svc1.example.com:443", "/api/v2/nothing/here");
    check(router.lookup(last.0, &get, last.1), Some(999));
    check(router.lookup(templ.0, &get, templ.1), Some(998));
    check(router.lookup(miss.0, &get, miss.1), None);

    let mut group = c.benchmark_group("router_lookup_1000");
    group.bench_function("hit_last_exact", |b| {
        b.iter(|| router.lookup(black_box(last.0), black_box(&get), black_box(last.1)));
    });
    group.bench_function("hit_template", |b| {
        b.iter(|| router.lookup(black_box(templ.0), black_box(&get), black_box(templ.1)));
    });
    group.bench_function("miss", |b| {
        b.iter(|| router.lookup(black_box(miss.0), black_box(&get), black_box(miss.1)));
    });
    group.finish();
}

fn bench_normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_path");
    group.bench_function("already_normal", |b| {
        b.iter(|| normalize_path(black_box("/api/v1/users/42/orders/7")));
    });
    group.bench_function("dot_segments_and_escapes", |b| {
        b.iter(|| normalize_path(black_box("/public/%2e%2e//api/./v1/caf%c3%a9")));
    });
    group.finish();
}

criterion_group!(benches, bench_lookup, bench_normalize);
criterion_main!(benches);
