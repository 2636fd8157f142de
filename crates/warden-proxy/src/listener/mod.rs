//! Client-facing listeners: the accept loop with its connection cap, the hyper
//! server settings (HTTP/1.1 and h2c prior knowledge), strict HTTP/1 framing,
//! the per-connection idle watchdog, and draining on shutdown.

mod activity;
pub mod strict_h1;
mod strict_io;

pub use activity::ConnActivity;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use warden_config::schema::LimitsConfig;

use crate::handler::{self, ConnInfo};
use crate::state::Shared;
use strict_h1::FramingLimits;

/// Slack above `max_header_bytes` hyper and the framing checker allow, so the
/// handler (which answers with problem+json) is the one that usually refuses.
const HEAD_SLACK_BYTES: usize = 4096;

fn server_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    let head_cap = limits.max_header_bytes + limits.max_uri_bytes + HEAD_SLACK_BYTES;
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_headers(limits.max_headers.saturating_mul(2).max(limits.max_headers + 16))
        .max_buf_size(head_cap.max(8192) + 8192)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams)
        .max_header_list_size(u32::try_from(head_cap).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(limits.idle_timeout_secs.max(1))))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Per-listener settings every connection needs.
struct ConnSettings {
    builder: auto::Builder<TokioExecutor>,
    framing: FramingLimits,
    idle: Duration,
}

/// Runs one listener until `shutdown` flips, then drains its connections for at
/// most `drain_timeout_secs`. Accepted connections are handed round-robin to
/// the `workers` runtimes (or served here when there are none).
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    workers: Arc<Vec<Handle>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = shared.runtime().snapshot.limits.clone();
    let settings = Arc::new(ConnSettings {
        builder: server_builder(&limits),
        framing: FramingLimits {
            max_head_bytes: limits.max_header_bytes + limits.max_uri_bytes + HEAD_SLACK_BYTES,
        },
        idle: Duration::from_secs(limits.idle_timeout_secs),
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    let mut next = 0usize;
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let (settings, shared, stop) = (Arc::clone(&settings), Arc::clone(&shared), shutdown.clone());
        if workers.is_empty() {
            conns.spawn(serve_conn(Accepted::Here(stream), peer, settings, shared, stop, permit));
        } else {
            // Deregister here; the worker registers the socket with its own reactor.
            let Ok(std_stream) = stream.into_std() else { continue };
            let handle = &workers[next % workers.len()];
            next = next.wrapping_add(1);
            conns.spawn_on(
                serve_conn(Accepted::Moved(std_stream), peer, settings, shared, stop, permit),
                handle,
            );
        }
    }
    drop(listener);
    let drain = Duration::from_secs(limits.drain_timeout_secs);
    let drained = tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            remaining = conns.len(),
            "drain timeout passed; closing remaining connections"
        );
        conns.abort_all();
    }
}

/// An accepted connection, still on the accepting runtime or moved off it.
enum Accepted {
    Here(TcpStream),
    Moved(std::net::TcpStream),
}

/// Serves one client connection until it closes, idles out, or shutdown
/// asks it to finish its in-flight requests and close.
async fn serve_conn(
    stream: Accepted,
    peer: SocketAddr,
    settings: Arc<ConnSettings>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let stream = match stream {
        Accepted::Here(s) => s,
        Accepted::Moved(s) => match TcpStream::from_std(s) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register connection on worker");
                return;
            }
        },
    };
    let activity = Arc::new(ConnActivity::new());
    let info = Arc::new(ConnInfo {
        peer,
        proto: "http",
        activity: Arc::clone(&activity),
        peer_text: crate::forwarded::PeerText::new(peer.ip()),
        slot: Arc::new(permit),
    });
    let io = strict_io::StrictIo::new(stream, settings.framing);
    let service = service_fn(move |req| handler::handle(req, Arc::clone(&info), Arc::clone(&shared)));
    let conn = settings
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, "connection ended with error");
                }
                return;
            }
            idle_now = activity.idle_period(settings.idle), if !closing => {
                if idle_now {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = stop.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
