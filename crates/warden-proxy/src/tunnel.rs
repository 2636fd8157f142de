//! Byte tunnels for upgraded connections (WebSocket): both directions copied
//! until either side closes or nothing moves for the idle period.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Copies `a` ⇄ `b` until one side ends, fails, or `idle` passes with no bytes
/// either way.
pub async fn join<A, B>(a: A, b: B, idle: Duration)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let moved = Arc::new(AtomicU64::new(0));
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let copy = async { tokio::join!(pump(ar, bw, &moved), pump(br, aw, &moved)) };
    let watchdog = async {
        loop {
            let before = moved.load(Ordering::Relaxed);
            tokio::time::sleep(idle).await;
            if moved.load(Ordering::Relaxed) == before {
                return;
            }
        }
    };
    tokio::select! {
        _ = copy => {}
        () = watchdog => tracing::debug!("upgrade tunnel idle; closed"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bytes_flow_both_ways_and_an_idle_tunnel_closes() {
        let (client, gw_side) = tokio::io::duplex(1024);
        let (gw_up, mut upstream) = tokio::io::duplex(1024);
        let task = tokio::spawn(join(gw_side, gw_up, Duration::from_millis(200)));
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
}
