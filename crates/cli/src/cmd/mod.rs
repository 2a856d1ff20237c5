//! Subcommand implementations. `run` maps every outcome to an exit code.

pub mod admin;
pub mod api_client;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod bench_deletion;
pub mod bench_export;
pub mod bench_failover;
pub mod bench_god_mode;
pub mod bench_heartbeats;
pub mod bench_ignition;
pub mod bench_inbound;
pub mod bench_onboarding;
pub mod bench_queue;
pub mod bench_rollout;
pub mod bench_sidecar;
pub mod bench_sign_in_flood;
pub mod bench_sim;
pub mod bench_wake;
pub mod bench_wallet;
pub mod bench_webhooks;
pub mod bench_zombies;
pub mod billing;
pub mod command_key;
pub mod config;
pub mod db;
pub mod demo;
pub mod dr;
pub mod droplets;
pub mod leads;
pub mod rollouts;
pub mod serve;
pub mod sim_cloud;
pub mod tenants;
pub mod vault;
pub mod webhooks;
pub mod workspaces;

use std::path::Path;
use std::process::ExitCode;

use crate::{Command, config::Config, output::Output};

/// A command's failure with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or configuration (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A check ran and found problems (exit 3); details were printed already.
    #[error("{0}")]
    CheckFailed(String),
    /// The control plane refused a request, or something else answered (4xx: exit 2,
    /// else 1). `-o json` prints its problem document.
    #[error(transparent)]
    Api(#[from] api_client::ApiError),
    /// Anything else (exit 1).
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<genesis_store::StoreError> for CliError {
    fn from(e: genesis_store::StoreError) -> Self {
        match e {
            genesis_store::StoreError::Conflict { .. }
            | genesis_store::StoreError::Refused { .. }
            | genesis_store::StoreError::Invalid { .. } => CliError::Usage(e.to_string()),
            e => CliError::Runtime(e.into()),
        }
    }
}

/// Asks before something that cannot be undone. `yes` (the command's `--yes`) skips the
/// question; without a terminal to ask on, the command is refused rather than assumed.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    use std::io::IsTerminal;
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::Usage(format!(
            "{question} Add --yes to confirm (no terminal to ask on)."
        )));
    }
    let answer = read_line(Some(&format!("{question} [y/N] ")), "the answer")?;
    if matches!(answer.to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Usage("nothing was changed".into()))
    }
}

/// One line of standard input, trimmed, after `prompt` on stderr if given; `what` names it
/// in the error.
pub fn read_line(prompt: Option<&str>, what: &str) -> Result<String, CliError> {
    use std::io::{BufRead, Write};
    if let Some(p) = prompt {
        eprint!("{p}");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("reading {what}: {e}")))?;
    Ok(line.trim().to_owned())
}

/// Loads configuration or explains why not.
pub fn load_config(path: Option<&Path>) -> Result<Config, CliError> {
    Ok(Config::load(Config::path(path).as_deref())?)
}

fn init_logging(cfg: Option<&Config>) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter =
        EnvFilter::try_from_env("GENESIS_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = cfg.is_some_and(|c| c.log.format == "json");
    // Colours for a person at a terminal only: log files (`serve > log`) get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs one command.
pub async fn run(command: Command, config: Option<&Path>, out: Output) -> ExitCode {
    let cfg = load_config(config);
    init_logging(cfg.as_ref().ok());
    let result = match command {
        Command::Config(c) => config::run(c, config, out).await,
        // The simulator stands alone: it needs no database configuration.
        Command::SimCloud(a) => sim_cloud::run(a).await,
        // The sidecar runs on a droplet: its settings come from cloud-init, not this config.
        Command::Sidecar(a) => genesis_sidecar::cli::run(a).await.map_err(|e| match e {
            genesis_sidecar::agent::SidecarError::Config(c) => CliError::Usage(c.to_string()),
            other => CliError::Runtime(other.into()),
        }),
        // Benchmarks bring their own scratch databases and Redis sets; only `bench partitions`
        // reads the configuration.
        Command::Bench(c) => bench::run(c, cfg).await,
        // API commands need the API's address and token, from flags, the saved context or
        // the configuration if there is one; never a database.
        Command::Auth(c) => auth::run(c, out).await,
        Command::Context(c) => auth::run_context(c, out),
        Command::Completion { shell } => {
            crate::print_completion(shell);
            Ok(())
        }
        Command::Tenants(c) => tenants::run(c, cfg.as_ref().ok(), out).await,
        Command::Rollouts(c) => rollouts::run(c, cfg.as_ref().ok(), out).await,
        Command::Droplets(c) => droplets::run(c, cfg.as_ref().ok(), out).await,
        Command::Billing(c) => billing::run(c, cfg.as_ref().ok(), out).await,
        Command::Webhooks(c) => webhooks::run(c, cfg.as_ref().ok(), out).await,
        other => match cfg {
            Ok(cfg) => dispatch(other, cfg, out).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(CliError::CheckFailed(m)) => {
            eprintln!("{m}");
            ExitCode::from(3)
        }
        Err(CliError::Api(e)) => {
            match out {
                // Scripts get the problem document, status included, where they read.
                Output::Json => crate::output::print(out, &e.problem, &[], Vec::new()),
                Output::Table => eprintln!("error: {}", e.message),
            }
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
        Err(CliError::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(command: Command, cfg: Config, out: Output) -> Result<(), CliError> {
    match command {
        Command::Serve => serve::run(cfg).await,
        Command::Migrate => {
            let stores = cfg.regional_store()?;
            for db in stores.distinct() {
                db.migrate().await?;
                // The legacy table's one tenant: only its context sees the table's rows.
                if let Some(legacy) = cfg.legacy_tenant() {
                    db.legacy_ohio_register(legacy.workspace_id).await?;
                }
                eprintln!(
                    "migrated {}",
                    db.options()
                        .admin
                        .get_database()
                        .unwrap_or("(default database)")
                );
            }
            Ok(())
        }
        Command::Db(c) => db::run(c, cfg, out).await,
        Command::Leads(c) => leads::run(c, cfg, out).await,
        Command::Vault(c) => vault::run(c, cfg, out).await,
        Command::SigningKey(c) => command_key::run(c, cfg, out).await,
        Command::Audit(c) => audit::run(c, cfg, out).await,
        Command::Dr(c) => dr::run(c, cfg, out).await,
        Command::Admin(c) => admin::run(c, cfg, out).await,
        Command::Demo(c) => demo::run(c, cfg).await,
        Command::Config(_)
        | Command::SimCloud(_)
        | Command::Sidecar(_)
        | Command::Bench(_)
        | Command::Auth(_)
        | Command::Context(_)
        | Command::Completion { .. }
        | Command::Tenants(_)
        | Command::Rollouts(_)
        | Command::Droplets(_)
        | Command::Billing(_)
        | Command::Webhooks(_) => {
            unreachable!("handled before configuration is required")
        }
    }
}
