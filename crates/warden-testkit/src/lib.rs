//! Dev-only test harness: an in-process gateway ([`TestGateway`]) and mock
//! upstreams ([`MockUpstream`]) on port 0, plus HTTP/1, HTTP/2 and raw-TCP
//! clients. Every test gets its own ports and temp files, so tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod jwt;
pub mod pki;
pub mod process;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warden_proxy::worker::Workers;
use warden_proxy::{AccessLogSink, Gateway, GatewayOptions};

pub use upstream::{MockUpstream, Recorded};

/// A gateway running in this test's runtime.
pub struct TestGateway {
    /// The gateway (None after shutdown).
    pub gateway: Option<Gateway>,
    /// First client listener.
    pub addr: SocketAddr,
    /// Admin listener.
    pub admin: SocketAddr,
    /// Config file path (for reload tests).
    pub config_path: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    workers: Option<Workers>,
}

/// A response read fully.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// Body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A fresh, empty directory of its own for this test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = temp_path(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the `warden` binary at `bin` with `args` and `--config config`;
/// returns its standard output. Panics, with its standard error, if it fails.
pub fn run_cli(bin: &str, config: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(bin)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warden {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Like [`run_cli`] for a command that must fail; returns its standard error.
pub fn run_cli_fails(bin: &str, config: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(bin)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "warden {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("warden-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}-{:016x}-{name}", std::process::id(), rand_u64()))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish()
}

impl TestGateway {
    /// Starts a gateway on `yaml`. `listeners` and `admin` are filled in (port 0)
    /// unless the YAML has them.
    pub async fn start(yaml: &str) -> Self {
        Self::start_with(yaml, None).await
    }

    /// Like [`TestGateway::start`], with connections served by `n` worker
    /// runtimes on their own threads, as the binary runs.
    pub async fn start_with_workers(yaml: &str, n: usize) -> Self {
        Self::start_full(yaml, None, Some(Workers::start(n).unwrap())).await
    }

    /// Like [`TestGateway::start`], polling the config file for changes.
    pub async fn start_with(yaml: &str, watch: Option<Duration>) -> Self {
        Self::start_full(yaml, watch, None).await
    }

    /// Starts a gateway on the config file at `path` (relative paths in it
    /// are relative to its directory); missing listeners and admin are filled
    /// in as for [`TestGateway::start`], in place.
    pub async fn start_file(path: &std::path::Path) -> Self {
        let yaml = std::fs::read_to_string(path).unwrap();
        Self::start_at(&yaml, path.to_path_buf(), None, None, None).await
    }

    async fn start_full(yaml: &str, watch: Option<Duration>, workers: Option<Workers>) -> Self {
        Self::start_at(yaml, temp_path("warden.yaml"), watch, workers, None).await
    }

    /// Like [`TestGateway::start`], with requests stamped by `clock`
    /// (time-window rules, quota periods).
    pub async fn start_with_clock(yaml: &str, clock: Arc<warden_core::ManualClock>) -> Self {
        Self::start_at(yaml, temp_path("warden.yaml"), None, None, Some(clock)).await
    }

    async fn start_at(
        yaml: &str,
        config_path: PathBuf,
        watch: Option<Duration>,
        workers: Option<Workers>,
        clock: Option<Arc<warden_core::ManualClock>>,
    ) -> Self {
        let yaml = with_defaults(yaml);
        std::fs::write(&config_path, &yaml).unwrap();
        let snapshot = warden_config::load_file(&config_path).unwrap_or_else(|e| panic!("test config invalid: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let opts = GatewayOptions {
            config_path: Some(config_path.clone()),
            watch_interval: watch,
            access_log: Some(AccessLogSink::Memory(log.clone())),
            workers: workers.as_ref().map(Workers::handles).unwrap_or_default(),
            clock: clock.map(|c| c as Arc<dyn warden_core::Clock>),
        };
        let gateway = Gateway::start(snapshot, opts).await.unwrap();
        let addr = gateway.listener_addrs()[0];
        let admin = gateway.admin_addr().unwrap();
        Self {
            gateway: Some(gateway),
            addr,
            admin,
            config_path,
            log,
            workers,
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Access-log lines so far, parsed.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Raw access-log lines.
    pub fn access_log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until the access log has at least `n` lines (it is written in the background).
    pub async fn wait_for_log_lines(&self, n: usize) {
        for _ in 0..500 {
            if self.log.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("access log never reached {n} lines: {}", self.access_log_text());
    }

    /// Replaces the config file's text (with the same listener defaults).
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(&self.config_path, with_defaults(yaml)).unwrap();
    }

    /// The gateway.
    pub fn gw(&self) -> &Gateway {
        self.gateway.as_ref().unwrap()
    }

    /// Admin GET.
    pub async fn admin_get(&self, path: &str) -> Reply {
        get(&format!("http://{}{path}", self.admin)).await
    }

    /// The `warden_security_events_total` count for events of `kind` (0 when
    /// none was counted yet), from the admin listener's metrics.
    pub async fn security_events(&self, kind: &str) -> u64 {
        let metrics = self.admin_get("/metrics").await.text();
        let label = format!("{{kind=\"{kind}\"}} ");
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("warden_security_events_total")?
                    .strip_prefix(label.as_str())
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Drains and stops.
    pub async fn shutdown(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        if let Some(w) = self.workers.take() {
            tokio::task::spawn_blocking(move || w.stop()).await.unwrap();
        }
    }
}

fn with_defaults(yaml: &str) -> String {
    let mut out = String::new();
    if !yaml.contains("listeners:") {
        out.push_str("listeners:\n  - name: test\n    bind: 127.0.0.1:0\n    plain_http: serve\n");
    }
    if !yaml.contains("admin:") {
        out.push_str("admin:\n  bind: 127.0.0.1:0\n");
    }
    out.push_str(yaml);
    out
}

/// An HTTP/1.1 client.
pub fn http1() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 prior-knowledge (h2c) client.
pub fn http2() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).http2_only(true).build_http()
}

/// Sends `req` with `client` and reads the whole response.
pub async fn send(client: &Client<HttpConnector, Full<Bytes>>, req: Request<Full<Bytes>>) -> Reply {
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Ordinary clients asking `url` every 100 ms, HTTP/1.1 and HTTP/2 in
/// turn, while a test attacks the gateway; [`Bystanders::statuses`] stops
/// them and returns every status they got.
pub struct Bystanders {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Vec<u16>>,
}

impl Bystanders {
    /// Starts asking.
    pub fn start(url: String) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let clients = [http1(), http2()];
            let mut statuses = Vec::new();
            for i in 0.. {
                let req = Request::get(&url).body(Full::default()).unwrap();
                statuses.push(send(&clients[i % 2], req).await.status.as_u16());
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stopped.changed() => break,
                }
            }
            statuses
        });
        Self { stop, task }
    }

    /// Stops asking; the statuses so far (at least one).
    pub async fn statuses(self) -> Vec<u16> {
        let _ = self.stop.send(true);
        self.task.await.unwrap()
    }
}

/// GET over HTTP/1.1.
pub async fn get(url: &str) -> Reply {
    send(&http1(), Request::get(url).body(Full::default()).unwrap()).await
}

/// Writes `bytes` on a fresh TCP connection and reads until the server closes
/// (or 5 s pass). Returns what was read and whether the server closed.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// An address on loopback where nothing listens.
pub async fn dead_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// A TLS exchange's outcome as the client saw it.
#[derive(Debug)]
pub struct TlsReply {
    /// The response.
    pub reply: Reply,
    /// Negotiated protocol version.
    pub version: Option<rustls::ProtocolVersion>,
    /// Negotiated key-exchange group.
    pub group: Option<rustls::NamedGroup>,
    /// Negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// HTTP version of the response.
    pub http: http::Version,
    /// The server's leaf certificate.
    pub server_cert: Option<rustls::pki_types::CertificateDer<'static>>,
    /// The handshake resumed an earlier session.
    pub resumed: bool,
}

/// Connects with TLS to `addr` sending `sni`, then sends `req` over HTTP/2
/// when ALPN chose `h2`, else HTTP/1.1. Any failure (handshake, refused
/// certificate, closed connection) is an `Err` with its text.
pub async fn https(
    addr: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
    req: Request<Full<Bytes>>,
) -> Result<TlsReply, String> {
    let work = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn = tls.get_ref().1;
        let version = conn.protocol_version();
        let group = conn.negotiated_key_exchange_group().map(|g| g.name());
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let server_cert = conn.peer_certificates().and_then(|c| c.first()).cloned();
        let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        let io = hyper_util::rt::TokioIo::new(tls);
        let mut req = req;
        let resp = if alpn.as_deref() == Some(b"h2") {
            if req.uri().authority().is_none() {
                let pq = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
                *req.uri_mut() = format!("https://{sni}{pq}").parse().map_err(|e| format!("{e}"))?;
            }
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            send.send_request(req).await.map_err(|e| format!("request: {e}"))?
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            send.send_request(req).await.map_err(|e| format!("request: {e}"))?
        };
        let http = resp.version();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        Ok(TlsReply {
            reply: Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            },
            version,
            group,
            alpn,
            http,
            server_cert,
            resumed,
        })
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// `GET https://sni{path}` via [`https`].
pub async fn https_get(
    addr: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<TlsReply, String> {
    let req = Request::get(path)
        .header(http::header::HOST, sni)
        .body(Full::default())
        .unwrap();
    https(addr, sni, cfg, req).await
}
