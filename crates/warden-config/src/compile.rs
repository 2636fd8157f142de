//! Stage two: semantic validation and compilation into a [`Snapshot`].
//!
//! Every check runs even after earlier ones failed, so one pass lists every
//! problem. Nothing is compiled lazily: regexes, CIDRs, routes and policies are
//! all built here, never on the request path.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderName, Method};
use warden_core::Policy;
use warden_policies::ip_rules::NetList;
use warden_policies::{PolicyKind, PolicySpec};
use warden_tls::config::ClientAuthMode;
use warden_tls::{ServerTls, UpstreamTls};

use crate::error::Issues;
use crate::load::Parsed;
use crate::router::{PathPattern, RouterBuilder};
use crate::schema::{FileConfig, PathConfig, PlainHttp, ServiceConfig};
use crate::snapshot::{ListenerRuntime, PolicyInstance, RouteRuntime, Snapshot};

const MAX_RETRIES: u32 = 5;

/// Validates and compiles; returns every issue found on failure.
pub(crate) fn compile(parsed: Parsed, issues: &mut Issues) -> Option<Snapshot> {
    let Parsed {
        config,
        policies: specs,
        service_names,
        index,
    } = parsed;
    let (listeners, identity_headers) = check_listeners(&config, &index.listeners, issues);
    let mtls_listener = config.listeners.iter().any(|l| {
        l.tls
            .as_ref()
            .is_some_and(|t| t.client_auth.mode != ClientAuthMode::Off)
    });
    check_limits(&config, issues);
    if let Some(store) = &config.store {
        for (key, message) in store.problems() {
            issues.push(format!("store.{key}"), message);
        }
    }
    for (key, message) in config.shared_state.problems() {
        issues.push(format!("shared_state.{key}"), message);
    }
    check_consumers(&config.consumers, issues);
    let trusted_proxies = parse_nets(&config.trusted_proxies, issues);
    let mut services: HashSet<&str> = check_services(&config.services, &index.services, issues);
    let upstream_tls = load_upstream_tls(&config.services, &index.services, issues);
    services.extend(service_names.iter().map(String::as_str));
    let mut router = RouterBuilder::new();
    let mut routes = Vec::new();
    let mut ids = HashSet::new();
    for ((route, specs), i) in config.routes.iter().zip(specs).zip(&index.routes) {
        let at = format!("routes[{i}]");
        if route.id.trim().is_empty() {
            issues.push(format!("{at}.id"), "must not be empty");
        } else if !ids.insert(route.id.as_str()) {
            issues.push(format!("{at}.id"), format!("duplicate route id `{}`", route.id));
        }
        if !services.contains(route.service.as_str()) {
            issues.push(format!("{at}.service"), format!("no service named `{}`", route.service));
        }
        if route.max_body_bytes == Some(0) {
            issues.push(format!("{at}.max_body_bytes"), "must be greater than 0");
        }
        if route.id.starts_with("warden:") {
            issues.push(
                format!("{at}.id"),
                "ids starting with `warden:` are reserved for built-in routes",
            );
        }
        check_builtin_issuers(&specs, config.oauth_server.as_ref(), &at, issues);
        if let Some(rule) = &route.client_cert {
            if !mtls_listener {
                issues.push(
                    format!("{at}.client_cert"),
                    "no listener asks for client certificates (set tls.client_auth.mode on one)",
                );
            }
            for (j, a) in rule.allow.iter().enumerate() {
                if let Some(problem) = a.check() {
                    issues.push(format!("{at}.client_cert.allow[{j}]"), problem);
                }
            }
        }
        let methods = parse_methods(&route.methods, &at, issues);
        let any_auth_challenges = any_auth(route.authentication, &specs, &at, issues);
        let identity_token = route
            .identity_token
            .as_ref()
            .and_then(|t| identity_token(t, config.oauth_server.is_some(), &at, issues));
        let policies = build_policies(&specs, &at, issues);
        let has_authz = policies
            .iter()
            .any(|p| matches!(p.policy, warden_policies::CompiledPolicy::Authz(_)));
        let needs_body = policies.iter().any(|p| p.policy.needs_request_body());
        let response_body_limit = policies.iter().filter_map(|p| p.policy.response_body_limit()).max();
        let runtime = Arc::new(RouteRuntime {
            id: Arc::from(route.id.as_str()),
            service: Arc::from(route.service.as_str()),
            policies,
            max_body_bytes: route.max_body_bytes.unwrap_or(config.limits.max_body_bytes),
            upstream_errors: route.upstream_errors,
            security_headers: route.security_headers,
            needs_body,
            response_body_limit,
            client_cert: route.client_cert.clone(),
            builtin: None,
            any_auth_challenges,
            pattern: Arc::from(match &route.path {
                PathConfig::Exact(p) | PathConfig::Template(p) => p.clone(),
                PathConfig::Prefix(p) => format!("{}*", p),
            }),
            has_authz,
            identity_token,
        });
        routes.push(Arc::clone(&runtime));
        let pattern = match &route.path {
            PathConfig::Exact(p) => PathPattern::Exact(p.clone()),
            PathConfig::Prefix(p) => PathPattern::Prefix(p.clone()),
            PathConfig::Template(p) => PathPattern::Template(p.clone()),
        };
        let hosts: Vec<Option<&str>> = if route.hosts.is_empty() {
            vec![None]
        } else {
            route.hosts.iter().map(|h| Some(h.as_str())).collect()
        };
        for (h, host) in hosts.into_iter().enumerate() {
            if let Some(name) = host
                && !valid_host_pattern(name)
            {
                issues.push(
                    format!("{at}.hosts[{h}]"),
                    format!("`{name}` is not a host name or `*.suffix` wildcard"),
                );
                continue;
            }
            if let Err(e) = router.add(host, methods.as_deref(), pattern.clone(), runtime.clone()) {
                issues.push(format!("{at}.path"), e.to_string());
            }
        }
    }
    if let Some(oauth) = &config.oauth_server {
        mount_oauth_server(oauth, &mut router, &mut routes, issues);
    }
    if !issues.0.is_empty() {
        return None;
    }
    Some(Snapshot {
        router: router.build(),
        limits: config.limits.clone(),
        trusted_proxies,
        listeners,
        identity_headers,
        upstream_tls,
        routes,
        config,
    })
}

type Listeners = (Vec<Arc<ListenerRuntime>>, Vec<HeaderName>);

fn check_listeners(config: &FileConfig, index: &[usize], issues: &mut Issues) -> Listeners {
    let mut compiled = Vec::new();
    let mut identity_headers: Vec<HeaderName> = Vec::new();
    for (l, i) in config.listeners.iter().zip(index) {
        let at = format!("listeners[{i}]");
        let tls = l.tls.as_ref().and_then(|t| match ServerTls::load(t) {
            Ok(s) => Some(Arc::new(s)),
            Err(problems) => {
                for p in problems {
                    issues.push(format!("{at}.tls.{}", p.path), p.message);
                }
                None
            }
        });
        if l.tls.is_some() && l.plain_http.is_some() {
            issues.push(format!("{at}.plain_http"), "only for listeners without `tls`");
        }
        if l.https_port.is_some() && l.plain_http != Some(PlainHttp::Redirect) {
            issues.push(format!("{at}.https_port"), "only used with `plain_http: redirect`");
        }
        let identity_header = l
            .tls
            .as_ref()
            .and_then(|t| t.client_auth.identity_header.as_deref())
            .and_then(|name| match HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) if warden_core::headers::is_reserved_or_ambiguous(h.as_str()) => {
                    issues.push(
                        format!("{at}.tls.client_auth.identity_header"),
                        format!("`{name}` is reserved or ambiguous; choose a dedicated name such as `x-client-cert`"),
                    );
                    None
                }
                Ok(h) => Some(h),
                Err(_) => {
                    issues.push(
                        format!("{at}.tls.client_auth.identity_header"),
                        format!("`{name}` is not a header name"),
                    );
                    None
                }
            });
        if let Some(h) = &identity_header
            && !identity_headers.contains(h)
        {
            identity_headers.push(h.clone());
        }
        compiled.push(Arc::new(ListenerRuntime {
            name: Arc::from(l.name.as_str()),
            tls,
            plain_http: l.plain_http.unwrap_or_default(),
            https_port: l.https_port.unwrap_or(443),
            identity_header,
        }));
    }
    check_listener_names(config, index, issues);
    (compiled, identity_headers)
}

fn check_listener_names(config: &FileConfig, index: &[usize], issues: &mut Issues) {
    if config.listeners.is_empty() {
        issues.push("listeners", "at least one listener is required");
    }
    let mut names = HashSet::new();
    let mut binds = HashSet::new();
    for (l, i) in config.listeners.iter().zip(index) {
        if !names.insert(l.name.as_str()) {
            issues.push(
                format!("listeners[{i}].name"),
                format!("duplicate listener name `{}`", l.name),
            );
        }
        match l.bind.parse::<SocketAddr>() {
            Ok(addr) if !binds.insert(addr) => {
                issues.push(format!("listeners[{i}].bind"), format!("{addr} is bound twice"));
            }
            Ok(_) => {}
            Err(_) => issues.push(
                format!("listeners[{i}].bind"),
                format!("`{}` is not an ip:port address", l.bind),
            ),
        }
    }
    if let Some(bind) = &config.admin.bind
        && bind.parse::<SocketAddr>().is_err()
    {
        issues.push("admin.bind", format!("`{bind}` is not an ip:port address"));
    }
    if let Some(file) = &config.admin.api_token_file
        && let Err(e) = crate::schema::read_admin_token(file)
    {
        issues.push("admin.api_token_file", e);
    }
}

fn check_limits(config: &FileConfig, issues: &mut Issues) {
    let l = &config.limits;
    let positive: [(&str, u64); 13] = [
        ("max_header_bytes", l.max_header_bytes as u64),
        ("max_headers", l.max_headers as u64),
        ("max_uri_bytes", l.max_uri_bytes as u64),
        ("max_body_bytes", l.max_body_bytes),
        ("header_read_timeout_ms", l.header_read_timeout_ms),
        ("body_read_timeout_ms", l.body_read_timeout_ms),
        ("idle_timeout_secs", l.idle_timeout_secs),
        ("max_connections", l.max_connections as u64),
        ("max_h2_streams", u64::from(l.max_h2_streams)),
        ("max_connections_per_ip", l.max_connections_per_ip as u64),
        ("max_in_flight", l.max_in_flight as u64),
        ("max_h2_pending_resets", l.max_h2_pending_resets as u64),
        (
            "max_h2_control_frames_per_sec",
            u64::from(l.max_h2_control_frames_per_sec),
        ),
    ];
    for (key, v) in positive {
        if v == 0 {
            issues.push(format!("limits.{key}"), "must be greater than 0 (every cap stays on)");
        }
    }
    if l.max_header_bytes > 1024 * 1024 {
        issues.push("limits.max_header_bytes", "must be at most 1048576");
    }
    if l.max_uri_bytes > 65_534 {
        issues.push("limits.max_uri_bytes", "must be at most 65534");
    }
}

fn load_upstream_tls(
    services: &[ServiceConfig],
    index: &[usize],
    issues: &mut Issues,
) -> HashMap<String, Arc<UpstreamTls>> {
    let mut out = HashMap::new();
    for (s, i) in services.iter().zip(index) {
        let Some(cfg) = &s.tls else { continue };
        match UpstreamTls::load(cfg) {
            Ok(t) => {
                out.insert(s.name.clone(), Arc::new(t));
            }
            Err(problems) => {
                for p in problems {
                    issues.push(format!("services[{i}].tls.{}", p.path), p.message);
                }
            }
        }
    }
    out
}

fn check_services<'a>(services: &'a [ServiceConfig], index: &[usize], issues: &mut Issues) -> HashSet<&'a str> {
    let mut names = HashSet::new();
    for (s, i) in services.iter().zip(index) {
        let at = format!("services[{i}]");
        if s.name.trim().is_empty() {
            issues.push(format!("{at}.name"), "must not be empty");
        } else if !names.insert(s.name.as_str()) {
            issues.push(format!("{at}.name"), format!("duplicate service name `{}`", s.name));
        }
        if s.targets.is_empty() {
            issues.push(format!("{at}.targets"), "at least one target is required");
        }
        for (j, t) in s.targets.iter().enumerate() {
            if !valid_target(t) {
                issues.push(format!("{at}.targets[{j}]"), format!("`{t}` is not host:port"));
            }
        }
        let t = &s.timeouts;
        for (key, v) in [
            ("connect_ms", t.connect_ms),
            ("first_byte_ms", t.first_byte_ms),
            ("total_ms", t.total_ms),
        ] {
            if v == 0 {
                issues.push(format!("{at}.timeouts.{key}"), "must be greater than 0");
            }
        }
        if s.retries.attempts > MAX_RETRIES {
            issues.push(
                format!("{at}.retries.attempts"),
                format!("must be at most {MAX_RETRIES}"),
            );
        }
        if let Some(a) = &s.health.active {
            if !a.path.starts_with('/') {
                issues.push(format!("{at}.health.active.path"), "must start with `/`");
            }
            if a.interval_ms < 100 {
                issues.push(format!("{at}.health.active.interval_ms"), "must be at least 100");
            }
            if a.timeout_ms == 0 {
                issues.push(format!("{at}.health.active.timeout_ms"), "must be greater than 0");
            }
            if a.healthy_threshold == 0 || a.unhealthy_threshold == 0 {
                issues.push(format!("{at}.health.active"), "thresholds must be at least 1");
            }
        }
        if s.health.passive.consecutive_failures > 0 && s.health.passive.cooldown_secs == 0 {
            issues.push(
                format!("{at}.health.passive.cooldown_secs"),
                "must be greater than 0 when ejection is on",
            );
        }
    }
    names
}

fn valid_target(t: &str) -> bool {
    if t.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match t.rsplit_once(':') {
        Some((host, port)) => port.parse::<u16>().is_ok_and(|p| p > 0) && !host.is_empty() && valid_host_name(host),
        None => false,
    }
}

fn valid_host_name(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn valid_host_pattern(h: &str) -> bool {
    let name = h.strip_prefix("*.").unwrap_or(h);
    valid_host_name(name) || name.parse::<std::net::IpAddr>().is_ok()
}

fn parse_nets(items: &[String], issues: &mut Issues) -> NetList {
    let mut errors = Vec::new();
    let nets = NetList::parse("trusted_proxies", items, &mut errors);
    for e in errors {
        issues.push(e.path, e.message);
    }
    nets
}

fn parse_methods(methods: &[String], at: &str, issues: &mut Issues) -> Option<Vec<Method>> {
    if methods.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (j, m) in methods.iter().enumerate() {
        let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
        match Method::from_bytes(m.as_bytes()) {
            Ok(method) if ok => out.push(method),
            _ => issues.push(
                format!("{at}.methods[{j}]"),
                format!("`{m}` is not an upper-case HTTP method"),
            ),
        }
    }
    Some(out)
}

fn build_policies(specs: &[PolicySpec], at: &str, issues: &mut Issues) -> Vec<PolicyInstance> {
    let mut seen = HashMap::new();
    let mut built = Vec::new();
    for (j, spec) in specs.iter().enumerate() {
        let path = format!("{at}.policies[{j}]");
        if let Some(first) = seen.insert(spec.kind(), j) {
            issues.push(
                &path,
                format!(
                    "`{}` already appears at policies[{first}]; one entry per kind",
                    spec.kind().name()
                ),
            );
            continue;
        }
        match spec.build() {
            Ok(policy) => built.push((
                spec.kind(),
                PolicyInstance {
                    policy,
                    on_error: spec.on_error(),
                },
            )),
            Err(errs) => {
                for e in errs {
                    let p = if e.path.is_empty() {
                        path.clone()
                    } else {
                        format!("{path}.{}", e.path)
                    };
                    issues.push(p, e.message);
                }
            }
        }
    }
    built.sort_by_key(|(kind, _)| *kind);
    let mut policies: Vec<PolicyInstance> = built.into_iter().map(|(_, p)| p).collect();
    warden_policies::link(policies.iter_mut().map(|p| &mut p.policy));
    policies
}

/// Adds the authorization server's endpoints as built-in routes (exact paths,
/// any host, no policies).
fn mount_oauth_server(
    oauth: &warden_oauth::OAuthServerConfig,
    router: &mut RouterBuilder<Arc<RouteRuntime>>,
    routes: &mut Vec<Arc<RouteRuntime>>,
    issues: &mut Issues,
) {
    let problems = oauth.problems();
    for (key, message) in &problems {
        issues.push(format!("oauth_server.{key}"), message.clone());
    }
    if !problems.is_empty() {
        return;
    }
    let allowed = [PolicyKind::IpRules, PolicyKind::RequestLimits, PolicyKind::RateLimit];
    for (i, spec) in oauth.policies.iter().enumerate() {
        if !allowed.contains(&spec.kind()) {
            issues.push(
                format!("oauth_server.policies[{i}]"),
                format!(
                    "`{}` does not apply to the built-in endpoints; use ip_rules, request_limits or rate_limit",
                    spec.kind().name()
                ),
            );
        }
    }
    for (n, (endpoint, path, method)) in warden_oauth::Endpoint::all(oauth).into_iter().enumerate() {
        // Each endpoint gets its own compiled copy (its own counters,
        // unless a rate limit names a shared `bucket`); problems are
        // reported once.
        let policies = if n == 0 {
            build_policies(&oauth.policies, "oauth_server", issues)
        } else {
            build_policies(&oauth.policies, "oauth_server", &mut Issues::default())
        };
        let runtime = Arc::new(RouteRuntime {
            id: Arc::from(endpoint.route_id()),
            service: Arc::from(""),
            policies,
            // Token requests are small forms.
            max_body_bytes: 16 * 1024,
            upstream_errors: crate::schema::UpstreamErrors::default(),
            security_headers: true,
            needs_body: false,
            response_body_limit: None,
            client_cert: None,
            builtin: Some(endpoint),
            any_auth_challenges: Vec::new(),
            pattern: Arc::from(path.as_str()),
            has_authz: false,
            identity_token: None,
        });
        routes.push(Arc::clone(&runtime));
        if let Err(e) = router.add(None, Some(&[method]), PathPattern::Exact(path.clone()), runtime) {
            issues.push(
                "oauth_server.path_prefix",
                format!("cannot serve {path}: {e} (a route already uses that path)"),
            );
        }
    }
}

/// A `jwt` issuer with `builtin: true` needs an `oauth_server` with that issuer.
fn check_builtin_issuers(
    specs: &[warden_policies::PolicySpec],
    oauth: Option<&warden_oauth::OAuthServerConfig>,
    at: &str,
    issues: &mut Issues,
) {
    for (j, spec) in specs.iter().enumerate() {
        let warden_policies::PolicySpec::Jwt(jwt) = spec else {
            continue;
        };
        for (i, iss) in jwt.issuers.iter().enumerate().filter(|(_, i)| i.builtin) {
            let path = format!("{at}.policies[{j}].issuers[{i}].issuer");
            match oauth {
                None => issues.push(path, "`builtin: true` needs an `oauth_server` section"),
                Some(o) if o.issuer != iss.issuer => issues.push(
                    path,
                    format!("a built-in issuer must be the oauth_server issuer `{}`", o.issuer),
                ),
                Some(_) => {}
            }
        }
    }
}

/// `authentication: any`: needs two authentication policies, none of them
/// `anonymous` (the route as a whole decides that no credential means 401).
/// Returns the challenges for that 401.
fn any_auth(
    mode: crate::schema::AuthMode,
    specs: &[warden_policies::PolicySpec],
    at: &str,
    issues: &mut Issues,
) -> Vec<http::HeaderValue> {
    use warden_policies::PolicySpec;
    if mode == crate::schema::AuthMode::All {
        return Vec::new();
    }
    let mut challenges = Vec::new();
    for spec in specs {
        match spec {
            PolicySpec::Jwt(c) => {
                if c.anonymous {
                    issues.push(
                        format!("{at}.authentication"),
                        "`any` decides for the whole route; remove `anonymous` from the jwt policy",
                    );
                }
                challenges.push(http::HeaderValue::from_static(r#"Bearer realm="warden""#));
            }
            PolicySpec::ApiKey(c) => {
                if c.anonymous {
                    issues.push(
                        format!("{at}.authentication"),
                        "`any` decides for the whole route; remove `anonymous` from the api_key policy",
                    );
                }
                challenges.push(http::HeaderValue::from_static(r#"ApiKey realm="warden""#));
            }
            _ => {}
        }
    }
    if challenges.len() < 2 {
        issues.push(
            format!("{at}.authentication"),
            "`any` needs at least two authentication policies (jwt, api_key)",
        );
    }
    challenges
}

fn identity_token(
    cfg: &crate::schema::IdentityTokenConfig,
    have_server: bool,
    at: &str,
    issues: &mut Issues,
) -> Option<(http::HeaderName, u64)> {
    let before = issues.0.len();
    if !have_server {
        issues.push(
            format!("{at}.identity_token"),
            "needs an `oauth_server` section (its keys sign the token; upstreams verify it with its JWKS)",
        );
    }
    if !(10..=300).contains(&cfg.ttl_secs) {
        issues.push(format!("{at}.identity_token.ttl_secs"), "must be between 10 and 300");
    }
    let header = match http::HeaderName::from_bytes(cfg.header.as_bytes()) {
        Ok(h) if !warden_core::headers::is_reserved_or_ambiguous(h.as_str()) => Some(h),
        _ => {
            issues.push(
                format!("{at}.identity_token.header"),
                format!("`{}` is not a header name the gateway may write", cfg.header),
            );
            None
        }
    };
    if issues.0.len() > before {
        return None;
    }
    header.map(|h| (h, cfg.ttl_secs))
}

fn check_consumers(consumers: &[warden_store::DeclaredConsumer], issues: &mut Issues) {
    let mut seen = HashSet::new();
    for (i, c) in consumers.iter().enumerate() {
        if let Err(e) = warden_store::check_name("consumer name", &c.name) {
            issues.push(format!("consumers[{i}].name"), e.to_string());
        } else if !seen.insert(c.name.as_str()) {
            issues.push(
                format!("consumers[{i}].name"),
                format!("`{}` is declared twice", c.name),
            );
        }
        for (j, g) in c.groups.iter().enumerate() {
            if let Err(e) = warden_store::check_name("group", g) {
                issues.push(format!("consumers[{i}].groups[{j}]"), e.to_string());
            }
        }
    }
}
