//! Command-line entry shared by `genesis-sidecar` and `genesis sidecar`.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser};

use crate::agent::{self, SidecarError};
use crate::config::{EnvFile, Settings, droplet_id};
use crate::docker::DockerRuntime;
use crate::runtime::{ContainerRuntime, ExternalRuntime, ProcessRuntime, ProcessSpec};

/// Sidecar options. Defaults match the droplet's docker compose file.
#[derive(Debug, Clone, Args)]
pub struct SidecarArgs {
    /// The env file cloud-init wrote.
    #[arg(long, default_value = "/opt/genesis/.env")]
    env_file: PathBuf,
    /// The metadata service (DigitalOcean's link-local address, or the simulator's).
    #[arg(long, default_value = "http://169.254.169.254")]
    metadata_url: String,
    /// The droplet id, instead of asking the metadata service.
    #[arg(long)]
    droplet_id: Option<i64>,
    /// The local n8n.
    #[arg(long, default_value = "http://127.0.0.1:5678")]
    n8n_url: String,
    /// Where n8n's webhooks are reachable from outside.
    #[arg(long, default_value = "http://127.0.0.1:5678")]
    webhook_base_url: String,
    /// Keys, tokens and n8n's owner account (0600 files).
    #[arg(long, default_value = "/opt/genesis/state")]
    state_dir: PathBuf,
    /// The command endpoint.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Source address for outgoing connections.
    #[arg(long)]
    bind_ip: Option<IpAddr>,
    /// n8n owner account email.
    #[arg(long, default_value = "owner@genesis.local")]
    owner_email: String,
    /// Start and own n8n as this command (e.g. `npx n8n start`); without it the sidecar only
    /// watches an n8n run by someone else.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    n8n_command: Vec<String>,
    /// Manage n8n as this Docker container (the droplet's compose service) through the
    /// Docker Engine API.
    #[arg(long, conflicts_with = "n8n_command")]
    docker_container: Option<String>,
    /// The Docker Engine socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    docker_socket: PathBuf,
    /// Seconds to wait for n8n to be ready.
    #[arg(long, default_value_t = 120)]
    n8n_ready_timeout_s: u64,
    /// A peer (the droplet's Caddy) whose `X-Forwarded-For` names the real source of a
    /// command; repeat for several.
    #[arg(long)]
    trusted_proxy: Vec<IpAddr>,
    /// Caddy's admin API socket, to serve the tenant's tracking domains (spec 61.4);
    /// without it the sidecar refuses `SET_TRACKING_DOMAINS`.
    #[arg(long)]
    caddy_admin: Option<PathBuf>,
    /// The `authorized_keys` file short-lived support keys go to (spec 63.3's Emergency
    /// tier), e.g. `/root/.ssh/authorized_keys`; without it the sidecar refuses
    /// `INSTALL_SSH_KEY`.
    #[arg(long)]
    authorized_keys: Option<PathBuf>,
    /// Where the relay that signs n8n's calls to the control plane listens (spec 65.3):
    /// on the compose network only, never published.
    #[arg(long, default_value = "0.0.0.0:8444")]
    relay_listen: SocketAddr,
    /// The relay's base URL as the droplet's n8n reaches it.
    #[arg(long, default_value = "http://sidecar:8444")]
    relay_url: String,
}

#[derive(Debug, Parser)]
#[command(
    name = "genesis-sidecar",
    version,
    about = "The agent on a Sovereign Droplet"
)]
struct Cli {
    #[command(flatten)]
    args: SidecarArgs,
}

/// Runs until Ctrl-C.
pub async fn run(a: SidecarArgs) -> Result<(), SidecarError> {
    let env = EnvFile::read(&a.env_file)?;
    let mut settings = Settings {
        dashboard_url: env.dashboard_url,
        workspace_id: env.workspace_id,
        provisioning_token: env.provisioning_token,
        region: env.region,
        droplet_id: a.droplet_id.unwrap_or_default(),
        n8n_url: a.n8n_url,
        webhook_base_url: a.webhook_base_url,
        state_dir: a.state_dir,
        listen: a.listen,
        bind_ip: a.bind_ip,
        owner_email: a.owner_email,
        n8n_ready_timeout: Duration::from_secs(a.n8n_ready_timeout_s),
        host_stats: Default::default(),
        attach: None,
        idle_connection_timeout: crate::config::IDLE_CONNECTION_TIMEOUT,
        trusted_proxies: a.trusted_proxy.clone(),
        sync_state: true,
        caddy_admin: a.caddy_admin.clone(),
        authorized_keys: a.authorized_keys.clone(),
        relay: Some(crate::config::RelaySettings {
            listen: a.relay_listen,
            url: a.relay_url.trim_end_matches('/').to_owned(),
        }),
    };
    if a.droplet_id.is_none() {
        let http = agent::http_client(&settings)?;
        settings.droplet_id = droplet_id(&http, &a.metadata_url).await?;
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Some(container) = &a.docker_container {
        let rt = DockerRuntime::new(&a.docker_socket, container.clone());
        return serve(settings, rt, stop).await;
    }
    match a.n8n_command.split_first() {
        Some((program, args)) => {
            let rt = ProcessRuntime::start(ProcessSpec {
                program: program.clone(),
                args: args.to_vec(),
                env: vec![],
                pull: None,
                image: genesis_n8n::N8N_VERSION.into(),
            })
            .await
            .map_err(|e| SidecarError::Io(e.to_string()))?;
            serve(settings, rt, stop).await
        }
        None => {
            serve(
                settings,
                ExternalRuntime::new(genesis_n8n::N8N_VERSION),
                stop,
            )
            .await
        }
    }
}

/// Runs the agent on `runtime` until `stop`.
async fn serve<R: ContainerRuntime>(
    settings: Settings,
    runtime: R,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SidecarError> {
    let running = agent::start(settings, Arc::new(runtime), stop).await?;
    tracing::info!(addr = %running.command_addr, "sidecar ready");
    let _ = running.heartbeats.await;
    Ok(())
}

/// `genesis-sidecar`'s main: exit 0 on a clean stop, 2 on bad usage or settings, 1 otherwise.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GENESIS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colours for a person at a terminal only: log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("genesis-sidecar: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ SidecarError::Config(_)) => {
            eprintln!("genesis-sidecar: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("genesis-sidecar: {e}");
            ExitCode::FAILURE
        }
    }
}
