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
use crate::igniter::Igniter;
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
        let bytes = fresh.to_string().into_bytes();
        db.vault_put(
            keys,
            ws.id,
            slot.id,
            &slot.kind,
            &slot.name,
            &bytes,
            &self.settings.actor,
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
