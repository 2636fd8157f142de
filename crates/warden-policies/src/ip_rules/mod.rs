//! `ip_rules`: allow and deny lists of CIDR blocks (IPv4 and IPv6) for the
//! client address.
//!
//! Protects against calls from networks that should never reach a route (admin
//! APIs from the internet, known-bad ranges). The client address is the TCP peer,
//! or the address a configured trusted proxy reported; an untrusted
//! `X-Forwarded-For` never changes it. A deny entry always wins; when `allow` is
//! non-empty, only addresses inside it pass. IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`) are matched as IPv4.
//!
//! Limits: lists are scanned linearly; keep them to hundreds of entries, not
//! millions (a prefix trie comes with the threat-intel feeds).

mod config;
mod nets;
mod policy;
#[cfg(test)]
mod tests;

pub use config::IpRulesConfig;
pub use nets::NetList;
pub use policy::IpRules;
