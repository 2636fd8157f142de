//! Sending one request upstream: pick a target, apply the first-byte and total
//! deadlines, retry on another target only when the connection could not be
//! made and the request is idempotent with an empty body, and feed the outcome
//! to passive health.

use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::Incoming;
use tokio::time::Instant;
use warden_config::schema::UpstreamProtocol;

use hyper::client::conn::http1::SendRequest;

use super::h1pool::{ConnectError, connect};
use super::{InflightGuard, ServicePool};
use crate::body::{BodyFault, BodyStats, ProxyBody, empty};

/// What to send, apart from the body.
#[derive(Debug)]
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// Path and query, already normalised.
    pub path_and_query: PathAndQuery,
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
    let body_empty = out.body_empty;
    let retryable = idempotent(&out.method) && body_empty;
    let attempts = if retryable { pool.config.retries.attempts } else { 0 };
    let first_byte = Duration::from_millis(pool.config.timeouts.first_byte_ms);
    let Outgoing {
        method,
        path_and_query,
        headers,
        ..
    } = out;
    let mut headers = Some(headers);
    let mut body = Some(body);
    // Targets already tried; only kept when a retry is possible.
    let mut tried = Vec::new();
    let mut last = SendError::NoHealthyTarget;
    for attempt in 0..=attempts {
        let Some(guard) = pool.pick(&tried) else { break };
        if attempts > 0 {
            tried.push(guard.index());
        }
        let authority = guard.target().authority.clone();
        let wait = first_byte.min(deadline.saturating_duration_since(Instant::now()));
        let mut guard = guard;
        let outcome = match pool.config.protocol {
            // HTTP/1.1: get a connection first, build the request after. A
            // connect failure leaves the headers untouched for the next
            // target, so they are never copied.
            UpstreamProtocol::Http1 => {
                let exchange = async {
                    let (tx, reused) = acquire_h1(pool, &guard).await?;
                    let h = headers.take().unwrap_or_default();
                    let b = if retryable {
                        empty()
                    } else {
                        body.take().unwrap_or_else(empty)
                    };
                    let req = build(pool, method.clone(), authority.clone(), path_and_query.clone(), h, b);
                    exchange_h1(pool, &guard, tx, reused, req).await
                };
                match tokio::time::timeout(wait, exchange).await {
                    Ok(Ok((response, tx))) => {
                        guard.lease = Some(tx);
                        Ok(Ok(response))
                    }
                    Ok(Err(e)) => Ok(Err(e)),
                    Err(elapsed) => Err(elapsed),
                }
            }
            UpstreamProtocol::Http2 => {
                // The last attempt takes the headers; earlier ones send a copy.
                let h = if attempt < attempts {
                    headers.clone()
                } else {
                    headers.take()
                }
                .unwrap_or_default();
                let b = if retryable {
                    empty()
                } else {
                    body.take().unwrap_or_else(empty)
                };
                let req = build(pool, method.clone(), authority.clone(), path_and_query.clone(), h, b);
                match tokio::time::timeout(wait, pool.client().request(req)).await {
                    Ok(Ok(response)) => Ok(Ok(response)),
                    Ok(Err(e)) => {
                        let message = error_chain(&e);
                        if e.is_connect() && pool.tls.is_some() {
                            tracing::warn!(
                                event = "upstream_tls_failed",
                                service = %pool.name,
                                target = %authority,
                                error = %message,
                                "upstream connect or TLS handshake failed (verification or pin mismatch); nothing was sent"
                            );
                        }
                        Ok(Err(Failure {
                            connect: e.is_connect(),
                            message,
                        }))
                    }
                    Err(elapsed) => Err(elapsed),
                }
            }
        };
        match outcome {
            Ok(Ok(response)) => {
                if response.status().is_server_error() {
                    pool.record_failure(guard.index());
                } else {
                    pool.record_success(guard.index());
                }
                return Ok(Sent { response, guard });
            }
            Ok(Err(failure)) => {
                if let Some(fault) = stats.fault() {
                    return Err(SendError::Body(fault));
                }
                pool.record_failure(guard.index());
                let target = authority.to_string();
                if failure.connect {
                    last = SendError::Connect {
                        target,
                        message: failure.message,
                    };
                    continue;
                }
                return Err(SendError::Exchange {
                    target,
                    message: failure.message,
                });
            }
            Err(_) => {
                if let Some(fault) = stats.fault() {
                    return Err(SendError::Body(fault));
                }
                // A client still trickling its body is not the target's fault:
                // only a timeout after the whole request was sent counts.
                if body_empty || stats.ended() {
                    pool.record_failure(guard.index());
                }
                return Err(SendError::Timeout {
                    target: authority.to_string(),
                });
            }
        }
    }
    Err(last)
}

/// Why one attempt failed.
struct Failure {
    /// No connection could be made (safe to retry elsewhere).
    connect: bool,
    /// Cause, for the log.
    message: String,
}

/// A ready HTTP/1.1 connection to the guard's target from this worker's
/// pool, or a new one; the flag says whether it was reused.
async fn acquire_h1(pool: &ServicePool, guard: &InflightGuard) -> Result<(SendRequest<ProxyBody>, bool), Failure> {
    if let Some(mut tx) = pool.h1_pool(guard.index()).take()
        && tx.ready().await.is_ok()
    {
        return Ok((tx, true));
    }
    let mut tx = connect_h1(pool, guard).await?;
    tx.ready().await.map_err(|e| Failure {
        connect: true,
        message: error_chain(&e),
    })?;
    Ok((tx, false))
}

async fn connect_h1(pool: &ServicePool, guard: &InflightGuard) -> Result<SendRequest<ProxyBody>, Failure> {
    let timeout = Duration::from_millis(pool.config.timeouts.connect_ms);
    connect(&guard.target().authority, timeout, pool.tls.as_ref())
        .await
        .map_err(|e| match e {
            ConnectError::Connect(message) => Failure { connect: true, message },
            ConnectError::Tls(message) => {
                tracing::warn!(
                    event = "upstream_tls_failed",
                    service = %pool.name,
                    target = %guard.target().authority,
                    error = %message,
                    "upstream TLS handshake failed (verification or pin mismatch); nothing was sent"
                );
                Failure { connect: true, message }
            }
        })
}

/// Sends over `tx`. A reused connection that turns out dead before the
/// request was written is replaced by a fresh one, once; the request is never
/// sent twice.
async fn exchange_h1(
    pool: &ServicePool,
    guard: &InflightGuard,
    mut tx: SendRequest<ProxyBody>,
    reused: bool,
    req: Request<ProxyBody>,
) -> Result<(Response<Incoming>, SendRequest<ProxyBody>), Failure> {
    match tx.try_send_request(req).await {
        Ok(response) => Ok((response, tx)),
        Err(mut e) => match e.take_message() {
            Some(unsent) if reused => {
                // The request (headers, body) is consumed from here on: a
                // failure now is final, never retried on another target.
                let final_failure = |f: Failure| Failure {
                    connect: false,
                    message: f.message,
                };
                let mut fresh = connect_h1(pool, guard).await.map_err(final_failure)?;
                fresh.ready().await.map_err(|e| Failure {
                    connect: false,
                    message: error_chain(&e),
                })?;
                match fresh.try_send_request(unsent).await {
                    Ok(response) => Ok((response, fresh)),
                    Err(e) => Err(Failure {
                        connect: false,
                        message: error_chain(e.error()),
                    }),
                }
            }
            _ => Err(Failure {
                connect: false,
                message: error_chain(e.error()),
            }),
        },
    }
}

fn build(
    pool: &ServicePool,
    method: Method,
    authority: Authority,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
    body: ProxyBody,
) -> Request<ProxyBody> {
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(pool.scheme());
    uri.authority = Some(authority);
    uri.path_and_query = Some(path_and_query);
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = match pool.config.protocol {
        // hyper's connection-level client writes the URI as given: HTTP/1.1
        // upstreams get origin-form (`/path?q`) and the client's Host header,
        // never `http://<internal target>/path`.
        UpstreamProtocol::Http1 => Uri::from(
            uri.path_and_query
                .take()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        ),
        // Scheme, authority and path are all set, so these parts form a URI.
        UpstreamProtocol::Http2 => Uri::from_parts(uri).unwrap_or_default(),
    };
    *req.headers_mut() = headers;
    *req.version_mut() = match pool.config.protocol {
        UpstreamProtocol::Http1 => Version::HTTP_11,
        UpstreamProtocol::Http2 => Version::HTTP_2,
    };
    if pool.config.protocol == UpstreamProtocol::Http2 {
        req.headers_mut().remove(http::header::HOST);
    }
    req
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
