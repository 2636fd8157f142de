//! `csrf`: cross-site request forgery protection for routes authenticated by
//! cookies.
//!
//! A browser attaches cookies to requests that another site makes it send; the
//! upstream cannot tell them from the user's own. For unsafe methods (anything
//! but GET, HEAD, OPTIONS and TRACE) that carry the route's session cookie, the
//! policy checks where the request comes from: the `Origin` header (or, when a
//! browser sent none, the origin of `Referer`) must be one of `allow_origins`,
//! or the gateway's own origin when the list is empty. `Origin: null` (sandboxed
//! frames, some redirects) and a request with neither header are refused unless
//! `allow_missing_origin` is set. With `double_submit`, a header must also
//! repeat the value of a CSRF cookie (compared in constant time): a page on
//! another origin can make the browser send the cookie but cannot read it.
//!
//! Requests without the session cookie are not cookie-authenticated and pass
//! untouched (an API called with bearer tokens is not exposed to CSRF).
//! A refusal is 403 `csrf_refused`.

mod config;
mod policy;
#[cfg(test)]
mod tests;

pub use config::{CsrfConfig, DoubleSubmitConfig};
pub use policy::Csrf;
