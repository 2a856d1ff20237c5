//! `genesis`: the one binary of the Genesis Engine control plane.
//!
//! Exit codes scripts can trust: 0 success, 1 runtime failure, 2 bad usage or configuration,
//! 3 a check that ran and found problems (`config check`, `db check`).

mod cmd;
mod config;
mod config_ignition;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::output::Output;

/// mimalloc instead of glibc's malloc: the control plane (and every simulated droplet in the
/// fleet benchmarks) allocates and frees many short-lived JSON documents across threads,
/// where glibc spent a quarter of the CPU in `malloc`/`free` (perf, `genesis bench rollout`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Genesis Engine control plane.
#[derive(Debug, Parser)]
#[command(name = "genesis", version, about, propagate_version = true)]
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
    /// Workspace (tenant) administration, directly against the store.
    #[command(subcommand)]
    Workspaces(cmd::workspaces::WorkspacesCommand),
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
    /// Run the DigitalOcean API simulator (virtual droplets, fault injection).
    SimCloud(cmd::sim_cloud::SimCloudArgs),
    /// Run the droplet agent (the same as the `genesis-sidecar` binary).
    Sidecar(genesis_sidecar::cli::SidecarArgs),
    /// Benchmarks (JSON lines on stdout, progress on stderr).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
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
