//! Which operation of a spec a request is: the path (under a base path)
//! against every template, a literal segment winning over a `{param}`.

use crate::{Spec, Violation};

/// The spec's path templates, split once.
#[derive(Debug, Clone)]
pub struct OperationMatcher {
    /// Per operation: its path split into segments (`None` for `{param}`).
    templates: Vec<Vec<Option<String>>>,
    base_path: String,
}

impl OperationMatcher {
    /// Splits the templates of `spec`; `base_path` (`/v1`, or empty) is
    /// stripped from request paths before matching.
    pub fn new(spec: &Spec, base_path: String) -> Self {
        let templates = spec
            .operations
            .iter()
            .map(|op| {
                op.path
                    .split('/')
                    .skip(1)
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect()
            })
            .collect();
        Self { templates, base_path }
    }

    /// The index (into `spec().operations`) of the operation for this method
    /// and path; a literal segment wins over a template.
    pub fn find(&self, spec: &Spec, method: &str, path: &str) -> Result<usize, Violation> {
        let Some(rest) = path
            .strip_prefix(self.base_path.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))
        else {
            return Err(Violation::UndocumentedPath);
        };
        // `/users/1/` is `/users/1`: frameworks serve both, so both match.
        let rest = match rest.strip_suffix('/') {
            Some(trimmed) if !trimmed.is_empty() => trimmed,
            _ if rest.is_empty() => "/",
            _ => rest,
        };
        let segments: Vec<&str> = rest.split('/').skip(1).collect();
        let fits = |t: &Vec<Option<String>>| {
            t.len() == segments.len()
                && t.iter().zip(&segments).all(|(want, got)| match want {
                    Some(lit) => lit == got,
                    None => !got.is_empty(),
                })
        };
        let literal = |t: &Vec<Option<String>>| t.iter().filter(|s| s.is_some()).count();
        let mut best: Option<(usize, usize)> = None;
        let mut allowed: Vec<String> = Vec::new();
        for (i, (op, t)) in spec.operations.iter().zip(&self.templates).enumerate() {
            if !fits(t) {
                continue;
            }
            allowed.push(op.method.clone());
            if op.method == method && best.is_none_or(|(n, _)| literal(t) > n) {
                best = Some((literal(t), i));
            }
        }
        match best {
            Some((_, i)) => Ok(i),
            None if allowed.is_empty() => Err(Violation::UndocumentedPath),
            None => {
                allowed.sort_unstable();
                allowed.dedup();
                Err(Violation::UndocumentedMethod { allowed })
            }
        }
    }
}
