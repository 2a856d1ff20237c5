//! Lost droplets (spec 66.1's single droplet; DECISIONS 113): a tenant's serving droplet that
//! a hard reboot did not bring back (ORPHAN), which the `droplet-restore` reconciler
//! replaces by a restore from its newest snapshot, and retires once replaced.

use chrono::{DateTime, Utc};
use genesis_core::{DropletId, Region, WorkspaceId};

use crate::{Database, StoreError};

/// A lost droplet to restore.
#[derive(Debug, Clone, PartialEq)]
pub struct LostDroplet {
    /// The droplet.
    pub droplet_id: DropletId,
    /// Its tenant.
    pub workspace_id: WorkspaceId,
    /// Its region.
    pub region: Region,
    /// Its newest available snapshot (image, datacenter), if any: without one, the tenant
    /// is re-ignited from its vault and templates.
    pub snapshot: Option<(i64, String)>,
    /// Restores of it tried before (all rolled back).
    pub attempts: i64,
}

impl Database {
    /// Up to `limit` lost droplets to restore now: ORPHAN, still their tenant's serving
    /// droplet (its latest finished saga's), of a live tenant with no saga in flight, not in
    /// a region confirmed failed (its failover restores it), tried fewer than
    /// `max_attempts` times, the last try finished before `retry_before`.
    pub async fn lost_droplets(
        &self,
        max_attempts: i64,
        retry_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LostDroplet>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT d.id AS "id!", d.workspace_id AS "workspace_id!", d.region AS "region!",
                      snap.image_id AS "image_id?", snap.datacenter AS "datacenter?",
                      tries.n AS "attempts!"
               FROM genesis.droplets d
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               LEFT JOIN LATERAL (
                   SELECT s.image_id, s.datacenter FROM genesis.snapshots s
                   WHERE s.droplet_id = d.id AND s.state = 'available'
                     AND s.image_id IS NOT NULL AND s.datacenter IS NOT NULL
                   ORDER BY s.requested_at DESC LIMIT 1) snap ON true
               CROSS JOIN LATERAL (
                   SELECT count(*) AS n, max(i.finished_at) AS last
                   FROM genesis.ignitions i
                   WHERE i.workspace_id = d.workspace_id
                     AND i.params -> 'restore' ->> 'replaces' = d.id::text) tries
               WHERE d.state = 'ORPHAN' AND w.status IN ('ACTIVE', 'SUSPENDED')
                 AND d.id = (SELECT i.droplet_id FROM genesis.ignitions i
                              WHERE i.workspace_id = d.workspace_id AND i.phase = 'DONE'
                              ORDER BY i.started_at DESC, i.id DESC LIMIT 1)
                 AND NOT EXISTS (SELECT 1 FROM genesis.ignitions i
                                  WHERE i.workspace_id = d.workspace_id
                                    AND i.phase IN ('RUNNING', 'UNWINDING'))
                 AND d.region NOT IN (SELECT r.region FROM genesis.region_incidents r
                                       WHERE r.closed_at IS NULL AND r.level = 'failed')
                 AND tries.n < $1 AND (tries.last IS NULL OR tries.last < $2)
               ORDER BY d.state_since LIMIT $3"#,
            max_attempts,
            retry_before,
            limit,
        )
        .fetch_all(&self.app)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(LostDroplet {
                    droplet_id: DropletId::from_uuid(r.id),
                    workspace_id: WorkspaceId::from_uuid(r.workspace_id).map_err(|_| {
                        StoreError::Corrupt {
                            what: "workspace id",
                            value: r.workspace_id.to_string(),
                        }
                    })?,
                    region: Region::parse(&r.region).map_err(|_| StoreError::Corrupt {
                        what: "region",
                        value: r.region.clone(),
                    })?,
                    snapshot: r.image_id.zip(r.datacenter),
                    attempts: r.attempts,
                })
            })
            .collect()
    }

    /// Up to `limit` lost droplets a finished restore replaced (outside any failover): to
    /// delete at the cloud and retire. Each with its cloud id.
    pub async fn lost_droplets_replaced(
        &self,
        limit: i64,
    ) -> Result<Vec<(DropletId, Option<i64>)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT d.id, d.provider_id FROM genesis.droplets d
               WHERE d.state = 'ORPHAN'
                 AND EXISTS (SELECT 1 FROM genesis.ignitions i
                              WHERE i.workspace_id = d.workspace_id AND i.phase = 'DONE'
                                AND i.params -> 'restore' ->> 'replaces' = d.id::text
                                AND i.params -> 'restore' ->> 'failover_id' IS NULL)
               ORDER BY d.state_since LIMIT $1"#,
            limit,
        )
        .fetch_all(&self.app)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (DropletId::from_uuid(r.id), r.provider_id))
            .collect())
    }
}
