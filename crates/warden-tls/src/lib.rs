//! Warden's TLS on rustls with the aws-lc-rs provider: listener settings
//! ([`config`]), certificate loading with load-time checks, SNI selection and
//! reload from disk ([`ServerTls`]), and the facts of a finished handshake
//! ([`TlsFacts`]) for logs, metrics and mTLS decisions.
//!
//! Only aws-lc-rs is compiled in; [`install_provider`] makes it the process
//! default so nothing can pick another provider by accident.

pub mod config;
mod facts;
mod material;
mod server;
mod upstream;

pub use facts::{TlsFacts, client_identity, sha256_hex};
pub use material::TlsIssue;
pub use server::ServerTls;
pub use upstream::{UpstreamTls, UpstreamTlsConfig, native_roots, spki_pin};
pub use warden_core::ClientIdentity;

/// Installs aws-lc-rs as the process-wide rustls provider (idempotent).
pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests;
