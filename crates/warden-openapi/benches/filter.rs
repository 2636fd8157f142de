//! Criterion figures per KiB: `bench/users-4k.json` parsed, filtered against
//! `bench/users-4k.yaml` (two undeclared properties per row) and written back.

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
    g.bench_function("parse_only_users_4k", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(USERS).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
