//! Criterion figures per KiB: a clean 4 KiB JSON response (the common case)
//! and one with a card and a secret field in it.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_dlp::{Categories, json, stack};

fn response(n: usize, leak: bool) -> String {
    let mut items = Vec::new();
    for i in 0..n {
        items.push(format!(
            r#"{{"id":"3f2c9a1e-{i:04}-4b7d-9c1a-5e8f2d3b6a70","name":"Widget {i}","description":"A sturdy widget for everyday use, ships in two days.","price":{},"created_at":"2026-11-29T17:00:00Z","tags":["tools","home"],"stock":{}}}"#,
            1999 + i,
            i * 3
        ));
    }
    if leak {
        items.push(r#"{"card":"4111 1111 1111 1111","password":"hunter2"}"#.into());
    }
    format!(
        r#"{{"items":[{}],"next_page_token":"eyJwYWdlIjoyfQ"}}"#,
        items.join(",")
    )
}

fn bench(c: &mut Criterion) {
    let clean = response(17, false);
    let leaky = response(17, true);
    let mut g = c.benchmark_group("dlp");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("json_scan_clean_4k", |b| {
        b.iter(|| json::scan(&clean, Categories::ALL).unwrap())
    });
    g.bench_function("json_scan_leaky_4k", |b| {
        b.iter(|| json::scan(&leaky, Categories::ALL).unwrap())
    });
    g.bench_function("stack_leak_clean_4k", |b| b.iter(|| stack::leak(&clean)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
