//! The `oauth_server:` config section.

use serde::Deserialize;

/// `oauth_server:` — the built-in authorization server for machine clients.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthServerConfig {
    /// The `iss` of issued tokens and the base of the endpoint URLs, e.g.
    /// `https://api.example.com`. `https` is required except on loopback hosts.
    pub issuer: String,
    /// Path under which the endpoints are served (`/token`, `/jwks`,
    /// `/revoke`, `/introspect`).
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    /// The `aud` of issued tokens (default: the issuer).
    #[serde(default)]
    pub audience: Option<String>,
    /// Signing algorithm for new keys: `ES256` (default) or `EdDSA`.
    #[serde(default = "default_alg")]
    pub signing_alg: String,
    /// Access-token lifetime (60–86400).
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime (for clients registered with refresh tokens).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// A signing key signs for this long, then a new one takes over (at
    /// least one day).
    #[serde(default = "default_rotation")]
    pub key_rotation_secs: u64,
    /// A retired key stays published this long, so tokens it signed stay
    /// verifiable (at least `access_token_ttl_secs`).
    #[serde(default = "default_overlap")]
    pub key_overlap_secs: u64,
    /// Largest `client_assertion` lifetime accepted for `private_key_jwt`.
    #[serde(default = "default_assertion_age")]
    pub max_assertion_lifetime_secs: u64,
    /// Policies for the endpoints themselves: `ip_rules`, `request_limits`
    /// and `rate_limit` (the endpoints answer on their own, so policies that
    /// read the body or the answer do not apply).
    #[serde(default)]
    pub policies: Vec<warden_policies::PolicySpec>,
}

fn default_path_prefix() -> String {
    "/oauth2".into()
}
fn default_alg() -> String {
    "ES256".into()
}
fn default_access_ttl() -> u64 {
    600
}
fn default_refresh_ttl() -> u64 {
    86_400
}
fn default_rotation() -> u64 {
    30 * 86_400
}
fn default_overlap() -> u64 {
    86_400
}
fn default_assertion_age() -> u64 {
    300
}

impl OAuthServerConfig {
    /// The `aud` of issued tokens.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.issuer)
    }

    /// `issuer` without a trailing slash, for building URLs.
    pub fn base(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// The path of endpoint `name` (`token`, `jwks`…).
    pub fn endpoint_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path_prefix.trim_end_matches('/'))
    }

    /// The absolute URL of endpoint `name`.
    pub fn endpoint_url(&self, name: &str) -> String {
        let origin = origin(self.base());
        format!("{origin}{}", self.endpoint_path(name))
    }

    /// The RFC 8414 metadata path: `/.well-known/oauth-authorization-server`
    /// followed by the issuer's path, if any.
    pub fn metadata_path(&self) -> String {
        let base = self.base();
        let path = base.get(origin(base).len()..).unwrap_or("");
        format!("/.well-known/oauth-authorization-server{path}")
    }

    /// Every problem with the section, as `(key, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self.issuer.split_once("://") {
            Some(("https", rest)) if !rest.is_empty() && !rest.contains(['?', '#']) => {}
            Some(("http", rest)) if is_loopback(rest) => {}
            _ => out.push((
                "issuer",
                "must be an https:// URL without query or fragment (http:// only for localhost/127.0.0.1)".into(),
            )),
        }
        if !self.path_prefix.starts_with('/')
            || self.path_prefix.len() < 2
            || !self
                .path_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
            || self.path_prefix.contains("//")
            || self.path_prefix.contains("/.")
        {
            out.push((
                "path_prefix",
                "must be a path like /oauth2 (letters, digits, / - _ .)".into(),
            ));
        }
        if !matches!(self.signing_alg.as_str(), "ES256" | "EdDSA") {
            out.push(("signing_alg", "must be ES256 or EdDSA".into()));
        }
        if !(60..=86_400).contains(&self.access_token_ttl_secs) {
            out.push(("access_token_ttl_secs", "must be between 60 and 86400".into()));
        }
        if !(300..=90 * 86_400).contains(&self.refresh_token_ttl_secs) {
            out.push((
                "refresh_token_ttl_secs",
                "must be between 300 and 7776000 (90 days)".into(),
            ));
        }
        if self.key_rotation_secs < 86_400 {
            out.push(("key_rotation_secs", "must be at least 86400 (one day)".into()));
        }
        if self.key_overlap_secs < self.access_token_ttl_secs {
            out.push((
                "key_overlap_secs",
                "must be at least access_token_ttl_secs, or tokens outlive their key".into(),
            ));
        }
        if !(30..=3600).contains(&self.max_assertion_lifetime_secs) {
            out.push(("max_assertion_lifetime_secs", "must be between 30 and 3600".into()));
        }
        if self.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
            out.push(("audience", "must not be empty".into()));
        }
        out
    }
}

/// `scheme://authority` of an absolute URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url[after..].find('/').map_or(url.len(), |i| after + i);
    &url[..end]
}

fn is_loopback(rest: &str) -> bool {
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(
        host,
        |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host },
    );
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(issuer: &str) -> OAuthServerConfig {
        serde_json::from_value(serde_json::json!({ "issuer": issuer })).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn urls_and_metadata_path_follow_the_issuer() {
        let c = cfg("https://api.example.com/");
        assert_eq!(c.endpoint_url("token"), "https://api.example.com/oauth2/token");
        assert_eq!(c.metadata_path(), "/.well-known/oauth-authorization-server");
        let c = cfg("https://api.example.com/tenant1");
        assert_eq!(c.metadata_path(), "/.well-known/oauth-authorization-server/tenant1");
        assert_eq!(c.endpoint_url("jwks"), "https://api.example.com/oauth2/jwks");
        assert!(c.problems().is_empty());
    }

    #[test]
    fn bad_settings_are_all_listed() {
        for bad in [
            "http://api.example.com",
            "ftp://x",
            "https://",
            "https://a?b",
            "api.example.com",
        ] {
            assert_eq!(cfg(bad).problems()[0].0, "issuer", "{bad}");
        }
        assert!(cfg("http://127.0.0.1:8080").problems().is_empty());
        assert!(cfg("http://localhost").problems().is_empty());
        let c: OAuthServerConfig = serde_json::from_value(serde_json::json!({
            "issuer": "https://a", "path_prefix": "oauth", "signing_alg": "HS256",
            "access_token_ttl_secs": 5, "key_rotation_secs": 60, "key_overlap_secs": 1,
            "max_assertion_lifetime_secs": 1
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&str> = c.problems().iter().map(|p| p.0).collect();
        assert_eq!(
            keys,
            [
                "path_prefix",
                "signing_alg",
                "access_token_ttl_secs",
                "key_rotation_secs",
                "key_overlap_secs",
                "max_assertion_lifetime_secs"
            ]
        );
    }
}
