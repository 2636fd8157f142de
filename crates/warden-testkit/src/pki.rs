//! A throw-away PKI for TLS tests: a CA, server and client certificates
//! (valid, expired, revoked), CRLs, all written as PEM files in a temp dir,
//! plus rustls client configs that trust the CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

/// A PEM certificate and key on disk.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// Certificate chain PEM path.
    pub cert: PathBuf,
    /// Private key PEM path.
    pub key: PathBuf,
    /// Serial number (for CRLs).
    pub serial: u64,
}

impl CertFiles {
    /// Path of the certificate as a config string.
    pub fn cert_str(&self) -> String {
        self.cert.to_string_lossy().into_owned()
    }

    /// Path of the key as a config string.
    pub fn key_str(&self) -> String {
        self.key.to_string_lossy().into_owned()
    }

    /// The chain and key as rustls types (for a client certificate).
    pub fn load(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        (chain, PrivateKeyDer::from_pem_file(&self.key).unwrap())
    }
}

/// Which names and purpose a leaf certificate gets.
#[derive(Debug, Clone, Default)]
pub struct LeafSpec {
    /// Subject common name.
    pub cn: String,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// URI SANs (SPIFFE IDs).
    pub uris: Vec<String>,
    /// Client certificate (clientAuth EKU) instead of a server one.
    pub client: bool,
    /// Valid from `now + from_days` to `now + to_days`.
    pub from_days: i64,
    /// See `from_days`.
    pub to_days: i64,
}

/// A test certificate authority writing into its own temp dir.
pub struct TestCa {
    /// Directory holding every file this CA wrote.
    pub dir: PathBuf,
    /// The CA certificate PEM path.
    pub ca_cert: PathBuf,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    next_serial: u64,
}

impl TestCa {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Self {
        let dir = crate::temp_path(&format!("pki-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(30);
        p.not_after = now + Duration::days(365);
        let cert = p.self_signed(&key).unwrap();
        let ca_cert = dir.join("ca.pem");
        std::fs::write(&ca_cert, cert.pem()).unwrap();
        Self {
            dir,
            ca_cert,
            ca_der: cert.der().clone(),
            issuer: Issuer::new(p, key),
            next_serial: 100,
        }
    }

    /// The CA certificate path as a config string.
    pub fn ca_str(&self) -> String {
        self.ca_cert.to_string_lossy().into_owned()
    }

    /// A server certificate for `names`, valid now.
    pub fn server(&mut self, file: &str, names: &[&str]) -> CertFiles {
        self.leaf(
            file,
            &LeafSpec {
                cn: names.first().map_or("server", |n| n).to_owned(),
                dns: names.iter().map(|n| (*n).to_owned()).collect(),
                from_days: -1,
                to_days: 30,
                ..LeafSpec::default()
            },
        )
    }

    /// A client certificate, valid now.
    pub fn client(&mut self, file: &str, cn: &str, uris: &[&str]) -> CertFiles {
        self.leaf(
            file,
            &LeafSpec {
                cn: cn.into(),
                uris: uris.iter().map(|n| (*n).to_owned()).collect(),
                client: true,
                from_days: -1,
                to_days: 30,
                ..LeafSpec::default()
            },
        )
    }

    /// A leaf certificate as `spec` says, written to `DIR/file.{pem,key}`.
    pub fn leaf(&mut self, file: &str, spec: &LeafSpec) -> CertFiles {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(spec.dns.clone()).unwrap();
        for u in &spec.uris {
            p.subject_alt_names.push(SanType::URI(u.as_str().try_into().unwrap()));
        }
        p.distinguished_name.push(DnType::CommonName, spec.cn.clone());
        p.distinguished_name.push(DnType::OrganizationName, "Warden Tests");
        self.next_serial += 1;
        let serial = self.next_serial;
        p.serial_number = Some(SerialNumber::from(serial));
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![if spec.client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let now = OffsetDateTime::now_utc();
        p.not_before = now + Duration::days(spec.from_days);
        p.not_after = now + Duration::days(spec.to_days);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
            serial,
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// A CRL revoking `serials`, written to `DIR/file`.
    pub fn crl(&self, file: &str, serials: &[u64]) -> PathBuf {
        let now = OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now - Duration::hours(1),
            next_update: now + Duration::days(7),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - Duration::minutes(5),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap();
        let path = self.dir.join(file);
        std::fs::write(&path, crl.pem().unwrap()).unwrap();
        path
    }

    /// A rustls client config trusting this CA, offering `alpn`, optionally
    /// with a client certificate.
    pub fn client_config(&self, alpn: &[&str], client: Option<&CertFiles>) -> Arc<rustls::ClientConfig> {
        client_config_with(self, alpn, client, None)
    }
}

/// Like [`TestCa::client_config`], restricted to the key-exchange `groups` when given.
pub fn client_config_with(
    ca: &TestCa,
    alpn: &[&str],
    client: Option<&CertFiles>,
    groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
) -> Arc<rustls::ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(g) = groups {
        provider.kx_groups = g;
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.ca_der.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some(c) => {
            let (chain, key) = c.load();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(cfg)
}

/// A server config presenting `server`; when `client_ca` is given, clients
/// must present a certificate from it.
pub fn server_config(server: &CertFiles, client_ca: Option<&TestCa>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let (chain, key) = server.load();
    let mut cfg = builder.with_single_cert(chain, key).unwrap();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// A client config trusting `ca` that speaks TLS 1.2 only.
pub fn tls12_only_client_config(ca: &TestCa) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.ca_der.clone()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
