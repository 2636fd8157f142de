//! [`MockUpstream`]: a real HTTP/1.1 + h2c server that records what it receives.
//!
//! Paths: `/slow/{ms}` answers after a delay; `/status/{code}` answers that
//! status with a body full of internals (to prove the gateway hides them);
//! `/headers` echoes the request headers as JSON; `…/reply` answers with the
//! request's own body, status `x-reply-status`, media type `x-reply-type` and
//! `Content-Encoding` `x-reply-encoding`, plus a header per `x-reply-header:
//! name: value`; `/ws` accepts an Upgrade and
//! echoes bytes; `/health` is 200 or 503 per [`MockUpstream::set_healthy`];
//! anything else answers JSON naming the upstream, with `Server` and
//! `X-Powered-By` headers the gateway must strip.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// HTTP version.
    pub version: http::Version,
    /// The authority in the request target (absolute-form / `:authority`), if any.
    pub target_authority: Option<String>,
}

struct Inner {
    name: String,
    seen: Mutex<Vec<Recorded>>,
    hits: AtomicUsize,
    connections: AtomicUsize,
    healthy: AtomicBool,
}

/// A mock upstream server.
#[derive(Clone)]
pub struct MockUpstream {
    /// Bound address.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl MockUpstream {
    /// Starts on a free loopback port.
    pub async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener, None)
    }

    /// Starts on a free loopback port, speaking TLS with `config` (ALPN
    /// `h2`/`http/1.1` both served). `connections()` counts TCP accepts;
    /// `hits()` counts only requests that got through the handshake.
    pub async fn start_tls(name: &str, config: Arc<rustls::ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener, Some(tokio_rustls::TlsAcceptor::from(config)))
    }

    /// Starts on a given address (to bring a "dead" target back).
    pub async fn start_on(name: &str, addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        Self::serve(name, listener, None)
    }

    fn serve(name: &str, listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            seen: Mutex::new(Vec::new()),
            hits: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            healthy: AtomicBool::new(true),
        });
        let state = inner.clone();
        let task = tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                state.connections.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                let builder = builder.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| answer(req, state.clone()));
                    match tls {
                        None => {
                            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            inner,
            task: Arc::new(task),
        }
    }

    /// Requests received (excluding `/health` probes).
    pub fn hits(&self) -> usize {
        self.inner.hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far (health probes included).
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// Everything received (excluding `/health` probes).
    pub fn seen(&self) -> Vec<Recorded> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// Makes `/health` answer 200 (true) or 503 (false).
    pub fn set_healthy(&self, up: bool) {
        self.inner.healthy.store(up, Ordering::SeqCst);
    }

    /// Stops accepting and closes every connection.
    pub fn stop(&self) {
        self.task.abort();
    }
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("content-type", "application/json".parse().unwrap());
    h.insert("server", "secret-server/1.2.3".parse().unwrap());
    h.insert("x-powered-by", "Express".parse().unwrap());
    h.insert("x-aspnet-version", "4.0.30319".parse().unwrap());
    r
}

async fn answer(mut req: Request<Incoming>, state: Arc<Inner>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    if path == "/health" {
        let up = state.healthy.load(Ordering::SeqCst);
        let status = if up {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Ok(json(status, serde_json::json!({"up": up})));
    }
    if path == "/ws" {
        state.hits.fetch_add(1, Ordering::SeqCst);
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = upgrade.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert("upgrade", "websocket".parse().unwrap());
        r.headers_mut().insert("connection", "upgrade".parse().unwrap());
        return Ok(r);
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let uri = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    state.hits.fetch_add(1, Ordering::SeqCst);
    state.seen.lock().unwrap().push(Recorded {
        method: parts.method.to_string(),
        uri: uri.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
        version: parts.version,
        target_authority: parts.uri.authority().map(ToString::to_string),
    });
    if let Some(ms) = path.split("/slow/").nth(1).and_then(|s| s.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(code) = path.strip_prefix("/status/").and_then(|s| s.parse::<u16>().ok()) {
        let status = StatusCode::from_u16(code).unwrap();
        let mut r = Response::new(Full::new(Bytes::from_static(
            b"java.lang.NullPointerException at com.internal.Billing(Billing.java:42) db=10.0.0.5:5432",
        )));
        *r.status_mut() = status;
        r.headers_mut().insert("server", "secret-server/1.2.3".parse().unwrap());
        return Ok(r);
    }
    // An ownership service for `authz` lookups: `/owners/ID` names the owner
    // by the id's prefix (`alice-…`, `bob-…`), both for `shared-…`, none
    // (404) for `missing-…`, and fails (500) for `broken-…`.
    if let Some(id) = path.strip_prefix("/owners/") {
        return Ok(match id.split('-').next().unwrap_or("") {
            "shared" => json(StatusCode::OK, serde_json::json!({ "owners": ["alice", "bob"] })),
            "missing" => json(StatusCode::NOT_FOUND, serde_json::json!({})),
            "broken" => json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({})),
            owner => json(StatusCode::OK, serde_json::json!({ "owner": owner })),
        });
    }
    if path.ends_with("/close") {
        let mut r = json(StatusCode::OK, serde_json::json!({"closing": true}));
        r.headers_mut().insert("connection", "close".parse().unwrap());
        return Ok(r);
    }
    if path.ends_with("/reply") {
        let h = &parts.headers;
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut r = Response::new(Full::new(body.clone()));
        *r.status_mut() = get("x-reply-status")
            .and_then(|s| s.parse::<u16>().ok())
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::OK);
        let media = get("x-reply-type").unwrap_or_else(|| "application/json".into());
        r.headers_mut().insert("content-type", media.parse().unwrap());
        if let Some(enc) = get("x-reply-encoding") {
            r.headers_mut().insert("content-encoding", enc.parse().unwrap());
        }
        // `x-reply-header: name: value` (repeatable) adds a response header.
        for line in h.get_all("x-reply-header").iter().filter_map(|v| v.to_str().ok()) {
            if let Some((name, value)) = line.split_once(": ")
                && let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name.as_bytes()), value.parse())
            {
                r.headers_mut().append(n, v);
            }
        }
        return Ok(r);
    }
    if path == "/headers" {
        let map: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    serde_json::Value::String(v.to_str().unwrap_or("").to_owned()),
                )
            })
            .collect();
        return Ok(json(StatusCode::OK, serde_json::Value::Object(map)));
    }
    Ok(json(
        StatusCode::OK,
        serde_json::json!({
            "upstream": state.name,
            "method": parts.method.as_str(),
            "uri": uri,
            "version": format!("{:?}", parts.version),
            "body_len": body.len(),
        }),
    ))
}
