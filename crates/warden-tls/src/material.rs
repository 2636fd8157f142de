//! Reading PEM files into rustls types, with the load-time checks an operator
//! needs: unreadable file, no certificate, key not matching its certificate,
//! certificate expired or not yet valid. Every check names the file.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::config::CertificateConfig;

/// One problem with TLS material: the config key it belongs to (relative to
/// the `tls` section, e.g. `certificates[0].key`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIssue {
    /// Key path relative to the listener's `tls` section.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl TlsIssue {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for TlsIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A certificate chain with its key, ready to serve, and the names it covers.
#[derive(Debug)]
pub(crate) struct LoadedCert {
    pub key: Arc<CertifiedKey>,
    /// DNS names from the leaf's subjectAltName, lower-cased (`*.x` kept as is).
    pub names: Vec<String>,
}

/// Contents hash of a file (FNV-1a over the bytes, plus the length); `None`
/// when unreadable. Used to notice replaced certificate files.
pub(crate) fn stamp(path: &str) -> Option<(u64, usize)> {
    let bytes = std::fs::read(path).ok()?;
    Some((fnv(&bytes), bytes.len()))
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn read(path: &str, at: &str) -> Result<Vec<u8>, TlsIssue> {
    std::fs::read(path).map_err(|e| TlsIssue::new(at, format!("cannot read `{path}`: {e}")))
}

/// Loads one `certificates[i]` entry and checks it.
pub(crate) fn load_cert(
    cfg: &CertificateConfig,
    at: &str,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<LoadedCert, Vec<TlsIssue>> {
    let cert_at = format!("{at}.cert");
    let key_at = format!("{at}.key");
    let mut issues = Vec::new();
    let chain = match read(&cfg.cert, &cert_at) {
        Ok(bytes) => match CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>() {
            Ok(chain) if chain.is_empty() => {
                issues.push(TlsIssue::new(
                    &cert_at,
                    format!("`{}` holds no PEM certificate", cfg.cert),
                ));
                None
            }
            Ok(chain) => Some(chain),
            Err(e) => {
                issues.push(TlsIssue::new(&cert_at, format!("`{}` is not valid PEM: {e}", cfg.cert)));
                None
            }
        },
        Err(e) => {
            issues.push(e);
            None
        }
    };
    let key = match read(&cfg.key, &key_at) {
        Ok(bytes) => match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(k) => Some(k),
            Err(e) => {
                issues.push(TlsIssue::new(
                    &key_at,
                    format!("`{}` holds no usable private key: {e}", cfg.key),
                ));
                None
            }
        },
        Err(e) => {
            issues.push(e);
            None
        }
    };
    let names = match chain.as_deref().map(|c| check_leaf(&c[0], &cfg.cert, &cert_at, now)) {
        Some(Ok(names)) => names,
        Some(Err(e)) => {
            issues.push(e);
            Vec::new()
        }
        None => Vec::new(),
    };
    let (Some(chain), Some(key), true) = (chain, key, issues.is_empty()) else {
        return Err(issues);
    };
    match CertifiedKey::from_der(chain, key, provider) {
        Ok(certified) => Ok(LoadedCert {
            key: Arc::new(certified),
            names,
        }),
        Err(rustls::Error::InconsistentKeys(_)) => Err(vec![TlsIssue::new(
            key_at,
            format!(
                "the key in `{}` does not match the certificate in `{}`",
                cfg.key, cfg.cert
            ),
        )]),
        Err(e) => Err(vec![TlsIssue::new(
            key_at,
            format!("unusable key in `{}`: {e}", cfg.key),
        )]),
    }
}

/// Validity window and subjectAltName DNS names of a leaf certificate.
fn check_leaf(der: &CertificateDer<'_>, file: &str, at: &str, now: SystemTime) -> Result<Vec<String>, TlsIssue> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| TlsIssue::new(at, format!("`{file}`: the first certificate does not parse: {e}")))?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if validity.not_after.timestamp() < now {
        return Err(TlsIssue::new(
            at,
            format!("the certificate in `{file}` expired on {}", validity.not_after),
        ));
    }
    if validity.not_before.timestamp() > now {
        return Err(TlsIssue::new(
            at,
            format!(
                "the certificate in `{file}` is not valid before {}",
                validity.not_before
            ),
        ));
    }
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::DNSName(d) = name {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    Ok(names)
}

/// Loads a PEM bundle of CA certificates.
pub(crate) fn load_roots(path: &str, at: &str) -> Result<RootCertStore, TlsIssue> {
    let bytes = read(path, at)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsIssue::new(at, format!("`{path}` is not valid PEM: {e}")))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsIssue::new(at, format!("`{path}` holds no usable CA certificate")));
    }
    Ok(roots)
}

/// Loads a CRL file: DER (one CRL) or PEM (every CRL in it).
pub(crate) fn load_crls(path: &str, at: &str) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsIssue> {
    let bytes = read(path, at)?;
    if !bytes.starts_with(b"-----") {
        return Ok(vec![CertificateRevocationListDer::from(bytes)]);
    }
    let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsIssue::new(at, format!("`{path}` is not valid PEM: {e}")))?;
    if crls.is_empty() {
        return Err(TlsIssue::new(at, format!("`{path}` holds no PEM CRL")));
    }
    Ok(crls)
}
