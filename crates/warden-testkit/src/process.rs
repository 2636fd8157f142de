//! Gateways as separate `warden run` processes (cluster tests), and a TCP
//! proxy that can be cut to simulate a backend outage.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released).
pub async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Waits until the admin listener on `admin` says ready; panics with the log.
pub async fn wait_ready(admin: u16, log: &Path) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", admin)).await.is_ok()
            && crate::get(&format!("http://127.0.0.1:{admin}/readyz")).await.status == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "warden never became ready: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Starts `bin run --config config` with its log in `log`, and waits for
/// readiness on `admin`.
pub async fn run_gateway(bin: &str, config: &Path, admin: u16, log: &Path) -> Proc {
    let child = Command::new(bin)
        .args(["run", "--watch-secs", "0", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let p = Proc(child);
    wait_ready(admin, log).await;
    p
}

/// The test Redis (`WARDEN_TEST_REDIS_URL`, default local).
pub fn redis_url() -> String {
    std::env::var("WARDEN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

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
    pub async fn start(target: &str) -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
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
                conns2.lock().unwrap().push(h);
            }
        });
        Self { addr, up, conns }
    }

    /// Cuts (`false`) or restores (`true`) the proxy.
    pub fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for h in self.conns.lock().unwrap().drain(..) {
                h.abort();
            }
        }
    }
}
