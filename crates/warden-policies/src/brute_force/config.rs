//! `brute_force` config and its compilation.

use serde::Deserialize;
use warden_core::OnError;

use super::policy::{BruteForce, Identity, Settings};
use crate::SpecError;

/// `type: brute_force`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BruteForceConfig {
    /// Where the attempted identity (user name, client id) is.
    pub identity: IdentityConfig,
    /// Upstream statuses that mean a failed attempt.
    #[serde(default = "default_failures")]
    pub failure_statuses: Vec<u16>,
    /// Failures per identity within `window_secs` before a lock-out.
    #[serde(default = "default_max_failures")]
    pub max_failures: u64,
    /// Failures per client address (IPv6 /64) within `window_secs` before
    /// the address is locked out.
    #[serde(default = "default_ip_max_failures")]
    pub ip_max_failures: u64,
    /// How long failures are remembered.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// The first lock-out; each further one doubles it…
    #[serde(default = "default_lockout")]
    pub lockout_secs: u64,
    /// …up to this.
    #[serde(default = "default_max_lockout")]
    pub max_lockout_secs: u64,
    /// Credential-stuffing detection (off unless set).
    #[serde(default)]
    pub stuffing: Option<StuffingConfig>,
    /// What happens when the policy itself breaks.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_failures() -> Vec<u16> {
    vec![401, 403]
}
fn default_max_failures() -> u64 {
    5
}
fn default_ip_max_failures() -> u64 {
    50
}
fn default_window() -> u64 {
    900
}
fn default_lockout() -> u64 {
    60
}
fn default_max_lockout() -> u64 {
    86_400
}

/// Where the identity is; exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// A field of an `application/x-www-form-urlencoded` body.
    #[serde(default)]
    pub form_field: Option<String>,
    /// A JSON pointer into an `application/json` body.
    #[serde(default)]
    pub json_pointer: Option<String>,
    /// A request header (lower case).
    #[serde(default)]
    pub header: Option<String>,
    /// The user part of `Authorization: Basic`.
    #[serde(default)]
    pub basic_auth: bool,
}

/// `stuffing:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StuffingConfig {
    /// Distinct identities from one address within the window that raise
    /// the `credential_stuffing` event.
    pub distinct_identities: u64,
    /// The window.
    #[serde(default = "default_stuffing_window")]
    pub window_secs: u64,
    /// When set, the address is locked out this long once flagged.
    #[serde(default)]
    pub block_secs: u64,
}

fn default_stuffing_window() -> u64 {
    300
}

impl BruteForceConfig {
    /// Compiles the entry, reporting every problem.
    pub fn build(&self) -> Result<BruteForce, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut err = |path: &str, message: String| {
            errors.push(SpecError {
                path: path.into(),
                message,
            })
        };
        let i = &self.identity;
        let identity = match (&i.form_field, &i.json_pointer, &i.header, i.basic_auth) {
            (Some(f), None, None, false) if !f.is_empty() => Some(Identity::Form(f.clone())),
            (None, Some(p), None, false) if p.starts_with('/') => Some(Identity::Json(p.clone())),
            (None, None, Some(h), false) => match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(n) if n.as_str() == h => Some(Identity::Header(n)),
                _ => {
                    err("identity.header", format!("`{h}` is not a lower-case header name"));
                    None
                }
            },
            (None, None, None, true) => Some(Identity::Basic),
            _ => {
                err(
                    "identity",
                    "set exactly one of form_field, json_pointer (starting with /), header, basic_auth: true".into(),
                );
                None
            }
        };
        if self.failure_statuses.is_empty() || self.failure_statuses.iter().any(|s| !(400..=599).contains(s)) {
            err("failure_statuses", "one or more statuses 400–599".into());
        }
        for (name, v, max) in [
            ("max_failures", self.max_failures, 1_000),
            ("ip_max_failures", self.ip_max_failures, 1_000_000),
            ("window_secs", self.window_secs, 86_400),
            ("lockout_secs", self.lockout_secs, 86_400),
            ("max_lockout_secs", self.max_lockout_secs, 30 * 86_400),
        ] {
            if v == 0 || v > max {
                err(name, format!("must be 1–{max}"));
            }
        }
        if self.max_lockout_secs < self.lockout_secs {
            err("max_lockout_secs", "must be at least lockout_secs".into());
        }
        if let Some(s) = &self.stuffing
            && (s.distinct_identities == 0 || s.window_secs == 0 || s.window_secs > 86_400)
        {
            err("stuffing", "distinct_identities ≥ 1 and window_secs 1–86400".into());
        }
        match identity {
            Some(identity) if errors.is_empty() => Ok(BruteForce::new(Settings {
                identity,
                failure_statuses: self.failure_statuses.clone(),
                max_failures: self.max_failures,
                ip_max_failures: self.ip_max_failures,
                window_secs: self.window_secs,
                lockout_secs: self.lockout_secs,
                max_lockout_secs: self.max_lockout_secs,
                stuffing: self.stuffing.clone(),
            })),
            _ => Err(errors),
        }
    }
}
