//! `Contract`: the request checks of [`RequestValidator`] as a policy.

use bytes::Bytes;
use http::{HeaderValue, header, request};
use warden_core::event::{self, EventKind};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};
use warden_openapi::validate::Params;
use warden_openapi::{RequestValidator, Spec, Violation};

use crate::injection::fields::{cookies, pairs};
use crate::injection::{Injection, Mode};
use crate::json::media_type;
use crate::json_tree;

/// Compiled `contract`.
#[derive(Debug)]
pub struct Contract {
    validator: RequestValidator,
    mode: Mode,
    refuse_unknown_query: bool,
    /// The route's `injection`, when it has one: its JSON body scan runs in
    /// the walk that parses the body ([`crate::link`]).
    scan_along: Option<Injection>,
}

fn refusal(kind: ProblemKind, code: &'static str, detail: String) -> Rejection {
    Rejection::new(kind, code, detail.clone()).with_detail(detail)
}

/// The problem document for a violation.
fn rejection(violation: Violation) -> Rejection {
    match violation {
        Violation::UndocumentedPath => refusal(
            ProblemKind::RouteNotFound,
            "undocumented_path",
            "no operation of the API contract has this path".into(),
        ),
        Violation::UndocumentedMethod { allowed } => {
            let r = refusal(
                ProblemKind::MethodNotAllowed,
                "undocumented_method",
                "the API contract has no operation for this method on this path".into(),
            );
            match HeaderValue::from_str(&allowed.join(", ")) {
                Ok(v) => r.with_header(header::ALLOW, v),
                Err(_) => r,
            }
        }
        Violation::MediaType => refusal(
            ProblemKind::UnsupportedMediaType,
            "contract_media_type",
            "the request body's media type is not in the API contract".into(),
        ),
        Violation::Invalid(detail) => refusal(ProblemKind::BadRequest, "contract_violation", detail),
    }
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
        Ok(Self {
            validator: RequestValidator::new(spec, base_path, strict)?,
            mode,
            refuse_unknown_query,
            scan_along: None,
        })
    }

    /// Scans JSON bodies for `injection` while parsing them; it takes the
    /// outcome from the request context instead of walking the body again.
    pub(crate) fn scan_along(&mut self, injection: Injection) {
        self.scan_along = Some(injection);
    }

    /// Parameter presence, values and unknown query parameters.
    fn check_params(&self, op: usize, req: &request::Parts, path: &str) -> Result<(), Violation> {
        let query: Vec<(String, String)> = req.uri.query().map(|q| pairs(q).collect()).unwrap_or_default();
        let cookies: Vec<(String, String)> = req
            .headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|v| {
                let text = String::from_utf8_lossy(v.as_bytes());
                cookies(&text)
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let header = |name: &str| {
            req.headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let params = Params {
            path,
            query: &query,
            header: &header,
            cookies: &cookies,
        };
        self.validator.check_params(op, &params, self.refuse_unknown_query)
    }

    fn decide(&self, violation: Violation, ctx: &RequestCtx) -> Decision {
        let rejection = rejection(violation);
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

impl Policy for Contract {
    fn name(&self) -> &'static str {
        "contract"
    }

    fn needs_request_body(&self) -> bool {
        true
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let checked = self
            .validator
            .operation(req.method.as_str(), &ctx.path)
            .and_then(|op| self.check_params(op, req, &ctx.path));
        Ok(match checked {
            Err(v) => self.decide(v, ctx),
            Ok(()) => Decision::Continue,
        })
    }

    async fn on_request_body(
        &self,
        req: &request::Parts,
        body: &Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        let Ok(op) = self.validator.operation(req.method.as_str(), &ctx.path) else {
            // Reported (report mode) in on_request already.
            return Ok(Decision::Continue);
        };
        let media = media_type(req);
        let checked = match &self.scan_along {
            Some(injection) if injection.walks_as_json(req, &media, body) => {
                self.validator
                    .check_body(op, &media, body, |b| injection.build_and_scan(b, ctx))
            }
            _ => self.validator.check_body(op, &media, body, json_tree::build),
        };
        Ok(match checked {
            Err(v) => self.decide(v, ctx),
            Ok(()) => Decision::Continue,
        })
    }
}
