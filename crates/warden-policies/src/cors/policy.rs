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

    /// Why a preflight is refused, if it is; else the requested headers to
    /// name in `Access-Control-Allow-Headers` (browsers list a safelisted
    /// name such as `content-type` only when its value is not safelisted, and
    /// then need it named).
    fn preflight_refusal(&self, req: &request::Parts, origin: &str) -> Result<Vec<String>, &'static str> {
        if !self.allowed(origin) {
            return Err("origin not allowed");
        }
        let method = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok());
        if !method.is_some_and(|m| self.methods.contains(&m)) {
            return Err("method not allowed");
        }
        let mut named = Vec::new();
        for value in req.headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(value) = value.to_str() else {
                return Err("request header list unreadable");
            };
            for h in value.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                let known = SAFELISTED.iter().any(|s| s.eq_ignore_ascii_case(h))
                    || self.allow_headers.iter().any(|a| a.as_str().eq_ignore_ascii_case(h));
                if !known {
                    return Err("request header not allowed");
                }
                named.push(h.to_ascii_lowercase());
            }
        }
        Ok(named)
    }

    fn preflight(&self, req: &request::Parts, origin: &HeaderValue) -> Rejection {
        let text = origin.to_str().unwrap_or("");
        let named = match self.preflight_refusal(req, text) {
            Ok(named) => named,
            Err(reason) => {
                return Rejection::new(ProblemKind::Forbidden, "cors_refused", reason)
                    .with_detail(format!("CORS preflight refused: {reason}"))
                    .with_header(header::VARY, HeaderValue::from_static("Origin"));
            }
        };
        let mut answer = Rejection::new(ProblemKind::PreflightAnswered, "cors_preflight", "preflight answered");
        for (name, value) in self.origin_headers(origin) {
            answer = answer.with_header(name, value);
        }
        if let Some(v) = &self.allow_methods_value {
            answer = answer.with_header(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
        }
        if let Ok(v) = HeaderValue::from_str(&named.join(", "))
            && !named.is_empty()
        {
            answer = answer.with_header(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
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
        let vary = || (header::VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = req.headers.get(header::ORIGIN).cloned() else {
            // The answer still depends on Origin: a cache must not serve
            // this copy to a cross-origin caller.
            if !self.wildcard {
                ctx.response_headers.push(vary());
            }
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

    /// The upstream's own CORS headers never pass: the gateway's decide.
    async fn on_response(
        &self,
        resp: &mut http::response::Parts,
        _ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        for name in [
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::ACCESS_CONTROL_MAX_AGE,
        ] {
            resp.headers.remove(name);
        }
        Ok(Decision::Continue)
    }
}
