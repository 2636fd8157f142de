//! Test helpers for this crate's users: a TCP proxy to a backend (Redis)
//! that can be cut and restored, to test outages without stopping the
//! shared service other tests use, and a throw-away Redis Cluster.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers: a test environment that cannot be set up fails the test loudly"
)]

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

/// A throw-away Redis Cluster of three masters on loopback (real
/// `redis-server` processes, killed on drop), for cluster tests.
pub struct TestCluster {
    /// `redis://127.0.0.1:PORT` of each node.
    pub nodes: Vec<String>,
    children: Vec<std::process::Child>,
    dir: std::path::PathBuf,
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free now, whose cluster-bus port (+10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else { continue };
        let port = addr.port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl TestCluster {
    /// Starts three `redis-server --cluster-enabled yes` nodes and joins them
    /// with `redis-cli --cluster create` (16384 slots over three masters),
    /// then waits for `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When `redis-server` or `redis-cli` is missing (`.ci/run` installs
    /// them) or the cluster does not form within 20 s.
    pub fn start() -> Self {
        use std::process::{Command, Stdio};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("warden-redis-cluster-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut me = Self {
            nodes: Vec::new(),
            children: Vec::new(),
            dir,
        };
        let mut addrs = Vec::new();
        for _ in 0..3 {
            let port = cluster_port();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                ])
                .args([
                    "--cluster-config-file",
                    &format!("nodes-{port}.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&me.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed for the cluster tests (.ci/run installs it)");
            me.children.push(child);
            addrs.push(format!("127.0.0.1:{port}"));
            me.nodes.push(format!("redis://127.0.0.1:{port}"));
        }
        let cli = |args: &[&str]| {
            Command::new("redis-cli")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("redis-cli must be installed for the cluster tests")
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        for a in &addrs {
            let port = a.rsplit(':').next().unwrap_or_default();
            while !String::from_utf8_lossy(&cli(&["-p", port, "ping"]).stdout).contains("PONG") {
                assert!(std::time::Instant::now() < deadline, "redis node {a} never answered");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        let mut create = vec!["--cluster", "create"];
        create.extend(addrs.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = cli(&create);
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for a in &addrs {
            let port = a.rsplit(':').next().unwrap_or_default();
            while !String::from_utf8_lossy(&cli(&["-p", port, "cluster", "info"]).stdout).contains("cluster_state:ok") {
                assert!(std::time::Instant::now() < deadline, "the cluster never became ok");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        me
    }

    /// The node holding `key` (`redis-cli -c` follows the redirect).
    pub fn slot_of(&self, key: &str) -> u16 {
        let port = self.nodes[0].rsplit(':').next().unwrap_or_default().to_owned();
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port, "cluster", "keyslot", key])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }
}
