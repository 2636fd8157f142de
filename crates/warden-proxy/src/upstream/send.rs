//! Sending one request upstream: pick a target, apply the first-byte and total
//! deadlines, retry on another target only when the connection could not be
//! made and the request is idempotent with an empty body, and feed the outcome
//! to passive health.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use tokio::time::Instant;
use warden_config::schema::UpstreamProtocol;

use super::{InflightGuard, ServicePool};
use crate::body::{BodyFault, BodyStats, ProxyBody, empty};

/// What to send, apart from the body.
#[derive(Debug)]
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// Path and query, already normalised.
    pub path_and_query: String,
    /// Headers, already rewritten for the upstream.
    pub headers: HeaderMap,
    /// The request body is known to be empty.
    pub body_empty: bool,
}

/// A response and the target that produced it.
#[derive(Debug)]
pub struct Sent {
    /// Upstream response (body still streaming).
    pub response: Response<Incoming>,
    /// Holds the target's in-flight count until the response is done.
    pub guard: InflightGuard,
}

/// Why no response came back.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Every target is ejected or failing health checks.
    #[error("no healthy target")]
    NoHealthyTarget,
    /// The connection could not be made (after retries).
    #[error("connect to {target} failed: {message}")]
    Connect {
        /// Target authority, for the log.
        target: String,
        /// Cause, for the log.
        message: String,
    },
    /// The upstream did not answer in time.
    #[error("{target} did not answer within the deadline")]
    Timeout {
        /// Target authority.
        target: String,
    },
    /// The exchange broke after connecting.
    #[error("exchange with {target} failed: {message}")]
    Exchange {
        /// Target authority.
        target: String,
        /// Cause.
        message: String,
    },
    /// The client's request body stopped (too large, too slow, broken).
    #[error("request body stopped: {0:?}")]
    Body(BodyFault),
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Sends `out` with `body` to a target of `pool`.
pub async fn send(
    pool: &Arc<ServicePool>,
    out: Outgoing,
    body: ProxyBody,
    stats: &BodyStats,
    deadline: Instant,
) -> Result<Sent, SendError> {
    let retryable = idempotent(&out.method) && out.body_empty;
    let attempts = if retryable { pool.config.retries.attempts } else { 0 };
    let first_byte = Duration::from_millis(pool.config.timeouts.first_byte_ms);
    let mut body = Some(body);
    let mut tried = Vec::new();
    let mut last = SendError::NoHealthyTarget;
    for _ in 0..=attempts {
        let Some(guard) = pool.pick(&tried) else { break };
        tried.push(guard.index());
        let target = guard.target().authority.to_string();
        let b = if retryable {
            empty()
        } else {
            body.take().unwrap_or_else(empty)
        };
        let req = match build(pool, &out, &target, b) {
            Some(r) => r,
            None => {
                return Err(SendError::Exchange {
                    target,
                    message: "invalid upstream URI".into(),
                });
            }
        };
        let wait = first_byte.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, pool.client.request(req)).await {
            Ok(Ok(response)) => {
                if response.status().is_server_error() {
                    pool.record_failure(guard.index());
                } else {
                    pool.record_success(guard.index());
                }
                return Ok(Sent { response, guard });
            }
            Ok(Err(e)) => {
                if let Some(fault) = stats.fault() {
                    return Err(SendError::Body(fault));
                }
                pool.record_failure(guard.index());
                if e.is_connect() {
                    last = SendError::Connect {
                        target,
                        message: error_chain(&e),
                    };
                    continue;
                }
                return Err(SendError::Exchange {
                    target,
                    message: error_chain(&e),
                });
            }
            Err(_) => {
                if let Some(fault) = stats.fault() {
                    return Err(SendError::Body(fault));
                }
                pool.record_failure(guard.index());
                return Err(SendError::Timeout { target });
            }
        }
    }
    Err(last)
}

fn build(pool: &ServicePool, out: &Outgoing, target: &str, body: ProxyBody) -> Option<Request<ProxyBody>> {
    let uri: Uri = format!("http://{target}{}", out.path_and_query).parse().ok()?;
    let mut req = Request::new(body);
    *req.method_mut() = out.method.clone();
    *req.uri_mut() = uri;
    *req.headers_mut() = out.headers.clone();
    *req.version_mut() = match pool.config.protocol {
        UpstreamProtocol::Http1 => Version::HTTP_11,
        UpstreamProtocol::Http2 => Version::HTTP_2,
    };
    if pool.config.protocol == UpstreamProtocol::Http2 {
        req.headers_mut().remove(http::header::HOST);
    }
    Some(req)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
