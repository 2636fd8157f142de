//! [`RequestCtx`]: what the gateway knows about one request while it flows.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

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
    /// Normalised request path, as routed.
    pub path: String,
    /// Template captures of the matched route.
    pub params: Vec<(String, String)>,
    /// The body cap in force for this request (policies may lower it).
    pub max_body_bytes: u64,
    /// Set by the driver when a policy or the gateway refused the request.
    pub rejection_code: Option<&'static str>,
    /// When the request started.
    pub started: Instant,
}

impl RequestCtx {
    /// A fresh context for a request from `peer_ip`.
    pub fn new(request_id: Arc<str>, peer_ip: IpAddr, max_body_bytes: u64) -> Self {
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
        }
    }

    /// Lowers the body cap to `limit` if it is tighter.
    pub fn limit_body(&mut self, limit: u64) {
        self.max_body_bytes = self.max_body_bytes.min(limit);
    }
}
