//! Sending one request upstream: pick a target, apply the first-byte and total
//! deadlines, retry on another target only when the connection could not be
//! made and the request is idempotent with an empty body, and feed the outcome
//! to passive health.

use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use tokio::time::Instant;
use warden_config::schema::UpstreamProtocol;

use super::h1::{self, Conn, Home, PastDeadline, ResponseHead, Upgraded, UpstreamBody};
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
    pub response: Response<ProxyBody>,
    /// Holds the target's in-flight count until the response is done.
    pub guard: InflightGuard,
    /// After a 101 from an HTTP/1.1 upstream: the connection, for the tunnel.
    pub(crate) upgraded: Option<Upgraded>,
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

/// Read-only methods: sending one twice changes nothing.
fn safe(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
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
    let no_headers = HeaderMap::new();
    let mut upgraded = None;
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
        // One clock read per attempt: the first-byte wait ends with the
        // request's total deadline at the latest.
        let wait_until = Instant::now()
            .checked_add(first_byte)
            .map_or(deadline, |t| t.min(deadline));
        let outcome = match pool.config.protocol {
            // HTTP/1.1: get a connection first, build the request after. A
            // connect failure leaves the headers untouched for the next
            // target, so they are never copied.
            UpstreamProtocol::Http1 => {
                let h = headers.as_ref().unwrap_or(&no_headers);
                let head = h1::RequestHead {
                    method: &method,
                    path_and_query: path_and_query.as_str(),
                    headers: h,
                };
                let b = if retryable {
                    empty()
                } else {
                    body.take().unwrap_or_else(empty)
                };
                let index = guard.index();
                let replayable = safe(&method) && body_empty;
                match exchange_h1(pool, &guard, &head, b, replayable, wait_until).await {
                    Ok(Ok((response, conn))) => {
                        let (response, up) = h1_response(response, conn, pool, index);
                        upgraded = up;
                        Ok(Ok(response))
                    }
                    Ok(Err(e)) => Ok(Err(e)),
                    Err(PastDeadline) => Err(PastDeadline),
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
                match tokio::time::timeout_at(wait_until, pool.client().request(req)).await {
                    Ok(Ok(response)) => Ok(Ok(response.map(|b| b.map_err(Into::into).boxed_unsync()))),
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
                    Err(_) => Err(PastDeadline),
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
                return Ok(Sent {
                    response,
                    guard,
                    upgraded,
                });
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

/// One exchange on a pooled or new HTTP/1.1 connection to the guard's target,
/// with its response head by `deadline` (connecting included).
/// A pooled connection that turns out dead before the request was written is
/// replaced by a fresh one, once; so is one the upstream closed without
/// answering, when the request is a GET, HEAD or OPTIONS without a body
/// (`replayable`: the keep-alive race, where the upstream times the idle
/// connection out just as the request goes). Anything else is never sent twice.
async fn exchange_h1(
    pool: &ServicePool,
    guard: &InflightGuard,
    head: &h1::RequestHead<'_>,
    body: ProxyBody,
    replayable: bool,
    deadline: Instant,
) -> Result<Result<(ResponseHead, Conn), Failure>, PastDeadline> {
    let (mut conn, reused) = match pool.h1_pool(guard.index()).take() {
        Some(conn) => (conn, true),
        None => match connect_by(pool, guard, deadline).await? {
            Ok(conn) => (conn, false),
            Err(f) => return Ok(Err(f)),
        },
    };
    let failed = match conn.exchange_by(head, body, deadline).await? {
        Ok(response) => return Ok(Ok((response, conn))),
        Err(f) => f,
    };
    let body = match failed.body {
        Some(body) if reused && !failed.sent => body,
        _ if reused && replayable && failed.unanswered => empty(),
        // A fresh connection that took nothing failed like a connect.
        _ => {
            return Ok(Err(Failure {
                connect: !failed.sent && !reused,
                message: failed.message,
            }));
        }
    };
    // From here a failure is final, never retried on another target.
    let final_failure = |message: String| Failure {
        connect: false,
        message,
    };
    let mut fresh = match connect_by(pool, guard, deadline).await? {
        Ok(conn) => conn,
        Err(f) => return Ok(Err(final_failure(f.message))),
    };
    Ok(match fresh.exchange_by(head, body, deadline).await? {
        Ok(response) => Ok((response, fresh)),
        Err(f) => Err(final_failure(f.message)),
    })
}

/// [`connect_h1`], given up at `deadline` (the connect timeout may be longer).
async fn connect_by(
    pool: &ServicePool,
    guard: &InflightGuard,
    deadline: Instant,
) -> Result<Result<Conn, Failure>, PastDeadline> {
    tokio::time::timeout_at(deadline, connect_h1(pool, guard))
        .await
        .map_err(|_| PastDeadline)
}

/// The client-facing response for an upstream response head: its body reads
/// from `conn`; after a 101 the connection is handed over for the tunnel.
fn h1_response(
    head: ResponseHead,
    conn: Conn,
    pool: &Arc<ServicePool>,
    target: usize,
) -> (Response<ProxyBody>, Option<Upgraded>) {
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        let parts = h1::into_parts(head);
        return (Response::from_parts(parts, empty()), Some(Upgraded::new(conn)));
    }
    let home = Home {
        pool: Arc::clone(pool),
        target,
    };
    let body = UpstreamBody::new(conn, &head, home);
    (Response::from_parts(h1::into_parts(head), body.boxed_unsync()), None)
}

async fn connect_h1(pool: &ServicePool, guard: &InflightGuard) -> Result<Conn, Failure> {
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
