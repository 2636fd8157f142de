//! `rate_limit`: rates (GCRA, with bursts) and calendar quotas per client IP
//! (IPv6 grouped by /64), consumer, credential, route, header or claim
//! value, or a combination; several limits per route, all counted or none;
//! plans per consumer group; `RateLimit-Policy` / `RateLimit` headers and a
//! 429 problem document with `Retry-After`.
//!
//! Counters live in the shared state: this process's memory by default,
//! Redis (exact across gateways, on Redis's clock) when configured. When
//! Redis cannot answer, the policy either limits locally at its share
//! (`limit / nodes`) or fails closed (503), and returns to Redis by itself.

mod config;
mod keys;
mod policy;
#[cfg(test)]
mod tests;

pub use config::{ConcurrencyConfig, LimitConfig, QuotaConfig, RateConfig, RateLimitConfig};
pub(crate) use keys::client_net;
pub use policy::RateLimit;
