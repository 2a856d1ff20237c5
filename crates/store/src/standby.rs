//! The hot-standby pool's records (spec 55.4 strategy 3): which warm blank droplets each
//! region holds, which tenant claimed one while its own droplet wakes, and when the standby
//! served and was released.
//!
//! # Why a claimed standby is never returned to the pool
//! Serving a tenant puts that tenant's credentials and workflows into the standby's n8n.
//! Wiping them in place would have to be perfect forever; destroying the machine is. So a
//! release always terminates the standby (through the droplet state machine, audited, tokens
//! revoked) and the pool refills with a fresh one.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletId, Onboarding, Region, Slug, Tier, WorkspaceId, WorkspaceName};
use uuid::Uuid;

use crate::audit::record;
use crate::droplets::{register_in, terminate_in};
use crate::workspaces::insert_workspace;
use crate::{AuditEvent, Database, Droplet, NewWorkspace, StoreError, Workspace};

/// One standby droplet and its claim.
#[derive(Debug, Clone)]
pub struct StandbyDroplet {
    /// The droplet (owned by its region's pool workspace).
    pub droplet: Droplet,
    /// The tenant it serves or is being prepared for.
    pub claimed_by: Option<WorkspaceId>,
    /// When it was claimed.
    pub claimed_at: Option<DateTime<Utc>>,
    /// When the tenant's workflows were running on it.
    pub serving_at: Option<DateTime<Utc>>,
}

/// A High-Priority tenant whose own droplet is waking and who has no standby for this wake.
#[derive(Debug, Clone)]
pub struct WakeWithoutStandby {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// Its own (WAKING) droplet.
    pub droplet: DropletId,
    /// Where a standby must come from (data residency: never another region).
    pub region: Region,
}

fn ws_id(u: Uuid) -> Result<WorkspaceId, StoreError> {
    WorkspaceId::from_uuid(u).map_err(|_| StoreError::Corrupt {
        what: "workspace id",
        value: u.to_string(),
    })
}

/// The reserved workspace that owns `region`'s standbys: what it is called.
fn pool_workspace(region: Region) -> Result<NewWorkspace, StoreError> {
    let invalid = |message: String| StoreError::Invalid {
        field: "standby pool",
        message,
    };
    Ok(NewWorkspace {
        id: WorkspaceId::new(),
        slug: Slug::parse(&format!("standby_pool_{}", region.code().replace('-', "_")))
            .map_err(|e| invalid(e.to_string()))?,
        name: WorkspaceName::parse(&format!("Hot-standby pool ({})", region.code()))
            .map_err(|e| invalid(e.to_string()))?,
        region,
        // Enterprise never hibernates (spec 55.4 strategy 1): a standby is always warm.
        tier: Tier::Enterprise,
        onboarding: Onboarding::default(),
    })
}

macro_rules! standby_from {
    ($r:expr) => {{
        let r = $r;
        StandbyDroplet {
            claimed_by: r.claimed_by.map(ws_id).transpose()?,
            claimed_at: r.claimed_at,
            serving_at: r.serving_at,
            droplet: Droplet::try_from(crate::droplets::droplet_row!(r))?,
        }
    }};
}

impl Database {
    /// The workspace that owns `region`'s standbys, created (audited) on first use. Safe
    /// when two replicas race: the loser reads the winner's.
    pub async fn standby_pool_workspace(
        &self,
        region: Region,
        actor: &str,
    ) -> Result<WorkspaceId, StoreError> {
        let existing = sqlx::query_scalar!(
            "SELECT workspace_id FROM genesis.standby_pools WHERE region = $1",
            region.code(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?;
        if let Some(id) = existing {
            return ws_id(id);
        }
        let new = pool_workspace(region)?;
        let mut tx = self.app.begin().await?;
        let lock = format!("standby-pool-{}", region.code());
        sqlx::query!("SELECT pg_advisory_xact_lock(hashtext($1))", lock)
            .execute(&mut *tx)
            .await?;
        let raced = sqlx::query_scalar!(
            "SELECT workspace_id FROM genesis.standby_pools WHERE region = $1",
            region.code(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = raced {
            return ws_id(id);
        }
        let ws: Workspace = insert_workspace(&mut tx, &new, actor).await?;
        sqlx::query!(
            "INSERT INTO genesis.standby_pools (region, workspace_id) VALUES ($1, $2)",
            region.code(),
            ws.id.as_uuid(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ws.id)
    }

    /// Whether `workspace` is a standby pool's (not a tenant).
    pub async fn is_standby_pool(&self, workspace: WorkspaceId) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM genesis.standby_pools WHERE workspace_id = $1) AS "e!""#,
            workspace.as_uuid(),
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }

    /// Registers a new standby droplet (PENDING, owned by `pool`) and its pool row in one
    /// audited transaction, before the cloud is asked for the machine.
    pub async fn standby_register(
        &self,
        id: DropletId,
        pool: WorkspaceId,
        region: Region,
        actor: &str,
    ) -> Result<Droplet, StoreError> {
        let mut tx = self.app.begin().await?;
        let droplet = register_in(&mut tx, id, pool, region, actor).await?;
        sqlx::query!(
            "INSERT INTO genesis.standby_droplets (droplet_id, region) VALUES ($1, $2)",
            id.as_uuid(),
            region.code(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(droplet)
    }

    /// Every standby not yet released, warming, ready or claimed.
    pub async fn standby_live(&self) -> Result<Vec<StandbyDroplet>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT d.id, d.workspace_id, d.provider_id, d.region, d.state, d.version,
                      d.created_at, d.updated_at, s.claimed_by, s.claimed_at, s.serving_at
               FROM genesis.standby_droplets s JOIN genesis.droplets d ON d.id = s.droplet_id
               WHERE s.released_at IS NULL
               ORDER BY s.created_at"#,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(standby_from!(r));
        }
        Ok(out)
    }

    /// Claims the oldest ready standby of `region` for `tenant` (audited `STANDBY_CLAIMED`),
    /// or `None` when the region has none ready. Two claimers never get the same one, and a
    /// tenant never holds two.
    pub async fn standby_claim(
        &self,
        region: Region,
        tenant: WorkspaceId,
        actor: &str,
    ) -> Result<Option<StandbyDroplet>, StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query!(
            r#"UPDATE genesis.standby_droplets s SET claimed_by = $2, claimed_at = now()
               FROM genesis.droplets d
               WHERE d.id = s.droplet_id AND s.droplet_id = (
                   SELECT f.droplet_id FROM genesis.standby_droplets f
                   JOIN genesis.droplets fd ON fd.id = f.droplet_id
                   WHERE f.region = $1 AND f.claimed_by IS NULL AND f.released_at IS NULL
                     AND fd.state = 'ACTIVE_HEALTHY'
                   ORDER BY f.created_at LIMIT 1
                   FOR UPDATE OF f SKIP LOCKED)
               RETURNING d.id, d.workspace_id, d.provider_id, d.region, d.state, d.version,
                         d.created_at, d.updated_at, s.claimed_by, s.claimed_at, s.serving_at"#,
            region.code(),
            tenant.as_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| {
            if crate::error::sqlstate(&e).as_deref() == Some("23505") {
                StoreError::Conflict {
                    field: "standby claim",
                    value: tenant.to_string(),
                }
            } else {
                StoreError::Database(e)
            }
        })?;
        let Some(r) = row else {
            return Ok(None);
        };
        let standby = standby_from!(r);
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Droplet, "STANDBY_CLAIMED")
                .workspace(tenant)
                .subject(standby.droplet.id.to_string())
                .details(serde_json::json!({ "region": region.code() })),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(standby))
    }

    /// Whether the standby whose cloud id is `provider_id` is claimed by `tenant` now (its
    /// sidecar signs the tenant's calls as the pool's: spec 65.3).
    pub async fn standby_serves(
        &self,
        provider_id: i64,
        tenant: WorkspaceId,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT EXISTS (
                   SELECT 1 FROM genesis.standby_droplets s
                   JOIN genesis.droplets d ON d.id = s.droplet_id
                   WHERE d.provider_id = $1 AND s.claimed_by = $2 AND s.released_at IS NULL
               ) AS "serves!""#,
            provider_id,
            tenant.as_uuid(),
        )
        .fetch_one(&mut *self.read().await?)
        .await?)
    }

    /// Records that the tenant's workflows run on its claimed standby (audited
    /// `STANDBY_SERVING`). `false` when the claim is gone (released meanwhile).
    pub async fn standby_serving(
        &self,
        standby: DropletId,
        tenant: WorkspaceId,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let done = sqlx::query_scalar!(
            r#"UPDATE genesis.standby_droplets SET serving_at = now()
               WHERE droplet_id = $1 AND claimed_by = $2 AND released_at IS NULL
               RETURNING extract(epoch FROM (now() - claimed_at))::float8 AS "secs!""#,
            standby.as_uuid(),
            tenant.as_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(secs) = done else {
            return Ok(false);
        };
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Droplet, "STANDBY_SERVING")
                .workspace(tenant)
                .subject(standby.to_string())
                .details(serde_json::json!({ "seconds_since_claim": secs })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Releases a standby and terminates its droplet row in one audited transaction
    /// (`STANDBY_RELEASED`, then the droplet's own TERMINATED transition). The caller has
    /// deleted the machine at the cloud first. `false` when it was already released.
    pub async fn standby_release(
        &self,
        standby: DropletId,
        reason: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let released = sqlx::query!(
            r#"UPDATE genesis.standby_droplets SET released_at = now()
               WHERE droplet_id = $1 AND released_at IS NULL
               RETURNING claimed_by"#,
            standby.as_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = released else {
            return Ok(false);
        };
        let mut event = AuditEvent::new(actor, AuditCategory::Droplet, "STANDBY_RELEASED")
            .subject(standby.to_string())
            .details(serde_json::json!({ "reason": reason }));
        if let Some(tenant) = r.claimed_by {
            event = event.workspace(ws_id(tenant)?);
        }
        record(&mut tx, &event).await?;
        terminate_in(&mut tx, standby, actor).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// High-Priority tenants whose own droplet is WAKING, woken by anything but a pre-warm
    /// (a pre-warm is minutes ahead of need), with no standby claimed since this wake began.
    pub async fn standby_wanted(&self) -> Result<Vec<WakeWithoutStandby>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT d.id, d.workspace_id, d.region
               FROM genesis.droplets d
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               JOIN LATERAL (SELECT h.woken_at, h.wake_trigger FROM genesis.hibernations h
                             WHERE h.droplet_id = d.id ORDER BY h.id DESC LIMIT 1) h ON true
               WHERE d.state = 'WAKING' AND w.tier = 'high-priority'
                 AND h.woken_at IS NOT NULL AND h.wake_trigger IS DISTINCT FROM 'prewarm'
                 AND NOT EXISTS (SELECT 1 FROM genesis.standby_droplets s
                                 WHERE s.claimed_by = d.workspace_id AND s.claimed_at >= h.woken_at)
               ORDER BY h.woken_at"#,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(WakeWithoutStandby {
                    workspace: ws_id(r.workspace_id)?,
                    droplet: DropletId::from_uuid(r.id),
                    region: Region::parse(&r.region).map_err(|_| StoreError::Corrupt {
                        what: "droplet region",
                        value: r.region.clone(),
                    })?,
                })
            })
            .collect()
    }
}
