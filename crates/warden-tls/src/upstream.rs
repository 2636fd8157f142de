//! TLS towards upstreams: chain and name verification on by default (system
//! roots or a configured CA), SNI, SPKI SHA-256 pinning checked inside the
//! handshake, and a client certificate for upstream mTLS.

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use rustls::client::ResolvesClientCert;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::aws_lc_rs;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Deserialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::CertificateConfig;
use crate::material::{TlsIssue, load_cert, load_roots, stamp};

/// `services[].tls`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// Name sent as SNI and checked against the certificate; default: the
    /// target's host (an IP target is checked against IP SANs).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM bundle of CAs the upstream's chain must lead to; default: the
    /// system's trusted roots.
    #[serde(default)]
    pub ca: Option<String>,
    /// SPKI SHA-256 pins, base64 (optionally prefixed `sha256/`). When set,
    /// the upstream's leaf certificate key must match one of them.
    #[serde(default)]
    pub pins: Vec<String>,
    /// Client certificate for upstreams that require mTLS.
    #[serde(default)]
    pub client_cert: Option<CertificateConfig>,
}

/// A service's compiled upstream TLS.
#[derive(Debug)]
pub struct UpstreamTls {
    config: ClientConfig,
    /// Fixed SNI/verification name, when configured.
    pub server_name: Option<ServerName<'static>>,
    files: Vec<String>,
    stamp: Vec<Option<(u64, usize)>>,
}

impl UpstreamTls {
    /// Loads and checks the section; on failure returns every problem.
    pub fn load(cfg: &UpstreamTlsConfig) -> Result<Self, Vec<TlsIssue>> {
        let mut files: Vec<String> = cfg.ca.iter().cloned().collect();
        if let Some(c) = &cfg.client_cert {
            files.push(c.cert.clone());
            files.push(c.key.clone());
        }
        let stamp = files.iter().map(|f| stamp(f)).collect();
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut issues = Vec::new();
        let roots = match &cfg.ca {
            Some(path) => load_roots(path, "ca").map_err(|e| issues.push(e)).ok(),
            None => system_roots().map_err(|e| issues.push(e)).ok(),
        };
        let mut pins = Vec::new();
        for (i, p) in cfg.pins.iter().enumerate() {
            match parse_pin(p) {
                Some(pin) => pins.push(pin),
                None => issues.push(TlsIssue::new(
                    format!("pins[{i}]"),
                    "not a base64 SHA-256 (44 characters, optionally prefixed `sha256/`)",
                )),
            }
        }
        let server_name = match &cfg.server_name {
            Some(n) => match ServerName::try_from(n.clone()) {
                Ok(s) => Some(s),
                Err(_) => {
                    issues.push(TlsIssue::new(
                        "server_name",
                        format!("`{n}` is not a DNS name or IP address"),
                    ));
                    None
                }
            },
            None => None,
        };
        let client = match &cfg.client_cert {
            Some(c) => match load_cert(c, "client_cert", &provider, SystemTime::now()) {
                Ok(l) => Some(l.key),
                Err(mut e) => {
                    issues.append(&mut e);
                    None
                }
            },
            None => None,
        };
        let verifier = roots.and_then(|r| {
            WebPkiServerVerifier::builder_with_provider(Arc::new(r), Arc::clone(&provider))
                .build()
                .map_err(|e| issues.push(TlsIssue::new("ca", format!("cannot build the verifier: {e}"))))
                .ok()
        });
        let (Some(verifier), true) = (verifier, issues.is_empty()) else {
            return Err(issues);
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| vec![TlsIssue::new("", e.to_string())])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinningVerifier { inner: verifier, pins }));
        let config = match client {
            Some(key) => builder.with_client_cert_resolver(Arc::new(OneClientCert(key))),
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            config,
            server_name,
            files,
            stamp,
        })
    }

    /// Contents stamp of the files this was loaded from (CA, client
    /// certificate and key), to tell whether a pool built on it is current.
    pub fn stamp(&self) -> &[Option<(u64, usize)>] {
        &self.stamp
    }

    /// True when a file this was loaded from changed since.
    pub fn files_changed(&self) -> bool {
        self.current_stamp() != self.stamp
    }

    /// Contents stamp of the files as they are on disk now.
    pub fn current_stamp(&self) -> Vec<Option<(u64, usize)>> {
        self.files.iter().map(|f| stamp(f)).collect()
    }

    /// A client config that trusts nothing, for connectors of clear-text
    /// services (they never make a TLS connection).
    pub fn trust_nothing() -> ClientConfig {
        let roots = RootCertStore::empty();
        ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                ClientConfig::builder()
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth()
            })
    }

    /// The base client config (no ALPN).
    pub fn base_config(&self) -> ClientConfig {
        self.config.clone()
    }

    /// The client config offering `alpn` (e.g. `http/1.1` or `h2`).
    pub fn client_config(&self, alpn: &[u8]) -> Arc<ClientConfig> {
        let mut c = self.config.clone();
        c.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(c)
    }
}

/// The operating system's trusted root certificates (possibly none).
pub fn native_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots
}

fn system_roots() -> Result<RootCertStore, TlsIssue> {
    let roots = native_roots();
    if roots.is_empty() {
        return Err(TlsIssue::new("ca", "no system CA certificates found; set `ca`"));
    }
    Ok(roots)
}

fn parse_pin(p: &str) -> Option<[u8; 32]> {
    let text = p.strip_prefix("sha256/").unwrap_or(p);
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    bytes.try_into().ok()
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, base64: the pin format.
pub fn spki_pin(der: &CertificateDer<'_>) -> Option<String> {
    spki_sha256(der).map(|d| base64::engine::general_purpose::STANDARD.encode(d))
}

fn spki_sha256(der: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let digest = ::aws_lc_rs::digest::digest(&::aws_lc_rs::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    digest.as_ref().try_into().ok()
}

/// WebPKI verification, then (when pins are set) an SPKI pin match on the
/// leaf certificate. Runs inside the handshake: on a mismatch the handshake
/// fails before any request byte is written.
#[derive(Debug)]
struct PinningVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
        if self.pins.is_empty() {
            return Ok(verified);
        }
        // Only the leaf is certain to be on the verified path: extra
        // certificates a server appends are not verified, so matching them
        // would let any trusted certificate for the name carry a pinned key
        // along.
        let pinned = spki_sha256(end_entity).is_some_and(|d| self.pins.contains(&d));
        if pinned {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Always offers the one configured client certificate.
#[derive(Debug)]
struct OneClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for OneClientCert {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}
