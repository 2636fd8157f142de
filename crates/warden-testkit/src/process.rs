//! Gateways as separate `warden run` processes (cluster tests), and a TCP
//! proxy that can be cut to simulate a backend outage.

use std::path::Path;
use std::process::{Child, Command, Stdio};
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

pub use warden_shared::testing::{Cuttable, TestCluster};
