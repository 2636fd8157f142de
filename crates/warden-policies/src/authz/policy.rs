//! The compiled `authz` policy.

use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, RestrictedExpression,
};
use http::request;
use serde_json::Value;
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

/// Where a bound object id comes from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Path(String),
    Query(String),
}

/// One object-level binding.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub source: Source,
    /// `None`: the consumer name; `Some(c)`: token claim `c`.
    pub claim: Option<String>,
}

/// `type: authz`, compiled.
pub struct Authz {
    policies: PolicySet,
    bindings: Vec<Binding>,
    authorizer: Authorizer,
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
    pub(super) fn new(policies: PolicySet, bindings: Vec<Binding>) -> Self {
        Self {
            policies,
            bindings,
            authorizer: Authorizer::new(),
        }
    }

    /// Decides for `req` as the gateway would, and says why.
    pub fn explain(&self, req: &request::Parts, ctx: &RequestCtx) -> Explanation {
        if let Some(why) = self.check_bindings(req, ctx) {
            return Explanation {
                allowed: false,
                determining: Vec::new(),
                binding_failed: Some(why),
                errors: Vec::new(),
            };
        }
        let (request, entities) = match cedar_request(req, ctx) {
            Ok(r) => r,
            Err(e) => {
                return Explanation {
                    allowed: false,
                    determining: Vec::new(),
                    binding_failed: None,
                    errors: vec![e],
                };
            }
        };
        let answer = self.authorizer.is_authorized(&request, &self.policies, &entities);
        Explanation {
            allowed: answer.decision() == CedarDecision::Allow,
            determining: answer.diagnostics().reason().map(ToString::to_string).collect(),
            binding_failed: None,
            errors: answer.diagnostics().errors().map(ToString::to_string).collect(),
        }
    }

    /// The reason a binding fails, if one does.
    fn check_bindings(&self, req: &request::Parts, ctx: &RequestCtx) -> Option<String> {
        for b in &self.bindings {
            let id = match &b.source {
                Source::Path(p) => ctx.params.iter().find(|(k, _)| k == p).map(|(_, v)| v.clone()),
                Source::Query(q) => match crate::query::single(req, q) {
                    Ok(v) => v.and_then(percent_decode),
                    Err(()) => return Some(format!("query parameter `{q}` given more than once")),
                },
            };
            let Some(id) = id else {
                return Some("the bound object id is missing".into());
            };
            let owned = match &b.claim {
                None => ctx.consumer.as_deref() == Some(id.as_str()),
                Some(c) => match ctx.token_claims.as_ref().and_then(|m| m.get(c)) {
                    Some(Value::String(s)) => *s == id,
                    Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(id.as_str())),
                    Some(Value::Number(n)) => n.to_string() == id,
                    _ => false,
                },
            };
            if !owned {
                return Some("the object id is not bound to the caller".into());
            }
        }
        None
    }
}

fn percent_decode(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
fn cedar_request(req: &request::Parts, ctx: &RequestCtx) -> Result<(Request, Entities), String> {
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

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let e = self.explain(req, ctx);
        if e.allowed {
            return Ok(Decision::Continue);
        }
        if let (None, false) = (&e.binding_failed, e.errors.is_empty()) {
            tracing::warn!(errors = ?e.errors, "authorization policies failed to evaluate; denied");
        }
        let reason = match (&e.binding_failed, e.determining.is_empty()) {
            (Some(why), _) => why.clone(),
            (None, true) => "no policy permits this request".into(),
            (None, false) => format!("forbidden by {}", e.determining.join(", ")),
        };
        let code = if e.binding_failed.is_some() {
            "object_not_bound"
        } else {
            "authz_denied"
        };
        Ok(Decision::Reject(
            Rejection::new(ProblemKind::Forbidden, code, reason).with_detail("this request is not allowed"),
        ))
    }
}
