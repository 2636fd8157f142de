//! `CsrfConfig`: the YAML shape of `type: csrf`.

use serde::Deserialize;
use warden_core::OnError;

use super::Csrf;
use crate::SpecError;
use crate::origin::normalise_origin;

/// `type: csrf`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrfConfig {
    /// Origins allowed to send unsafe requests (`https://app.example.com`,
    /// scheme, host and optional port; no path). Empty (the default): only
    /// the gateway's own origin, from the request's host and scheme.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Cookies that authenticate a request (the session cookie). Default: any
    /// cookie makes the request cookie-authenticated.
    #[serde(default)]
    pub session_cookies: Vec<String>,
    /// Let unsafe requests without `Origin` and `Referer` through (default
    /// false: refused; browsers send `Origin` on cross-site POSTs).
    #[serde(default)]
    pub allow_missing_origin: bool,
    /// Also require a header that repeats a CSRF cookie.
    #[serde(default)]
    pub double_submit: Option<DoubleSubmitConfig>,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

/// `double_submit:` — the cookie the application sets and the header its
/// pages copy it into.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoubleSubmitConfig {
    /// Cookie name, e.g. `csrf_token`.
    pub cookie: String,
    /// Header name, e.g. `x-csrf-token`.
    pub header: String,
}

impl CsrfConfig {
    /// Checks origins and names, reporting every problem.
    pub fn build(&self) -> Result<Csrf, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut origins = Vec::new();
        for (i, o) in self.allow_origins.iter().enumerate() {
            match normalise_origin(o) {
                Some(n) => origins.push(n),
                None => errors.push(SpecError {
                    path: format!("allow_origins[{i}]"),
                    message: format!(
                        "`{o}` is not an origin; write scheme://host[:port], e.g. https://app.example.com"
                    ),
                }),
            }
        }
        for (i, name) in self.session_cookies.iter().enumerate() {
            if !cookie_name(name) {
                errors.push(SpecError {
                    path: format!("session_cookies[{i}]"),
                    message: format!("`{name}` is not a cookie name"),
                });
            }
        }
        let mut header = None;
        if let Some(ds) = &self.double_submit {
            if !cookie_name(&ds.cookie) {
                errors.push(SpecError {
                    path: "double_submit.cookie".into(),
                    message: format!("`{}` is not a cookie name", ds.cookie),
                });
            }
            match http::HeaderName::from_bytes(ds.header.as_bytes()) {
                Ok(h) => header = Some(h),
                Err(_) => errors.push(SpecError {
                    path: "double_submit.header".into(),
                    message: format!("`{}` is not a header name", ds.header),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Csrf {
            origins,
            session_cookies: self.session_cookies.clone(),
            allow_missing_origin: self.allow_missing_origin,
            double_submit: self
                .double_submit
                .as_ref()
                .zip(header)
                .map(|(ds, h)| (ds.cookie.clone(), h)),
        })
    }
}

/// A cookie name as RFC 6265 allows it: a token (no spaces, separators or
/// control characters).
fn cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}
