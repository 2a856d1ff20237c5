//! Keeping an ignited tenant the way its ignition left it: the actions the watchdog's heals
//! (spec 43.3) and template rollouts need, built from the same pieces as the saga's steps.
//!
//! Both read the tenant's latest completed ignition: where its droplet is and the key its
//! sidecar seals to, which credentials went into n8n under which ids, and the template
//! mapping. Both are idempotent: a redeploy updates workflows in place by name, and a refresh
//! replaces the credential's data.

use genesis_core::audit::AuditCategory;
use std::collections::{BTreeMap, BTreeSet};

use genesis_cloud::Cloud;
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
        match db.ignition_latest_done(ws.id).await? {
            Some(ig) => Ok((db, ig)),
            None => Err(StepError::Fail(format!(
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

    /// Restarts the workspace's n8n (RESTART_N8N): the sidecar answers once n8n is ready
    /// again, with its new process id when it has one.
    pub async fn restart_n8n(&self, ws: &Workspace) -> Result<Option<u32>, StepError> {
        let (_, ig) = self.completed_ignition(ws).await?;
        let reply = reach(&ig)?
            .send(&self.sidecar, &Command::RestartN8n)
            .await?;
        match reply {
            CommandReply::RestartN8n { new_pid, .. } => Ok(new_pid),
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
    /// The vault comes first, marked as not yet applied. If the droplet is asleep, nothing
    /// is sent; if it does not answer, n8n keeps the old key (which still works, or the
    /// tenant would not be replacing it calmly). Either way the mark stays, and the
    /// `pending-credentials` reconciler applies the new version once the droplet serves
    /// again ([`Self::apply_pending_credential`]). A refusal or a failed command is an
    /// error, as before.
    pub async fn update_credential(
        &self,
        ws: &Workspace,
        key: &str,
        data: &serde_json::Value,
        actor: &str,
    ) -> Result<CredentialOutcome, IgniteError> {
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
        let n8n_id = n8n_credential_id(&ig, slot)?;
        let serving = db
            .droplet_get(ig.droplet_id)
            .await
            .map_err(StepError::from)?
            .state
            .is_serving();
        if !serving {
            // Asleep (or rebooting): the vault takes it now, the engine when it serves.
            self.vault_put_pending(&db, ws, slot, &data, actor).await?;
            return Ok(CredentialOutcome::Pending {
                n8n_name: slot.name.clone(),
                why: "the engine is asleep: the new key reaches it when it wakes".into(),
            });
        }
        match self
            .rotate_into(&db, &r, ws, slot, &n8n_id, &data, actor)
            .await
        {
            Ok(()) => Ok(CredentialOutcome::Applied {
                n8n_name: slot.name.clone(),
            }),
            Err(StepError::Transient(e)) => {
                tracing::warn!(workspace = %ws.id, error = %e, "key saved; the droplet did not confirm it yet");
                Ok(CredentialOutcome::Pending {
                    n8n_name: slot.name.clone(),
                    why: "the engine did not answer: the new key reaches it as soon as it does"
                        .into(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores `data` as the credential's new version, marked as not yet in n8n; answers
    /// the mark's time.
    async fn vault_put_pending(
        &self,
        db: &Database,
        ws: &Workspace,
        slot: &crate::igniter::CredentialSlot,
        data: &serde_json::Value,
        actor: &str,
    ) -> Result<chrono::DateTime<chrono::Utc>, StepError> {
        db.vault_put(
            self.vault_keys()?,
            ws.id,
            slot.id,
            &slot.kind,
            &slot.name,
            data.to_string().as_bytes(),
            actor,
        )
        .await?;
        Ok(db.vault_mark_pending(ws.id, slot.id).await?)
    }

    /// Applies the vault's latest version of credential `credential` (a vault id) to the
    /// workspace's droplet: what a key update saved while the droplet was asleep or silent.
    /// Clears the mark set at `since` once the droplet confirms; audited
    /// (`CREDENTIAL_ROTATED`).
    pub async fn apply_pending_credential(
        &self,
        ws: &Workspace,
        credential: uuid::Uuid,
        since: chrono::DateTime<chrono::Utc>,
        actor: &str,
    ) -> Result<(), StepError> {
        let (db, ig) = self.completed_ignition(ws).await?;
        let r = reach(&ig)?;
        let p = params(&ig)?;
        let slot = p
            .credentials
            .iter()
            .find(|s| s.id == credential)
            .ok_or_else(|| {
                StepError::Fail(format!(
                    "credential {credential} is not one the latest ignition injected"
                ))
            })?;
        let n8n_id = n8n_credential_id(&ig, slot)?;
        let secret = db
            .vault_use(
                self.vault_keys()?,
                ws.id,
                credential,
                actor,
                "rotated into the tenant's n8n",
            )
            .await?
            .secret;
        self.send_rotation(&r, ws, slot, &n8n_id, &secret, actor, &db)
            .await?;
        db.vault_mark_applied(ws.id, credential, since).await?;
        Ok(())
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
        let since = self.vault_put_pending(db, ws, slot, data, actor).await?;
        let bytes = data.to_string().into_bytes();
        self.send_rotation(r, ws, slot, n8n_credential_id, &bytes, actor, db)
            .await?;
        db.vault_mark_applied(ws.id, slot.id, since).await?;
        Ok(())
    }

    /// ROTATE_CREDENTIAL with `secret` sealed to the sidecar, then the audit event (spec
    /// 63.1, Credentials: ROTATED).
    #[allow(
        clippy::too_many_arguments,
        reason = "the ignition's pieces a rotation reads, each once"
    )]
    async fn send_rotation(
        &self,
        r: &Reach,
        ws: &Workspace,
        slot: &crate::igniter::CredentialSlot,
        n8n_credential_id: &str,
        secret: &[u8],
        actor: &str,
        db: &Database,
    ) -> Result<(), StepError> {
        let sealed = r.seal(&slot.name, secret)?;
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
            &genesis_store::audit::AuditEvent::new(
                actor,
                AuditCategory::Credentials,
                "CREDENTIAL_ROTATED",
            )
            .workspace(ws.id)
            .subject(slot.name.clone())
            .details(serde_json::json!({"kind": slot.kind, "n8n_id": n8n_credential_id})),
        )
        .await?;
        Ok(())
    }
}

/// The id n8n gave the credential of `slot` when the ignition injected it.
fn n8n_credential_id(
    ig: &Ignition,
    slot: &crate::igniter::CredentialSlot,
) -> Result<String, StepError> {
    <crate::outputs::CredentialsOutput as crate::outputs::StepOutput>::of(ig)?
        .credentials
        .get(&slot.placeholder)
        .map(|c| c.id.clone())
        .ok_or_else(|| {
            StepError::Fail(format!("the ignition recorded no n8n id for {}", slot.name))
        })
}

/// What a tenant's key update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialOutcome {
    /// In the vault and in the droplet's n8n.
    Applied {
        /// The credential's name in n8n.
        n8n_name: String,
    },
    /// In the vault; the droplet's n8n gets it when it serves or answers again.
    Pending {
        /// The credential's name in n8n.
        n8n_name: String,
        /// Why it waits, for people.
        why: String,
    },
}
