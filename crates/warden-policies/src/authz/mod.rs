//! `authz`: authorization with Cedar policies, default deny, plus
//! object-level bindings (BOLA) checked before Cedar.
//!
//! The request as Cedar sees it:
//! - principal `User::"<consumer>"` (or `Anonymous::"anonymous"`), member of
//!   `Group::"<g>"` for each of the consumer's groups;
//! - action `Action::"<METHOD> <route path pattern>"`, e.g.
//!   `Action::"GET /orders/{id}"`;
//! - resource `Route::"<route id>"`;
//! - context: `ip` (Cedar `ip` extension), `time` (Unix seconds), `hour`
//!   (0–23, UTC), `authenticated`, `mtls`, `scopes`, `amr` (sets of strings),
//!   `acr` (string), `params` (path parameters), `authentication` (`jwt`,
//!   `api_key` or `none`), `mtls_identity` (the client certificate's first
//!   URI SAN, else DNS SAN, else subject; empty without one), `tls`.
//!
//! No permit means 403; so does a failed binding. The 403 document does not
//! say whether the object exists.

mod config;
mod decisions;
mod enumeration;
mod ownership;
mod policy;
#[cfg(test)]
mod tests;

pub use config::{AuthzConfig, BindingConfig, parse_policies};
pub use enumeration::EnumerationConfig;
pub use ownership::OwnerLookupConfig;
pub use policy::{Authz, Explanation};
