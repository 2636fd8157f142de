//! `authz` cost per request: one object binding plus a Cedar decision over
//! a small policy set, evaluated every time (cache off) and answered from
//! the decision cache. Run with `cargo bench -p warden-policies --bench authz`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use warden_core::RequestCtx;
use warden_policies::authz::{Authz, AuthzConfig};

const POLICIES: &str = r#"
@id("read-own-orders")
permit(principal in Group::"customers", action == Action::"GET /users/{user_id}/orders/{order_id}", resource)
when { context.scopes.contains("orders:read") };

@id("support-reads")
permit(principal in Group::"support", action == Action::"GET /users/{user_id}/orders/{order_id}", resource);

@id("admins-delete")
permit(principal in Group::"admin", action == Action::"DELETE /users/{user_id}/orders/{order_id}", resource);

@id("no-quarantined-network")
forbid(principal, action, resource) when { context.ip.isInRange(ip("10.99.0.0/16")) };

@id("mfa-for-exports")
permit(principal, action == Action::"GET /exports", resource) when { context.amr.contains("mfa") };
"#;

fn authz(cache_entries: usize) -> Authz {
    let cfg = AuthzConfig {
        policies_file: None,
        policies: Some(POLICIES.into()),
        schema_file: None,
        bind: vec![warden_policies::authz::BindingConfig {
            path_param: Some("user_id".into()),
            query_param: None,
            body_pointer: None,
            equals_consumer: true,
            equals_claim: None,
            owner_lookup: None,
        }],
        cache_entries,
        cache_ttl_secs: 60,
        context_headers: Vec::new(),
        require_groups: Vec::new(),
        enumeration: None,
        on_error: warden_core::OnError::Deny,
    };
    cfg.build().unwrap()
}

fn bench(c: &mut Criterion) {
    let (parts, ()) = http::Request::get("/users/alice/orders/7")
        .body(())
        .unwrap()
        .into_parts();
    let mut ctx = RequestCtx::new("bench".into(), "192.0.2.10".parse().unwrap(), 1024);
    ctx.consumer = Some("alice".into());
    ctx.groups = vec![Arc::from("customers")].into();
    ctx.operation = Some("GET /users/{user_id}/orders/{order_id}".into());
    ctx.route_id = Some("orders".into());
    ctx.params = vec![("user_id".into(), "alice".into()), ("order_id".into(), "7".into())];
    ctx.token_claims = Some(Arc::new(
        serde_json::from_value(serde_json::json!({ "scope": "orders:read profile", "exp": i64::MAX / 2 })).unwrap(),
    ));
    ctx.now_secs = 1_803_945_600;
    let uncached = authz(0);
    let cached = authz(10_000);
    for a in [&uncached, &cached] {
        assert!(a.explain(&parts, &ctx).allowed);
    }
    c.bench_function("authz decision uncached", |b| {
        b.iter(|| black_box(uncached.explain(&parts, &ctx).allowed))
    });
    c.bench_function("authz decision cached", |b| {
        b.iter(|| black_box(cached.explain(&parts, &ctx).allowed))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
