//! The [`Policy`] trait: one module, optional phases, denial as a value.
//!
//! Request phases run in the fixed order of the policy kinds (see
//! `warden_policies::PolicyKind`); response phases run in reverse. A phase that
//! returns `Err` broke internally: the driver then fails closed (500) unless the
//! policy instance was configured with `on_error: allow`.

use std::future::Future;

use bytes::Bytes;
use http::{request, response};

use crate::{Rejection, RequestCtx, Services};

/// What a phase decided.
#[derive(Debug)]
pub enum Decision {
    /// Go on with the next policy.
    Continue,
    /// Stop and answer the client with this problem.
    Reject(Rejection),
}

/// A policy failed internally (not a denial).
#[derive(Debug, thiserror::Error)]
#[error("policy {policy} failed: {message}")]
pub struct PolicyError {
    /// Policy name.
    pub policy: &'static str,
    /// What broke, for the log.
    pub message: String,
}

/// What the driver does when a policy phase returns `Err`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse the request with 500 (the default).
    #[default]
    Deny,
    /// Log the failure and go on as if the policy had said `Continue`.
    Allow,
}

/// One policy. Every phase is optional; defaults continue.
pub trait Policy: Send + Sync + 'static {
    /// Short kind name for logs and metrics.
    fn name(&self) -> &'static str;

    /// True when the policy needs the whole request body before the upstream is
    /// contacted. The driver then buffers it, bounded by the route's body cap.
    fn needs_request_body(&self) -> bool {
        false
    }

    /// Request headers arrived.
    fn on_request(
        &self,
        _req: &mut request::Parts,
        _ctx: &mut RequestCtx,
    ) -> impl Future<Output = Result<Decision, PolicyError>> + Send {
        async { Ok(Decision::Continue) }
    }

    /// [`Policy::on_request`] decided without waiting, for a policy whose
    /// answer is usually at hand (an in-memory rate limit): the driver calls
    /// this first and awaits `on_request` only on `None`, so the common case
    /// costs no future. `None` must be returned before any side effect but
    /// filling a cache (nothing counted, nothing written to the request or
    /// its context): `on_request` then runs as if this had not been called.
    fn on_request_now(
        &self,
        _req: &mut request::Parts,
        _ctx: &mut RequestCtx,
    ) -> Option<Result<Decision, PolicyError>> {
        None
    }

    /// The buffered request body (only when [`Policy::needs_request_body`]).
    fn on_request_body(
        &self,
        _req: &request::Parts,
        _body: &Bytes,
        _ctx: &mut RequestCtx,
    ) -> impl Future<Output = Result<Decision, PolicyError>> + Send {
        async { Ok(Decision::Continue) }
    }

    /// Upstream response headers arrived.
    fn on_response(
        &self,
        _resp: &mut response::Parts,
        _ctx: &mut RequestCtx,
    ) -> impl Future<Output = Result<Decision, PolicyError>> + Send {
        async { Ok(Decision::Continue) }
    }

    /// `Some(n)` when the policy needs the upstream response body, buffered
    /// up to `n` bytes, before the response is sent. A longer body streams on
    /// uninspected (the driver records an event); a compressed one is refused.
    fn response_body_limit(&self) -> Option<usize> {
        None
    }

    /// The buffered upstream response body (only when
    /// [`Policy::response_body_limit`] is `Some` and the body fitted). The
    /// policy may rewrite it; the driver fixes `Content-Length`. A `Reject`
    /// replaces the response with the problem document.
    fn on_response_body(
        &self,
        _resp: &mut response::Parts,
        _body: &mut Bytes,
        _ctx: &mut RequestCtx,
    ) -> impl Future<Output = Result<Decision, PolicyError>> + Send {
        async { Ok(Decision::Continue) }
    }

    /// The response body passed this policy's [`Policy::response_body_limit`]
    /// and goes on uninspected, unless this returns a refusal (a policy that
    /// must not let unchecked bodies through fails closed here).
    fn response_too_long(&self, _status: http::StatusCode, _ctx: &RequestCtx) -> Option<crate::Rejection> {
        None
    }

    /// Always runs at the end, whatever happened (logging, learning).
    fn on_complete(&self, _ctx: &RequestCtx) {}

    /// Starts background work (fetching keys); called once the snapshot that
    /// holds the policy is about to serve, inside the tokio runtime, with the
    /// gateway's long-lived services.
    fn start(&self, _services: &Services) {}

    /// False while the policy cannot serve yet (keys not fetched); readiness
    /// reports 503 until every policy is ready.
    fn is_ready(&self) -> bool {
        true
    }
}
