//! Store-backed credentials end to end: API keys made with the real `warden`
//! CLI against the store a running gateway uses, then presented, rotated and
//! revoked; JWTs revoked by `jti` and consumers disabled. SQLite in-process,
//! and PostgreSQL with two gateway processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use warden_store::testing::TestDatabase;
use warden_testkit::jwt::TestIssuer;
use warden_testkit::process::{Proc, free_port, redis_url, wait_ready};
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, send};

const BIN: &str = env!("CARGO_BIN_EXE_warden");

fn temp_dir(name: &str) -> PathBuf {
    warden_testkit::temp_dir(name)
}

/// Runs `warden <args> --config <config>`; returns stdout, panics on failure.
fn cli(config: &Path, args: &[&str]) -> String {
    warden_testkit::run_cli(BIN, config, args)
}

/// Like [`cli`], for commands that must fail; returns stderr.
fn cli_fails(config: &Path, args: &[&str]) -> String {
    warden_testkit::run_cli_fails(BIN, config, args)
}

async fn call(base: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = http::Request::get(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(&http1(), req.body(Full::<Bytes>::default()).unwrap()).await
}

/// Polls until `path` with `key` answers `want`; returns how long it took.
async fn until_status(base: &str, path: &str, key: &str, want: u16) -> Duration {
    until_status_with(base, path, ("x-api-key", key), want).await
}

/// Polls until `path` with header `h` answers `want`; returns how long it took.
async fn until_status_with(base: &str, path: &str, h: (&str, &str), want: u16) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if call(base, path, &[h]).await.status == want {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path} never answered {want}");
}

fn routes(up: &MockUpstream, iss: &TestIssuer) -> String {
    let jwt = format!(
        "  - id: jwt\n    path: {{ prefix: /jwt }}\n    service: api\n    policies:\n{}  - id: either\n    path: {{ prefix: /either }}\n    service: api\n    authentication: any\n    policies:\n      - type: api_key\n{}",
        iss.policy_yaml(""),
        iss.policy_yaml("")
    );
    format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: keyed\n    path: {{ prefix: /keyed }}\n    service: api\n    policies:\n      - type: api_key\n  - id: query\n    path: {{ prefix: /query }}\n    service: api\n    policies:\n      - type: api_key\n        query_param: api_key\n  - id: eng\n    path: {{ prefix: /eng }}\n    service: api\n    policies:\n      - type: api_key\n        groups: [eng]\n",
        up.addr
    ) + &jwt
}

struct Sqlite {
    gw: TestGateway,
    up: MockUpstream,
    iss: TestIssuer,
    config: PathBuf,
}

/// A gateway on a fresh SQLite store, and a config file the CLI can use to
/// reach the same store.
async fn sqlite_gateway(poll_ms: u64) -> Sqlite {
    let up = MockUpstream::start("a").await;
    let dir = temp_dir("sqlite");
    let store = format!(
        "store:\n  data_dir: \"{}\"\n  poll_ms: {poll_ms}\n",
        dir.join("data").display()
    );
    let iss = TestIssuer::new();
    let yaml = format!("{store}{}", routes(&up, &iss));
    let gw = TestGateway::start(&yaml).await;
    let config = dir.join("cli.yaml");
    std::fs::write(
        &config,
        format!("listeners:\n  - name: m\n    bind: 127.0.0.1:0\n{yaml}"),
    )
    .unwrap();
    Sqlite { gw, up, iss, config }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_by_the_cli_authenticates_and_never_reaches_the_upstream() {
    // Polling once a minute: the new key must still work on its first request
    // (an unknown key makes the gateway look at the store once more).
    let s = sqlite_gateway(60_000).await;
    let base = s.gw.url("");
    // Before the consumer exists, nothing passes.
    let r = call(&base, "/keyed/x", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(r.headers.contains_key("www-authenticate"));
    assert!(cli_fails(&s.config, &["keys", "create", "--consumer", "alice"]).contains("no consumer `alice`"));
    cli(&s.config, &["consumers", "create", "alice", "--group", "eng"]);
    let key = cli(&s.config, &["keys", "create", "--consumer", "alice", "--label", "test"]);
    let key = key.trim();
    assert_eq!(call(&base, "/keyed/x", &[("x-api-key", key)]).await.status, 200);

    // The upstream learns who called, never the key; a client-sent consumer
    // header (or its underscore spelling) does not survive.
    let before = s.up.seen().len();
    let r = call(
        &base,
        "/keyed/who",
        &[
            ("x-api-key", key),
            ("x-warden-consumer", "admin"),
            ("x_warden_consumer", "admin"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = &s.up.seen()[before];
    assert_eq!(seen.headers["x-warden-consumer"], "alice");
    assert_eq!(seen.headers.get_all("x-warden-consumer").iter().count(), 1);
    assert!(!seen.headers.contains_key("x_warden_consumer"));
    assert!(!seen.headers.contains_key("x-api-key"));
    // The log is written in the background (and scrubbed there): wait up to
    // 2 s for this request's line.
    let mut logged = s.gw.access_log();
    for _ in 0..200 {
        if logged.iter().any(|l| l["consumer"] == "alice") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        logged = s.gw.access_log();
    }
    assert!(logged.iter().any(|l| l["consumer"] == "alice"));
    assert!(!s.gw.access_log_text().contains(key), "the key reached the access log");

    // Groups: alice is in eng.
    assert_eq!(call(&base, "/eng/x", &[("x-api-key", key)]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_missing_and_misplaced_keys_are_refused() {
    let s = sqlite_gateway(100).await;
    let base = s.gw.url("");
    cli(&s.config, &["consumers", "create", "bob"]);
    let key = cli(&s.config, &["keys", "create", "--consumer", "bob"]);
    let key = key.trim();
    until_status(&base, "/keyed/x", key, 200).await;
    let hits = s.up.hits();

    let mut forged = key.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'x' { 'y' } else { 'x' });
    let other_prefix = format!("wdn_0123456789ab{}", &key[16..]);
    for bad in [
        forged.as_str(),
        other_prefix.as_str(),
        &key[..key.len() - 1],
        "wdn_",
        "' OR 1=1 --",
        "Bearer abc",
    ] {
        let r = call(&base, "/keyed/x", &[("x-api-key", bad)]).await;
        assert_eq!(r.status, 401, "{bad}");
        assert_eq!(r.json()["detail"], "the API key is not valid", "{bad}");
    }
    // Two keys at once: which one counts is ambiguous, so neither does.
    let r = call(&base, "/keyed/x", &[("x-api-key", key), ("x-api-key", key)]).await;
    assert_eq!(r.status, 401);
    // The query string is read only where the route opts in.
    let r = call(&base, &format!("/keyed/x?api_key={key}"), &[]).await;
    assert_eq!(r.status, 401);
    // bob is in no group: the eng route refuses him with 403.
    assert_eq!(call(&base, "/eng/x", &[("x-api-key", key)]).await.status, 403);
    assert_eq!(s.up.hits(), hits, "a refused request reached the upstream");

    // Where the query is allowed, the key is taken and then removed from the URI.
    let before = s.up.seen().len();
    let r = call(&base, &format!("/query/x?a=1&api_key={key}&b=2"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(s.up.seen()[before].uri, "/query/x?a=1&b=2");
    let r = call(&base, &format!("/query/x?api_key={key}&api%5Fkey={key}"), &[]).await;
    assert_eq!(r.status, 401, "a second, encoded copy must not slip through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_revocation_and_disabling_reach_the_running_gateway() {
    let s = sqlite_gateway(100).await;
    let base = s.gw.url("");
    cli(&s.config, &["consumers", "create", "carol"]);
    let old = cli(&s.config, &["keys", "create", "--consumer", "carol", "--label", "old"]);
    let new = cli(&s.config, &["keys", "create", "--consumer", "carol", "--label", "new"]);
    let (old, new) = (old.trim(), new.trim());
    until_status(&base, "/keyed/x", old, 200).await;
    until_status(&base, "/keyed/x", new, 200).await;
    // A third active key is refused: two at a time, for rotation.
    assert!(cli_fails(&s.config, &["keys", "create", "--consumer", "carol"]).contains("2 active keys"));

    let old_prefix = &old[4..16];
    cli(&s.config, &["keys", "revoke", old_prefix]);
    until_status(&base, "/keyed/x", old, 401).await;
    assert_eq!(call(&base, "/keyed/x", &[("x-api-key", new)]).await.status, 200);
    let listed = cli(&s.config, &["keys", "list", "--consumer", "carol"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(old_prefix) && l.contains("revoked")),
        "{listed}"
    );
    assert!(!listed.contains(&new[17..]), "key list shows a key's secret part");

    cli(&s.config, &["consumers", "disable", "carol"]);
    until_status(&base, "/keyed/x", new, 401).await;
    cli(&s.config, &["consumers", "enable", "carol"]);
    until_status(&base, "/keyed/x", new, 200).await;
}

/// A `warden run` process; killed on drop.
/// Two gateway processes sharing one PostgreSQL store: a change made through
/// the store is enforced by both, pushed by `LISTEN/NOTIFY`. Polling is set
/// to 10 s so only the push can make it arrive quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_postgres_and_redis_enforce_each_others_revocations_and_replays() {
    let db = TestDatabase::create()
        .await
        .expect("PostgreSQL for tests (see .ci/run)");
    let up = MockUpstream::start("a").await;
    let iss = TestIssuer::new();
    let dir = temp_dir("pg");
    let secret = dir.join("secret.key");
    std::fs::write(&secret, "c2hhcmVkIHNlY3JldCBvZiB0aGUgdHdvIGdhdGV3YXlzIQ==\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let redis_prefix = format!("warden-test:{}:", dir.file_name().unwrap().to_string_lossy());
    let mut procs = Vec::new();
    let mut bases = Vec::new();
    let mut config = PathBuf::new();
    for n in 0..2 {
        let (port, admin) = (free_port().await, free_port().await);
        config = dir.join(format!("gw{n}.yaml"));
        std::fs::write(
            &config,
            format!(
                "listeners:\n  - name: m\n    bind: 127.0.0.1:{port}\n    plain_http: serve\nadmin:\n  bind: 127.0.0.1:{admin}\naccess_log: off\nstore:\n  database_url: \"{}\"\n  secret_file: \"{}\"\n  poll_ms: 10000\noauth_server:\n  issuer: \"http://127.0.0.1\"\nshared_state:\n  redis_url: \"{}\"\n  key_prefix: \"{redis_prefix}\"\n  on_unavailable: fail_closed\n{}{OWN_ROUTE}",
                db.url,
                secret.display(),
                redis_url(),
                routes(&up, &iss)
            ),
        )
        .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--watch-secs", "0", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("gw{n}.log"))).unwrap())
            .spawn()
            .unwrap();
        procs.push(Proc(child));
        wait_ready(admin, &dir.join(format!("gw{n}.log"))).await;
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    cli(&config, &["consumers", "create", "dave"]);
    let key = cli(&config, &["keys", "create", "--consumer", "dave"]);
    let key = key.trim();
    for b in &bases {
        let took = until_status(b, "/keyed/x", key, 200).await;
        assert!(
            took < Duration::from_secs(5),
            "new key took {took:?} (push, not the 10 s poll)"
        );
    }
    cli(&config, &["keys", "revoke", key]);
    for b in &bases {
        let took = until_status(b, "/keyed/x", key, 401).await;
        eprintln!("revocation reached {b} after {took:?}");
        assert!(
            took < Duration::from_secs(5),
            "revocation took {took:?} (push, not the 10 s poll)"
        );
    }
    // Disabling the consumer works the same way.
    let second = cli(&config, &["keys", "create", "--consumer", "dave"]);
    let second = second.trim();
    for b in &bases {
        until_status(b, "/keyed/x", second, 200).await;
    }
    cli(&config, &["consumers", "disable", "dave"]);
    for b in &bases {
        let took = until_status(b, "/keyed/x", second, 401).await;
        assert!(took < Duration::from_secs(5), "disabling took {took:?}");
    }

    // A token revoked by `jti` is refused by both, though each had it cached.
    let mut claims = iss.claims();
    claims["jti"] = "tok-1".into();
    let bearer = format!("Bearer {}", iss.es256(&claims));
    for b in &bases {
        until_status_with(b, "/jwt/x", ("authorization", &bearer), 200).await;
    }
    cli(&config, &["tokens", "revoke", &bearer[7..], "--reason", "test"]);
    for b in &bases {
        let took = until_status_with(b, "/jwt/x", ("authorization", &bearer), 401).await;
        eprintln!("token revocation reached {b} after {took:?}");
        assert!(took < Duration::from_secs(5), "token revocation took {took:?}");
    }

    // A token from gateway 0's authorization server works on gateway 1 (the
    // signing keys live in the shared store); revoked through gateway 0's
    // revocation endpoint, gateway 1 refuses it.
    let out = cli(&config, &["clients", "create", "shared-app"]);
    let field = |k: &str| out.lines().find_map(|l| l.strip_prefix(k)).unwrap().to_owned();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            field("client_id="),
            field("client_secret=")
        ))
    );
    let form = |base: &str, path: &str, body: String| {
        let req = http::Request::post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &basic)
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        async move { send(&http1(), req).await }
    };
    let issued = form(&bases[0], "/oauth2/token", "grant_type=client_credentials".into()).await;
    assert_eq!(issued.status, 200, "{}", issued.text());
    let access = issued.json()["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    until_status_with(&bases[1], "/own/x", ("authorization", &bearer), 200).await;
    let revoked = form(&bases[0], "/oauth2/revoke", format!("token={access}")).await;
    assert_eq!(revoked.status, 200);
    for b in &bases {
        let took = until_status_with(b, "/own/x", ("authorization", &bearer), 401).await;
        eprintln!("revocation endpoint's effect reached {b} after {took:?}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }

    // DPoP with Redis as shared state: a proof accepted by gateway 0 is refused
    // by gateway 1 (same public host, as behind a load balancer).
    let keys = TestIssuer::new();
    let token_proof = warden_testkit::jwt::dpop_proof(&keys.ec, "POST", "http://127.0.0.1/oauth2/token", None, "tp-1");
    let req = http::Request::post(format!("{}/oauth2/token", bases[0]))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &basic)
        .header("dpop", &token_proof)
        .body(Full::new(Bytes::from("grant_type=client_credentials")))
        .unwrap();
    let bound = send(&http1(), req).await;
    assert_eq!(bound.status, 200, "{}", bound.text());
    let bound = bound.json()["access_token"].as_str().unwrap().to_owned();
    // The token proof itself cannot be replayed at the other gateway either.
    let req = http::Request::post(format!("{}/oauth2/token", bases[1]))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &basic)
        .header("dpop", &token_proof)
        .body(Full::new(Bytes::from("grant_type=client_credentials")))
        .unwrap();
    assert_eq!(send(&http1(), req).await.json()["error"], "invalid_dpop_proof");
    let call = |base: &str, jti: &str| {
        let proof = warden_testkit::jwt::dpop_proof(&keys.ec, "GET", "http://api.test/own/x", Some(&bound), jti);
        let req = http::Request::get(format!("{base}/own/x"))
            .header("host", "api.test")
            .header("authorization", format!("DPoP {bound}"))
            .header("dpop", proof)
            .body(Full::<Bytes>::default())
            .unwrap();
        async move { send(&http1(), req).await.status }
    };
    assert_eq!(call(&bases[0], "rp-1").await, 200);
    assert_eq!(
        call(&bases[1], "rp-1").await,
        401,
        "a proof used at one gateway was accepted at the other"
    );
    assert_eq!(
        call(&bases[1], "rp-2").await,
        200,
        "a fresh proof works at the other gateway"
    );
    assert_eq!(call(&bases[0], "rp-2").await, 401);
    drop(procs);
}

/// A route for tokens of the gateway's own authorization server.
const OWN_ROUTE: &str = "  - id: own\n    path: { prefix: /own }\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - issuer: \"http://127.0.0.1\"\n            builtin: true\n            audiences: [\"http://127.0.0.1\"]\n            algorithms: [ES256]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_and_disabled_consumers_are_refused_on_jwt_routes() {
    let s = sqlite_gateway(100).await;
    let base = s.gw.url("");
    let mut claims = s.iss.claims();
    claims["jti"] = "a1b2c3".into();
    let revoked = format!("Bearer {}", s.iss.rs256(&claims));
    claims["jti"] = "d4e5f6".into();
    let other = format!("Bearer {}", s.iss.rs256(&claims));
    // Accepted twice: the second time from the verified-token cache.
    for _ in 0..2 {
        assert_eq!(call(&base, "/jwt/x", &[("authorization", &revoked)]).await.status, 200);
    }
    cli(&s.config, &["tokens", "revoke", &revoked[7..]]);
    until_status_with(&base, "/jwt/x", ("authorization", &revoked), 401).await;
    let r = call(&base, "/jwt/x", &[("authorization", &revoked)]).await;
    assert_eq!(
        r.headers["www-authenticate"],
        r#"Bearer realm="warden", error="invalid_token""#
    );
    assert_eq!(call(&base, "/jwt/x", &[("authorization", &other)]).await.status, 200);
    let listed = cli(&s.config, &["tokens", "list"]);
    assert!(listed.starts_with("a1b2c3\t"), "{listed}");

    // A token without `jti` cannot be revoked alone; its consumer can be disabled.
    let plain = s.iss.rs256(&s.iss.claims());
    assert!(cli_fails(&s.config, &["tokens", "revoke", &plain]).contains("disable its consumer"));
    assert!(cli_fails(&s.config, &["tokens", "revoke", "not-a-token"]).contains("not a JWT"));
    cli(&s.config, &["consumers", "create", "alice"]);
    cli(&s.config, &["consumers", "disable", "alice"]);
    let bearer = format!("Bearer {plain}");
    until_status_with(&base, "/jwt/x", ("authorization", &bearer), 401).await;
    cli(&s.config, &["consumers", "enable", "alice"]);
    until_status_with(&base, "/jwt/x", ("authorization", &bearer), 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_may_accept_any_one_of_its_methods_but_never_a_bad_credential() {
    let s = sqlite_gateway(100).await;
    let base = s.gw.url("");
    cli(&s.config, &["consumers", "create", "erin"]);
    let key = cli(&s.config, &["keys", "create", "--consumer", "erin"]);
    let key = key.trim();
    let bearer = format!("Bearer {}", s.iss.rs256(&s.iss.claims()));
    assert_eq!(call(&base, "/either/x", &[("x-api-key", key)]).await.status, 200);
    assert_eq!(
        call(&base, "/either/x", &[("authorization", &bearer)]).await.status,
        200
    );
    // Nothing: 401 naming both methods.
    let r = call(&base, "/either/x", &[]).await;
    assert_eq!(r.status, 401);
    let challenges: Vec<_> = r.headers.get_all("www-authenticate").iter().collect();
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    // A bad credential is refused even when another one is good.
    let forged = format!("Bearer {}", s.iss.rs256(&s.iss.claims()).replace('.', "x."));
    assert_eq!(
        call(&base, "/either/x", &[("x-api-key", key), ("authorization", &forged)])
            .await
            .status,
        401
    );
    assert_eq!(
        call(
            &base,
            "/either/x",
            &[("x-api-key", "wdn_bad"), ("authorization", &bearer)]
        )
        .await
        .status,
        401
    );
    // The all-of default: the jwt route alone still needs its token.
    assert_eq!(call(&base, "/jwt/x", &[("x-api-key", key)]).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_declared_in_the_file_are_created_and_follow_reloads() {
    let up = MockUpstream::start("a").await;
    let dir = temp_dir("declared");
    let yaml = |consumers: &str| {
        format!(
            "store:\n  data_dir: \"{}\"\n  poll_ms: 100\nconsumers:\n{consumers}services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: eng\n    path: {{ prefix: /eng }}\n    service: api\n    policies:\n      - type: api_key\n        groups: [eng]\n",
            dir.join("data").display(),
            up.addr
        )
    };
    let gw = TestGateway::start(&yaml("  - { name: gina, groups: [eng] }\n")).await;
    let base = gw.url("");
    let key = cli(&gw.config_path, &["keys", "create", "--consumer", "gina"]);
    let key = key.trim();
    assert_eq!(call(&base, "/eng/x", &[("x-api-key", key)]).await.status, 200);
    // The CLI leaves declared consumers to the file.
    assert!(cli_fails(&gw.config_path, &["consumers", "disable", "gina"]).contains("declared in the config file"));
    // gina leaves the file: on reload she is disabled, her key refused.
    gw.write_config(&yaml("  - { name: hal, groups: [eng] }\n"));
    gw.gw().reload().await.unwrap();
    until_status(&base, "/eng/x", key, 401).await;
    // Back with another group: enabled again, but not in eng.
    gw.write_config(&yaml("  - { name: gina, groups: [ops] }\n"));
    gw.gw().reload().await.unwrap();
    until_status(&base, "/eng/x", key, 403).await;
}
