//! Test helpers for this crate's users: a TCP proxy to a backend (Redis)
//! that can be cut and restored, to test outages without stopping the
//! shared service other tests use.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A TCP proxy to `target` that can be cut (every connection dropped, new
/// ones refused) and restored.
pub struct Cuttable {
    /// Where clients connect.
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    /// A proxy to `target` (`host:port`).
    pub async fn start(target: &str) -> std::io::Result<Self> {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let target = target.to_owned();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = l.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(h);
            }
        });
        Ok(Self { addr, up, conns })
    }

    /// Cuts (`false`) or restores (`true`) the proxy.
    pub fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for h in self
                .conns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .drain(..)
            {
                h.abort();
            }
        }
    }
}
