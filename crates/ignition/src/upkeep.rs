//! Keeping an ignited tenant the way its ignition left it: the actions the watchdog's heals
//! (spec 43.3) and template rollouts need, built from the same pieces as the saga's steps.
//!
//! Both read the tenant's latest completed ignition: where its droplet is and the key its
//! sidecar seals to, which credentials went into n8n under which ids, and the template
//! mapping. Both are idempotent: a redeploy updates workflows in place by name, and a refresh
//! replaces the credential's data.

use std::collections::{BTreeMap, BTreeSet};

use genesis_cloud::Cloud;
use genesis_core::SagaPhase;
use genesis_protocol::command::{Command, CommandReply};
use genesis_store::{Database, DesiredWorkflowRow, Ignition, Workspace};

use genesis_protocol::command::TemplateMapping;

use crate::actions::{Reach, StepError, params, reach};
use crate::igniter::{IgniteError, Igniter};
use crate::oauth::{OAuthError, OAuthRefresher};

impl From<OAuthError> for StepError {
    fn from(e: OAuthError) -> Self {
        if e.is_transient() {
            StepError::Transient(e.to_string())
        } else {
            StepError::Fail(e.to_string())
        }
    }
}

/// Where a redeploy's commands go: see [`Igniter::deploy_wanted`].
#[derive(Clone, Copy)]
pub(crate) enum DeployTarget<'r> {
    /// The droplet the tenant's workflow rows describe.
    OwnDroplet(&'r Reach),
    /// Another droplet (a warm standby serving the tenant).
    Elsewhere(&'r Reach),
}

impl<C: Cloud> Igniter<C> {
    pub(crate) async fn completed_ignition(
        &self,
        ws: &Workspace,
    ) -> Result<(Database, Ignition), StepError> {
        let db = self.stores.for_region(ws.region).clone();
        match db.ignition_latest(ws.id).await? {
            Some(ig) if ig.phase == SagaPhase::Done => Ok((db, ig)),
            _ => Err(StepError::Fail(format!(
                "workspace {} has no completed ignition",
                ws.id
            ))),
        }
    }

    /// Deploys the current template set's workflows named in `keys` (every one when `None`)
    /// to the workspace's droplet again, each keeping the active flag the database wants,
    /// and records them at the current template version. Answers the rows written.
    pub async fn redeploy(
        &self,
        ws: &Workspace,
        keys: Option<&BTreeSet<String>>,
    ) -> Result<Vec<DesiredWorkflowRow>, StepError> {
        let (db, ig) = self.completed_ignition(ws).await?;
        let r = reach(&ig)?;
        let mapping = self.mapping_for(&ig, ws, &db).await?;
        let rows = self
            .deploy_wanted(DeployTarget::OwnDroplet(&r), ws, &db, &ig, &mapping, keys)
            .await?;
        db.droplet_workflows_put(ig.droplet_id, &rows).await?;
        Ok(rows)
    }

    /// Deploys the current template set's workflows named in `keys` (every one when `None`)
    /// to `target`, each with the active flag the tenant's own droplet wants (active when it
    /// has none yet), and answers the rows at the current template version.
    ///
    /// `target` is the tenant's own droplet, whose n8n knows the workflows under the ids
    /// its rows record (they are updated by id), or another one (a warm standby), where they
    /// are deployed by name.
    pub(crate) async fn deploy_wanted(
        &self,
        target: DeployTarget<'_>,
        ws: &Workspace,
        db: &Database,
        ig: &Ignition,
        mapping: &TemplateMapping,
        keys: Option<&BTreeSet<String>>,
    ) -> Result<Vec<DesiredWorkflowRow>, StepError> {
        let (r, in_place) = match target {
            DeployTarget::OwnDroplet(r) => (r, true),
            DeployTarget::Elsewhere(r) => (r, false),
        };
        let rows: BTreeMap<String, DesiredWorkflowRow> = db
            .droplet_workflows(ig.droplet_id)
            .await?
            .into_iter()
            .map(|row| (row.key.clone(), row))
            .collect();
        // Active unless the tenant's own droplet has it inactive (active when it has none yet).
        let wanted_active = |key: &str| rows.get(key).is_none_or(|row| row.active);
        let each = self
            .templates
            .workflows
            .iter()
            .filter(|w| keys.is_none_or(|k| k.contains(&w.key)))
            .map(|w| {
                let known = rows
                    .get(&w.key)
                    .filter(|_| in_place)
                    .map(|row| row.workflow_id.clone())
                    .filter(|id| !id.is_empty());
                (w, wanted_active(&w.key), known)
            });
        Ok(self
            .deploy_each(r, ws, db, each, mapping)
            .await?
            .into_iter()
            .map(|(w, workflow_id, _)| DesiredWorkflowRow {
                workflow_id,
                key: w.key.clone(),
                active: wanted_active(&w.key),
                template_version: self.templates.version.clone(),
                error: None,
            })
            .collect())
    }

    /// Refreshes the OAuth token of the credential n8n knows as `n8n_credential_id` with its
    /// provider, stores the new data in the vault, and rotates it into n8n. Answers the new
    /// expiry (Unix seconds).
    pub async fn refresh_oauth(
        &self,
        ws: &Workspace,
        oauth: &OAuthRefresher,
        n8n_credential_id: &str,
    ) -> Result<i64, StepError> {
        let (db, ig) = self.completed_ignition(ws).await?;
        let r = reach(&ig)?;
        let p = params(&ig)?;
        let placeholder =
            <crate::outputs::CredentialsOutput as crate::outputs::StepOutput>::of(&ig)?
                .credentials
                .into_iter()
                .find(|(_, c)| c.id == n8n_credential_id)
                .map(|(k, _)| k)
                .ok_or_else(|| {
                    StepError::Fail(format!(
                        "credential {n8n_credential_id} was not injected by the ignition"
                    ))
                })?;
        let slot = p
            .credentials
            .iter()
            .find(|s| s.placeholder == placeholder)
            .ok_or_else(|| StepError::Fail(format!("no credential slot for {placeholder}")))?;
        let keys = self.vault_keys()?;
        let stored = db.vault_get(keys, ws.id, slot.id).await?;
        let data: serde_json::Value = serde_json::from_slice(&stored.secret)
            .map_err(|_| StepError::Fail(format!("the vault's {} is not JSON", slot.name)))?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let fresh = oauth.refresh(&slot.kind, &data, now_ms).await?;
        self.rotate_into(
            &db,
            &r,
            ws,
            slot,
            n8n_credential_id,
            &fresh,
            &self.settings.actor,
        )
        .await?;
        Ok(fresh["oauthTokenData"]["expiry_date"]
            .as_i64()
            .map(|ms| ms / 1000)
            .unwrap_or_default())
    }
}

impl<C: Cloud> Igniter<C> {
    /// Swaps the workspace's n8n container to `image` (spec 56.2: pull while serving, wait
    /// for a quiet period, swap, health-check, roll back when unhealthy). Answers the sidecar's
    /// outcome; a rollback is an outcome, not an error.
    pub async fn swap_n8n(
        &self,
        ws: &Workspace,
        image: &str,
        quiet_wait_s: u64,
    ) -> Result<genesis_protocol::command::SwapOutcome, StepError> {
        let (_, ig) = self.completed_ignition(ws).await?;
        let r = reach(&ig)?;
        let reply = r
            .send(
                &self.sidecar,
                &Command::SwapContainer {
                    image: image.to_owned(),
                    quiet_wait_s,
                },
            )
            .await?;
        match reply {
            CommandReply::SwapContainer(outcome) => Ok(outcome),
            other => Err(StepError::Fail(format!("unexpected reply {other:?}"))),
        }
    }
}

impl<C: Cloud> Igniter<C> {
    /// A tenant's own key update (spec 65.1): `data` for the credential the templates call
    /// `key` (`openai`), checked as an ignition checks it, stored in the vault as the
    /// credential's new version, then rotated into the droplet's n8n (ROTATE_CREDENTIAL).
    /// Only the tenant's credentials: the platform's own tokens rotate on their schedule.
    ///
    /// The vault comes first: if the droplet does not confirm, n8n keeps the old key (which
    /// still works, or the tenant would not be replacing it calmly), and sending the same
    /// update again finishes the job. Answers the credential's name in n8n.
    pub async fn update_credential(
        &self,
        ws: &Workspace,
        key: &str,
        data: &serde_json::Value,
        actor: &str,
    ) -> Result<String, IgniteError> {
        let invalid = |field: String, message: String| IgniteError::Invalid { field, message };
        let tenant_keys = || {
            self.templates
                .credentials
                .iter()
                .filter(|c| c.platform.is_none())
                .map(|c| c.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let spec = match self.templates.credentials.iter().find(|c| c.key == key) {
            // n8n names every OAuth2 credential type so (`gmailOAuth2`, `…OAuth2Api`). Its
            // data carries the tokens the sign-in gave: data typed by hand would drop them
            // and disconnect the account until the tenant signs in again.
            Some(spec) if spec.kind.contains("OAuth2") => {
                return Err(invalid(
                    "name".into(),
                    format!(
                        "{key} is an OAuth sign-in: it is renewed by connecting the account \
                         again (the dashboard's email page), not replaced by hand"
                    ),
                ));
            }
            Some(spec) if spec.platform.is_none() => spec,
            Some(_) => {
                return Err(invalid(
                    "name".into(),
                    "the platform makes and rotates this credential itself".into(),
                ));
            }
            None => {
                return Err(invalid(
                    "name".into(),
                    format!("no such credential (yours are: {})", tenant_keys()),
                ));
            }
        };
        let data = genesis_n8n::CredentialTypes::pinned()
            .get(&spec.kind)
            .ok_or_else(|| {
                invalid(
                    "name".into(),
                    format!(
                        "n8n {} has no credential type {}",
                        genesis_n8n::N8N_VERSION,
                        spec.kind
                    ),
                )
            })?
            .shape(data)
            .map_err(|problem| {
                invalid(
                    match problem.field() {
                        Some(f) => format!("data.{f}"),
                        None => "data".into(),
                    },
                    crate::igniter::credential_message(&problem, &spec.kind),
                )
            })?;
        let (db, ig) = self.completed_ignition(ws).await.map_err(|e| match e {
            StepError::Fail(_) => IgniteError::State(
                "this workspace has no ignited droplet yet: its credentials are given when it \
                 is ignited"
                    .into(),
            ),
            transient => IgniteError::Droplet(transient),
        })?;
        let r = reach(&ig)?;
        let p = params(&ig)?;
        let slot = p
            .credentials
            .iter()
            .find(|s| s.placeholder == spec.placeholder)
            .ok_or_else(|| {
                IgniteError::State(format!(
                    "this workspace was ignited without a {key} credential"
                ))
            })?;
        let n8n_id = <crate::outputs::CredentialsOutput as crate::outputs::StepOutput>::of(&ig)?
            .credentials
            .get(&spec.placeholder)
            .map(|c| c.id.clone())
            .ok_or_else(|| StepError::Fail(format!("the ignition recorded no n8n id for {key}")))?;
        self.rotate_into(&db, &r, ws, slot, &n8n_id, &data, actor)
            .await?;
        Ok(slot.name.clone())
    }

    /// Replaces one injected credential's data: the vault's new version first, then the
    /// droplet's n8n, then the audit event (spec 63.1, Credentials: ROTATED).
    #[allow(
        clippy::too_many_arguments,
        reason = "the ignition's pieces a rotation reads, each once"
    )]
    async fn rotate_into(
        &self,
        db: &Database,
        r: &Reach,
        ws: &Workspace,
        slot: &crate::igniter::CredentialSlot,
        n8n_credential_id: &str,
        data: &serde_json::Value,
        actor: &str,
    ) -> Result<(), StepError> {
        let bytes = data.to_string().into_bytes();
        db.vault_put(
            self.vault_keys()?,
            ws.id,
            slot.id,
            &slot.kind,
            &slot.name,
            &bytes,
            actor,
        )
        .await?;
        let sealed = r.seal(&slot.name, &bytes)?;
        let reply = r
            .send(
                &self.sidecar,
                &Command::RotateCredential {
                    credential_id: n8n_credential_id.to_owned(),
                    data: sealed,
                },
            )
            .await?;
        if !matches!(reply, CommandReply::RotateCredential { success: true }) {
            return Err(StepError::Fail(format!("unexpected reply {reply:?}")));
        }
        db.audit_record(
            &genesis_store::audit::AuditEvent::new(actor, "credentials", "CREDENTIAL_ROTATED")
                .workspace(ws.id)
                .subject(slot.name.clone())
                .details(serde_json::json!({"kind": slot.kind, "n8n_id": n8n_credential_id})),
        )
        .await?;
        Ok(())
    }
}
