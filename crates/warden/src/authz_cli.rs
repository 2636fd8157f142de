//! `warden authz explain`: how the `authz` policy of the route a described
//! request would reach decides it, and which policies determined that.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use warden_config::router::RouteMatch;

/// A described request.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Config file.
    #[arg(long, short, env = "WARDEN_CONFIG")]
    config: PathBuf,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request path (with query string, if any).
    #[arg(long)]
    path: String,
    /// Host header (for host-specific routes).
    #[arg(long, default_value = "")]
    host: String,
    /// The authenticated consumer (none: anonymous).
    #[arg(long)]
    consumer: Option<String>,
    /// A group of the consumer (repeatable).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// Client IP address.
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::IpAddr,
    /// Token claims as a JSON object (scope, amr, acr, and claims bindings use).
    #[arg(long)]
    claims: Option<String>,
    /// The request came with a verified client certificate.
    #[arg(long)]
    mtls: bool,
}

/// Runs `authz explain`.
pub fn explain(a: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let snapshot = warden_config::load_file(&a.config)?;
    let method: http::Method = a
        .method
        .parse()
        .map_err(|_| anyhow::anyhow!("bad method `{}`", a.method))?;
    let (path, query) = a
        .path
        .split_once('?')
        .map_or((a.path.as_str(), None), |(p, q)| (p, Some(q)));
    let route = match snapshot.router.lookup(&a.host, &method, path) {
        RouteMatch::Found { value, params } => (Arc::clone(value), params),
        _ => anyhow::bail!("no route takes {} {}", a.method, a.path),
    };
    let (route, params) = route;
    let Some(authz) = route.policies.iter().find_map(|p| match &p.policy {
        warden_policies::CompiledPolicy::Authz(z) => Some(z),
        _ => None,
    }) else {
        anyhow::bail!("route `{}` has no authz policy", route.id);
    };
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    let parts = http::Request::builder()
        .method(method.clone())
        .uri(uri)
        .body(())?
        .into_parts()
        .0;
    let mut ctx = warden_core::RequestCtx::new("explain".into(), a.ip, 0);
    ctx.consumer = a.consumer.as_deref().map(Arc::from);
    ctx.groups = a.groups.iter().map(|g| Arc::from(g.as_str())).collect();
    ctx.route_id = Some(Arc::clone(&route.id));
    ctx.operation = Some(Arc::from(format!("{method} {}", route.pattern)));
    ctx.params = params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    if let Some(c) = &a.claims {
        let claims: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(c).map_err(|e| anyhow::anyhow!("--claims is not a JSON object: {e}"))?;
        ctx.token_claims = Some(Arc::new(claims));
    }
    if a.mtls {
        ctx.client_cert = Some(Arc::new(warden_core::ClientIdentity {
            subject: String::new(),
            dns: Vec::new(),
            uris: Vec::new(),
            sha256: String::new(),
        }));
    }
    let e = authz.explain(&parts, &ctx);
    println!("route: {}", route.id);
    println!("action: {}", ctx.operation.as_deref().unwrap_or(""));
    println!("decision: {}", if e.allowed { "allow" } else { "deny" });
    match (&e.binding_failed, e.determining.is_empty(), e.allowed) {
        (Some(why), _, _) => println!("because: binding failed: {why}"),
        (None, true, false) => println!("because: no policy permits it (default deny)"),
        (None, false, true) => println!("because: permitted by {}", e.determining.join(", ")),
        (None, false, false) => println!("because: forbidden by {}", e.determining.join(", ")),
        (None, true, true) => println!("because: (no determining policy reported)"),
    }
    for err in &e.errors {
        println!("error: {err}");
    }
    Ok(if e.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
