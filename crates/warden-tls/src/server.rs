//! [`ServerTls`]: one listener's TLS — the rustls `ServerConfig` built from its
//! `tls` section, rebuilt from disk when a certificate, key, CA or CRL file
//! changes. New handshakes take the new config; open connections keep theirs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};

use crate::config::{ClientAuthMode, TlsListenerConfig, TlsVersion};
use crate::material::{TlsIssue, load_cert, load_crls, load_roots, stamp};

/// Sessions remembered for resumption, per listener (kept across reloads).
const SESSION_CACHE_ENTRIES: usize = 4096;

/// Key-exchange group by its config name (IANA name; `P-256`/`P-384` accepted too).
pub(crate) fn kx_group(name: &str) -> Option<&'static dyn SupportedKxGroup> {
    use aws_lc_rs::kx_group as g;
    Some(match name {
        "X25519MLKEM768" => g::X25519MLKEM768,
        "SecP256r1MLKEM768" | "secp256r1MLKEM768" => g::SECP256R1MLKEM768,
        "X25519" | "x25519" => g::X25519,
        "secp256r1" | "P-256" => g::SECP256R1,
        "secp384r1" | "P-384" => g::SECP384R1,
        _ => return None,
    })
}

/// One TLS listener's live configuration.
#[derive(Debug)]
pub struct ServerTls {
    settings: TlsListenerConfig,
    sessions: Arc<dyn StoresServerSessions>,
    current: ArcSwap<ServerConfig>,
    stamps: Mutex<Vec<Option<(u64, usize)>>>,
    hsts: Option<String>,
}

impl ServerTls {
    /// Loads and checks every file and setting; on failure returns every problem.
    pub fn load(settings: &TlsListenerConfig) -> Result<Self, Vec<TlsIssue>> {
        let sessions: Arc<dyn StoresServerSessions> = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
        let config = build(settings, &sessions)?;
        let mut issues = Vec::new();
        let hsts = &settings.hsts;
        if hsts.preload && (!hsts.include_subdomains || hsts.max_age_secs < 31_536_000) {
            issues.push(TlsIssue::new(
                "hsts.preload",
                "preload needs include_subdomains and max_age_secs of at least 31536000",
            ));
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(Self {
            stamps: Mutex::new(stamps(settings)),
            settings: settings.clone(),
            sessions,
            current: ArcSwap::from_pointee(config),
            hsts: hsts.header_value(),
        })
    }

    /// The config new handshakes use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// The `Strict-Transport-Security` value, when enabled.
    pub fn hsts(&self) -> Option<&str> {
        self.hsts.as_deref()
    }

    /// Files this listener reads (certificates, keys, CA bundle, CRLs).
    pub fn files(&self) -> Vec<&str> {
        files(&self.settings)
    }

    /// Re-reads the files when any of them changed. Returns `Ok(true)` when a
    /// new config was swapped in, `Ok(false)` when nothing changed, and the
    /// problems when the new files are unusable (the old config keeps serving).
    pub fn refresh(&self) -> Result<bool, Vec<TlsIssue>> {
        let now = stamps(&self.settings);
        let mut last = self.stamps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *last == now {
            return Ok(false);
        }
        // Remember the failing state too, so a bad file is reported once, not every poll.
        *last = now;
        let config = build(&self.settings, &self.sessions)?;
        self.current.store(Arc::new(config));
        Ok(true)
    }
}

fn files(settings: &TlsListenerConfig) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in &settings.certificates {
        out.push(&c.cert);
        out.push(&c.key);
    }
    if let Some(ca) = &settings.client_auth.ca {
        out.push(ca);
    }
    out.extend(settings.client_auth.crls.iter().map(String::as_str));
    out
}

fn stamps(settings: &TlsListenerConfig) -> Vec<Option<(u64, usize)>> {
    files(settings).into_iter().map(stamp).collect()
}

fn provider(settings: &TlsListenerConfig, issues: &mut Vec<TlsIssue>) -> CryptoProvider {
    let mut provider = aws_lc_rs::default_provider();
    let mut groups: Vec<&'static dyn SupportedKxGroup> = Vec::new();
    for (i, name) in settings.groups.iter().enumerate() {
        match kx_group(name) {
            Some(g) if groups.iter().any(|have| have.name() == g.name()) => {
                issues.push(TlsIssue::new(
                    format!("groups[{i}]"),
                    format!("`{name}` is listed twice"),
                ));
            }
            Some(g) => groups.push(g),
            None => issues.push(TlsIssue::new(
                format!("groups[{i}]"),
                format!(
                    "unknown group `{name}` (known: X25519MLKEM768, SecP256r1MLKEM768, X25519, secp256r1, secp384r1)"
                ),
            )),
        }
    }
    if settings.groups.is_empty() {
        issues.push(TlsIssue::new("groups", "must name at least one key-exchange group"));
    }
    provider.kx_groups = groups;
    provider
}

fn build(
    settings: &TlsListenerConfig,
    sessions: &Arc<dyn StoresServerSessions>,
) -> Result<ServerConfig, Vec<TlsIssue>> {
    let mut issues = Vec::new();
    let provider = Arc::new(provider(settings, &mut issues));
    let now = SystemTime::now();
    let mut loaded = Vec::new();
    if settings.certificates.is_empty() {
        issues.push(TlsIssue::new(
            "certificates",
            "a TLS listener needs at least one certificate",
        ));
    }
    for (i, c) in settings.certificates.iter().enumerate() {
        match load_cert(c, &format!("certificates[{i}]"), &provider, now) {
            Ok(l) => loaded.push(l),
            Err(mut e) => issues.append(&mut e),
        }
    }
    let mut alpn = Vec::new();
    for (i, p) in settings.alpn.iter().enumerate() {
        match p.as_str() {
            "h2" | "http/1.1" => alpn.push(p.as_bytes().to_vec()),
            other => issues.push(TlsIssue::new(
                format!("alpn[{i}]"),
                format!("`{other}` is not one of `h2`, `http/1.1`"),
            )),
        }
    }
    let verifier = client_verifier(settings, &provider, &mut issues);
    if !issues.is_empty() {
        return Err(issues);
    }
    let versions: &[&'static SupportedProtocolVersion] = match settings.min_version {
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| vec![TlsIssue::new("min_version", e.to_string())])?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver::new(loaded)));
    config.alpn_protocols = alpn;
    if settings.client_auth.mode == ClientAuthMode::Off {
        config.session_storage = Arc::clone(sessions);
    } else {
        // A resumed session carries the client certificate of its first
        // handshake without verifying it again: a certificate revoked (CRL
        // reload) or expired since would live on. With client certificates,
        // every connection does a full handshake.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    // Server order decides the cipher suite; no 0-RTT (replayable) data.
    config.ignore_client_order = true;
    config.max_early_data_size = 0;
    Ok(config)
}

fn client_verifier(
    settings: &TlsListenerConfig,
    provider: &Arc<CryptoProvider>,
    issues: &mut Vec<TlsIssue>,
) -> Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let auth = &settings.client_auth;
    if auth.mode == ClientAuthMode::Off {
        if auth.ca.is_some() || !auth.crls.is_empty() {
            issues.push(TlsIssue::new(
                "client_auth.mode",
                "`ca`/`crls` are set but mode is `off`",
            ));
        }
        return None;
    }
    let Some(ca) = &auth.ca else {
        issues.push(TlsIssue::new(
            "client_auth.ca",
            "required when mode is `optional` or `required`",
        ));
        return None;
    };
    let roots = match load_roots(ca, "client_auth.ca") {
        Ok(r) => r,
        Err(e) => {
            issues.push(e);
            return None;
        }
    };
    let mut crls = Vec::new();
    for (i, path) in auth.crls.iter().enumerate() {
        match load_crls(path, &format!("client_auth.crls[{i}]")) {
            Ok(mut c) => crls.append(&mut c),
            Err(e) => issues.push(e),
        }
    }
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider)).with_crls(crls);
    if auth.mode == ClientAuthMode::Optional {
        builder = builder.allow_unauthenticated();
    }
    match builder.build() {
        Ok(v) => Some(v),
        Err(e) => {
            issues.push(TlsIssue::new(
                "client_auth",
                format!("cannot build the client verifier: {e}"),
            ));
            None
        }
    }
}

/// Picks the certificate by SNI: an exact name, then a `*.suffix` wildcard
/// one label deep, else the first certificate.
#[derive(Debug)]
struct SniResolver {
    keys: Vec<Arc<CertifiedKey>>,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
}

impl SniResolver {
    fn new(loaded: Vec<crate::material::LoadedCert>) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut keys = Vec::new();
        for (i, l) in loaded.into_iter().enumerate() {
            for name in l.names {
                // The first certificate that names a host wins.
                match name.strip_prefix("*.") {
                    Some(suffix) => wildcard.entry(suffix.to_owned()).or_insert(i),
                    None => exact.entry(name).or_insert(i),
                };
            }
            keys.push(l.key);
        }
        Self { keys, exact, wildcard }
    }

    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let idx = sni
            .map(str::to_ascii_lowercase)
            .and_then(|name| {
                self.exact.get(&name).copied().or_else(|| {
                    let (_, parent) = name.split_once('.')?;
                    self.wildcard.get(parent).copied()
                })
            })
            .unwrap_or(0);
        self.keys.get(idx).cloned()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}
