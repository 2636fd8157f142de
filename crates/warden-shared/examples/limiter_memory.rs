//! Memory of the in-memory limiter under 1,000,000 distinct client keys
//! (one rate limit each, as a flood of distinct IPv6 /64s would make):
//! counters held and the process's resident memory before and after.
//! Run with `cargo run --release -p warden-shared --example limiter_memory`.

use warden_core::limits::{LimitCheck, LimitKind, Subject};
use warden_shared::Limiter;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let limiter = Limiter::default();
    let before = rss_kib();
    let mut peak = before;
    for i in 0..1_000_000u64 {
        // The subject the policy writes for a client address (IPv6 by /64).
        let value = format!("ip=2001:db8:{:x}:{:x}::/64", i >> 16, i & 0xffff);
        let subject = Subject::new(format!("rl:{{orders}}:{}:{value}", value.len()));
        let check = LimitCheck {
            subject: &subject,
            name: "per-ip:r",
            kind: LimitKind::Rate {
                limit: 10,
                period_ms: 60_000,
                burst: 10,
            },
        };
        limiter.apply(&[check], 1_800_000_000_000);
        if i % 100_000 == 0 {
            peak = peak.max(rss_kib());
        }
    }
    peak = peak.max(rss_kib());
    println!(
        "1,000,000 distinct keys: {} counters held (cap {}), RSS {} MiB before, {} MiB peak, {} MiB after",
        limiter.len(),
        warden_shared::limiter_capacity(),
        before / 1024,
        peak / 1024,
        rss_kib() / 1024
    );
}
