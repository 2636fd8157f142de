//! `Cors`: preflight answers and the headers of actual responses.

use http::{HeaderName, HeaderValue, Method, header, request};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

use crate::origin::normalise_origin;

/// Compiled `cors`.
#[derive(Debug, Clone)]
pub struct Cors {
    pub(crate) wildcard: bool,
    /// Normalised origins.
    pub(crate) origins: Vec<String>,
    pub(crate) methods: Vec<Method>,
    pub(crate) allow_methods_value: Option<HeaderValue>,
    pub(crate) allow_headers: Vec<HeaderName>,
    pub(crate) allow_headers_value: Option<HeaderValue>,
    pub(crate) expose_headers_value: Option<HeaderValue>,
    pub(crate) credentials: bool,
    pub(crate) max_age: HeaderValue,
}

/// Request headers a browser may send cross-origin without asking.
const SAFELISTED: &[&str] = &["accept", "accept-language", "content-language", "content-type", "range"];

impl Cors {
    fn allowed(&self, origin: &str) -> bool {
        self.wildcard || normalise_origin(origin).is_some_and(|o| self.origins.contains(&o))
    }

    /// `Access-Control-Allow-Origin` (and `-Credentials`) for an allowed origin.
    fn origin_headers(&self, origin: &HeaderValue) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(3);
        if self.wildcard && !self.credentials {
            out.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")));
        } else {
            out.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
        }
        if self.credentials {
            out.push((
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        out
    }

    /// Why a preflight is refused, if it is.
    fn preflight_refusal(&self, req: &request::Parts, origin: &str) -> Option<&'static str> {
        if !self.allowed(origin) {
            return Some("origin not allowed");
        }
        let method = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok());
        if !method.is_some_and(|m| self.methods.contains(&m)) {
            return Some("method not allowed");
        }
        let requested = req
            .headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty());
        for h in requested {
            let known = SAFELISTED.iter().any(|s| s.eq_ignore_ascii_case(h))
                || self.allow_headers.iter().any(|a| a.as_str().eq_ignore_ascii_case(h));
            if !known {
                return Some("request header not allowed");
            }
        }
        None
    }

    fn preflight(&self, req: &request::Parts, origin: &HeaderValue) -> Rejection {
        let text = origin.to_str().unwrap_or("");
        if let Some(reason) = self.preflight_refusal(req, text) {
            return Rejection::new(ProblemKind::Forbidden, "cors_refused", reason)
                .with_detail(format!("CORS preflight refused: {reason}"))
                .with_header(header::VARY, HeaderValue::from_static("Origin"));
        }
        let mut answer = Rejection::new(ProblemKind::PreflightAnswered, "cors_preflight", "preflight answered");
        for (name, value) in self.origin_headers(origin) {
            answer = answer.with_header(name, value);
        }
        if let Some(v) = &self.allow_methods_value {
            answer = answer.with_header(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
        if let Some(v) = self.allow_headers_value.as_ref().filter(|v| !v.is_empty()) {
            answer = answer.with_header(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
        }
        answer
            .with_header(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone())
            .with_header(header::VARY, HeaderValue::from_static("Origin"))
    }
}

impl Policy for Cors {
    fn name(&self) -> &'static str {
        "cors"
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let Some(origin) = req.headers.get(header::ORIGIN).cloned() else {
            return Ok(Decision::Continue);
        };
        if req.method == Method::OPTIONS && req.headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return Ok(Decision::Reject(self.preflight(req, &origin)));
        }
        ctx.response_headers
            .push((header::VARY, HeaderValue::from_static("Origin")));
        if self.allowed(origin.to_str().unwrap_or("")) {
            ctx.response_headers.extend(self.origin_headers(&origin));
            if let Some(v) = self.expose_headers_value.as_ref().filter(|v| !v.is_empty()) {
                ctx.response_headers
                    .push((header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone()));
            }
        }
        Ok(Decision::Continue)
    }
}
