//! `response_contract`: responses cut down to what the OpenAPI document
//! declares for their operation, status and media type.

use bytes::Bytes;
use http::response;
use serde::Deserialize;
use warden_core::event::{self, EventKind};
use warden_core::{Decision, OnError, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};
use warden_openapi::validate::media_index;
use warden_openapi::{FilterPlan, NodeId, OperationMatcher, Spec};

use super::{check_max_inspect, default_max_inspect};
use crate::SpecError;

/// What to do with properties the response schema does not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterMode {
    /// Drop them (the default).
    #[default]
    Filter,
    /// Keep them; record a `response_contract` event.
    Report,
    /// Replace the response with a 502 problem document.
    Block,
}

/// `type: response_contract`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseContractConfig {
    /// The OpenAPI 3.0/3.1 document, relative to the config file.
    pub spec: String,
    /// Refuse the document unless its SHA-256 (hex) is this.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Path prefix the API is mounted under at the gateway (`/v1`).
    #[serde(default)]
    pub base_path: String,
    /// `filter` (default), `report` or `block`.
    #[serde(default)]
    pub mode: FilterMode,
    /// Bodies up to this many bytes are inspected (default 1 MiB).
    #[serde(default = "default_max_inspect")]
    pub max_inspect_bytes: usize,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

impl ResponseContractConfig {
    /// Makes a relative `spec` path relative to `base` (the config's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if std::path::Path::new(&self.spec).is_relative() {
            self.spec = base.join(&self.spec).to_string_lossy().into_owned();
        }
    }

    /// Loads the document, reporting every problem.
    pub fn build(&self) -> Result<ResponseContract, Vec<SpecError>> {
        let mut errors = Vec::new();
        check_max_inspect(self.max_inspect_bytes, &mut errors);
        let spec = crate::contract::load_spec(&self.spec, self.sha256.as_deref(), &self.base_path);
        let spec = match spec {
            Ok(s) if errors.is_empty() => s,
            Ok(_) => return Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                return Err(errors);
            }
        };
        // A scope on a whole response cannot be enforced by removing
        // properties: refused rather than ignored.
        for op in &spec.operations {
            for r in &op.responses {
                for (media, schema) in &r.content {
                    if warden_openapi::root_is_scoped(&spec.document, schema) {
                        errors.push(SpecError {
                            path: "spec".into(),
                            message: format!(
                                "{} {} response {} {media}: `x-warden-scopes` on a response's root schema (or its array items) cannot be enforced by removing properties; put it on the properties",
                                op.method, op.path, r.status
                            ),
                        });
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Every documented response schema compiled once, indexed as
        // `roots[operation][response][media type]`.
        let mut plan = FilterPlan::new();
        let roots = spec
            .operations
            .iter()
            .map(|op| {
                op.responses
                    .iter()
                    .map(|r| r.content.iter().map(|(_, s)| plan.add(&spec.document, s)).collect())
                    .collect()
            })
            .collect();
        Ok(ResponseContract {
            matcher: OperationMatcher::new(&spec, self.base_path.clone()),
            spec,
            plan,
            roots,
            mode: self.mode,
            max_inspect: self.max_inspect_bytes,
        })
    }
}

/// Compiled `response_contract`.
#[derive(Debug)]
pub struct ResponseContract {
    spec: Spec,
    plan: FilterPlan,
    roots: Vec<Vec<Vec<NodeId>>>,
    matcher: OperationMatcher,
    mode: FilterMode,
    max_inspect: usize,
}

/// The caller's scopes: the token's `scope` (space-separated) or `scp`
/// (a list or a string) claim.
fn scopes(ctx: &RequestCtx) -> Vec<&str> {
    let Some(claims) = &ctx.token_claims else {
        return Vec::new();
    };
    let mut out: Vec<&str> = Vec::new();
    for key in ["scope", "scp"] {
        match claims.get(key) {
            Some(serde_json::Value::String(s)) => out.extend(s.split_ascii_whitespace()),
            Some(serde_json::Value::Array(list)) => out.extend(list.iter().filter_map(serde_json::Value::as_str)),
            _ => {}
        }
    }
    out
}

impl ResponseContract {
    fn emit(&self, ctx: &RequestCtx, detail: &str) {
        event::emit(
            EventKind::ResponseContract,
            &ctx.request_id,
            &ctx.client_ip.to_string(),
            detail,
        );
    }

    /// A response this policy cannot check (unmatched operation,
    /// undocumented status or media type, unparsable JSON, too long): always
    /// an event; refused (502) in block mode, and in filter mode when it is a
    /// 2xx, the responses that carry data. Report mode lets it through.
    fn cannot_check(&self, ctx: &RequestCtx, status: u16, what: &str) -> Option<Rejection> {
        self.emit(ctx, what);
        let refuse = match self.mode {
            FilterMode::Block => true,
            FilterMode::Filter => (200..300).contains(&status),
            FilterMode::Report => false,
        };
        refuse.then(|| {
            Rejection::new(
                ProblemKind::UpstreamError,
                "response_contract_violation",
                what.to_owned(),
            )
        })
    }

    fn decide(&self, ctx: &RequestCtx, status: u16, what: &str) -> Decision {
        match self.cannot_check(ctx, status, what) {
            Some(r) => Decision::Reject(r),
            None => Decision::Continue,
        }
    }
}

impl Policy for ResponseContract {
    fn name(&self) -> &'static str {
        "response_contract"
    }

    fn response_body_limit(&self) -> Option<usize> {
        Some(self.max_inspect)
    }

    fn response_too_long(&self, status: http::StatusCode, ctx: &RequestCtx) -> Option<Rejection> {
        self.cannot_check(ctx, status.as_u16(), "response body longer than max_inspect_bytes")
    }

    async fn on_response_body(
        &self,
        resp: &mut response::Parts,
        body: &mut Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        let status = resp.status.as_u16();
        let Ok(i) = self.matcher.find(&self.spec, ctx.method.as_str(), &ctx.path) else {
            return Ok(self.decide(ctx, status, "operation not in the API contract"));
        };
        let op = &self.spec.operations[i];
        let Some(r) = op.response_index(status) else {
            return Ok(self.decide(ctx, status, &format!("undocumented status {status}")));
        };
        let media = super::media(resp);
        if body.is_empty() {
            return Ok(Decision::Continue);
        }
        let Some(m) = media_index(&op.responses[r].content, &media) else {
            return Ok(self.decide(ctx, status, &format!("undocumented media type for status {status}")));
        };
        let mut m = m;
        let mut lenient = false;
        if !crate::json::is_json(&media) {
            // A documented non-JSON type (`text/plain`, `*/*`): its body
            // passes, unless it is JSON in disguise while the status also
            // documents a JSON schema (an upstream that labels its JSON
            // `text/plain` must not skip the filter; clients parse it anyway).
            let content = &op.responses[r].content;
            let json_schema = content
                .iter()
                .position(|(t, _)| crate::json::is_json(t.split(';').next().unwrap_or("").trim()));
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            match (json_schema, first) {
                (Some(j), Some(b'{' | b'[')) => {
                    m = j;
                    lenient = true;
                }
                _ => return Ok(Decision::Continue),
            }
        }
        let scopes = scopes(ctx);
        let drop = self.mode == FilterMode::Filter;
        // Filter mode only counts what it drops (below): one pointer is
        // enough to know there was something.
        let noted = if drop { 1 } else { warden_openapi::MAX_FINDINGS };
        let root = self.roots[i][r][m];
        let filtered = match self.plan.filter_noting(root, body, &scopes, drop, noted) {
            Ok(f) => f,
            // Text that only looked like JSON: passed as its type says.
            Err(_) if lenient => return Ok(Decision::Continue),
            Err(_) => return Ok(self.decide(ctx, status, "response body is not JSON")),
        };
        let found = filtered.removed;
        if !found.undeclared.is_empty() {
            let shown: Vec<&str> = found.undeclared.iter().take(10).map(String::as_str).collect();
            if self.mode == FilterMode::Filter {
                // Filtering is this mode's routine work: counted, not logged
                // per response (an API that always over-returns would flood
                // the log).
                event::count(EventKind::ResponseContract);
            } else {
                self.emit(ctx, &format!("undeclared {}", shown.join(" ")));
            }
            if self.mode == FilterMode::Block {
                return Ok(Decision::Reject(Rejection::new(
                    ProblemKind::UpstreamError,
                    "response_contract_violation",
                    format!("undeclared properties: {}", shown.join(" ")),
                )));
            }
        }
        if let Some(cut) = filtered.body {
            *body = Bytes::from(cut);
        }
        Ok(Decision::Continue)
    }
}
