//! The configuration file's shape. Every struct denies unknown keys and every
//! number carries its unit in its name. Defaults are the secure ones.

use serde::Deserialize;
use warden_policies::PolicySpec;
pub use warden_tls::UpstreamTlsConfig;
pub use warden_tls::config::{ClientCertRule, TlsListenerConfig};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Client-facing listeners. Changing them needs a restart.
    pub listeners: Vec<ListenerConfig>,
    /// The admin listener (health, readiness, metrics).
    #[serde(default)]
    pub admin: AdminConfig,
    /// Listener-wide caps.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Peers whose `X-Forwarded-For`, `Forwarded` and `X-Request-Id` are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Upstream services.
    pub services: Vec<ServiceConfig>,
    /// Routes, matched most-specific first.
    pub routes: Vec<RouteConfig>,
    /// Where the JSON access log goes.
    #[serde(default)]
    pub access_log: AccessLogConfig,
    /// Where consumers and credentials live. Present when configured or when
    /// a route checks API keys (then with the defaults). Changing it needs a
    /// restart.
    #[serde(default)]
    pub store: Option<warden_store::StoreConfig>,
    /// The built-in OAuth 2.0 authorization server (docs/oauth_server.md).
    /// Changing it needs a restart.
    #[serde(default)]
    pub oauth_server: Option<warden_oauth::OAuthServerConfig>,
    /// State every gateway of a cluster shares (Redis), memory by default
    /// (docs/shared_state.md). Changing it needs a restart.
    #[serde(default)]
    pub shared_state: warden_shared::SharedStateConfig,
    /// Consumers declared here are created in the store at start and on
    /// reload; ones removed from the file are disabled (docs/store.md).
    #[serde(default)]
    pub consumers: Vec<warden_store::DeclaredConsumer>,
}

/// Access-log destination: `stdout` (default), `off`, or `{ file: PATH }`.
/// (YAML 1.1 readers turn a bare `off` into `false`; both are accepted.)
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "RawAccessLog")]
pub enum AccessLogConfig {
    /// One JSON line per request on standard output.
    #[default]
    Stdout,
    /// No access log.
    Off,
    /// Append to this file.
    File(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawAccessLog {
    Flag(bool),
    Word(String),
    File { file: String },
}

impl TryFrom<RawAccessLog> for AccessLogConfig {
    type Error = String;

    fn try_from(raw: RawAccessLog) -> Result<Self, String> {
        match raw {
            RawAccessLog::Flag(false) => Ok(Self::Off),
            RawAccessLog::Word(w) if w == "off" => Ok(Self::Off),
            RawAccessLog::Word(w) if w == "stdout" => Ok(Self::Stdout),
            RawAccessLog::File { file } if !file.is_empty() => Ok(Self::File(file)),
            _ => Err("expected `stdout`, `off` or `{ file: PATH }`".into()),
        }
    }
}

/// One client-facing listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name, for logs.
    pub name: String,
    /// `ip:port` to bind.
    pub bind: String,
    /// TLS settings; without them the listener speaks plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsListenerConfig>,
    /// What a plain-HTTP listener does with requests (default `refuse`).
    #[serde(default)]
    pub plain_http: Option<PlainHttp>,
    /// Port named in `redirect` answers (default 443).
    #[serde(default)]
    pub https_port: Option<u16>,
}

/// What a listener without TLS does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlainHttp {
    /// Answer 403 `https-required` (the default: API clients must not be
    /// taught to follow redirects with credentials attached).
    #[default]
    Refuse,
    /// Answer 308 to the same host and path over `https://` (browser-facing sites).
    Redirect,
    /// Serve the request in clear text: only behind a TLS-terminating load
    /// balancer or on loopback.
    Serve,
}

/// The admin listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `ip:port` to bind; loopback by default. Set to `null` to disable.
    #[serde(default = "default_admin_bind")]
    pub bind: Option<String>,
    /// File holding the bearer token of the admin API's state-changing and
    /// incident endpoints (`/blocks`); at least 32 characters. Without it
    /// those endpoints are off. Read on every call, so it can be rotated
    /// without a reload.
    #[serde(default)]
    pub api_token_file: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            bind: default_admin_bind(),
            api_token_file: None,
        }
    }
}

/// Shortest admin API token accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Reads the admin API token from `path` (surrounding whitespace dropped).
///
/// # Errors
///
/// The file cannot be read, or the token is shorter than
/// [`MIN_ADMIN_TOKEN_CHARS`] or holds whitespace or control characters.
pub fn read_admin_token(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let token = text.trim();
    if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
        return Err(format!(
            "the token in `{path}` must be at least {MIN_ADMIN_TOKEN_CHARS} characters"
        ));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the token in `{path}` must not hold spaces or control characters"
        ));
    }
    Ok(token.to_owned())
}

fn default_admin_bind() -> Option<String> {
    Some("127.0.0.1:9901".into())
}

/// Listener-wide caps, all on by default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most bytes in the request head (HTTP/1) or header list (HTTP/2). → 431
    pub max_header_bytes: usize,
    /// Most request header lines. → 431
    pub max_headers: usize,
    /// Longest request target. → 414
    pub max_uri_bytes: usize,
    /// Largest request body unless a route says otherwise. → 413
    pub max_body_bytes: u64,
    /// Time a client has to send the request head (slowloris guard).
    pub header_read_timeout_ms: u64,
    /// Time a client has to send the body once the head arrived, before any
    /// extension earned by `min_body_rate_bytes_per_sec`. → 408 and close
    pub body_read_timeout_ms: u64,
    /// Minimum request body data rate (slow POST guard): every this many
    /// bytes received extend the body deadline by one second, so a large
    /// upload at a healthy rate finishes and a trickle runs out of time.
    /// 0: no extension (the whole body within `body_read_timeout_ms`).
    pub min_body_rate_bytes_per_sec: u64,
    /// Idle keep-alive connections are closed after this long.
    pub idle_timeout_secs: u64,
    /// Most open client connections; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams per client connection.
    pub max_h2_streams: u32,
    /// Most open connections from one client address (IPv6: one /64);
    /// trusted proxies are exempt. Further connections are closed at once.
    pub max_connections_per_ip: usize,
    /// Most requests in flight in the whole gateway; beyond it requests get
    /// 503 with `Retry-After` (overload shedding). The admin listener
    /// (health, readiness, metrics) is never shed.
    pub max_in_flight: usize,
    /// HTTP/2 streams a client may reset before the server has answered
    /// them, per connection, before the connection is closed (rapid reset).
    pub max_h2_pending_resets: usize,
    /// HTTP/2 control frames (PING, SETTINGS, PRIORITY, RST_STREAM, empty
    /// DATA, unknown types) a client may send per second on one connection,
    /// bursts up to the same number; past it the connection is closed.
    pub max_h2_control_frames_per_sec: u32,
    /// On shutdown, how long in-flight requests may take to finish.
    pub drain_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            min_body_rate_bytes_per_sec: 500,
            idle_timeout_secs: 60,
            max_connections: 10_000,
            max_h2_streams: 128,
            max_connections_per_ip: 64,
            max_in_flight: 10_000,
            max_h2_pending_resets: 20,
            max_h2_control_frames_per_sec: 100,
            drain_timeout_secs: 30,
        }
    }
}

/// An upstream service: a set of targets and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name routes refer to.
    pub name: String,
    /// `host:port` targets (IP literals or resolvable names).
    pub targets: Vec<String>,
    /// Protocol spoken to the targets.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// How a target is picked.
    #[serde(default)]
    pub balance: Balance,
    /// Timeouts towards the targets.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// Retries on connect failure (idempotent requests only).
    #[serde(default)]
    pub retries: RetriesConfig,
    /// Active and passive health checking.
    #[serde(default)]
    pub health: HealthConfig,
    /// Connection pool.
    #[serde(default)]
    pub pool: PoolConfig,
    /// TLS towards the targets; without it the targets are spoken to in clear text.
    #[serde(default)]
    pub tls: Option<UpstreamTlsConfig>,
}

/// Protocol towards a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    #[default]
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// Load-balancing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each healthy target in turn.
    #[default]
    RoundRobin,
    /// Power of two choices on in-flight request counts.
    LeastOutstanding,
}

/// Timeouts towards a service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// TCP connect.
    pub connect_ms: u64,
    /// From request sent to response headers received. → 504
    pub first_byte_ms: u64,
    /// Whole exchange, including the response body.
    pub total_ms: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            connect_ms: 2_000,
            first_byte_ms: 30_000,
            total_ms: 60_000,
        }
    }
}

/// Retry policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct RetriesConfig {
    /// Extra attempts on another target after a connect failure (0 disables; at most 5).
    pub attempts: u32,
}

impl Default for RetriesConfig {
    fn default() -> Self {
        Self { attempts: 1 }
    }
}

/// Health checking.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Periodic probes; off unless set.
    pub active: Option<ActiveHealthConfig>,
    /// Ejection after consecutive failures of live traffic.
    pub passive: PassiveHealthConfig,
}

/// Active health checks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Hash)]
#[serde(deny_unknown_fields)]
pub struct ActiveHealthConfig {
    /// Path probed with GET; a 2xx or 3xx answer is healthy.
    pub path: String,
    /// Time between probes.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Probe timeout.
    #[serde(default = "default_probe_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive successes that re-admit a target.
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u32,
    /// Consecutive failures that eject a target.
    #[serde(default = "default_threshold")]
    pub unhealthy_threshold: u32,
}

fn default_interval_ms() -> u64 {
    5_000
}
fn default_probe_timeout_ms() -> u64 {
    1_000
}
fn default_threshold() -> u32 {
    2
}

/// Passive ejection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveHealthConfig {
    /// Consecutive connect failures, timeouts or 5xx answers that eject a target (0 disables).
    pub consecutive_failures: u32,
    /// How long an ejected target stays out before it is tried again.
    pub cooldown_secs: u64,
}

impl Default for PassiveHealthConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            cooldown_secs: 30,
        }
    }
}

/// Upstream connection pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Idle connections are closed after this long.
    pub idle_timeout_secs: u64,
    /// Most idle connections kept per target.
    pub max_idle_per_target: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 90,
            max_idle_per_target: 64,
        }
    }
}

/// One route.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique id, in logs and metrics.
    pub id: String,
    /// Hosts this route answers (`api.example.com`, `*.example.com`); empty: any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Methods; empty: any method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path pattern.
    pub path: PathConfig,
    /// Service that serves the route.
    pub service: String,
    /// Upstream 5xx bodies: replaced by the gateway's problem document, or passed through.
    #[serde(default)]
    pub upstream_errors: UpstreamErrors,
    /// Whether the default security headers are added to responses.
    #[serde(default = "default_true")]
    pub security_headers: bool,
    /// Body cap for this route (overrides the listener default).
    pub max_body_bytes: Option<u64>,
    /// Mutual TLS: `required`, or `{ allow: [...] }` to accept only some identities.
    #[serde(default)]
    pub client_cert: Option<ClientCertRule>,
    /// Policies; they run in the fixed kind order, not list order.
    #[serde(default)]
    pub policies: Vec<serde_json::Value>,
    /// With several authentication policies (`jwt`, `api_key`): `all` of
    /// them must accept (default), or `any` one credential suffices.
    #[serde(default)]
    pub authentication: AuthMode,
    /// Send the verified identity upstream as a short-lived JWT signed by the
    /// gateway's authorization server (needs `oauth_server`).
    #[serde(default)]
    pub identity_token: Option<IdentityTokenConfig>,
}

/// `identity_token:` on a route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityTokenConfig {
    /// Header that carries it (client copies are always removed).
    #[serde(default = "default_identity_header")]
    pub header: String,
    /// Lifetime (10–300 s).
    #[serde(default = "default_identity_ttl")]
    pub ttl_secs: u64,
}

fn default_identity_header() -> String {
    "x-warden-identity".into()
}

fn default_identity_ttl() -> u64 {
    60
}

/// How several authentication policies on one route combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Every authentication policy must accept its credential.
    #[default]
    All,
    /// One accepted credential suffices; a credential that is present must
    /// still be valid (a bad one is refused, never skipped).
    Any,
}

fn default_true() -> bool {
    true
}

/// A path pattern; exactly one key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PathConfig {
    /// Only this path.
    Exact(String),
    /// This path and everything below it (segment boundary).
    Prefix(String),
    /// `/users/{id}`: each `{name}` matches one segment.
    Template(String),
}

/// Handling of upstream 5xx bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamErrors {
    /// Replace the body with the gateway's own problem document.
    #[default]
    Replace,
    /// Pass the upstream body through (for troubleshooting).
    PassThrough,
}

/// Parsed route policy list (kept as values in [`RouteConfig`] so each entry's
/// errors are reported on their own).
pub type PolicyList = Vec<PolicySpec>;
