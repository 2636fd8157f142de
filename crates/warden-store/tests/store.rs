//! The store against real SQLite and real PostgreSQL: every test runs on both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sqlx::Row as _;
use warden_core::{ApiKeyVerifier as _, KeyRefusal};
use warden_store::testing::TestDatabase;
use warden_store::{ConsumerStatus, NewConsumer, Store, StoreConfig, StoreError, StoreIndex};

/// A store of one backend, with whatever keeps it alive.
struct Fixture {
    store: Store,
    config: StoreConfig,
    _dir: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        data_dir: dir.path().join("data"),
        poll_ms: 50,
        ..StoreConfig::default()
    };
    Fixture {
        store: Store::open(&config).await.unwrap(),
        config,
        _dir: dir,
        _db: None,
    }
}

async fn postgres() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create()
        .await
        .expect("PostgreSQL for tests (see .ci/run)");
    let secret = dir.path().join("secret.key");
    std::fs::write(&secret, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n").unwrap();
    set_mode(&secret, 0o600);
    let config = StoreConfig {
        data_dir: dir.path().join("data"),
        database_url: Some(db.url.clone()),
        secret_file: Some(secret),
        poll_ms: 50,
    };
    Fixture {
        store: Store::open(&config).await.unwrap(),
        config,
        _dir: dir,
        _db: Some(db),
    }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

async fn consumer(store: &Store, name: &str, groups: &[&str]) {
    store
        .create_consumer(&NewConsumer {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).into()).collect(),
            ..NewConsumer::default()
        })
        .await
        .unwrap();
}

/// Runs `$body` (an async fn taking a Fixture) on SQLite and on PostgreSQL.
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(super::sqlite().await).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body(super::postgres().await).await;
            }
        }
    };
}

both!(rows_hold_no_plaintext_key, rows_hold_no_plaintext_key_body);
async fn rows_hold_no_plaintext_key_body(f: Fixture) {
    consumer(&f.store, "billing", &[]).await;
    let created = f.store.create_key("billing", None, Some("ci")).await.unwrap();
    let key = created.key.clone();
    let secret_part = &key[17..];
    assert_eq!(
        key.len(),
        60,
        "wdn_ + 12-digit prefix + _ + 43 chars of 32 random bytes"
    );
    let rows = sqlx::query("SELECT id, prefix, consumer_id, key_hmac, label FROM api_keys")
        .fetch_all(f.store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    for col in 0..5 {
        let v: Option<String> = rows[0].try_get(col).unwrap();
        let v = v.unwrap_or_default();
        assert!(!v.contains(secret_part), "column {col} holds the key's secret part");
        assert!(!v.contains(&key), "column {col} holds the key");
    }
    let prefix: String = rows[0].try_get("prefix").unwrap();
    let hmac: String = rows[0].try_get("key_hmac").unwrap();
    assert_eq!(prefix, created.record.prefix);
    assert!(key.starts_with(&format!("wdn_{prefix}_")));
    assert_eq!(hmac.len(), 64);
    assert!(hmac.bytes().all(|b| b.is_ascii_hexdigit()));
    // The same key under the same secret always gives the same HMAC, and the
    // stored value is not a plain SHA-256 of the key (it is keyed).
    let plain = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let plain_hex: String = plain.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_ne!(hmac, plain_hex);
}

both!(index_accepts_only_the_exact_key, index_accepts_only_the_exact_key_body);
async fn index_accepts_only_the_exact_key_body(f: Fixture) {
    consumer(&f.store, "billing", &["finance"]).await;
    let key = f.store.create_key("billing", None, None).await.unwrap().key;
    let index = StoreIndex::start(f.store.clone()).await.unwrap();
    let now = 1_900_000_000;
    let owner = index.verify(&key, now).unwrap();
    assert_eq!(&*owner.consumer, "billing");
    assert_eq!(&*owner.groups[0], "finance");
    // Same public prefix, another secret: unknown.
    let mut forged = key.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(index.verify(&forged, now), Err(KeyRefusal::Unknown));
    assert_eq!(index.verify(&key[..59], now), Err(KeyRefusal::Malformed));
    assert_eq!(index.verify(&key.to_uppercase(), now), Err(KeyRefusal::Malformed));
    assert_eq!(index.verify("", now), Err(KeyRefusal::Malformed));
    let unknown = format!("wdn_000000000000_{}", &key[17..]);
    assert_eq!(index.verify(&unknown, now), Err(KeyRefusal::Unknown));
    index.stop();
}

both!(rotation_allows_two_active_keys, rotation_allows_two_active_keys_body);
async fn rotation_allows_two_active_keys_body(f: Fixture) {
    consumer(&f.store, "svc", &[]).await;
    let old = f.store.create_key("svc", None, Some("old")).await.unwrap();
    let new = f.store.create_key("svc", None, Some("new")).await.unwrap();
    let third = f.store.create_key("svc", None, None).await;
    assert!(matches!(third, Err(StoreError::Conflict(_))), "{third:?}");
    let index = StoreIndex::start(f.store.clone()).await.unwrap();
    let now = warden_now();
    assert!(index.verify(&old.key, now).is_ok() && index.verify(&new.key, now).is_ok());
    f.store.revoke_key(&old.record.prefix).await.unwrap();
    assert!(index.refresh(&f.store).await.unwrap());
    assert_eq!(index.verify(&old.key, now), Err(KeyRefusal::Revoked));
    assert!(index.verify(&new.key, now).is_ok());
    // With one slot free again, a new key can be made.
    f.store.create_key("svc", None, None).await.unwrap();
    let listed = f.store.keys(Some("svc")).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.iter().filter(|k| k.is_active(now)).count(), 2);
    index.stop();
}

both!(expiry_and_disabled_consumers, expiry_and_disabled_consumers_body);
async fn expiry_and_disabled_consumers_body(f: Fixture) {
    consumer(&f.store, "temp", &[]).await;
    let now = warden_now();
    let key = f.store.create_key("temp", Some(now + 3600), None).await.unwrap().key;
    let past = f.store.create_key("temp", Some(now - 1), None).await;
    assert!(matches!(past, Err(StoreError::Invalid(_))), "{past:?}");
    let index = StoreIndex::start(f.store.clone()).await.unwrap();
    assert!(index.verify(&key, now).is_ok());
    assert_eq!(index.verify(&key, now + 3600), Err(KeyRefusal::Expired));
    f.store
        .set_consumer_status("temp", ConsumerStatus::Disabled)
        .await
        .unwrap();
    index.refresh(&f.store).await.unwrap();
    assert_eq!(index.verify(&key, now), Err(KeyRefusal::ConsumerDisabled));
    f.store
        .set_consumer_status("temp", ConsumerStatus::Active)
        .await
        .unwrap();
    index.refresh(&f.store).await.unwrap();
    assert!(index.verify(&key, now).is_ok());
    f.store.delete_consumer("temp").await.unwrap();
    index.refresh(&f.store).await.unwrap();
    assert_eq!(index.verify(&key, now), Err(KeyRefusal::Unknown));
    assert!(f.store.keys(None).await.unwrap().is_empty());
    index.stop();
}

both!(bad_input_is_refused_clearly, bad_input_is_refused_clearly_body);
async fn bad_input_is_refused_clearly_body(f: Fixture) {
    consumer(&f.store, "dup", &[]).await;
    let again = f
        .store
        .create_consumer(&NewConsumer {
            name: "dup".into(),
            ..NewConsumer::default()
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    for bad in ["", "wc_3f9a", "has space", "quote\"", "new\nline", &"x".repeat(129)] {
        let r = f
            .store
            .create_consumer(&NewConsumer {
                name: bad.into(),
                ..NewConsumer::default()
            })
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
    }
    let r = f.store.create_key("nobody", None, None).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = f.store.revoke_key("ffffffffffff").await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

both!(another_secret_is_refused, another_secret_is_refused_body);
async fn another_secret_is_refused_body(f: Fixture) {
    let other = f.config.data_dir.parent().unwrap().join("other.key");
    std::fs::write(&other, "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n").unwrap();
    set_mode(&other, 0o600);
    let config = StoreConfig {
        secret_file: Some(other.clone()),
        ..f.config.clone()
    };
    let r = Store::open(&config).await;
    assert!(matches!(r, Err(StoreError::SecretMismatch(_))), "{r:?}");
    set_mode(&other, 0o644);
    let r = Store::open(&config).await;
    assert!(matches!(&r, Err(StoreError::Io(m)) if m.contains("chmod 600")), "{r:?}");
}

both!(
    changes_reach_a_second_store_handle,
    changes_reach_a_second_store_handle_body
);
/// Another process (the CLI, another gateway) writes; this index follows
/// without being asked.
async fn changes_reach_a_second_store_handle_body(f: Fixture) {
    let writer = Store::open(&f.config).await.unwrap();
    consumer(&writer, "late", &[]).await;
    let index = StoreIndex::start(f.store.clone()).await.unwrap();
    let key = writer.create_key("late", None, None).await.unwrap();
    let now = warden_now();
    wait_until(|| index.verify(&key.key, now).is_ok()).await;
    writer.revoke_key(&key.key).await.unwrap();
    wait_until(|| index.verify(&key.key, now) == Err(KeyRefusal::Revoked)).await;
    index.stop();
}

async fn wait_until(mut ok: impl FnMut() -> bool) {
    for _ in 0..100 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the change did not arrive within 5 s");
}

#[tokio::test]
async fn sqlite_store_is_created_private_on_first_run() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = sqlite().await;
    let dir = &f.config.data_dir;
    assert!(dir.join("warden.db").is_file());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&dir.join("secret.key")), 0o600);
    // Reopening finds the same secret and the same data.
    consumer(&f.store, "kept", &[]).await;
    f.store.close().await;
    let again = Store::open(&f.config).await.unwrap();
    assert!(again.consumer("kept").await.unwrap().is_some());
}

#[tokio::test]
async fn postgres_needs_an_existing_secret() {
    let db = TestDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        data_dir: dir.path().into(),
        database_url: Some(db.url.clone()),
        ..StoreConfig::default()
    };
    let r = Store::open(&config).await;
    assert!(
        matches!(&r, Err(StoreError::Io(m)) if m.contains("same secret")),
        "{r:?}"
    );
}

fn warden_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

both!(
    revoked_tokens_are_kept_until_expiry,
    revoked_tokens_are_kept_until_expiry_body
);
async fn revoked_tokens_are_kept_until_expiry_body(f: Fixture) {
    use warden_core::Directory as _;
    let now = warden_now();
    let index = StoreIndex::start(f.store.clone()).await.unwrap();
    assert!(!index.token_revoked("t1"));
    f.store.revoke_token("t1", now + 600, Some("leaked")).await.unwrap();
    // Revoking again with an earlier expiry keeps the later one.
    f.store.revoke_token("t1", now + 60, None).await.unwrap();
    f.store.revoke_token("t2", now + 120, None).await.unwrap();
    let listed = f.store.revoked_tokens().await.unwrap();
    assert_eq!(listed.iter().map(|t| t.jti.as_str()).collect::<Vec<_>>(), ["t2", "t1"]);
    assert_eq!(listed[1].expires_at, now + 600);
    assert_eq!(listed[1].reason.as_deref(), Some("leaked"));
    index.refresh(&f.store).await.unwrap();
    assert!(index.token_revoked("t1") && index.token_revoked("t2"));
    assert!(!index.token_revoked("t3"));
    for bad in ["", "new\nline", &"j".repeat(257)] {
        let r = f.store.revoke_token(bad, now + 60, None).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
    }
    let r = f.store.revoke_token("old", now - 1, None).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    // Disabled consumers are known to the index whether or not they hold keys.
    consumer(&f.store, "keyless", &[]).await;
    f.store
        .set_consumer_status("keyless", ConsumerStatus::Disabled)
        .await
        .unwrap();
    index.refresh(&f.store).await.unwrap();
    assert!(index.consumer_disabled("keyless"));
    assert!(!index.consumer_disabled("someone-else"));
    index.stop();
}

both!(
    oauth_clients_keep_only_secret_hmacs,
    oauth_clients_keep_only_secret_hmacs_body
);
async fn oauth_clients_keep_only_secret_hmacs_body(f: Fixture) {
    use warden_store::{ClientAuth, NewClient};
    let (client, secret) = f
        .store
        .create_client(&NewClient {
            name: "billing".into(),
            auth: ClientAuth::SecretBasic,
            scopes: vec!["read".into()],
            refresh_tokens: true,
        })
        .await
        .unwrap();
    let secret = secret.unwrap();
    assert!(secret.starts_with("wcs_") && secret.len() > 40);
    let row = sqlx::query("SELECT client_id, name, secret_hmac, scopes_json FROM oauth_clients")
        .fetch_one(f.store.pool())
        .await
        .unwrap();
    for col in 0..4 {
        let v: Option<String> = row.try_get(col).unwrap();
        assert!(
            !v.unwrap_or_default().contains(&secret[4..]),
            "column {col} holds the secret"
        );
    }
    assert!(f.store.verify_client_secret(&client.client_id, &secret).await.unwrap());
    assert!(
        !f.store
            .verify_client_secret(&client.client_id, "wcs_nope")
            .await
            .unwrap()
    );
    assert!(!f.store.verify_client_secret("wc_unknown", &secret).await.unwrap());
    f.store.set_client_active("billing", false).await.unwrap();
    assert!(
        !f.store.verify_client_secret(&client.client_id, &secret).await.unwrap(),
        "disabled"
    );
    let dup = f
        .store
        .create_client(&NewClient {
            name: "billing".into(),
            auth: ClientAuth::SecretPost,
            scopes: vec![],
            refresh_tokens: false,
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let bad = f
        .store
        .create_client(&NewClient {
            name: "jwt".into(),
            auth: ClientAuth::PrivateKeyJwt {
                public_key_pem: "not a key".into(),
            },
            scopes: vec![],
            refresh_tokens: false,
        })
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
}

both!(refresh_tokens_are_single_use, refresh_tokens_are_single_use_body);
async fn refresh_tokens_are_single_use_body(f: Fixture) {
    use warden_core::Directory as _;
    use warden_store::{ClientAuth, NewClient, NewRefresh, RefreshOutcome};
    let (client, _) = f
        .store
        .create_client(&NewClient {
            name: "r".into(),
            auth: ClientAuth::SecretBasic,
            scopes: vec![],
            refresh_tokens: true,
        })
        .await
        .unwrap();
    let id = client.client_id.as_str();
    let now = warden_now();
    let new = |family: Option<&'static str>, jti: &'static str| NewRefresh {
        family,
        client_id: "",
        scope: "read",
        ttl_secs: 3600,
        access_jti: jti,
        access_exp: now + 600,
    };
    let first = f
        .store
        .issue_refresh_token(&NewRefresh {
            client_id: id,
            ..new(None, "a1")
        })
        .await
        .unwrap()
        .unwrap();
    let family = match f.store.use_refresh_token(&first, id).await.unwrap() {
        RefreshOutcome::Rotated(g) => g.family,
        other => panic!("{other:?}"),
    };
    let fam: &'static str = Box::leak(family.into_boxed_str());
    let second = f
        .store
        .issue_refresh_token(&NewRefresh {
            client_id: id,
            ..new(Some(fam), "a2")
        })
        .await
        .unwrap()
        .unwrap();
    // Another client cannot use it.
    assert_eq!(
        f.store.use_refresh_token(&second, "wc_other").await.unwrap(),
        RefreshOutcome::Invalid
    );
    // The first one again: reuse, and the family with its access tokens is revoked.
    assert_eq!(
        f.store.use_refresh_token(&first, id).await.unwrap(),
        RefreshOutcome::Reused
    );
    assert_eq!(
        f.store.use_refresh_token(&second, id).await.unwrap(),
        RefreshOutcome::Invalid
    );
    let index = StoreIndex::start(f.store.clone()).await.unwrap();
    assert!(index.token_revoked("a1") && index.token_revoked("a2"));
    assert!(f.store.is_token_revoked("a2").await.unwrap());
    // No plaintext refresh token in the table.
    let rows = sqlx::query("SELECT token_hmac FROM refresh_tokens")
        .fetch_all(f.store.pool())
        .await
        .unwrap();
    for r in rows {
        let h: String = r.try_get(0).unwrap();
        assert!(!h.contains(&first[4..]) && !h.contains(&second[4..]));
    }
    assert_eq!(
        f.store.use_refresh_token("wrt_made_up", id).await.unwrap(),
        RefreshOutcome::Invalid
    );
    index.stop();
}

both!(
    a_rotation_racing_a_reuse_never_outlives_the_family,
    a_rotation_racing_a_reuse_never_outlives_the_family_body
);
async fn a_rotation_racing_a_reuse_never_outlives_the_family_body(f: Fixture) {
    use warden_store::{ClientAuth, NewClient, NewRefresh, RefreshOutcome};
    let (client, _) = f
        .store
        .create_client(&NewClient {
            name: "race".into(),
            auth: ClientAuth::SecretBasic,
            scopes: vec![],
            refresh_tokens: true,
        })
        .await
        .unwrap();
    let id: &'static str = Box::leak(client.client_id.into_boxed_str());
    let now = warden_now();
    let new = move |family: Option<&str>, jti: &str| NewRefresh {
        family: family.map(|f| &*Box::leak(f.to_owned().into_boxed_str())),
        client_id: id,
        scope: "",
        ttl_secs: 3600,
        access_jti: Box::leak(jti.to_owned().into_boxed_str()),
        access_exp: now + 600,
    };
    for round in 0..12 {
        let first = f
            .store
            .issue_refresh_token(&new(None, &format!("r{round}")))
            .await
            .unwrap()
            .unwrap();
        // The legitimate client and a thief present the same token at once;
        // each, if it wins, stores the next token of the family.
        let attempt = |who: u8| {
            let store = f.store.clone();
            let first = first.clone();
            async move {
                match store.use_refresh_token(&first, id).await.unwrap() {
                    RefreshOutcome::Rotated(g) => store
                        .issue_refresh_token(&new(Some(&g.family), &format!("r{round}-{who}")))
                        .await
                        .unwrap(),
                    _ => None,
                }
            }
        };
        let (a, b) = tokio::join!(tokio::spawn(attempt(1)), tokio::spawn(attempt(2)));
        let issued: Vec<String> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
        assert!(issued.len() <= 1, "two winners in round {round}");
        // One of the two was a reuse, so the family is gone: whatever the
        // winner stored is dead too.
        for next in issued {
            assert_eq!(
                f.store.use_refresh_token(&next, id).await.unwrap(),
                RefreshOutcome::Invalid,
                "round {round}: a token outlived its family"
            );
        }
    }
    // Pruning on the way keeps live families.
    let live = f.store.issue_refresh_token(&new(None, "live")).await.unwrap().unwrap();
    assert!(matches!(
        f.store.use_refresh_token(&live, id).await.unwrap(),
        RefreshOutcome::Rotated(_)
    ));
}

both!(
    declared_consumers_follow_the_file,
    declared_consumers_follow_the_file_body
);
async fn declared_consumers_follow_the_file_body(f: Fixture) {
    use warden_store::{DeclaredConsumer, SyncReport};
    let decl = |name: &str, groups: &[&str]| DeclaredConsumer {
        name: name.into(),
        groups: groups.iter().map(|g| (*g).into()).collect(),
        attributes: serde_json::Map::new(),
        disabled: false,
    };
    consumer(&f.store, "cli-made", &[]).await;
    let v0 = f.store.version().await.unwrap();
    let r = f
        .store
        .sync_declared_consumers(&[decl("a", &["x"]), decl("b", &[])])
        .await
        .unwrap();
    assert_eq!(
        r,
        SyncReport {
            created: 2,
            updated: 0,
            disabled: 0
        }
    );
    // The same file again changes nothing (and does not bump the version).
    let v1 = f.store.version().await.unwrap();
    assert!(v1 > v0);
    let r = f
        .store
        .sync_declared_consumers(&[decl("a", &["x"]), decl("b", &[])])
        .await
        .unwrap();
    assert_eq!(r, SyncReport::default());
    assert_eq!(f.store.version().await.unwrap(), v1);
    // b leaves the file, a changes groups, the CLI-made one is taken over.
    let r = f
        .store
        .sync_declared_consumers(&[decl("a", &["y"]), decl("cli-made", &["z"])])
        .await
        .unwrap();
    assert_eq!(
        r,
        SyncReport {
            created: 0,
            updated: 2,
            disabled: 1
        }
    );
    let b = f.store.consumer("b").await.unwrap().unwrap();
    assert_eq!(
        b.status,
        ConsumerStatus::Disabled,
        "removed from the file: disabled, not deleted"
    );
    assert_eq!(f.store.consumer("a").await.unwrap().unwrap().groups, ["y"]);
    assert!(f.store.is_declared("cli-made").await.unwrap());
    let bad = f.store.sync_declared_consumers(&[decl("bad name", &[])]).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
}
