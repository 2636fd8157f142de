//! `jwt`: authenticates requests that carry a JSON Web Token (RFC 7519) signed
//! by a configured issuer.
//!
//! Protects against forged, tampered, expired, replayed-after-expiry and
//! wrong-audience tokens and against the classic JWT library pitfalls: `alg:
//! none` is never accepted (the algorithm list is an allow-list that cannot
//! name it), an issuer with asymmetric keys never accepts HMAC (no "HS256
//! signed with the RSA public key"), keys are never taken from the token
//! (`jku`, `x5u`, `jwk`, `x5c` are ignored; `kid` is only a lookup key into
//! the configured keys), the token size is capped before any decoding, and a
//! token in the query string is read only when the route opts in.
//!
//! On success the consumer (`sub` by default) and the verified claims are set
//! on the request context. Every failure is the same 401 problem document with
//! `WWW-Authenticate: Bearer realm="warden", error="invalid_token"` (a missing
//! token: `Bearer realm="warden"`); the precise reason goes to the log only.
//!
//! Keys come from PEM files and/or a JWKS URL ([`jwks`]: cached, refetched on
//! an unknown `kid`, served stale while the provider is down).
//!
//! A token that verified is remembered (exact token string, until its `exp`
//! or a key-set change), so a client reusing its token costs one signature
//! check, not one per request.

mod cache;
mod config;
mod introspect;
mod jwks;
mod policy;
mod require;
#[cfg(test)]
mod tests;

pub use config::{IssuerConfig, JwtConfig, KeyConfig, RequireConfig};
pub use introspect::IntrospectionConfig;
pub use jwks::JwksConfig;
pub(crate) use jwks::{https_connector, url_problem};
pub use policy::Jwt;
