//! The `store:` config section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `store:` — where consumers and credentials live.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory for the SQLite database and the server secret; created on
    /// first run (mode 0700). Relative paths are relative to the config file.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `postgres://…` URL: use PostgreSQL instead of SQLite (for several
    /// gateways sharing one store). `WARDEN_DATABASE_URL` overrides it, so
    /// a password need not be written into the file.
    #[serde(default)]
    pub database_url: Option<String>,
    /// File holding the server secret API keys are hashed under (32 random
    /// bytes, base64). Default `<data_dir>/secret.key`, created on first run
    /// with mode 0600. Every gateway sharing a store needs the same file.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// How often the store's change counter is polled, in milliseconds.
    /// PostgreSQL also pushes changes at once (`LISTEN/NOTIFY`); polling is
    /// the safety net.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("WARDEN_DATA_DIR").map_or_else(|| PathBuf::from("warden-data"), PathBuf::from)
}

fn default_poll_ms() -> u64 {
    500
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            database_url: None,
            secret_file: None,
            poll_ms: default_poll_ms(),
        }
    }
}

/// Which database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A file in the data directory.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl StoreConfig {
    /// The database URL in force: the environment's, else the file's.
    pub fn effective_database_url(&self) -> Option<String> {
        std::env::var("WARDEN_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.database_url.clone())
    }

    /// The backend this config selects.
    pub fn backend(&self) -> Backend {
        if self.effective_database_url().is_some() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// The secret file in force.
    pub fn secret_path(&self) -> PathBuf {
        self.secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// Makes relative paths relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.data_dir.is_relative() {
            self.data_dir = base.join(&self.data_dir);
        }
        if let Some(f) = &mut self.secret_file
            && f.is_relative()
        {
            *f = base.join(&*f);
        }
    }

    /// Every problem with the section, as `(key, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            out.push((
                "database_url",
                "must be a `postgres://` or `postgresql://` URL (SQLite is the default without one)".into(),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            out.push(("data_dir", "must not be empty".into()));
        }
        if !(50..=60_000).contains(&self.poll_ms) {
            out.push(("poll_ms", "must be between 50 and 60000".into()));
        }
        out
    }
}
