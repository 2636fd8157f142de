//! `InjectionConfig`: the YAML shape of `type: injection`.

use serde::Deserialize;
use warden_core::OnError;
use warden_waf::{Categories, Category, Level, Scanner};

use super::Injection;
use super::fields::Exception;
use super::policy::UnscannableAction;
use crate::SpecError;

/// `type: injection` — every key has a default: all categories, level
/// `medium`, enforce, every input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionConfig {
    /// `enforce` (refuse, the default) or `report` (events only).
    #[serde(default)]
    pub mode: Mode,
    /// `low`, `medium` (default) or `high`.
    #[serde(default = "default_level")]
    pub level: String,
    /// Categories to detect (default: all): `sqli`, `xss`, `traversal`, `cmd`,
    /// `ssti`, `nosql`, `ldap`, `xxe`, `crlf`, `jndi`, `ssrf`.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// Inputs to scan (default: all): `path`, `query`, `headers`, `cookies`, `body`.
    #[serde(default)]
    pub scan: Option<Vec<Place>>,
    /// Scan only these headers (default: every header but the structured ones).
    #[serde(default)]
    pub headers: Option<Vec<String>>,
    /// Headers never scanned, added to the built-in list.
    #[serde(default)]
    pub skip_headers: Vec<String>,
    /// More field names to treat as URLs (SSRF checks), beside the built-in
    /// rule: a name containing `url`, `uri`, `href`, `link`, `callback`,
    /// `webhook`, `redirect`, `endpoint`, `feed`, `proxy`, `src` or `dest`.
    #[serde(default)]
    pub url_fields: Vec<String>,
    /// Places where some or all categories are not checked.
    #[serde(default)]
    pub exceptions: Vec<ExceptionConfig>,
    /// Bodies the policy cannot read (multipart, binary, compressed, a charset
    /// other than UTF-8): `refuse` (415, the default) or `allow` (unscanned).
    #[serde(default)]
    pub unscannable_bodies: UnscannableAction,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_level() -> String {
    "medium".into()
}

/// What a finding does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Refuse with 403 and emit an event.
    #[default]
    Enforce,
    /// Emit an event only.
    Report,
}

/// An input place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Path segments.
    Path,
    /// Query parameter names and values.
    Query,
    /// Request headers.
    Headers,
    /// Cookie values.
    Cookies,
    /// JSON, form and XML bodies.
    Body,
}

/// `exceptions[]` — one place where categories are not checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionConfig {
    /// `path`, `query`, `headers`, `cookies` or `body`.
    #[serde(rename = "in")]
    pub place: Place,
    /// Parameter, header or cookie name, form field name, or a JSON pointer
    /// into the body where `*` matches any one segment (`/items/*/note`).
    /// For `path`, the segment index from 0.
    pub name: String,
    /// Categories not checked there (default: all).
    #[serde(default)]
    pub categories: Option<Vec<String>>,
}

impl InjectionConfig {
    /// Checks names and compiles the policy, reporting every problem.
    pub fn build(&self) -> Result<Injection, Vec<SpecError>> {
        let mut errors = Vec::new();
        let level = Level::from_name(&self.level).unwrap_or_else(|| {
            errors.push(SpecError {
                path: "level".into(),
                message: format!("unknown level `{}`; use low, medium or high", self.level),
            });
            Level::Medium
        });
        let categories = match &self.categories {
            Some(names) => parse_categories(names, "categories", &mut errors),
            None => Categories::ALL,
        };
        if categories.is_empty() {
            errors.push(SpecError {
                path: "categories".into(),
                message: "names no category".into(),
            });
        }
        let places = self
            .scan
            .clone()
            .unwrap_or_else(|| vec![Place::Path, Place::Query, Place::Headers, Place::Cookies, Place::Body]);
        if places.is_empty() {
            errors.push(SpecError {
                path: "scan".into(),
                message: "names no input to scan".into(),
            });
        }
        let mut exceptions = Vec::new();
        for (i, e) in self.exceptions.iter().enumerate() {
            let cats = match &e.categories {
                Some(names) => parse_categories(names, &format!("exceptions[{i}].categories"), &mut errors),
                None => Categories::ALL,
            };
            if e.name.is_empty() {
                errors.push(SpecError {
                    path: format!("exceptions[{i}].name"),
                    message: "is empty".into(),
                });
            }
            if e.place == Place::Path && e.name.parse::<usize>().is_err() {
                errors.push(SpecError {
                    path: format!("exceptions[{i}].name"),
                    message: "a path exception names a segment index (0, 1, …)".into(),
                });
            }
            exceptions.push(Exception::new(e.place, &e.name, cats));
        }
        let named = self
            .headers
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, h)| (format!("headers[{i}]"), h));
        let skipped = self
            .skip_headers
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("skip_headers[{i}]"), h));
        for (path, h) in named.chain(skipped) {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                errors.push(SpecError {
                    path,
                    message: format!("`{h}` is not a header name"),
                });
            }
        }
        // The detectors compile now, not on the first request.
        warden_waf::Scanner::warm();
        if !errors.is_empty() {
            return Err(errors);
        }
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
        Ok(Injection {
            scanner: Scanner::new(level, categories),
            mode: self.mode,
            places,
            headers: self.headers.as_deref().map(lower),
            skip_headers: lower(&self.skip_headers),
            url_fields: lower(&self.url_fields),
            exceptions,
            unscannable: self.unscannable_bodies,
        })
    }
}

fn parse_categories(names: &[String], path: &str, errors: &mut Vec<SpecError>) -> Categories {
    let mut set = Categories::NONE;
    for (i, n) in names.iter().enumerate() {
        match Category::from_name(n) {
            Some(c) => set = set.with(c),
            None => errors.push(SpecError {
                path: format!("{path}[{i}]"),
                message: format!(
                    "unknown category `{n}`; known: {}",
                    Category::ALL.map(|c| c.name()).join(", ")
                ),
            }),
        }
    }
    set
}
