//! Injection scan cost per value and per KiB of typical input.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use warden_waf::{Categories, Field, Level, Scanner};

fn bench(c: &mut Criterion) {
    let scanner = Scanner::new(Level::Medium, Categories::ALL);
    let field = Field::default();
    let mut g = c.benchmark_group("scan");
    for (name, value) in [
        ("plain_word", "shoes"),
        (
            "prose",
            "Please deliver after 5pm, the door code is 1234 & ring twice. Thanks!",
        ),
        ("attack", "1' UNION/**/SELECT password FROM users--"),
    ] {
        g.throughput(Throughput::Bytes(value.len() as u64));
        g.bench_function(name, |b| b.iter(|| scanner.scan(black_box(value), field)));
    }
    let kib: String = "The quick brown fox, O'Brien & co; 50% off <3 ".repeat(24)[..1024].to_owned();
    g.throughput(Throughput::Bytes(1024));
    g.bench_function("prose_1kib", |b| b.iter(|| scanner.scan(black_box(&kib), field)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
