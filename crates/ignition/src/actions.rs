//! The ignition saga's actions and undo actions, one pair per step of spec 41.1.
//!
//! # Guarantees
//! - Every action is idempotent: it first looks for what an earlier run made (the droplet by
//!   its workspace tag and name, credentials and workflows by their names in the tenant's n8n,
//!   the partition by its registry row) and adopts it.
//! - Every undo action is idempotent and tolerates "nothing to undo", so an unwind may start
//!   from a step that failed half-way, and may itself be retried after a crash.
//! - An action that must wait (a booting droplet, a handshake) returns [`Act::Wait`]; it never
//!   sleeps for long, so the executor decides whether to wait here or in a delayed job.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use genesis_cloud::{Cloud, CloudError, CreateDroplet, DropletStatus, ImageRef};
use genesis_core::{DropletEvent, DropletId, DropletState, IgnitionStep, Region, WorkspaceId};
use genesis_protocol::SealedSecret;
use genesis_protocol::command::{
    Command, CommandReply, CredentialRef, FailureCode, TemplateMapping,
};
use genesis_store::{Database, Ignition, PartitionManager, StoreError, WebhookEntry, Workspace};
use serde_json::{Value, json};

use crate::cloud_init::{IgnitionEnv, render};
use crate::igniter::{Igniter, IgnitionParams, droplet_name, workspace_tag};
use crate::outputs::{
    ActivateOutput, CredentialsOutput, DeployOutput, DeployedWorkflow, DropletOutput,
    HandshakeOutput, InjectedCredential, PartitionOutput, StepOutput,
};
use crate::sidecar_client::CommandError;
use crate::templates::WorkflowTemplate;

/// What an action did.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    /// Completed with this output (recorded in the saga log; later steps read it through
    /// its [`StepOutput`] type).
    Done(Value),
    /// Not yet: look again after this long (the step's timeout still runs).
    Wait(Duration),
}

impl Act {
    /// Completed with `output`.
    pub fn done(output: &impl StepOutput) -> Self {
        Act::Done(output.to_json())
    }
}

/// Why an action did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// It failed for good: unwind.
    #[error("{0}")]
    Fail(String),
    /// It may work later (a database blip, a sidecar still starting): try again until the
    /// step's timeout, then unwind.
    #[error("{0}")]
    Transient(String),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(_) | StoreError::VersionConflict { .. } => {
                StepError::Transient(e.to_string())
            }
            other => StepError::Fail(other.to_string()),
        }
    }
}

impl From<CommandError> for StepError {
    fn from(e: CommandError) -> Self {
        if e.is_transient() {
            StepError::Transient(e.to_string())
        } else {
            StepError::Fail(e.to_string())
        }
    }
}

/// A cloud error as a step error, by its own retryability: a rate limit or an outage is
/// worth waiting for; a refusal is not.
fn transient(e: CloudError) -> StepError {
    if e.is_retryable() {
        StepError::Transient(format!("cloud: {e}"))
    } else {
        StepError::Fail(format!("cloud: {e}"))
    }
}

/// Where a droplet is made, under what name, from which image.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// The residency region it is in (its row's region).
    pub(crate) region: Region,
    /// Its owner's residency region: the sidecar names it in its handshake, and the
    /// control plane finds the owner's database by it. A restored droplet may run outside
    /// it (spec 66.3 sends fra1's tenants to lon1).
    pub(crate) home: Region,
    /// The datacenter it is created in.
    pub(crate) datacenter: String,
    /// Its name at the cloud.
    pub(crate) name: String,
    /// What it boots from.
    pub(crate) image: ImageRef,
    /// A restore's: its cloud calls come before every other work's in the shared budget.
    pub(crate) urgent: bool,
}

impl Placement {
    /// In `region`'s first datacenter (where the platform creates droplets).
    pub(crate) fn home(region: Region, name: String, image: ImageRef) -> Self {
        Placement {
            region,
            home: region,
            datacenter: region.datacenters()[0].to_owned(),
            name,
            image,
            urgent: false,
        }
    }
}

/// Where a completed handshake left the droplet: what commands need.
pub(crate) struct Reach {
    pub(crate) ip: String,
    pub(crate) provider_id: i64,
    pub(crate) sidecar_key: String,
    /// The workspace the sidecar was booted for: every command's `sub`. A tenant's own
    /// droplet's is the tenant; a hot standby's is its pool, whatever tenant it serves.
    pub(crate) identity: uuid::Uuid,
}

impl Reach {
    /// Sends `cmd` to this droplet's sidecar, scoped to the sidecar's own identity.
    pub(crate) async fn send(
        &self,
        client: &crate::SidecarClient,
        cmd: &Command,
    ) -> Result<CommandReply, CommandError> {
        client
            .send(&self.ip, self.identity, self.provider_id, cmd)
            .await
    }

    /// Seals credential `name`'s data to this droplet's sidecar key.
    pub(crate) fn seal(&self, name: &str, data: &[u8]) -> Result<SealedSecret, StepError> {
        SealedSecret::seal(&self.sidecar_key, data)
            .map_err(|e| StepError::Fail(format!("sealing {name}: {e}")))
    }
}

pub(crate) fn reach(ig: &Ignition) -> Result<Reach, StepError> {
    let drop = DropletOutput::of(ig)?;
    let hs = HandshakeOutput::of(ig)?;
    Ok(Reach {
        identity: ig.workspace_id.as_uuid(),
        ip: drop.ip,
        provider_id: drop.provider_id,
        sidecar_key: hs.sidecar_public_key,
    })
}

/// The watchdog's rows for the workflows a deploy step reported.
fn desired_from(deployed: &DeployOutput, active: bool) -> Vec<genesis_store::DesiredWorkflowRow> {
    deployed
        .workflows
        .iter()
        .map(|w| genesis_store::DesiredWorkflowRow {
            workflow_id: w.id.clone(),
            key: w.key.clone(),
            active,
            template_version: deployed.template_version.clone(),
            error: None,
        })
        .collect()
}

pub(crate) fn params(ig: &Ignition) -> Result<IgnitionParams, StepError> {
    serde_json::from_value(ig.params.clone())
        .map_err(|e| StepError::Fail(format!("saga parameters unreadable: {e}")))
}

impl<C: Cloud> Igniter<C> {
    pub(crate) fn vault_keys(&self) -> Result<&genesis_store::MasterKeys, StepError> {
        self.vault
            .as_deref()
            .ok_or_else(|| StepError::Fail("the vault has no master key configured".into()))
    }

    /// Runs `step`'s action once.
    pub(crate) async fn act(
        &self,
        step: IgnitionStep,
        ig: &Ignition,
        ws: &Workspace,
        db: &Database,
    ) -> Result<Act, StepError> {
        match step {
            IgnitionStep::PartitionCreating => {
                let outcome = PartitionManager::new(db.clone())
                    .ensure(ws.id, &self.settings.actor)
                    .await?;
                Ok(Act::done(&PartitionOutput {
                    partition: format!("{outcome:?}"),
                }))
            }
            IgnitionStep::DropletProvisioning => self.provision_droplet(ig, ws, db).await,
            IgnitionStep::HandshakePending => {
                let droplet = db.droplet_get(ig.droplet_id).await?;
                match db.droplet_handshake_record(ig.droplet_id).await? {
                    Some((webhook_base_url, sidecar_public_key))
                        if droplet.state == DropletState::ActiveHealthy =>
                    {
                        Ok(Act::done(&HandshakeOutput {
                            webhook_base_url,
                            sidecar_public_key,
                            relay_url: db.droplet_relay_url(ig.droplet_id).await?,
                        }))
                    }
                    _ => Ok(Act::Wait(Duration::from_millis(200))),
                }
            }
            IgnitionStep::CredentialsInjecting => self.inject_credentials(ig, ws, db).await,
            IgnitionStep::WorkflowsDeploying => self.deploy_workflows(ig, ws, db).await,
            IgnitionStep::Activating => {
                let r = reach(ig)?;
                let mut deployed = DeployOutput::of(ig)?;
                if let Some(restore) = params(ig)?.restore {
                    // A restored tenant gets back the workflows it had running, no more.
                    let had = db
                        .droplet_workflows(DropletId::from_uuid(restore.replaces))
                        .await?;
                    let off: BTreeSet<String> = had
                        .into_iter()
                        .filter(|w| !w.active)
                        .map(|w| w.key)
                        .collect();
                    deployed.workflows.retain(|w| !off.contains(&w.key));
                    let rows = desired_from(&DeployOutput::of(ig)?, false)
                        .into_iter()
                        .map(|mut row| {
                            row.active = !off.contains(&row.key);
                            row
                        })
                        .collect::<Vec<_>>();
                    for w in &deployed.workflows {
                        let workflow_id = w.id.clone();
                        r.send(&self.sidecar, &Command::ActivateWorkflow { workflow_id })
                            .await?;
                    }
                    db.droplet_workflows_put(ig.droplet_id, &rows).await?;
                    return Ok(Act::done(&ActivateOutput {
                        active: deployed.workflows.len(),
                    }));
                }
                for w in &deployed.workflows {
                    let workflow_id = w.id.clone();
                    r.send(&self.sidecar, &Command::ActivateWorkflow { workflow_id })
                        .await?;
                }
                // The watchdog's desired state: these run, active.
                db.droplet_workflows_put(ig.droplet_id, &desired_from(&deployed, true))
                    .await?;
                Ok(Act::done(&ActivateOutput {
                    active: deployed.workflows.len(),
                }))
            }
        }
    }

    async fn provision_droplet(
        &self,
        ig: &Ignition,
        ws: &Workspace,
        db: &Database,
    ) -> Result<Act, StepError> {
        let actor = &self.settings.actor;
        let place = self.placement(ig, ws)?;
        let droplet = match db.droplet_get(ig.droplet_id).await {
            Ok(d) => d,
            Err(StoreError::NotFound { .. }) => {
                db.droplet_register(ig.droplet_id, ws.id, place.region, actor)
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        let provider_id = match droplet.provider_id {
            Some(p) => p,
            None => {
                // The client's create first looks for a droplet of this name among the
                // workspace's (tagged) ones and adopts it: an earlier attempt's create whose
                // outcome was never recorded is found, not made twice.
                let tag = workspace_tag(ws.id);
                let created = self
                    .create_machine(
                        db,
                        ws.id,
                        &place,
                        ig.droplet_id,
                        vec!["genesis".into(), tag],
                    )
                    .await?;
                db.droplet_set_provider(ig.droplet_id, created.id).await?;
                created.id
            }
        };
        let d = self
            .cloud_for(&place)
            .droplet_get(provider_id)
            .await
            .map_err(transient)?;
        match (d.status, d.public_ipv4()) {
            (DropletStatus::Active, Some(ip)) => {
                // The address the cloud reports is the only one the sidecar's handshake is
                // accepted from.
                db.droplet_set_address(ig.droplet_id, ip).await?;
                let current = db.droplet_get(ig.droplet_id).await?;
                if current.state == DropletState::Pending {
                    // The handshake may move it first; losing that race is fine.
                    let _ = db
                        .droplet_transition(
                            current.id,
                            current.version,
                            DropletEvent::Booted,
                            &self.settings.actor,
                        )
                        .await;
                }
                Ok(Act::done(&DropletOutput {
                    provider_id,
                    ip: ip.to_owned(),
                }))
            }
            _ => {
                let elapsed = (chrono::Utc::now() - ig.step_started_at)
                    .to_std()
                    .unwrap_or_default();
                Ok(Act::Wait(self.settings.droplet_poll.next_after(elapsed)))
            }
        }
    }

    /// Where and from what the saga makes its droplet: the tenant's region's first
    /// datacenter from the base image, or, for a restore, the failover's target from the
    /// snapshot (or the base image, re-igniting).
    pub(crate) fn placement(&self, ig: &Ignition, ws: &Workspace) -> Result<Placement, StepError> {
        let base = ImageRef::Slug(self.settings.droplet_image.clone());
        Ok(match params(ig)?.restore {
            None => Placement::home(ws.region, droplet_name(ws.slug.as_str()), base),
            Some(r) => {
                let region =
                    genesis_core::dr::region_of_datacenter(&r.datacenter).ok_or_else(|| {
                        StepError::Fail(format!("no region has datacenter {}", r.datacenter))
                    })?;
                Placement {
                    region,
                    home: ws.region,
                    name: r.droplet_name(ws.slug.as_str(), ig.id),
                    image: r.image_id.map_or(base, ImageRef::Id),
                    datacenter: r.datacenter,
                    urgent: true,
                }
            }
        })
    }

    /// Asks the cloud for a machine whose cloud-init boots a sidecar for `owner` with a
    /// fresh one-time provisioning token for droplet row `droplet`.
    pub(crate) async fn create_machine(
        &self,
        db: &Database,
        owner: WorkspaceId,
        place: &Placement,
        droplet: DropletId,
        tags: Vec<String>,
    ) -> Result<genesis_cloud::Droplet, StepError> {
        let region = place.home;
        let token = db
            .provisioning_token_issue(owner, droplet, &self.settings.actor)
            .await?;
        let env = IgnitionEnv {
            dashboard_url: self.settings.dashboard_url.clone(),
            workspace_id: owner.as_uuid(),
            provisioning_token: token,
            region: region.code().to_owned(),
        };
        let user_data = render(
            &env,
            &self.settings.images,
            &self.settings.network,
            self.settings.require_digests,
        )
        .map_err(|e| StepError::Fail(format!("cloud-init: {e}")))?;
        let datacenter = place.datacenter.as_str();
        let net = &self.settings.network;
        self.network
            .ensure_firewall(&*self.cloud, net)
            .await
            .map_err(|e| StepError::Fail(format!("cloud: fleet firewall: {e}")))?;
        let vpc_uuid = if net.use_vpc {
            self.network
                .region_vpc(&*self.cloud, datacenter)
                .await
                .map_err(|e| StepError::Fail(format!("cloud: VPC of {datacenter}: {e}")))?
        } else {
            None
        };
        let req = CreateDroplet {
            name: place.name.clone(),
            region: datacenter.to_owned(),
            size: self.settings.droplet_size.clone(),
            image: place.image.clone(),
            user_data: Some(user_data),
            tags,
            ssh_keys: Vec::new(),
            vpc_uuid,
        };
        // The client already retried 5xx and timeouts; what is left is final.
        Ok(self
            .cloud_for(place)
            .droplet_create(&req)
            .await
            .map_err(|e| StepError::Fail(format!("cloud: create droplet: {e}")))?
            .0)
    }

    async fn inject_credentials(
        &self,
        ig: &Ignition,
        ws: &Workspace,
        db: &Database,
    ) -> Result<Act, StepError> {
        let r = reach(ig)?;
        let credentials = self.inject_into(&r, ig, ws, db).await?;
        Ok(Act::done(&CredentialsOutput { credentials }))
    }

    /// Seals every credential of the ignition's parameters from the vault to `r`'s sidecar
    /// and injects it; answers, per template placeholder, the id and name n8n gave it.
    pub(crate) async fn inject_into(
        &self,
        r: &Reach,
        ig: &Ignition,
        ws: &Workspace,
        db: &Database,
    ) -> Result<BTreeMap<String, InjectedCredential>, StepError> {
        let p = params(ig)?;
        let keys = self.vault_keys()?;
        let mut injected = BTreeMap::new();
        for slot in &p.credentials {
            let secret = db
                .vault_use(
                    keys,
                    ws.id,
                    slot.id,
                    &self.settings.actor,
                    "injected into the tenant's n8n",
                )
                .await?;
            let sealed = r.seal(&slot.name, &secret.secret)?;
            let reply = r
                .send(
                    &self.sidecar,
                    &Command::InjectCredential {
                        name: slot.name.clone(),
                        credential_type: slot.kind.clone(),
                        data: sealed,
                    },
                )
                .await?;
            let CommandReply::InjectCredential { credential_id } = reply else {
                return Err(StepError::Fail(format!("unexpected reply {reply:?}")));
            };
            injected.insert(
                slot.placeholder.clone(),
                InjectedCredential {
                    id: credential_id,
                    name: slot.name.clone(),
                },
            );
        }
        Ok(injected)
    }

    /// The mapping that turns the Golden Template into this tenant's workflows: the
    /// credentials the ignition injected, the platform's variables and the onboarding values.
    pub(crate) async fn mapping_for(
        &self,
        ig: &Ignition,
        ws: &Workspace,
        db: &Database,
    ) -> Result<TemplateMapping, StepError> {
        let injected = CredentialsOutput::of(ig)?.credentials;
        let relay = HandshakeOutput::of(ig)?.relay_url;
        self.mapping_with(ws, db, injected, relay).await
    }

    /// The mapping for credentials injected under these n8n ids (`injected`, per placeholder,
    /// as [`Self::inject_into`] answers): the same tenant on another droplet has other ids.
    /// The templates call the control plane through `relay`, the droplet's sidecar's relay
    /// that signs each call (spec 65.3), or directly when the sidecar reported none (whose
    /// calls the control plane then refuses: it verifies every call an ingest token makes).
    pub(crate) async fn mapping_with(
        &self,
        ws: &Workspace,
        db: &Database,
        injected: BTreeMap<String, InjectedCredential>,
        relay: Option<String>,
    ) -> Result<TemplateMapping, StepError> {
        let mut mapping = TemplateMapping::default();
        for (placeholder, c) in injected {
            mapping.credentials.insert(
                placeholder,
                CredentialRef {
                    id: c.id,
                    name: c.name,
                },
            );
        }
        let partition = PartitionManager::new(db.clone())
            .get(ws.id)
            .await?
            .map(|i| format!("genesis.{}", i.partition_name))
            .ok_or_else(|| StepError::Fail("the workspace has no lead partition".into()))?;
        let platform = [
            ("YOUR_WORKSPACE_ID", ws.id.to_string()),
            (
                "YOUR_DASHBOARD_URL",
                relay.unwrap_or_else(|| self.settings.dashboard_url.clone()),
            ),
            ("YOUR_LEADS_TABLE", partition),
        ];
        for (k, v) in platform {
            mapping.variables.insert(k.into(), v);
        }
        for var in self.templates.variables() {
            if let Some(v) = ws.onboarding.for_placeholder(&var) {
                mapping.variables.entry(var).or_insert_with(|| v.to_owned());
            }
        }
        Ok(mapping)
    }

    /// Deploys one template workflow, tagged with the template set's version; answers n8n's
    /// id and the webhook it exposes, for [`Self::deploy_each`] to register with the others.
    ///
    /// With `known`, the id the droplet's n8n gave this workflow before, it is updated by
    /// that id (`UPDATE_WORKFLOW`): the sidecar then need not look the workflow up by name
    /// first, one request to n8n fewer per workflow of a rollout. When n8n no longer has that
    /// id (deleted behind our back: the watchdog's heal), it is deployed by name
    /// (`DEPLOY_WORKFLOW`, created or updated in place).
    async fn deploy_one(
        &self,
        r: &Reach,
        w: &WorkflowTemplate,
        mapping: &TemplateMapping,
        activate: bool,
        known: Option<&str>,
    ) -> Result<(String, Option<WebhookEntry>), StepError> {
        let version = Some(self.templates.version.clone());
        let by_id = match known {
            Some(id) => {
                let update = Command::UpdateWorkflow {
                    workflow_id: id.to_owned(),
                    template: w.body.clone(),
                    mapping: mapping.clone(),
                    template_version: version.clone(),
                    activate,
                };
                match r.send(&self.sidecar, &update).await {
                    Ok(CommandReply::UpdateWorkflow { webhook_url, .. }) => {
                        Some((id.to_owned(), webhook_url))
                    }
                    Ok(other) => {
                        return Err(StepError::Fail(format!("unexpected reply {other:?}")));
                    }
                    Err(CommandError::Failed(f)) if f.code == FailureCode::N8nNotFound => None,
                    Err(e) => return Err(e.into()),
                }
            }
            None => None,
        };
        let (workflow_id, webhook_url) = match by_id {
            Some(done) => done,
            None => {
                let deploy = Command::DeployWorkflow {
                    template: w.body.clone(),
                    mapping: mapping.clone(),
                    activate,
                    template_version: version,
                };
                match r.send(&self.sidecar, &deploy).await? {
                    CommandReply::DeployWorkflow {
                        workflow_id,
                        webhook_url,
                    } => (workflow_id, webhook_url),
                    other => return Err(StepError::Fail(format!("unexpected reply {other:?}"))),
                }
            }
        };
        let webhook = webhook_url.map(|url| WebhookEntry {
            name: w.key.clone(),
            workflow_id: workflow_id.clone(),
            url,
        });
        Ok((workflow_id, webhook))
    }

    /// Deploys each template with its active flag (by the id n8n knows it under, when one is
    /// given: see [`Self::deploy_one`]), in order, then registers the webhooks of
    /// all of them in one write. When one fails, the webhooks of those already deployed are
    /// registered before the error is answered: the registry names every webhook n8n
    /// serves, so an undo or a retry finds them.
    pub(crate) async fn deploy_each<'t>(
        &self,
        r: &Reach,
        ws: &Workspace,
        db: &Database,
        templates: impl Iterator<Item = (&'t WorkflowTemplate, bool, Option<String>)>,
        mapping: &TemplateMapping,
    ) -> Result<Vec<(&'t WorkflowTemplate, String, Option<WebhookEntry>)>, StepError> {
        let mut deployed = Vec::new();
        let mut failure = None;
        for (w, activate, known) in templates {
            match self
                .deploy_one(r, w, mapping, activate, known.as_deref())
                .await
            {
                Ok((id, hook)) => deployed.push((w, id, hook)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let hooks: Vec<WebhookEntry> = deployed.iter().filter_map(|(_, _, h)| h.clone()).collect();
        db.webhooks_register(ws.id, &hooks).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(deployed),
        }
    }

    async fn deploy_workflows(
        &self,
        ig: &Ignition,
        ws: &Workspace,
        db: &Database,
    ) -> Result<Act, StepError> {
        let r = reach(ig)?;
        let mapping = self.mapping_for(ig, ws, db).await?;
        let each = self.templates.workflows.iter().map(|w| (w, false, None));
        let workflows = self
            .deploy_each(&r, ws, db, each, &mapping)
            .await?
            .into_iter()
            .map(|(w, id, hook)| DeployedWorkflow {
                key: w.key.clone(),
                id,
                webhook_url: hook.map(|h| h.url),
            })
            .collect();
        let out = DeployOutput {
            template_version: self.templates.version.clone(),
            workflows,
        };
        let rows = desired_from(&out, false);
        db.droplet_workflows_put(ig.droplet_id, &rows).await?;
        Ok(Act::done(&out))
    }

    /// Runs `step`'s undo action once; returns what it did (for the saga log).
    pub(crate) async fn undo(
        &self,
        step: IgnitionStep,
        ig: &Ignition,
        ws: &Workspace,
        db: &Database,
    ) -> Result<Value, StepError> {
        let actor = &self.settings.actor;
        match step {
            // A restore's undo removes only what the restore made: the tenant's partition,
            // vault and webhooks were there before it and are still the tenant's.
            IgnitionStep::PartitionCreating
            | IgnitionStep::CredentialsInjecting
            | IgnitionStep::WorkflowsDeploying
                if params(ig)?.restore.is_some() =>
            {
                if step == IgnitionStep::WorkflowsDeploying {
                    db.droplet_workflows_delete(ig.droplet_id).await?;
                }
                Ok(json!({ "note": "a restore keeps the tenant's own" }))
            }
            IgnitionStep::DropletProvisioning if params(ig)?.restore.is_some() => {
                // Only this saga's droplet, by its name: the one it replaces is not touched.
                let place = self.placement(ig, ws)?;
                let mine = self
                    .cloud_for(&place)
                    .droplet_list_by_tag(&workspace_tag(ws.id))
                    .await
                    .map_err(transient)?
                    .into_iter()
                    .filter(|d| d.name == place.name);
                let mut deleted = Vec::new();
                for d in mine {
                    self.cloud_for(&place)
                        .droplet_delete(d.id)
                        .await
                        .map_err(transient)?;
                    deleted.push(d.id);
                }
                let terminated = db.droplet_terminate(ig.droplet_id, actor).await?;
                Ok(json!({ "deleted": deleted, "terminated": terminated }))
            }
            IgnitionStep::PartitionCreating => {
                let outcome = PartitionManager::new(db.clone()).drop(ws.id, actor).await?;
                Ok(json!({ "partition": format!("{outcome:?}") }))
            }
            IgnitionStep::DropletProvisioning => {
                // Every droplet carrying the workspace's tag: also one whose create outcome
                // was never recorded.
                let tagged = self
                    .cloud
                    .droplet_list_by_tag(&workspace_tag(ws.id))
                    .await
                    .map_err(transient)?;
                let mut deleted = Vec::new();
                for d in tagged {
                    self.cloud.droplet_delete(d.id).await.map_err(transient)?;
                    deleted.push(d.id);
                }
                let terminated = db.droplet_terminate(ig.droplet_id, actor).await?;
                Ok(json!({ "deleted": deleted, "terminated": terminated }))
            }
            // The droplet's deletion (the previous step's undo) is this step's compensation.
            IgnitionStep::HandshakePending => Ok(json!({ "note": "undone with the droplet" })),
            IgnitionStep::CredentialsInjecting => {
                let n = db.vault_delete_workspace(ws.id, actor).await?;
                Ok(json!({ "vault_deleted": n }))
            }
            IgnitionStep::WorkflowsDeploying => {
                let n = db.webhook_delete_workspace(ws.id, actor).await?;
                let w = db.droplet_workflows_delete(ig.droplet_id).await?;
                Ok(json!({ "webhooks_deleted": n, "desired_workflows_deleted": w }))
            }
            IgnitionStep::Activating => {
                // Best effort: the droplet (and with it every workflow) is deleted two undo
                // actions later, so an unreachable sidecar does not block the unwind.
                let mut deactivated = 0;
                if let (Ok(r), Ok(out)) = (reach(ig), DeployOutput::of(ig)) {
                    for w in out.workflows {
                        let cmd = Command::DeactivateWorkflow { workflow_id: w.id };
                        if r.send(&self.sidecar, &cmd).await.is_ok() {
                            deactivated += 1;
                        }
                    }
                }
                Ok(json!({ "deactivated": deactivated }))
            }
        }
    }
}
