//! The pipeline driver: runs policy phases in order and turns their outcomes
//! into either "go on" or a [`Rejection`].
//!
//! A phase's `Err` means the policy broke: with `on_error: deny` (the default)
//! the request fails closed with 500; with `on_error: allow` it is logged and
//! skipped.

use bytes::Bytes;
use http::{request, response};
use warden_core::{Decision, OnError, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

/// One entry of a policy list: the policy and its failure mode.
pub trait Slot: Send + Sync {
    /// The policy type.
    type P: Policy;
    /// The policy.
    fn policy(&self) -> &Self::P;
    /// What to do when it breaks.
    fn on_error(&self) -> OnError;
}

impl Slot for warden_config::PolicyInstance {
    type P = warden_policies::CompiledPolicy;
    fn policy(&self) -> &Self::P {
        &self.policy
    }
    fn on_error(&self) -> OnError {
        self.on_error
    }
}

impl<P: Policy> Slot for (P, OnError) {
    type P = P;
    fn policy(&self) -> &P {
        &self.0
    }
    fn on_error(&self) -> OnError {
        self.1
    }
}

fn settle(outcome: Result<Decision, PolicyError>, on_error: OnError) -> Result<(), Rejection> {
    match outcome {
        Ok(Decision::Continue) => Ok(()),
        Ok(Decision::Reject(r)) => Err(r),
        Err(e) => match on_error {
            OnError::Allow => {
                tracing::warn!(error = %e, "policy failed; on_error: allow lets the request continue");
                Ok(())
            }
            OnError::Deny => Err(Rejection::new(
                ProblemKind::InternalError,
                "policy_error",
                e.to_string(),
            )),
        },
    }
}

/// Runs every `on_request` phase in order; the first rejection stops the chain.
pub async fn on_request<S: Slot>(
    policies: &[S],
    req: &mut request::Parts,
    ctx: &mut RequestCtx,
) -> Result<(), Rejection> {
    for slot in policies {
        let outcome = match slot.policy().on_request_now(req, ctx) {
            Some(outcome) => outcome,
            None => slot.policy().on_request(req, ctx).await,
        };
        settle(outcome, slot.on_error())?;
    }
    Ok(())
}

/// Runs every `on_request_body` phase of the policies that asked for the body.
pub async fn on_request_body<S: Slot>(
    policies: &[S],
    req: &request::Parts,
    body: &Bytes,
    ctx: &mut RequestCtx,
) -> Result<(), Rejection> {
    for slot in policies {
        if slot.policy().needs_request_body() {
            settle(slot.policy().on_request_body(req, body, ctx).await, slot.on_error())?;
        }
    }
    Ok(())
}

/// Runs every `on_response` phase, in reverse order.
pub async fn on_response<S: Slot>(
    policies: &[S],
    resp: &mut response::Parts,
    ctx: &mut RequestCtx,
) -> Result<(), Rejection> {
    for slot in policies.iter().rev() {
        settle(slot.policy().on_response(resp, ctx).await, slot.on_error())?;
    }
    Ok(())
}

/// Runs the `on_response_body` phase of every policy that asked for the
/// response body, in reverse order; each may rewrite `body`. A policy whose
/// own bound the body passes is skipped, with a `response_uninspected` event.
pub async fn on_response_body<S: Slot>(
    policies: &[S],
    resp: &mut response::Parts,
    body: &mut Bytes,
    ctx: &mut RequestCtx,
) -> Result<(), Rejection> {
    for slot in policies.iter().rev() {
        match slot.policy().response_body_limit() {
            Some(limit) if body.len() <= limit => {
                settle(slot.policy().on_response_body(resp, body, ctx).await, slot.on_error())?;
            }
            Some(_) => too_long(slot.policy(), resp.status, ctx)?,
            None => {}
        }
    }
    Ok(())
}

/// A body longer than every policy's bound: each inspecting policy either
/// lets it stream on (recorded as a `response_uninspected` event) or refuses.
pub fn on_response_too_long<S: Slot>(
    policies: &[S],
    status: http::StatusCode,
    ctx: &RequestCtx,
) -> Result<(), Rejection> {
    for slot in policies.iter().rev() {
        if slot.policy().response_body_limit().is_some() {
            too_long(slot.policy(), status, ctx)?;
        }
    }
    Ok(())
}

/// Records a `response_uninspected` event: why a response body went out unread.
pub fn uninspected(ctx: &RequestCtx, why: &str) {
    warden_core::event::emit(
        warden_core::event::EventKind::ResponseUninspected,
        &ctx.request_id,
        &ctx.client_ip.to_string(),
        why,
    );
}

fn too_long<P: Policy>(policy: &P, status: http::StatusCode, ctx: &RequestCtx) -> Result<(), Rejection> {
    uninspected(ctx, &format!("too_long for {}", policy.name()));
    match policy.response_too_long(status, ctx) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    type Outcome = fn() -> Result<Decision, PolicyError>;
    type Order = Arc<std::sync::Mutex<Vec<&'static str>>>;

    struct Probe {
        name: &'static str,
        outcome: Outcome,
        calls: Arc<AtomicUsize>,
        order: Order,
    }

    impl Policy for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn on_request(&self, _: &mut request::Parts, _: &mut RequestCtx) -> Result<Decision, PolicyError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.order.lock().unwrap().push(self.name);
            (self.outcome)()
        }
        async fn on_response(&self, _: &mut response::Parts, _: &mut RequestCtx) -> Result<Decision, PolicyError> {
            self.order.lock().unwrap().push(self.name);
            Ok(Decision::Continue)
        }
    }

    fn ok() -> Result<Decision, PolicyError> {
        Ok(Decision::Continue)
    }
    fn deny() -> Result<Decision, PolicyError> {
        Ok(Decision::Reject(Rejection::new(
            ProblemKind::Forbidden,
            "test_deny",
            "no",
        )))
    }
    fn broken() -> Result<Decision, PolicyError> {
        Err(PolicyError {
            policy: "probe",
            message: "boom".into(),
        })
    }

    fn probes(spec: &[(&'static str, Outcome)]) -> (Vec<Probe>, Arc<AtomicUsize>, Order) {
        let calls = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let v = spec
            .iter()
            .map(|(name, outcome)| Probe {
                name,
                outcome: *outcome,
                calls: calls.clone(),
                order: order.clone(),
            })
            .collect();
        (v, calls, order)
    }

    fn slots(ps: Vec<Probe>, on_error: OnError) -> Vec<(Probe, OnError)> {
        ps.into_iter().map(|p| (p, on_error)).collect()
    }

    fn ctx() -> RequestCtx {
        RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 10)
    }

    #[tokio::test]
    async fn first_rejection_stops_the_chain() {
        let (ps, calls, _) = probes(&[("a", ok), ("b", deny), ("c", ok)]);
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let r = on_request(&slots(ps, OnError::Deny), &mut parts, &mut ctx()).await;
        assert_eq!(r.unwrap_err().code, "test_deny");
        assert_eq!(calls.load(Ordering::Relaxed), 2, "c never ran");
    }

    #[tokio::test]
    async fn broken_policy_fails_closed_unless_allowed() {
        let (ps, _, _) = probes(&[("a", broken), ("b", ok)]);
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let denied = on_request(&slots(ps, OnError::Deny), &mut parts, &mut ctx()).await;
        assert_eq!(denied.unwrap_err().kind, ProblemKind::InternalError);
        let (ps, _, _) = probes(&[("a", broken), ("b", ok)]);
        let allowed = on_request(&slots(ps, OnError::Allow), &mut parts, &mut ctx()).await;
        assert!(allowed.is_ok());
    }

    /// Answers at once with `now` when set; else declines to the awaited
    /// phase, which answers `Continue`. Counts both.
    struct Quick {
        now: Option<Outcome>,
        asked: Arc<AtomicUsize>,
        awaited: Arc<AtomicUsize>,
    }

    impl Policy for Quick {
        fn name(&self) -> &'static str {
            "quick"
        }
        fn on_request_now(&self, _: &mut request::Parts, _: &mut RequestCtx) -> Option<Result<Decision, PolicyError>> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            self.now.map(|outcome| outcome())
        }
        async fn on_request(&self, _: &mut request::Parts, _: &mut RequestCtx) -> Result<Decision, PolicyError> {
            self.awaited.fetch_add(1, Ordering::Relaxed);
            Ok(Decision::Continue)
        }
    }

    fn quick(now: Option<Outcome>) -> (Quick, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (asked, awaited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let q = Quick {
            now,
            asked: Arc::clone(&asked),
            awaited: Arc::clone(&awaited),
        };
        (q, asked, awaited)
    }

    #[tokio::test]
    async fn an_answer_at_once_replaces_the_awaited_phase_and_a_decline_awaits_it_once() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let (q, asked, awaited) = quick(Some(deny));
        let refused = on_request(&[(q, OnError::Deny)], &mut parts, &mut ctx()).await;
        assert_eq!(refused.unwrap_err().code, "test_deny");
        assert_eq!((asked.load(Ordering::Relaxed), awaited.load(Ordering::Relaxed)), (1, 0));

        let (q, asked, awaited) = quick(None);
        assert!(on_request(&[(q, OnError::Deny)], &mut parts, &mut ctx()).await.is_ok());
        assert_eq!((asked.load(Ordering::Relaxed), awaited.load(Ordering::Relaxed)), (1, 1));

        // A policy broken at once follows its `on_error` like an awaited one.
        let (q, _, awaited) = quick(Some(broken));
        let denied = on_request(&[(q, OnError::Deny)], &mut parts, &mut ctx()).await;
        assert_eq!(denied.unwrap_err().kind, ProblemKind::InternalError);
        let (q, _, _) = quick(Some(broken));
        assert!(on_request(&[(q, OnError::Allow)], &mut parts, &mut ctx()).await.is_ok());
        assert_eq!(awaited.load(Ordering::Relaxed), 0);
    }

    struct BodyCheck;

    impl Policy for BodyCheck {
        fn name(&self) -> &'static str {
            "body_check"
        }
        fn needs_request_body(&self) -> bool {
            true
        }
        async fn on_request_body(
            &self,
            _: &request::Parts,
            body: &Bytes,
            _: &mut RequestCtx,
        ) -> Result<Decision, PolicyError> {
            if body.windows(6).any(|w| w == b"attack") {
                Ok(Decision::Reject(Rejection::new(
                    ProblemKind::BadRequest,
                    "body_attack",
                    "found",
                )))
            } else {
                Ok(Decision::Continue)
            }
        }
    }

    #[tokio::test]
    async fn body_phase_sees_the_buffered_body_and_can_refuse() {
        let body_slots = [(BodyCheck, OnError::Deny)];
        let (parts, ()) = http::Request::new(()).into_parts();
        let bad = on_request_body(&body_slots, &parts, &Bytes::from_static(b"an attack here"), &mut ctx()).await;
        assert_eq!(bad.unwrap_err().code, "body_attack");
        let fine = on_request_body(&body_slots, &parts, &Bytes::from_static(b"benign"), &mut ctx()).await;
        assert!(fine.is_ok());
        // A policy that did not ask for the body is not called with it.
        let (ps, calls, _) = probes(&[("a", deny)]);
        let skipped = on_request_body(&slots(ps, OnError::Deny), &parts, &Bytes::from_static(b"x"), &mut ctx()).await;
        assert!(skipped.is_ok());
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn response_phases_run_in_reverse() {
        let (ps, _, order) = probes(&[("a", ok), ("b", ok), ("c", ok)]);
        let (mut parts, ()) = http::Response::new(()).into_parts();
        on_response(&slots(ps, OnError::Deny), &mut parts, &mut ctx())
            .await
            .unwrap();
        assert_eq!(*order.lock().unwrap(), ["c", "b", "a"]);
    }
}
