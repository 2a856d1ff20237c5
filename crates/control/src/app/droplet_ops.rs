//! Operator commands to one droplet's sidecar: its logs, a health check, a restart of n8n
//! and an image pull (spec 44.1's droplet page, spec 63.3's support actions).
//!
//! Each one is audited (`support` / `ACTION_TAKEN`) *before* it is sent, in the droplet's
//! own database: a command the audit log cannot record is not sent. How it went (outcome,
//! time taken, the error) goes to the command journal through the same
//! [`SidecarClient`](genesis_ignition::SidecarClient) every other command uses, so the
//! droplet page's "recent commands" shows it beside the rollouts' and heals' commands.

use genesis_cloud::Cloud;
use genesis_core::DropletState;
use genesis_core::support::SupportAction;
use genesis_ignition::sidecar_client::CommandError;
use genesis_protocol::command::{Command, CommandReply};
use serde::{Deserialize, Serialize};

use super::droplets::locate;
use super::support_access::{Authority, Caller, authorise};
use crate::{AppState, Problem};

/// The most log lines one request may ask for (the sidecar keeps no more).
pub const MAX_LOG_LINES: u32 = 2_000;

/// Log lines when the caller names no number.
pub const DEFAULT_LOG_LINES: u32 = 200;

/// What an operator may ask of one droplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropletOp {
    /// The newest `lines` lines of n8n's output.
    Logs {
        /// How many.
        lines: u32,
    },
    /// n8n's status and the droplet's load.
    Health,
    /// Restart n8n and wait until it answers again.
    Restart,
    /// Pull an image ahead of a swap.
    Pull {
        /// A reference with a tag or a digest.
        image: String,
    },
}

impl DropletOp {
    /// The operation named `name` (`logs`, `health`, `restart`, `pull`), as the API's and
    /// God Mode's routes spell it, checked.
    pub fn parse(
        name: &str,
        lines: Option<u32>,
        image: Option<&str>,
    ) -> Result<DropletOp, Problem> {
        match name {
            "logs" => {
                let lines = lines.unwrap_or(DEFAULT_LOG_LINES);
                if !(1..=MAX_LOG_LINES).contains(&lines) {
                    return Err(Problem::invalid_field(
                        "lines",
                        format!("must be between 1 and {MAX_LOG_LINES}"),
                    ));
                }
                Ok(DropletOp::Logs { lines })
            }
            "health" => Ok(DropletOp::Health),
            "restart" => Ok(DropletOp::Restart),
            "pull" => {
                let image = image.map(str::trim).unwrap_or_default();
                if !is_image_reference(image) {
                    return Err(Problem::invalid_field(
                        "image",
                        "must be an image reference with a tag or digest (n8nio/n8n:2.8.4)",
                    ));
                }
                Ok(DropletOp::Pull {
                    image: image.to_owned(),
                })
            }
            _ => Err(Problem::not_found("droplet action")),
        }
    }

    fn command(&self) -> Command {
        match self {
            DropletOp::Logs { lines } => Command::GetLogs { lines: *lines },
            DropletOp::Health => Command::HealthCheck,
            DropletOp::Restart => Command::RestartN8n,
            DropletOp::Pull { image } => Command::PullImage {
                image: image.clone(),
            },
        }
    }

    /// What a support grant must allow for it.
    pub fn support_action(&self) -> SupportAction {
        match self {
            DropletOp::Logs { .. } => SupportAction::ReadLogs,
            DropletOp::Health => SupportAction::HealthCheck,
            DropletOp::Restart => SupportAction::Restart,
            DropletOp::Pull { .. } => SupportAction::SidecarCommand,
        }
    }

    fn details(&self) -> serde_json::Value {
        let action = self.command().name().code();
        match self {
            DropletOp::Logs { lines } => serde_json::json!({ "action": action, "lines": lines }),
            DropletOp::Pull { image } => serde_json::json!({ "action": action, "image": image }),
            _ => serde_json::json!({ "action": action }),
        }
    }
}

/// An image reference the sidecar can pull: no blanks, and a tag or a digest (a bare name
/// would pull whatever `latest` is that day).
pub fn is_image_reference(image: &str) -> bool {
    let Some(last) = image.rsplit('/').next() else {
        return false;
    };
    !image.is_empty()
        && image.len() <= 512
        && !image.chars().any(|c| c.is_whitespace() || c.is_control())
        && (last.contains(':') || image.contains('@'))
}

/// What the sidecar answered.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DropletOpResult {
    /// The droplet (our id).
    pub droplet_id: uuid::Uuid,
    /// The command sent, e.g. `GET_LOGS`.
    pub action: String,
    /// The sidecar's reply.
    pub reply: CommandReply,
}

/// States in which a droplet's sidecar may be asked anything: it has handshaken and its
/// machine is on. A zombie is included on purpose: its logs are what an operator wants.
pub(crate) fn reachable(state: DropletState) -> bool {
    matches!(
        state,
        DropletState::ActiveHealthy
            | DropletState::ActiveDegraded
            | DropletState::DriftDetected
            | DropletState::Zombie
            | DropletState::Maintenance
    )
}

/// Sends `op` to the sidecar of droplet `raw_id` for `caller`, once its support grant (if
/// it needs one) allows it; audited with the grant.
pub async fn run(
    state: &AppState,
    raw_id: &str,
    op: &DropletOp,
    caller: Caller<'_>,
) -> Result<DropletOpResult, Problem> {
    let (db, droplet) = locate(state, raw_id).await?;
    let authority = authorise(&db, caller, droplet.workspace_id, op.support_action()).await?;
    send_audited(state, &db, &droplet, &authority, op.command(), op.details()).await
}

/// Audits `command` under `authority` (with `details`), then sends it to `droplet`'s
/// sidecar: a command the audit log cannot record is not sent.
async fn send_audited(
    state: &AppState,
    db: &genesis_store::Database,
    droplet: &genesis_store::Droplet,
    authority: &Authority,
    command: Command,
    details: serde_json::Value,
) -> Result<DropletOpResult, Problem> {
    let (ip, provider) = address(state, droplet).await?;
    db.audit_record(&authority.action_taken(droplet.workspace_id, droplet.id.to_string(), details))
        .await?;
    let reply = send(state, droplet, &ip, provider, &command).await?;
    Ok(DropletOpResult {
        droplet_id: droplet.id.as_uuid(),
        action: command.name().code().to_owned(),
        reply,
    })
}

/// Installs `public_key` on droplet `raw_id` for `caller`'s Emergency grant (spec 63.3):
/// the key lives exactly as long as the grant (the sidecar writes the grant's expiry into
/// the line, so sshd refuses it after that, whatever else happens). Audited with the key's
/// fingerprint and the grant, before it is sent.
pub async fn install_ssh_key(
    state: &AppState,
    raw_id: &str,
    public_key: &str,
    caller: Caller<'_>,
) -> Result<DropletOpResult, Problem> {
    let (db, droplet) = locate(state, raw_id).await?;
    let authority = authorise(&db, caller, droplet.workspace_id, SupportAction::Ssh).await?;
    let grant = match authority.grant {
        Some(id) => db.support_grant_get(id).await?,
        None => return Err(Problem::forbidden("SSH needs a live Emergency grant.")),
    };
    let Some(expires_at) = grant.expires_at else {
        return Err(Problem::forbidden("SSH needs a live Emergency grant."));
    };
    let public_key = public_key.trim();
    let fingerprint = genesis_protocol::ssh_key::parse(public_key)
        .map_err(|e| Problem::invalid_field("public_key", e))?
        .fingerprint()
        .to_owned();
    let command = Command::InstallSshKey {
        public_key: public_key.to_owned(),
        expires_at: expires_at.timestamp(),
        grant: grant.id.to_string(),
    };
    let details = serde_json::json!({
        "action": command.name().code(),
        "fingerprint": fingerprint,
        "expires_at": expires_at,
    });
    send_audited(state, &db, &droplet, &authority, command, details).await
}

/// Takes grant `grant`'s SSH keys off workspace `ws`'s live droplets, best effort: a key
/// left behind still dies at its expiry, which sshd and the sidecar both enforce.
pub async fn remove_ssh_keys(state: &AppState, ws: genesis_core::WorkspaceId, grant: uuid::Uuid) {
    let Ok((_, db)) = state.stores.workspace_find(ws).await else {
        return;
    };
    let Ok(droplets) = db.droplet_live_for_workspace(ws).await else {
        return;
    };
    let command = Command::RemoveSshKey {
        grant: grant.to_string(),
    };
    for droplet in droplets {
        let sent = match address(state, &droplet).await {
            Ok((ip, provider)) => send(state, &droplet, &ip, provider, &command).await,
            Err(p) => Err(p),
        };
        if let Err(p) = sent {
            tracing::warn!(droplet = %droplet.id, %grant, detail = %p.detail, "a support SSH key was not removed; it expires on its own");
        }
    }
}

/// Sends `command` to `droplet`'s sidecar at `ip` (from [`address`]).
pub(crate) async fn send(
    state: &AppState,
    droplet: &genesis_store::Droplet,
    ip: &str,
    provider: i64,
    command: &Command,
) -> Result<CommandReply, Problem> {
    let Some(igniter) = state.igniter.clone() else {
        return Err(Problem::unavailable(
            "this control plane has no cloud configured; it cannot reach droplets",
        ));
    };
    igniter
        .sidecar()
        .send(ip, droplet.workspace_id.as_uuid(), provider, command)
        .await
        .map_err(command_problem)
}

/// Where `droplet`'s sidecar takes commands: its public address and cloud id, asked of the
/// cloud; refused (409) while the droplet is in a state that takes none.
pub(crate) async fn address(
    state: &AppState,
    droplet: &genesis_store::Droplet,
) -> Result<(String, i64), Problem> {
    if state.igniter.is_none() {
        return Err(Problem::unavailable(
            "this control plane has no cloud configured; it cannot reach droplets",
        ));
    }
    if !reachable(droplet.state) {
        return Err(Problem::conflict(
            "state",
            format!(
                "the droplet is {}; its sidecar takes commands once it is active",
                droplet.state.code()
            ),
        ));
    }
    public_address(state, droplet).await
}

/// `droplet`'s public address and cloud id, asked of the cloud, whatever its state (a
/// powered-off droplet keeps its address).
pub(crate) async fn public_address(
    state: &AppState,
    droplet: &genesis_store::Droplet,
) -> Result<(String, i64), Problem> {
    let Some(igniter) = state.igniter.clone() else {
        return Err(Problem::unavailable(
            "this control plane has no cloud configured; it cannot reach droplets",
        ));
    };
    let provider = droplet
        .provider_id
        .ok_or_else(|| Problem::conflict("state", "the droplet has no cloud id yet"))?;
    let ip = igniter
        .cloud()
        .droplet_get(provider)
        .await
        .map_err(|e| Problem::unavailable(format!("the cloud API did not answer: {e}")))?
        .public_ipv4()
        .map(str::to_owned)
        .ok_or_else(|| Problem::conflict("state", "the droplet has no public address"))?;
    Ok((ip, provider))
}

/// A sidecar's refusal or failure, for people: 504 when it could not be reached, 502 when
/// it refused or the command failed on the droplet.
fn command_problem(e: CommandError) -> Problem {
    match e {
        CommandError::Unreachable(m) => {
            Problem::gateway_timeout(format!("the droplet's sidecar did not answer: {m}"))
        }
        CommandError::Refused { status, .. } => Problem::bad_gateway(format!(
            "the droplet's sidecar refused the command (HTTP {status}); see its refusal counts"
        )),
        CommandError::Failed(f) => Problem::bad_gateway(format!(
            "the command failed on the droplet: {} ({})",
            f.message, f.code
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_need_a_tag_or_digest() {
        for ok in [
            "n8nio/n8n:2.8.4",
            "registry.example.com:5000/n8nio/n8n:2.8.4",
            "n8nio/n8n@sha256:0123456789abcdef",
        ] {
            assert!(is_image_reference(ok), "{ok}");
        }
        for bad in [
            "",
            "n8nio/n8n",
            "registry.example.com:5000/n8nio/n8n",
            "n8nio/n8n:2.8.4 --privileged",
            "n8n\n:1",
        ] {
            assert!(!is_image_reference(bad), "{bad:?}");
        }
    }

    #[test]
    fn log_lines_are_bounded() {
        assert_eq!(
            DropletOp::parse("logs", None, None).ok(),
            Some(DropletOp::Logs {
                lines: DEFAULT_LOG_LINES
            })
        );
        for bad in [0, MAX_LOG_LINES + 1] {
            let p = DropletOp::parse("logs", Some(bad), None).err();
            assert_eq!(p.and_then(|p| p.field).as_deref(), Some("lines"));
        }
        assert_eq!(
            DropletOp::parse("reboot", None, None)
                .err()
                .map(|p| p.status),
            Some(404)
        );
        assert_eq!(
            DropletOp::parse("pull", None, Some("n8nio/n8n"))
                .err()
                .and_then(|p| p.field)
                .as_deref(),
            Some("image")
        );
    }
}
