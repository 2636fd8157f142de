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
//! Limits: multipart bodies are not parsed (scan their fields at the upstream
//! or restrict the route's content types); a JSON body that does not parse
//! cannot be scanned and is refused (400). Host names in URL fields are judged
//! literally, never resolved.

mod config;
mod fields;
mod policy;
#[cfg(test)]
mod tests;

pub use config::{ExceptionConfig, InjectionConfig, Mode, Place};
pub use policy::Injection;
