//! Warden's own HTTP/1.1 upstream connection pool, one per worker and target.
//!
//! hyper-util's pooled client keeps one pool behind a lock, boxes its checkout
//! and response futures, and showed as the largest userland block in the proxy's
//! profile. A worker never shares its connections, so its pool is a plain
//! LIFO list (the mutex is rarely contended: only its own thread takes and
//! returns connections; the reaper drops expired ones now and then).
//! A connection goes back to the list only after its response body was read to
//! the end with nothing left over; a stale one (closed by the upstream while
//! idle) is detected before use by a non-blocking peek, or — if it fails with
//! the request still unsent — replaced by a fresh connection once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::uri::Authority;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::UpstreamLink;
use super::h1::{Conn, Stream};

/// An idle connection and when it went idle.
struct Idle {
    conn: Conn,
    since: Instant,
}

/// Idle HTTP/1.1 connections to one target, for one worker.
pub(crate) struct H1Pool {
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl std::fmt::Debug for H1Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.idle.lock().map_or(0, |v| v.len());
        f.debug_struct("H1Pool").field("idle", &n).finish()
    }
}

/// Why a new connection could not be made.
#[derive(Debug)]
pub(crate) enum ConnectError {
    /// TCP connect failed or timed out, or the name did not resolve.
    Connect(String),
    /// The TLS handshake failed: verification, pin mismatch, or protocol.
    Tls(String),
}

impl H1Pool {
    pub(crate) fn new(max_idle: usize, idle_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// The most recently used live idle connection, if any. Expired and closed
    /// ones are dropped on the way.
    pub(crate) fn take(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        let now = Instant::now();
        while let Some(mut entry) = idle.pop() {
            if now.duration_since(entry.since) > self.idle_timeout || !entry.conn.is_idle_alive() {
                continue;
            }
            return Some(entry.conn);
        }
        None
    }

    /// Returns a connection whose last response was read to the end.
    pub(crate) fn put(&self, conn: Conn) {
        if let Ok(mut idle) = self.idle.lock() {
            // The list is LIFO, so the oldest entries sit at the front: drop
            // expired ones from there (rarely any) so steady traffic cannot
            // keep connections past their idle timeout.
            let now = Instant::now();
            let expired = idle
                .iter()
                .take_while(|e| now.duration_since(e.since) > self.idle_timeout)
                .count();
            if expired > 0 {
                idle.drain(..expired);
            }
            if idle.len() < self.max_idle {
                idle.push(Idle { conn, since: now });
            }
        }
    }

    /// Drops idle connections past their idle timeout, wherever they sit in
    /// the list (the periodic reaper, which runs on the control thread;
    /// whether the upstream closed one is checked when it is taken).
    pub(crate) fn clear_expired(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            let timeout = self.idle_timeout;
            idle.retain(|e| e.since.elapsed() <= timeout);
        }
    }
}

/// Opens a new HTTP/1.1 connection to `authority` (with TLS when `tls` is
/// set; the handshake shares the connect timeout).
pub(crate) async fn connect(
    authority: &Authority,
    timeout: Duration,
    tls: Option<&UpstreamLink>,
) -> Result<Conn, ConnectError> {
    let started = tokio::time::Instant::now();
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(authority.as_str())).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(ConnectError::Connect(e.to_string())),
        Err(_) => return Err(ConnectError::Connect(format!("connect timed out after {timeout:?}"))),
    };
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Conn::new(Stream::Tcp(stream)));
    };
    let name = match &tls.server_name {
        Some(n) => n.clone(),
        None => ServerName::try_from(
            authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        )
        .map_err(|e| ConnectError::Tls(format!("target host is not a TLS server name: {e}")))?,
    };
    let left = timeout.saturating_sub(started.elapsed());
    let connecting = tokio_rustls::TlsConnector::from(Arc::clone(&tls.config)).connect(name, stream);
    match tokio::time::timeout(left, connecting).await {
        Ok(Ok(s)) => Ok(Conn::new(Stream::Tls(Box::new(s)))),
        Ok(Err(e)) => Err(ConnectError::Tls(e.to_string())),
        Err(_) => Err(ConnectError::Tls(format!("TLS handshake timed out after {timeout:?}"))),
    }
}
