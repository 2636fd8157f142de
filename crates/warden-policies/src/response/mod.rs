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
//! uninspected and a `response_uninspected` event says so. Binary media types
//! (images, audio, video, fonts, archives, `application/octet-stream`,
//! `application/pdf`, gRPC) are not inspected. The gateway asks the upstream
//! for an uncompressed body on these routes; a compressed one is refused
//! (502), never passed unchecked.

mod data_leak;
mod error_leaks;
mod schema;
#[cfg(test)]
mod tests;

pub use data_leak::{DataLeak, DataLeakConfig, LeakAction};
pub use error_leaks::{ErrorLeaks, ErrorLeaksConfig};
pub use schema::{FilterMode, ResponseContract, ResponseContractConfig};

use std::borrow::Cow;

use http::{header, response};

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

/// The body as text, when its media type is one a leak can hide in: `None`
/// for binary types. Invalid UTF-8 is read lossily.
fn text_of<'b>(resp: &response::Parts, body: &'b [u8]) -> Option<Cow<'b, str>> {
    let media = resp
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let top = media.split('/').next().unwrap_or("");
    let binary = matches!(top, "image" | "audio" | "video" | "font")
        || matches!(
            media.as_str(),
            "application/octet-stream"
                | "application/pdf"
                | "application/zip"
                | "application/gzip"
                | "application/grpc"
                | "application/wasm"
        );
    if binary || body.is_empty() {
        return None;
    }
    Some(String::from_utf8_lossy(body))
}

/// True for a JSON media type.
fn is_json(resp: &response::Parts) -> bool {
    resp.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .is_some_and(|m| crate::json::is_json(&m))
}
