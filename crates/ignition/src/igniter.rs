//! [`Igniter`]: what the ignition saga needs from the world, and how an ignition starts.
//!
//! Following Omicron's saga files, the ignition saga reads in four parts:
//! - **input parameters**: [`IgnitionParams`], fixed when the saga is built (ids included, so
//!   every action can be re-run safely);
//! - **actions and undo actions**: `actions.rs`, one pair per step of spec 41.1;
//! - **definition**: the step order and timeouts, [`genesis_core::IgnitionStep`];
//! - **execution**: `executor.rs` (one move at a time, recorded in the saga log) and
//!   `jobs.rs` (moves run as jobs on the `ignition` queue).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use genesis_cloud::{CallPriority, Cloud};
use genesis_core::{DropletId, IgnitionStep, Region, WorkspaceId, WorkspaceStatus};
use genesis_queue::Bus;
use genesis_store::{
    IgnitionSecrets, IgnitionStart, MasterKeys, NewWorkspaceToken, RegionalStore, StoreError,
    VaultPlaintext, Workspace, WorkspaceTokenKind,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::cloud_init::Images;
use crate::sidecar_client::SidecarClient;
use crate::templates::{PlatformSecret, TemplateSet};

/// Variables the platform fills in itself (spec 53.3); every other `YOUR_...` placeholder is
/// an onboarding value.
pub const PLATFORM_VARIABLES: [&str; 3] = [
    "YOUR_WORKSPACE_ID",
    "YOUR_DASHBOARD_URL",
    "YOUR_LEADS_TABLE",
];

/// The header the lead-intake webhook demands its token in (n8n's Webhook node with header
/// auth answers 403 without it).
pub const WEBHOOK_TOKEN_HEADER: &str = "X-Genesis-Token";

/// A fresh token: `prefix` and 32 random bytes in base64url (the prefix says what it is when
/// one turns up in a log or a leak scanner).
fn new_token(prefix: &str) -> String {
    use base64::Engine as _;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// What an ignite request got: the saga, and the lead-intake webhook's token when this
/// request made it. The token is shown this once; only the vault keeps it after.
#[derive(Debug)]
pub struct Ignited {
    /// The saga started, or the one already in flight.
    pub start: IgnitionStart,
    /// The lead-intake webhook's token (`X-Genesis-Token`), for a newly started saga.
    pub webhook_token: Option<String>,
}

/// How the control plane provisions droplets.
#[derive(Debug, Clone)]
pub struct IgnitionSettings {
    /// The URL sidecars call home to (cloud-init's `GENESIS_DASHBOARD_URL`, and the templates'
    /// `YOUR_DASHBOARD_URL`).
    pub dashboard_url: String,
    /// The three images.
    pub images: Images,
    /// Refuse images not pinned by digest (production: true).
    pub require_digests: bool,
    /// Droplet size slug (spec 50.1).
    pub droplet_size: String,
    /// Base image slug.
    pub droplet_image: String,
    /// Timeouts that differ from spec 41.1's (tests, slow clouds).
    pub timeouts: BTreeMap<IgnitionStep, Duration>,
    /// How long one job may wait in-process for a quick condition (a droplet that boots in
    /// a second) before handing the wait to a delayed job and freeing its queue slot.
    pub inline_wait: Duration,
    /// How long an executor's claim on a saga lasts without renewal (longer than any single
    /// action: a droplet create with its retries, three workflow deployments). After a crash
    /// the next executor waits at most this long.
    pub lease: Duration,
    /// The actor recorded in audit events.
    pub actor: String,
    /// Firewall, VPC and public hostnames of droplets.
    pub network: crate::network::DropletNetwork,
    /// How often a droplet being created is looked at.
    pub droplet_poll: DropletPoll,
}

/// When the provisioning step looks at a droplet being created: first `first_look` after
/// the step began, then every `every`. Each look is a request against DigitalOcean's 5,000
/// an hour: a droplet takes 25 to 55 s to come up, so looking every 250 ms from the start
/// would spend about 160 requests on each, and a mass restore of 3,000 would wait on the
/// budget for days. The default (250 ms) suits the simulator's instant pace; production
/// sets [`DropletPoll::DIGITALOCEAN`] through the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropletPoll {
    /// The first look, after the step began.
    pub first_look: Duration,
    /// Later looks.
    pub every: Duration,
}

impl DropletPoll {
    /// For DigitalOcean, whose droplets are active 25 to 55 s after the create: two looks
    /// each on average. A late look delays no handshake: the handshake asks the cloud
    /// itself for an address not recorded yet.
    pub const DIGITALOCEAN: DropletPoll = DropletPoll {
        first_look: Duration::from_secs(40),
        every: Duration::from_secs(5),
    };

    /// How long to wait before the next look, `elapsed` into the step.
    pub fn next_after(&self, elapsed: Duration) -> Duration {
        self.first_look
            .checked_sub(elapsed)
            .filter(|d| !d.is_zero())
            .unwrap_or(self.every)
    }

    /// Both times divided by `speed` (a simulation that runs faster than real time).
    pub fn scaled(self, speed: f64) -> DropletPoll {
        DropletPoll {
            first_look: self.first_look.div_f64(speed),
            every: self.every.div_f64(speed),
        }
    }
}

impl Default for DropletPoll {
    fn default() -> Self {
        DropletPoll {
            first_look: Duration::from_millis(250),
            every: Duration::from_millis(250),
        }
    }
}

impl IgnitionSettings {
    /// The timeout of `step`.
    pub fn timeout(&self, step: IgnitionStep) -> Duration {
        self.timeouts
            .get(&step)
            .copied()
            .unwrap_or_else(|| step.timeout())
    }
}

/// A credential slot of one ignition: where the vault keeps it and what the templates call it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSlot {
    /// Vault id.
    pub id: Uuid,
    /// Template placeholder (`TEMPLATE_GMAIL_UUID`).
    pub placeholder: String,
    /// n8n type.
    pub kind: String,
    /// Name in the tenant's n8n.
    pub name: String,
}

/// The saga's input parameters, fixed when it is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnitionParams {
    /// The credentials to inject.
    pub credentials: Vec<CredentialSlot>,
    /// Vault id of the webhook token of sagas started before the token became a credential
    /// (kept so their parameters still read; unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_token: Option<Uuid>,
    /// The Golden Template version deployed.
    pub template_version: String,
    /// Set on a restore saga (spec 66.4): the tenant, already ignited, gets a new droplet in
    /// another datacenter, from a snapshot or afresh. Its vault, partition and workspace
    /// status are the tenant's and stay: a restore's undo removes only what it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
}

/// Where and from what a restore saga makes the tenant's new droplet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSpec {
    /// The failover it belongs to; `None` for one droplet's restore in place (spec 66.1's
    /// single droplet, after a reboot did not bring it back).
    #[serde(default)]
    pub failover_id: Option<Uuid>,
    /// The datacenter the new droplet is made in.
    pub datacenter: String,
    /// The snapshot image it boots from; `None` re-ignites it from the base image.
    pub image_id: Option<i64>,
    /// The droplet it replaces (in the failed datacenter, or the lost droplet).
    pub replaces: Uuid,
}

impl RestoreSpec {
    /// The new droplet's name at the cloud: the tenant's, marked with the saga, so that a
    /// retried create finds this saga's droplet and never the one it replaces.
    pub fn droplet_name(&self, slug: &str, saga: Uuid) -> String {
        let simple = saga.simple().to_string();
        format!("{}-r{}", droplet_name(slug), &simple[simple.len() - 8..])
    }
}

/// Why the igniter refused a request about a tenant (an ignition, a credential update), or
/// did not finish it.
#[derive(Debug, thiserror::Error)]
pub enum IgniteError {
    /// The request is wrong; names the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The field (`credentials.gmail`, `onboarding.sender_email`).
        field: String,
        /// Why.
        message: String,
    },
    /// The workspace's state does not allow an ignition.
    #[error("{0}")]
    State(String),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue.
    #[error("queue: {0}")]
    Queue(#[from] genesis_queue::QueueError),
    /// The vault or the droplet failed (a credential update).
    #[error(transparent)]
    Droplet(#[from] crate::actions::StepError),
}

/// The ignition saga's dependencies. Generic over the cloud so the real DigitalOcean client
/// (against the simulator or the real API) is what runs.
pub struct Igniter<C> {
    pub(crate) stores: RegionalStore,
    pub(crate) cloud: Arc<C>,
    /// The same cloud at [`CallPriority::Urgent`]: what restores call it with (spec 66.4's
    /// RTO comes before ignitions, and before routine work by far).
    pub(crate) urgent: Arc<C>,
    pub(crate) sidecar: SidecarClient,
    pub(crate) vault: Option<Arc<MasterKeys>>,
    pub(crate) templates: Arc<TemplateSet>,
    pub(crate) settings: IgnitionSettings,
    pub(crate) bus: Bus,
    pub(crate) network: crate::network::NetworkCache,
}

impl<C: Cloud> Igniter<C> {
    /// Wires the saga to its dependencies. `bus` must know the `ignition` queue.
    pub fn new(
        stores: RegionalStore,
        cloud: Arc<C>,
        sidecar: SidecarClient,
        vault: Option<Arc<MasterKeys>>,
        templates: Arc<TemplateSet>,
        settings: IgnitionSettings,
        bus: Bus,
    ) -> Self {
        Self {
            stores,
            urgent: Arc::new(cloud.prioritised(CallPriority::Urgent)),
            cloud,
            sidecar,
            vault,
            templates,
            settings,
            bus,
            network: Default::default(),
        }
    }

    /// The cloud a droplet's calls go to: at urgent priority for a restore's.
    pub(crate) fn cloud_for(&self, place: &crate::actions::Placement) -> &C {
        if place.urgent {
            &self.urgent
        } else {
            &self.cloud
        }
    }
}

impl<C> Igniter<C> {
    /// The settings.
    pub fn settings(&self) -> &IgnitionSettings {
        &self.settings
    }

    /// The cloud it provisions in (shared with the fleet's other workers, so they spend one
    /// request budget).
    pub fn cloud(&self) -> &Arc<C> {
        &self.cloud
    }

    /// Its signed-command client (shared with the watchdog's heals).
    pub fn sidecar(&self) -> &SidecarClient {
        &self.sidecar
    }

    /// The regional databases it records in.
    pub fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    /// The queue its moves run on.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The template set.
    pub fn templates(&self) -> &TemplateSet {
        &self.templates
    }

    /// Checks an ignite request against the workspace and the template set, then starts the
    /// saga (or returns the one in flight) and queues its first move. `credentials` maps the
    /// manifest's credential keys (`gmail`) to n8n credential data.
    pub async fn ignite(
        &self,
        ws: &Workspace,
        credentials: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Ignited, IgniteError> {
        match ws.status {
            WorkspaceStatus::Pending
            | WorkspaceStatus::RollbackComplete
            | WorkspaceStatus::Provisioning => {}
            other => {
                return Err(IgniteError::State(format!(
                    "a workspace in status {other} cannot be ignited"
                )));
            }
        }
        let db = self.stores.for_region(ws.region);
        if db.is_standby_pool(ws.id).await? {
            return Err(IgniteError::State(
                "this workspace owns a hot-standby pool; it is not a tenant and is never ignited"
                    .into(),
            ));
        }
        if ws.status == WorkspaceStatus::Provisioning
            && let Some(running) = db.ignition_latest(ws.id).await?
            && !running.phase.is_final()
        {
            // A retry after the first move could not be queued (Redis unreachable, or failing
            // over) must not leave the saga with no move until a replica restarts: queue one.
            // Extra moves find nothing to do or lose the version race.
            self.schedule(ws.region, running.id, Duration::ZERO).await?;
            return Ok(Ignited {
                start: IgnitionStart::AlreadyRunning(running),
                webhook_token: None,
            });
        }
        self.check_onboarding(ws)?;
        let tenant_keys: BTreeSet<&str> = self
            .templates
            .credentials
            .iter()
            .filter(|c| c.platform.is_none())
            .map(|c| c.key.as_str())
            .collect();
        if let Some(unknown) = credentials
            .keys()
            .find(|k| !tenant_keys.contains(k.as_str()))
        {
            let made_here = self.templates.credentials.iter().any(|c| &c.key == unknown);
            return Err(IgniteError::Invalid {
                field: format!("credentials.{unknown}"),
                message: if made_here {
                    "the platform makes this credential itself; do not send it".into()
                } else {
                    format!(
                        "the templates need no such credential (they need: {})",
                        tenant_keys.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                },
            });
        }
        let mut slots = Vec::new();
        let mut secrets: Vec<(Uuid, String, String, Vec<u8>)> = Vec::new();
        let mut tokens = Vec::new();
        let mut webhook_token = None;
        for spec in &self.templates.credentials {
            let field = format!("credentials.{}", spec.key);
            let data = match spec.platform {
                Some(PlatformSecret::WebhookToken) => {
                    let token = new_token("whk_");
                    let data = json!({"name": WEBHOOK_TOKEN_HEADER, "value": token});
                    webhook_token = Some(token);
                    data
                }
                Some(PlatformSecret::IngestToken) => {
                    let token = new_token("gws_");
                    tokens.push(NewWorkspaceToken::of(&token, WorkspaceTokenKind::Ingest));
                    json!({"name": "Authorization", "value": format!("Bearer {token}")})
                }
                None => {
                    credentials
                        .get(&spec.key)
                        .cloned()
                        .ok_or_else(|| IgniteError::Invalid {
                            field: field.clone(),
                            message: format!(
                                "missing: the templates need a {} credential",
                                spec.kind
                            ),
                        })?
                }
            };
            // Shaped into what n8n's schema for the type demands (checked against the pinned
            // n8n's own credential types), so that n8n accepts it at step 4: a field only the
            // tenant can give is named now, before anything is started.
            let data = genesis_n8n::CredentialTypes::pinned()
                .get(&spec.kind)
                .ok_or_else(|| IgniteError::Invalid {
                    field: field.clone(),
                    message: format!(
                        "n8n {} has no credential type {}",
                        genesis_n8n::N8N_VERSION,
                        spec.kind
                    ),
                })?
                .shape(&data)
                .map_err(|problem| IgniteError::Invalid {
                    field: match problem.field() {
                        Some(f) => format!("{field}.{f}"),
                        None => field.clone(),
                    },
                    message: credential_message(&problem, &spec.kind),
                })?;
            let id = Uuid::now_v7();
            slots.push(CredentialSlot {
                id,
                placeholder: spec.placeholder.clone(),
                kind: spec.kind.clone(),
                name: spec.name.clone(),
            });
            secrets.push((
                id,
                spec.kind.clone(),
                spec.name.clone(),
                data.to_string().into_bytes(),
            ));
        }
        let params = IgnitionParams {
            credentials: slots,
            webhook_token: None,
            template_version: self.templates.version.clone(),
            restore: None,
        };
        let params = serde_json::to_value(&params).map_err(|e| IgniteError::Invalid {
            field: "params".into(),
            message: e.to_string(),
        })?;
        let plain: Vec<VaultPlaintext<'_>> = secrets
            .iter()
            .map(|(id, kind, name, secret)| VaultPlaintext {
                credential: *id,
                kind,
                name,
                secret,
            })
            .collect();
        let started = db
            .ignition_start(
                Uuid::now_v7(),
                ws.id,
                DropletId::new(),
                &params,
                &IgnitionSecrets {
                    credentials: &plain,
                    tokens: &tokens,
                },
                self.vault.as_deref(),
                &self.settings.actor,
            )
            .await?;
        match &started {
            IgnitionStart::Started(ig) => {
                self.schedule(ws.region, ig.id, Duration::ZERO).await?;
                Ok(Ignited {
                    start: started,
                    webhook_token,
                })
            }
            // Another request won the race: its token is the one in the vault.
            IgnitionStart::AlreadyRunning(_) => Ok(Ignited {
                start: started,
                webhook_token: None,
            }),
        }
    }

    fn check_onboarding(&self, ws: &Workspace) -> Result<(), IgniteError> {
        for var in self.templates.variables() {
            if PLATFORM_VARIABLES.contains(&var.as_str()) {
                continue;
            }
            if ws.onboarding.for_placeholder(&var).is_none() {
                let key = var.trim_start_matches("YOUR_").to_ascii_lowercase();
                return Err(IgniteError::Invalid {
                    field: format!("onboarding.{key}"),
                    message: format!(
                        "missing: the Golden Template {} uses {var}; set it on the workspace",
                        self.templates.version
                    ),
                });
            }
        }
        Ok(())
    }

    /// Queues the saga's next move after `delay`. Each continuation is a new job whose id
    /// comes from the saga's wake-up counter, so nothing holds a queue slot while waiting.
    pub async fn schedule(
        &self,
        region: Region,
        ignition: Uuid,
        delay: Duration,
    ) -> Result<(), IgniteError> {
        let n = self
            .stores
            .for_region(region)
            .ignition_wakeup(ignition)
            .await?;
        let payload = serde_json::json!({"region": region.code(), "ignition": ignition});
        self.bus
            .add(
                crate::jobs::QUEUE,
                &format!("ign-{ignition}-{n}"),
                &payload.to_string(),
                delay,
            )
            .await?;
        Ok(())
    }

    /// Start-up recovery: queues a move for every unfinished saga in every region, which
    /// resumes it (running) or carries on unwinding it. Safe to call any number of times on
    /// any replica: extra moves find nothing to do or lose the version race.
    pub async fn recover(&self) -> Result<usize, IgniteError> {
        let mut n = 0;
        for db in self.stores.distinct() {
            for ig in db.ignition_unfinished().await? {
                let region = db.workspace_get(ig.workspace_id).await?.region;
                self.schedule(region, ig.id, Duration::ZERO).await?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A credential problem in words for the person who sent it (the field is already named
/// in the problem's `field`).
pub(crate) fn credential_message(problem: &genesis_n8n::CredentialProblem, kind: &str) -> String {
    use genesis_n8n::CredentialProblem as P;
    match problem {
        P::NotAnObject => format!("must be an object of the {kind} credential's fields"),
        P::Missing { .. } => format!("missing: n8n's {kind} credential needs it"),
        P::Unknown { known, .. } => {
            format!("n8n's {kind} credential has no such field (its fields: {known})")
        }
        P::WrongType { expected, .. } => format!("must be a {expected}"),
        P::NotAnOption { allowed, .. } => format!("must be one of {allowed}"),
        P::NotAllowed {
            dependant, value, ..
        } => format!("only allowed when {dependant} is {value}"),
    }
}

/// Name of a tenant's droplet: DigitalOcean hostnames take letters, digits, `.` and `-`.
pub fn droplet_name(slug: &str) -> String {
    format!("genesis-{}", slug.replace('_', "-"))
}

/// The cloud tag that marks a workspace's droplets (DESIGN §3.6).
pub fn workspace_tag(ws: WorkspaceId) -> String {
    format!("ws-{}", ws.as_uuid())
}

#[cfg(test)]
mod poll_tests {
    use super::*;

    #[test]
    fn the_first_look_waits_for_a_droplet_to_be_likely_up_then_looks_often() {
        let p = DropletPoll::DIGITALOCEAN;
        let s = Duration::from_secs;
        assert_eq!(p.next_after(Duration::ZERO), s(40));
        assert_eq!(p.next_after(s(38)), s(2));
        assert_eq!(p.next_after(s(40)), s(5));
        assert_eq!(p.next_after(s(90)), s(5));
        assert_eq!(p.scaled(10.0).first_look, s(4));
        assert_eq!(DropletPoll::default().next_after(s(1)).as_millis(), 250);
    }
}
