//! `RequestLimits`: the compiled caps and their checks.

use bytes::Bytes;
use http::{header, request};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

use crate::json::{is_json, media_type};
use crate::json_limits::{self, JsonLimits};

/// Compiled `request_limits`.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    pub(crate) max_body_bytes: Option<u64>,
    pub(crate) max_headers: Option<usize>,
    pub(crate) max_header_bytes: Option<usize>,
    pub(crate) max_uri_bytes: Option<usize>,
    pub(crate) json: Option<JsonRule>,
}

/// Compiled `json:` limits.
#[derive(Debug, Clone)]
pub(crate) struct JsonRule {
    pub max_bytes: Option<u64>,
    pub limits: JsonLimits,
}

impl JsonRule {
    /// Checks a JSON body; other media types are not this rule's business.
    fn check(&self, req: &request::Parts, body: &Bytes) -> Option<Rejection> {
        if !is_json(&media_type(req)) {
            return None;
        }
        if let Some(max) = self.max_bytes
            && body.len() as u64 > max
        {
            return Some(Rejection::new(
                ProblemKind::PayloadTooLarge,
                "json_too_large",
                format!("JSON body of {} bytes, route allows {max}", body.len()),
            ));
        }
        let violation = json_limits::check(body, &self.limits).err()?;
        // The detail names the place and the rule, never the value.
        Some(
            Rejection::new(ProblemKind::BadRequest, "json_limit", violation.to_string())
                .with_detail(format!("{violation}")),
        )
    }
}

/// Wire size of the header section as HTTP/1 would send it.
pub fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers.iter().map(|(n, v)| field_bytes(n, v)).sum()
}

/// Wire size of one field line as HTTP/1 would send it (`name: value` CRLF).
pub fn field_bytes(name: &http::HeaderName, value: &http::HeaderValue) -> usize {
    name.as_str().len() + value.len() + 4
}

/// Length of the request target (path and query).
pub fn uri_bytes(uri: &http::Uri) -> usize {
    uri.path_and_query().map_or(1, |pq| pq.as_str().len())
}

impl RequestLimits {
    /// Checks the request head against the caps, returning the first breach.
    pub fn check_head(&self, req: &request::Parts) -> Option<Rejection> {
        if let Some(max) = self.max_uri_bytes {
            let len = uri_bytes(&req.uri);
            if len > max {
                return Some(Rejection::new(
                    ProblemKind::UriTooLong,
                    "uri_too_long",
                    format!("request target is {len} bytes, route allows {max}"),
                ));
            }
        }
        if let Some(max) = self.max_headers {
            let n = req.headers.len();
            if n > max {
                return Some(Rejection::new(
                    ProblemKind::HeadersTooLarge,
                    "too_many_headers",
                    format!("{n} headers, route allows {max}"),
                ));
            }
        }
        if let Some(max) = self.max_header_bytes {
            let n = header_bytes(&req.headers);
            if n > max {
                return Some(Rejection::new(
                    ProblemKind::HeadersTooLarge,
                    "header_bytes_exceeded",
                    format!("{n} header bytes, route allows {max}"),
                ));
            }
        }
        if let Some(max) = self.max_body_bytes {
            let declared = req
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(len) = declared.filter(|len| *len > max) {
                return Some(Rejection::new(
                    ProblemKind::PayloadTooLarge,
                    "body_too_large",
                    format!("declared body of {len} bytes, route allows {max}"),
                ));
            }
        }
        None
    }
}

impl Policy for RequestLimits {
    fn name(&self) -> &'static str {
        "request_limits"
    }

    fn needs_request_body(&self) -> bool {
        self.json.is_some()
    }

    async fn on_request_body(
        &self,
        req: &request::Parts,
        body: &Bytes,
        _ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        Ok(match self.json.as_ref().and_then(|rule| rule.check(req, body)) {
            Some(rejection) => Decision::Reject(rejection),
            None => Decision::Continue,
        })
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        if let Some(max) = self.max_body_bytes {
            ctx.limit_body(max);
        }
        Ok(match self.check_head(req) {
            Some(rejection) => Decision::Reject(rejection),
            None => Decision::Continue,
        })
    }
}
