//! `warden blocks`: dynamic blocks through the admin API of a running gateway
//! (the same config file names its admin address and token), so a block set
//! here is held in the shared state and enforced by every gateway sharing it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Subcommand;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// `warden blocks …`
#[derive(Debug, Subcommand)]
pub enum BlocksCmd {
    /// Block a client address, a CIDR (`203.0.113.0/24`, `2001:db8::/64`) or
    /// `consumer:NAME` for a period.
    Add {
        /// What to block.
        target: String,
        /// How long: 30m, 12h, 7d (at most 90d).
        #[arg(long = "for", value_name = "LIFETIME")]
        lifetime: String,
        /// Why (kept for operators, never shown to the client).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List the blocks in force.
    List,
    /// Lift a block.
    Remove {
        /// The blocked target, as listed.
        target: String,
    },
}

/// Runs a `blocks` command against the gateway `config` describes.
pub async fn blocks(cmd: BlocksCmd, config: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    let path = config.context("--config (or WARDEN_CONFIG) names the gateway's config file")?;
    let snapshot = warden_config::load_file(path)?;
    let admin = &snapshot.config.admin;
    let bind = admin.bind.as_deref().context("admin.bind is off in this config")?;
    let token_file = admin
        .api_token_file
        .as_deref()
        .context("admin.api_token_file is not set in this config: the admin API is off")?;
    let token = warden_config::schema::read_admin_token(token_file).map_err(anyhow::Error::msg)?;
    let base = format!("http://{bind}/blocks");
    let (method, uri, body) = match &cmd {
        BlocksCmd::Add {
            target,
            lifetime,
            reason,
        } => {
            let ttl = crate::store_cli::parse_lifetime(lifetime)?;
            let body = serde_json::json!({ "target": target, "ttl_secs": ttl, "reason": reason });
            (Method::POST, base, body.to_string())
        }
        BlocksCmd::List => (Method::GET, base, String::new()),
        BlocksCmd::Remove { target } => (
            Method::DELETE,
            format!("{base}?target={}", encode(target)),
            String::new(),
        ),
    };
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req))
        .await
        .context("the admin API did not answer within 10 s")?
        .with_context(|| format!("cannot reach the admin API at {bind}"))?;
    let status = resp.status();
    let text = String::from_utf8_lossy(&resp.into_body().collect().await?.to_bytes()).into_owned();
    match (status, &cmd) {
        (StatusCode::OK, BlocksCmd::List) => {
            let doc: serde_json::Value = serde_json::from_str(&text)?;
            for b in doc["blocks"].as_array().into_iter().flatten() {
                // Escaped: text from the shared state must not drive the terminal.
                let field = |k: &str| b[k].as_str().unwrap_or("").escape_debug().to_string();
                println!(
                    "{}\tuntil {}\t{}\t{}",
                    field("target"),
                    field("until"),
                    field("source"),
                    field("reason")
                );
            }
        }
        (StatusCode::CREATED, BlocksCmd::Add { .. }) => {
            let b: serde_json::Value = serde_json::from_str(&text)?;
            println!(
                "blocked {} until {}",
                b["target"].as_str().unwrap_or(""),
                b["until"].as_str().unwrap_or("")
            );
        }
        (StatusCode::NO_CONTENT, BlocksCmd::Remove { target }) => println!("lifted the block on {target}"),
        _ => {
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|d| d["detail"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("the admin API answered {status}: {detail}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a target for the query string.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
