//! Shared state: what every gateway of a cluster must agree on fast —
//! one-time claims (DPoP proof and client-assertion replay caches), rate
//! limit and brute-force counters, dynamic blocks.
//!
//! In memory by default (this process only); in Redis when `shared_state.redis_url`
//! (one server) or `shared_state.redis_cluster_nodes` (a Redis Cluster) is set, using atomic commands (`SET NX EX`) so that concurrent gateways
//! cannot both win a claim. When Redis cannot answer, each claim either falls
//! back to this process's memory (`on_unavailable: local`, the default: the
//! gateway stays available, replay protection becomes per node) or fails
//! closed (`on_unavailable: fail_closed`); it recovers by itself when Redis
//! returns.

#[cfg(test)]
mod cluster_tests;
mod limiter;
mod memory;
mod redis_conn;
mod redis_state;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use warden_core::SharedState;

pub use limiter::Limiter;

/// Counters the in-memory limiter holds at most.
pub fn limiter_capacity() -> usize {
    limiter::MAX_COUNTERS
}
pub use memory::MemoryState;
pub use redis_state::RedisState;

/// `shared_state:` in the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedStateConfig {
    /// `redis://host:port/db` or `rediss://…` (TLS); `WARDEN_REDIS_URL`
    /// overrides it. Without one (and without `redis_cluster_nodes`), state
    /// is this process's memory.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// A Redis Cluster instead: `redis://host:port` of some of its nodes
    /// (the rest is discovered).
    #[serde(default)]
    pub redis_cluster_nodes: Vec<String>,
    /// When Redis cannot answer: `local` (this process's memory) or `fail_closed`.
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// Longest wait for one Redis answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Prefix of every key, to share one Redis between deployments.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// How often each gateway re-reads the dynamic blocks (a block set on
    /// another node takes at most this long to be enforced here).
    #[serde(default = "default_block_refresh_ms")]
    pub block_refresh_ms: u64,
}

fn default_block_refresh_ms() -> u64 {
    1000
}

fn default_timeout_ms() -> u64 {
    250
}

fn default_prefix() -> String {
    "warden:".into()
}

impl Default for SharedStateConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_cluster_nodes: Vec::new(),
            on_unavailable: OnUnavailable::default(),
            timeout_ms: default_timeout_ms(),
            key_prefix: default_prefix(),
            block_refresh_ms: default_block_refresh_ms(),
        }
    }
}

/// What a claim does when Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Use this process's memory.
    #[default]
    Local,
    /// Refuse.
    FailClosed,
}

impl SharedStateConfig {
    /// The Redis URL in force: the environment's, else the file's.
    pub fn effective_redis_url(&self) -> Option<String> {
        std::env::var("WARDEN_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.redis_url.clone())
    }

    /// Every problem with the section, as `(key, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            out.push(("redis_url", "must be a redis:// or rediss:// URL".into()));
        }
        for n in &self.redis_cluster_nodes {
            if !(n.starts_with("redis://") || n.starts_with("rediss://")) {
                out.push((
                    "redis_cluster_nodes",
                    format!("`{n}` is not a redis:// or rediss:// URL"),
                ));
            }
        }
        if self.redis_url.is_some() && !self.redis_cluster_nodes.is_empty() {
            out.push((
                "redis_cluster_nodes",
                "set either redis_url (one server) or redis_cluster_nodes (a cluster), not both".into(),
            ));
        }
        if !(10..=5000).contains(&self.timeout_ms) {
            out.push(("timeout_ms", "must be between 10 and 5000".into()));
        }
        if !(100..=60_000).contains(&self.block_refresh_ms) {
            out.push(("block_refresh_ms", "must be between 100 and 60000".into()));
        }
        if self.key_prefix.is_empty()
            || self.key_prefix.len() > 64
            || self
                .key_prefix
                .chars()
                .any(|c| c.is_whitespace() || c == '{' || c == '}')
        {
            // Braces would become the Redis Cluster hash tag of every key.
            out.push(("key_prefix", "must be 1–64 characters without spaces or braces".into()));
        }
        out
    }
}

/// Opens the configured shared state. With Redis, the first connection is
/// made now: an unreachable Redis at start-up is an error (a typo in the URL
/// should not silently degrade a cluster to per-node state).
pub async fn open(cfg: &SharedStateConfig) -> Result<Arc<dyn SharedState>, String> {
    if !cfg.redis_cluster_nodes.is_empty() {
        let state = RedisState::connect_cluster(
            &cfg.redis_cluster_nodes,
            cfg.key_prefix.clone(),
            Duration::from_millis(cfg.timeout_ms),
            cfg.on_unavailable,
        )
        .await?;
        return Ok(Arc::new(state));
    }
    match cfg.effective_redis_url() {
        None => Ok(Arc::new(MemoryState::default())),
        Some(url) => {
            let state = RedisState::connect(
                &url,
                cfg.key_prefix.clone(),
                Duration::from_millis(cfg.timeout_ms),
                cfg.on_unavailable,
            )
            .await?;
            Ok(Arc::new(state))
        }
    }
}
