//! `genesis`: the one binary of the Genesis Engine control plane.
//!
//! Exit codes scripts can trust: 0 success, 1 runtime failure, 2 bad usage or configuration,
//! 3 a check that ran and found problems (`config check`, `db check`).

#[macro_use]
mod output;
mod cmd;
mod config;
mod config_ignition;
mod config_mail;
mod config_money;
mod contexts;
mod values;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// mimalloc instead of glibc's malloc: the control plane (and every simulated droplet in the
/// fleet benchmarks) allocates and frees many short-lived JSON documents across threads,
/// where glibc spent a quarter of the CPU in `malloc`/`free` (perf, `genesis bench rollout`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The top-level help: commands grouped by who uses them, then examples. (clap lists
/// subcommands in one flat block; a test checks that this text names every one.)
const COMMAND_GROUPS: &str = "\
Tenants and the fleet, through a control plane's API:
  tenants     Create, ignite (--wait shows progress), get, list, wake, hold and delete tenants
  rollouts    Template rollouts: start, list, status, pause, resume, abort
  droplets    One droplet: get, health, logs, restart n8n, pull an image
  billing     Money: the margin report per tenant and month, per-tenant limits
  webhooks    A tenant's outbound webhook endpoints, deliveries and dead-letter replay
  auth        Log in to a control plane (saved as a context), log out, status
  context     List the saved control planes, or switch to another

Running a control plane:
  serve       Run the control plane: API, God Mode, reconcilers
  migrate     Create roles and schema, and apply migrations in every regional database
  config      Check the configuration
  db          Check the database server's settings (spec 40.2)
  admin       Operators, and tenants straight against the database
  vault       The vault's master keys: status, and rotate (rewrap every secret)
  command-key The key that signs commands to sidecars: status, and rotate now
  audit       The audit log: seal its hash chain, verify it (names the first broken link), apply its retention
  dr          Disaster recovery: backup coverage and snapshot cost per region
  leads       Lead data administration

Development:
  sim-cloud   Run the DigitalOcean API simulator
  sidecar     Run the droplet agent
  demo        Give a demo fleet something to show
  bench       Benchmarks
  completion  Print a shell completion script (bash, zsh, fish, ...)
  help        Print this message or the help of a command

Examples:
  genesis auth login --api-url https://ops.example.com
  genesis tenants create --name 'Acme Corp' --slug acme_corp --region eu-west \\
    --onboarding sender_email=ada@acme.example --credential openai=@openai.json --wait
  genesis tenants list -o json | jq -r '.items[].slug'
  genesis rollouts start --scenario bug_fix --scope region:eu-west --wait
  genesis completion bash > ~/.local/share/bash-completion/completions/genesis";

/// Genesis Engine control plane.
#[derive(Debug, Parser)]
#[command(
    name = "genesis",
    version,
    about = "Genesis Engine: the control plane that gives every tenant its own droplet.",
    propagate_version = true,
    help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n{before-help}Options:\n{options}",
    before_help = COMMAND_GROUPS,
)]
struct Cli {
    /// Configuration file (TOML). `GENESIS_*` environment variables override it.
    #[arg(long, global = true, env = "GENESIS_CONFIG")]
    config: Option<PathBuf>,
    /// Output format of commands that print results.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (API, health, metrics).
    Serve,
    /// Create roles and schema if needed and apply migrations in every regional database.
    Migrate,
    /// Configuration commands.
    #[command(subcommand)]
    Config(cmd::config::ConfigCommand),
    /// Database commands.
    #[command(subcommand)]
    Db(cmd::db::DbCommand),
    /// Tenants through the control plane's API: create, ignite (with --wait: a live
    /// progress bar), get, list.
    #[command(subcommand)]
    Tenants(cmd::tenants::TenantsCommand),
    /// Fleet template rollouts through the control plane's API: start (with --wait: a live
    /// progress bar), status, pause, resume, abort.
    #[command(subcommand)]
    Rollouts(cmd::rollouts::RolloutsCommand),
    /// One droplet through the control plane's API: get, and its sidecar's health, logs,
    /// restart of n8n and image pull.
    #[command(subcommand)]
    Droplets(cmd::droplets::DropletsCommand),
    /// Money through the control plane's API: the margin report (spec 59.1).
    #[command(subcommand)]
    Billing(cmd::billing::BillingCommand),
    /// A tenant's outbound webhooks through the control plane's API: endpoints (add,
    /// list, remove), deliveries, and replay of dead letters.
    #[command(subcommand)]
    Webhooks(cmd::webhooks::WebhooksCommand),
    /// Give a demo fleet something to show: ignite N tenants with one progress bar, then
    /// make a few droplets misbehave through the simulator.
    #[command(subcommand)]
    Demo(cmd::demo::DemoCommand),
    /// God Mode operators: `create-operator` makes the first one.
    #[command(subcommand)]
    Admin(cmd::admin::AdminCommand),
    /// Lead data administration.
    #[command(subcommand)]
    Leads(cmd::leads::LeadsCommand),
    /// The vault's master keys: which versions seal what, and the rewrap that retires one.
    #[command(subcommand)]
    Vault(cmd::vault::VaultCommand),
    /// The audit log: check each region's hash chain.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Disaster recovery: backup coverage and snapshot cost.
    #[command(subcommand)]
    Dr(cmd::dr::DrCommand),
    /// The command-signing key: where its rotation stands, and a rotation begun now.
    #[command(subcommand, name = "command-key")]
    SigningKey(cmd::command_key::CommandKeyCommand),
    /// Run the DigitalOcean API simulator (virtual droplets, fault injection).
    SimCloud(cmd::sim_cloud::SimCloudArgs),
    /// Run the droplet agent (the same as the `genesis-sidecar` binary).
    Sidecar(genesis_sidecar::cli::SidecarArgs),
    /// Benchmarks (JSON lines on stdout, progress on stderr).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Save a control plane's address and token (login), forget it, or check it.
    #[command(subcommand)]
    Auth(cmd::auth::AuthCommand),
    /// Switch between saved control planes.
    #[command(subcommand)]
    Context(cmd::auth::ContextCommand),
    /// Print a shell completion script: `genesis completion bash > /etc/bash_completion.d/genesis`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Writes `shell`'s completion script for every command to standard output.
pub fn print_completion(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "genesis", &mut buf);
    output::write_stdout(&buf);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(cmd::run(cli.command, cli.config.as_deref(), cli.output))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_grouped_help_names_every_command() {
        for sub in Cli::command().get_subcommands() {
            if sub.is_hide_set() {
                continue;
            }
            let name = sub.get_name();
            assert!(
                COMMAND_GROUPS.contains(&format!("\n  {name} ")),
                "{name} is missing from COMMAND_GROUPS"
            );
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
