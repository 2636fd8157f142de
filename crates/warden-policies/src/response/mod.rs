//! Response protection: what an upstream sends back is checked before the
//! client sees it. Response phases run in reverse policy order, so
//! `error_leaks` looks first, then `response_contract`, then `data_leak`.
//!
//! - [`ResponseContract`] (`type: response_contract`): JSON responses cut
//!   down to what the OpenAPI document declares for the operation, status
//!   and media type (`filter`), or reported (`report`), or replaced by a 502
//!   (`block`); properties marked `x-warden-scopes` only for tokens holding
//!   one of those scopes, in every mode.
//! - [`ErrorLeaks`] (`type: error_leaks`): a stack trace, framework error page
//!   or database error in a response of any status is replaced by a 502
//!   problem document; the original goes to the log only, scrubbed of
//!   secrets (`warden::leak` target).
//! - [`DataLeak`] (`type: data_leak`): payment cards, IBANs, national ids,
//!   e-mail addresses, phone numbers, cloud keys, API tokens, JWTs, PEM
//!   private keys, high-entropy values in key-like fields and secret-named
//!   fields, each masked (a tail kept), redacted, blocked (502) or reported,
//!   per category. JSON bodies are read structure-aware; other text as text.
//!
//! Both inspect at most `max_inspect_bytes`; a longer body streams on
//! uninspected and a `response_uninspected` event says so. Only text is
//! inspected: `text/*`, JSON, XML, JavaScript, forms, NDJSON or no declared
//! type, and valid UTF-8; anything else passes as it is (never rewritten). The gateway asks the upstream
//! for an uncompressed body on these routes; a compressed one is refused
//! (502), never passed unchecked.

mod data_leak;
mod error_leaks;
mod schema;
#[cfg(test)]
mod tests;

pub use data_leak::{DataLeak, DataLeakConfig, LeakAction};
pub use error_leaks::{ErrorLeaks, ErrorLeaksConfig, Statuses};
pub use schema::{FilterMode, ResponseContract, ResponseContractConfig};

use http::response;

use crate::SpecError;

/// Default inspection bound: 1 MiB.
const DEFAULT_MAX_INSPECT: usize = 1 << 20;

fn default_max_inspect() -> usize {
    DEFAULT_MAX_INSPECT
}

/// `max_inspect_bytes` between 1 KiB and 64 MiB.
fn check_max_inspect(n: usize, errors: &mut Vec<SpecError>) {
    if !(1024..=64 << 20).contains(&n) {
        errors.push(SpecError {
            path: "max_inspect_bytes".into(),
            message: format!("{n} is outside 1024 ..= 67108864"),
        });
    }
}

/// The response's media type, lower case, without parameters (`""` when
/// absent).
fn media(resp: &response::Parts) -> String {
    crate::json::media_of(&resp.headers)
}

/// The body as text, when it is text: a known textual media type (`text/*`,
/// JSON, XML, JavaScript, forms, NDJSON, or none declared) and valid UTF-8.
/// Anything else (protobuf, msgpack, images, a UTF-16 or broken body) is not
/// inspected and never rewritten: rewriting would corrupt it.
fn text_of<'b>(resp: &response::Parts, body: &'b [u8]) -> Option<&'b str> {
    let media = media(resp);
    let textual = media.is_empty()
        || media.starts_with("text/")
        || crate::json::is_json(&media)
        || media.ends_with("+xml")
        || matches!(
            media.as_str(),
            "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/x-ndjson"
                | "application/graphql-response+json"
        );
    if !textual || body.is_empty() {
        return None;
    }
    std::str::from_utf8(body).ok()
}

/// True when the body is JSON by its media type or, whatever the type says,
/// by its first character (`{` or `[`): JSON served as `text/plain` or
/// `text/html` still gets the field-name rules.
fn looks_json(resp: &response::Parts, text: &str) -> bool {
    crate::json::is_json(&media(resp)) || text.trim_start().starts_with(['{', '['])
}
