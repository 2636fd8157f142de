#![allow(clippy::unwrap_used)]

use super::BruteForceConfig;

#[test]
fn config_problems_are_listed() {
    let cfg: BruteForceConfig = serde_saphyr::from_str(concat!(
        "identity: { form_field: user, header: x-user }\n",
        "failure_statuses: [200]\n",
        "max_failures: 0\n",
        "lockout_secs: 600\n",
        "max_lockout_secs: 60\n",
    ))
    .unwrap();
    let paths: Vec<String> = cfg.build().unwrap_err().into_iter().map(|e| e.path).collect();
    for want in ["identity", "failure_statuses", "max_failures", "max_lockout_secs"] {
        assert!(paths.iter().any(|p| p == want), "{want} missing from {paths:?}");
    }
    let ok: BruteForceConfig = serde_saphyr::from_str("identity: { json_pointer: /username }\n").unwrap();
    assert!(ok.build().is_ok());
}
