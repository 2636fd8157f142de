//! Warden's built-in policies, one folder each, and the closed set of policy
//! kinds the configuration can name.
//!
//! [`PolicySpec`] is the `type:`-tagged config enum; [`PolicySpec::build`]
//! compiles it once into a [`CompiledPolicy`], the runtime value the proxy
//! drives. Request phases run in [`PolicyKind`] order, whatever order the
//! config lists them in.

pub mod api_key;
pub mod authz;
pub mod brute_force;
mod cache;
pub mod contract;
pub mod cors;
pub mod csrf;
pub mod dpop;
pub mod injection;
pub mod ip_rules;
pub mod json;
#[cfg(test)]
mod json_corpus;
pub mod json_limits;
mod json_tree;
mod json_walk;
pub mod jwt;
mod origin;
pub mod query;
pub mod rate_limit;
pub mod request_limits;
pub mod response;

use bytes::Bytes;
use http::request;
use serde::Deserialize;
use warden_core::{Decision, OnError, Policy, PolicyError, RequestCtx, Services};

/// Lets the policies of one route share work on the same body: a
/// `contract` scans JSON bodies for the route's `injection` in the walk that
/// parses them, so the body is read once (`injection/along.rs`). Call it
/// with the route's policies once they are built.
pub fn link<'p>(policies: impl IntoIterator<Item = &'p mut CompiledPolicy>) {
    let mut policies: Vec<&mut CompiledPolicy> = policies.into_iter().collect();
    let injection = policies.iter().find_map(|p| match p {
        CompiledPolicy::Injection(i) => Some(i.clone()),
        _ => None,
    });
    let Some(injection) = injection else {
        return;
    };
    for p in &mut policies {
        if let CompiledPolicy::Contract(c) = p {
            c.scan_along(injection.clone());
        }
    }
}

/// The policy kinds, in the fixed order their request phases run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PolicyKind {
    /// Connection guard: client IP allow/deny lists.
    IpRules,
    /// Connection guard: per-route header, URI and body caps.
    RequestLimits,
    /// CORS: preflights answered before any credential is asked for.
    Cors,
    /// Login guard: lock-out after failed attempts, credential stuffing.
    BruteForce,
    /// Cross-site request forgery on cookie-authenticated routes.
    Csrf,
    /// Authentication: JSON Web Tokens.
    Jwt,
    /// Authentication: API keys from the store.
    ApiKey,
    /// Rate limits and quotas (after authentication: keys can name the consumer).
    RateLimit,
    /// Authorization: Cedar policies and object bindings.
    Authz,
    /// Contract validation against the API's OpenAPI document.
    Contract,
    /// Injection detection on every decoded input.
    Injection,
    /// Response side: sensitive data and secrets masked (runs last of the
    /// three, response phases being in reverse).
    DataLeak,
    /// Response side: responses filtered to the OpenAPI document.
    ResponseContract,
    /// Response side: stack traces and error pages replaced (runs first).
    ErrorLeaks,
}

impl PolicyKind {
    /// The `type:` name in config.
    pub fn name(self) -> &'static str {
        match self {
            Self::IpRules => "ip_rules",
            Self::RequestLimits => "request_limits",
            Self::Cors => "cors",
            Self::BruteForce => "brute_force",
            Self::Csrf => "csrf",
            Self::Jwt => "jwt",
            Self::ApiKey => "api_key",
            Self::RateLimit => "rate_limit",
            Self::Authz => "authz",
            Self::Contract => "contract",
            Self::Injection => "injection",
            Self::DataLeak => "data_leak",
            Self::ResponseContract => "response_contract",
            Self::ErrorLeaks => "error_leaks",
        }
    }
}

/// One entry of a route's `policies:` list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicySpec {
    /// See [`ip_rules`].
    IpRules(ip_rules::IpRulesConfig),
    /// See [`request_limits`].
    RequestLimits(request_limits::RequestLimitsConfig),
    /// See [`cors`].
    Cors(cors::CorsConfig),
    /// See [`brute_force`].
    BruteForce(brute_force::BruteForceConfig),
    /// See [`csrf`].
    Csrf(csrf::CsrfConfig),
    /// See [`jwt`].
    Jwt(jwt::JwtConfig),
    /// See [`api_key`].
    ApiKey(api_key::ApiKeyConfig),
    /// See [`rate_limit`].
    RateLimit(rate_limit::RateLimitConfig),
    /// See [`authz`].
    Authz(authz::AuthzConfig),
    /// See [`contract`].
    Contract(contract::ContractConfig),
    /// See [`injection`].
    Injection(injection::InjectionConfig),
    /// See [`response`].
    DataLeak(response::DataLeakConfig),
    /// See [`response`].
    ResponseContract(response::ResponseContractConfig),
    /// See [`response`].
    ErrorLeaks(response::ErrorLeaksConfig),
}

/// A config problem found while compiling a policy; `path` is relative to the policy entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Key path inside the policy entry, e.g. `allow[2]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl PolicySpec {
    /// The kind of this entry.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Self::IpRules(_) => PolicyKind::IpRules,
            Self::RequestLimits(_) => PolicyKind::RequestLimits,
            Self::Cors(_) => PolicyKind::Cors,
            Self::BruteForce(_) => PolicyKind::BruteForce,
            Self::Csrf(_) => PolicyKind::Csrf,
            Self::Jwt(_) => PolicyKind::Jwt,
            Self::ApiKey(_) => PolicyKind::ApiKey,
            Self::RateLimit(_) => PolicyKind::RateLimit,
            Self::Authz(_) => PolicyKind::Authz,
            Self::Contract(_) => PolicyKind::Contract,
            Self::Injection(_) => PolicyKind::Injection,
            Self::DataLeak(_) => PolicyKind::DataLeak,
            Self::ResponseContract(_) => PolicyKind::ResponseContract,
            Self::ErrorLeaks(_) => PolicyKind::ErrorLeaks,
        }
    }

    /// What the driver does when this policy breaks.
    pub fn on_error(&self) -> OnError {
        match self {
            Self::IpRules(c) => c.on_error,
            Self::RequestLimits(c) => c.on_error,
            Self::Cors(c) => c.on_error,
            Self::BruteForce(c) => c.on_error,
            Self::Csrf(c) => c.on_error,
            Self::Jwt(c) => c.on_error,
            Self::ApiKey(c) => c.on_error,
            Self::RateLimit(c) => c.on_error,
            Self::Authz(c) => c.on_error,
            Self::Contract(c) => c.on_error,
            Self::Injection(c) => c.on_error,
            Self::DataLeak(c) => c.on_error,
            Self::ResponseContract(c) => c.on_error,
            Self::ErrorLeaks(c) => c.on_error,
        }
    }

    /// Compiles the entry, reporting every problem found.
    pub fn build(&self) -> Result<CompiledPolicy, Vec<SpecError>> {
        // Who-is-calling and may-they decisions never fail open: a broken
        // store or key source must not turn into anonymous access.
        let fails_open =
            self.on_error() == OnError::Allow && matches!(self, Self::Jwt(_) | Self::ApiKey(_) | Self::Authz(_));
        let open_error = || SpecError {
            path: "on_error".into(),
            message: format!(
                "`{}` decides who may call and cannot fail open; use `on_error: deny`",
                self.kind().name()
            ),
        };
        let built = self.build_kind();
        match (built, fails_open) {
            (Ok(p), false) => Ok(p),
            (Ok(_), true) => Err(vec![open_error()]),
            (Err(mut errs), open) => {
                if open {
                    errs.insert(0, open_error());
                }
                Err(errs)
            }
        }
    }

    fn build_kind(&self) -> Result<CompiledPolicy, Vec<SpecError>> {
        match self {
            Self::IpRules(c) => c.build().map(CompiledPolicy::IpRules),
            Self::RequestLimits(c) => c.build().map(CompiledPolicy::RequestLimits),
            Self::Cors(c) => c.build().map(CompiledPolicy::Cors),
            Self::BruteForce(c) => c.build().map(CompiledPolicy::BruteForce),
            Self::Csrf(c) => c.build().map(CompiledPolicy::Csrf),
            Self::Jwt(c) => c.build().map(CompiledPolicy::Jwt),
            Self::ApiKey(c) => c.build().map(CompiledPolicy::ApiKey),
            Self::RateLimit(c) => c.build().map(CompiledPolicy::RateLimit),
            Self::Authz(c) => c.build().map(CompiledPolicy::Authz),
            Self::Contract(c) => c.build().map(CompiledPolicy::Contract),
            Self::Injection(c) => c.build().map(CompiledPolicy::Injection),
            Self::DataLeak(c) => c.build().map(CompiledPolicy::DataLeak),
            Self::ResponseContract(c) => c.build().map(CompiledPolicy::ResponseContract),
            Self::ErrorLeaks(c) => c.build().map(CompiledPolicy::ErrorLeaks),
        }
    }

    /// Makes relative file paths in the entry relative to `base` (the config
    /// file's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        match self {
            Self::Jwt(c) => c.resolve_paths(base),
            Self::Authz(c) => c.resolve_paths(base),
            Self::Contract(c) => c.resolve_paths(base),
            Self::ResponseContract(c) => c.resolve_paths(base),
            _ => {}
        }
    }
}

/// A compiled policy, ready for the request path.
#[derive(Debug)]
pub enum CompiledPolicy {
    /// See [`ip_rules`].
    IpRules(ip_rules::IpRules),
    /// See [`request_limits`].
    RequestLimits(request_limits::RequestLimits),
    /// See [`cors`].
    Cors(cors::Cors),
    /// See [`brute_force`].
    BruteForce(brute_force::BruteForce),
    /// See [`csrf`].
    Csrf(csrf::Csrf),
    /// See [`jwt`].
    Jwt(jwt::Jwt),
    /// See [`api_key`].
    ApiKey(api_key::ApiKey),
    /// See [`rate_limit`].
    RateLimit(rate_limit::RateLimit),
    /// See [`authz`].
    Authz(authz::Authz),
    /// See [`contract`].
    Contract(contract::Contract),
    /// See [`injection`].
    Injection(injection::Injection),
    /// See [`response`].
    DataLeak(response::DataLeak),
    /// See [`response`].
    ResponseContract(response::ResponseContract),
    /// See [`response`].
    ErrorLeaks(response::ErrorLeaks),
}

/// `match` over every [`CompiledPolicy`] variant, binding the policy to `$p`.
macro_rules! each {
    ($self:expr, $p:ident => $e:expr) => {
        match $self {
            CompiledPolicy::IpRules($p) => $e,
            CompiledPolicy::RequestLimits($p) => $e,
            CompiledPolicy::Cors($p) => $e,
            CompiledPolicy::BruteForce($p) => $e,
            CompiledPolicy::Csrf($p) => $e,
            CompiledPolicy::Jwt($p) => $e,
            CompiledPolicy::ApiKey($p) => $e,
            CompiledPolicy::RateLimit($p) => $e,
            CompiledPolicy::Authz($p) => $e,
            CompiledPolicy::Contract($p) => $e,
            CompiledPolicy::Injection($p) => $e,
            CompiledPolicy::DataLeak($p) => $e,
            CompiledPolicy::ResponseContract($p) => $e,
            CompiledPolicy::ErrorLeaks($p) => $e,
        }
    };
}

impl Policy for CompiledPolicy {
    fn name(&self) -> &'static str {
        each!(self, p => p.name())
    }

    fn needs_request_body(&self) -> bool {
        each!(self, p => p.needs_request_body())
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        each!(self, p => p.on_request(req, ctx).await)
    }

    fn on_request_now(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Option<Result<Decision, PolicyError>> {
        each!(self, p => p.on_request_now(req, ctx))
    }

    async fn on_request_body(
        &self,
        req: &request::Parts,
        body: &Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        each!(self, p => p.on_request_body(req, body, ctx).await)
    }

    async fn on_response(
        &self,
        resp: &mut http::response::Parts,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        each!(self, p => p.on_response(resp, ctx).await)
    }

    fn response_body_limit(&self) -> Option<usize> {
        each!(self, p => p.response_body_limit())
    }

    async fn on_response_body(
        &self,
        resp: &mut http::response::Parts,
        body: &mut Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        each!(self, p => p.on_response_body(resp, body, ctx).await)
    }

    fn response_too_long(&self, status: http::StatusCode, ctx: &RequestCtx) -> Option<warden_core::Rejection> {
        each!(self, p => p.response_too_long(status, ctx))
    }

    fn on_complete(&self, ctx: &RequestCtx) {
        each!(self, p => p.on_complete(ctx))
    }

    fn start(&self, services: &Services) {
        each!(self, p => p.start(services))
    }

    fn is_ready(&self) -> bool {
        each!(self, p => p.is_ready())
    }
}

/// Runs a future that never waits (policy phases without I/O) to completion.
#[cfg(test)]
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
