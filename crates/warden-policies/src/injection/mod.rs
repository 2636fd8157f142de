//! `injection`: refuses requests that carry an injection attack in any input
//! the upstream will read.
//!
//! Protects against SQL injection, XSS, path traversal, OS command injection,
//! server-side template injection, NoSQL operator injection, LDAP injection,
//! XML external entities, CR/LF header injection, `${jndi:…}` lookups and SSRF
//! (in fields whose name marks a URL). The detectors are `warden_waf`'s; this
//! policy decides what to scan and what to do about a finding.
//!
//! Scanned, each value decoded the way the upstream will decode it: path
//! segments, query names and values, request headers (all but a list of
//! structured ones such as `Authorization`, `Accept`, `Content-Length`),
//! cookie values, and the body: every string leaf and key of a JSON body,
//! every field of an `application/x-www-form-urlencoded` body, and XML bodies
//! for DTDs, entities and XInclude. A refusal is a 403 problem document whose
//! detail names the category and the location (`/query/q`, `/body/items/2/note`),
//! never the value; every finding is also an `injection` event. In `mode:
//! report` findings are events only and the request goes on.
//!
//! A body the policy cannot read is refused by default (415): multipart or
//! other media types, `Content-Encoding` other than `identity`, a charset or
//! XML encoding other than UTF-8; a JSON body that does not parse is a 400.
//! A body without a type, or `text/*`, is walked as JSON when it parses (many
//! frameworks parse such bodies as JSON) and scanned whole otherwise.
//!
//! Limits: host names are judged literally, never resolved.

mod along;
mod config;
pub(crate) mod fields;
mod policy;
mod stream;
#[cfg(test)]
mod stream_oracle;
#[cfg(test)]
mod tests;

pub use config::{ExceptionConfig, InjectionConfig, Mode, Place};
pub use policy::{Injection, UnscannableAction};
