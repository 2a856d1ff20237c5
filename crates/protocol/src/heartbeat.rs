//! Heartbeats (spec 54.1) and metric reports (spec 44.2, aggregate counts only).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::jwt::{Refusal, RefusalReason};

/// What the sidecar sees of its n8n.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum N8nStatus {
    /// Answers its readiness probe.
    Running,
    /// Starting (not ready yet).
    Starting,
    /// Not running.
    Stopped,
    /// Running but failing its probe.
    Unhealthy,
}

/// `POST /api/v1/sidecar/heartbeat`, every `heartbeat_interval_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Tenant.
    pub workspace_id: Uuid,
    /// Cloud droplet id.
    pub droplet_id: i64,
    /// The sidecar's own view of its state (e.g. `ready`, `bootstrapping`).
    pub state: String,
    /// n8n's status.
    pub n8n_status: N8nStatus,
    /// n8n's process id, when running.
    pub n8n_pid: Option<u32>,
    /// Active workflows.
    pub active_workflows: u32,
    /// Executions waiting or running.
    pub pending_executions: u32,
    /// Host CPU use, percent.
    pub cpu_usage_percent: f32,
    /// Host memory in use, MiB.
    pub memory_usage_mb: u64,
    /// Memory in all, MiB (0 when unknown; the control plane then assumes 1 GiB, spec
    /// 50.1's smallest droplet).
    #[serde(default)]
    pub memory_total_mb: u64,
    /// Root filesystem use, percent.
    pub disk_usage_percent: f32,
    /// Seconds since n8n (the container) started.
    pub uptime_seconds: u64,
    /// The latest commands refused since the last heartbeat, at most 20 (spec 51.3's audit
    /// trail); `refusal_counts` counts them all.
    #[serde(default)]
    pub refused_commands: Vec<Refusal>,
    /// Every command refused since the last heartbeat, by reason (rate-limited requests
    /// included, which are never listed one by one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refusal_counts: BTreeMap<RefusalReason, u64>,
    /// What n8n runs (spec 43.1: the watchdog compares it with the database).
    #[serde(default)]
    pub workflows: Vec<WorkflowState>,
    /// Which credentials n8n holds (never their data).
    #[serde(default)]
    pub credentials: Vec<CredentialState>,
    /// When the sidecar began reading `workflows` and `credentials` (Unix ms, its clock);
    /// absent when it could not read them whole, and then the lists mean nothing. The
    /// watchdog compares only inventories taken after the database last changed what the
    /// droplet should run, so a report older than a deploy never reads as drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_at_ms: Option<i64>,
    /// The ids of the command keys this sidecar trusts, sorted (a key rotation waits for
    /// every sidecar to report the next key before signing with it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_key_ids: Vec<String>,
}

/// One workflow as n8n reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// n8n's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is active.
    pub active: bool,
    /// The Golden Template version it was deployed from (its `tpl:` tag), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version: Option<String>,
}

/// One credential as n8n reports it (never its data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialState {
    /// n8n's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// When its OAuth token expires (Unix seconds), when known.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// `POST /api/v1/sidecar/metrics`, every `metrics_interval_s`: counts, never lead data.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsReport {
    /// Executions in the period.
    pub total_executions: u64,
    /// Share that succeeded, 0..=1 (1 when there were none).
    pub success_rate: f64,
    /// Mean duration, ms.
    pub avg_duration_ms: u64,
    /// Emails sent (counted from workflow results, no content).
    pub email_sent_count: u64,
    /// Error counts by type (node type or error class, never a message).
    pub error_types: BTreeMap<String, u64>,
    /// The period counted, Unix milliseconds, start included and end excluded: the
    /// executions that started in it. The next report starts where this one ended, so the
    /// control plane can add reports up into the fleet's history without counting an
    /// execution twice, and drop a report it already has (a retried delivery). A report
    /// without a period is kept as the droplet's latest figures only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start_ms: Option<i64>,
    /// End of the period (see `period_start_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end_ms: Option<i64>,
}
