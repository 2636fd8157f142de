//! `warden consumers …` and `warden keys …`: manage the store from the shell.
//!
//! Every command finds the store the way the gateway does: the config file's
//! `store:` section (paths relative to the file), or the defaults
//! (`WARDEN_DATA_DIR`, else `./warden-data`; `WARDEN_DATABASE_URL` for
//! PostgreSQL). Running gateways pick the changes up without a restart.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use warden_store::{ConsumerStatus, NewConsumer, Store, StoreConfig};

/// `warden consumers …`
#[derive(Debug, Subcommand)]
pub enum ConsumersCmd {
    /// Create a consumer.
    Create {
        /// Unique name (letters, digits and . _ - @ : + /).
        name: String,
        /// Group to put it in (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// List consumers.
    List,
    /// Disable a consumer: all its credentials are refused at once.
    Disable {
        /// Consumer name.
        name: String,
    },
    /// Enable a disabled consumer again.
    Enable {
        /// Consumer name.
        name: String,
    },
    /// Delete a consumer and all its keys.
    Delete {
        /// Consumer name.
        name: String,
    },
}

/// `warden keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create an API key for a consumer and print it (it is shown only once).
    Create {
        /// The consumer that will own the key.
        #[arg(long)]
        consumer: String,
        /// Lifetime: a number followed by d (days), h (hours) or m (minutes).
        #[arg(long)]
        expires_in: Option<String>,
        /// A note to tell keys apart (`ci`, `laptop`).
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys (prefixes and states only; keys themselves are not stored).
    List {
        /// Only this consumer's keys.
        #[arg(long)]
        consumer: Option<String>,
    },
    /// Revoke a key by its prefix (or the whole key).
    Revoke {
        /// The key's prefix, as `keys list` shows it.
        prefix: String,
    },
}

/// `warden tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Revoke an access token (by the token itself, or by `--jti` and
    /// `--expires-at`); every gateway sharing the store refuses it.
    Revoke {
        /// The token (JWT). Only its `jti` and `exp` are read; it is not stored.
        token: Option<String>,
        /// The token id, instead of the token.
        #[arg(long, conflicts_with = "token", requires = "expires_at")]
        jti: Option<String>,
        /// With `--jti`: the token's expiry, Unix seconds (the entry is kept until then).
        #[arg(long)]
        expires_at: Option<i64>,
        /// Why (kept with the entry).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List revocations still in force.
    List,
}

/// `warden clients …`
#[derive(Debug, Subcommand)]
pub enum ClientsCmd {
    /// Register a client of the built-in authorization server.
    Create {
        /// Unique name.
        name: String,
        /// client_secret_basic (default), client_secret_post, private_key_jwt or tls_client_auth.
        #[arg(long, default_value = "client_secret_basic")]
        auth: String,
        /// private_key_jwt: the client's PEM public key file.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// tls_client_auth: the certificate identity (SAN URI, DNS name or subject DN).
        #[arg(long)]
        tls_identity: Option<String>,
        /// A scope the client may ask for (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Also issue refresh tokens (single use, rotated, reuse revokes the family).
        #[arg(long)]
        refresh_tokens: bool,
    },
    /// List clients.
    List,
    /// Disable a client: it gets no more tokens.
    Disable {
        /// Client name.
        name: String,
    },
    /// Enable a disabled client.
    Enable {
        /// Client name.
        name: String,
    },
}

/// The store settings for `config` (or the defaults without one).
pub fn store_config(config: Option<&Path>) -> anyhow::Result<StoreConfig> {
    let Some(path) = config else {
        return Ok(StoreConfig::default());
    };
    let snapshot = warden_config::load_file(path)?;
    Ok(snapshot.config.store.clone().unwrap_or_else(|| {
        let mut d = StoreConfig::default();
        d.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        d
    }))
}

async fn open(config: Option<&PathBuf>) -> anyhow::Result<Store> {
    let settings = store_config(config.map(PathBuf::as_path))?;
    Ok(Store::open(&settings).await?)
}

/// Runs a `consumers` command.
pub async fn consumers(cmd: ConsumersCmd, config: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    match cmd {
        ConsumersCmd::Create { name, groups } => {
            let c = store
                .create_consumer(&NewConsumer {
                    name,
                    groups,
                    ..NewConsumer::default()
                })
                .await?;
            println!("created consumer {}", c.name);
        }
        ConsumersCmd::List => {
            for c in store.consumers().await? {
                let status = match c.status {
                    ConsumerStatus::Active => "active",
                    ConsumerStatus::Disabled => "disabled",
                };
                println!("{}\t{status}\tgroups={}", c.name, c.groups.join(","));
            }
        }
        ConsumersCmd::Disable { name } => {
            refuse_declared(&store, &name).await?;
            store.set_consumer_status(&name, ConsumerStatus::Disabled).await?;
            println!("disabled consumer {name}");
        }
        ConsumersCmd::Enable { name } => {
            refuse_declared(&store, &name).await?;
            store.set_consumer_status(&name, ConsumerStatus::Active).await?;
            println!("enabled consumer {name}");
        }
        ConsumersCmd::Delete { name } => {
            refuse_declared(&store, &name).await?;
            store.delete_consumer(&name).await?;
            println!("deleted consumer {name} and its keys");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Consumers declared in the config file are changed there, not here (the
/// next start or reload would undo it).
async fn refuse_declared(store: &Store, name: &str) -> anyhow::Result<()> {
    if store.is_declared(name).await? {
        anyhow::bail!("consumer `{name}` is declared in the config file; change it there and reload");
    }
    Ok(())
}

/// Runs a `keys` command.
pub async fn keys(cmd: KeysCmd, config: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    let now = now_secs();
    match cmd {
        KeysCmd::Create {
            consumer,
            expires_in,
            label,
        } => {
            let expires_at = expires_in.as_deref().map(parse_lifetime).transpose()?.map(|s| now + s);
            let created = store.create_key(&consumer, expires_at, label.as_deref()).await?;
            eprintln!(
                "created key {} for consumer {}; store it now, it cannot be shown again",
                created.record.prefix, created.record.consumer
            );
            println!("{}", created.key);
        }
        KeysCmd::List { consumer } => {
            for k in store.keys(consumer.as_deref()).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else if !k.is_active(now) {
                    "expired"
                } else {
                    "active"
                };
                let expires = k.expires_at.map_or_else(|| "never".to_owned(), |e| e.to_string());
                println!(
                    "{}\t{}\t{state}\texpires={expires}\tlabel={}",
                    k.prefix,
                    k.consumer,
                    k.label.unwrap_or_default()
                );
            }
        }
        KeysCmd::Revoke { prefix } => {
            store.revoke_key(&prefix).await?;
            println!("revoked key {}", warden_store::parse_key(&prefix).unwrap_or(&prefix));
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Runs a `clients` command.
pub async fn clients(cmd: ClientsCmd, config: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    use warden_store::{ClientAuth, NewClient};
    let store = open(config).await?;
    match cmd {
        ClientsCmd::Create {
            name,
            auth,
            public_key,
            tls_identity,
            scopes,
            refresh_tokens,
        } => {
            let auth = match (auth.as_str(), public_key, tls_identity) {
                ("client_secret_basic", None, None) => ClientAuth::SecretBasic,
                ("client_secret_post", None, None) => ClientAuth::SecretPost,
                ("private_key_jwt", Some(file), None) => ClientAuth::PrivateKeyJwt {
                    public_key_pem: std::fs::read_to_string(&file)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?,
                },
                ("tls_client_auth", None, Some(identity)) => ClientAuth::TlsClientAuth { identity },
                ("private_key_jwt", None, _) => anyhow::bail!("private_key_jwt needs --public-key FILE"),
                ("tls_client_auth", _, None) => anyhow::bail!("tls_client_auth needs --tls-identity"),
                (m @ ("client_secret_basic" | "client_secret_post" | "private_key_jwt" | "tls_client_auth"), _, _) => {
                    anyhow::bail!("--public-key and --tls-identity do not go with {m}")
                }
                (other, _, _) => anyhow::bail!(
                    "unknown --auth `{other}`; use client_secret_basic, client_secret_post, private_key_jwt or tls_client_auth"
                ),
            };
            let (client, secret) = store
                .create_client(&NewClient {
                    name,
                    auth,
                    scopes,
                    refresh_tokens,
                })
                .await?;
            eprintln!("registered client {} ({})", client.name, client.auth.method());
            println!("client_id={}", client.client_id);
            if let Some(secret) = secret {
                eprintln!("store the secret now; it cannot be shown again");
                println!("client_secret={secret}");
            }
        }
        ClientsCmd::List => {
            for c in store.clients().await? {
                println!(
                    "{}\t{}\t{}\t{}\tscopes={}",
                    c.name,
                    c.client_id,
                    c.auth.method(),
                    if c.active { "active" } else { "disabled" },
                    c.scopes.join(",")
                );
            }
        }
        ClientsCmd::Disable { name } => {
            store.set_client_active(&name, false).await?;
            println!("disabled client {name}");
        }
        ClientsCmd::Enable { name } => {
            store.set_client_active(&name, true).await?;
            println!("enabled client {name}");
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Runs a `tokens` command.
pub async fn tokens(cmd: TokensCmd, config: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    let store = open(config).await?;
    match cmd {
        TokensCmd::Revoke {
            token,
            jti,
            expires_at,
            reason,
        } => {
            let (jti, exp) = match (token, jti, expires_at) {
                (Some(t), _, _) => jti_and_exp(&t)?,
                (None, Some(j), Some(e)) => (j, e),
                _ => anyhow::bail!("give the token, or --jti with --expires-at"),
            };
            store.revoke_token(&jti, exp, reason.as_deref()).await?;
            println!("revoked token {jti} (until {exp})");
        }
        TokensCmd::List => {
            for t in store.revoked_tokens().await? {
                println!(
                    "{}	expires={}	revoked={}	reason={}",
                    t.jti,
                    t.expires_at,
                    t.revoked_at,
                    t.reason.unwrap_or_default()
                );
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The `jti` and `exp` of a JWT, read without verifying it: revoking a token
/// needs no trust in it, and the gateway verifies every token it accepts.
fn jti_and_exp(token: &str) -> anyhow::Result<(String, i64)> {
    use base64::Engine as _;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("not a JWT (expected three dot-separated parts)"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| anyhow::anyhow!("the JWT payload is not base64url"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| anyhow::anyhow!("the JWT payload is not JSON"))?;
    let jti = claims.get("jti").and_then(serde_json::Value::as_str).ok_or_else(|| {
        anyhow::anyhow!("the token has no `jti`, so it cannot be revoked alone; disable its consumer instead")
    })?;
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| anyhow::anyhow!("the token has no numeric `exp`"))?;
    Ok((jti.to_owned(), exp))
}

/// `90d`, `12h`, `30m` → seconds.
pub(crate) fn parse_lifetime(text: &str) -> anyhow::Result<i64> {
    let (n, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow::anyhow!("`{text}` is not a lifetime like 90d, 12h or 30m"))?;
    let unit = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => anyhow::bail!("`{text}` is not a lifetime like 90d, 12h or 30m"),
    };
    n.checked_mul(unit)
        .filter(|s| *s <= 10 * 365 * 86_400)
        .ok_or_else(|| anyhow::anyhow!("`{text}` is longer than ten years"))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::parse_lifetime;

    #[test]
    fn lifetimes_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_lifetime("90d").ok(), Some(90 * 86_400));
        assert_eq!(parse_lifetime("12h").ok(), Some(12 * 3_600));
        assert_eq!(parse_lifetime("30m").ok(), Some(1_800));
        for bad in ["", "d", "0d", "-1d", "5", "5s", "1.5d", "99999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
