//! The 13 commands of spec 51.4, `SET_TRACKING_DOMAINS` for spec 61.4's tracking domains,
//! and `INSTALL_SSH_KEY`/`REMOVE_SSH_KEY` for spec 63.3's Emergency support tier:
//! `POST /sidecar/v1/commands` with a signed JWT whose `action` must equal the body's
//! `action`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::heartbeat::{MetricsReport, N8nStatus};
use crate::sealed::SealedSecret;

/// A command's name, as in the JWT's `action` claim and the body's `action` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandName {
    /// Current status.
    HealthCheck,
    /// Create a workflow from a Golden Template.
    DeployWorkflow,
    /// Replace a workflow's definition.
    UpdateWorkflow,
    /// Activate a workflow.
    ActivateWorkflow,
    /// Deactivate a workflow.
    DeactivateWorkflow,
    /// Delete a workflow.
    DeleteWorkflow,
    /// Create a credential from sealed data.
    InjectCredential,
    /// Replace a credential's data.
    RotateCredential,
    /// Restart n8n.
    RestartN8n,
    /// Pull an image.
    PullImage,
    /// Blue-green swap of the n8n container (spec 56.2).
    SwapContainer,
    /// Recent n8n logs.
    GetLogs,
    /// Execution metrics now.
    CollectMetrics,
    /// Serve exactly these tracking domains (spec 61.4).
    SetTrackingDomains,
    /// Install a short-lived SSH key for an Emergency support grant (spec 63.3).
    InstallSshKey,
    /// Remove the SSH keys of a support grant.
    RemoveSshKey,
}

impl CommandName {
    /// All 16.
    pub const ALL: [CommandName; 16] = [
        CommandName::HealthCheck,
        CommandName::DeployWorkflow,
        CommandName::UpdateWorkflow,
        CommandName::ActivateWorkflow,
        CommandName::DeactivateWorkflow,
        CommandName::DeleteWorkflow,
        CommandName::InjectCredential,
        CommandName::RotateCredential,
        CommandName::RestartN8n,
        CommandName::PullImage,
        CommandName::SwapContainer,
        CommandName::GetLogs,
        CommandName::CollectMetrics,
        CommandName::SetTrackingDomains,
        CommandName::InstallSshKey,
        CommandName::RemoveSshKey,
    ];

    /// The wire name.
    pub fn code(self) -> &'static str {
        match self {
            CommandName::HealthCheck => "HEALTH_CHECK",
            CommandName::DeployWorkflow => "DEPLOY_WORKFLOW",
            CommandName::UpdateWorkflow => "UPDATE_WORKFLOW",
            CommandName::ActivateWorkflow => "ACTIVATE_WORKFLOW",
            CommandName::DeactivateWorkflow => "DEACTIVATE_WORKFLOW",
            CommandName::DeleteWorkflow => "DELETE_WORKFLOW",
            CommandName::InjectCredential => "INJECT_CREDENTIAL",
            CommandName::RotateCredential => "ROTATE_CREDENTIAL",
            CommandName::RestartN8n => "RESTART_N8N",
            CommandName::PullImage => "PULL_IMAGE",
            CommandName::SwapContainer => "SWAP_CONTAINER",
            CommandName::GetLogs => "GET_LOGS",
            CommandName::CollectMetrics => "COLLECT_METRICS",
            CommandName::SetTrackingDomains => "SET_TRACKING_DOMAINS",
            CommandName::InstallSshKey => "INSTALL_SSH_KEY",
            CommandName::RemoveSshKey => "REMOVE_SSH_KEY",
        }
    }

    /// Parses a wire name.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A credential a template node should use in this tenant's n8n.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRef {
    /// n8n's credential id.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// How to turn a Golden Template into this tenant's workflow (spec 53.2, 53.3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TemplateMapping {
    /// Credential placeholder (e.g. `TEMPLATE_GMAIL_UUID`) → this tenant's credential.
    pub credentials: BTreeMap<String, CredentialRef>,
    /// Variable placeholder (e.g. `YOUR_WORKSPACE_ID`) → value.
    pub variables: BTreeMap<String, String>,
}

/// A command and its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    content = "payload",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum Command {
    /// Current status.
    HealthCheck,
    /// Create a workflow from a template.
    DeployWorkflow {
        /// The Golden Template (n8n workflow JSON with placeholders).
        template: serde_json::Value,
        /// Placeholders to replace.
        mapping: TemplateMapping,
        /// Activate after creating.
        #[serde(default)]
        activate: bool,
        /// The Golden Template version, recorded on the workflow as an n8n tag so the
        /// watchdog can tell which version runs (spec 43.2 `version_mismatch`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template_version: Option<String>,
    },
    /// Replace a workflow's definition with a newly mapped template.
    UpdateWorkflow {
        /// n8n's workflow id.
        workflow_id: String,
        /// The template.
        template: serde_json::Value,
        /// Placeholders to replace.
        mapping: TemplateMapping,
        /// The Golden Template version (see `DeployWorkflow`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template_version: Option<String>,
        /// Activate after updating when n8n has it inactive (a redeploy by id keeps the
        /// active flag the control plane wants, as `DeployWorkflow` does).
        #[serde(default)]
        activate: bool,
    },
    /// Activate.
    ActivateWorkflow {
        /// n8n's workflow id.
        workflow_id: String,
    },
    /// Deactivate.
    DeactivateWorkflow {
        /// n8n's workflow id.
        workflow_id: String,
    },
    /// Delete.
    DeleteWorkflow {
        /// n8n's workflow id.
        workflow_id: String,
    },
    /// Create a credential.
    InjectCredential {
        /// Display name.
        name: String,
        /// n8n credential type, e.g. `gmailOAuth2`.
        credential_type: String,
        /// The credential's data (JSON), sealed to the sidecar's key.
        data: SealedSecret,
    },
    /// Replace a credential's data.
    RotateCredential {
        /// n8n's credential id.
        credential_id: String,
        /// New data, sealed.
        data: SealedSecret,
    },
    /// Restart n8n.
    RestartN8n,
    /// Pull an image (by digest).
    PullImage {
        /// Image reference.
        image: String,
    },
    /// Blue-green swap to `image` (spec 56.2).
    SwapContainer {
        /// New image reference.
        image: String,
        /// Longest wait for a quiet period (no pending executions), seconds.
        #[serde(default = "default_quiet_wait")]
        quiet_wait_s: u64,
    },
    /// Recent logs.
    GetLogs {
        /// How many lines, newest last.
        #[serde(default = "default_log_lines")]
        lines: u32,
    },
    /// Metrics now.
    CollectMetrics,
    /// Serve exactly `hosts` as tracking domains (spec 61.4): the sidecar writes them into
    /// Caddy's tracking route through its admin API, and Caddy obtains their certificates.
    /// The whole list each time, so the command is idempotent and a lost one is healed by
    /// the next.
    SetTrackingDomains {
        /// Lower-case host names; empty removes the route.
        hosts: Vec<String>,
    },
    /// Let `public_key` log in over SSH until `expires_at` (spec 63.3's Emergency tier):
    /// the sidecar writes it to the droplet's `authorized_keys` with OpenSSH's own
    /// `expiry-time`, so it stops working then even if nothing removes it, and removes it.
    InstallSshKey {
        /// One OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
        public_key: String,
        /// When it stops working (Unix seconds).
        expires_at: i64,
        /// The support grant it is for; it names the key in the file.
        grant: String,
    },
    /// Remove every key installed for `grant`.
    RemoveSshKey {
        /// The support grant.
        grant: String,
    },
}

fn default_quiet_wait() -> u64 {
    120
}

fn default_log_lines() -> u32 {
    200
}

impl Command {
    /// The name the JWT's `action` must carry.
    pub fn name(&self) -> CommandName {
        match self {
            Command::HealthCheck => CommandName::HealthCheck,
            Command::DeployWorkflow { .. } => CommandName::DeployWorkflow,
            Command::UpdateWorkflow { .. } => CommandName::UpdateWorkflow,
            Command::ActivateWorkflow { .. } => CommandName::ActivateWorkflow,
            Command::DeactivateWorkflow { .. } => CommandName::DeactivateWorkflow,
            Command::DeleteWorkflow { .. } => CommandName::DeleteWorkflow,
            Command::InjectCredential { .. } => CommandName::InjectCredential,
            Command::RotateCredential { .. } => CommandName::RotateCredential,
            Command::RestartN8n => CommandName::RestartN8n,
            Command::PullImage { .. } => CommandName::PullImage,
            Command::SwapContainer { .. } => CommandName::SwapContainer,
            Command::GetLogs { .. } => CommandName::GetLogs,
            Command::CollectMetrics => CommandName::CollectMetrics,
            Command::SetTrackingDomains { .. } => CommandName::SetTrackingDomains,
            Command::InstallSshKey { .. } => CommandName::InstallSshKey,
            Command::RemoveSshKey { .. } => CommandName::RemoveSshKey,
        }
    }
}

/// How a blue-green swap ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SwapOutcome {
    /// The new container is serving.
    Swapped {
        /// The new container's pid.
        new_pid: Option<u32>,
    },
    /// The new container failed its health check; the old one serves again.
    RolledBack {
        /// Why.
        reason: String,
    },
}

/// A command's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(
    tag = "action",
    content = "result",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum CommandReply {
    /// Status.
    HealthCheck {
        /// n8n.
        n8n_status: N8nStatus,
        /// Disk, percent.
        disk_usage_percent: f32,
        /// Memory, MiB.
        memory_usage_mb: u64,
        /// CPU, percent.
        cpu_usage_percent: f32,
    },
    /// Created.
    DeployWorkflow {
        /// n8n's id.
        workflow_id: String,
        /// Production webhook URL, when the workflow starts with a Webhook node.
        webhook_url: Option<String>,
    },
    /// Updated.
    UpdateWorkflow {
        /// Always true (failures are errors).
        success: bool,
        /// Production webhook URL, when the workflow starts with a Webhook node (a new
        /// template version may move it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        webhook_url: Option<String>,
    },
    /// Activated.
    ActivateWorkflow {
        /// Always true.
        success: bool,
    },
    /// Deactivated.
    DeactivateWorkflow {
        /// Always true.
        success: bool,
    },
    /// Deleted.
    DeleteWorkflow {
        /// Always true.
        success: bool,
    },
    /// Created.
    InjectCredential {
        /// n8n's id.
        credential_id: String,
    },
    /// Rotated.
    RotateCredential {
        /// Always true.
        success: bool,
    },
    /// Restarted.
    RestartN8n {
        /// Always true.
        success: bool,
        /// The new process id.
        new_pid: Option<u32>,
    },
    /// Pulled.
    PullImage {
        /// Always true.
        success: bool,
    },
    /// Swapped or rolled back.
    SwapContainer(SwapOutcome),
    /// Logs.
    GetLogs {
        /// Lines, newest last.
        logs: Vec<String>,
    },
    /// Metrics.
    CollectMetrics(MetricsReport),
    /// The tracking domains Caddy now serves.
    SetTrackingDomains {
        /// As asked.
        hosts: Vec<String>,
    },
    /// The key is installed.
    InstallSshKey {
        /// Its SHA-256 fingerprint, as `ssh-keygen -l` prints it (`SHA256:…`).
        fingerprint: String,
        /// When it stops working (Unix seconds).
        expires_at: i64,
    },
    /// The grant's keys are gone.
    RemoveSshKey {
        /// How many lines were removed (0 when there were none).
        removed: u32,
    },
}

/// Why an accepted command failed: the sidecar's stable codes, in one place for the sidecar
/// (which sends them and picks the HTTP status) and the control plane (which decides from
/// them whether to retry). On the wire, snake_case (`n8n_unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    /// n8n has no such workflow or credential.
    N8nNotFound,
    /// n8n refused the request as invalid.
    N8nRejected,
    /// n8n refused the sidecar's API key.
    N8nUnauthorized,
    /// n8n did not answer (starting, restarting, down).
    N8nUnavailable,
    /// n8n answered with an error of its own.
    N8nError,
    /// The template names a credential the mapping does not have.
    UnknownCredential,
    /// The template is not a workflow.
    NotAWorkflow,
    /// A placeholder of the template has no value.
    UnmappedPlaceholder,
    /// The sealed secret could not be opened or read.
    SealedSecret,
    /// The container runtime failed (pull, start, stop).
    Runtime,
    /// A container swap failed and so did putting the old container back.
    RollbackFailed,
    /// The web front (Caddy's admin API) did not answer, or refused the change.
    WebFront,
    /// The command's arguments are not acceptable (a host name that is not one).
    BadArgument,
    /// A code this build does not know (a newer sidecar's).
    #[serde(other)]
    Unknown,
}

impl FailureCode {
    /// Whether the same command may succeed later without anything changing: n8n or Caddy
    /// was not answering (starting, restarting). A runtime failure is not: a missing image stays
    /// missing.
    pub fn is_transient(self) -> bool {
        matches!(self, FailureCode::N8nUnavailable | FailureCode::WebFront)
    }

    /// The HTTP status the sidecar answers with: 502 when something behind it failed,
    /// 404 when n8n has no such thing, 422 when the command cannot be carried out.
    pub fn http_status(self) -> u16 {
        match self {
            FailureCode::N8nUnavailable
            | FailureCode::Runtime
            | FailureCode::RollbackFailed
            | FailureCode::WebFront
            | FailureCode::N8nError => 502,
            FailureCode::N8nNotFound => 404,
            _ => 422,
        }
    }

    /// The wire code.
    pub fn code(self) -> &'static str {
        match self {
            FailureCode::N8nNotFound => "n8n_not_found",
            FailureCode::N8nRejected => "n8n_rejected",
            FailureCode::N8nUnauthorized => "n8n_unauthorized",
            FailureCode::N8nUnavailable => "n8n_unavailable",
            FailureCode::N8nError => "n8n_error",
            FailureCode::UnknownCredential => "unknown_credential",
            FailureCode::NotAWorkflow => "not_a_workflow",
            FailureCode::UnmappedPlaceholder => "unmapped_placeholder",
            FailureCode::SealedSecret => "sealed_secret",
            FailureCode::Runtime => "runtime",
            FailureCode::RollbackFailed => "rollback_failed",
            FailureCode::WebFront => "web_front",
            FailureCode::BadArgument => "bad_argument",
            FailureCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A command that failed after it was accepted (the JWT was fine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandFailure {
    /// The command.
    pub action: CommandName,
    /// Why.
    pub code: FailureCode,
    /// Human explanation naming what was wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_codes_keep_their_wire_names_and_tolerate_new_ones() {
        for (c, wire) in [
            (FailureCode::N8nUnavailable, "n8n_unavailable"),
            (FailureCode::UnmappedPlaceholder, "unmapped_placeholder"),
            (FailureCode::RollbackFailed, "rollback_failed"),
        ] {
            assert_eq!(serde_json::json!(c), serde_json::json!(wire));
            assert_eq!(c.code(), wire);
        }
        let newer: FailureCode =
            serde_json::from_value(serde_json::json!("disk_full")).expect("unknown code");
        assert_eq!(newer, FailureCode::Unknown);
        assert!(FailureCode::N8nUnavailable.is_transient());
        assert!(!FailureCode::N8nRejected.is_transient());
    }

    #[test]
    fn wire_names_round_trip_and_match_the_body_tag() {
        for c in CommandName::ALL {
            assert_eq!(CommandName::from_code(c.code()), Some(c));
            assert_eq!(
                serde_json::to_value(c).expect("json"),
                serde_json::json!(c.code())
            );
        }
        let cmd = Command::ActivateWorkflow {
            workflow_id: "w1".into(),
        };
        let v = serde_json::to_value(&cmd).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"action": "ACTIVATE_WORKFLOW", "payload": {"workflow_id": "w1"}})
        );
        assert_eq!(cmd.name().code(), v["action"]);
        let back: Command = serde_json::from_value(v).expect("parse");
        assert_eq!(back, cmd);
        let bare: Command =
            serde_json::from_str(r#"{"action":"HEALTH_CHECK"}"#).expect("unit command");
        assert_eq!(bare, Command::HealthCheck);
    }
}
