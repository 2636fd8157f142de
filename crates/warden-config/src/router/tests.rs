//! Unit tests for the router.

// Tests may unwrap (STYLE.md §6); the workspace lint denies it everywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::Method;

use super::*;

// ---------------------------------------------------------------- router helpers

type Spec<'s> = (Option<&'s str>, Option<&'s [Method]>, PathPattern, &'static str);

fn exact(p: &str) -> PathPattern {
    PathPattern::Exact(p.to_owned())
}

fn prefix(p: &str) -> PathPattern {
    PathPattern::Prefix(p.to_owned())
}

fn template(p: &str) -> PathPattern {
    PathPattern::Template(p.to_owned())
}

fn build(specs: Vec<Spec<'_>>) -> Router<&'static str> {
    let mut builder = RouterBuilder::new();
    for (host, methods, pattern, value) in specs {
        builder.add(host, methods, pattern, value).unwrap();
    }
    builder.build()
}

/// The value found, or `"404"` / `"405"`.
fn route(router: &Router<&'static str>, host: &str, method: Method, path: &str) -> &'static str {
    match router.lookup(host, &method, path) {
        RouteMatch::Found { value, .. } => value,
        RouteMatch::MethodNotAllowed { .. } => "405",
        RouteMatch::NotFound => "404",
    }
}

fn get(router: &Router<&'static str>, path: &str) -> &'static str {
    route(router, "example.com", Method::GET, path)
}

fn params(router: &Router<&'static str>, path: &str) -> Params {
    match router.lookup("example.com", &Method::GET, path) {
        RouteMatch::Found { params, .. } => params,
        other => panic!("{path}: expected a match, got {other:?}"),
    }
}

// ---------------------------------------------------------------- router: paths

#[test]
fn empty_router_finds_nothing() {
    let router: Router<&str> = RouterBuilder::new().build();
    assert!(router.is_empty());
    assert_eq!(router.len(), 0);
    assert_eq!(get(&router, "/"), "404");
}

#[test]
fn exact_matches_only_that_path() {
    let router = build(vec![
        (None, None, exact("/a/b"), "ab"),
        (None, None, exact("/"), "root"),
    ]);
    assert_eq!(router.len(), 2);
    assert_eq!(get(&router, "/a/b"), "ab");
    assert_eq!(get(&router, "/"), "root");
    assert_eq!(get(&router, "/a/b/"), "404");
    assert_eq!(get(&router, "/a/bc"), "404");
    assert_eq!(get(&router, "/a"), "404");
}

#[test]
fn trailing_slash_is_significant_for_exact_and_template() {
    let router = build(vec![
        (None, None, exact("/a/"), "a-slash"),
        (None, None, template("/u/{id}/"), "u-slash"),
    ]);
    assert_eq!(get(&router, "/a/"), "a-slash");
    assert_eq!(get(&router, "/a"), "404");
    assert_eq!(get(&router, "/u/1/"), "u-slash");
    assert_eq!(get(&router, "/u/1"), "404");
}

#[test]
fn prefix_matches_on_segment_boundary() {
    let router = build(vec![(None, None, prefix("/api"), "api")]);
    for path in ["/api", "/api/", "/api/x/y", "/api/x/"] {
        assert_eq!(get(&router, path), "api", "{path}");
    }
    for path in ["/apix", "/ap", "/", "/x/api"] {
        assert_eq!(get(&router, path), "404", "{path}");
    }
}

#[test]
fn prefix_with_trailing_slash_needs_more_path() {
    let router = build(vec![(None, None, prefix("/api/"), "api-slash")]);
    assert_eq!(get(&router, "/api/"), "api-slash");
    assert_eq!(get(&router, "/api/x"), "api-slash");
    assert_eq!(get(&router, "/api"), "404");
}

#[test]
fn root_prefix_matches_everything() {
    let router = build(vec![(None, None, prefix("/"), "all")]);
    for path in ["/", "/a", "/a/b/", "/%3A"] {
        assert_eq!(get(&router, path), "all", "{path}");
    }
}

#[test]
fn longest_prefix_wins() {
    let router = build(vec![
        (None, None, prefix("/"), "root"),
        (None, None, prefix("/api"), "api"),
        (None, None, prefix("/api/"), "api-slash"),
        (None, None, prefix("/api/v1"), "v1"),
    ]);
    assert_eq!(get(&router, "/api/v1/users"), "v1");
    assert_eq!(get(&router, "/api/v1"), "v1");
    assert_eq!(get(&router, "/api/v2"), "api-slash");
    assert_eq!(get(&router, "/api/"), "api-slash");
    assert_eq!(get(&router, "/api"), "api");
    assert_eq!(get(&router, "/apiv1"), "root");
    assert_eq!(get(&router, "/other"), "root");
}

#[test]
fn exact_beats_template_beats_prefix() {
    let router = build(vec![
        (None, None, prefix("/users"), "prefix"),
        (None, None, template("/users/{id}"), "template"),
        (None, None, exact("/users/42"), "exact"),
    ]);
    assert_eq!(get(&router, "/users/42"), "exact");
    assert_eq!(get(&router, "/users/7"), "template");
    assert_eq!(get(&router, "/users/7/orders"), "prefix");
    assert_eq!(get(&router, "/users"), "prefix");
}

#[test]
fn literal_segment_beats_param() {
    let router = build(vec![
        (None, None, template("/users/{id}"), "by-id"),
        (None, None, template("/users/me"), "me"),
        (None, None, template("/{kind}/me/x"), "kind-me"),
        (None, None, template("/users/{id}/x"), "users-id"),
    ]);
    assert_eq!(get(&router, "/users/me"), "me");
    assert_eq!(get(&router, "/users/you"), "by-id");
    // `/users/...` is literal at the first segment, so it wins over `{kind}`.
    assert_eq!(get(&router, "/users/me/x"), "users-id");
    assert_eq!(get(&router, "/teams/me/x"), "kind-me");
}

#[test]
fn template_backtracks_from_literal_to_param() {
    let router = build(vec![
        (None, None, template("/a/b/c"), "abc"),
        (None, None, template("/a/{x}/d"), "axd"),
    ]);
    assert_eq!(get(&router, "/a/b/d"), "axd");
    assert_eq!(get(&router, "/a/b/c"), "abc");
    assert_eq!(get(&router, "/a/b/e"), "404");
}

#[test]
fn params_are_captured_by_name() {
    let router = build(vec![(None, None, template("/users/{id}/orders/{order_id}"), "order")]);
    let p = params(&router, "/users/42/orders/a%3Ab");
    assert_eq!(p.len(), 2);
    assert_eq!(p.get("id"), Some("42"));
    assert_eq!(p.get("order_id"), Some("a%3Ab"));
    assert_eq!(p.get("missing"), None);
    assert_eq!(p.iter().collect::<Vec<_>>(), vec![("id", "42"), ("order_id", "a%3Ab")]);
    assert_eq!(format!("{p:?}"), r#"{"id": "42", "order_id": "a%3Ab"}"#);
}

#[test]
fn params_use_the_names_of_the_matching_route() {
    let router = build(vec![
        (None, Some(&[Method::GET]), template("/u/{id}"), "get"),
        (None, Some(&[Method::DELETE]), template("/u/{user}"), "delete"),
    ]);
    match router.lookup("h", &Method::DELETE, "/u/9") {
        RouteMatch::Found { value, params } => {
            assert_eq!(*value, "delete");
            assert_eq!(params.get("user"), Some("9"));
            assert_eq!(params.get("id"), None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(params(&router, "/u/9").get("id"), Some("9"));
}

#[test]
fn non_template_routes_have_no_params() {
    let router = build(vec![
        (None, None, exact("/e"), "e"),
        (None, None, prefix("/p"), "p"),
        (None, None, template("/t"), "t"),
    ]);
    for path in ["/e", "/p/x", "/t"] {
        let p = params(&router, path);
        assert!(p.is_empty());
        assert_eq!(p, Params::default());
    }
}

#[test]
fn param_never_matches_an_empty_segment() {
    let router = build(vec![(None, None, template("/a/{x}"), "ax")]);
    assert_eq!(get(&router, "/a/"), "404");
    assert_eq!(get(&router, "/a/y"), "ax");
    assert_eq!(get(&router, "/a/y/"), "404");
}

#[test]
fn unnormalised_or_relative_lookup_paths_do_not_panic() {
    let router = build(vec![(None, None, prefix("/"), "all")]);
    assert_eq!(get(&router, ""), "404");
    assert_eq!(get(&router, "a"), "404");
}

#[test]
fn attack_paths_route_as_their_normal_form() {
    let router = build(vec![
        (None, None, prefix("/public"), "public"),
        (None, None, prefix("/admin"), "admin"),
    ]);
    for raw in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "//admin",
    ] {
        let path = normalize_path(raw).unwrap();
        assert_eq!(get(&router, &path), "admin", "{raw}");
    }
    assert_eq!(normalize_path("/admin%2F.."), Err(PathError::EncodedSlash));
}

// ---------------------------------------------------------------- router: hosts

#[test]
fn hosts_are_matched_case_insensitively_without_port() {
    let router = build(vec![(Some("API.Example.com"), None, prefix("/"), "api")]);
    for host in [
        "api.example.com",
        "API.EXAMPLE.COM",
        "api.example.com:8443",
        "api.example.com.",
    ] {
        assert_eq!(route(&router, host, Method::GET, "/x"), "api", "{host}");
    }
    assert_eq!(route(&router, "other.example.com", Method::GET, "/x"), "404");
    assert_eq!(route(&router, "", Method::GET, "/x"), "404");
}

#[test]
fn ipv6_hosts_keep_brackets_and_lose_port() {
    let router = build(vec![(Some("[::1]"), None, prefix("/"), "v6")]);
    assert_eq!(route(&router, "[::1]:8080", Method::GET, "/"), "v6");
    assert_eq!(route(&router, "[::1]", Method::GET, "/"), "v6");
}

#[test]
fn wildcard_hosts_match_one_or_more_labels() {
    let router = build(vec![(Some("*.example.com"), None, prefix("/"), "wild")]);
    assert_eq!(route(&router, "a.example.com", Method::GET, "/"), "wild");
    assert_eq!(route(&router, "a.b.example.com:80", Method::GET, "/"), "wild");
    assert_eq!(route(&router, "A.Example.COM", Method::GET, "/"), "wild");
    assert_eq!(route(&router, "example.com", Method::GET, "/"), "404");
    assert_eq!(route(&router, "badexample.com", Method::GET, "/"), "404");
    assert_eq!(route(&router, ".example.com", Method::GET, "/"), "404");
}

#[test]
fn host_specificity_exact_then_longest_wildcard_then_any() {
    let router = build(vec![
        (None, None, prefix("/"), "any"),
        (Some("*.com"), None, prefix("/"), "dot-com"),
        (Some("*.example.com"), None, prefix("/"), "example"),
        (Some("*.b.example.com"), None, prefix("/"), "b-example"),
        (Some("api.b.example.com"), None, prefix("/"), "api"),
    ]);
    let at = |host| route(&router, host, Method::GET, "/x");
    assert_eq!(at("api.b.example.com"), "api");
    assert_eq!(at("x.b.example.com"), "b-example");
    assert_eq!(at("x.example.com"), "example");
    assert_eq!(at("other.com"), "dot-com");
    assert_eq!(at("localhost"), "any");
}

#[test]
fn less_specific_host_only_when_no_path_matches() {
    let router = build(vec![
        (Some("api.example.com"), None, exact("/only"), "api-only"),
        (
            Some("api.example.com"),
            Some(&[Method::POST]),
            exact("/post"),
            "api-post",
        ),
        (Some("*.example.com"), None, exact("/wild"), "wild"),
        (None, None, prefix("/"), "fallback"),
    ]);
    let at = |method, path| route(&router, "api.example.com", method, path);
    assert_eq!(at(Method::GET, "/only"), "api-only");
    assert_eq!(at(Method::GET, "/wild"), "wild");
    assert_eq!(at(Method::GET, "/else"), "fallback");
    // A path match in the exact host table is final, even as a 405.
    assert_eq!(at(Method::GET, "/post"), "405");
}

// ---------------------------------------------------------------- router: methods

#[test]
fn methods_select_routes_of_one_pattern() {
    let router = build(vec![
        (None, Some(&[Method::GET, Method::HEAD]), exact("/r"), "read"),
        (None, Some(&[Method::POST]), exact("/r"), "write"),
    ]);
    assert_eq!(route(&router, "h", Method::GET, "/r"), "read");
    assert_eq!(route(&router, "h", Method::HEAD, "/r"), "read");
    assert_eq!(route(&router, "h", Method::POST, "/r"), "write");
    assert_eq!(
        router.lookup("h", &Method::DELETE, "/r"),
        RouteMatch::MethodNotAllowed {
            allow: vec![Method::GET, Method::HEAD, Method::POST]
        }
    );
}

#[test]
fn method_falls_back_to_less_specific_pattern() {
    let router = build(vec![
        (None, Some(&[Method::GET]), template("/users/{id}"), "get-user"),
        (None, None, prefix("/"), "catch-all"),
    ]);
    assert_eq!(route(&router, "h", Method::GET, "/users/7"), "get-user");
    assert_eq!(route(&router, "h", Method::DELETE, "/users/7"), "catch-all");
}

#[test]
fn method_not_allowed_lists_union_of_matching_patterns() {
    let router = build(vec![
        (None, Some(&[Method::GET]), exact("/users/me"), "me"),
        (None, Some(&[Method::PUT, Method::GET]), template("/users/{id}"), "user"),
        (None, Some(&[Method::POST]), prefix("/users"), "users"),
        (None, Some(&[Method::PATCH]), prefix("/other"), "other"),
    ]);
    assert_eq!(route(&router, "h", Method::POST, "/users/me"), "users");
    assert_eq!(
        router.lookup("h", &Method::DELETE, "/users/me"),
        RouteMatch::MethodNotAllowed {
            allow: vec![Method::GET, Method::POST, Method::PUT]
        }
    );
    assert_eq!(router.lookup("h", &Method::DELETE, "/nothing"), RouteMatch::NotFound);
}

#[test]
fn extension_methods_work() {
    let purge = Method::from_bytes(b"PURGE").unwrap();
    let router = build(vec![(None, Some(std::slice::from_ref(&purge)), exact("/c"), "purge")]);
    assert_eq!(route(&router, "h", purge, "/c"), "purge");
    assert_eq!(
        router.lookup("h", &Method::GET, "/c"),
        RouteMatch::MethodNotAllowed {
            allow: vec![Method::from_bytes(b"PURGE").unwrap()]
        }
    );
}

// ---------------------------------------------------------------- router: errors

fn add_err(host: Option<&str>, methods: Option<&[Method]>, pattern: PathPattern) -> RouteError {
    RouterBuilder::<()>::new().add(host, methods, pattern, ()).unwrap_err()
}

#[test]
fn patterns_must_be_normal_paths() {
    for raw in [
        "", "api", "/a//b", "/a/./b", "/a/../b", "/a/%2F", "/a%3a", "/%41", "/café", "/a\\b",
    ] {
        for pattern in [exact(raw), prefix(raw), template(raw)] {
            let err = add_err(None, None, pattern.clone());
            assert!(matches!(err, RouteError::InvalidPattern { .. }), "{pattern}: {err:?}");
        }
    }
    let err = add_err(None, None, exact("/a/../b")).to_string();
    assert_eq!(
        err,
        "invalid path pattern `/a/../b`: not a normal path; write it as `/b`"
    );
    let err = add_err(None, None, prefix("/a%2Fb")).to_string();
    assert!(err.contains("encoded slash"), "{err}");
}

#[test]
fn template_syntax_is_checked() {
    let cases = [
        ("/users/{}", "empty parameter name"),
        ("/users/x{id}", "whole segment"),
        ("/users/{id", "whole segment"),
        ("/users/{a-b}", "ASCII letters"),
        ("/{id}/{id}", "appears twice"),
    ];
    for (raw, needle) in cases {
        let err = add_err(None, None, template(raw)).to_string();
        assert!(err.contains(needle), "{raw}: {err}");
    }
    let err = add_err(None, None, exact("/users/{id}")).to_string();
    assert!(err.contains("only allowed in template"), "{err}");
}

#[test]
fn hosts_are_checked() {
    for host in [
        "",
        "*",
        "*example.com",
        "a.*.com",
        "api.example.com:8443",
        "a..b",
        "a b",
        "[::1",
        "[zz]",
    ] {
        let err = add_err(Some(host), None, prefix("/"));
        assert!(matches!(err, RouteError::InvalidHost { .. }), "{host:?}: {err:?}");
    }
}

#[test]
fn empty_method_list_is_refused() {
    let err = add_err(None, Some(&[]), exact("/a"));
    assert_eq!(
        err,
        RouteError::NoMethods {
            pattern: "exact `/a`".to_owned()
        }
    );
}

#[test]
fn duplicates_are_refused_and_named() {
    let mut builder = RouterBuilder::new();
    builder
        .add(None, Some(&[Method::GET]), template("/users/{id}"), 1)
        .unwrap();
    let err = builder
        .add(None, Some(&[Method::POST, Method::GET]), template("/users/{uid}"), 2)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate route (POST,GET template `/users/{uid}` on any host) overlaps \
         (GET template `/users/{id}` on any host): same host, same pattern, overlapping methods"
    );
    // Any method overlaps everything.
    builder.add(Some("a.example.com"), None, exact("/x"), 3).unwrap();
    let err = builder.add(Some("A.example.com"), Some(&[Method::GET]), exact("/x"), 4);
    assert!(matches!(err, Err(RouteError::Duplicate { .. })), "{err:?}");
    // Wildcard duplicates too.
    builder.add(Some("*.example.com"), None, prefix("/p/"), 5).unwrap();
    let err = builder.add(Some("*.EXAMPLE.com"), None, prefix("/p/"), 6);
    assert!(matches!(err, Err(RouteError::Duplicate { .. })), "{err:?}");
    // Failed adds are not counted.
    assert_eq!(builder.build().len(), 3);
}

#[test]
fn same_path_in_different_kinds_or_hosts_is_not_a_duplicate() {
    let mut builder = RouterBuilder::new();
    builder.add(None, None, exact("/a"), 1).unwrap();
    builder.add(None, None, prefix("/a"), 2).unwrap();
    builder.add(None, None, prefix("/a/"), 3).unwrap();
    builder.add(None, None, template("/a"), 4).unwrap();
    builder.add(Some("h.example.com"), None, exact("/a"), 5).unwrap();
    builder.add(Some("*.example.com"), None, exact("/a"), 6).unwrap();
    builder.add(None, Some(&[Method::GET]), exact("/b"), 7).unwrap();
    builder.add(None, Some(&[Method::POST]), exact("/b"), 8).unwrap();
    assert_eq!(builder.build().len(), 8);
}

#[test]
fn duplicate_methods_in_one_list_are_merged() {
    let router = build(vec![(None, Some(&[Method::GET, Method::GET]), exact("/a"), "a")]);
    assert_eq!(
        router.lookup("h", &Method::POST, "/a"),
        RouteMatch::MethodNotAllowed {
            allow: vec![Method::GET]
        }
    );
}

// ---------------------------------------------------------------- router: scale

/// The route value for index `i` of the large table, with its host and a path it
/// must answer.
fn large_spec(i: usize) -> (Option<String>, PathPattern, String) {
    let host = match i % 5 {
        0 => Some(format!("svc{}.example.com", i % 7)),
        1 => Some("*.tenants.example.com".to_owned()),
        _ => None,
    };
    let (pattern, probe) = match i % 3 {
        0 => (exact(&format!("/exact/{i}/item")), format!("/exact/{i}/item")),
        1 => (prefix(&format!("/prefix/{i}")), format!("/prefix/{i}/deep/er")),
        _ => (template(&format!("/t/{i}/{{id}}/x")), format!("/t/{i}/abc/x")),
    };
    (host, pattern, probe)
}

#[test]
fn thousand_route_table_answers_every_route() {
    let mut builder = RouterBuilder::new();
    for i in 0..1000 {
        let (host, pattern, _) = large_spec(i);
        builder.add(host.as_deref(), None, pattern, i).unwrap();
    }
    let router = builder.build();
    assert_eq!(router.len(), 1000);
    for i in 0..1000 {
        let (host, _, probe) = large_spec(i);
        let request_host = match host.as_deref() {
            Some("*.tenants.example.com") => "acme.tenants.example.com".to_owned(),
            Some(h) => format!("{}:443", h.to_uppercase()),
            None => "unrelated.test".to_owned(),
        };
        match router.lookup(&request_host, &Method::GET, &probe) {
            RouteMatch::Found { value, params } => {
                assert_eq!(*value, i, "{request_host} {probe}");
                if i % 3 == 2 {
                    assert_eq!(params.get("id"), Some("abc"));
                }
            }
            other => panic!("{request_host} {probe}: {other:?}"),
        }
    }
    assert_eq!(
        router.lookup("unrelated.test", &Method::GET, "/exact/0/item"),
        RouteMatch::NotFound
    );
    assert_eq!(
        router.lookup("svc0.example.com", &Method::GET, "/prefix/1000"),
        RouteMatch::NotFound
    );
    assert_eq!(
        router.lookup("x.tenants.example.com", &Method::GET, "/t/2/"),
        RouteMatch::NotFound
    );
}
