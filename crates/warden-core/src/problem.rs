//! RFC 9457 problem types and the [`Rejection`] value a policy returns.
//!
//! Every response the gateway makes itself is one of the [`ProblemKind`]s below.
//! The `type` URIs and titles are stable: clients may match on them. What went
//! wrong in detail (`reason`) goes to the log only; a client sees the title, the
//! status, an optional client-safe `detail` and the request id.

use http::{HeaderName, HeaderValue, StatusCode};

/// The closed set of problems the gateway answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// The request is malformed (bad path encoding, bad framing, bad header).
    BadRequest,
    /// Authentication is required or failed.
    Unauthorized,
    /// The caller is not allowed (IP rules, authorization).
    Forbidden,
    /// No route matches host and path.
    RouteNotFound,
    /// A route matches the path but not the method.
    MethodNotAllowed,
    /// The client did not send the request in time.
    RequestTimeout,
    /// The request body is larger than the route allows.
    PayloadTooLarge,
    /// The request body's media type or encoding cannot be inspected.
    UnsupportedMediaType,
    /// Not a problem: a CORS preflight the gateway answered itself (204, no body).
    PreflightAnswered,
    /// The request target is longer than allowed.
    UriTooLong,
    /// Too many request headers, or too many header bytes.
    HeadersTooLarge,
    /// Rate limit or quota exceeded.
    TooManyRequests,
    /// The gateway itself failed (a policy broke and fails closed).
    InternalError,
    /// The upstream could not be reached or answered with an error.
    BadGateway,
    /// No healthy upstream target, or the gateway is shutting down.
    ServiceUnavailable,
    /// The upstream did not answer in time.
    GatewayTimeout,
    /// The upstream answered with a 5xx; its body was replaced. The status is the upstream's.
    UpstreamError,
    /// The request came over plain HTTP to a listener that only refuses it.
    HttpsRequired,
    /// The route needs a client certificate (mTLS) that was not presented or is not allowed.
    ClientCertRequired,
    /// The request's host differs from the TLS server name (SNI) of its connection.
    MisdirectedRequest,
}

impl ProblemKind {
    /// HTTP status of this problem.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PreflightAnswered => StatusCode::NO_CONTENT,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamError => StatusCode::BAD_GATEWAY,
            Self::HttpsRequired | Self::ClientCertRequired => StatusCode::FORBIDDEN,
            Self::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    /// Stable short name, used in the `type` URI, logs and metrics.
    pub fn slug(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::RouteNotFound => "route-not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::RequestTimeout => "request-timeout",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::PreflightAnswered => "preflight-answered",
            Self::UriTooLong => "uri-too-long",
            Self::HeadersTooLarge => "headers-too-large",
            Self::TooManyRequests => "too-many-requests",
            Self::InternalError => "internal-error",
            Self::BadGateway => "bad-gateway",
            Self::ServiceUnavailable => "service-unavailable",
            Self::GatewayTimeout => "gateway-timeout",
            Self::UpstreamError => "upstream-error",
            Self::HttpsRequired => "https-required",
            Self::ClientCertRequired => "client-certificate-required",
            Self::MisdirectedRequest => "misdirected-request",
        }
    }

    /// Stable human-readable title.
    pub fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad request",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "Forbidden",
            Self::RouteNotFound => "No route matches the request",
            Self::MethodNotAllowed => "Method not allowed on this route",
            Self::RequestTimeout => "Request not received in time",
            Self::PayloadTooLarge => "Request body too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::PreflightAnswered => "CORS preflight answered",
            Self::UriTooLong => "Request target too long",
            Self::HeadersTooLarge => "Request headers too large",
            Self::TooManyRequests => "Too many requests",
            Self::InternalError => "Internal gateway error",
            Self::BadGateway => "Upstream unavailable",
            Self::ServiceUnavailable => "Service unavailable",
            Self::GatewayTimeout => "Upstream did not answer in time",
            Self::UpstreamError => "The upstream service failed",
            Self::HttpsRequired => "This API is served over HTTPS only",
            Self::ClientCertRequired => "A valid client certificate is required",
            Self::MisdirectedRequest => "The request's host does not match the TLS server name",
        }
    }

    /// The RFC 9457 `type` member.
    pub fn type_uri(self) -> String {
        format!("urn:warden:problem:{}", self.slug())
    }
}

/// A policy's refusal: what the client is told and what the log records.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Which problem document the client gets.
    pub kind: ProblemKind,
    /// Stable machine code for logs and metrics, e.g. `ip_denied`.
    pub code: &'static str,
    /// Client-safe detail; never internal addresses or reasons.
    pub detail: Option<String>,
    /// Why, for the log only.
    pub reason: String,
    /// Extra response headers (e.g. `Allow`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Close the client connection after answering.
    pub close: bool,
}

impl Rejection {
    /// A rejection of `kind` with a machine `code` and a log-only `reason`.
    pub fn new(kind: ProblemKind, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            detail: None,
            reason: reason.into(),
            headers: Vec::new(),
            close: false,
        }
    }

    /// Adds client-safe detail text.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Asks for the connection to be closed after the answer.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_an_error_status_and_distinct_slug() {
        use ProblemKind::*;
        let all = [
            BadRequest,
            Unauthorized,
            Forbidden,
            RouteNotFound,
            MethodNotAllowed,
            RequestTimeout,
            PayloadTooLarge,
            UriTooLong,
            HeadersTooLarge,
            TooManyRequests,
            InternalError,
            BadGateway,
            ServiceUnavailable,
            GatewayTimeout,
            UpstreamError,
        ];
        let mut slugs = std::collections::HashSet::new();
        for k in all {
            assert!(k.status().is_client_error() || k.status().is_server_error());
            assert!(slugs.insert(k.slug()), "duplicate slug {}", k.slug());
            assert!(k.type_uri().starts_with("urn:warden:problem:"));
        }
    }
}
