//! `error_leaks`: stack traces, framework error pages and database errors.

use bytes::Bytes;
use http::response;
use serde::Deserialize;
use warden_core::event::{self, EventKind};
use warden_core::{Decision, OnError, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

use super::{check_max_inspect, default_max_inspect, text_of};
use crate::SpecError;
use crate::injection::Mode;

/// How much of the original goes into the log line.
const LOGGED_BYTES: usize = 8 * 1024;

/// Which responses are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statuses {
    /// Every status (the default): a trace in a 200 leaks as much as in a 500.
    #[default]
    All,
    /// 4xx and 5xx only: for routes that return user-written text, where a
    /// stored trace-looking string must not turn a listing into 502s.
    Errors,
}

/// `type: error_leaks`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorLeaksConfig {
    /// `enforce` (replace, the default) or `report` (events only).
    #[serde(default)]
    pub mode: Mode,
    /// `all` (default) or `errors` (4xx and 5xx responses only).
    #[serde(default)]
    pub statuses: Statuses,
    /// Bodies up to this many bytes are inspected (default 1 MiB).
    #[serde(default = "default_max_inspect")]
    pub max_inspect_bytes: usize,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

impl ErrorLeaksConfig {
    /// Checks the bounds.
    pub fn build(&self) -> Result<ErrorLeaks, Vec<SpecError>> {
        let mut errors = Vec::new();
        check_max_inspect(self.max_inspect_bytes, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ErrorLeaks {
            mode: self.mode,
            statuses: self.statuses,
            max_inspect: self.max_inspect_bytes,
        })
    }
}

/// Compiled `error_leaks`.
#[derive(Debug)]
pub struct ErrorLeaks {
    mode: Mode,
    statuses: Statuses,
    max_inspect: usize,
}

impl Policy for ErrorLeaks {
    fn name(&self) -> &'static str {
        "error_leaks"
    }

    fn response_body_limit(&self) -> Option<usize> {
        Some(self.max_inspect)
    }

    async fn on_response_body(
        &self,
        resp: &mut response::Parts,
        body: &mut Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        if self.statuses == Statuses::Errors && resp.status.as_u16() < 400 {
            return Ok(Decision::Continue);
        }
        let Some(text) = text_of(resp, body) else {
            return Ok(Decision::Continue);
        };
        let Some(stack) = warden_dlp::stack::leak(text) else {
            return Ok(Decision::Continue);
        };
        // Scrubbed whole, then cut: a cut first could split a card number
        // into digits the detector no longer sees.
        let scrubbed = warden_dlp::redact_log(text);
        let mut end = scrubbed.len().min(LOGGED_BYTES);
        while !scrubbed.is_char_boundary(end) {
            end -= 1;
        }
        // The original, for whoever debugs the upstream: in the log only,
        // and scrubbed of cards and secrets like every other line.
        tracing::warn!(
            target: "warden::leak",
            request_id = %ctx.request_id,
            stack,
            status = resp.status.as_u16(),
            original = %&scrubbed[..end],
            "upstream error details kept from the client"
        );
        event::emit(
            EventKind::ErrorLeak,
            &ctx.request_id,
            &ctx.client_ip.to_string(),
            &format!("stack={stack} status={}", resp.status.as_u16()),
        );
        Ok(match self.mode {
            Mode::Report => Decision::Continue,
            Mode::Enforce => Decision::Reject(Rejection::new(
                ProblemKind::UpstreamError,
                "upstream_error_leak",
                format!("{stack} error details in a {} response", resp.status.as_u16()),
            )),
        })
    }
}
