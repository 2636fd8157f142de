#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use warden_core::{Decision, Policy, RequestCtx};

use super::{AuthzConfig, Explanation, parse_policies};
use crate::block_on;

const POLICIES: &str = r#"
@id("read-own-or-admin")
permit(principal, action == Action::"GET /users/{user_id}", resource);

@id("admins-delete")
permit(principal in Group::"admin", action == Action::"DELETE /users/{user_id}", resource);

@id("no-office-network")
forbid(principal, action, resource) when { context.ip.isInRange(ip("10.99.0.0/16")) };

@id("mfa-for-exports")
permit(principal, action == Action::"GET /exports", resource) when { context.amr.contains("mfa") };
"#;

fn authz(bind: &str) -> super::Authz {
    let yaml = format!(
        "policies: |\n{}\n{bind}",
        POLICIES
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let cfg: AuthzConfig = serde_saphyr::from_str(&yaml).unwrap();
    cfg.build().unwrap()
}

fn ctx(consumer: &str, groups: &[&str], op: &str, params: &[(&str, &str)], ip: &str) -> RequestCtx {
    let mut c = RequestCtx::new("r".into(), ip.parse().unwrap(), 1024);
    c.consumer = Some(consumer.into());
    c.groups = groups.iter().map(|g| Arc::from(*g)).collect();
    c.operation = Some(op.into());
    c.route_id = Some("users".into());
    c.params = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    c
}

fn parts(method: &str, uri: &str) -> http::request::Parts {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .unwrap()
        .into_parts()
        .0
}

fn explain(a: &super::Authz, method: &str, uri: &str, c: &RequestCtx) -> Explanation {
    a.explain(&parts(method, uri), c)
}

#[test]
fn cedar_errors_name_line_and_column() {
    let errs =
        parse_policies("permit(principal, action, resource);\n\nforbid(principal ==, action, resource);").unwrap_err();
    assert!(errs[0].starts_with("3:"), "{errs:?}");
    let cfg: AuthzConfig = serde_saphyr::from_str("policies: \"permit(principal, action\"\n").unwrap();
    let e = cfg.build().unwrap_err();
    assert!(e[0].message.starts_with("policies:1:"), "{e:?}");
    let cfg: AuthzConfig = serde_saphyr::from_str("policies_file: /nonexistent/x.cedar\n").unwrap();
    assert!(cfg.build().unwrap_err()[0].message.contains("cannot read"));
}

#[test]
fn default_deny_permits_and_forbids_with_the_policy_that_decided() {
    let a = authz("");
    let user = ctx(
        "alice",
        &[],
        "DELETE /users/{user_id}",
        &[("user_id", "bob")],
        "192.0.2.1",
    );
    let e = explain(&a, "DELETE", "/users/bob", &user);
    assert!(!e.allowed);
    assert!(e.determining.is_empty(), "default deny has no determining policy");
    let admin = ctx(
        "root",
        &["admin"],
        "DELETE /users/{user_id}",
        &[("user_id", "bob")],
        "192.0.2.1",
    );
    let e = explain(&a, "DELETE", "/users/bob", &admin);
    assert!(e.allowed);
    assert_eq!(e.determining, ["admins-delete"]);
    let office = ctx(
        "root",
        &["admin"],
        "DELETE /users/{user_id}",
        &[("user_id", "bob")],
        "10.99.3.4",
    );
    let e = explain(&a, "DELETE", "/users/bob", &office);
    assert!(!e.allowed);
    assert_eq!(e.determining, ["no-office-network"]);
}

#[test]
fn mfa_rules_read_the_token_claims() {
    let a = authz("");
    let mut c = ctx("alice", &[], "GET /exports", &[], "192.0.2.1");
    assert!(!explain(&a, "GET", "/exports", &c).allowed);
    c.token_claims = Some(Arc::new(serde_json::from_str(r#"{"amr": ["pwd", "mfa"]}"#).unwrap()));
    assert!(explain(&a, "GET", "/exports", &c).allowed);
}

#[test]
fn bindings_tie_object_ids_to_the_caller_before_cedar_runs() {
    let a = authz("bind:\n  - { path_param: user_id, equals_consumer: true }\n");
    let own = ctx(
        "alice",
        &[],
        "GET /users/{user_id}",
        &[("user_id", "alice")],
        "192.0.2.1",
    );
    assert!(explain(&a, "GET", "/users/alice", &own).allowed);
    let other = ctx("alice", &[], "GET /users/{user_id}", &[("user_id", "bob")], "192.0.2.1");
    let e = explain(&a, "GET", "/users/bob", &other);
    assert!(!e.allowed && e.binding_failed.is_some());
    // Through the policy: 403 that does not say whether bob exists.
    let mut c = other.clone();
    match block_on(a.on_request(&mut parts("GET", "/users/bob"), &mut c)).unwrap() {
        Decision::Reject(r) => {
            assert_eq!(r.kind.status().as_u16(), 403);
            assert_eq!(r.detail.as_deref(), Some("this request is not allowed"));
        }
        Decision::Continue => panic!("bound to another user"),
    }
    // Claim bindings: a list claim holds the ids the caller owns.
    let a = authz("bind:\n  - { query_param: account, equals_claim: accounts }\n");
    let mut c = ctx("alice", &[], "GET /users/{user_id}", &[], "192.0.2.1");
    c.token_claims = Some(Arc::new(
        serde_json::from_str(r#"{"accounts": ["a-1", "a-2"]}"#).unwrap(),
    ));
    assert!(explain(&a, "GET", "/users/x?account=a-2", &c).allowed);
    assert!(!explain(&a, "GET", "/users/x?account=a-3", &c).allowed);
    assert!(!explain(&a, "GET", "/users/x", &c).allowed, "an unbound id is refused");
    assert!(
        !explain(&a, "GET", "/users/x?account=a-1&account=a-3", &c).allowed,
        "two ids: refused"
    );
}

#[test]
fn binding_config_problems_are_listed() {
    let cfg: AuthzConfig =
        serde_saphyr::from_str("policies: \"permit(principal, action, resource);\"\nbind:\n  - { path_param: id }\n  - { equals_consumer: true }\n")
            .unwrap();
    let e = cfg.build().unwrap_err();
    let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["bind[0]", "bind[1]"]);
}

#[test]
fn policies_are_validated_against_a_schema_with_line_and_column() {
    // The checkout's example, found at run time (a path baked in at compile
    // time can name another checkout sharing the target directory).
    let schema = format!(
        "{}/../../examples/authz/users.cedarschema",
        std::env::var("CARGO_MANIFEST_DIR").unwrap()
    );
    let build = |policies: &str| {
        let yaml = format!(
            "schema_file: \"{schema}\"\npolicies: |\n{}\n",
            policies
                .lines()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        serde_saphyr::from_str::<AuthzConfig>(&yaml).unwrap().build()
    };
    // Well typed: accepted.
    build("permit(principal in Group::\"admin\", action == Action::\"DELETE /users/{user_id}\", resource)\nwhen { context.hour >= 9 };").unwrap();
    // A string compared with a number, on line 2; an unknown action.
    let e = build("permit(principal, action, resource)\nwhen { context.hour == \"nine\" };").unwrap_err();
    assert!(e.iter().any(|e| e.message.starts_with("policies:2:")), "{e:?}");
    let e = build("permit(principal, action == Action::\"GET /nope\", resource);").unwrap_err();
    assert!(e.iter().any(|e| e.message.starts_with("policies:1:")), "{e:?}");
    // A broken schema is named with its own line and column.
    let dir = std::env::temp_dir().join(format!("warden-authz-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.cedarschema");
    std::fs::write(&bad, "entity User;\nentity Group in [\n").unwrap();
    let yaml = format!(
        "schema_file: \"{}\"\npolicies: \"permit(principal, action, resource);\"\n",
        bad.display()
    );
    let e = serde_saphyr::from_str::<AuthzConfig>(&yaml)
        .unwrap()
        .build()
        .unwrap_err();
    assert!(
        e[0].path == "schema_file" && e[0].message.starts_with(&format!("{}:2:", bad.display())),
        "{e:?}"
    );
}

#[test]
fn the_decision_cache_answers_exactly_as_cedar_does() {
    let cached = authz("");
    let uncached = authz("cache_entries: 0\n");
    let cases = [
        ("alice", &[][..], "GET /users/{user_id}"),
        ("alice", &[][..], "DELETE /users/{user_id}"),
        ("root", &["admin"][..], "DELETE /users/{user_id}"),
        ("root", &[][..], "DELETE /users/{user_id}"),
        ("alice", &[][..], "GET /exports"),
    ];
    // Twice over, so the second pass is answered from the cache.
    for pass in 0..2 {
        for (who, groups, op) in cases {
            for ip in ["192.0.2.1", "10.99.0.7"] {
                for amr in [None, Some(r#"{"amr": ["mfa"]}"#), Some(r#"{"amr": ["pwd"]}"#)] {
                    let mut c = ctx(who, groups, op, &[("user_id", "bob")], ip);
                    c.token_claims = amr.map(|a| Arc::new(serde_json::from_str(a).unwrap()));
                    let (method, path) = op.split_once(' ').unwrap();
                    let got = explain(&cached, method, path, &c);
                    let want = explain(&uncached, method, path, &c);
                    assert_eq!(
                        (got.allowed, &got.determining),
                        (want.allowed, &want.determining),
                        "pass {pass}: {who} {groups:?} {op} {ip} {amr:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn administrative_routes_need_a_group_and_context_has_headers_and_device() {
    let a = authz("require_groups: [admin, ops]\n");
    let plain = ctx(
        "alice",
        &["users"],
        "DELETE /users/{user_id}",
        &[("user_id", "bob")],
        "192.0.2.1",
    );
    let e = explain(&a, "DELETE", "/users/bob", &plain);
    assert!(!e.allowed && e.binding_failed.is_some(), "{e:?}");
    let mut c = plain.clone();
    match block_on(a.on_request(&mut parts("DELETE", "/users/bob"), &mut c)).unwrap() {
        Decision::Reject(r) => assert_eq!(r.code, "function_not_allowed"),
        Decision::Continue => panic!("a plain user passed an administrative route"),
    }
    // In the group, Cedar still decides (admins-delete permits group admin only).
    let ops = ctx(
        "olga",
        &["ops"],
        "DELETE /users/{user_id}",
        &[("user_id", "bob")],
        "192.0.2.1",
    );
    assert!(!explain(&a, "DELETE", "/users/bob", &ops).allowed);
    let root = ctx(
        "root",
        &["admin"],
        "DELETE /users/{user_id}",
        &[("user_id", "bob")],
        "192.0.2.1",
    );
    assert!(explain(&a, "DELETE", "/users/bob", &root).allowed);

    let cfg: AuthzConfig = serde_saphyr::from_str(concat!(
        "context_headers: [x-tenant]\n",
        "policies: |\n",
        "  permit(principal, action, resource) when { context.headers[\"x-tenant\"] == \"acme\" && context.device != \"bot\" };\n",
    ))
    .unwrap();
    let a = cfg.build().unwrap();
    let c = ctx("alice", &[], "GET /x", &[], "192.0.2.1");
    let call = |tenant: &str, ua: &str| {
        let (p, ()) = http::Request::get("/x")
            .header("x-tenant", tenant)
            .header("user-agent", ua)
            .body(())
            .unwrap()
            .into_parts();
        a.explain(&p, &c).allowed
    };
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    assert!(call("acme", firefox));
    assert!(!call("other", firefox), "the cache must key on the header");
    assert!(!call("acme", "Googlebot/2.1 (+http://www.google.com/bot.html)"));
    assert!(call("acme", "curl/8.5.0"));
    let bad: AuthzConfig =
        serde_saphyr::from_str("context_headers: [X-Tenant]\npolicies: \"permit(principal, action, resource);\"\n")
            .unwrap();
    assert_eq!(bad.build().unwrap_err()[0].path, "context_headers[0]");
}
