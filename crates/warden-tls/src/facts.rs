//! What a finished handshake tells: protocol version, cipher suite, key-exchange
//! group (post-quantum or classical), ALPN, SNI, and the verified client
//! certificate's identity. Computed once per connection, read by the access
//! log, metrics, mTLS route checks and the upstream identity header.

use std::fmt::Write as _;
use std::sync::Arc;

use rustls::server::ServerConnection;
use rustls::{NamedGroup, ProtocolVersion};
use rustls_pki_types::CertificateDer;
use warden_core::ClientIdentity;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Negotiated parameters of one TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFacts {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
    /// IANA name of the cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: &'static str,
    /// Key-exchange group, e.g. `X25519MLKEM768`.
    pub group: &'static str,
    /// True when the key exchange includes ML-KEM (quantum-safe).
    pub post_quantum: bool,
    /// The SNI name the client sent.
    pub sni: Option<Arc<str>>,
    /// The verified client certificate, when one was presented.
    pub client: Option<Arc<ClientIdentity>>,
}

/// Reads a verified client certificate's identity out of its DER form.
pub fn client_identity(der: &CertificateDer<'_>) -> Option<ClientIdentity> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut dns = Vec::new();
    let mut uris = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                GeneralName::URI(u) => uris.push((*u).to_owned()),
                _ => {}
            }
        }
    }
    Some(ClientIdentity {
        subject: subject_dn(cert.subject()),
        dns,
        uris,
        sha256: sha256_hex(der.as_ref()),
    })
}

/// The subject as `CN=a, O=b` (DER order, multi-valued RDNs joined with `+`),
/// with RFC 4514 escaping of every special character in values, so a value
/// that contains `, O=...` cannot pass for another attribute. Values that are
/// not strings print as `#hex`.
fn subject_dn(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let mut rdns = Vec::new();
    for rdn in name.iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|a| {
                let ty = x509_parser::objects::oid2abbrev(a.attr_type(), registry)
                    .map_or_else(|_| a.attr_type().to_id_string(), str::to_owned);
                let value = match a.as_str() {
                    Ok(s) => escape_dn_value(s),
                    Err(_) => format!("#{}", hex(a.as_slice())),
                };
                format!("{ty}={value}")
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.join(", ")
}

fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

fn is_post_quantum(group: NamedGroup) -> bool {
    matches!(
        group,
        NamedGroup::X25519MLKEM768
            | NamedGroup::secp256r1MLKEM768
            | NamedGroup::MLKEM512
            | NamedGroup::MLKEM768
            | NamedGroup::MLKEM1024
    )
}

impl TlsFacts {
    /// Facts of a connection whose handshake has completed.
    pub fn of(conn: &ServerConnection) -> Self {
        let version = match conn.protocol_version() {
            Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        let group = conn.negotiated_key_exchange_group().map(|g| g.name());
        let client = conn
            .peer_certificates()
            .and_then(<[CertificateDer<'_>]>::first)
            .and_then(client_identity)
            .map(Arc::new);
        Self {
            version,
            cipher,
            group: group.and_then(|g| g.as_str()).unwrap_or("unknown"),
            post_quantum: group.is_some_and(is_post_quantum),
            sni: conn.server_name().map(Arc::from),
            client,
        }
    }
}
