//! [`SidecarClient`]: the control plane's side of DESIGN §3.4. Every command carries a fresh
//! EdDSA JWT scoped to one workspace, one droplet and one action, valid five minutes.
//!
//! # Guarantees
//! - Every request has a timeout.
//! - Errors say whether trying again can help: an unreachable sidecar or an n8n that is not
//!   up yet (502) may recover; a refusal (401/403) or a failed command (4xx with a
//!   [`CommandFailure`]) will not.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use genesis_protocol::command::{Command, CommandFailure, CommandName, CommandReply};
use genesis_protocol::{CommandKeyRing, CommandSigner};
use uuid::Uuid;

/// What happened to one command: what the control plane keeps for the droplet's page.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    /// The tenant.
    pub workspace: Uuid,
    /// The cloud's droplet id.
    pub provider_id: i64,
    /// The command.
    pub action: CommandName,
    /// When it was sent.
    pub sent_at: chrono::DateTime<chrono::Utc>,
    /// Until the answer or the failure, ms.
    pub elapsed_ms: i64,
    /// `ok`, `failed`, `refused` or `unreachable`.
    pub outcome: &'static str,
    /// The error, when there was one.
    pub detail: Option<String>,
}

/// Where a [`SidecarClient`] reports each command it sent. Recording must not block: the
/// command's caller is waiting.
pub trait CommandJournal: Send + Sync {
    /// Takes one record.
    fn record(&self, record: CommandRecord);
}

/// The longest error kept in a record.
const DETAIL_CHARS: usize = 300;

/// A command that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    /// The sidecar could not be reached, or its n8n is not up: worth another try.
    #[error("sidecar unreachable: {0}")]
    Unreachable(String),
    /// The sidecar refused the token: a bug or a misconfiguration, not a transient fault.
    #[error("sidecar refused the command ({status}): {body}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its body.
        body: String,
    },
    /// The command ran and failed.
    #[error("{} failed: {} ({})", .0.action, .0.message, .0.code)]
    Failed(CommandFailure),
}

impl CommandError {
    /// Whether waiting and trying again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            CommandError::Unreachable(_) => true,
            CommandError::Failed(f) => f.code.is_transient(),
            _ => false,
        }
    }
}

/// Sends signed commands to sidecars.
#[derive(Clone)]
pub struct SidecarClient {
    http: reqwest::Client,
    keys: Arc<CommandKeyRing>,
    url_template: String,
    host_suffix: Option<String>,
    fallback_template: Option<String>,
    journal: Option<Arc<dyn CommandJournal>>,
}

/// How the client reaches sidecars over HTTPS.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// PEM certificates to trust besides the public roots (a private CA in front of the
    /// droplets, or the simulator's Caddy's internal CA).
    pub extra_root_pem: Option<Vec<u8>>,
    /// Domain naming droplets by address: `{host}` in the URL template becomes
    /// `203-0-113-5.<suffix>` (see `network::DropletNetwork::hostname`).
    pub host_suffix: Option<String>,
}

/// How long a command that changes n8n's container may take, when longer than the client's
/// usual timeout: a swap waits for a quiet period, pulls, starts and health-checks the new
/// container, and may roll back (spec 56.2); a restart waits for readiness. A caller that gave
/// up earlier would retry while the first run is still rolling back.
fn long_running(cmd: &Command) -> Option<Duration> {
    match cmd {
        Command::SwapContainer { quiet_wait_s, .. } => {
            Some(Duration::from_secs(quiet_wait_s.saturating_add(300)))
        }
        Command::RestartN8n => Some(Duration::from_secs(300)),
        _ => None,
    }
}

impl SidecarClient {
    /// `url_template` is the command endpoint with `{ip}` for the droplet's address, e.g.
    /// `https://{ip}/sidecar/v1/commands` behind Caddy, `http://{ip}:8443/sidecar/v1/commands`
    /// in the simulator.
    pub fn new(
        signer: Arc<CommandSigner>,
        url_template: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, CommandError> {
        Self::with_options(signer, url_template, timeout, ClientTls::default())
    }

    /// [`Self::new`], with `{host}` in the template and extra trusted roots (`tls`).
    pub fn with_options(
        signer: Arc<CommandSigner>,
        url_template: impl Into<String>,
        timeout: Duration,
        tls: ClientTls,
    ) -> Result<Self, CommandError> {
        let url_template = url_template.into();
        if url_template.contains("{host}") && tls.host_suffix.is_none() {
            return Err(CommandError::Unreachable(
                "the sidecar URL names {host} but no host suffix is configured".into(),
            ));
        }
        // One control plane talks to 15,000 sidecars: an idle connection is kept for the
        // commands of one update (milliseconds apart), not for the next one minutes later.
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(5));
        if let Some(pem) = &tls.extra_root_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                CommandError::Unreachable(format!("the sidecar CA is not PEM: {e}"))
            })?;
            if certs.is_empty() {
                return Err(CommandError::Unreachable(
                    "the sidecar CA file holds no certificate".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| CommandError::Unreachable(e.to_string()))?;
        Ok(Self {
            http,
            keys: Arc::new(CommandKeyRing::new(signer)),
            url_template,
            host_suffix: tls.host_suffix,
            fallback_template: None,
            journal: None,
        })
    }

    /// The same client, sending to `template` when the first endpoint refuses the
    /// connection: a simulated fleet where only some droplets have Caddy in front (a refused
    /// connection is the only failure retried, since nothing reached a sidecar).
    pub fn with_fallback(mut self, template: impl Into<String>) -> Self {
        self.fallback_template = Some(template.into());
        self
    }

    /// The same client, signing with whatever key `keys` holds active when a command is
    /// sent: the control plane's ring, so a key rotation's switch reaches every client.
    pub fn with_keys(mut self, keys: Arc<CommandKeyRing>) -> Self {
        self.keys = keys;
        self
    }

    /// The ring this client signs from.
    pub fn keys(&self) -> &Arc<CommandKeyRing> {
        &self.keys
    }

    /// The same client, reporting every command it sends to `journal`.
    pub fn with_journal(mut self, journal: Arc<dyn CommandJournal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Runs `cmd` on the sidecar of droplet `droplet_id` (the cloud's id) at `ip`, and
    /// reports how it went to the journal, if there is one.
    pub async fn send(
        &self,
        ip: &str,
        workspace: Uuid,
        droplet_id: i64,
        cmd: &Command,
    ) -> Result<CommandReply, CommandError> {
        let Some(journal) = &self.journal else {
            return self.send_unrecorded(ip, workspace, droplet_id, cmd).await;
        };
        let sent_at = chrono::Utc::now();
        let started = std::time::Instant::now();
        let result = self.send_unrecorded(ip, workspace, droplet_id, cmd).await;
        let (outcome, detail) = match &result {
            Ok(_) => ("ok", None),
            Err(e) => (
                match e {
                    CommandError::Unreachable(_) => "unreachable",
                    CommandError::Refused { .. } => "refused",
                    CommandError::Failed(_) => "failed",
                },
                Some(e.to_string().chars().take(DETAIL_CHARS).collect()),
            ),
        };
        journal.record(CommandRecord {
            workspace,
            provider_id: droplet_id,
            action: cmd.name(),
            sent_at,
            elapsed_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            outcome,
            detail,
        });
        result
    }

    async fn send_unrecorded(
        &self,
        ip: &str,
        workspace: Uuid,
        droplet_id: i64,
        cmd: &Command,
    ) -> Result<CommandReply, CommandError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // The token names the exact bytes sent (`bh`), so the body is serialized once, here.
        let body = serde_json::to_vec(cmd).map_err(|e| CommandError::Refused {
            status: 0,
            body: format!("cannot encode the command: {e}"),
        })?;
        let token = self
            .keys
            .active()
            .sign(workspace, droplet_id, cmd.name(), &body, now)
            .map_err(|e| CommandError::Refused {
                status: 0,
                body: format!("cannot sign: {e}"),
            })?;
        let post = |template: &str| {
            let mut url = template.replace("{ip}", ip);
            if let Some(suffix) = &self.host_suffix {
                url = url.replace("{host}", &crate::network::hostname(ip, suffix));
            }
            let mut req = self
                .http
                .post(&url)
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(t) = long_running(cmd) {
                req = req.timeout(t);
            }
            (url, req.send())
        };
        let (mut url, sent) = post(&self.url_template);
        let mut result = sent.await;
        // A refused connection never reached a sidecar (the token is still unused), so the
        // fallback endpoint may take the same request.
        if let (Err(e), Some(fallback)) = (&result, &self.fallback_template)
            && e.is_connect()
        {
            let (u, sent) = post(fallback);
            url = u;
            result = sent.await;
        }
        let resp = result.map_err(|e| CommandError::Unreachable(format!("{url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp
            .text()
            .await
            .map_err(|e| CommandError::Unreachable(format!("{url}: {e}")))?;
        match status {
            200 => serde_json::from_str(&body).map_err(|e| CommandError::Refused {
                status,
                body: format!("unreadable reply ({e}): {body}"),
            }),
            502..=504 => Err(CommandError::Unreachable(format!("{status}: {body}"))),
            401 | 403 => Err(CommandError::Refused { status, body }),
            _ => match serde_json::from_str::<CommandFailure>(&body) {
                Ok(f) => Err(CommandError::Failed(f)),
                Err(_) => Err(CommandError::Refused { status, body }),
            },
        }
    }
}
