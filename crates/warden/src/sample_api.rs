//! A small bundled sample API so the quickstart needs nothing else installed:
//! `GET /health`, `GET /users`, `GET /users/{id}`, `POST /echo`, and
//! `GET /admin/stats`. It is a demo upstream, not part of the gateway.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

const USERS: [(&str, &str); 3] = [("1", "ada"), ("2", "grace"), ("3", "linus")];

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let resp = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/health") => json(StatusCode::OK, r#"{"status":"ok"}"#.into()),
        (Method::GET, "/users") => {
            let list: Vec<_> = USERS
                .iter()
                .map(|(id, name)| serde_json::json!({"id": id, "name": name}))
                .collect();
            json(StatusCode::OK, serde_json::Value::Array(list).to_string())
        }
        (Method::GET, p) if p.starts_with("/users/") => {
            let id = &p["/users/".len()..];
            match USERS.iter().find(|(uid, _)| *uid == id) {
                Some((id, name)) => json(StatusCode::OK, serde_json::json!({"id": id, "name": name}).to_string()),
                None => json(StatusCode::NOT_FOUND, r#"{"error":"no such user"}"#.into()),
            }
        }
        (Method::POST, "/echo") => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let mut r = Response::new(Full::new(body));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/octet-stream"),
            );
            r
        }
        (Method::GET, "/admin/stats") => json(StatusCode::OK, r#"{"users":3}"#.into()),
        // Who the gateway said is calling (the api_key policy's consumer header).
        (Method::GET, "/whoami") => {
            let who = req
                .headers()
                .get("x-warden-consumer")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            json(StatusCode::OK, serde_json::json!({ "consumer": who }).to_string())
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.into()),
    };
    Ok(resp)
}

/// Binds the sample API; serves until the process ends.
pub async fn serve(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        let builder = auto::Builder::new(TokioExecutor::new());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = builder.serve_connection(TokioIo::new(stream), service_fn(answer)).await;
            });
        }
    });
    Ok(local)
}
