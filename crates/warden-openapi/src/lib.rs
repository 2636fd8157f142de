//! OpenAPI 3.0 and 3.1 documents: loading and the operation model.
//!
//! [`Spec::load`] reads a document (YAML or JSON), checks its SHA-256 against
//! a pin when one is given (a first defence against a poisoned spec), checks
//! the version, and builds the list of [`Operation`]s with their parameters
//! and request bodies, `$ref`s resolved. Only local references
//! (`#/components/…`) are followed; a remote or file reference is an error and
//! is never fetched. Every problem is reported at once.
//!
//! [`import::config`] turns a spec into a Warden config (one route per
//! operation) for `warden import openapi`.

pub mod filter;
pub mod import;
mod matcher;
mod names;
mod plan;
mod refs;
mod stream;
#[cfg(test)]
mod stream_tests;
pub mod validate;

pub use matcher::OperationMatcher;
pub use names::{percent_decode_lossy, shown};
pub use plan::{FilterPlan, NodeId, root_is_scoped};
pub use refs::follow_ref;
pub use stream::{Filtered, MAX_FINDINGS, NotJson};
pub use validate::{RequestValidator, Violation, is_json};

use std::path::Path;

use serde_json::Value;

/// A problem with a spec, with the JSON pointer of the place at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct SpecProblem {
    /// Where (`/paths/~1users/get/parameters/0`), `""` for the document.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

fn problem(pointer: impl Into<String>, message: impl Into<String>) -> SpecProblem {
    SpecProblem {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// OpenAPI major.minor line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 3.0.x (JSON Schema draft-04-like, `nullable`).
    V30,
    /// 3.1.x (JSON Schema 2020-12).
    V31,
}

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    /// A `{name}` path segment.
    Path,
    /// A query parameter.
    Query,
    /// A request header.
    Header,
    /// A cookie.
    Cookie,
}

/// One parameter of an operation (path-level ones merged in).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Name as sent.
    pub name: String,
    /// Location.
    pub location: ParamIn,
    /// Must be present (always true for path parameters).
    pub required: bool,
    /// Its schema (may hold local `$ref`s into the document).
    pub schema: Value,
}

/// One operation: a method on a path template.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Upper-case method.
    pub method: String,
    /// Path template (`/users/{id}`).
    pub path: String,
    /// `operationId`, if the spec gives one.
    pub operation_id: Option<String>,
    /// Parameters, operation-level overriding path-level ones.
    pub parameters: Vec<Parameter>,
    /// Request body media types and their schemas.
    pub request_body: Option<RequestBody>,
    /// Responses: status key (`200`, `2XX`, `default`) and their media
    /// types with schemas, in document order.
    pub responses: Vec<ResponseSpec>,
}

/// One documented response of an operation.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSpec {
    /// `200`, `2XX` or `default`, upper case.
    pub status: String,
    /// `(media type, schema)` pairs, lower-case media types.
    pub content: Vec<(String, Value)>,
}

impl Operation {
    /// The documented response for `status`: the exact code, else its range
    /// (`2XX`), else `default`.
    pub fn response(&self, status: u16) -> Option<&ResponseSpec> {
        self.response_index(status).map(|i| &self.responses[i])
    }

    /// The index in `responses` of [`Operation::response`].
    pub fn response_index(&self, status: u16) -> Option<usize> {
        let exact = |r: &ResponseSpec| r.status.len() == 3 && r.status.parse::<u16>().is_ok_and(|s| s == status);
        let range = |r: &ResponseSpec| {
            let b = r.status.as_bytes();
            b.len() == 3 && b[1..] == *b"XX" && u16::from(b[0].wrapping_sub(b'0')) == status / 100
        };
        let default = |r: &ResponseSpec| r.status == "DEFAULT";
        self.responses
            .iter()
            .position(exact)
            .or_else(|| self.responses.iter().position(range))
            .or_else(|| self.responses.iter().position(default))
    }
}

/// A request body: whether it is required and its schema per media type.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestBody {
    /// Must be present.
    pub required: bool,
    /// `(media type, schema)` pairs in document order.
    pub content: Vec<(String, Value)>,
}

/// A loaded spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// 3.0 or 3.1.
    pub version: Version,
    /// `info.title`.
    pub title: String,
    /// `servers[0].url`, if any.
    pub server: Option<String>,
    /// Every operation, in document order.
    pub operations: Vec<Operation>,
    /// The whole document (schemas' `$ref`s point into it).
    pub document: Value,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

impl Spec {
    /// Reads and checks `path`; with `pin`, the file's SHA-256 must match.
    pub fn load(path: &Path, pin: Option<&str>) -> Result<Spec, Vec<SpecProblem>> {
        let bytes =
            std::fs::read(path).map_err(|e| vec![problem("", format!("cannot read {}: {e}", path.display()))])?;
        Self::parse(&bytes, pin)
    }

    /// Parses and checks a document's bytes.
    pub fn parse(bytes: &[u8], pin: Option<&str>) -> Result<Spec, Vec<SpecProblem>> {
        let sha256 = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
        if let Some(pin) = pin
            && !pin.trim().eq_ignore_ascii_case(&sha256)
        {
            return Err(vec![problem(
                "",
                format!("SHA-256 is {sha256}, the config pins {pin}: the file changed"),
            )]);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| vec![problem("", "not UTF-8")])?;
        let document: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| vec![problem("", format!("not valid JSON: {e}"))])?
        } else {
            serde_saphyr::from_str(text).map_err(|e| vec![problem("", format!("not valid YAML: {e}"))])?
        };
        let mut problems = Vec::new();
        let version = match document.get("openapi").and_then(Value::as_str) {
            Some(v) if v.starts_with("3.0.") => Version::V30,
            Some(v) if v.starts_with("3.1.") => Version::V31,
            Some(v) => {
                problems.push(problem(
                    "/openapi",
                    format!("version {v} is not supported; use 3.0.x or 3.1.x"),
                ));
                Version::V31
            }
            None => {
                problems.push(problem("/openapi", "missing: not an OpenAPI 3 document"));
                Version::V31
            }
        };
        refs::check_all(&document, &mut problems);
        let operations = operations(&document, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let title = document
            .pointer("/info/title")
            .and_then(Value::as_str)
            .unwrap_or("api")
            .to_owned();
        let server = document
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Spec {
            version,
            title,
            server,
            operations,
            document,
            sha256,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Escapes one JSON-pointer segment.
pub(crate) fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn operations(doc: &Value, problems: &mut Vec<SpecProblem>) -> Vec<Operation> {
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        problems.push(problem("/paths", "missing or not an object"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, item) in paths {
        let at = format!("/paths/{}", escape(path));
        if !path.starts_with('/') {
            problems.push(problem(&at, "a path must start with `/`"));
            continue;
        }
        let item = refs::resolve(doc, item, &at, problems);
        let shared = parameters(doc, item.get("parameters"), &format!("{at}/parameters"), problems);
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let op_at = format!("{at}/{method}");
            let mut params = shared.clone();
            for p in parameters(doc, op.get("parameters"), &format!("{op_at}/parameters"), problems) {
                params.retain(|q: &Parameter| !(q.name == p.name && q.location == p.location));
                params.push(p);
            }
            for name in template_names(path) {
                if !params.iter().any(|p| p.location == ParamIn::Path && p.name == name) {
                    problems.push(problem(&op_at, format!("path parameter `{name}` is not declared")));
                }
            }
            let request_body = op
                .get("requestBody")
                .map(|b| request_body(doc, b, &format!("{op_at}/requestBody"), problems));
            let responses = responses(doc, op.get("responses"), &format!("{op_at}/responses"), problems);
            out.push(Operation {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                operation_id: op.get("operationId").and_then(Value::as_str).map(str::to_owned),
                parameters: params,
                request_body,
                responses,
            });
        }
    }
    out
}

fn template_names(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn parameters(doc: &Value, list: Option<&Value>, at: &str, problems: &mut Vec<SpecProblem>) -> Vec<Parameter> {
    let Some(list) = list else { return Vec::new() };
    let Some(items) = list.as_array() else {
        problems.push(problem(at, "must be a list"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, p) in items.iter().enumerate() {
        let p_at = format!("{at}/{i}");
        let p = refs::resolve(doc, p, &p_at, problems);
        let name = p.get("name").and_then(Value::as_str);
        let location = match p.get("in").and_then(Value::as_str) {
            Some("path") => Some(ParamIn::Path),
            Some("query") => Some(ParamIn::Query),
            Some("header") => Some(ParamIn::Header),
            Some("cookie") => Some(ParamIn::Cookie),
            _ => None,
        };
        let (Some(name), Some(location)) = (name, location) else {
            problems.push(problem(
                &p_at,
                "a parameter needs `name` and `in` (path, query, header or cookie)",
            ));
            continue;
        };
        let required = location == ParamIn::Path || p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let schema = p.get("schema").cloned().unwrap_or(Value::Bool(true));
        out.push(Parameter {
            name: name.to_owned(),
            location,
            required,
            schema,
        });
    }
    out
}

fn responses(doc: &Value, list: Option<&Value>, at: &str, problems: &mut Vec<SpecProblem>) -> Vec<ResponseSpec> {
    let Some(map) = list.and_then(Value::as_object) else {
        return Vec::new();
    };
    map.iter()
        .map(|(status, r)| {
            let r = refs::resolve(doc, r, &format!("{at}/{}", escape(status)), problems);
            ResponseSpec {
                status: status.to_ascii_uppercase(),
                content: content(r),
            }
        })
        .collect()
}

/// The `content` map of a request body or response: `(media, schema)`.
fn content(holder: &Value) -> Vec<(String, Value)> {
    holder
        .get("content")
        .and_then(Value::as_object)
        .map(|c| {
            c.iter()
                .map(|(media, m)| {
                    (
                        media.to_ascii_lowercase(),
                        m.get("schema").cloned().unwrap_or(Value::Bool(true)),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn request_body(doc: &Value, body: &Value, at: &str, problems: &mut Vec<SpecProblem>) -> RequestBody {
    let body = refs::resolve(doc, body, at, problems);
    let required = body.get("required").and_then(Value::as_bool).unwrap_or(false);
    RequestBody {
        required,
        content: content(body),
    }
}

#[cfg(test)]
mod tests;
