//! Client-facing listeners: the accept loop with its connection cap, the hyper
//! server settings (HTTP/1.1 and h2c prior knowledge), strict HTTP/1 framing,
//! the per-connection idle watchdog, and draining on shutdown.

pub mod strict_h1;
mod strict_io;

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use warden_config::schema::LimitsConfig;

use crate::handler::{self, ConnActivity, ConnInfo};
use crate::state::Shared;
use strict_h1::FramingLimits;
pub use strict_io::refusal_bytes;

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

/// Runs one listener until `shutdown` flips, then drains its connections for at
/// most `drain_timeout_secs`.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let limits = shared.runtime().snapshot.limits.clone();
    let builder = server_builder(&limits);
    let framing = FramingLimits {
        max_head_bytes: limits.max_header_bytes + limits.max_uri_bytes + HEAD_SLACK_BYTES,
    };
    let idle = Duration::from_secs(limits.idle_timeout_secs);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
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
        let activity = Arc::new(ConnActivity::new());
        let info = Arc::new(ConnInfo {
            peer,
            proto: "http",
            activity: Arc::clone(&activity),
        });
        let io = strict_io::StrictIo::new(stream, framing, Arc::clone(&activity));
        let shared = Arc::clone(&shared);
        let builder = builder.clone();
        let mut stop = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| handler::handle(req, Arc::clone(&info), Arc::clone(&shared)));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            loop {
                let wait = idle_wait(&activity, idle);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, %peer, "connection ended with error");
                        }
                        break;
                    }
                    idle_now = wait, if !closing => {
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
        });
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

/// Sleeps until the connection may have been idle for `idle`; true when it was.
async fn idle_wait(activity: &ConnActivity, idle: Duration) -> bool {
    let remaining = match activity.idle_for() {
        Some(for_) if for_ >= idle => return true,
        Some(for_) => idle - for_,
        None => idle,
    };
    tokio::time::sleep(remaining).await;
    matches!(activity.idle_for(), Some(for_) if for_ >= idle)
}
