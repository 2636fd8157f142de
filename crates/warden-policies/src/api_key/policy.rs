//! The compiled `api_key` policy.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, request};
use warden_core::{
    ApiKeyVerifier, Decision, KeyRefusal, Policy, PolicyError, ProblemKind, Rejection, RequestCtx, Services,
};

/// `type: api_key`, compiled.
pub struct ApiKey {
    header: HeaderName,
    query_param: Option<String>,
    consumer_header: Option<HeaderName>,
    /// Headers removed from every request before the gateway writes its own:
    /// the key header and the consumer header.
    scrub: Vec<HeaderName>,
    groups: Vec<Arc<str>>,
    anonymous: bool,
    verifier: OnceLock<Arc<dyn ApiKeyVerifier>>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("header", &self.header)
            .field("query_param", &self.query_param)
            .field("consumer_header", &self.consumer_header)
            .field("groups", &self.groups)
            .field("anonymous", &self.anonymous)
            .field("started", &self.verifier.get().is_some())
            .finish()
    }
}

/// Why the request carries no usable key.
enum Refusal {
    Missing,
    Ambiguous,
    Key(KeyRefusal),
    Group,
}

impl ApiKey {
    pub(super) fn new(
        header: HeaderName,
        query_param: Option<String>,
        consumer_header: Option<HeaderName>,
        groups: Vec<Arc<str>>,
        anonymous: bool,
    ) -> Self {
        let scrub = std::iter::once(header.clone()).chain(consumer_header.clone()).collect();
        Self {
            header,
            query_param,
            consumer_header,
            scrub,
            groups,
            anonymous,
            verifier: OnceLock::new(),
        }
    }

    /// The presented key: the header first, then the query parameter when the
    /// route opted in. Two copies in either place are refused.
    fn presented<'a>(&self, req: &'a request::Parts) -> Result<&'a str, Refusal> {
        let mut values = req.headers.get_all(&self.header).iter();
        if let Some(v) = values.next() {
            if values.next().is_some() {
                return Err(Refusal::Ambiguous);
            }
            return v
                .to_str()
                .map(str::trim)
                .map_err(|_| Refusal::Key(KeyRefusal::Malformed));
        }
        let Some(param) = &self.query_param else {
            return Err(Refusal::Missing);
        };
        match crate::query::single(req, param) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(Refusal::Missing),
            Err(()) => Err(Refusal::Ambiguous),
        }
    }

    async fn check(
        &self,
        verifier: &dyn ApiKeyVerifier,
        req: &request::Parts,
    ) -> Result<warden_core::KeyOwner, Refusal> {
        let key = self.presented(req)?;
        let owner = match verifier.verify(key, now_secs()) {
            Err(KeyRefusal::Unknown) => {
                // Perhaps created since the last load: look once more.
                verifier.refresh_on_miss().await;
                verifier.verify(key, now_secs())
            }
            other => other,
        }
        .map_err(Refusal::Key)?;
        if !self.groups.is_empty() && !owner.groups.iter().any(|g| self.groups.contains(g)) {
            return Err(Refusal::Group);
        }
        Ok(owner)
    }
}

impl Policy for ApiKey {
    fn name(&self) -> &'static str {
        "api_key"
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let Some(verifier) = self.verifier.get() else {
            return Err(PolicyError {
                policy: "api_key",
                message: "the gateway has no store to check API keys against".into(),
            });
        };
        let outcome = self.check(verifier.as_ref(), req).await;
        // Whatever the outcome, neither the key nor a client-made consumer
        // header travels on.
        warden_core::headers::remove_with_lookalikes(&mut req.headers, &self.scrub);
        if let Some(param) = &self.query_param {
            crate::query::strip(req, param);
        }
        match outcome {
            Ok(owner) => {
                if let Some(h) = &self.consumer_header
                    && let Ok(v) = HeaderValue::from_str(&owner.consumer)
                {
                    req.headers.insert(h.clone(), v);
                }
                tracing::debug!(consumer = %owner.consumer, key = %owner.prefix, "API key accepted");
                ctx.consumer = Some(owner.consumer);
                ctx.groups = owner.groups;
                ctx.authenticated = true;
                ctx.auth_method = Some("api_key");
                ctx.credential = Some(Arc::clone(&owner.prefix));
                Ok(Decision::Continue)
            }
            Err(Refusal::Missing) if self.anonymous || ctx.auth_any => Ok(Decision::Continue),
            Err(r) => Ok(Decision::Reject(rejection(&r))),
        }
    }

    fn start(&self, services: &Services) {
        if let Some(v) = &services.api_keys {
            let _ = self.verifier.set(Arc::clone(v));
        }
    }

    fn is_ready(&self) -> bool {
        self.verifier.get().is_some_and(|v| v.is_ready())
    }
}

fn rejection(r: &Refusal) -> Rejection {
    let (kind, code, reason, detail) = match r {
        Refusal::Missing => (
            ProblemKind::Unauthorized,
            "api_key_missing",
            "no API key",
            "an API key is required",
        ),
        Refusal::Ambiguous => (
            ProblemKind::Unauthorized,
            "api_key_ambiguous",
            "more than one API key",
            "send exactly one API key",
        ),
        Refusal::Key(k) => (
            ProblemKind::Unauthorized,
            k.code(),
            k.code(),
            "the API key is not valid",
        ),
        Refusal::Group => (
            ProblemKind::Forbidden,
            "consumer_group_denied",
            "consumer in none of the route's groups",
            "this consumer may not use this route",
        ),
    };
    let rejection = Rejection::new(kind, code, reason).with_detail(detail);
    if kind == ProblemKind::Unauthorized {
        // RFC 9110 §15.5.2: a 401 names the scheme it wants.
        rejection.with_header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"ApiKey realm="warden""#),
        )
    } else {
        rejection
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
