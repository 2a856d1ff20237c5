//! Running the 13 commands of spec 51.4 against the local n8n and its runtime, and
//! `SET_TRACKING_DOMAINS` against the web front ([`crate::front`]). Every failure is a
//! [`CommandFailure`] with a stable code and a message naming what was wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use genesis_n8n::{MapError, N8n, N8nError, WorkflowDraft, map_template, verify_credentials};
use genesis_protocol::command::{CommandFailure, FailureCode, SwapOutcome, TemplateMapping};
use genesis_protocol::{Command, CommandName, CommandReply, MetricsReport, N8nStatus, SealingKey};

use crate::expiry::CredentialExpiry;
use crate::runtime::ContainerRuntime;
use crate::sysstats::{self, CpuMeter};

/// Node types that send email (for `email_sent_count`).
const EMAIL_NODES: [&str; 3] = [
    "n8n-nodes-base.gmail",
    "n8n-nodes-base.emailSend",
    "n8n-nodes-base.microsoftOutlook",
];

/// Runs commands. Shared by the command endpoint and the heartbeat loop.
pub struct Executor<R> {
    /// n8n's public API.
    pub n8n: N8n,
    /// n8n's container.
    pub runtime: Arc<R>,
    sealing: Arc<SealingKey>,
    webhook_base_url: String,
    http: reqwest::Client,
    ready_timeout: Duration,
    cpu: CpuMeter,
    stats: sysstats::HostStats,
    /// OAuth expiry of the credentials this sidecar injected (in memory unless
    /// [`Executor::with_credential_expiry`] gives it a file).
    pub expiry: CredentialExpiry,
    /// Held while n8n's container is being restarted or swapped: a second such command (a
    /// retry from a caller that gave up waiting) waits for the first instead of finding n8n
    /// down half-way.
    container: tokio::sync::Mutex<()>,
    /// n8n's tag ids by name, as learned: a rollout tags every workflow with the same
    /// version tag, and remembering its id saves a tag listing per workflow. A tag deleted
    /// in n8n since is noticed when n8n refuses its id, and looked up again.
    tag_ids: std::sync::Mutex<BTreeMap<String, String>>,
    /// Credential ids n8n listed lately, and when: see [`CREDENTIALS_FRESH`].
    known_credentials: std::sync::Mutex<Option<(Instant, BTreeSet<String>)>>,
    /// Caddy's admin API and the tracking domains last asked for (none: no web front, as
    /// in tests that run the sidecar alone).
    front: Option<(crate::front::WebFront, crate::front::TrackingDomains)>,
    /// Where support SSH keys go (spec 63.3's Emergency tier); none refuses them.
    pub ssh_keys: crate::ssh_keys::SshKeys,
}

/// How long a listing of n8n's credentials vouches for the ids in it. A deploy checks that
/// every credential its workflow names exists; a rollout deploys a droplet's workflows one
/// after the other within a fraction of a second, and listing the credentials before each
/// was a quarter of the sidecar's requests to n8n. An id missing from a fresh listing is
/// looked up again (it may have just been injected); only a credential deleted in n8n's own
/// interface within this window goes unseen, and n8n then reports it on the workflow's
/// first execution.
pub const CREDENTIALS_FRESH: Duration = Duration::from_secs(10);

fn fail(action: CommandName, code: FailureCode, message: impl Into<String>) -> CommandFailure {
    CommandFailure {
        action,
        code,
        message: message.into(),
    }
}

fn ssh_failure(action: CommandName, e: crate::ssh_keys::SshKeyError) -> CommandFailure {
    let code = match &e {
        crate::ssh_keys::SshKeyError::Io(_) => FailureCode::Runtime,
        _ => FailureCode::BadArgument,
    };
    fail(action, code, e.to_string())
}

fn n8n_failure(action: CommandName, e: N8nError) -> CommandFailure {
    let code = match &e {
        N8nError::NotFound(_) => FailureCode::N8nNotFound,
        N8nError::BadRequest(_) => FailureCode::N8nRejected,
        N8nError::Unauthorized(_) => FailureCode::N8nUnauthorized,
        N8nError::Transport(_) => FailureCode::N8nUnavailable,
        _ => FailureCode::N8nError,
    };
    fail(action, code, e.to_string())
}

fn map_failure(action: CommandName, e: MapError) -> CommandFailure {
    let code = match &e {
        MapError::UnknownCredential { .. } => FailureCode::UnknownCredential,
        MapError::NotAWorkflow(_) => FailureCode::NotAWorkflow,
        _ => FailureCode::UnmappedPlaceholder,
    };
    fail(action, code, e.to_string())
}

impl<R: ContainerRuntime> Executor<R> {
    /// An executor for one droplet.
    pub fn new(
        n8n: N8n,
        runtime: Arc<R>,
        sealing: Arc<SealingKey>,
        webhook_base_url: String,
        http: reqwest::Client,
        ready_timeout: Duration,
        stats: sysstats::HostStats,
    ) -> Self {
        Self {
            n8n,
            runtime,
            sealing,
            webhook_base_url: webhook_base_url.trim_end_matches('/').to_owned(),
            http,
            ready_timeout,
            cpu: CpuMeter::default(),
            stats,
            expiry: CredentialExpiry::default(),
            container: tokio::sync::Mutex::new(()),
            tag_ids: std::sync::Mutex::new(BTreeMap::new()),
            known_credentials: std::sync::Mutex::new(None),
            front: None,
            ssh_keys: crate::ssh_keys::SshKeys::new(None),
        }
    }

    /// Installs support SSH keys into `keys`.
    pub fn with_ssh_keys(mut self, keys: crate::ssh_keys::SshKeys) -> Self {
        self.ssh_keys = keys;
        self
    }

    /// Serves tracking domains through `front`, remembering them in `saved`.
    pub fn with_front(
        mut self,
        front: crate::front::WebFront,
        saved: crate::front::TrackingDomains,
    ) -> Self {
        self.front = Some((front, saved));
        self
    }

    /// Keeps the credential expiry notes in `notes` (a file in the state directory, so a
    /// restarted sidecar still reports them).
    pub fn with_credential_expiry(mut self, notes: CredentialExpiry) -> Self {
        self.expiry = notes;
        self
    }

    /// n8n's readiness, from its probe and the runtime.
    pub async fn n8n_status(&self) -> N8nStatus {
        if !self.runtime.status().await.running {
            return N8nStatus::Stopped;
        }
        let ready = self
            .http
            .get(format!("{}/healthz/readiness", self.n8n.base_url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match ready {
            Ok(r) if r.status().is_success() => N8nStatus::Running,
            Ok(_) => N8nStatus::Unhealthy,
            Err(_) => N8nStatus::Starting,
        }
    }

    /// CPU %, memory MiB, disk %.
    pub fn host(&self) -> (f32, u64, f32) {
        let h = self.host_sample();
        (h.cpu_percent, h.memory_used_mb, h.disk_percent)
    }

    /// Every resource figure a heartbeat carries.
    pub fn host_sample(&self) -> sysstats::HostSample {
        self.stats.read(&self.cpu)
    }

    async fn mapped_draft(
        &self,
        action: CommandName,
        template: &serde_json::Value,
        mapping: &TemplateMapping,
    ) -> Result<WorkflowDraft, CommandFailure> {
        let mapped = map_template(template, mapping).map_err(|e| map_failure(action, e))?;
        if !self.lately_listed(&mapped) {
            let existing: BTreeSet<String> = self
                .n8n
                .credential_list()
                .await
                .map_err(|e| n8n_failure(action, e))?
                .into_iter()
                .map(|c| c.id)
                .collect();
            verify_credentials(&mapped, &existing).map_err(|e| map_failure(action, e))?;
            if let Ok(mut known) = self.known_credentials.lock() {
                *known = Some((Instant::now(), existing));
            }
        }
        WorkflowDraft::from_document(&mapped).map_err(|e| n8n_failure(action, e))
    }

    /// The production URL of workflow `workflow_id`'s first Webhook node, by n8n's own rules
    /// (`genesis_n8n::webhooks`): what the control plane records and hands out.
    fn webhook_url_of(&self, workflow_id: &str, draft: &WorkflowDraft) -> Option<String> {
        genesis_n8n::production_webhooks(workflow_id, &draft.nodes)
            .first()
            .map(|h| h.url(&self.webhook_base_url))
    }

    /// Whether a listing younger than [`CREDENTIALS_FRESH`] names every credential of the
    /// mapped workflow.
    fn lately_listed(&self, mapped: &serde_json::Value) -> bool {
        self.known_credentials.lock().is_ok_and(|known| {
            known.as_ref().is_some_and(|(at, ids)| {
                at.elapsed() < CREDENTIALS_FRESH && verify_credentials(mapped, ids).is_ok()
            })
        })
    }

    fn open(
        &self,
        action: CommandName,
        sealed: &genesis_protocol::SealedSecret,
    ) -> Result<serde_json::Value, CommandFailure> {
        let plain = self
            .sealing
            .open(sealed)
            .map_err(|e| fail(action, FailureCode::SealedSecret, e.to_string()))?;
        serde_json::from_slice(&plain).map_err(|_| {
            fail(
                action,
                FailureCode::SealedSecret,
                "the sealed data is not JSON",
            )
        })
    }

    async fn wait_ready(&self, timeout: Duration) -> bool {
        genesis_n8n::bootstrap::wait_ready(&self.http, self.n8n.base_url(), timeout)
            .await
            .is_ok()
    }

    /// Executions waiting or running now (asked by status, so a heartbeat never lists the
    /// whole execution history).
    pub async fn pending_executions(&self) -> Result<u32, N8nError> {
        let running = self.n8n.execution_list_by_status("running").await?.len();
        let waiting = self.n8n.execution_list_by_status("waiting").await?.len();
        Ok((running + waiting) as u32)
    }

    /// Aggregate counts over the executions n8n keeps (spec 44.2: no lead data).
    pub async fn metrics(&self) -> Result<MetricsReport, N8nError> {
        self.metrics_in(None).await
    }

    /// The same over the executions that started in `period` (Unix ms, start included, end
    /// excluded), which the report carries: what the periodic report sends, so that reports
    /// add up without counting an execution twice.
    pub async fn metrics_in(&self, period: Option<(i64, i64)>) -> Result<MetricsReport, N8nError> {
        let mut executions = self.n8n.execution_list(None).await?;
        if let Some((start, end)) = period {
            executions.retain(|e| {
                e.started_at
                    .as_deref()
                    .and_then(chrono_ms)
                    .is_some_and(|t| start <= t && t < end)
            });
        }
        let email_workflows: BTreeSet<String> = self
            .n8n
            .workflow_list()
            .await?
            .into_iter()
            .filter(|w| {
                w.nodes.iter().any(|n| {
                    n.get("type")
                        .and_then(|t| t.as_str())
                        .is_some_and(|t| EMAIL_NODES.contains(&t))
                })
            })
            .map(|w| w.id)
            .collect();
        let done: Vec<_> = executions
            .iter()
            .filter(|e| e.stopped_at.is_some())
            .collect();
        let ok = done.iter().filter(|e| e.status == "success").count();
        let durations: Vec<i64> = done
            .iter()
            .filter_map(|e| {
                let s = chrono_ms(e.started_at.as_deref()?)?;
                let t = chrono_ms(e.stopped_at.as_deref()?)?;
                Some(t - s)
            })
            .collect();
        let mut error_types: BTreeMap<String, u64> = BTreeMap::new();
        for e in done.iter().filter(|e| e.status != "success") {
            *error_types.entry(e.status.clone()).or_default() += 1;
        }
        Ok(MetricsReport {
            total_executions: executions.len() as u64,
            success_rate: if done.is_empty() {
                1.0
            } else {
                ok as f64 / done.len() as f64
            },
            avg_duration_ms: if durations.is_empty() {
                0
            } else {
                (durations.iter().sum::<i64>() / durations.len() as i64).max(0) as u64
            },
            email_sent_count: executions
                .iter()
                .filter(|e| {
                    e.status == "success"
                        && e.workflow_id
                            .as_ref()
                            .is_some_and(|w| email_workflows.contains(w))
                })
                .count() as u64,
            error_types,
            period_start_ms: period.map(|p| p.0),
            period_end_ms: period.map(|p| p.1),
        })
    }

    /// Labels `wf` with `version`'s template tag, replacing an older version's tag and
    /// keeping every other tag (an operator's own labels survive a redeploy).
    async fn tag_version(
        &self,
        wf: &genesis_n8n::Workflow,
        version: &str,
    ) -> Result<(), genesis_n8n::N8nError> {
        if wf.template_version() == Some(version) {
            return Ok(());
        }
        let name = genesis_n8n::template_tag(version);
        let with = |tag: String| {
            let mut ids: Vec<String> = wf
                .tags
                .iter()
                .filter(|t| !t.name.starts_with(genesis_n8n::TEMPLATE_TAG_PREFIX))
                .map(|t| t.id.clone())
                .collect();
            ids.push(tag);
            ids
        };
        let known = self.tag_ids.lock().ok().and_then(|m| m.get(&name).cloned());
        if let Some(tag) = known {
            match self.n8n.workflow_tags_set(&wf.id, &with(tag)).await {
                // The tag may have been deleted in n8n since: forget it, look it up again.
                Err(N8nError::BadRequest(_) | N8nError::NotFound(_)) => {
                    if let Ok(mut m) = self.tag_ids.lock() {
                        m.remove(&name);
                    }
                }
                settled => return settled,
            }
        }
        let tag = self.n8n.tag_ensure(&name).await?;
        if let Ok(mut m) = self.tag_ids.lock() {
            m.insert(name, tag.clone());
        }
        self.n8n.workflow_tags_set(&wf.id, &with(tag)).await
    }

    /// Runs one command.
    pub async fn run(&self, cmd: Command) -> Result<CommandReply, CommandFailure> {
        let action = cmd.name();
        let n8n = |e| n8n_failure(action, e);
        Ok(match cmd {
            Command::HealthCheck => {
                let (cpu, mem, disk) = self.host();
                CommandReply::HealthCheck {
                    n8n_status: self.n8n_status().await,
                    disk_usage_percent: disk,
                    memory_usage_mb: mem,
                    cpu_usage_percent: cpu,
                }
            }
            Command::DeployWorkflow {
                template,
                mapping,
                activate,
                template_version,
            } => {
                let draft = self.mapped_draft(action, &template, &mapping).await?;
                // The mapped name is the idempotency key: a retried deploy updates the
                // workflow it created the first time instead of making a second one.
                let existing = self.n8n.workflow_find(&draft.name).await.map_err(n8n)?;
                let wf = match existing {
                    Some(w) => {
                        self.n8n.workflow_update(&w.id, &draft).await.map_err(n8n)?;
                        w
                    }
                    None => self.n8n.workflow_create(&draft).await.map_err(n8n)?,
                };
                if let Some(v) = &template_version {
                    self.tag_version(&wf, v).await.map_err(n8n)?;
                }
                // n8n re-publishes an active workflow on update, so only an inactive one
                // needs the activation call (a fleet rollout saves one request per workflow).
                if activate && !wf.active {
                    self.n8n.workflow_activate(&wf.id).await.map_err(n8n)?;
                }
                CommandReply::DeployWorkflow {
                    webhook_url: self.webhook_url_of(&wf.id, &draft),
                    workflow_id: wf.id,
                }
            }
            Command::UpdateWorkflow {
                workflow_id,
                template,
                mapping,
                template_version,
                activate,
            } => {
                let draft = self.mapped_draft(action, &template, &mapping).await?;
                let wf = self
                    .n8n
                    .workflow_update(&workflow_id, &draft)
                    .await
                    .map_err(n8n)?;
                if let Some(v) = &template_version {
                    self.tag_version(&wf, v).await.map_err(n8n)?;
                }
                if activate && !wf.active {
                    self.n8n.workflow_activate(&wf.id).await.map_err(n8n)?;
                }
                CommandReply::UpdateWorkflow {
                    success: true,
                    webhook_url: self.webhook_url_of(&wf.id, &draft),
                }
            }
            Command::ActivateWorkflow { workflow_id } => {
                self.n8n
                    .workflow_activate(&workflow_id)
                    .await
                    .map_err(n8n)?;
                CommandReply::ActivateWorkflow { success: true }
            }
            Command::DeactivateWorkflow { workflow_id } => {
                self.n8n
                    .workflow_deactivate(&workflow_id)
                    .await
                    .map_err(n8n)?;
                CommandReply::DeactivateWorkflow { success: true }
            }
            Command::DeleteWorkflow { workflow_id } => {
                self.n8n.workflow_delete(&workflow_id).await.map_err(n8n)?;
                CommandReply::DeleteWorkflow { success: true }
            }
            Command::InjectCredential {
                name,
                credential_type,
                data,
            } => {
                let data = self.open(action, &data)?;
                // Name and type are the idempotency key: a retried injection replaces the
                // data of the credential it created the first time.
                let existing = self
                    .n8n
                    .credential_list()
                    .await
                    .map_err(n8n)?
                    .into_iter()
                    .find(|c| c.name == name && c.kind == credential_type);
                let id = match existing {
                    Some(c) => {
                        self.n8n.credential_patch(&c.id, &data).await.map_err(n8n)?;
                        c.id
                    }
                    None => {
                        self.n8n
                            .credential_create(&name, &credential_type, &data)
                            .await
                            .map_err(n8n)?
                            .id
                    }
                };
                self.expiry
                    .record(&id, &data, chrono::Utc::now().timestamp());
                CommandReply::InjectCredential { credential_id: id }
            }
            Command::RotateCredential {
                credential_id,
                data,
            } => {
                let data = self.open(action, &data)?;
                self.n8n
                    .credential_patch(&credential_id, &data)
                    .await
                    .map_err(n8n)?;
                self.expiry
                    .record(&credential_id, &data, chrono::Utc::now().timestamp());
                CommandReply::RotateCredential { success: true }
            }
            Command::RestartN8n => {
                let _container = self.container.lock().await;
                let pid = self
                    .runtime
                    .restart()
                    .await
                    .map_err(|e| fail(action, FailureCode::Runtime, e.to_string()))?;
                if !self.wait_ready(self.ready_timeout).await {
                    return Err(fail(
                        action,
                        FailureCode::N8nUnavailable,
                        "n8n did not come back after the restart",
                    ));
                }
                CommandReply::RestartN8n {
                    success: true,
                    new_pid: pid,
                }
            }
            Command::PullImage { image } => {
                self.runtime
                    .pull(&image)
                    .await
                    .map_err(|e| fail(action, FailureCode::Runtime, e.to_string()))?;
                CommandReply::PullImage { success: true }
            }
            Command::SwapContainer {
                image,
                quiet_wait_s,
            } => CommandReply::SwapContainer(self.swap(action, &image, quiet_wait_s).await?),
            Command::GetLogs { lines } => CommandReply::GetLogs {
                logs: self.runtime.logs(lines.min(2_000) as usize).await,
            },
            Command::CollectMetrics => {
                CommandReply::CollectMetrics(self.metrics().await.map_err(n8n)?)
            }
            Command::SetTrackingDomains { hosts } => CommandReply::SetTrackingDomains {
                hosts: self.serve_tracking(action, &hosts).await?,
            },
            Command::InstallSshKey {
                public_key,
                expires_at,
                grant,
            } => {
                let key = self
                    .ssh_keys
                    .install(
                        &grant,
                        &public_key,
                        expires_at,
                        chrono::Utc::now().timestamp(),
                    )
                    .map_err(|e| ssh_failure(action, e))?;
                tracing::info!(%grant, fingerprint = key.fingerprint(), expires_at, "support SSH key installed");
                CommandReply::InstallSshKey {
                    fingerprint: key.fingerprint().to_owned(),
                    expires_at,
                }
            }
            Command::RemoveSshKey { grant } => {
                let removed = self
                    .ssh_keys
                    .remove(&grant)
                    .map_err(|e| ssh_failure(action, e))?;
                tracing::info!(%grant, removed, "support SSH keys removed");
                CommandReply::RemoveSshKey { removed }
            }
        })
    }

    /// Makes the web front serve exactly `hosts`, and remembers them for the next start.
    async fn serve_tracking(
        &self,
        action: CommandName,
        hosts: &[String],
    ) -> Result<Vec<String>, CommandFailure> {
        let Some((front, saved)) = &self.front else {
            return Err(fail(
                action,
                FailureCode::WebFront,
                "this droplet has no web front to serve tracking domains from",
            ));
        };
        let served = front.serve_tracking(hosts).await.map_err(|e| {
            let code = match &e {
                crate::front::FrontError::BadHosts(_) => FailureCode::BadArgument,
                _ => FailureCode::WebFront,
            };
            fail(action, code, e.to_string())
        })?;
        if let Err(e) = saved.save(&served) {
            // Caddy serves them now; only a restart would forget them until the control
            // plane sends the list again.
            tracing::warn!(error = %e, "the tracking domains could not be saved");
        }
        Ok(served)
    }

    /// Serves again the tracking domains saved before a restart, retrying while Caddy
    /// starts (it may come up after the sidecar).
    pub async fn restore_tracking(&self) {
        let Some((front, saved)) = &self.front else {
            return;
        };
        let hosts = saved.load();
        if hosts.is_empty() {
            return;
        }
        use backon::Retryable as _;
        let attempt = || async { front.serve_tracking(&hosts).await };
        let outcome = attempt
            .retry(
                backon::ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(10))
                    .with_max_times(20),
            )
            .when(crate::front::FrontError::is_transient)
            .await;
        match outcome {
            Ok(h) => tracing::info!(domains = h.len(), "tracking domains served again"),
            Err(e) => tracing::warn!(error = %e, "the tracking domains could not be restored"),
        }
    }

    /// Spec 56.2: pull, wait for a quiet period (bounded), swap, health-check, roll back if
    /// the new container is unhealthy.
    async fn swap(
        &self,
        action: CommandName,
        image: &str,
        quiet_wait_s: u64,
    ) -> Result<SwapOutcome, CommandFailure> {
        let rt =
            |e: crate::runtime::RuntimeError| fail(action, FailureCode::Runtime, e.to_string());
        let _container = self.container.lock().await;
        self.runtime.pull(image).await.map_err(rt)?;
        let until = Instant::now() + Duration::from_secs(quiet_wait_s);
        loop {
            match self.pending_executions().await {
                Ok(0) => break,
                Ok(n) if Instant::now() >= until => {
                    tracing::warn!(
                        pending = n,
                        "no quiet period before the deadline; swapping anyway"
                    );
                    break;
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                Err(e) => return Err(n8n_failure(action, e)),
            }
        }
        let pid = self.runtime.swap(image).await.map_err(rt)?;
        if self.wait_ready(self.ready_timeout).await {
            return Ok(SwapOutcome::Swapped { new_pid: pid });
        }
        self.runtime.rollback().await.map_err(rt)?;
        if !self.wait_ready(self.ready_timeout).await {
            return Err(fail(
                action,
                FailureCode::RollbackFailed,
                format!("{image} was unhealthy and the previous container did not come back"),
            ));
        }
        Ok(SwapOutcome::RolledBack {
            reason: format!(
                "{image} did not pass its health check within {:?}",
                self.ready_timeout
            ),
        })
    }
}

/// Milliseconds since the epoch of an RFC 3339 timestamp.
fn chrono_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_parse_to_millis() {
        assert_eq!(super::chrono_ms("1970-01-01T00:00:01.500Z"), Some(1_500));
        assert_eq!(super::chrono_ms("garbage"), None);
    }
}
