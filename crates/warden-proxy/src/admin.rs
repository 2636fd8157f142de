//! The admin listener (loopback by default): `/healthz` (the process serves),
//! `/readyz` (config loaded and not draining), `/metrics` (Prometheus text).
//!
//! These three endpoints carry no secrets and are unauthenticated; the admin API
//! that changes state will require authentication and lives beside them.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
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

/// Answers one admin request.
pub fn answer(req: &Request<Incoming>, shared: &Shared) -> Response<ProxyBody> {
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
                let resp = answer(&req, &shared);
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
