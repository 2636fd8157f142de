//! Consumers: who calls the APIs.

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_secs};

/// Whether a consumer may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStatus {
    /// May call.
    Active,
    /// Every credential of it is refused.
    Disabled,
}

impl ConsumerStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// A stored consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Opaque id.
    pub id: String,
    /// Unique name (what logs and upstreams see).
    pub name: String,
    /// Groups (for authorization).
    pub groups: Vec<String>,
    /// Free-form attributes (for authorization).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Active or disabled.
    pub status: ConsumerStatus,
    /// Unix seconds.
    pub created_at: i64,
}

/// What `create_consumer` needs.
#[derive(Debug, Clone, Default)]
pub struct NewConsumer {
    /// Unique name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A consumer declared in the config file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredConsumer {
    /// Unique name.
    pub name: String,
    /// Groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Attributes (for authorization).
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Declared but refused.
    #[serde(default)]
    pub disabled: bool,
}

/// What a sync of declared consumers changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Newly created.
    pub created: usize,
    /// Existing ones brought in line with the file.
    pub updated: usize,
    /// Declared before, no longer in the file: disabled (keys kept, refused).
    pub disabled: usize,
}

/// Names and groups go into headers and logs: visible ASCII, no spaces or
/// quotes, at most 128 bytes.
pub fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:+/".contains(&b));
    // `wc_…` is the built-in authorization server's client ids, which name
    // the consumer of its tokens: a consumer may not take one.
    if what == "consumer name" && name.starts_with("wc_") {
        return Err(StoreError::Invalid(format!(
            "{what} `{name}` starts with `wc_`, which is reserved for OAuth client ids"
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} `{name}` must be 1–128 characters of letters, digits and . _ - @ : + /"
        )))
    }
}

fn from_row(row: &AnyRow) -> Result<Consumer, StoreError> {
    let groups: String = row.try_get("groups_json")?;
    let attributes: String = row.try_get("attributes_json")?;
    let status: String = row.try_get("status")?;
    Ok(Consumer {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        groups: serde_json::from_str(&groups).map_err(|e| StoreError::Invalid(format!("stored groups: {e}")))?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| StoreError::Invalid(format!("stored attributes: {e}")))?,
        status: if status == "active" {
            ConsumerStatus::Active
        } else {
            ConsumerStatus::Disabled
        },
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Creates a consumer; refuses a name already taken.
    pub async fn create_consumer(&self, new: &NewConsumer) -> Result<Consumer, StoreError> {
        check_name("consumer name", &new.name)?;
        for g in &new.groups {
            check_name("group", g)?;
        }
        if self.consumer(&new.name).await?.is_some() {
            return Err(StoreError::Conflict(format!("consumer `{}` already exists", new.name)));
        }
        let id = crate::random_hex(16);
        let now = now_secs();
        let groups = serde_json::to_string(&new.groups).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let attributes = serde_json::to_string(&new.attributes).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO consumers (id, name, groups_json, attributes_json, status, source, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'active', 'store', $5, $5)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(groups)
        .bind(attributes)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_conflict(e, &new.name))?;
        self.commit(tx).await?;
        self.consumer(&new.name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("consumer `{}` vanished after creation", new.name)))
    }

    /// The consumer called `name`.
    pub async fn consumer(&self, name: &str) -> Result<Option<Consumer>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, groups_json, attributes_json, status, created_at FROM consumers WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every consumer, by name.
    pub async fn consumers(&self) -> Result<Vec<Consumer>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, groups_json, attributes_json, status, created_at FROM consumers ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Enables or disables a consumer; every credential follows at once.
    pub async fn set_consumer_status(&self, name: &str, status: ConsumerStatus) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE consumers SET status = $1, updated_at = $2 WHERE name = $3")
            .bind(status.as_str())
            .bind(now_secs())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no consumer `{name}`")));
        }
        self.commit(tx).await
    }

    /// Deletes a consumer and all its keys.
    pub async fn delete_consumer(&self, name: &str) -> Result<(), StoreError> {
        let Some(c) = self.consumer(name).await? else {
            return Err(StoreError::NotFound(format!("no consumer `{name}`")));
        };
        let mut tx = self.begin().await?;
        // Explicitly, not only by cascade: SQLite needs foreign_keys on for that.
        sqlx::query("DELETE FROM api_keys WHERE consumer_id = $1")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM consumers WHERE id = $1")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await
    }
}

impl Store {
    /// Makes the store's config-declared consumers match `declared`: creates
    /// missing ones, updates groups, attributes and status (a consumer made
    /// with the CLI under a declared name is taken over by the file), and
    /// disables (never deletes) those that left the file. One transaction.
    pub async fn sync_declared_consumers(&self, declared: &[DeclaredConsumer]) -> Result<SyncReport, StoreError> {
        for d in declared {
            check_name("consumer name", &d.name)?;
            for g in &d.groups {
                check_name("group", g)?;
            }
        }
        let now = now_secs();
        let mut report = SyncReport::default();
        let mut tx = self.begin().await?;
        let rows = sqlx::query("SELECT name, groups_json, attributes_json, status, source FROM consumers")
            .fetch_all(&mut *tx)
            .await?;
        let mut existing = std::collections::HashMap::new();
        for r in &rows {
            let name: String = r.try_get("name")?;
            let state: (String, String, String, String) = (
                r.try_get("groups_json")?,
                r.try_get("attributes_json")?,
                r.try_get("status")?,
                r.try_get("source")?,
            );
            existing.insert(name, state);
        }
        for d in declared {
            let groups = serde_json::to_string(&d.groups).map_err(|e| StoreError::Invalid(e.to_string()))?;
            let attributes = serde_json::to_string(&d.attributes).map_err(|e| StoreError::Invalid(e.to_string()))?;
            let status = if d.disabled { "disabled" } else { "active" };
            match existing.get(&d.name) {
                None => {
                    sqlx::query(
                        "INSERT INTO consumers (id, name, groups_json, attributes_json, status, source, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, 'config', $6, $6)",
                    )
                    .bind(crate::random_hex(16))
                    .bind(&d.name)
                    .bind(groups)
                    .bind(attributes)
                    .bind(status)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    report.created += 1;
                }
                Some((g, a, st, src)) if *g == groups && *a == attributes && st == status && src == "config" => {}
                Some(_) => {
                    sqlx::query(
                        "UPDATE consumers SET groups_json = $1, attributes_json = $2, status = $3, source = 'config', \
                         updated_at = $4 WHERE name = $5",
                    )
                    .bind(groups)
                    .bind(attributes)
                    .bind(status)
                    .bind(now)
                    .bind(&d.name)
                    .execute(&mut *tx)
                    .await?;
                    report.updated += 1;
                }
            }
        }
        for (name, (_, _, status, source)) in &existing {
            if source == "config" && status == "active" && !declared.iter().any(|d| &d.name == name) {
                sqlx::query("UPDATE consumers SET status = 'disabled', updated_at = $1 WHERE name = $2")
                    .bind(now)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                report.disabled += 1;
            }
        }
        if report == SyncReport::default() {
            tx.rollback().await?;
        } else {
            self.commit(tx).await?;
        }
        Ok(report)
    }

    /// True when `name` is declared in the config file (the CLI leaves those alone).
    pub async fn is_declared(&self, name: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT source FROM consumers WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?.as_deref() == Some("config"))
    }
}

/// A unique-constraint violation (two creators racing) reads as a conflict.
fn unique_conflict(e: sqlx::Error, name: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            StoreError::Conflict(format!("consumer `{name}` already exists"))
        }
        _ => StoreError::Database(e),
    }
}
