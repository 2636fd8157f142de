//! [`RedisState`] against a real three-master Redis Cluster
//! ([`crate::testing::TestCluster`]): every operation Warden sends works
//! there, multi-key limit scripts stay in one hash slot, and limits are
//! exact across two handles and across buckets living on different masters.

use std::sync::Arc;
use std::time::Duration;

use warden_core::SharedState;
use warden_core::limits::{LimitCheck, LimitKind, Subject, Window};

use crate::testing::TestCluster;
use crate::{OnUnavailable, RedisState};

async fn handle(cluster: &TestCluster) -> RedisState {
    RedisState::connect_cluster(
        &cluster.nodes,
        "warden-test:".into(),
        Duration::from_secs(2),
        OnUnavailable::FailClosed,
    )
    .await
    .unwrap()
}

/// A client's subject in `bucket`, as the policy writes it.
fn subject(bucket: &str) -> Subject {
    Subject::new(format!("rl:{{{bucket}}}:2:ip"))
}

fn checks(subject: &Subject) -> [LimitCheck<'_>; 2] {
    [
        LimitCheck {
            subject,
            name: "rate:r",
            kind: LimitKind::Rate {
                limit: 10,
                period_ms: 60_000,
                burst: 10,
            },
        },
        LimitCheck {
            subject,
            name: "daily:q",
            kind: LimitKind::Quota {
                limit: 1000,
                window: Window::Day,
            },
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_claims_counters_and_maps_work_in_a_redis_cluster() {
    let cluster = TestCluster::start();
    let (a, b) = (Arc::new(handle(&cluster).await), Arc::new(handle(&cluster).await));
    // Buckets spread over the masters (slots 0–5460, 5461–10922, 10923–16383).
    let buckets: Vec<String> = (0..12).map(|i| format!("route-{i}")).collect();
    let masters: std::collections::BTreeSet<u16> = buckets
        .iter()
        .map(|b| cluster.slot_of(&format!("warden-test:rl:{{{b}}}:x")) / 5462)
        .collect();
    assert!(
        masters.len() >= 2,
        "every bucket on one master: the test proves nothing"
    );
    // 30 decisions per bucket through two handles: exactly 10 admitted each,
    // and each admission charged both limits of its slot (no CROSSSLOT).
    let mut tasks = Vec::new();
    for bucket in &buckets {
        for i in 0..30 {
            let s = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
            let bucket = bucket.clone();
            tasks.push(tokio::spawn(async move {
                let subject = subject(&bucket);
                let o = s.limit(&checks(&subject), 0).await.unwrap();
                (bucket, o[0].allowed && o[1].allowed)
            }));
        }
    }
    let mut admitted = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        let (bucket, ok) = t.await.unwrap();
        *admitted.entry(bucket).or_default() += usize::from(ok);
    }
    assert!(admitted.values().all(|n| *n == 10), "{admitted:?}");
    let quota_left = a.limit(&checks(&subject("route-0"))[1..], 0).await.unwrap()[0].remaining;
    assert_eq!(quota_left, 1000 - 11, "the quota counted exactly the admitted requests");

    // One-time claims, counters and maps.
    assert!(a.claim_once("dpop:k:1", 30).await.unwrap());
    assert!(
        !b.claim_once("dpop:k:1", 30).await.unwrap(),
        "a replay through the other handle"
    );
    assert_eq!(a.bump("bf:id:alice", 60).await.unwrap(), 1);
    assert_eq!(b.bump("bf:id:alice", 60).await.unwrap(), 2);
    assert_eq!(a.read("bf:id:alice").await.unwrap(), 2);
    b.map_set("blocks", "10.0.0.0/8", "{}").await.unwrap();
    assert_eq!(
        a.map_entries("blocks").await.unwrap(),
        vec![("10.0.0.0/8".into(), "{}".into())]
    );
}
