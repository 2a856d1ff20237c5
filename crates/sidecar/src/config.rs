//! Where the sidecar gets its settings: the env file cloud-init wrote (DESIGN §3.1) and the
//! metadata service (its droplet id), plus local paths and addresses with defaults that match
//! the droplet's docker compose file.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use genesis_protocol::envfile::{self, keys};
use uuid::Uuid;

/// A setting that is missing or wrong. The message names it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is absent from the env file.
    #[error("{0} is missing from the env file")]
    Missing(&'static str),
    /// A variable does not parse.
    #[error("{name} is not valid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// The env file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The metadata service did not say who we are.
    #[error("the metadata service at {url} did not give a droplet id: {reason}")]
    Metadata {
        /// URL asked.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Everything the sidecar needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Control plane base URL.
    pub dashboard_url: String,
    /// The tenant.
    pub workspace_id: Uuid,
    /// One-time handshake token (unused once the handshake is done).
    pub provisioning_token: String,
    /// Region (spec 62).
    pub region: String,
    /// Cloud droplet id.
    pub droplet_id: i64,
    /// The local n8n.
    pub n8n_url: String,
    /// Base URL under which n8n's webhooks are reachable from outside.
    pub webhook_base_url: String,
    /// Keys, tokens and n8n's owner account live here (0600 files).
    pub state_dir: PathBuf,
    /// Where `POST /sidecar/v1/commands` listens.
    pub listen: SocketAddr,
    /// Source address of outgoing connections (a virtual droplet's own address).
    pub bind_ip: Option<IpAddr>,
    /// n8n owner account email.
    pub owner_email: String,
    /// How long to wait for n8n at boot and after restarts.
    pub n8n_ready_timeout: Duration,
    /// Where heartbeat resource figures come from (the machine, unless simulated).
    pub host_stats: crate::sysstats::HostStats,
    /// Serve commands through this shared listener instead of binding `listen` (the
    /// simulator's virtual droplets at fleet scale; `None` on a real droplet).
    pub attach: Option<std::sync::Arc<dyn crate::server::Attach>>,
    /// How long an idle outgoing connection (to n8n, the control plane) is kept: a real
    /// droplet keeps it across heartbeats; thousands of virtual droplets in one process
    /// cannot afford to.
    pub idle_connection_timeout: Duration,
    /// Peers trusted to name a request's real source in `X-Forwarded-For` (the droplet's
    /// Caddy, which alone reaches the sidecar's port).
    pub trusted_proxies: Vec<IpAddr>,
    /// Flush the ids of accepted commands to the disk before running them (a real droplet,
    /// whose power can fail; a virtual droplet's restart keeps the page cache).
    pub sync_state: bool,
    /// Caddy's admin API socket (spec 61.4's tracking domains); none: no web front.
    pub caddy_admin: Option<PathBuf>,
    /// The `authorized_keys` file support SSH keys go to (spec 63.3's Emergency tier);
    /// without it the sidecar refuses `INSTALL_SSH_KEY`.
    pub authorized_keys: Option<PathBuf>,
    /// The relay that signs n8n's calls to the control plane (spec 65.3); none: n8n has
    /// no way to call the control plane.
    pub relay: Option<RelaySettings>,
}

/// Where the relay listens, and how the droplet's n8n reaches it.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The address it listens on.
    pub listen: SocketAddr,
    /// Its base URL as n8n reaches it (reported at the handshake: the ignition points the
    /// templates' calls there).
    pub url: String,
}

/// [`Settings::idle_connection_timeout`] on a real droplet: longer than the heartbeat
/// interval, so every heartbeat reuses one TLS connection.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(90);

/// The parts of [`Settings`] that come from the env file.
#[derive(Debug, Clone)]
pub struct EnvFile {
    /// `GENESIS_DASHBOARD_URL`.
    pub dashboard_url: String,
    /// `GENESIS_WORKSPACE_ID`.
    pub workspace_id: Uuid,
    /// `GENESIS_PROVISIONING_TOKEN`.
    pub provisioning_token: String,
    /// `GENESIS_REGION`.
    pub region: String,
}

impl EnvFile {
    /// Parses the env file's text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let env = envfile::parse(text);
        let get = |k: &'static str| {
            env.get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or(ConfigError::Missing(k))
        };
        let dashboard_url = get(keys::DASHBOARD_URL)?;
        if !(dashboard_url.starts_with("http://") || dashboard_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: keys::DASHBOARD_URL,
                reason: "must be an http(s) URL".into(),
            });
        }
        let workspace_id =
            Uuid::parse_str(&get(keys::WORKSPACE_ID)?).map_err(|e| ConfigError::Invalid {
                name: keys::WORKSPACE_ID,
                reason: e.to_string(),
            })?;
        Ok(Self {
            dashboard_url: dashboard_url.trim_end_matches('/').to_owned(),
            workspace_id,
            provisioning_token: get(keys::PROVISIONING_TOKEN)?,
            region: get(keys::REGION)?,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text)
    }
}

/// Asks the metadata service (`{base}/metadata/v1/id`) for this droplet's id.
pub async fn droplet_id(http: &reqwest::Client, metadata_base: &str) -> Result<i64, ConfigError> {
    let url = format!("{}/metadata/v1/id", metadata_base.trim_end_matches('/'));
    let fail = |reason: String| ConfigError::Metadata {
        url: url.clone(),
        reason,
    };
    let resp = http
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("status {}", resp.status())));
    }
    let text = resp.text().await.map_err(|e| fail(e.to_string()))?;
    text.trim()
        .parse()
        .map_err(|_| fail(format!("{text:?} is not a droplet id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_env_file_names_what_is_missing_or_wrong() {
        let ok = "GENESIS_DASHBOARD_URL=https://cp.example/\nGENESIS_WORKSPACE_ID=0190a4f5-8d6c-7000-8000-000000000001\nGENESIS_PROVISIONING_TOKEN=pt\nGENESIS_REGION=eu-west\n";
        let e = EnvFile::parse(ok).expect("parses");
        assert_eq!(e.dashboard_url, "https://cp.example");
        assert!(matches!(
            EnvFile::parse(&ok.replace("GENESIS_REGION=eu-west", "")),
            Err(ConfigError::Missing("GENESIS_REGION"))
        ));
        assert!(matches!(
            EnvFile::parse(&ok.replace("0190a4f5-8d6c-7000-8000-000000000001", "nope")),
            Err(ConfigError::Invalid {
                name: "GENESIS_WORKSPACE_ID",
                ..
            })
        ));
        assert!(matches!(
            EnvFile::parse(&ok.replace("https://cp.example/", "cp.example")),
            Err(ConfigError::Invalid {
                name: "GENESIS_DASHBOARD_URL",
                ..
            })
        ));
    }
}
