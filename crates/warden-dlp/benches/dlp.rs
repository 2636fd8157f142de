//! Criterion figures per KiB on `bench/users-4k.json` (4,082 bytes: ten user
//! rows as an upstream returns them): the structure-aware scan with every
//! category on, the stack-trace check, and log-line redaction.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_dlp::{Categories, Category, Detector, json, redact_log, stack};

const USERS: &str = include_str!("../../../bench/users-4k.json");

fn bench(c: &mut Criterion) {
    let leaky = USERS.replacen(
        r#""name":"Ada Byrne""#,
        r#""name":"Ada Byrne","card":"4111 1111 1111 1111""#,
        1,
    );
    let mut g = c.benchmark_group("dlp");
    g.throughput(Throughput::Bytes(USERS.len() as u64));
    g.bench_function("json_scan_users_4k", |b| {
        b.iter(|| json::scan(USERS, Categories::ALL).unwrap())
    });
    g.bench_function("json_scan_users_4k_with_a_card", |b| {
        b.iter(|| json::scan(&leaky, Categories::ALL).unwrap())
    });
    // What `data_leak` runs at its defaults: e-mail and phone allowed.
    let defaults = Categories::ALL.without(Category::Email).without(Category::Phone);
    let detector = Detector::new(defaults);
    g.bench_function("json_scan_users_4k_default_categories", |b| {
        b.iter(|| json::scan_with(&detector, USERS, defaults).unwrap())
    });
    g.bench_function("text_detectors_only_users_4k_default_categories", |b| {
        b.iter(|| detector.find(USERS, defaults))
    });
    let names_only = Categories::NONE.with(Category::SecretField).with(Category::HighEntropy);
    let none = Detector::new(Categories::NONE);
    g.bench_function("json_walk_only_users_4k", |b| {
        b.iter(|| json::scan_with(&none, USERS, names_only).unwrap())
    });
    g.bench_function("stack_leak_users_4k", |b| b.iter(|| stack::leak(USERS)));
    g.bench_function("redact_log_users_4k", |b| b.iter(|| redact_log(USERS)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
