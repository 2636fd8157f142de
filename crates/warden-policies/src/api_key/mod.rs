//! `api_key`: authenticates the caller by an API key issued with
//! `warden keys create --consumer NAME`.
//!
//! Keys live in the store only as HMAC-SHA-256 under the server secret; the
//! gateway keeps an in-memory index of them, refreshed when the store changes,
//! so a request never waits on the database. A key is read from one header
//! (`x-api-key` by default) and, only when the route opts in, from a query
//! parameter. Every refusal looks the same to the client (401); the log says
//! whether the key was unknown, expired, revoked or its consumer disabled.
//! The key is removed from the request before it goes upstream, and the
//! consumer name is sent in its place.

mod config;
mod policy;
#[cfg(test)]
mod tests;

pub use config::ApiKeyConfig;
pub use policy::ApiKey;
