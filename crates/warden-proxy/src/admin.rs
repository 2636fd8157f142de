//! The admin listener (loopback by default): `/healthz` (the process serves),
//! `/readyz` (config loaded and not draining), `/metrics` (Prometheus text) —
//! these carry no secrets and are unauthenticated — and `/blocks`, the
//! dynamic blocks (list, add, lift), which needs `Authorization: Bearer` with
//! the token in `admin.api_token_file` and is off without one.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use warden_core::ProblemKind;

use crate::body::{ProxyBody, full};
use crate::respond;
use crate::state::Shared;

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(full(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    respond::security_headers(r.headers_mut());
    r
}

/// Largest `/blocks` request body.
const MAX_ADMIN_BODY: usize = 16 * 1024;

/// Answers one admin request.
pub async fn answer(req: Request<Incoming>, shared: &Shared) -> Response<ProxyBody> {
    if req.uri().path() == "/blocks" {
        return blocks(req, shared).await;
    }
    if req.method() != Method::GET {
        let mut r = respond::problem(ProblemKind::MethodNotAllowed, None, None, "-");
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET"));
        return r;
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "application/json", r#"{"status":"ok"}"#.into()),
        "/readyz" if shared.is_draining() => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            r#"{"status":"draining"}"#.into(),
        ),
        "/readyz" if !shared.runtime().snapshot.is_ready() => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "application/json",
            r#"{"status":"starting","reason":"waiting for policy keys (JWKS)"}"#.into(),
        ),
        "/readyz" => {
            let generation = shared.runtime().generation;
            text(
                StatusCode::OK,
                "application/json",
                format!(r#"{{"status":"ready","config_generation":{generation}}}"#),
            )
        }
        "/metrics" => text(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            shared.metrics.render(),
        ),
        _ => respond::problem(ProblemKind::RouteNotFound, None, None, "-"),
    }
}

fn refused(kind: ProblemKind, detail: &str) -> Response<ProxyBody> {
    respond::problem(kind, None, Some(detail), "-")
}

/// SHA-256 of both sides, compared without an early exit: neither the
/// token's length nor a matching prefix shows in the timing.
fn token_matches(given: &str, expected: &str) -> bool {
    use aws_lc_rs::digest::{SHA256, digest};
    let (a, b) = (digest(&SHA256, given.as_bytes()), digest(&SHA256, expected.as_bytes()));
    a.as_ref().iter().zip(b.as_ref()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The caller holds the admin token (`None`), or the refusal to send.
fn authorize(req: &Request<Incoming>, shared: &Shared) -> Option<Response<ProxyBody>> {
    let rt = shared.runtime();
    let Some(file) = rt.snapshot.config.admin.api_token_file.as_deref() else {
        return Some(refused(
            ProblemKind::Forbidden,
            "the admin API is off: set admin.api_token_file",
        ));
    };
    let expected = match warden_config::schema::read_admin_token(file) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "admin API token unreadable; refusing admin calls");
            return Some(refused(ProblemKind::ServiceUnavailable, "admin API token unavailable"));
        }
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if token_matches(given, &expected) {
        return None;
    }
    let mut r = refused(ProblemKind::Unauthorized, "admin token missing or wrong");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"warden-admin\""),
    );
    Some(r)
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<ProxyBody> {
    text(status, "application/json", v.to_string())
}

fn block_error(e: &crate::blocks::BlockError) -> Response<ProxyBody> {
    match e {
        crate::blocks::BlockError::Invalid(m) => refused(ProblemKind::BadRequest, m),
        crate::blocks::BlockError::Unavailable(m) => {
            tracing::warn!(error = %m, "admin block change failed");
            refused(
                ProblemKind::ServiceUnavailable,
                "shared state unavailable; nothing changed",
            )
        }
    }
}

/// The body of `POST /blocks`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBlock {
    target: String,
    ttl_secs: u64,
    #[serde(default)]
    reason: String,
}

/// `GET /blocks`, `POST /blocks` (`{"target", "ttl_secs", "reason"}`),
/// `DELETE /blocks?target=…`.
async fn blocks(req: Request<Incoming>, shared: &Shared) -> Response<ProxyBody> {
    if let Some(refusal) = authorize(&req, shared) {
        return refusal;
    }
    let list = &shared.blocks;
    match *req.method() {
        Method::GET => match list.list().await {
            Ok(all) => json(
                StatusCode::OK,
                &serde_json::json!({ "blocks": all.iter().map(crate::blocks::to_json).collect::<Vec<_>>() }),
            ),
            Err(e) => block_error(&e),
        },
        Method::POST => {
            let limited = http_body_util::Limited::new(req.into_body(), MAX_ADMIN_BODY);
            let Ok(body) = limited.collect().await.map(http_body_util::Collected::to_bytes) else {
                return refused(ProblemKind::PayloadTooLarge, "body over 16 KiB or broken");
            };
            let new: NewBlock = match serde_json::from_slice(&body) {
                Ok(n) => n,
                Err(e) => return refused(ProblemKind::BadRequest, &format!("body: {e}")),
            };
            match list.add(&new.target, new.ttl_secs, &new.reason, "admin").await {
                Ok(b) => json(StatusCode::CREATED, &crate::blocks::to_json(&b)),
                Err(e) => block_error(&e),
            }
        }
        Method::DELETE => {
            let target = req
                .uri()
                .query()
                .and_then(|q| url_param(q, "target"))
                .unwrap_or_default();
            match list.remove(&target).await {
                Ok(true) => text(StatusCode::NO_CONTENT, "application/json", String::new()),
                Ok(false) => refused(ProblemKind::RouteNotFound, "no such block"),
                Err(e) => block_error(&e),
            }
        }
        _ => {
            let mut r = respond::problem(ProblemKind::MethodNotAllowed, None, None, "-");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            r
        }
    }
}

/// The percent-decoded value of `name` in a query string.
fn url_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| warden_policies::query::percent_decode(v)).flatten()
    })
}

/// Serves the admin listener until `shutdown` flips.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r { Ok((s, _)) => s, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let shared = Arc::clone(&shared);
        let builder = builder.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, std::convert::Infallible>(answer(req, &shared).await) }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
