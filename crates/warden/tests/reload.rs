//! End-to-end: hot reload (refused configs keep the old one serving; valid
//! reloads under load drop nothing) and graceful shutdown under load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use warden_testkit::{MockUpstream, TestGateway, get};

fn yaml(up: &MockUpstream, route_id: &str, extra_routes: &str) -> String {
    format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: {route_id}\n    path: {{ prefix: /x }}\n    service: a\n{extra_routes}",
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reload_is_refused_with_every_error_and_old_config_keeps_serving() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&yaml(&up, "first", "")).await;
    gw.write_config(&format!(
        "{}  - id: broken\n    path: {{ prefix: /y }}\n    service: nowhere\n    methods: [fetch]\n    policies:\n      - type: ip_rules\n        allow: [300.1.1.1]\nlimits:\n  max_uri_bytes: 0\n",
        yaml(&up, "first", "")
    ));
    let err = gw.gw().reload().await.unwrap_err();
    let listed: Vec<String> = err.issues().iter().map(|i| i.path.clone()).collect();
    for expect in [
        "routes[1].service",
        "routes[1].methods[0]",
        "routes[1].policies[0].allow[0]",
        "limits.max_uri_bytes",
    ] {
        assert!(listed.iter().any(|p| p == expect), "{expect} not in {listed:?}");
    }
    assert_eq!(get(&gw.url("/x")).await.status, 200, "old config still serves");
    assert_eq!(get(&gw.url("/y")).await.status, 404, "the refused route was not added");
    assert_eq!(gw.admin_get("/readyz").await.json()["config_generation"], 1);
    let metrics = gw.admin_get("/metrics").await.text();
    assert!(
        metrics.contains("warden_config_reloads_total{result=\"refused\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_reload_applies_and_listener_changes_need_a_restart() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&yaml(&up, "first", "")).await;
    assert_eq!(get(&gw.url("/y")).await.status, 404);
    gw.write_config(&format!(
        "{}  - id: second\n    path: {{ prefix: /y }}\n    service: a\n",
        yaml(&up, "first", "")
    ));
    let outcome = gw.gw().reload().await.unwrap();
    assert_eq!(outcome.generation, 2);
    assert!(outcome.needs_restart.is_empty(), "{:?}", outcome.needs_restart);
    assert_eq!(get(&gw.url("/y")).await.status, 200);
    // Changing the listener is accepted for everything else but reported.
    let text = format!(
        "listeners:\n  - name: other\n    bind: 127.0.0.1:0\n    plain_http: serve\n{}",
        yaml(&up, "first", "")
    );
    gw.write_config(&text);
    let outcome = gw.gw().reload().await.unwrap();
    assert_eq!(outcome.needs_restart, ["listeners"]);
    assert_eq!(get(&gw.url("/x")).await.status, 200, "old listener keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_change_is_picked_up_by_the_watcher() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start_with(&yaml(&up, "first", ""), Some(Duration::from_millis(50))).await;
    gw.write_config(&format!(
        "{}  - id: later\n    path: {{ prefix: /later }}\n    service: a\n",
        yaml(&up, "first", "")
    ));
    for _ in 0..200 {
        if get(&gw.url("/later")).await.status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("file change was never applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_constant_load_drop_zero_requests() {
    let up = MockUpstream::start("a").await;
    let gw = TestGateway::start(&yaml(&up, "r0", "")).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (stop, ok, bad, url) = (stop.clone(), ok.clone(), bad.clone(), gw.url(&format!("/x/{w}")));
        workers.push(tokio::spawn(async move {
            let client = warden_testkit::http1();
            while !stop.load(Ordering::Relaxed) {
                let req = http::Request::get(&url).body(http_body_util::Full::default()).unwrap();
                match client.request(req).await {
                    Ok(resp) if resp.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => bad.lock().unwrap().push(format!("status {}", resp.status())),
                    Err(e) => bad.lock().unwrap().push(format!("error {e}")),
                }
            }
        }));
    }
    for i in 1..=20 {
        // Alternate the route id and add/remove a second route and a second service.
        let extra = if i % 2 == 0 {
            "  - id: extra\n    path: { exact: /extra }\n    service: a\n"
        } else {
            ""
        };
        gw.write_config(&yaml(&up, &format!("r{i}"), extra));
        gw.gw().reload().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(gw.admin_get("/readyz").await.json()["config_generation"], 21);
    let bad = bad.lock().unwrap();
    assert!(bad.is_empty(), "dropped or failed during reloads: {bad:?}");
    assert!(
        ok.load(Ordering::Relaxed) > 40,
        "load actually ran: {}",
        ok.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests_and_refuses_new_ones() {
    let up = MockUpstream::start("a").await;
    let mut gw = TestGateway::start(&yaml(&up, "r", "")).await;
    let mut inflight = Vec::new();
    for i in 0..10 {
        let url = gw.url(&format!("/x/slow/{}", 300 + i * 20));
        inflight.push(tokio::spawn(async move { get(&url).await.status }));
    }
    // Wait until the upstream holds all ten, then shut down.
    for _ in 0..500 {
        if up.hits() == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(up.hits(), 10);
    let addr = gw.addr;
    gw.shutdown().await;
    for t in inflight {
        assert_eq!(t.await.unwrap(), 200, "an in-flight request was dropped");
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runtimes_drain_in_flight_requests_on_shutdown_and_survive_reloads() {
    let up = MockUpstream::start("a").await;
    let mut gw = TestGateway::start_with_workers(&yaml(&up, "r", ""), 2).await;
    gw.write_config(&yaml(
        &up,
        "r2",
        "  - id: y\n    path: { prefix: /y }\n    service: a\n",
    ));
    gw.gw().reload().await.unwrap();
    assert_eq!(get(&gw.url("/y")).await.status, 200);
    let mut inflight = Vec::new();
    for _ in 0..6 {
        let url = gw.url("/x/slow/400");
        inflight.push(tokio::spawn(async move { get(&url).await.status }));
    }
    for _ in 0..500 {
        if up.hits() >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.shutdown().await;
    for t in inflight {
        assert_eq!(t.await.unwrap(), 200);
    }
}
