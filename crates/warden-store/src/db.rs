//! Opening the database, migrations, and the change counter.

use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};

use crate::StoreError;
use crate::config::{Backend, StoreConfig};
use crate::secret::ServerSecret;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL channel every change is announced on.
pub(crate) const CHANNEL: &str = "warden_store";

/// An open store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) secret: Arc<ServerSecret>,
    pub(crate) url: Arc<str>,
    pub(crate) poll: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (and on first run creates) the store `config` describes, applies
    /// pending migrations, and checks the server secret against it.
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = config.backend();
        let url = match config.effective_database_url() {
            Some(url) => url,
            None => {
                create_private_dir(&config.data_dir)?;
                let file = config.data_dir.join("warden.db");
                format!("sqlite://{}?mode=rwc", file.display())
            }
        };
        let secret = ServerSecret::load_or_create(&config.secret_path(), backend == Backend::Sqlite)?;
        let sqlite = backend == Backend::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Other processes (the CLI, a second gateway) write
                        // the same file: wait for their lock instead of failing.
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| redact(e, &url))?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        match backend {
            Backend::Sqlite => SQLITE.run(&pool).await?,
            Backend::Postgres => POSTGRES.run(&pool).await?,
        }
        let store = Self {
            pool,
            backend,
            secret: Arc::new(secret),
            url: url.into(),
            poll: Duration::from_millis(config.poll_ms),
        };
        store.check_secret().await?;
        Ok(store)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for tests that read rows directly.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The change counter; moves on every change.
    pub async fn version(&self) -> Result<i64, StoreError> {
        let row: AnyRow = sqlx::query("SELECT version FROM store_meta WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records the secret's id on first use; refuses a different secret after.
    async fn check_secret(&self) -> Result<(), StoreError> {
        let id = self.secret.id();
        sqlx::query("UPDATE store_meta SET secret_id = $1 WHERE id = 1 AND secret_id IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await?;
        let row: AnyRow = sqlx::query("SELECT secret_id FROM store_meta WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        let stored: Option<String> = row.try_get(0)?;
        match stored {
            Some(s) if s == id => Ok(()),
            Some(s) => Err(StoreError::SecretMismatch(format!(
                "the store's API keys were hashed under server secret {s}, but {} holds secret {id}; \
                 every gateway sharing a store needs the same secret file",
                self.secret.path().display()
            ))),
            None => Err(StoreError::Io("the store has no secret id after recording it".into())),
        }
    }

    /// Starts a write transaction that ends by bumping the change counter
    /// (and, on PostgreSQL, announcing the change).
    pub(crate) async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Bumps the change counter inside `tx` and commits it.
    pub(crate) async fn commit(&self, mut tx: sqlx::Transaction<'static, sqlx::Any>) -> Result<(), StoreError> {
        sqlx::query("UPDATE store_meta SET version = version + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        if self.backend == Backend::Postgres {
            // Delivered to listeners when (and only if) the transaction commits.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Connection errors can echo the URL; keep a password in it out of logs.
fn redact(e: sqlx::Error, url: &str) -> StoreError {
    let text = e.to_string();
    match url.split_once("://").and_then(|(_, rest)| rest.split_once('@')) {
        Some((userinfo, _)) if userinfo.contains(':') && text.contains(userinfo) => StoreError::Io(format!(
            "cannot connect to the database: {}",
            text.replace(userinfo, "***")
        )),
        _ => StoreError::Io(format!("cannot connect to the database: {text}")),
    }
}

/// Creates `dir` (and parents) readable by the owner only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Io(format!("cannot create data directory {}: {e}", dir.display())))
}
