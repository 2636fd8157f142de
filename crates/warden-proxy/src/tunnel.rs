//! Byte tunnels for upgraded connections (WebSocket): both directions copied
//! until either side closes or nothing moves for the idle period.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Response;
use http::header;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warden_core::ProblemKind;

use crate::body::ProxyBody;
use crate::handler::ConnInfo;
use crate::respond;
use crate::state::Shared;

/// Copies `a` ⇄ `b` until one side ends, fails, `idle` passes with no bytes
/// either way, or `allowed` turns false (checked about once a second: a
/// dynamic block cuts a tunnel that was opened before it).
pub async fn join<A, B>(a: A, b: B, idle: Duration, allowed: impl Fn() -> bool)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let moved = Arc::new(AtomicU64::new(0));
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let copy = async { tokio::join!(pump(ar, bw, &moved), pump(br, aw, &moved)) };
    let watchdog = async {
        let tick = idle.min(Duration::from_secs(1));
        let mut before = moved.load(Ordering::Relaxed);
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(tick).await;
            if !allowed() {
                tracing::info!("upgrade tunnel closed: the client is blocked");
                return;
            }
            let now = moved.load(Ordering::Relaxed);
            if now == before {
                quiet += tick;
                if quiet >= idle {
                    tracing::debug!("upgrade tunnel idle; closed");
                    return;
                }
            } else {
                before = now;
                quiet = Duration::ZERO;
            }
        }
    };
    tokio::select! {
        _ = copy => {}
        () = watchdog => {}
    }
}

async fn pump<R, W>(mut from: R, mut to: W, moved: &AtomicU64)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                moved.fetch_add(n as u64, Ordering::Relaxed);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Who is on the client side of a tunnel, to cut it if they get blocked.
pub(crate) struct BlockWatch {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ip: std::net::IpAddr,
    pub(crate) consumer: Option<Arc<str>>,
}

impl BlockWatch {
    fn allowed(&self) -> bool {
        let blocks = &self.shared.blocks;
        blocks.address(self.ip).is_none() && self.consumer.as_deref().is_none_or(|c| blocks.consumer(c).is_none())
    }
}

/// Joins an accepted WebSocket upgrade. The tunnel keeps the client
/// connection's `max_connections` slot and closes after `idle` with no bytes
/// in either direction. A 101 that is not a WebSocket acceptance is refused.
pub(crate) fn accept(
    response: Response<ProxyBody>,
    upstream: Option<crate::upstream::Upgraded>,
    client: Option<hyper::upgrade::OnUpgrade>,
    conn: &ConnInfo,
    idle: Duration,
    watch: BlockWatch,
    request_id: &str,
) -> Response<ProxyBody> {
    let accepted = response
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let (Some(client), Some(upstream)) = (client.filter(|_| accepted), upstream) else {
        return respond::problem(ProblemKind::BadGateway, None, None, request_id);
    };
    let slot = Arc::clone(&conn.slot);
    tokio::spawn(async move {
        let _slot = slot;
        match client.await {
            Ok(c) => join(TokioIo::new(c), upstream, idle, || watch.allowed()).await,
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    let (mut parts, _) = response.into_parts();
    respond::strip_fingerprints(&mut parts.headers);
    Response::from_parts(parts, crate::body::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_flow_both_ways_and_an_idle_tunnel_closes() {
        let (client, gw_side) = tokio::io::duplex(1024);
        let (gw_up, mut upstream) = tokio::io::duplex(1024);
        let task = tokio::spawn(join(gw_side, gw_up, Duration::from_millis(200), || true));
        let (mut cr, mut cw) = tokio::io::split(client);
        cw.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        upstream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        upstream.write_all(b"world").await.unwrap();
        cr.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"world");
        // Nothing moves: the tunnel ends by itself and the client sees EOF.
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), cr.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn a_tunnel_closes_once_it_is_no_longer_allowed() {
        let (client, gw_side) = tokio::io::duplex(1024);
        let (gw_up, _upstream) = tokio::io::duplex(1024);
        let allowed = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = Arc::clone(&allowed);
        let task = tokio::spawn(join(gw_side, gw_up, Duration::from_secs(3600), move || {
            flag.load(Ordering::Relaxed)
        }));
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(!task.is_finished(), "an allowed, idle-but-young tunnel stays open");
        allowed.store(false, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        let (mut cr, _cw) = tokio::io::split(client);
        let mut rest = Vec::new();
        assert_eq!(cr.read_to_end(&mut rest).await.unwrap(), 0);
    }
}
