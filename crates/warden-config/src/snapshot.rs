//! [`Snapshot`]: the compiled, immutable form of a config that every request reads.

use std::sync::Arc;

use warden_core::OnError;
use warden_policies::CompiledPolicy;
use warden_policies::ip_rules::NetList;

use crate::router::Router;
use crate::schema::{ClientCertRule, FileConfig, LimitsConfig, PlainHttp, UpstreamErrors};

/// Everything the data plane needs, compiled once at load.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated file it was built from (listeners, services, admin).
    pub config: FileConfig,
    /// Host/method/path router.
    pub router: Router<Arc<RouteRuntime>>,
    /// Listener-wide caps.
    pub limits: LimitsConfig,
    /// Trusted proxy networks.
    pub trusted_proxies: NetList,
    /// Compiled listeners, in config order.
    pub listeners: Vec<Arc<ListenerRuntime>>,
    /// Every configured client-certificate identity header; removed from
    /// every request before the gateway writes its own.
    pub identity_headers: Vec<http::HeaderName>,
    /// Every compiled route, in config order (for policy start-up and readiness).
    pub routes: Vec<Arc<RouteRuntime>>,
    /// Compiled upstream TLS by service name.
    pub upstream_tls: std::collections::HashMap<String, Arc<warden_tls::UpstreamTls>>,
}

/// One listener's compiled settings. A listener looks itself up by name in
/// the current snapshot on every accepted connection, so certificate and TLS
/// setting changes reach new handshakes on reload.
#[derive(Debug)]
pub struct ListenerRuntime {
    /// Listener name.
    pub name: Arc<str>,
    /// TLS, when the listener has a `tls` section.
    pub tls: Option<Arc<warden_tls::ServerTls>>,
    /// Plain-HTTP behaviour (only used without TLS).
    pub plain_http: PlainHttp,
    /// Port for `https://` redirects.
    pub https_port: u16,
    /// Header that carries the verified client identity upstream.
    pub identity_header: Option<http::HeaderName>,
}

impl Snapshot {
    /// True when `ip` is a configured trusted proxy.
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_proxies.contains(ip)
    }

    /// True when every policy has what it needs to serve (e.g. fetched JWKS).
    pub fn is_ready(&self) -> bool {
        use warden_core::Policy;
        self.routes
            .iter()
            .all(|r| r.policies.iter().all(|p| p.policy.is_ready()))
    }

    /// Starts the policies' background work (key fetching); call on the
    /// runtime that should run it, once per snapshot.
    pub fn start_policies(&self, services: &warden_core::Services) {
        use warden_core::Policy;
        for r in &self.routes {
            for p in &r.policies {
                p.policy.start(services);
            }
        }
    }

    /// True when a route authenticates against the store (API keys), so the
    /// gateway must open it.
    pub fn needs_store(&self) -> bool {
        self.config.store.is_some()
            || self
                .routes
                .iter()
                .any(|r| r.policies.iter().any(|p| matches!(p.policy, CompiledPolicy::ApiKey(_))))
    }

    /// The listener called `name`.
    pub fn listener(&self, name: &str) -> Option<&Arc<ListenerRuntime>> {
        self.listeners.iter().find(|l| &*l.name == name)
    }
}

/// One compiled route.
#[derive(Debug)]
pub struct RouteRuntime {
    /// Route id.
    pub id: Arc<str>,
    /// Service name.
    pub service: Arc<str>,
    /// Policies in run order.
    pub policies: Vec<PolicyInstance>,
    /// Body cap before policies lower it.
    pub max_body_bytes: u64,
    /// Upstream 5xx body handling.
    pub upstream_errors: UpstreamErrors,
    /// Add the default security headers.
    pub security_headers: bool,
    /// Some policy needs the whole request body.
    pub needs_body: bool,
    /// Some policy inspects the upstream response body: buffered up to this
    /// many bytes (the largest any policy asks for).
    pub response_body_limit: Option<usize>,
    /// Mutual-TLS requirement.
    pub client_cert: Option<ClientCertRule>,
    /// Served by the gateway itself (the authorization server's endpoints),
    /// not proxied.
    pub builtin: Option<warden_oauth::Endpoint>,
    /// `authentication: any`: the challenges to send when no credential was
    /// presented (one `WWW-Authenticate` per method); empty for `all`.
    pub any_auth_challenges: Vec<http::HeaderValue>,
    /// The path pattern as written (`/orders/{id}`, `/static/*` for a prefix):
    /// with the method, the operation authorization policies see.
    pub pattern: Arc<str>,
    /// An `authz` policy runs on this route (the operation is then computed).
    pub has_authz: bool,
    /// Header and lifetime of the gateway-signed identity token, if the route sends one.
    pub identity_token: Option<(http::HeaderName, u64)>,
}

/// A compiled policy plus its failure mode.
#[derive(Debug)]
pub struct PolicyInstance {
    /// The policy.
    pub policy: CompiledPolicy,
    /// Fail closed (`deny`) or open (`allow`) when it breaks.
    pub on_error: OnError,
}
