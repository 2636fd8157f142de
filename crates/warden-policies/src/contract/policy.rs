//! `Contract`: operation matching and the request checks.

use bytes::Bytes;
use http::{HeaderValue, header, request};
use warden_core::event::{self, EventKind};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};
use warden_openapi::{Operation, ParamIn, Spec};

use jsonschema::Validator;
use serde_json::Value;

use super::readonly::first_read_only;
use super::schema;
use crate::injection::Mode;
use crate::injection::fields::{cookies, decode_lossy, pairs};
use crate::json::{media_type, parse_strict};

/// Compiled `contract`.
#[derive(Debug)]
pub struct Contract {
    spec: Spec,
    /// Per operation: its path split into segments (`None` for `{param}`).
    templates: Vec<Vec<Option<String>>>,
    /// Per operation: a validator per parameter (same order), and per JSON
    /// media type of the body.
    validators: Vec<OpValidators>,
    base_path: String,
    mode: Mode,
    refuse_unknown_query: bool,
}

#[derive(Debug, Default)]
struct OpValidators {
    params: Vec<Option<Validator>>,
    bodies: Vec<(String, Validator)>,
}

/// What the contract says about a request.
enum Verdict {
    /// The index of the operation (in the spec, the templates and the validators).
    Operation(usize),
    Refused(Rejection),
}

fn refusal(kind: ProblemKind, code: &'static str, detail: String) -> Rejection {
    Rejection::new(kind, code, detail.clone()).with_detail(detail)
}

impl Contract {
    /// Compiles every parameter and JSON body schema; `Err` lists the ones
    /// that do not compile.
    pub(crate) fn new(
        spec: Spec,
        base_path: String,
        mode: Mode,
        refuse_unknown_query: bool,
        strict: bool,
    ) -> Result<Self, Vec<String>> {
        let prepared = schema::prepare(&spec.document, spec.version, strict);
        let mut errors = Vec::new();
        let mut validators = Vec::new();
        for op in &spec.operations {
            let mut v = OpValidators::default();
            let mut compile =
                |what: String, s: &Value| match schema::compile(&prepared, &schema::prepare(s, spec.version, strict)) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        errors.push(format!("{} {} {what}: {e}", op.method, op.path));
                        None
                    }
                };
            for p in &op.parameters {
                v.params.push(compile(format!("parameter `{}`", p.name), &p.schema));
            }
            for (media, s) in op.request_body.iter().flat_map(|b| &b.content) {
                if crate::json::is_json(media.split(';').next().unwrap_or("").trim())
                    && let Some(c) = compile(format!("body `{media}`"), s)
                {
                    v.bodies.push((media.clone(), c));
                }
            }
            validators.push(v);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
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
        Ok(Self {
            spec,
            templates,
            validators,
            base_path,
            mode,
            refuse_unknown_query,
        })
    }

    /// The operation for this method and path, or the 404/405 refusal.
    fn operation(&self, method: &str, path: &str) -> Verdict {
        let Some(rest) = path
            .strip_prefix(self.base_path.as_str())
            .filter(|r| r.is_empty() || r.starts_with('/'))
        else {
            return Verdict::Refused(refusal(
                ProblemKind::RouteNotFound,
                "undocumented_path",
                "no operation of the API contract has this path".into(),
            ));
        };
        let rest = if rest.is_empty() { "/" } else { rest };
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
        let mut allowed: Vec<&str> = Vec::new();
        for (i, (op, t)) in self.spec.operations.iter().zip(&self.templates).enumerate() {
            if !fits(t) {
                continue;
            }
            allowed.push(&op.method);
            if op.method == method && best.is_none_or(|(n, _)| literal(t) > n) {
                best = Some((literal(t), i));
            }
        }
        match best {
            Some((_, i)) => Verdict::Operation(i),
            None if allowed.is_empty() => Verdict::Refused(refusal(
                ProblemKind::RouteNotFound,
                "undocumented_path",
                "no operation of the API contract has this path".into(),
            )),
            None => {
                allowed.sort_unstable();
                allowed.dedup();
                let mut r = refusal(
                    ProblemKind::MethodNotAllowed,
                    "undocumented_method",
                    "the API contract has no operation for this method on this path".into(),
                );
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    r = r.with_header(header::ALLOW, v);
                }
                Verdict::Refused(r)
            }
        }
    }

    /// Parameter presence and unknown query parameters.
    fn check_params(&self, i: usize, req: &request::Parts) -> Option<Rejection> {
        let op = &self.spec.operations[i];
        let query: Vec<(String, String)> = req.uri.query().map(|q| pairs(q).collect()).unwrap_or_default();
        let cookies: Vec<String> = req
            .headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                cookies(&text).map(|(name, _)| name.to_owned()).collect::<Vec<_>>()
            })
            .collect();
        for p in op.parameters.iter().filter(|p| p.required) {
            let present = match p.location {
                ParamIn::Path => true,
                ParamIn::Query => query.iter().any(|(k, _)| *k == p.name),
                ParamIn::Header => req.headers.contains_key(p.name.as_str()),
                ParamIn::Cookie => cookies.contains(&p.name),
            };
            if !present {
                let place = match p.location {
                    ParamIn::Query => "query",
                    ParamIn::Header => "header",
                    _ => "cookie",
                };
                return Some(refusal(
                    ProblemKind::BadRequest,
                    "contract_violation",
                    format!("/{place}/{}: required by the API contract", shown(&p.name)),
                ));
            }
        }
        if let Some(refused) = self.check_param_values(i, req, &query) {
            return Some(refused);
        }
        if self.refuse_unknown_query {
            for (k, _) in &query {
                let declared = op
                    .parameters
                    .iter()
                    .any(|p| p.location == ParamIn::Query && p.name == *k);
                if !declared {
                    return Some(refusal(
                        ProblemKind::BadRequest,
                        "contract_violation",
                        format!("/query/{}: not in the API contract", shown(k)),
                    ));
                }
            }
        }
        None
    }

    /// Parameter values against their schemas.
    fn check_param_values(&self, i: usize, req: &request::Parts, query: &[(String, String)]) -> Option<Rejection> {
        let (op, validators) = (&self.spec.operations[i], &self.validators[i]);
        let path = self.path_values(op, req.uri.path());
        for (p, validator) in op.parameters.iter().zip(&validators.params) {
            let Some(validator) = validator else { continue };
            let raw: Option<String> = match p.location {
                ParamIn::Path => path.iter().find(|(n, _)| *n == p.name).map(|(_, v)| decode_lossy(v)),
                ParamIn::Query => query.iter().find(|(k, _)| *k == p.name).map(|(_, v)| v.clone()),
                ParamIn::Header => req
                    .headers
                    .get(p.name.as_str())
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                ParamIn::Cookie => None,
            };
            let Some(raw) = raw else { continue };
            let value = coerce(&self.spec.document, &p.schema, &raw);
            let place = match p.location {
                ParamIn::Path => "path",
                ParamIn::Query => "query",
                _ => "header",
            };
            if let Some(problem) = schema::first_error(validator, &value, &format!("/{place}/{}", shown(&p.name))) {
                return Some(refusal(ProblemKind::BadRequest, "contract_violation", problem));
            }
        }
        None
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

    /// Body presence, media type and mass assignment.
    fn check_body(&self, i: usize, req: &request::Parts, body: &Bytes) -> Option<Rejection> {
        let op = &self.spec.operations[i];
        let Some(rb) = &op.request_body else {
            return (!body.is_empty()).then(|| {
                refusal(
                    ProblemKind::BadRequest,
                    "contract_violation",
                    "/body: the API contract takes no request body here".into(),
                )
            });
        };
        if body.is_empty() {
            return rb.required.then(|| {
                refusal(
                    ProblemKind::BadRequest,
                    "contract_violation",
                    "/body: required by the API contract".into(),
                )
            });
        }
        let media = media_type(req);
        let declared = rb.content.iter().find(|(m, _)| media_matches(m, &media));
        let Some((declared_media, schema)) = declared else {
            return Some(refusal(
                ProblemKind::UnsupportedMediaType,
                "contract_media_type",
                "the request body's media type is not in the API contract".into(),
            ));
        };
        if crate::json::is_json(&media) {
            let Ok(value) = parse_strict(body) else {
                return Some(refusal(
                    ProblemKind::BadRequest,
                    "contract_violation",
                    "/body: not valid JSON".into(),
                ));
            };
            if let Some(at) = first_read_only(&self.spec.document, schema, &value) {
                return Some(refusal(
                    ProblemKind::BadRequest,
                    "contract_violation",
                    format!("{at}: read-only in the API contract"),
                ));
            }
            let validator = self.validators[i].bodies.iter().find(|(m, _)| m == declared_media);
            if let Some((_, validator)) = validator
                && let Some(problem) = schema::first_error(validator, &value, "/body")
            {
                return Some(refusal(ProblemKind::BadRequest, "contract_violation", problem));
            }
        }
        None
    }

    fn decide(&self, rejection: Rejection, ctx: &RequestCtx) -> Decision {
        let subject = ctx.client_ip.to_string();
        let detail = rejection.detail.clone().unwrap_or_default();
        event::emit(
            EventKind::Contract,
            &ctx.request_id,
            &subject,
            &format!("{} {detail}", rejection.code),
        );
        match self.mode {
            Mode::Report => Decision::Continue,
            Mode::Enforce => Decision::Reject(rejection),
        }
    }
}

/// A raw parameter string as the schema's type reads it: a number or boolean
/// when the (referenced) schema says so and it parses, else the string.
fn coerce(doc: &Value, schema: &Value, raw: &str) -> Value {
    let s = warden_openapi::follow_ref(doc, schema);
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

/// `application/json` matches `application/json`, `application/*` and `*/*`.
fn media_matches(declared: &str, actual: &str) -> bool {
    let declared = declared.split(';').next().unwrap_or("").trim();
    declared == actual
        || declared == "*/*"
        || declared
            .strip_suffix("/*")
            .is_some_and(|top| actual.split('/').next() == Some(top))
}

fn shown(name: &str) -> String {
    crate::json_limits::shown(&decode_lossy(name)).to_owned()
}

impl Policy for Contract {
    fn name(&self) -> &'static str {
        "contract"
    }

    fn needs_request_body(&self) -> bool {
        true
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let refused = match self.operation(req.method.as_str(), &ctx.path) {
            Verdict::Refused(r) => Some(r),
            Verdict::Operation(i) => self.check_params(i, req),
        };
        Ok(match refused {
            Some(r) => self.decide(r, ctx),
            None => Decision::Continue,
        })
    }

    async fn on_request_body(
        &self,
        req: &request::Parts,
        body: &Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        let Verdict::Operation(i) = self.operation(req.method.as_str(), &ctx.path) else {
            // Reported (report mode) in on_request already.
            return Ok(Decision::Continue);
        };
        Ok(match self.check_body(i, req, body) {
            Some(r) => self.decide(r, ctx),
            None => Decision::Continue,
        })
    }
}
