#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use rcgen::{CertificateParams, KeyPair};

use crate::ServerTls;
use crate::config::{CertificateConfig, ClientAuthConfig, ClientAuthMode, HstsConfig, TlsListenerConfig, TlsVersion};

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "warden-tls-unit-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Self-signed cert for `names`, valid `days_from..days_to` around now; returns (cert, key) PEM.
fn self_signed(names: &[&str], days_from: i64, days_to: i64) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    let now = time_now();
    p.not_before = now + rcgen_days(days_from);
    p.not_after = now + rcgen_days(days_to);
    (p.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rcgen_days(d: i64) -> time::Duration {
    time::Duration::days(d)
}

fn write(d: &std::path::Path, name: &str, text: &str) -> String {
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn settings(certs: Vec<(String, String)>) -> TlsListenerConfig {
    TlsListenerConfig {
        certificates: certs
            .into_iter()
            .map(|(cert, key)| CertificateConfig { cert, key })
            .collect(),
        min_version: TlsVersion::Tls13,
        groups: vec!["X25519MLKEM768".into(), "X25519".into()],
        alpn: vec!["h2".into(), "http/1.1".into()],
        hsts: HstsConfig::default(),
        client_auth: ClientAuthConfig::default(),
    }
}

fn messages(r: Result<ServerTls, Vec<crate::TlsIssue>>) -> Vec<String> {
    r.expect_err("load must fail").iter().map(ToString::to_string).collect()
}

#[test]
fn good_certificate_loads_with_alpn_and_no_early_data() {
    let d = dir();
    let (c, k) = self_signed(&["api.example"], -1, 30);
    let tls = ServerTls::load(&settings(vec![(write(&d, "c.pem", &c), write(&d, "k.pem", &k))])).unwrap();
    let cfg = tls.config();
    assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(cfg.max_early_data_size, 0);
    assert_eq!(tls.hsts(), Some("max-age=31536000; includeSubDomains"));
}

#[test]
fn key_of_another_certificate_is_refused_naming_both_files() {
    let d = dir();
    let (c, _) = self_signed(&["a.example"], -1, 30);
    let (_, other_key) = self_signed(&["b.example"], -1, 30);
    let msgs = messages(ServerTls::load(&settings(vec![(
        write(&d, "c.pem", &c),
        write(&d, "other.key", &other_key),
    )])));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].starts_with("certificates[0].key:"), "{msgs:?}");
    assert!(msgs[0].contains("does not match"), "{msgs:?}");
    assert!(msgs[0].contains("other.key") && msgs[0].contains("c.pem"), "{msgs:?}");
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let d = dir();
    let (old, old_key) = self_signed(&["a.example"], -30, -1);
    let (future, future_key) = self_signed(&["b.example"], 2, 30);
    let msgs = messages(ServerTls::load(&settings(vec![
        (write(&d, "old.pem", &old), write(&d, "old.key", &old_key)),
        (write(&d, "future.pem", &future), write(&d, "future.key", &future_key)),
    ])));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        msgs[0].starts_with("certificates[0].cert:") && msgs[0].contains("expired"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].starts_with("certificates[1].cert:") && msgs[1].contains("not valid before"),
        "{msgs:?}"
    );
}

#[test]
fn unreadable_files_and_bad_settings_are_all_listed() {
    let d = dir();
    let mut s = settings(vec![(
        d.join("missing.pem").to_string_lossy().into_owned(),
        write(&d, "junk.key", "not a key"),
    )]);
    s.groups = vec!["X25519".into(), "ffdhe2048".into(), "X25519".into()];
    s.alpn = vec!["spdy/3".into()];
    s.client_auth = ClientAuthConfig {
        mode: ClientAuthMode::Required,
        ca: None,
        crls: vec![],
        identity_header: None,
    };
    let msgs = messages(ServerTls::load(&s));
    let joined = msgs.join("\n");
    for want in [
        "certificates[0].cert: cannot read",
        "certificates[0].key:",
        "groups[1]: unknown group `ffdhe2048`",
        "groups[2]: `X25519` is listed twice",
        "alpn[0]:",
        "client_auth.ca: required",
    ] {
        assert!(joined.contains(want), "missing `{want}` in:\n{joined}");
    }
}

#[test]
fn hsts_preload_needs_subdomains_and_a_year() {
    let d = dir();
    let (c, k) = self_signed(&["a.example"], -1, 30);
    let mut s = settings(vec![(write(&d, "c.pem", &c), write(&d, "k.pem", &k))]);
    s.hsts.preload = true;
    s.hsts.max_age_secs = 600;
    let msgs = messages(ServerTls::load(&s));
    assert!(msgs[0].starts_with("hsts.preload:"), "{msgs:?}");
    s.hsts.max_age_secs = 63_072_000;
    let tls = ServerTls::load(&s).unwrap();
    assert_eq!(tls.hsts(), Some("max-age=63072000; includeSubDomains; preload"));
}

#[test]
fn refresh_swaps_in_a_replaced_certificate_and_keeps_the_old_one_on_a_bad_file() {
    let d = dir();
    let (c, k) = self_signed(&["a.example"], -1, 30);
    let (cp, kp) = (write(&d, "c.pem", &c), write(&d, "k.pem", &k));
    let tls = ServerTls::load(&settings(vec![(cp.clone(), kp.clone())])).unwrap();
    assert!(!tls.refresh().unwrap(), "nothing changed yet");
    let first = tls.config();

    let (c2, k2) = self_signed(&["a.example"], -1, 60);
    std::fs::write(&cp, &c2).unwrap();
    std::fs::write(&kp, &k2).unwrap();
    assert!(tls.refresh().unwrap());
    let second = tls.config();
    assert!(!std::sync::Arc::ptr_eq(&first, &second));

    // A certificate whose key is not replaced along with it: refused, old config kept.
    let (c3, _) = self_signed(&["a.example"], -1, 60);
    std::fs::write(&cp, &c3).unwrap();
    let errs = tls.refresh().unwrap_err();
    assert!(errs[0].message.contains("does not match"), "{errs:?}");
    assert!(std::sync::Arc::ptr_eq(&second, &tls.config()));
}

#[test]
fn subject_values_are_escaped_so_a_cn_cannot_pose_as_more_attributes() {
    use crate::config::AllowedIdentity;
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "billing, O=Example");
    let der = p.self_signed(&key).unwrap().der().clone();
    let id = crate::client_identity(&der).unwrap();
    assert_eq!(id.subject, "CN=billing\\, O\\=Example");
    let forged = crate::config::ClientCertRule {
        allow: vec![AllowedIdentity::Subject("CN=billing, O=Example".into())],
    };
    assert!(!forged.allows(&id));
    let exact = crate::config::ClientCertRule {
        allow: vec![AllowedIdentity::Subject(id.subject.clone())],
    };
    assert!(exact.allows(&id));
}
