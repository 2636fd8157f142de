//! Authorization end to end: Cedar policies from a file, object bindings
//! (BOLA), group-only operations and network rules, with consumers and API
//! keys from a real store; bad policy files refused with line and column; the
//! explain command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::Full;
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, run_cli, send};

const BIN: &str = env!("CARGO_BIN_EXE_warden");

const POLICIES: &str = r#"
@id("read-own-profile")
permit(principal, action == Action::"GET /users/{user_id}", resource);

@id("admins-delete-users")
permit(principal in Group::"admin", action == Action::"DELETE /users/{user_id}", resource);

@id("no-quarantined-network")
forbid(principal, action, resource) when { context.ip.isInRange(ip("10.99.0.0/16")) };
"#;

struct Setup {
    gw: TestGateway,
    up: MockUpstream,
    policies: PathBuf,
    keys: std::collections::HashMap<&'static str, String>,
}

fn yaml(dir: &Path, up: &MockUpstream) -> String {
    format!(
        "trusted_proxies: [127.0.0.1/32]\nstore:\n  data_dir: \"{}\"\nconsumers:\n  - {{ name: alice, groups: [users] }}\n  - {{ name: bob, groups: [users] }}\n  - {{ name: root, groups: [admin] }}\nservices:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: users-read\n    methods: [GET]\n    path: {{ template: \"/users/{{user_id}}\" }}\n    service: api\n    policies:\n      - type: api_key\n      - type: authz\n        policies_file: policies.cedar\n        bind:\n          - {{ path_param: user_id, equals_consumer: true }}\n  - id: users-admin\n    methods: [DELETE]\n    path: {{ template: \"/users/{{user_id}}\" }}\n    service: api\n    policies:\n      - type: api_key\n      - type: authz\n        policies_file: policies.cedar\n",
        dir.join("data").display(),
        up.addr
    )
}

async fn setup() -> Setup {
    let up = MockUpstream::start("api").await;
    let dir = warden_testkit::temp_dir("authz");
    let policies = dir.join("policies.cedar");
    std::fs::write(&policies, POLICIES).unwrap();
    // The config lives next to the policies (relative path).
    let config = dir.join("warden.yaml");
    std::fs::write(
        &config,
        format!(
            "listeners:\n  - name: m\n    bind: 127.0.0.1:0\n    plain_http: serve\n{}",
            yaml(&dir, &up)
        ),
    )
    .unwrap();
    let gw = TestGateway::start_file(&config).await;
    let mut keys = std::collections::HashMap::new();
    for who in ["alice", "bob", "root"] {
        let key = run_cli(BIN, &config, &["keys", "create", "--consumer", who]);
        keys.insert(who, key.trim().to_owned());
    }
    Setup { gw, up, policies, keys }
}

async fn call(s: &Setup, method: &str, path: &str, who: &str, xff: Option<&str>) -> Reply {
    let mut req = http::Request::builder()
        .method(method)
        .uri(s.gw.url(path))
        .header("x-api-key", &s.keys[who]);
    if let Some(ip) = xff {
        req = req.header("x-forwarded-for", ip);
    }
    send(&http1(), req.body(Full::<Bytes>::default()).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_reach_their_own_objects_only_and_admin_operations_need_the_group() {
    let s = setup().await;
    assert_eq!(call(&s, "GET", "/users/alice", "alice", None).await.status, 200);
    let hits = s.up.hits();
    let r = call(&s, "GET", "/users/bob", "alice", None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["detail"], "this request is not allowed");
    // The same answer for an object that does not exist.
    let r2 = call(&s, "GET", "/users/nobody", "alice", None).await;
    assert_eq!(
        (r2.status, r2.json()["detail"].clone()),
        (r.status, r.json()["detail"].clone())
    );
    // Plain users cannot delete anyone, themselves included; the admin can.
    assert_eq!(call(&s, "DELETE", "/users/bob", "alice", None).await.status, 403);
    assert_eq!(call(&s, "DELETE", "/users/alice", "alice", None).await.status, 403);
    assert_eq!(s.up.hits(), hits, "a refused request reached the upstream");
    assert_eq!(call(&s, "DELETE", "/users/bob", "root", None).await.status, 200);
    // A quarantined network is refused even for one's own object.
    assert_eq!(
        call(&s, "GET", "/users/alice", "alice", Some("10.99.1.2")).await.status,
        403
    );
    assert_eq!(
        call(&s, "GET", "/users/alice", "alice", Some("10.98.1.2")).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_policy_file_is_refused_with_line_and_column_and_the_old_policies_keep_serving() {
    let s = setup().await;
    std::fs::write(
        &s.policies,
        "permit(principal, action, resource);\n\nforbid(principal ==, action, resource);\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .arg("validate")
        .arg(&s.gw.config_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("policies.cedar:3:"), "{text}");
    assert!(s.gw.gw().reload().await.is_err());
    assert_eq!(call(&s, "GET", "/users/alice", "alice", None).await.status, 200);
    assert_eq!(call(&s, "GET", "/users/bob", "alice", None).await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_determining_policy_for_permit_and_forbid() {
    let s = setup().await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(["authz", "explain", "--config"])
            .arg(&s.gw.config_path)
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(&[
        "--method",
        "DELETE",
        "--path",
        "/users/bob",
        "--consumer",
        "root",
        "--group",
        "admin",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("decision: allow") && out.contains("permitted by admins-delete-users"),
        "{out}"
    );
    let (code, out) = run(&[
        "--method",
        "DELETE",
        "--path",
        "/users/bob",
        "--consumer",
        "root",
        "--group",
        "admin",
        "--ip",
        "10.99.0.7",
    ]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("forbidden by no-quarantined-network"), "{out}");
    let (code, out) = run(&["--method", "DELETE", "--path", "/users/bob", "--consumer", "alice"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("default deny"), "{out}");
    let (_, out) = run(&["--path", "/users/bob", "--consumer", "alice"]);
    assert!(out.contains("binding failed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_error_is_refused_with_line_and_column_and_the_old_policies_keep_serving() {
    let s = setup().await;
    let dir = s.policies.parent().unwrap();
    std::fs::copy(
        format!(
            "{}/../../examples/authz/users.cedarschema",
            std::env::var("CARGO_MANIFEST_DIR").unwrap()
        ),
        dir.join("users.cedarschema"),
    )
    .unwrap();
    let config = std::fs::read_to_string(&s.gw.config_path).unwrap();
    let with_schema = config.replace(
        "        policies_file: policies.cedar\n",
        "        policies_file: policies.cedar\n        schema_file: users.cedarschema\n",
    );
    assert_ne!(config, with_schema);
    std::fs::write(&s.gw.config_path, &with_schema).unwrap();
    let validate = || {
        let out = std::process::Command::new(BIN)
            .arg("validate")
            .arg(&s.gw.config_path)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // The policies as they are fit the schema.
    let (ok, text) = validate();
    assert!(ok, "{text}");
    assert!(s.gw.gw().reload().await.is_ok());
    // A string compared with a number (line 2) is a type error.
    std::fs::write(
        &s.policies,
        "permit(principal, action == Action::\"GET /users/{user_id}\", resource)\nwhen { context.hour == \"nine\" };\n",
    )
    .unwrap();
    let (ok, text) = validate();
    assert!(!ok);
    assert!(text.contains("policies.cedar:2:"), "{text}");
    assert!(s.gw.gw().reload().await.is_err());
    assert_eq!(call(&s, "GET", "/users/alice", "alice", None).await.status, 200);
    assert_eq!(call(&s, "GET", "/users/bob", "alice", None).await.status, 403);
}
