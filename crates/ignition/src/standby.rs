//! The hot-standby pool's two actions that speak to droplets (spec 55.4 strategy 3): make a
//! warm blank droplet for a region's pool, and put a waking tenant on a claimed one.
//!
//! A standby's sidecar was booted for its pool's reserved workspace, and every command to it
//! is scoped to that identity and to its droplet, whichever tenant it serves: the sidecar
//! never needs to be re-scoped, and a command signed for a tenant's own droplet can never
//! run on a standby. The tenant's credentials come from the vault sealed to the standby's
//! own key, exactly as an ignition seals them.

use genesis_cloud::Cloud;
use genesis_core::{DropletId, Region};
use genesis_store::{Database, DesiredWorkflowRow, Droplet, Workspace};

use crate::actions::{Reach, StepError};
use crate::igniter::{Igniter, workspace_tag};

/// The tag every standby carries at the cloud (with `genesis` and its pool's `ws-` tag).
pub const STANDBY_TAG: &str = "genesis-standby";

impl<C: Cloud> Igniter<C> {
    /// Registers a standby droplet for `region`'s pool and asks the cloud for it. Its
    /// sidecar hand-shakes like any other; the droplet is ready once ACTIVE_HEALTHY.
    pub async fn standby_create(
        &self,
        db: &Database,
        region: Region,
    ) -> Result<Droplet, StepError> {
        let actor = &self.settings.actor;
        let pool = db.standby_pool_workspace(region, actor).await?;
        let id = DropletId::new();
        let droplet = db.standby_register(id, pool, region, actor).await?;
        let simple = id.as_uuid().simple().to_string();
        let name = format!("standby-{}-{}", region.code(), &simple[simple.len() - 12..]);
        let tags = vec!["genesis".into(), STANDBY_TAG.into(), workspace_tag(pool)];
        let base = genesis_cloud::ImageRef::Slug(self.settings.droplet_image.clone());
        let place = crate::actions::Placement::home(region, name, base);
        let machine = self.create_machine(db, pool, &place, id, tags).await?;
        db.droplet_set_provider(id, machine.id).await?;
        Ok(droplet)
    }

    /// Puts `tenant` on `standby`: its credentials injected from the vault, its workflows
    /// deployed at the current template version with the active flags its own droplet
    /// wants, and its webhook registry pointed at the standby. The standby's desired
    /// workflows are recorded, so the watchdog watches it while it serves. Idempotent (by
    /// credential and workflow name), so a retried job converges.
    pub async fn standby_serve(
        &self,
        tenant: &Workspace,
        standby: &Droplet,
    ) -> Result<Vec<DesiredWorkflowRow>, StepError> {
        let (db, ig) = self.completed_ignition(tenant).await?;
        let provider_id = standby
            .provider_id
            .ok_or_else(|| StepError::Fail("the standby has no cloud id".into()))?;
        let machine = self
            .cloud
            .droplet_get(provider_id)
            .await
            .map_err(|e| StepError::Transient(format!("cloud: {e}")))?;
        let ip = machine
            .public_ipv4()
            .ok_or_else(|| StepError::Transient("the standby has no address yet".into()))?
            .to_owned();
        let (_, sidecar_key) = db
            .droplet_handshake_record(standby.id)
            .await?
            .ok_or_else(|| StepError::Fail("the standby never hand-shook".into()))?;
        let r = Reach {
            ip,
            provider_id,
            sidecar_key,
            identity: standby.workspace_id.as_uuid(),
        };
        let injected = self.inject_into(&r, &ig, tenant, &db).await?;
        let relay = db.droplet_relay_url(standby.id).await?;
        let mapping = self.mapping_with(tenant, &db, injected, relay).await?;
        let rows = self
            .deploy_wanted(
                crate::upkeep::DeployTarget::Elsewhere(&r),
                tenant,
                &db,
                &ig,
                &mapping,
                None,
            )
            .await?;
        db.droplet_workflows_put(standby.id, &rows).await?;
        Ok(rows)
    }
}
