use crate::{ConfigError, load_str};

const GOOD: &str = r#"
listeners:
  - name: public
    bind: 127.0.0.1:8080
services:
  - name: api
    targets: ["127.0.0.1:9000", "backend.internal:9001"]
    balance: least_outstanding
    health:
      active: { path: /health, interval_ms: 500 }
routes:
  - id: users
    hosts: [api.example.com]
    methods: [GET, DELETE]
    path: { template: "/users/{id}" }
    service: api
    policies:
      - type: request_limits
        max_body_bytes: 1024
      - type: ip_rules
        deny: [203.0.113.0/24]
  - id: root
    path: { prefix: / }
    service: api
"#;

fn issues(text: &str) -> Vec<String> {
    match load_str(text) {
        Err(ConfigError::Invalid(v)) => v.iter().map(|i| i.to_string()).collect(),
        Err(other) => vec![format!("other: {other}")],
        Ok(_) => vec![],
    }
}

#[test]
fn good_config_compiles_with_policies_in_kind_order() {
    let snap = load_str(GOOD).unwrap();
    let crate::router::RouteMatch::Found { value, .. } =
        snap.router.lookup("api.example.com", &http::Method::GET, "/users/7")
    else {
        panic!("route not found");
    };
    assert_eq!(&*value.id, "users");
    let names: Vec<_> = value
        .policies
        .iter()
        .map(|p| warden_core::Policy::name(&p.policy))
        .collect();
    assert_eq!(names, ["ip_rules", "request_limits"], "kind order, not list order");
    assert_eq!(value.max_body_bytes, 10 * 1024 * 1024);
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    let text = GOOD.replace(
        "balance: least_outstanding",
        "balance: least_outstanding\n    balanse: x",
    );
    let got = issues(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("services[0]"), "{got:?}");
    assert!(got[0].contains("balanse"), "{got:?}");
}

#[test]
fn every_error_is_listed_at_once() {
    let text = r#"
listeners:
  - name: a
    bind: nope
services:
  - name: api
    targets: ["no-port", "127.0.0.1:1"]
    timeouts: { connect_ms: 0 }
routes:
  - id: r1
    path: { exact: /x }
    service: missing
    methods: [get]
    policies:
      - type: ip_rules
        allow: [10.0.0.0/99]
      - type: no_such_policy
  - id: r1
    path: { prefix: "/a/../b" }
    service: api
limits:
  max_headers: 0
trusted_proxies: [bogus]
"#;
    let got = issues(text).join("\n");
    for expect in [
        "routes[0].policies[1].type",
        "listeners[0].bind",
        "services[0].targets[0]",
        "services[0].timeouts.connect_ms",
        "routes[0].service",
        "routes[0].methods[0]",
        "routes[0].policies[0].allow[0]",
        "routes[1].id",
        "routes[1].path",
        "limits.max_headers",
        "trusted_proxies[0]",
    ] {
        assert!(got.contains(expect), "missing {expect} in:\n{got}");
    }
}

#[test]
fn missing_sections_and_non_mapping_are_refused() {
    let got = issues("listeners: []\n");
    assert!(got.iter().any(|i| i.starts_with("services")), "{got:?}");
    assert!(got.iter().any(|i| i.starts_with("routes")), "{got:?}");
    assert!(matches!(load_str("- a\n- b\n"), Err(ConfigError::Invalid(_))));
    assert!(matches!(load_str("a: [\n"), Err(ConfigError::Yaml(_))));
}

#[test]
fn duplicate_policy_kind_on_a_route_is_refused() {
    let text = GOOD.replace(
        "      - type: ip_rules\n        deny: [203.0.113.0/24]",
        "      - type: ip_rules\n        deny: [203.0.113.0/24]\n      - type: ip_rules\n        allow: [10.0.0.0/8]",
    );
    let got = issues(&text);
    assert!(
        got.iter()
            .any(|i| i.contains("routes[0].policies[2]") && i.contains("already appears")),
        "{got:?}"
    );
}

#[test]
fn zero_caps_are_refused_so_every_cap_stays_on() {
    let text = format!("{GOOD}limits:\n  max_body_bytes: 0\n  max_connections: 0\n");
    let got = issues(&text);
    assert_eq!(got.len(), 2, "{got:?}");
}

#[test]
fn trusted_proxy_matching_handles_mapped_ipv4() {
    let text = format!("{GOOD}trusted_proxies: [10.0.0.0/8, \"::1\"]\n");
    let snap = load_str(&text).unwrap();
    assert!(snap.is_trusted_proxy("10.1.2.3".parse().unwrap()));
    assert!(snap.is_trusted_proxy("::ffff:10.1.2.3".parse().unwrap()));
    assert!(snap.is_trusted_proxy("::1".parse().unwrap()));
    assert!(!snap.is_trusted_proxy("11.1.2.3".parse().unwrap()));
}

#[test]
fn yaml_1_1_booleans_stay_strings_and_duplicate_keys_are_refused() {
    let text = GOOD.replace("id: root", "id: y").replace("id: users", "id: no");
    let snap = load_str(&text).unwrap();
    assert!(matches!(
        snap.router.lookup("x", &http::Method::GET, "/anything"),
        crate::router::RouteMatch::Found { value, .. } if &*value.id == "y"
    ));
    let dup = GOOD.replace(
        "    service: api
",
        "    service: api
    service: api
",
    );
    assert!(load_str(&dup).is_err());
}

#[test]
fn access_log_accepts_off_stdout_and_file_and_refuses_others() {
    use crate::schema::AccessLogConfig;
    for (v, want) in [
        ("off", AccessLogConfig::Off),
        ("false", AccessLogConfig::Off),
        ("stdout", AccessLogConfig::Stdout),
        ("{ file: /tmp/a.log }", AccessLogConfig::File("/tmp/a.log".into())),
    ] {
        let snap = load_str(&format!("{GOOD}access_log: {v}\n")).unwrap();
        assert_eq!(snap.config.access_log, want, "{v}");
    }
    assert!(load_str(&format!("{GOOD}access_log: syslog\n")).is_err());
}

#[test]
fn relative_paths_in_a_file_are_relative_to_its_directory() {
    let dir = std::env::temp_dir().join(format!("warden-cfg-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gw.yaml");
    std::fs::write(
        &file,
        "listeners:\n  - name: a\n    bind: 127.0.0.1:0\n    tls:\n      certificates: [{ cert: certs/missing.pem, key: /abs/k.pem }]\nservices: []\nroutes: []\n",
    )
    .unwrap();
    let err = crate::load_file(&file).unwrap_err().to_string();
    let joined = dir.join("certs/missing.pem");
    assert!(err.contains(&format!("cannot read `{}`", joined.display())), "{err}");
    assert!(err.contains("cannot read `/abs/k.pem`"), "{err}");
}

#[test]
fn any_of_authentication_needs_two_methods_and_no_anonymous_policy() {
    let one = GOOD.replace(
        "    service: api\n    policies:\n      - type: request_limits",
        "    service: api\n    authentication: any\n    policies:\n      - type: api_key\n      - type: request_limits",
    );
    let got = issues(&one);
    assert!(
        got.iter()
            .any(|i| i.contains("routes[0].authentication") && i.contains("at least two")),
        "{got:?}"
    );
    let anon = GOOD.replace(
        "    service: api\n    policies:\n      - type: request_limits",
        "    service: api\n    authentication: any\n    policies:\n      - type: api_key\n        anonymous: true\n      - type: jwt\n        issuers: [{ issuer: \"https://i\", audiences: [a], algorithms: [HS256], keys: [] }]\n      - type: request_limits",
    );
    let got = issues(&anon);
    assert!(
        got.iter()
            .any(|i| i.contains("routes[0].authentication") && i.contains("anonymous")),
        "{got:?}"
    );
    let bad = GOOD.replace(
        "    service: api\n    policies:",
        "    service: api\n    authentication: some\n    policies:",
    );
    assert!(
        issues(&bad).iter().any(|i| i.contains("authentication")),
        "unknown mode accepted"
    );
}

#[test]
fn identity_tokens_need_the_authorization_server_and_sane_settings() {
    let text = GOOD.replace(
        "    service: api\n    policies:",
        "    service: api\n    identity_token: { header: authorization, ttl_secs: 5 }\n    policies:",
    );
    let got = issues(&text);
    for want in ["needs an `oauth_server`", "ttl_secs", "identity_token.header"] {
        assert!(got.iter().any(|i| i.contains(want)), "{want}: {got:?}");
    }
}

#[test]
fn authentication_and_authorization_policies_cannot_fail_open() {
    let open = GOOD.replace(
        "    service: api\n    policies:\n      - type: request_limits",
        "    service: api\n    policies:\n      - type: api_key\n        on_error: allow\n      - type: request_limits",
    );
    let got = issues(&open);
    assert!(
        got.iter()
            .any(|i| i.contains("routes[0].policies[0].on_error") && i.contains("cannot fail open")),
        "{got:?}"
    );
    // The look-alike: a traffic policy may fail open.
    let limits = GOOD.replace(
        "      - type: request_limits\n        max_body_bytes: 1024",
        "      - type: request_limits\n        max_body_bytes: 1024\n        on_error: allow",
    );
    assert_eq!(issues(&limits), Vec::<String>::new());
}
