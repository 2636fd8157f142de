//! Validation and parsing of route path patterns into trie segments.
//!
//! A pattern must already be a normal path (what [`normalize_path`] would return for
//! it), so that a request path can only reach it by its canonical spelling. `{` and
//! `}` are reserved for template parameters.

use super::normalize::normalize_path;
use super::{PathPattern, RouteError};

/// One segment of a template pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    /// Matches exactly this text (possibly empty, for a trailing slash).
    Literal(Box<str>),
    /// Matches any one non-empty segment.
    Param,
}

/// A validated pattern, ready to insert into a host's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Parsed {
    /// The full path to match.
    Exact(Box<str>),
    /// Path segments of the prefix; `slash` when the pattern ends with `/`, in which
    /// case the path must continue past the last segment.
    Prefix {
        /// The literal segments (`/api/v1` → `api`, `v1`; `/` → none).
        segments: Vec<Box<str>>,
        /// The pattern ended with `/`.
        slash: bool,
    },
    /// Template segments (a trailing slash is a final empty literal) and the
    /// parameter names in order.
    Template {
        /// The segments after the leading `/`.
        segments: Vec<Segment>,
        /// The `{name}`s in order.
        names: Vec<Box<str>>,
    },
}

/// Validates `pattern` and splits it into segments.
pub(super) fn parse(pattern: &PathPattern) -> Result<Parsed, RouteError> {
    let raw = pattern.as_str();
    let invalid = |reason: String| RouteError::InvalidPattern {
        pattern: raw.to_owned(),
        reason,
    };
    match normalize_path(raw) {
        Err(err) => return Err(invalid(err.to_string())),
        Ok(normal) if normal != raw => {
            return Err(invalid(format!("not a normal path; write it as `{normal}`")));
        }
        Ok(_) => {}
    }
    let body = raw.strip_prefix('/').unwrap_or(raw);
    match pattern {
        PathPattern::Exact(_) | PathPattern::Prefix(_) if raw.contains(['{', '}']) => {
            Err(invalid("`{` and `}` are only allowed in template patterns".to_owned()))
        }
        PathPattern::Exact(_) => Ok(Parsed::Exact(raw.into())),
        PathPattern::Prefix(_) => {
            let (body, slash) = match body.strip_suffix('/') {
                Some(trimmed) => (trimmed, true),
                None => (body, false),
            };
            let segments = if body.is_empty() {
                Vec::new()
            } else {
                body.split('/').map(Box::from).collect()
            };
            Ok(Parsed::Prefix { segments, slash })
        }
        PathPattern::Template(_) => parse_template(body).map_err(invalid),
    }
}

/// Splits a template body (without its leading `/`) into segments and names.
fn parse_template(body: &str) -> Result<Parsed, String> {
    let mut segments = Vec::new();
    let mut names: Vec<Box<str>> = Vec::new();
    for segment in body.split('/') {
        let param = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        match param {
            Some(name) => {
                check_param_name(name)?;
                if names.iter().any(|n| &**n == name) {
                    return Err(format!("parameter `{{{name}}}` appears twice"));
                }
                names.push(name.into());
                segments.push(Segment::Param);
            }
            None if segment.contains(['{', '}']) => {
                return Err(format!(
                    "segment `{segment}`: a parameter must be a whole segment, as in `/users/{{id}}`"
                ));
            }
            None => segments.push(Segment::Literal(segment.into())),
        }
    }
    Ok(Parsed::Template { segments, names })
}

/// A parameter name is non-empty ASCII letters, digits and `_`.
fn check_param_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty parameter name `{}`".to_owned());
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "parameter name `{name}` may contain only ASCII letters, digits and `_`"
        ));
    }
    Ok(())
}
