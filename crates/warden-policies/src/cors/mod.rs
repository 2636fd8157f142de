//! `cors`: which other web origins may call the API from a browser and read
//! its responses.
//!
//! Protects against over-broad cross-origin access: only the listed origins
//! get `Access-Control-Allow-Origin`, a wildcard cannot be combined with
//! credentials (refused at load), and preflight requests are answered by the
//! gateway itself (204 with the allowed methods, headers and max age, or 403
//! when the origin, method or a header is not allowed) so they never reach the
//! upstream. On actual requests from an allowed origin the CORS response
//! headers are added; requests from other origins go on without them (the
//! browser then withholds the response; refusing unsafe cookie-authenticated
//! requests is the `csrf` policy's job). Every response to a request with an
//! `Origin` carries `Vary: Origin`.
//!
//! Limits: a route with a `methods:` list must include `OPTIONS` for
//! preflights to reach the policy (otherwise the router answers 405).

mod config;
mod policy;
#[cfg(test)]
mod tests;

pub use config::CorsConfig;
pub use policy::Cors;
