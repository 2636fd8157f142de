//! [`Blocklist`]: this gateway's copy of the dynamic blocks held in the
//! shared state (see `warden_core::blocks`), checked on every request and
//! re-read every `shared_state.block_refresh_ms`, so a block set through any
//! gateway of a cluster is enforced by all of them within that interval.
//!
//! When the shared state cannot answer, the last copy stays in force (blocks
//! neither vanish nor appear during a Redis outage) and expired entries still
//! stop counting at their expiry.

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use warden_core::blocks::{BLOCKS_MAP, Block, BlockRecord, BlockSet, BlockTarget, MAX_BLOCK_SECS, MAX_BLOCKS};
use warden_core::{Clock, SharedState};

use crate::state::Shared;

/// Why an admin change to the blocks was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The request itself is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// The shared state could not answer (503).
    #[error("shared state unavailable: {0}")]
    Unavailable(String),
}

/// The blocks in force on this gateway.
pub struct Blocklist {
    set: ArcSwap<BlockSet>,
    state: Option<Arc<dyn SharedState>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocklist").finish_non_exhaustive()
    }
}

impl Blocklist {
    /// An empty list over `state` (none: blocks cannot be set).
    pub fn new(state: Option<Arc<dyn SharedState>>, clock: Arc<dyn Clock>) -> Self {
        Self {
            set: ArcSwap::from_pointee(BlockSet::default()),
            state,
            clock,
        }
    }

    /// Until when (Unix ms) the client address `ip` is blocked, if it is.
    pub fn address(&self, ip: IpAddr) -> Option<i64> {
        let set = self.set.load();
        if set.is_empty() {
            return None;
        }
        set.address(ip, self.clock.now_ms())
    }

    /// Until when (Unix ms) consumer `name` is blocked, if it is.
    pub fn consumer(&self, name: &str) -> Option<i64> {
        let set = self.set.load();
        if set.is_empty() {
            return None;
        }
        set.consumer(name, self.clock.now_ms())
    }

    fn state(&self) -> Result<&Arc<dyn SharedState>, BlockError> {
        self.state
            .as_ref()
            .ok_or_else(|| BlockError::Unavailable("no shared state configured".into()))
    }

    /// Every live block, read from the shared state now (expired entries are
    /// removed from it on the way).
    pub async fn list(&self) -> Result<Vec<Block>, BlockError> {
        let state = self.state()?;
        let entries = state
            .map_entries(BLOCKS_MAP)
            .await
            .map_err(|e| BlockError::Unavailable(e.0))?;
        let now = self.clock.now_ms();
        let mut live = Vec::with_capacity(entries.len());
        for (field, value) in entries {
            match Block::from_entry(&field, &value) {
                Some(b) if b.record.until_ms > now => live.push(b),
                Some(_) => {
                    // Expired: tidy up (best effort; another node may race us).
                    let _ = state.map_remove(BLOCKS_MAP, &field).await;
                }
                None => tracing::debug!(entry = %field, "unreadable block entry ignored"),
            }
        }
        live.sort_by_key(|b| b.target.key());
        Ok(live)
    }

    /// Re-reads the blocks and puts them in force; the number in force.
    pub async fn refresh(&self) -> Result<usize, BlockError> {
        let blocks = self.list().await?;
        self.set.store(Arc::new(BlockSet::new(&blocks, self.clock.now_ms())));
        Ok(blocks.len())
    }

    /// Blocks `target` for `ttl_secs` (replacing an earlier block of the same
    /// target) and puts it in force here at once.
    pub async fn add(&self, target: &str, ttl_secs: u64, reason: &str, source: &str) -> Result<Block, BlockError> {
        let target = BlockTarget::parse(target).map_err(BlockError::Invalid)?;
        if ttl_secs == 0 || ttl_secs > MAX_BLOCK_SECS {
            return Err(BlockError::Invalid(format!(
                "ttl_secs must be between 1 and {MAX_BLOCK_SECS}"
            )));
        }
        if reason.len() > 256 || reason.chars().any(unsafe_in_text) {
            return Err(BlockError::Invalid(
                "reason must be at most 256 bytes, without control, line-separator or bidi-override characters".into(),
            ));
        }
        let current = self.list().await?;
        if current.len() >= MAX_BLOCKS && !current.iter().any(|b| b.target == target) {
            return Err(BlockError::Invalid(format!(
                "{MAX_BLOCKS} blocks are in force already; remove some, or use ip_rules for long lists"
            )));
        }
        let now = self.clock.now_ms();
        let ttl_ms = i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let block = Block {
            target,
            record: BlockRecord {
                until_ms: now.saturating_add(ttl_ms),
                created_ms: now,
                reason: reason.to_owned(),
                source: source.to_owned(),
            },
        };
        let (field, value) = block.to_entry();
        self.state()?
            .map_set(BLOCKS_MAP, &field, &value)
            .await
            .map_err(|e| BlockError::Unavailable(e.0))?;
        self.settle().await;
        tracing::warn!(
            target: "warden::event",
            event = "block_added",
            block = %field,
            ttl_secs,
            reason,
            source,
            "dynamic block added"
        );
        Ok(block)
    }

    /// After a change was written: puts it in force here now. When that read
    /// fails the change still stands (it is in the shared state) and the
    /// next refresh applies it.
    async fn settle(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "block change written; applying it here waits for the next refresh");
        }
    }

    /// Lifts the block on `target`; true when there was one.
    pub async fn remove(&self, target: &str) -> Result<bool, BlockError> {
        let target = BlockTarget::parse(target).map_err(BlockError::Invalid)?;
        let removed = self
            .state()?
            .map_remove(BLOCKS_MAP, &target.key())
            .await
            .map_err(|e| BlockError::Unavailable(e.0))?;
        self.settle().await;
        if removed {
            tracing::warn!(target: "warden::event", event = "block_removed", block = %target.key(), "dynamic block lifted");
        }
        Ok(removed)
    }
}

/// Characters refused in free text shown to operators: controls, line and
/// paragraph separators, and bidirectional overrides (which can make a log
/// line or terminal read differently from what it holds).
fn unsafe_in_text(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Re-reads the blocks every `every` until shutdown (or the gateway is gone).
pub async fn refresh_loop(shared: Weak<Shared>, every: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut failing = false;
    loop {
        let Some(s) = shared.upgrade() else { return };
        match s.blocks.refresh().await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("dynamic blocks readable again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot re-read dynamic blocks; the last ones read stay in force");
            }
            Err(_) => {}
        }
        drop(s);
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One block as the admin API shows it.
pub fn to_json(b: &Block) -> serde_json::Value {
    serde_json::json!({
        "target": b.target.key(),
        "until": crate::access_log::rfc3339(unix_ms(b.record.until_ms)),
        "until_ms": b.record.until_ms,
        "created": crate::access_log::rfc3339(unix_ms(b.record.created_ms)),
        "reason": b.record.reason,
        "source": b.record.source,
    })
}

fn unix_ms(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
