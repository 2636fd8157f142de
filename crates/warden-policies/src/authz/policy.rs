//! The compiled `authz` policy.

use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::Arc;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, RestrictedExpression,
};
use http::request;
use serde_json::Value;
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

use super::decisions::Decisions;
use super::enumeration::{Enumeration, Verdict};

/// Where a bound object id comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Path(String),
    Query(String),
    /// JSON pointer into the request body.
    Body(String),
}

/// Why a caller outside `require_groups` is refused.
const NOT_IN_REQUIRED_GROUPS: &str = "an administrative operation: the caller is in none of the required groups";

/// One object-level binding.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub source: Source,
    pub target: Target,
}

/// Who a bound id must belong to.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// The consumer's name.
    Consumer,
    /// Token claim `c` (equal, or a list containing the id).
    Claim(String),
    /// The owners an ownership service names (checked on the request path only).
    Lookup(Arc<super::ownership::OwnerLookup>),
}

/// `type: authz`, compiled.
pub struct Authz {
    policies: PolicySet,
    bindings: Vec<Binding>,
    authorizer: Authorizer,
    enumeration: Option<Box<Enumeration>>,
    decisions: Option<Box<Decisions>>,
    /// Request headers copied into `context.headers`.
    context_headers: Vec<http::HeaderName>,
    /// Function-level guard: the caller must be in one of these groups.
    require_groups: Vec<Arc<str>>,
}

impl std::fmt::Debug for Authz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authz")
            .field("policies", &self.policies.policies().count())
            .field("bindings", &self.bindings)
            .finish()
    }
}

/// A decision with the policies that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// True when allowed.
    pub allowed: bool,
    /// Ids of the policies that determined it (permits for an allow,
    /// forbids for a deny; empty when nothing matched: default deny).
    pub determining: Vec<String>,
    /// A binding refused the request before Cedar ran.
    pub binding_failed: Option<String>,
    /// Policy evaluation errors (a policy that errors does not apply).
    pub errors: Vec<String>,
}

impl Authz {
    pub(super) fn new(parts: super::config::Parts) -> Self {
        Self {
            policies: parts.policies,
            bindings: parts.bindings,
            authorizer: Authorizer::new(),
            enumeration: parts.enumeration.map(|c| Box::new(Enumeration::new(&c))),
            decisions: parts.decisions.map(Box::new),
            context_headers: parts.context_headers,
            require_groups: parts.require_groups,
        }
    }

    /// Decides for `req` as the gateway would, and says why. Bindings on the
    /// body are not checked here (they need the body: see
    /// [`Policy::on_request_body`]).
    pub fn explain(&self, req: &request::Parts, ctx: &RequestCtx) -> Explanation {
        self.decide(req, ctx).0
    }

    /// The decision, and the object ids the headers named (for enumeration).
    fn decide(&self, req: &request::Parts, ctx: &RequestCtx) -> (Explanation, Vec<String>) {
        if !self.require_groups.is_empty() && !ctx.groups.iter().any(|g| self.require_groups.contains(g)) {
            let e = Explanation {
                allowed: false,
                determining: Vec::new(),
                binding_failed: Some(NOT_IN_REQUIRED_GROUPS.into()),
                errors: Vec::new(),
            };
            return (e, Vec::new());
        }
        let (ids, bound) = self.header_bound_ids(req, ctx);
        if let Err(why) = bound {
            let e = Explanation {
                allowed: false,
                determining: Vec::new(),
                binding_failed: Some(why),
                errors: Vec::new(),
            };
            // The ids named still count towards enumeration.
            return (e, ids);
        }
        let key = self.decisions.as_ref().map(|d| d.key(req, ctx));
        if let (Some(d), Some(key)) = (&self.decisions, &key)
            && let Some(hit) = d.get(key, ctx.now_secs)
        {
            let e = Explanation {
                allowed: hit.allowed,
                determining: hit.determining.to_vec(),
                binding_failed: None,
                errors: Vec::new(),
            };
            return (e, ids);
        }
        let (request, entities) = match cedar_request(req, ctx, &self.context_headers) {
            Ok(r) => r,
            Err(e) => {
                let e = Explanation {
                    allowed: false,
                    determining: Vec::new(),
                    binding_failed: None,
                    errors: vec![e],
                };
                return (e, ids);
            }
        };
        let answer = self.authorizer.is_authorized(&request, &self.policies, &entities);
        let e = Explanation {
            allowed: answer.decision() == CedarDecision::Allow,
            determining: answer.diagnostics().reason().map(ToString::to_string).collect(),
            binding_failed: None,
            errors: answer.diagnostics().errors().map(ToString::to_string).collect(),
        };
        // Answers reached with evaluation errors are recomputed every time.
        if let (Some(d), Some(key), true) = (&self.decisions, &key, e.errors.is_empty()) {
            d.put(key, ctx, e.allowed, &e.determining);
        }
        (e, ids)
    }

    /// The id a path or query binding names (`None` for body bindings).
    fn header_id(b: &Binding, req: &request::Parts, ctx: &RequestCtx) -> Option<Result<String, String>> {
        let id = match &b.source {
            Source::Path(p) => ctx.params.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone()),
            Source::Query(q) => match crate::query::single(req, q) {
                Ok(v) => v.and_then(crate::query::percent_decode),
                Err(()) => return Some(Err(format!("query parameter `{q}` given more than once"))),
            },
            Source::Body(_) => return None,
        };
        Some(id.ok_or_else(|| "the bound object id is missing".to_owned()))
    }

    /// Checks the path and query bindings (ownership lookups excepted: see
    /// [`Authz::lookups_hold`]); the ids they bound, or why one fails.
    fn header_bound_ids(&self, req: &request::Parts, ctx: &RequestCtx) -> (Vec<String>, Result<(), String>) {
        let mut ids = Vec::new();
        let mut verdict = Ok(());
        for b in &self.bindings {
            let Some(id) = Self::header_id(b, req, ctx) else {
                continue;
            };
            let id = match id {
                Ok(id) => id,
                Err(why) => return (ids, Err(why)),
            };
            if verdict.is_ok() && !matches!(b.target, Target::Lookup(_)) && !owned(&b.target, ctx, &id) {
                verdict = Err(NOT_BOUND.into());
            }
            ids.push(id);
        }
        (ids, verdict)
    }

    /// Asks the ownership services about the path and query ids.
    async fn lookups_hold(&self, req: &request::Parts, ctx: &RequestCtx) -> Result<(), String> {
        for b in &self.bindings {
            let Target::Lookup(lookup) = &b.target else { continue };
            let Some(id) = Self::header_id(b, req, ctx) else {
                continue;
            };
            owned_by_lookup(lookup, ctx, &id?).await?;
        }
        Ok(())
    }

    /// Checks the body bindings against the JSON body; the ids they bound.
    async fn body_bound_ids(&self, body: &[u8], ctx: &RequestCtx, ids: &mut Vec<String>) -> Result<(), String> {
        let mut doc = None;
        for b in &self.bindings {
            let Source::Body(pointer) = &b.source else { continue };
            if doc.is_none() {
                doc = Some(crate::json::parse_strict(body).map_err(|e| format!("the body is not strict JSON: {e}"))?);
            }
            let found = doc.as_ref().and_then(|d| d.pointer(pointer));
            let values: Vec<String> = match found {
                Some(Value::Array(items)) if !items.is_empty() => items
                    .iter()
                    .map(scalar)
                    .collect::<Option<_>>()
                    .ok_or("a bound body id is not a string or number")?,
                Some(v) => vec![scalar(v).ok_or("the bound body id is not a string or number")?],
                None => return Err("the bound object id is missing".into()),
            };
            // Every id the body names is collected (for enumeration) before
            // any is judged.
            let first = ids.len();
            ids.extend(values);
            for id in ids[first..].iter() {
                match &b.target {
                    Target::Lookup(lookup) => owned_by_lookup(lookup, ctx, id).await?,
                    t if !owned(t, ctx, id) => return Err(NOT_BOUND.into()),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Counts `ids` towards enumeration; a refusal when the subject is (now) blocked.
    fn enumeration_check(&self, ctx: &RequestCtx, ids: &[&str]) -> Option<Rejection> {
        let e = self.enumeration.as_ref()?;
        let subject = subject(ctx);
        let op: Arc<str> = ctx.operation.clone().unwrap_or_else(|| Arc::from(""));
        match e.record(&subject, &op, ids, ctx.now_secs, &ctx.request_id) {
            Verdict::Blocked => Some(forbidden(
                "consumer_blocked",
                "blocked after enumerating object ids".into(),
            )),
            Verdict::Fine | Verdict::Flagged => None,
        }
    }

    fn has_body_bindings(&self) -> bool {
        self.bindings.iter().any(|b| matches!(b.source, Source::Body(_)))
    }
}

/// Body bindings need `application/json` (or `…+json`) and no content coding.
fn json_body(req: &request::Parts) -> Result<(), String> {
    if !crate::json::is_json(&crate::json::media_type(req)) {
        return Err("a body with bound ids must be application/json".into());
    }
    if req
        .headers
        .get(http::header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err("a body with bound ids must not be content-encoded".into());
    }
    Ok(())
}

/// Who enumeration is counted for: the consumer, or the client IP.
fn subject(ctx: &RequestCtx) -> Arc<str> {
    match &ctx.consumer {
        Some(c) => Arc::from(format!("c:{c}")),
        None => Arc::from(format!("ip:{}", crate::rate_limit::client_net(ctx.client_ip))),
    }
}

/// Why a bound id that is someone else's is refused.
const NOT_BOUND: &str = "the object id is not bound to the caller";

/// Whether `id` belongs to the caller: equal to the consumer, or to / inside
/// the token claim. (Lookups are asked separately, asynchronously.)
fn owned(target: &Target, ctx: &RequestCtx, id: &str) -> bool {
    match target {
        Target::Consumer => ctx.consumer.as_deref() == Some(id),
        Target::Claim(c) => match ctx.token_claims.as_ref().and_then(|m| m.get(c)) {
            Some(Value::String(s)) => s == id,
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(id)),
            Some(Value::Number(n)) => n.to_string() == id,
            _ => false,
        },
        Target::Lookup(_) => false,
    }
}

/// Whether the ownership service names the caller among `id`'s owners; a
/// service that gives no usable answer refuses the request.
async fn owned_by_lookup(lookup: &super::ownership::OwnerLookup, ctx: &RequestCtx, id: &str) -> Result<(), String> {
    let Some(consumer) = ctx.consumer.as_deref() else {
        return Err(NOT_BOUND.into());
    };
    let now = u64::try_from(ctx.now_secs).unwrap_or(0);
    match lookup.owners(id, now).await {
        Ok(owners) if owners.iter().any(|o| o == consumer) => Ok(()),
        Ok(_) => Err(NOT_BOUND.into()),
        Err(why) => {
            tracing::warn!(reason = %why, "ownership lookup failed; refused");
            Err(format!("ownership lookup failed: {why}"))
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn forbidden(code: &'static str, reason: String) -> Rejection {
    Rejection::new(ProblemKind::Forbidden, code, reason).with_detail("this request is not allowed")
}

/// The first value of `name` as text; `""` when absent or not UTF-8.
pub(crate) fn header_value(req: &request::Parts, name: &http::HeaderName) -> String {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// A coarse device class from the User-Agent: `bot`, `cli`, `mobile`,
/// `desktop` or `unknown`. A hint for policies, not an identity: clients
/// choose their User-Agent.
pub(crate) fn device_class(req: &request::Parts) -> &'static str {
    let ua = req
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| ua.contains(w));
    if ua.is_empty() {
        "unknown"
    } else if has(&["bot", "crawler", "spider", "slurp"]) {
        "bot"
    } else if has(&[
        "curl/",
        "wget/",
        "httpie/",
        "python-requests/",
        "go-http-client/",
        "postmanruntime/",
        "insomnia/",
    ]) {
        "cli"
    } else if has(&["mobile", "android", "iphone", "ipad"]) {
        "mobile"
    } else if ua.starts_with("mozilla/") && has(&["windows", "macintosh", "x11", "linux", "cros"]) {
        "desktop"
    } else {
        "unknown"
    }
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, String> {
    let t = EntityTypeName::from_str(kind).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

fn string_set(v: Option<&Value>, split_spaces: bool) -> RestrictedExpression {
    let items: Vec<String> = match v {
        Some(Value::String(s)) if split_spaces => s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    RestrictedExpression::new_set(items.into_iter().map(RestrictedExpression::new_string))
}

/// The Cedar request and entities for one HTTP request.
fn cedar_request(
    req: &request::Parts,
    ctx: &RequestCtx,
    context_headers: &[http::HeaderName],
) -> Result<(Request, Entities), String> {
    let groups: HashSet<EntityUid> = ctx.groups.iter().map(|g| uid("Group", g)).collect::<Result<_, _>>()?;
    let principal = match &ctx.consumer {
        Some(c) => uid("User", c)?,
        None => uid("Anonymous", "anonymous")?,
    };
    let mut entities: Vec<Entity> = groups
        .iter()
        .map(|g| Entity::new_no_attrs(g.clone(), HashSet::new()))
        .collect();
    entities.push(Entity::new_no_attrs(principal.clone(), groups));
    let operation = ctx.operation.as_deref().unwrap_or("");
    let action = uid("Action", operation)?;
    let resource = uid("Route", ctx.route_id.as_deref().unwrap_or(""))?;
    let claims = ctx.token_claims.as_deref();
    let now = ctx.now_secs;
    let params = RestrictedExpression::new_record(
        ctx.params
            .iter()
            .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone()))),
    )
    .map_err(|e| e.to_string())?;
    let pairs: HashMap<String, RestrictedExpression> = HashMap::from([
        ("ip".to_owned(), RestrictedExpression::new_ip(ctx.client_ip.to_string())),
        ("time".to_owned(), RestrictedExpression::new_long(now)),
        (
            "hour".to_owned(),
            RestrictedExpression::new_long(now.rem_euclid(86_400) / 3600),
        ),
        (
            "authenticated".to_owned(),
            RestrictedExpression::new_bool(ctx.consumer.is_some()),
        ),
        (
            "mtls".to_owned(),
            RestrictedExpression::new_bool(ctx.client_cert.is_some()),
        ),
        (
            "mtls_identity".to_owned(),
            RestrictedExpression::new_string(
                ctx.client_cert
                    .as_ref()
                    .map_or_else(String::new, |c| c.principal().to_owned()),
            ),
        ),
        ("tls".to_owned(), RestrictedExpression::new_bool(ctx.secure)),
        (
            "authentication".to_owned(),
            RestrictedExpression::new_string(ctx.auth_method.unwrap_or("none").to_owned()),
        ),
        (
            "scopes".to_owned(),
            string_set(claims.and_then(|c| c.get("scope")), true),
        ),
        ("amr".to_owned(), string_set(claims.and_then(|c| c.get("amr")), false)),
        (
            "acr".to_owned(),
            RestrictedExpression::new_string(
                claims
                    .and_then(|c| c.get("acr"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            ),
        ),
        (
            "method".to_owned(),
            RestrictedExpression::new_string(req.method.to_string()),
        ),
        ("params".to_owned(), params),
        (
            "headers".to_owned(),
            RestrictedExpression::new_record(context_headers.iter().map(|h| {
                (
                    h.as_str().to_owned(),
                    RestrictedExpression::new_string(header_value(req, h)),
                )
            }))
            .map_err(|e| e.to_string())?,
        ),
        (
            "device".to_owned(),
            RestrictedExpression::new_string(device_class(req).to_owned()),
        ),
    ]);
    let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
    let request = Request::new(principal, action, resource, context, None).map_err(|e| e.to_string())?;
    let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
    Ok((request, entities))
}

impl Policy for Authz {
    fn name(&self) -> &'static str {
        "authz"
    }

    fn needs_request_body(&self) -> bool {
        self.has_body_bindings()
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        if let Some(e) = &self.enumeration
            && e.is_blocked(&subject(ctx), ctx.now_secs)
        {
            return Ok(Decision::Reject(forbidden(
                "consumer_blocked",
                "blocked after enumerating object ids".into(),
            )));
        }
        let (e, bound) = self.decide(req, ctx);
        // Every object id the request names counts, allowed or not: probing
        // other people's ids is what enumeration looks like.
        let mut ids: Vec<&str> = ctx.params.iter().map(|(_, v)| v.as_str()).collect();
        ids.extend(bound.iter().map(String::as_str));
        if let Some(r) = self.enumeration_check(ctx, &ids) {
            return Ok(Decision::Reject(r));
        }
        if e.allowed {
            return Ok(match self.lookups_hold(req, ctx).await {
                Ok(()) => Decision::Continue,
                Err(why) => Decision::Reject(forbidden("object_not_bound", why)),
            });
        }
        if let (None, false) = (&e.binding_failed, e.errors.is_empty()) {
            tracing::warn!(errors = ?e.errors, "authorization policies failed to evaluate; denied");
        }
        let reason = match (&e.binding_failed, e.determining.is_empty()) {
            (Some(why), _) => why.clone(),
            (None, true) => "no policy permits this request".into(),
            (None, false) => format!("forbidden by {}", e.determining.join(", ")),
        };
        let code = match e.binding_failed.as_deref() {
            Some(NOT_IN_REQUIRED_GROUPS) => "function_not_allowed",
            Some(_) => "object_not_bound",
            None => "authz_denied",
        };
        Ok(Decision::Reject(forbidden(code, reason)))
    }

    async fn on_request_body(
        &self,
        req: &request::Parts,
        body: &bytes::Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        // The upstream must read the body as the JSON checked here: a form
        // or compressed body could mean other ids to it.
        if let Err(why) = json_body(req) {
            return Ok(Decision::Reject(forbidden("object_not_bound", why)));
        }
        let mut ids = Vec::new();
        let verdict = self.body_bound_ids(body, ctx, &mut ids).await;
        let named: Vec<&str> = ids.iter().map(String::as_str).collect();
        if let Some(r) = self.enumeration_check(ctx, &named) {
            return Ok(Decision::Reject(r));
        }
        Ok(match verdict {
            Ok(()) => Decision::Continue,
            Err(why) => Decision::Reject(forbidden("object_not_bound", why)),
        })
    }
}
