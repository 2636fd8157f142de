//! `authz` config and its compilation into [`Authz`].

use std::str::FromStr as _;

use cedar_policy::{PolicyId, PolicySet};
use serde::Deserialize;
use warden_core::OnError;

use super::policy::{Authz, Binding, Source, Target};
use crate::SpecError;

/// `type: authz`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfig {
    /// File with Cedar policies (relative to the config file).
    #[serde(default)]
    pub policies_file: Option<String>,
    /// Cedar policies inline, instead of a file.
    #[serde(default)]
    pub policies: Option<String>,
    /// Cedar schema (human syntax) the policies are validated against at
    /// load (strict mode), relative to the config file.
    #[serde(default)]
    pub schema_file: Option<String>,
    /// Object-level bindings: each must hold or the request is refused.
    #[serde(default)]
    pub bind: Vec<BindingConfig>,
    /// Decisions remembered (0: no decision cache).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// How long a decision is reused at most (never past the token's `exp`).
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// Request headers copied into `context.headers` (lower-case names).
    #[serde(default)]
    pub context_headers: Vec<String>,
    /// Function-level authorization for administrative routes: the caller
    /// must be in one of these groups, checked before Cedar.
    #[serde(default)]
    pub require_groups: Vec<String>,
    /// Enumeration detection (off unless set).
    #[serde(default)]
    pub enumeration: Option<super::EnumerationConfig>,
    /// What happens when the policy itself breaks.
    #[serde(default)]
    pub on_error: OnError,
}

/// One object id the caller must own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    /// A path template parameter holding the id (e.g. `user_id` of `/users/{user_id}`).
    #[serde(default)]
    pub path_param: Option<String>,
    /// A query parameter holding the id.
    #[serde(default)]
    pub query_param: Option<String>,
    /// A JSON pointer (RFC 6901, e.g. `/order/owner_id`) into the JSON
    /// request body; an array there binds every element.
    #[serde(default)]
    pub body_pointer: Option<String>,
    /// The id must equal the consumer name…
    #[serde(default)]
    pub equals_consumer: bool,
    /// …or this claim of the caller's token (a string, or a list containing the id)…
    #[serde(default)]
    pub equals_claim: Option<String>,
    /// …or the owner an ownership service names for the id.
    #[serde(default)]
    pub owner_lookup: Option<super::OwnerLookupConfig>,
}

fn default_cache_entries() -> usize {
    10_000
}

fn default_cache_ttl() -> u64 {
    60
}

/// What a compiled [`Authz`] is made of.
pub(super) struct Parts {
    pub policies: PolicySet,
    pub bindings: Vec<Binding>,
    pub enumeration: Option<super::EnumerationConfig>,
    pub decisions: Option<super::decisions::Decisions>,
    pub context_headers: Vec<http::HeaderName>,
    pub require_groups: Vec<std::sync::Arc<str>>,
}

impl AuthzConfig {
    /// Makes a relative `policies_file` relative to `base`.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        for f in [&mut self.policies_file, &mut self.schema_file].into_iter().flatten() {
            if std::path::Path::new(f.as_str()).is_relative() {
                *f = base.join(f.as_str()).to_string_lossy().into_owned();
            }
        }
    }

    /// Compiles the entry, reporting every problem (Cedar errors with line and column).
    pub fn build(&self) -> Result<Authz, Vec<SpecError>> {
        let mut errors = Vec::new();
        let (text, origin) = match (&self.policies_file, &self.policies) {
            (Some(f), None) => match std::fs::read_to_string(f) {
                Ok(t) => (t, f.clone()),
                Err(e) => {
                    errors.push(SpecError {
                        path: "policies_file".into(),
                        message: format!("cannot read `{f}`: {e}"),
                    });
                    (String::new(), f.clone())
                }
            },
            (None, Some(t)) => (t.clone(), "policies".into()),
            _ => {
                errors.push(SpecError {
                    path: "policies_file".into(),
                    message: "set exactly one of `policies_file`, `policies`".into(),
                });
                (String::new(), String::new())
            }
        };
        let set = if errors.is_empty() {
            match parse_policies(&text) {
                Ok(set) => Some(set),
                Err(problems) => {
                    for p in problems {
                        errors.push(SpecError {
                            path: if self.policies_file.is_some() {
                                "policies_file".into()
                            } else {
                                "policies".into()
                            },
                            message: format!("{origin}:{p}"),
                        });
                    }
                    None
                }
            }
        } else {
            None
        };
        if let (Some(set), Some(schema_file)) = (&set, &self.schema_file) {
            let at = if self.policies_file.is_some() {
                "policies_file"
            } else {
                "policies"
            };
            errors.extend(validate_against_schema(set, &text, &origin, at, schema_file));
        }
        let mut bindings = Vec::new();
        for (i, b) in self.bind.iter().enumerate() {
            let at = format!("bind[{i}]");
            let source = match (&b.path_param, &b.query_param, &b.body_pointer) {
                (Some(p), None, None) if !p.is_empty() => Some(Source::Path(p.clone())),
                (None, Some(q), None) if !q.is_empty() => Some(Source::Query(q.clone())),
                (None, None, Some(j)) if j.starts_with('/') => Some(Source::Body(j.clone())),
                (None, None, Some(j)) => {
                    errors.push(SpecError {
                        path: format!("{at}.body_pointer"),
                        message: format!("`{j}` is not a JSON pointer; it starts with `/` (e.g. `/owner_id`)"),
                    });
                    None
                }
                _ => {
                    errors.push(SpecError {
                        path: at.clone(),
                        message: "set exactly one of `path_param`, `query_param`, `body_pointer`".into(),
                    });
                    None
                }
            };
            let target = match (b.equals_consumer, &b.equals_claim, &b.owner_lookup) {
                (true, None, None) => Some(Target::Consumer),
                (false, Some(c), None) if !c.is_empty() => Some(Target::Claim(c.clone())),
                (false, None, Some(l)) => {
                    let problems = l.problems();
                    for p in &problems {
                        errors.push(SpecError {
                            path: format!("{at}.owner_lookup"),
                            message: p.clone(),
                        });
                    }
                    problems
                        .is_empty()
                        .then(|| Target::Lookup(std::sync::Arc::new(l.build())))
                }
                _ => {
                    errors.push(SpecError {
                        path: at,
                        message: "set exactly one of `equals_consumer: true`, `equals_claim`, `owner_lookup`".into(),
                    });
                    None
                }
            };
            if let (Some(source), Some(target)) = (source, target) {
                bindings.push(Binding { source, target });
            }
        }
        if let Some(e) = &self.enumeration {
            if !(1..=10_000).contains(&e.max_distinct_ids) {
                errors.push(SpecError {
                    path: "enumeration.max_distinct_ids".into(),
                    message: "must be 1–10000".into(),
                });
            }
            if !(1..=86_400).contains(&e.window_secs) {
                errors.push(SpecError {
                    path: "enumeration.window_secs".into(),
                    message: "must be 1–86400".into(),
                });
            }
            if e.block_secs > 30 * 86_400 {
                errors.push(SpecError {
                    path: "enumeration.block_secs".into(),
                    message: "must be at most 2592000 (30 days)".into(),
                });
            }
        }
        if !(1..=3600).contains(&self.cache_ttl_secs) {
            errors.push(SpecError {
                path: "cache_ttl_secs".into(),
                message: "must be 1–3600".into(),
            });
        }
        if self.cache_entries > 1_000_000 {
            errors.push(SpecError {
                path: "cache_entries".into(),
                message: "must be at most 1000000".into(),
            });
        }
        let mut context_headers = Vec::new();
        for (i, h) in self.context_headers.iter().enumerate() {
            match http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(name) if name.as_str() == h => context_headers.push(name),
                _ => errors.push(SpecError {
                    path: format!("context_headers[{i}]"),
                    message: format!("`{h}` is not a lower-case header name"),
                }),
            }
        }
        if self.require_groups.iter().any(String::is_empty) {
            errors.push(SpecError {
                path: "require_groups".into(),
                message: "group names must not be empty".into(),
            });
        }
        match set {
            Some(set) if errors.is_empty() => Ok(Authz::new(Parts {
                decisions: super::decisions::Decisions::new(
                    self.cache_entries,
                    self.cache_ttl_secs,
                    &text,
                    context_headers.clone(),
                ),
                policies: set,
                bindings,
                enumeration: self.enumeration.clone(),
                context_headers,
                require_groups: self
                    .require_groups
                    .iter()
                    .map(|g| std::sync::Arc::from(g.as_str()))
                    .collect(),
            })),
            _ => Err(errors),
        }
    }
}

/// Parses Cedar policies; policies annotated `@id("…")` take that id.
/// Errors are `line:column: message`.
pub fn parse_policies(text: &str) -> Result<PolicySet, Vec<String>> {
    use miette::Diagnostic as _;
    let parsed = PolicySet::from_str(text).map_err(|errs| {
        errs.iter()
            .map(|e| {
                let offset = e.labels().and_then(|mut l| l.next()).map_or(0, |l| l.offset());
                let (line, col) = line_col(text, offset);
                format!("{line}:{col}: {e}")
            })
            .collect::<Vec<_>>()
    })?;
    let mut out = PolicySet::new();
    for p in parsed.policies() {
        let p = match p.annotation("id") {
            Some(id) => p.new_id(PolicyId::new(id)),
            None => p.clone(),
        };
        out.add(p).map_err(|e| vec![format!("1:1: {e}")])?;
    }
    Ok(out)
}

/// Strict validation of `set` against the schema in `schema_file`: every
/// problem, with file, line and column.
fn validate_against_schema(set: &PolicySet, text: &str, origin: &str, at: &str, schema_file: &str) -> Vec<SpecError> {
    let offset_of = |d: &dyn miette::Diagnostic| d.labels().and_then(|mut l| l.next()).map_or(0, |l| l.offset());
    let schema_text = match std::fs::read_to_string(schema_file) {
        Ok(t) => t,
        Err(e) => {
            return vec![SpecError {
                path: "schema_file".into(),
                message: format!("cannot read `{schema_file}`: {e}"),
            }];
        }
    };
    let schema = match cedar_policy::Schema::from_cedarschema_str(&schema_text) {
        Ok((schema, _warnings)) => schema,
        Err(e) => {
            let (line, col) = line_col(&schema_text, offset_of(&e));
            return vec![SpecError {
                path: "schema_file".into(),
                message: format!("{schema_file}:{line}:{col}: {e}"),
            }];
        }
    };
    let result = cedar_policy::Validator::new(schema).validate(set, cedar_policy::ValidationMode::Strict);
    result
        .validation_errors()
        .map(|e| {
            let (line, col) = line_col(text, offset_of(e));
            SpecError {
                path: at.into(),
                message: format!("{origin}:{line}:{col}: {e}"),
            }
        })
        .collect()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
