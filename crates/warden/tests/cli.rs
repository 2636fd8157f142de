//! End-to-end through the real binary: `warden validate`, `warden --version`,
//! and `warden run` under real signals (SIGHUP reload, SIGTERM drain).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use warden_testkit::{MockUpstream, get};

const BIN: &str = env!("CARGO_BIN_EXE_warden");

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("warden-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    dir.join(format!("{}-{nanos}-{name}", std::process::id()))
}

async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn validate_accepts_every_example_and_lists_every_error_of_a_bad_file() {
    let examples = format!("{}/../../examples", std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let files: Vec<_> = std::fs::read_dir(examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(!files.is_empty());
    let out = Command::new(BIN).arg("validate").args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    let bad = temp("bad.yaml");
    std::fs::write(
        &bad,
        "listeners:\n  - name: a\n    bind: nowhere\nservices: []\nroutes:\n  - id: r\n    path: { exact: /x }\n    service: ghost\n    surprise: 1\n  - id: s\n    path: { exact: /y }\n    service: ghost\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg("validate").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for expect in ["listeners[0].bind", "routes[0]", "surprise", "routes[1].service"] {
        assert!(text.contains(expect), "{expect} missing from:\n{text}");
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

fn config(port: u16, admin: u16, up: &MockUpstream, extra: &str) -> String {
    format!(
        "listeners:\n  - name: main\n    bind: 127.0.0.1:{port}\n    plain_http: serve\nadmin:\n  bind: 127.0.0.1:{admin}\naccess_log: off\nservices:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: x\n    path: {{ prefix: /x }}\n    service: a\n{extra}",
        up.addr
    )
}

async fn wait_ready(admin: u16) {
    for _ in 0..200 {
        if let Ok(Ok(_)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(("127.0.0.1", admin)),
        )
        .await
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("warden never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_sigterm_drains_in_flight_requests() {
    let up = MockUpstream::start("a").await;
    let (port, admin) = (free_port().await, free_port().await);
    let path = temp("run.yaml");
    std::fs::write(&path, config(port, admin, &up, "")).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--watch-secs", "0", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proc_ = Proc(child);
    wait_ready(admin).await;
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get(&format!("{base}/x/1")).await.status, 200);
    assert_eq!(get(&format!("{base}/y/1")).await.status, 404);

    // A broken config on SIGHUP is refused; the old one keeps serving.
    std::fs::write(&path, "routes: [\n").unwrap();
    signal(&proc_.0, "HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get(&format!("{base}/x/1")).await.status, 200);
    // A valid one is applied.
    std::fs::write(
        &path,
        config(
            port,
            admin,
            &up,
            "  - id: y\n    path: { prefix: /y }\n    service: a\n",
        ),
    )
    .unwrap();
    signal(&proc_.0, "HUP");
    let mut applied = false;
    for _ in 0..100 {
        if get(&format!("{base}/y/1")).await.status == 200 {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(applied, "SIGHUP reload never applied");

    // SIGTERM while requests are in flight: every one completes.
    let before = up.hits();
    let mut inflight = Vec::new();
    for _ in 0..8 {
        let url = format!("{base}/x/slow/600");
        inflight.push(tokio::spawn(async move { get(&url).await.status }));
    }
    for _ in 0..300 {
        if up.hits() >= before + 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&proc_.0, "TERM");
    for t in inflight {
        assert_eq!(t.await.unwrap(), 200, "SIGTERM dropped an in-flight request");
    }
    let status = tokio::task::spawn_blocking(move || {
        let s = proc_.0.wait().unwrap();
        std::mem::forget(proc_);
        s
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
