//! `brute_force`: on login and token routes, failed attempts (configured
//! statuses) are counted per identity and per client address; past the limit
//! the identity (or address) is locked out, for twice as long each time,
//! until a success resets it. Many distinct identities from one address
//! (credential stuffing) raise an event and can block the address. Counters
//! live in the shared state, so every gateway sharing Redis enforces them.

mod config;
mod policy;
#[cfg(test)]
mod tests;

pub use config::{BruteForceConfig, IdentityConfig, StuffingConfig};
pub use policy::BruteForce;
