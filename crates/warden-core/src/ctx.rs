//! [`RequestCtx`]: what the gateway knows about one request while it flows.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Headers policies add to the response ([`RequestCtx::response_headers`]):
/// usually none or a couple (rate-limit state, CORS), so two stay inline
/// and a request that has them allocates nothing for the list.
pub type ResponseHeaders = smallvec::SmallVec<[(http::HeaderName, http::HeaderValue); 2]>;

/// Per-request context shared by the policies and the driver.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// Request id (generated, or accepted from a trusted proxy).
    pub request_id: Arc<str>,
    /// The client's address as the gateway trusts it (peer, or from a trusted proxy).
    pub client_ip: IpAddr,
    /// The TCP peer address.
    pub peer_ip: IpAddr,
    /// Matched route id, when a route matched.
    pub route_id: Option<Arc<str>>,
    /// Authenticated consumer, when known.
    pub consumer: Option<Arc<str>>,
    /// Normalised request path, as routed. The upstream is sent this path:
    /// policies read it and must not change it.
    pub path: String,
    /// Template captures of the matched route.
    pub params: Vec<(String, String)>,
    /// The body cap in force for this request (policies may lower it).
    pub max_body_bytes: u64,
    /// Set by the driver when a policy or the gateway refused the request.
    pub rejection_code: Option<&'static str>,
    /// When the request started.
    pub started: Instant,
    /// The client certificate the TLS listener verified, if any (mTLS): for
    /// consumer mapping and authorization.
    pub client_cert: Option<Arc<ClientIdentity>>,
    /// Claims of the verified access token, once an authentication policy accepted one.
    pub token_claims: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The authenticated consumer's groups (from its API key or token).
    pub groups: Arc<[Arc<str>]>,
    /// `METHOD /path/pattern` of the matched route (what authorization
    /// policies call the action).
    pub operation: Option<Arc<str>>,
    /// Now, Unix seconds, taken once per request (policies use this clock,
    /// so tests can set it).
    pub now_secs: i64,
    /// The same moment in Unix milliseconds (rate limits count in ms).
    pub now_ms: i64,
    /// The route accepts any one of its authentication methods: a policy
    /// whose credential is absent lets the request on (the route refuses it
    /// afterwards if no method accepted).
    pub auth_any: bool,
    /// An authentication policy accepted a credential.
    pub authenticated: bool,
    /// Which one: `jwt` or `api_key` (`None`: anonymous).
    pub auth_method: Option<&'static str>,
    /// The accepted credential's id (API key prefix, token `jti`), for
    /// per-credential limits.
    pub credential: Option<Arc<str>>,
    /// Resources a policy holds until the exchange ends (the response body is
    /// done or the client went away): dropped with the context.
    pub holds: Vec<Arc<dyn std::any::Any + Send + Sync>>,
    /// The identity a login attempt names (for brute-force protection).
    pub attempted_identity: Option<Arc<str>>,
    /// Headers the driver adds to the response, whoever makes it (rate-limit
    /// state, for instance).
    pub response_headers: ResponseHeaders,
    /// The client reached the gateway over TLS (for URLs the client used,
    /// e.g. a DPoP proof's `htu`).
    pub secure: bool,
    /// The request method (response phases read it: the request is gone).
    pub method: http::Method,
    /// What policies derived from the connection's client, for its next
    /// requests (`None` outside a connection: tests, the CLI).
    pub conn_memo: Option<Arc<crate::ConnMemo>>,
    /// What a policy read in the buffered body for a later policy of the
    /// same route, so the body is not read twice (the `contract` leaves
    /// the `injection` scan it ran while parsing). Its reader checks it was
    /// made for the body it is given.
    pub body_scan: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

/// Identity of a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// Subject distinguished name, RFC 4514 style (`CN=svc, O=Example`).
    pub subject: String,
    /// subjectAltName DNS names, lower case.
    pub dns: Vec<String>,
    /// subjectAltName URIs (SPIFFE IDs among them).
    pub uris: Vec<String>,
    /// Lower-case hex SHA-256 of the DER certificate.
    pub sha256: String,
}

impl ClientIdentity {
    /// The certificate's SHA-256 as base64url without padding: the RFC 8705
    /// `x5t#S256` confirmation value.
    pub fn x5t_s256(&self) -> Option<String> {
        use base64::Engine as _;
        let bytes: Option<Vec<u8>> = (0..self.sha256.len())
            .step_by(2)
            .map(|i| self.sha256.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes?))
    }

    /// A one-line name for logs: the first URI SAN, else the first DNS SAN,
    /// else the subject DN.
    pub fn principal(&self) -> &str {
        self.uris
            .first()
            .or_else(|| self.dns.first())
            .map_or(self.subject.as_str(), String::as_str)
    }
}

impl RequestCtx {
    /// A fresh context for a request from `peer_ip`.
    pub fn new(request_id: Arc<str>, peer_ip: IpAddr, max_body_bytes: u64) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            request_id,
            client_ip: peer_ip,
            peer_ip,
            route_id: None,
            consumer: None,
            path: String::new(),
            params: Vec::new(),
            max_body_bytes,
            rejection_code: None,
            started: Instant::now(),
            client_cert: None,
            token_claims: None,
            groups: no_groups(),
            operation: None,
            now_secs: now_ms.div_euclid(1000),
            now_ms,
            auth_any: false,
            authenticated: false,
            auth_method: None,
            credential: None,
            attempted_identity: None,
            holds: Vec::new(),
            response_headers: ResponseHeaders::new(),
            secure: false,
            method: http::Method::GET,
            conn_memo: None,
            body_scan: None,
        }
    }

    /// Lowers the body cap to `limit` if it is tighter.
    pub fn limit_body(&mut self, limit: u64) {
        self.max_body_bytes = self.max_body_bytes.min(limit);
    }
}

/// The empty group list every request starts with: one allocation per
/// thread instead of one per request (per thread, so workers never share
/// its reference count's cache line).
fn no_groups() -> Arc<[Arc<str>]> {
    thread_local! {
        static NONE: Arc<[Arc<str>]> = Arc::from(Vec::new());
    }
    NONE.with(Arc::clone)
}
