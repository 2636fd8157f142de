//! The request side of the contract: which operation a request is, and
//! whether its parameters and body keep to it.
//!
//! [`RequestValidator`] compiles every parameter and JSON body schema of a
//! [`Spec`] once (`jsonschema`, remote references off, formats checked, 3.0
//! `nullable` honoured) and answers with a [`Violation`] that names the
//! location (`/query/limit`, `/body/items/0/quantity`), never the value. It
//! knows nothing of HTTP types or gateway policy, so the `contract` policy
//! and the fuzz target drive the same code.

mod doc;
mod readonly;
mod schema;
#[cfg(test)]
mod tests;

pub use doc::{Doc, DocJson, Members};
pub use schema::prepare;

use jsonschema::Validator;
use serde_json::Value;

use crate::{Operation, OperationMatcher, ParamIn, Spec, percent_decode_lossy, shown};
use readonly::{first_read_only, reachable};

/// Why a request does not keep to the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// No operation has this path (404).
    UndocumentedPath,
    /// Operations have this path, none this method; `allowed` lists theirs (405).
    UndocumentedMethod {
        /// Methods with an operation on this path, sorted, upper case.
        allowed: Vec<String>,
    },
    /// The body's media type is not declared (415).
    MediaType,
    /// A parameter or the body breaks the contract (400): `location: reason`.
    Invalid(String),
}

/// What a request carries besides its method and body, already parsed.
pub struct Params<'a> {
    /// The (normalised) request path, base path included.
    pub path: &'a str,
    /// Query pairs, percent-decoded.
    pub query: &'a [(String, String)],
    /// The value of a header by (lower-case) name.
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The cookies sent: `(name, value)`, the value without surrounding
    /// double quotes.
    pub cookies: &'a [(String, String)],
}

/// Compiled request validation for one spec.
#[derive(Debug)]
pub struct RequestValidator {
    spec: Spec,
    matcher: OperationMatcher,
    /// Per operation: a validator per parameter (same order), and per JSON
    /// media type of the body.
    validators: Vec<OpValidators>,
    base_path: String,
}

#[derive(Debug, Default)]
struct OpValidators {
    params: Vec<Option<Validator>>,
    bodies: Vec<(String, Validator<DocJson>)>,
    /// Per request body media type (as in the operation's `content`): a
    /// `readOnly` property can be reached from its schema, so bodies are
    /// walked for mass assignment.
    read_only: Vec<bool>,
}

fn invalid(detail: String) -> Violation {
    Violation::Invalid(detail)
}

impl RequestValidator {
    /// Compiles every parameter and JSON body schema; `Err` lists the ones
    /// that do not compile. `base_path` (`/v1`, or empty) is stripped before
    /// matching; `strict` treats every object as `additionalProperties: false`.
    pub fn new(spec: Spec, base_path: String, strict: bool) -> Result<Self, Vec<String>> {
        let prepared = prepare(&spec.document, spec.version, strict);
        let mut errors = Vec::new();
        let mut validators = Vec::new();
        for op in &spec.operations {
            let mut v = OpValidators::default();
            let mut failed = |what: String, e: String| errors.push(format!("{} {} {what}: {e}", op.method, op.path));
            for p in &op.parameters {
                let compiled = schema::compile(&prepared, &prepare(&p.schema, spec.version, strict));
                v.params
                    .push(compiled.map_err(|e| failed(format!("parameter `{}`", p.name), e)).ok());
            }
            for (media, s) in op.request_body.iter().flat_map(|b| &b.content) {
                v.read_only.push(reachable(&spec.document, s));
                if !is_json(essence(media)) {
                    continue;
                }
                let compiled = schema::compile(&prepared, &prepare(s, spec.version, strict));
                if let Ok(c) = compiled.map_err(|e| failed(format!("body `{media}`"), e)) {
                    v.bodies.push((media.clone(), c));
                }
            }
            validators.push(v);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            matcher: OperationMatcher::new(&spec, base_path.clone()),
            spec,
            validators,
            base_path,
        })
    }

    /// The spec validated against.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The index (into `spec().operations`) of the operation for this method
    /// and path; a literal segment wins over a template.
    pub fn operation(&self, method: &str, path: &str) -> Result<usize, Violation> {
        self.matcher.find(&self.spec, method, path)
    }

    /// Required parameters present, values valid, and (when
    /// `refuse_unknown_query`) no undeclared query parameter.
    pub fn check_params(&self, op: usize, params: &Params<'_>, refuse_unknown_query: bool) -> Result<(), Violation> {
        let operation = &self.spec.operations[op];
        for p in operation.parameters.iter().filter(|p| p.required) {
            let present = match p.location {
                ParamIn::Path => true,
                ParamIn::Query => params.query.iter().any(|(k, _)| *k == p.name),
                ParamIn::Header => (params.header)(&p.name.to_ascii_lowercase()).is_some(),
                ParamIn::Cookie => params.cookies.iter().any(|(n, _)| *n == p.name),
            };
            if !present {
                return Err(invalid(format!(
                    "/{}/{}: required by the API contract",
                    place(p.location),
                    shown_decoded(&p.name)
                )));
            }
        }
        self.check_param_values(op, params)?;
        if refuse_unknown_query {
            for (k, _) in params.query {
                let declared = operation
                    .parameters
                    .iter()
                    .any(|p| p.location == ParamIn::Query && p.name == *k);
                if !declared {
                    return Err(invalid(format!("/query/{}: not in the API contract", shown_decoded(k))));
                }
            }
        }
        Ok(())
    }

    /// Parameter values against their schemas.
    fn check_param_values(&self, op: usize, params: &Params<'_>) -> Result<(), Violation> {
        let (operation, validators) = (&self.spec.operations[op], &self.validators[op]);
        let path = self.path_values(operation, params.path);
        for (p, validator) in operation.parameters.iter().zip(&validators.params) {
            let Some(validator) = validator else { continue };
            let raw: Option<String> = match p.location {
                ParamIn::Path => path
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .map(|(_, v)| percent_decode_lossy(v)),
                ParamIn::Query => params.query.iter().find(|(k, _)| *k == p.name).map(|(_, v)| v.clone()),
                ParamIn::Header => (params.header)(&p.name.to_ascii_lowercase()),
                ParamIn::Cookie => params
                    .cookies
                    .iter()
                    .find(|(n, _)| *n == p.name)
                    .map(|(_, v)| v.clone()),
            };
            let Some(raw) = raw else { continue };
            let value = coerce(&self.spec.document, &p.schema, &raw);
            let at = format!("/{}/{}", place(p.location), shown_decoded(&p.name));
            if let Some(problem) = schema::first_error(validator, &value, &at) {
                return Err(invalid(problem));
            }
        }
        Ok(())
    }

    /// `(name, raw value)` of the path parameters of `op` in `path`.
    fn path_values<'p>(&self, op: &Operation, path: &'p str) -> Vec<(String, &'p str)> {
        let rest = path.strip_prefix(self.base_path.as_str()).unwrap_or(path);
        op.path
            .split('/')
            .zip(rest.split('/'))
            .filter_map(|(t, v)| Some((t.strip_prefix('{')?.strip_suffix('}')?.to_owned(), v)))
            .collect()
    }

    /// Body presence, media type (`media`: the request's, lower case, no
    /// parameters), and for JSON: well-formed (by `parse`, the caller's
    /// strict parser), no `readOnly` property set, valid against the schema.
    pub fn check_body<'b>(
        &self,
        op: usize,
        media: &str,
        body: &'b [u8],
        parse: impl FnOnce(&'b [u8]) -> Option<Doc<'b>>,
    ) -> Result<(), Violation> {
        let operation = &self.spec.operations[op];
        let Some(rb) = &operation.request_body else {
            if body.is_empty() {
                return Ok(());
            }
            return Err(invalid("/body: the API contract takes no request body here".into()));
        };
        if body.is_empty() {
            if rb.required {
                return Err(invalid("/body: required by the API contract".into()));
            }
            return Ok(());
        }
        let Some(i) = media_index(&rb.content, media) else {
            return Err(Violation::MediaType);
        };
        let (declared_media, schema) = &rb.content[i];
        if !is_json(media) {
            return Ok(());
        }
        let Some(value) = parse(body) else {
            return Err(invalid("/body: not valid JSON".into()));
        };
        let read_only = self.validators[op].read_only.get(i).copied().unwrap_or(true);
        if read_only && let Some(at) = first_read_only(&self.spec.document, schema, &value) {
            return Err(invalid(format!("{at}: read-only in the API contract")));
        }
        let validator = self.validators[op].bodies.iter().find(|(m, _)| m == declared_media);
        if let Some((_, validator)) = validator
            && let Some(problem) = schema::first_error(validator, &value, "/body")
        {
            return Err(invalid(problem));
        }
        Ok(())
    }
}

fn place(location: ParamIn) -> &'static str {
    match location {
        ParamIn::Path => "path",
        ParamIn::Query => "query",
        ParamIn::Header => "header",
        ParamIn::Cookie => "cookie",
    }
}

fn shown_decoded(name: &str) -> String {
    shown(&percent_decode_lossy(name)).to_owned()
}

/// `application/json; charset=utf-8` → `application/json`.
pub(crate) fn essence(media: &str) -> &str {
    media.split(';').next().unwrap_or("").trim()
}

/// True for `application/json` and `application/…+json`.
pub fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || (media_type.starts_with("application/") && media_type.ends_with("+json"))
}

/// A raw parameter string as the schema's type reads it: a number or boolean
/// when the (referenced) schema says so and it parses, else the string.
fn coerce(doc: &Value, schema: &Value, raw: &str) -> Value {
    let s = crate::follow_ref(doc, schema);
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.iter().any(|t| matches!(*t, "integer" | "number")) {
        if let Ok(n) = raw.parse::<i64>() {
            return Value::from(n);
        }
        if let Some(n) = raw.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return Value::Number(n);
        }
    }
    if types.contains(&"boolean") && matches!(raw, "true" | "false") {
        return Value::Bool(raw == "true");
    }
    Value::String(raw.to_owned())
}

/// The documented media type that best fits `actual`: the exact type, else
/// `type/*`, else `*/*`, whatever order the document lists them in (a
/// `*/*` entry listed first must not stand in for the `application/json`
/// schema after it). A body without a media type (`actual` empty) fits
/// nothing.
pub fn media_index<T>(content: &[(String, T)], actual: &str) -> Option<usize> {
    if actual.is_empty() {
        return None;
    }
    let rank = |m: &str| match essence(m) {
        "*/*" => 0,
        m if m.ends_with("/*") => 1,
        _ => 2,
    };
    let mut best: Option<(usize, u8)> = None;
    for (i, (m, _)) in content.iter().enumerate() {
        if media_matches(m, actual) && best.is_none_or(|(_, r)| rank(m) > r) {
            best = Some((i, rank(m)));
        }
    }
    best.map(|(i, _)| i)
}

/// `application/json` matches `application/json`, `application/*` and `*/*`.
pub fn media_matches(declared: &str, actual: &str) -> bool {
    let declared = essence(declared);
    declared == actual
        || declared == "*/*"
        || declared
            .strip_suffix("/*")
            .is_some_and(|top| actual.split('/').next() == Some(top))
}
