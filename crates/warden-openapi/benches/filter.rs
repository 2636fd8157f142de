//! Criterion figures per KiB: `bench/users-4k.json` filtered against
//! `bench/users-4k.yaml` (two undeclared properties per row): parsed into a
//! tree, filtered and written back, and in one pass with a compiled plan.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden_openapi::{Spec, filter};

const USERS: &str = include_str!("../../../bench/users-4k.json");
const SPEC: &str = include_str!("../../../bench/users-4k.yaml");

fn bench(c: &mut Criterion) {
    let spec = Spec::parse(SPEC.as_bytes(), None).unwrap();
    let schema = spec.operations[0].response(200).unwrap().content[0].1.clone();
    let mut g = c.benchmark_group("response_filter");
    g.throughput(Throughput::Bytes(USERS.len() as u64));
    g.bench_function("parse_filter_write_users_4k", |b| {
        b.iter(|| {
            let mut v: serde_json::Value = serde_json::from_str(USERS).unwrap();
            let removed = filter::filter(&spec.document, &schema, &mut v, &[], true);
            (serde_json::to_vec(&v).unwrap(), removed)
        })
    });
    let mut plan = warden_openapi::FilterPlan::new();
    let root = plan.add(&spec.document, &schema);
    g.bench_function("one_pass_filter_users_4k", |b| {
        b.iter(|| plan.filter(root, USERS.as_bytes(), &[], true).unwrap())
    });
    g.bench_function("parse_only_users_4k", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(USERS).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
