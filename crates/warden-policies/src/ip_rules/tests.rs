use std::net::IpAddr;
use std::sync::Arc;

use warden_core::{Decision, Policy, ProblemKind, RequestCtx};

use super::IpRulesConfig;

fn rules(allow: &[&str], deny: &[&str]) -> super::IpRules {
    IpRulesConfig {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
        on_error: Default::default(),
    }
    .build()
    .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn deny_wins_over_allow() {
    let r = rules(&["10.0.0.0/8"], &["10.1.0.0/16"]);
    assert!(r.permits(ip("10.2.3.4")));
    assert!(!r.permits(ip("10.1.3.4")));
    assert!(!r.permits(ip("192.168.1.1")), "outside allow list");
}

#[test]
fn empty_allow_means_everything_not_denied() {
    let r = rules(&[], &["203.0.113.0/24", "2001:db8::/32"]);
    assert!(!r.permits(ip("203.0.113.9")));
    assert!(r.permits(ip("203.0.114.9")));
    assert!(!r.permits(ip("2001:db8::1")));
    assert!(r.permits(ip("2001:db9::1")));
}

#[test]
fn ipv4_mapped_ipv6_is_matched_as_ipv4() {
    let r = rules(&[], &["10.0.0.0/8"]);
    assert!(!r.permits(ip("::ffff:10.9.9.9")));
    assert!(r.permits(ip("::ffff:11.9.9.9")));
}

#[test]
fn bare_addresses_are_accepted_as_host_routes() {
    let r = rules(&["127.0.0.1", "::1"], &[]);
    assert!(r.permits(ip("127.0.0.1")));
    assert!(!r.permits(ip("127.0.0.2")));
    assert!(r.permits(ip("::1")));
}

#[test]
fn every_bad_entry_is_reported_with_its_path() {
    let errs = IpRulesConfig {
        allow: vec!["10.0.0.0/8".into(), "nope".into()],
        deny: vec!["10.0.0.0/33".into()],
        on_error: Default::default(),
    }
    .build()
    .unwrap_err();
    let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["allow[1]", "deny[0]"]);
}

#[test]
fn empty_rules_are_refused() {
    let errs = IpRulesConfig {
        allow: vec![],
        deny: vec![],
        on_error: Default::default(),
    }
    .build()
    .unwrap_err();
    assert_eq!(errs.len(), 1);
}

#[test]
fn denied_client_gets_403_with_code() {
    let r = rules(&[], &["198.51.100.0/24"]);
    let (mut parts, ()) = http::Request::new(()).into_parts();
    let mut ctx = RequestCtx::new(Arc::from("rid"), ip("198.51.100.7"), 1024);
    match crate::block_on(r.on_request(&mut parts, &mut ctx)).unwrap() {
        Decision::Reject(rej) => {
            assert_eq!(rej.kind, ProblemKind::Forbidden);
            assert_eq!(rej.code, "ip_denied");
        }
        Decision::Continue => panic!("denied address passed"),
    }
    let mut ok = RequestCtx::new(Arc::from("rid"), ip("198.51.101.7"), 1024);
    assert!(matches!(
        crate::block_on(r.on_request(&mut parts, &mut ok)).unwrap(),
        Decision::Continue
    ));
}
