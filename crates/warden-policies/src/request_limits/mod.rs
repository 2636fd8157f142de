//! `request_limits`: per-route caps on the request head and body, tighter than
//! the listener-wide ones.
//!
//! Protects against resource exhaustion and parser abuse on routes that only
//! take small requests: too many headers or header bytes (431), an over-long
//! request target (414), a body larger than the route accepts (413). A declared
//! `Content-Length` over the cap is refused before any byte is read; a chunked
//! body is cut off when it passes the cap, before the upstream sees more.
//!
//! With `json:`, JSON bodies (`application/json`, `application/…+json`) are
//! buffered and their shape checked in one pass (`crate::json_limits`):
//! depth, members per object, items per array, string bytes, total bytes;
//! duplicate keys, invalid UTF-8 and trailing data are refused. A breach is a
//! 400 `json_limit` naming the location (`/body/items/3`), or 413
//! `json_too_large`.
//!
//! Limits: header bytes are counted as `name: value` plus 4 bytes per line, the
//! HTTP/1 wire size, for both HTTP/1 and HTTP/2 requests.

mod config;
mod policy;
#[cfg(test)]
mod tests;

pub use config::{JsonLimitsConfig, RequestLimitsConfig};
pub use policy::{RequestLimits, field_bytes, header_bytes, uri_bytes};
