//! The `tls` section of a listener, as the config file spells it. Defaults are
//! the secure ones: TLS 1.3 only, the hybrid post-quantum group first, HSTS on.

use serde::Deserialize;

/// `listeners[].tls`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListenerConfig {
    /// Certificates with their keys. The first one is served when the client
    /// sends no SNI name or a name no certificate covers.
    pub certificates: Vec<CertificateConfig>,
    /// Lowest protocol version accepted: `"1.3"` (default) or `"1.2"`.
    #[serde(default)]
    pub min_version: TlsVersion,
    /// Key-exchange groups in preference order.
    #[serde(default = "default_groups")]
    pub groups: Vec<String>,
    /// ALPN protocols offered, in preference order (`h2`, `http/1.1`).
    #[serde(default = "default_alpn")]
    pub alpn: Vec<String>,
    /// `Strict-Transport-Security` on every response of this listener.
    #[serde(default)]
    pub hsts: HstsConfig,
    /// Client certificates (mutual TLS).
    #[serde(default)]
    pub client_auth: ClientAuthConfig,
}

/// One certificate chain and its private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// PEM file: the leaf certificate first, then its intermediates.
    pub cert: String,
    /// PEM file: the private key (PKCS#8, SEC1 or PKCS#1).
    pub key: String,
}

/// Lowest accepted TLS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (1.2 with forward-secret AEAD suites only).
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[default]
    #[serde(rename = "1.3")]
    Tls13,
}

/// HSTS header settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HstsConfig {
    /// Send the header at all.
    pub enabled: bool,
    /// `max-age` in seconds.
    pub max_age_secs: u64,
    /// Add `includeSubDomains`.
    pub include_subdomains: bool,
    /// Add `preload` (needs `include_subdomains` and a max age of at least a year).
    pub preload: bool,
}

impl Default for HstsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_age_secs: 31_536_000,
            include_subdomains: true,
            preload: false,
        }
    }
}

impl HstsConfig {
    /// The header value, or `None` when disabled.
    pub fn header_value(&self) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let mut v = format!("max-age={}", self.max_age_secs);
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        Some(v)
    }
}

/// Mutual TLS on a listener.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthConfig {
    /// `off` (default), `optional` (verified when presented) or `required`.
    pub mode: ClientAuthMode,
    /// PEM bundle of the CAs client certificates must chain to.
    pub ca: Option<String>,
    /// PEM or DER CRL files; a revoked client certificate is refused.
    pub crls: Vec<String>,
    /// Request header that carries the verified identity to the upstream. Any
    /// copy a client sends is removed on every listener.
    pub identity_header: Option<String>,
}

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthMode {
    /// No certificate is asked for.
    #[default]
    Off,
    /// A certificate is asked for and verified if sent; connections without one proceed.
    Optional,
    /// The handshake fails without a valid certificate.
    Required,
}

fn default_groups() -> Vec<String> {
    ["X25519MLKEM768", "X25519", "secp256r1", "secp384r1"]
        .map(String::from)
        .to_vec()
}

fn default_alpn() -> Vec<String> {
    vec!["h2".into(), "http/1.1".into()]
}

/// A route's `client_cert` rule: the request must come over a connection with
/// a verified client certificate, and when `allow` is not empty, one whose
/// identity matches an entry. Written `client_cert: required` or
/// `client_cert: { allow: [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawClientCertRule")]
pub struct ClientCertRule {
    /// Accepted identities; empty: any certificate the listener verified.
    pub allow: Vec<AllowedIdentity>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawClientCertRule {
    Word(String),
    Rule {
        #[serde(default)]
        allow: Vec<AllowedIdentity>,
    },
}

impl TryFrom<RawClientCertRule> for ClientCertRule {
    type Error = String;

    fn try_from(raw: RawClientCertRule) -> Result<Self, String> {
        match raw {
            RawClientCertRule::Word(w) if w == "required" => Ok(Self { allow: Vec::new() }),
            RawClientCertRule::Word(w) => Err(format!("expected `required` or `{{ allow: [...] }}`, got `{w}`")),
            RawClientCertRule::Rule { allow } => Ok(Self { allow }),
        }
    }
}

/// One accepted client identity; exactly one key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AllowedIdentity {
    /// Subject DN, RFC 4514 style as the access log prints it (`CN=svc, O=Example`).
    Subject(String),
    /// A subjectAltName DNS name.
    Dns(String),
    /// A subjectAltName URI, e.g. a SPIFFE ID `spiffe://example.org/ns/a/sa/b`.
    Uri(String),
    /// SHA-256 of the DER certificate, hex (colons allowed).
    Sha256(String),
}

/// `a, b ,c` and `a,b,c` compare equal.
fn dn_key(dn: &str) -> String {
    dn.split(',').map(str::trim).collect::<Vec<_>>().join(",")
}

/// Hex without colons, lower case.
pub(crate) fn fingerprint_key(hex: &str) -> String {
    hex.chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl AllowedIdentity {
    /// Problem with the entry as written, if any.
    pub fn check(&self) -> Option<String> {
        match self {
            Self::Sha256(h) => {
                let k = fingerprint_key(h);
                (k.len() != 64 || !k.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| "sha256 must be 64 hex digits (colons allowed)".to_owned())
            }
            Self::Subject(s) | Self::Dns(s) | Self::Uri(s) => {
                s.trim().is_empty().then(|| "must not be empty".to_owned())
            }
        }
    }

    fn matches(&self, id: &crate::ClientIdentity) -> bool {
        match self {
            Self::Subject(s) => dn_key(s) == dn_key(&id.subject),
            Self::Dns(d) => id.dns.iter().any(|n| n.eq_ignore_ascii_case(d)),
            Self::Uri(u) => id.uris.iter().any(|n| n == u),
            Self::Sha256(h) => fingerprint_key(h) == id.sha256,
        }
    }
}

impl ClientCertRule {
    /// True when `id` (already verified by the listener) may use the route.
    pub fn allows(&self, id: &crate::ClientIdentity) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|a| a.matches(id))
    }
}
