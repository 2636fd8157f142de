//! Client-facing listeners: the accept loop with its connection cap, the TLS
//! handshake (rustls, ALPN `h2`/`http/1.1`), the hyper server settings
//! (HTTP/1.1, HTTP/2 via ALPN or h2c prior knowledge), strict HTTP/1 framing,
//! the per-connection idle watchdog, and draining on shutdown.

mod activity;
mod h2_flood;
mod per_ip;
pub mod strict_h1;
mod strict_io;
mod watchdog;

pub use activity::ConnActivity;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use warden_config::schema::LimitsConfig;
use warden_config::snapshot::ListenerRuntime;
use warden_tls::TlsFacts;

use crate::handler::{self, ConnInfo};
use crate::state::Shared;
use strict_h1::FramingLimits;
use strict_io::{SendNow, StrictIo};
use watchdog::{Either, Event, Gate};

/// Slack above `max_header_bytes` hyper and the framing checker allow, so the
/// handler (which answers with problem+json) is the one that usually refuses.
const HEAD_SLACK_BYTES: usize = 4096;

fn server_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    let head_cap = limits.max_header_bytes + limits.max_uri_bytes + HEAD_SLACK_BYTES;
    b.http1()
        .timer(TokioTimer::new())
        // The header read timeout is the connection watchdog's (`drive`):
        // hyper's would arm, register and drop a timer for every request.
        .header_read_timeout(None)
        .max_headers(limits.max_headers.saturating_mul(2).max(limits.max_headers + 16))
        .max_buf_size(head_cap.max(8192) + 8192)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams)
        // Rapid reset (CVE-2023-44487): streams opened and reset before an
        // answer count; past the cap the connection is closed.
        .max_pending_accept_reset_streams(limits.max_h2_pending_resets)
        .max_local_error_reset_streams(limits.max_h2_pending_resets.saturating_mul(5))
        .max_header_list_size(u32::try_from(head_cap).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(limits.idle_timeout_secs.max(1))))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Per-listener settings every connection needs.
struct ConnSettings {
    builder: auto::Builder<TokioExecutor>,
    framing: FramingLimits,
    h2_control_frames: u32,
    idle: Duration,
    /// `header_read_timeout_ms`: the TLS handshake's bound, and how long an
    /// HTTP/1 connection may wait for a complete request head.
    head_timeout: Duration,
}

/// Runs one listener until `shutdown` flips, then drains its connections for at
/// most `drain_timeout_secs`. Accepted connections are handed round-robin to
/// the `workers` runtimes (or served here when there are none). Each
/// connection takes the listener's settings (TLS config included) from the
/// snapshot current when it is accepted.
pub async fn serve(
    listener: TcpListener,
    name: Arc<str>,
    shared: Arc<Shared>,
    workers: Arc<Vec<Handle>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = shared.runtime().snapshot.limits.clone();
    let Some(initial) = shared.runtime().snapshot.listener(&name).cloned() else {
        tracing::error!(listener = %name, "listener missing from the config; not serving");
        return;
    };
    let settings = Arc::new(ConnSettings {
        builder: server_builder(&limits),
        framing: FramingLimits {
            max_head_bytes: limits.max_header_bytes + limits.max_uri_bytes + HEAD_SLACK_BYTES,
        },
        h2_control_frames: limits.max_h2_control_frames_per_sec,
        idle: Duration::from_secs(limits.idle_timeout_secs),
        head_timeout: Duration::from_millis(limits.header_read_timeout_ms),
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = per_ip::PerIp::new(limits.max_connections_per_ip);
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
        // Trusted proxies (load balancers) carry many clients: not capped.
        let place = if shared.runtime().snapshot.is_trusted_proxy(peer.ip()) {
            None
        } else {
            match per_ip.take(peer.ip()) {
                Some(g) => Some(g),
                None => {
                    tracing::debug!(peer = %peer.ip(), "too many connections from one address; closed");
                    drop(stream);
                    continue;
                }
            }
        };
        let permit = Slot {
            _listener: permit,
            _per_ip: place,
        };
        let _ = stream.set_nodelay(true);
        // A reload may change TLS settings and certificates, never whether
        // the listener speaks TLS (that needs a restart).
        let current = shared
            .runtime()
            .snapshot
            .listener(&name)
            .filter(|l| l.tls.is_some() == initial.tls.is_some())
            .cloned()
            .unwrap_or_else(|| Arc::clone(&initial));
        let (settings, shared, stop) = (Arc::clone(&settings), Arc::clone(&shared), shutdown.clone());
        if workers.is_empty() {
            let accepted = Accepted::Here(stream);
            conns.spawn(serve_conn(accepted, peer, current, settings, shared, stop, permit));
        } else {
            // Deregister here; the worker registers the socket with its own reactor.
            let Ok(std_stream) = stream.into_std() else { continue };
            let handle = &workers[next % workers.len()];
            next = next.wrapping_add(1);
            let accepted = Accepted::Moved(std_stream);
            conns.spawn_on(
                serve_conn(accepted, peer, current, settings, shared, stop, permit),
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

/// A connection's places: in the listener's cap and its address's cap
/// (held while the connection, or a tunnel made from it, lives).
#[derive(Debug)]
pub struct Slot {
    _listener: OwnedSemaphorePermit,
    _per_ip: Option<per_ip::PerIpGuard>,
}

/// An accepted connection, still on the accepting runtime or moved off it.
enum Accepted {
    Here(TcpStream),
    Moved(std::net::TcpStream),
}

/// Serves one client connection until it closes, idles out, or shutdown
/// asks it to finish its in-flight requests and close. On a TLS listener the
/// handshake comes first, bounded by `header_read_timeout_ms`.
async fn serve_conn(
    stream: Accepted,
    peer: SocketAddr,
    listener: Arc<ListenerRuntime>,
    settings: Arc<ConnSettings>,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    permit: Slot,
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
    let Some(tls) = listener.tls.as_ref() else {
        let info = conn_info(peer, listener, None, permit);
        let activity = Arc::clone(&info.activity);
        return drive(
            StrictIo::new(stream, settings.framing, h2_budget(&settings, &shared, peer), activity),
            &settings.builder,
            info,
            &settings,
            shared,
            stop,
        )
        .await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    let timeout = settings.head_timeout;
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            shared.metrics.tls_handshake_failed();
            tracing::debug!(error = %e, %peer, listener = %listener.name, "TLS handshake failed");
            return;
        }
        Err(_) => {
            shared.metrics.tls_handshake_failed();
            tracing::debug!(%peer, listener = %listener.name, "TLS handshake timed out");
            return;
        }
    };
    let facts = TlsFacts::of(stream.get_ref().1);
    shared.metrics.tls_handshake(&facts);
    // Speak only the protocol ALPN chose (HTTP/1.1 when the client sent no ALPN).
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let builder = if h2 {
        settings.builder.clone().http2_only()
    } else {
        settings.builder.clone().http1_only()
    };
    let info = conn_info(peer, listener, Some(facts), permit);
    let activity = Arc::clone(&info.activity);
    drive(
        StrictIo::new(stream, settings.framing, h2_budget(&settings, &shared, peer), activity),
        &builder,
        info,
        &settings,
        shared,
        stop,
    )
    .await;
}

/// The HTTP/2 control-frame budget of a connection: ten times the limit for a
/// trusted proxy, which multiplexes many clients' requests (and their stream
/// cancellations) over one connection.
fn h2_budget(settings: &ConnSettings, shared: &Shared, peer: SocketAddr) -> u32 {
    if shared.runtime().snapshot.is_trusted_proxy(peer.ip()) {
        settings.h2_control_frames.saturating_mul(10)
    } else {
        settings.h2_control_frames
    }
}

fn conn_info(peer: SocketAddr, listener: Arc<ListenerRuntime>, tls: Option<TlsFacts>, permit: Slot) -> Arc<ConnInfo> {
    let hsts = listener
        .tls
        .as_ref()
        .and_then(|t| t.hsts())
        .and_then(|v| HeaderValue::from_str(v).ok());
    Arc::new(ConnInfo {
        peer,
        proto: if tls.is_some() { "https" } else { "http" },
        activity: Arc::new(ConnActivity::new()),
        peer_text: crate::forwarded::PeerText::new(peer.ip()),
        slot: Arc::new(permit),
        tls,
        hsts,
        listener,
        memo: Arc::default(),
    })
}

/// Runs hyper on an accepted (and, for TLS, handshaken) stream.
async fn drive<S>(
    io: StrictIo<S>,
    builder: &auto::Builder<TokioExecutor>,
    info: Arc<ConnInfo>,
    settings: &ConnSettings,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + SendNow + Unpin + Send + 'static,
{
    let activity = Arc::clone(&info.activity);
    let peer = info.peer;
    let service = service_fn(move |req| handler::handle(req, Arc::clone(&info), Arc::clone(&shared)));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    // The header read timeout is HTTP/1's (slowloris guard); an HTTP/2
    // connection is left to the idle timeout and hyper's keep-alive pings.
    let mut head = Some(settings.head_timeout);
    let mut closing = false;
    let gate = Gate::new();
    loop {
        let dog = watchdog::run(&activity, head, settings.idle, (!closing).then_some(&mut stop));
        let mut dog = std::pin::pin!(dog);
        gate.rearm();
        match std::future::poll_fn(|cx| gate.poll(cx, conn.as_mut(), dog.as_mut())).await {
            Either::Conn(r) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, %peer, "connection ended with error");
                }
                return;
            }
            Either::Watch(Event::HeadTimeout) => {
                if !activity.is_h2() {
                    tracing::debug!(%peer, "no complete request head within header_read_timeout_ms; connection closed");
                    return;
                }
                head = None;
            }
            Either::Watch(Event::Idle | Event::Stop) => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
