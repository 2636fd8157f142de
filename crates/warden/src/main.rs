//! `warden`: the API security gateway binary.
//!
//! `warden run` serves a config (with none given, the bundled quickstart config
//! in front of the bundled sample API); `warden validate` checks config files
//! with the same code path start-up and reload use; `warden sample-api` runs the
//! demo upstream alone.

mod authz_cli;
mod blocks_cli;
mod sample_api;
mod store_cli;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use warden_proxy::worker::Workers;
use warden_proxy::{Gateway, GatewayOptions};

const QUICKSTART: &str = include_str!("../../../examples/quickstart.yaml");

/// Warden API security gateway.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Config file. Without it, the bundled quickstart config is served in
        /// front of the bundled sample API on 127.0.0.1:9000.
        #[arg(long, short, env = "WARDEN_CONFIG")]
        config: Option<PathBuf>,
        /// Also start the bundled sample API on this address.
        #[arg(long)]
        sample_api: Option<SocketAddr>,
        /// Poll the config file for changes this often and reload (0 disables).
        #[arg(long, default_value_t = 2)]
        watch_secs: u64,
        /// Worker threads serving connections (default: one per available core).
        #[arg(long, env = "WARDEN_WORKERS")]
        workers: Option<usize>,
    },
    /// Validate config files; prints every problem and exits non-zero if any file is invalid.
    Validate {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Manage consumers in the store.
    Consumers {
        /// Config file whose `store:` section names the store.
        #[arg(long, short, env = "WARDEN_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: store_cli::ConsumersCmd,
    },
    /// Manage API keys in the store.
    Keys {
        /// Config file whose `store:` section names the store.
        #[arg(long, short, env = "WARDEN_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: store_cli::KeysCmd,
    },
    /// Manage clients of the built-in authorization server.
    Clients {
        /// Config file whose `store:` section names the store.
        #[arg(long, short, env = "WARDEN_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: store_cli::ClientsCmd,
    },
    /// Revoke access tokens in the store.
    Tokens {
        /// Config file whose `store:` section names the store.
        #[arg(long, short, env = "WARDEN_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: store_cli::TokensCmd,
    },
    /// Dynamic blocks (addresses, CIDRs, consumers) through a running
    /// gateway's admin API.
    Blocks {
        /// Config file of the gateway (its `admin:` section).
        #[arg(long, short, env = "WARDEN_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: blocks_cli::BlocksCmd,
    },
    /// Authorization tools.
    Authz {
        #[command(subcommand)]
        cmd: AuthzCmd,
    },
    /// Generate config from another format.
    Import {
        #[command(subcommand)]
        cmd: ImportCmd,
    },
    /// Run only the bundled sample API.
    SampleApi {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1:9000")]
        bind: SocketAddr,
    },
}

#[derive(Debug, Subcommand)]
enum ImportCmd {
    /// Write a config with one route per operation of an OpenAPI 3.0/3.1
    /// document (YAML or JSON; local `$ref`s only, never fetched) to stdout.
    Openapi {
        /// The spec file.
        spec: PathBuf,
        /// Refuse the file unless its SHA-256 (hex) is this.
        #[arg(long)]
        sha256: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuthzCmd {
    /// Show how a described request is decided and which policies decided it.
    /// Exit status 0 for allow, 2 for deny.
    Explain(authz_cli::ExplainArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    // Before any TLS config is built: aws-lc-rs is the only provider.
    warden_tls::install_provider();
    let result = match cli.command {
        Command::Validate { files } => Ok(validate(&files)),
        Command::Import {
            cmd: ImportCmd::Openapi { spec, sha256 },
        } => Ok(import_openapi(&spec, sha256.as_deref())),
        Command::Authz {
            cmd: AuthzCmd::Explain(args),
        } => authz_cli::explain(&args),
        // The control runtime (accept loops, admin, signals, health checks) is
        // single-threaded; connections are served by per-core worker runtimes.
        other => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(run_async(other))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        // Every line is scrubbed of cards and secrets before it is written.
        .with_writer(|| warden_dlp::RedactingWriter::new(std::io::stderr()))
        .with_env_filter(filter)
        .init();
}

fn import_openapi(spec: &std::path::Path, sha256: Option<&str>) -> ExitCode {
    match warden_openapi::Spec::load(spec, sha256) {
        Ok(s) => {
            // The config names the spec by its absolute path: it may be
            // written anywhere.
            let path = std::fs::canonicalize(spec).unwrap_or_else(|_| spec.to_owned());
            print!("{}", warden_openapi::import::config(&s, &path.display().to_string()));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems {
                eprintln!("{}: {p}", spec.display());
            }
            ExitCode::FAILURE
        }
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut bad = 0;
    for f in files {
        match warden_config::load_file(f) {
            Ok(_) => println!("{}: ok", f.display()),
            Err(e) => {
                bad += 1;
                println!("{}: {e}", f.display());
            }
        }
    }
    if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn run_async(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::SampleApi { bind } => {
            let addr = sample_api::serve(bind).await?;
            println!("sample API listening on http://{addr}");
            tokio::signal::ctrl_c().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            sample_api,
            watch_secs,
            workers,
        } => run(config, sample_api, watch_secs, workers).await,
        Command::Import {
            cmd: ImportCmd::Openapi { spec, sha256 },
        } => Ok(import_openapi(&spec, sha256.as_deref())),
        Command::Validate { files } => Ok(validate(&files)),
        Command::Authz {
            cmd: AuthzCmd::Explain(args),
        } => authz_cli::explain(&args),
        Command::Consumers { config, cmd } => store_cli::consumers(cmd, config.as_ref()).await,
        Command::Keys { config, cmd } => store_cli::keys(cmd, config.as_ref()).await,
        Command::Tokens { config, cmd } => store_cli::tokens(cmd, config.as_ref()).await,
        Command::Clients { config, cmd } => store_cli::clients(cmd, config.as_ref()).await,
        Command::Blocks { config, cmd } => blocks_cli::blocks(cmd, config.as_ref()).await,
    }
}

async fn run(
    config: Option<PathBuf>,
    sample: Option<SocketAddr>,
    watch_secs: u64,
    workers: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let (snapshot, sample) = match &config {
        Some(path) => (warden_config::load_file(path)?, sample),
        None => {
            let default_sample: SocketAddr = "127.0.0.1:9000".parse()?;
            (
                warden_config::load_str(QUICKSTART)?,
                Some(sample.unwrap_or(default_sample)),
            )
        }
    };
    if let Some(addr) = sample {
        let bound = sample_api::serve(addr)
            .await
            .with_context(|| format!("cannot start the sample API on {addr}"))?;
        tracing::info!(addr = %bound, "sample API started");
    }
    let n = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let pool = Workers::start(n).context("cannot start worker threads")?;
    let opts = GatewayOptions {
        watch_interval: (config.is_some() && watch_secs > 0).then(|| Duration::from_secs(watch_secs)),
        config_path: config,
        access_log: None,
        workers: pool.handles(),
        clock: None,
    };
    let gateway = Gateway::start(snapshot, opts).await?;
    tracing::info!(workers = n, "serving");
    wait_for_signals(&gateway).await?;
    gateway.shutdown().await;
    tokio::task::spawn_blocking(move || pool.stop()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Reloads on SIGHUP; returns on SIGTERM or SIGINT.
async fn wait_for_signals(gateway: &Gateway) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading config");
                match gateway.reload().await {
                    Ok(outcome) => tracing::info!(generation = outcome.generation, needs_restart = ?outcome.needs_restart, "reload applied"),
                    Err(e) => tracing::error!(error = %e, "reload refused; the running config keeps serving"),
                }
            }
            _ = term.recv() => { tracing::info!("SIGTERM: draining"); return Ok(()); }
            _ = int.recv() => { tracing::info!("SIGINT: draining"); return Ok(()); }
        }
    }
}

/// mimalloc: the request path allocates small, short-lived objects on every
/// worker thread; measured 8–9% of CPU in glibc malloc/free under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
