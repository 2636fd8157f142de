//! The one place that turns a [`Rejection`] or problem into response bytes, and
//! that decides which headers every response carries.
//!
//! Gateway-made responses are RFC 9457 `application/problem+json` with `type`,
//! `title`, `status`, optional client-safe `detail` and `request_id`. Nothing
//! internal (upstream address, error text, framework name) is ever written here.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use warden_core::{ProblemKind, Rejection};

use crate::body::{ProxyBody, full};

/// `X-Request-Id`.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Response headers from upstreams that reveal the stack; always removed.
pub(crate) fn is_fingerprint(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "server"
            | "x-powered-by"
            | "x-aspnet-version"
            | "x-aspnetmvc-version"
            | "x-generator"
            | "x-runtime"
            | "x-version"
            | "via"
    )
}

/// The RFC 9457 body: `type`, `title`, `status`, `request_id`, optional `detail`.
/// Also used by the framing refusal, which answers before hyper exists.
pub fn problem_json(kind: ProblemKind, status: StatusCode, detail: Option<&str>, request_id: &str) -> String {
    let mut doc = serde_json::json!({
        "type": kind.type_uri(),
        "title": kind.title(),
        "status": status.as_u16(),
        "request_id": request_id,
    });
    if let (Some(d), Some(obj)) = (detail, doc.as_object_mut()) {
        obj.insert("detail".into(), serde_json::Value::String(d.to_owned()));
    }
    doc.to_string()
}

/// Renders a problem document. `status` overrides the kind's default (used for
/// replaced upstream 5xx bodies, which keep the upstream's status).
pub fn problem(
    kind: ProblemKind,
    status: Option<StatusCode>,
    detail: Option<&str>,
    request_id: &str,
) -> Response<ProxyBody> {
    let status = status.unwrap_or_else(|| kind.status());
    let doc = problem_json(kind, status, detail, request_id);
    let body = Bytes::from(doc);
    let mut resp = Response::new(full(body.clone()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(REQUEST_ID.clone(), v);
    }
    security_headers(h);
    resp
}

/// Renders a policy's or the gateway's rejection. A CORS preflight answer is
/// the one gateway-made response that is not a problem: 204, no body.
pub fn rejection(rej: &Rejection, request_id: &str) -> Response<ProxyBody> {
    let mut resp = if rej.kind == ProblemKind::PreflightAnswered {
        empty(rej.kind.status(), request_id)
    } else {
        problem(rej.kind, None, rej.detail.as_deref(), request_id)
    };
    for (name, value) in &rej.headers {
        resp.headers_mut().append(name.clone(), value.clone());
    }
    if rej.close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// A bodiless gateway answer with the usual headers.
fn empty(status: StatusCode, request_id: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(REQUEST_ID.clone(), v);
    }
    security_headers(h);
    resp
}

/// Adds the default API security headers unless the upstream set its own.
pub fn security_headers(h: &mut HeaderMap) {
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
}

/// Removes headers that fingerprint the upstream's software.
pub fn strip_fingerprints(h: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = h.keys().filter(|n| is_fingerprint(n)).cloned().collect();
    for name in doomed {
        h.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn problem_document_has_the_rfc9457_members_and_safe_headers() {
        let resp = problem(ProblemKind::RouteNotFound, None, None, "abc");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let h = resp.headers().clone();
        assert_eq!(h["content-type"], "application/problem+json");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-request-id"], "abc");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "urn:warden:problem:route-not-found");
        assert_eq!(v["status"], 404);
        assert_eq!(v["request_id"], "abc");
        assert!(v.get("detail").is_none());
    }

    #[test]
    fn fingerprint_headers_are_removed_and_others_kept() {
        let mut h = HeaderMap::new();
        h.insert("server", HeaderValue::from_static("nginx/1.2"));
        h.insert("x-powered-by", HeaderValue::from_static("Express"));
        h.insert("x-aspnet-version", HeaderValue::from_static("4.0"));
        h.insert("x-served-by", HeaderValue::from_static("keep-me"));
        strip_fingerprints(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-served-by"));
    }
}
