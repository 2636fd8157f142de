//! The built-in OAuth 2.0 authorization server for machine-to-machine clients.
//!
//! - `client_credentials` (RFC 6749 §4.4) issuing RFC 9068 JWT access tokens
//!   signed with the gateway's own keys (ES256 by default, or EdDSA), which are
//!   generated on first use, sealed into the store, rotated on schedule and
//!   published at the JWKS endpoint for as long as tokens they signed live.
//! - Client authentication: `client_secret_basic`, `client_secret_post`
//!   (secrets stored as HMACs), `private_key_jwt` (RFC 7523, assertions
//!   single-use) and `tls_client_auth` (RFC 8705, with certificate-bound tokens).
//! - Metadata (RFC 8414); errors per RFC 6749 §5.2.
//!
//! The gateway mounts the endpoints as built-in routes, so listener TLS,
//! route policies and the access log apply to them like to any route.

mod client_auth;
mod config;
mod form;
mod identity;
mod keys;
mod server;
mod tokens;

pub use config::OAuthServerConfig;
pub use server::{Endpoint, OAuthServer};
