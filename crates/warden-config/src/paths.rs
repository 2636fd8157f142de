//! Relative file paths in a config file are relative to the file's directory.

use std::path::Path;

use crate::schema::AccessLogConfig;

fn join(base: &Path, p: &mut String) {
    if !p.is_empty() && Path::new(p.as_str()).is_relative() {
        *p = base.join(p.as_str()).to_string_lossy().into_owned();
    }
}

/// Rewrites every relative path in the parsed config to sit under `base`.
pub(crate) fn resolve(parsed: &mut crate::load::Parsed, base: &Path) {
    for specs in &mut parsed.policies {
        for spec in specs {
            spec.resolve_paths(base);
        }
    }
    let config = &mut parsed.config;
    if let Some(file) = config.admin.api_token_file.as_mut() {
        join(base, file);
    }
    for l in &mut config.listeners {
        let Some(tls) = l.tls.as_mut() else { continue };
        for c in &mut tls.certificates {
            join(base, &mut c.cert);
            join(base, &mut c.key);
        }
        if let Some(ca) = tls.client_auth.ca.as_mut() {
            join(base, ca);
        }
        for crl in &mut tls.client_auth.crls {
            join(base, crl);
        }
    }
    for s in &mut config.services {
        let Some(tls) = s.tls.as_mut() else { continue };
        if let Some(ca) = tls.ca.as_mut() {
            join(base, ca);
        }
        if let Some(c) = tls.client_cert.as_mut() {
            join(base, &mut c.cert);
            join(base, &mut c.key);
        }
    }
    if let AccessLogConfig::File(f) = &mut config.access_log {
        join(base, f);
    }
    if let Some(store) = &mut config.store {
        store.resolve_paths(base);
    }
}
