//! Droplet snapshots (spec 66.2, 66.5; DECISIONS 106): what the snapshot schedule asked the
//! cloud for, where each snapshot stands, and which ones the GC may delete.
//!
//! A snapshot's life: `taking` (the row is written, with the name it will have at the
//! cloud, before the action starts), then `available` (found at the cloud by that name) or
//! `failed`; an available one is transferred to its backup datacenter (`transfer_state`);
//! at the end of its retention it is `deleted`. Every query here runs on one regional
//! database, the tenant's, and the rows name droplets and images only: no personal data.

use chrono::{DateTime, Utc};
use genesis_core::dr::{
    FAILED_RETRY_AFTER, POST_FAILOVER_FINAL, POST_FAILOVER_KEEP, SNAPSHOT_EVERY, SnapshotKind,
    WEEKLY_EVERY,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{Database, StoreError};

/// The droplet states whose droplets are snapshotted: every one that holds a tenant's data
/// in a steady state (a hibernating droplet too: its disk is what a restore would need).
const SNAPSHOTTED_STATES: &[&str] = &[
    "ACTIVE_HEALTHY",
    "ACTIVE_DEGRADED",
    "DRIFT_DETECTED",
    "HIBERNATING",
];

fn since(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A droplet due for its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSnapshot {
    /// The droplet.
    pub droplet_id: Uuid,
    /// Its tenant.
    pub workspace_id: Uuid,
    /// Its id at the cloud.
    pub provider_id: i64,
    /// Which kind today's snapshot is: weekly when the droplet has none from the last 7 days.
    pub kind: SnapshotKind,
}

/// One snapshot row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotRow {
    /// Its id.
    pub id: Uuid,
    /// The tenant.
    pub workspace_id: Uuid,
    /// The droplet it was taken of.
    pub droplet_id: Uuid,
    /// The droplet's id at the cloud.
    pub provider_id: Option<i64>,
    /// daily, weekly or pre_update.
    pub kind: String,
    /// Its name at the cloud.
    pub name: String,
    /// taking, available, failed or deleted.
    pub state: String,
    /// The snapshot action.
    pub action_id: Option<i64>,
    /// The image, once available.
    pub image_id: Option<i64>,
    /// Where it was taken.
    pub datacenter: Option<String>,
    /// Where its cross-region copy goes.
    pub backup_datacenter: Option<String>,
    /// The transfer action.
    pub transfer_action_id: Option<i64>,
    /// transferring, done or failed.
    pub transfer_state: Option<String>,
    /// When the transfer started.
    pub transfer_started_at: Option<DateTime<Utc>>,
    /// Asked for.
    pub requested_at: DateTime<Utc>,
    /// Until when it is kept.
    pub expires_at: DateTime<Utc>,
}

/// Why the GC deletes a snapshot (spec 66.5's conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposal {
    /// Its retention is over.
    Expired,
    /// It failed, and a later snapshot of the droplet was asked for (the retry).
    Failed,
    /// Its cross-region transfer did not finish within a day.
    OrphanedTransfer,
    /// Its droplet was replaced by a failover's restore: from day 7 at the end of its
    /// retention, on day 30 whatever is left (spec 66.5).
    PostFailover,
}

impl Disposal {
    /// Its name in the database.
    pub fn code(self) -> &'static str {
        match self {
            Disposal::Expired => "expired",
            Disposal::Failed => "failed",
            Disposal::OrphanedTransfer => "orphaned_transfer",
            Disposal::PostFailover => "post_failover",
        }
    }
}

/// Backup coverage of one regional database (`genesis dr status`, God Mode).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// Droplets that should have backups.
    pub droplets: i64,
    /// Of them, with an available snapshot from the last day and a half.
    pub fresh: i64,
    /// Of them, with a finished cross-region copy from the last day and a half.
    pub fresh_cross_region: i64,
    /// Snapshots kept (available), each counted once per datacenter that holds it.
    pub copies: i64,
    /// Their billable size, GB, per datacenter copy.
    pub gigabytes: f64,
    /// Snapshots being taken or transferred now.
    pub in_flight: i64,
}

impl Coverage {
    /// `part` of the droplets, as a whole percentage; `None` when there are none.
    pub fn percent_of_droplets(&self, part: i64) -> Option<i64> {
        (self.droplets > 0).then(|| (part as f64 * 100.0 / self.droplets as f64).round() as i64)
    }

    /// What the snapshots kept cost a month, in cents (spec 66.5's $0.25 a snapshot-month).
    pub fn monthly_cost_cents(&self) -> i64 {
        self.copies * genesis_core::dr::SNAPSHOT_MONTH_CENTS
    }
}

const SNAPSHOT_COLUMNS: &str = "s.id, s.workspace_id, s.droplet_id, d.provider_id, s.kind, s.name, \
     s.state, s.action_id, s.image_id, s.datacenter, s.backup_datacenter, s.transfer_action_id, \
     s.transfer_state, s.transfer_started_at, s.requested_at, s.expires_at";

#[derive(sqlx::FromRow)]
struct RawRow {
    id: Uuid,
    workspace_id: Uuid,
    droplet_id: Uuid,
    provider_id: Option<i64>,
    kind: String,
    name: String,
    state: String,
    action_id: Option<i64>,
    image_id: Option<i64>,
    datacenter: Option<String>,
    backup_datacenter: Option<String>,
    transfer_action_id: Option<i64>,
    transfer_state: Option<String>,
    transfer_started_at: Option<DateTime<Utc>>,
    requested_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl From<RawRow> for SnapshotRow {
    fn from(r: RawRow) -> Self {
        SnapshotRow {
            id: r.id,
            workspace_id: r.workspace_id,
            droplet_id: r.droplet_id,
            provider_id: r.provider_id,
            kind: r.kind,
            name: r.name,
            state: r.state,
            action_id: r.action_id,
            image_id: r.image_id,
            datacenter: r.datacenter,
            backup_datacenter: r.backup_datacenter,
            transfer_action_id: r.transfer_action_id,
            transfer_state: r.transfer_state,
            transfer_started_at: r.transfer_started_at,
            requested_at: r.requested_at,
            expires_at: r.expires_at,
        }
    }
}

impl Database {
    /// Up to `limit` droplets due for a snapshot at `now`: live ones of live tenants whose
    /// last snapshot being taken or kept was asked for [`SNAPSHOT_EVERY`] ago or more (or
    /// never), and whose last failure, if any, is [`FAILED_RETRY_AFTER`] old; the
    /// longest-waiting first. A pre-update snapshot (48 h, never copied) is not the day's
    /// backup, and does not count.
    pub async fn snapshots_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueSnapshot>, StoreError> {
        let states: Vec<String> = SNAPSHOTTED_STATES.iter().map(|s| (*s).to_owned()).collect();
        let rows = sqlx::query!(
            r#"SELECT d.id AS "droplet_id!", d.workspace_id AS "workspace_id!",
                      d.provider_id AS "provider_id!",
                      (SELECT max(s.requested_at) FROM genesis.snapshots s
                        WHERE s.droplet_id = d.id AND s.state IN ('taking', 'available')
                          AND s.kind <> 'pre_update') AS last,
                      (SELECT max(s.requested_at) FROM genesis.snapshots s
                        WHERE s.droplet_id = d.id AND s.kind = 'weekly'
                          AND s.state IN ('taking', 'available')) AS last_weekly
               FROM genesis.droplets d
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               WHERE d.state = ANY($1) AND d.provider_id IS NOT NULL AND w.status = 'ACTIVE'
                 AND NOT EXISTS (SELECT 1 FROM genesis.snapshots s
                                  WHERE s.droplet_id = d.id
                                    AND ((s.state IN ('taking', 'available')
                                          AND s.kind <> 'pre_update'
                                          AND s.requested_at > $2)
                                         OR ((s.state = 'failed' OR s.why_deleted = 'failed')
                                             AND s.requested_at > $4)))
               ORDER BY last NULLS FIRST, d.id
               LIMIT $3"#,
            &states,
            now - since(SNAPSHOT_EVERY),
            limit,
            now - since(FAILED_RETRY_AFTER)
        )
        .fetch_all(&self.app)
        .await?;
        let weekly_before = now - since(WEEKLY_EVERY);
        Ok(rows
            .into_iter()
            .map(|r| DueSnapshot {
                droplet_id: r.droplet_id,
                workspace_id: r.workspace_id,
                provider_id: r.provider_id,
                kind: if r.last_weekly.is_none_or(|w| w <= weekly_before) {
                    SnapshotKind::Weekly
                } else {
                    SnapshotKind::Daily
                },
            })
            .collect())
    }

    /// Records a snapshot about to be asked for, under `name`, before the cloud is called:
    /// a crash after the call leaves a row the next pass resolves by that name.
    pub async fn snapshot_requested(
        &self,
        due: &DueSnapshot,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Uuid, StoreError> {
        let id = Uuid::now_v7();
        sqlx::query!(
            r#"INSERT INTO genesis.snapshots
                 (id, workspace_id, droplet_id, kind, name, state, requested_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, 'taking', $6, $7)"#,
            id,
            due.workspace_id,
            due.droplet_id,
            due.kind.code(),
            name,
            now,
            now + since(due.kind.retention()),
        )
        .execute(&self.app)
        .await?;
        Ok(id)
    }

    /// The action the cloud started for a snapshot.
    pub async fn snapshot_action(&self, id: Uuid, action: i64) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE genesis.snapshots SET action_id = $2 WHERE id = $1 AND state = 'taking'",
            id,
            action
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Snapshots being taken, oldest first.
    pub async fn snapshots_taking(&self, limit: i64) -> Result<Vec<SnapshotRow>, StoreError> {
        self.snapshot_rows("s.state = 'taking'", "s.requested_at", limit)
            .await
    }

    /// Available snapshots whose cross-region copy is still to start: the newest of each
    /// droplet only (an older one would be superseded by it).
    pub async fn snapshots_to_transfer(&self, limit: i64) -> Result<Vec<SnapshotRow>, StoreError> {
        self.snapshot_rows(
            // The newest of the schedule's own: a pre-update snapshot is never copied, nor
            // does it keep the day's from being copied.
            "s.state = 'available' AND s.transfer_state IS NULL AND s.kind <> 'pre_update'
             AND s.requested_at = (SELECT max(o.requested_at) FROM genesis.snapshots o
                                    WHERE o.droplet_id = s.droplet_id AND o.state = 'available'
                                      AND o.kind <> 'pre_update')",
            "s.requested_at",
            limit,
        )
        .await
    }

    /// The snapshot named `name`, in any state.
    pub async fn snapshot_named(&self, name: &str) -> Result<Option<SnapshotRow>, StoreError> {
        let row: Option<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM genesis.snapshots s
             JOIN genesis.droplets d ON d.id = s.droplet_id
             WHERE s.name = $1"
        )))
        .bind(name)
        .fetch_optional(&self.app)
        .await?;
        Ok(row.map(SnapshotRow::from))
    }

    /// Snapshots whose transfer is under way.
    pub async fn snapshots_transferring(&self, limit: i64) -> Result<Vec<SnapshotRow>, StoreError> {
        self.snapshot_rows(
            "s.transfer_state = 'transferring' AND s.state = 'available'",
            "s.transfer_started_at",
            limit,
        )
        .await
    }

    async fn snapshot_rows(
        &self,
        filter: &str,
        order: &str,
        limit: i64,
    ) -> Result<Vec<SnapshotRow>, StoreError> {
        let rows: Vec<RawRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM genesis.snapshots s
             JOIN genesis.droplets d ON d.id = s.droplet_id
             WHERE {filter} ORDER BY {order} LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.app)
        .await?;
        Ok(rows.into_iter().map(SnapshotRow::from).collect())
    }

    /// A snapshot found at the cloud: its image, where it is, its size.
    pub async fn snapshot_available(
        &self,
        id: Uuid,
        image: i64,
        datacenter: &str,
        size_gb: f64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.snapshots
               SET state = 'available', image_id = $2, datacenter = $3, size_gb = $4,
                   available_at = $5
               WHERE id = $1 AND state = 'taking'"#,
            id,
            image,
            datacenter,
            size_gb,
            now
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// A snapshot the cloud did not make.
    pub async fn snapshot_failed(&self, id: Uuid) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE genesis.snapshots SET state = 'failed' WHERE id = $1 AND state = 'taking'",
            id
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// A transfer started.
    pub async fn snapshot_transfer_started(
        &self,
        id: Uuid,
        backup_datacenter: &str,
        action: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.snapshots
               SET backup_datacenter = $2, transfer_action_id = $3,
                   transfer_state = 'transferring', transfer_started_at = $4
               WHERE id = $1 AND transfer_state IS NULL"#,
            id,
            backup_datacenter,
            action,
            now
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// A transfer's end: `done`, or `failed` (the copy is then taken again from the next
    /// snapshot).
    pub async fn snapshot_transfer_ended(&self, id: Uuid, done: bool) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.snapshots SET transfer_state = $2
               WHERE id = $1 AND transfer_state = 'transferring'"#,
            id,
            if done { "done" } else { "failed" }
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Up to `limit` snapshots the GC deletes at `now`, each with why (spec 66.5):
    /// - failed, once a later snapshot of its droplet was asked for (the retry);
    /// - its cross-region transfer started before `orphaned_before` and never finished, or
    ///   past its retention; in both cases only once a newer snapshot of its droplet is
    ///   available: a tenant is never left without a backup because its schedule stalled;
    /// - its droplet was replaced by a failover's restore (it gets no newer snapshot): from
    ///   [`POST_FAILOVER_KEEP`] after the tenant's restore, past its retention, once the
    ///   new droplet has a snapshot of its own; from [`POST_FAILOVER_FINAL`], whatever is
    ///   left.
    pub async fn snapshots_to_dispose(
        &self,
        now: DateTime<Utc>,
        orphaned_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(SnapshotRow, Disposal)>, StoreError> {
        let rows: Vec<Disposable> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SNAPSHOT_COLUMNS},
                    CASE WHEN s.state = 'failed' THEN 'failed'
                         WHEN s.transfer_state = 'transferring' AND s.transfer_started_at < $2
                           THEN 'orphaned_transfer'
                         WHEN replaced.at IS NOT NULL THEN 'post_failover'
                         ELSE 'expired' END AS why
             FROM genesis.snapshots s
             JOIN genesis.droplets d ON d.id = s.droplet_id
             -- When a failover's restore replaced its droplet, and whether the new one has
             -- a snapshot of its own.
             LEFT JOIN LATERAL (
                 SELECT ft.finished_at AS at,
                        EXISTS (SELECT 1 FROM genesis.snapshots n
                                 WHERE n.droplet_id = ft.new_droplet_id
                                   AND n.state = 'available') AS backed_up
                 FROM genesis.failover_tenants ft
                 WHERE ft.old_droplet_id = s.droplet_id AND ft.state = 'verified'
                   AND ft.finished_at IS NOT NULL
                 ORDER BY ft.finished_at DESC LIMIT 1) replaced ON true
             WHERE (s.state = 'failed'
                    AND EXISTS (SELECT 1 FROM genesis.snapshots r
                                 WHERE r.droplet_id = s.droplet_id
                                   AND r.requested_at > s.requested_at))
                OR (s.state = 'available'
                    AND ((s.transfer_state = 'transferring' AND s.transfer_started_at < $2)
                         OR s.expires_at <= $1)
                    AND EXISTS (SELECT 1 FROM genesis.snapshots n
                                 WHERE n.droplet_id = s.droplet_id AND n.state = 'available'
                                   AND n.requested_at > s.requested_at))
                OR (s.state = 'available'
                    AND ((replaced.at <= $4 AND s.expires_at <= $1 AND replaced.backed_up)
                         OR replaced.at <= $5))
             ORDER BY s.requested_at LIMIT $3"
        )))
        .bind(now)
        .bind(orphaned_before)
        .bind(limit)
        .bind(now - since(POST_FAILOVER_KEEP))
        .bind(now - since(POST_FAILOVER_FINAL))
        .fetch_all(&self.app)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let why = match r.why.as_str() {
                    "failed" => Disposal::Failed,
                    "orphaned_transfer" => Disposal::OrphanedTransfer,
                    "post_failover" => Disposal::PostFailover,
                    _ => Disposal::Expired,
                };
                (SnapshotRow::from(r.row), why)
            })
            .collect())
    }

    /// A snapshot deleted at the cloud (or found gone there).
    pub async fn snapshot_deleted(
        &self,
        id: Uuid,
        why: Disposal,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.snapshots SET state = 'deleted', deleted_at = $3, why_deleted = $2
               WHERE id = $1 AND state <> 'deleted'"#,
            id,
            why.code(),
            now
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// This database's backup coverage at `now`.
    pub async fn snapshot_coverage(&self, now: DateTime<Utc>) -> Result<Coverage, StoreError> {
        let states: Vec<String> = SNAPSHOTTED_STATES.iter().map(|s| (*s).to_owned()).collect();
        let fresh_after = now - since(FRESH_FOR);
        let r = sqlx::query!(
            r#"WITH live AS (
                   SELECT d.id FROM genesis.droplets d
                   JOIN genesis.workspaces w ON w.id = d.workspace_id
                   WHERE d.state = ANY($1) AND d.provider_id IS NOT NULL AND w.status = 'ACTIVE')
               SELECT
                 (SELECT count(*) FROM live) AS "droplets!",
                 (SELECT count(*) FROM live l WHERE EXISTS (
                     SELECT 1 FROM genesis.snapshots s WHERE s.droplet_id = l.id
                        AND s.state = 'available' AND s.requested_at > $2)) AS "fresh!",
                 (SELECT count(*) FROM live l WHERE EXISTS (
                     SELECT 1 FROM genesis.snapshots s WHERE s.droplet_id = l.id
                        AND s.state = 'available' AND s.transfer_state = 'done'
                        AND s.requested_at > $2)) AS "fresh_cross_region!",
                 (SELECT count(*) + count(*) FILTER (WHERE transfer_state = 'done')
                    FROM genesis.snapshots WHERE state = 'available') AS "copies!",
                 (SELECT coalesce(sum(size_gb * CASE WHEN transfer_state = 'done' THEN 2 ELSE 1 END), 0)
                    FROM genesis.snapshots WHERE state = 'available') AS "gigabytes!",
                 (SELECT count(*) FROM genesis.snapshots
                   WHERE state = 'taking' OR transfer_state = 'transferring') AS "in_flight!""#,
            &states,
            fresh_after
        )
        .fetch_one(&self.app)
        .await?;
        Ok(Coverage {
            droplets: r.droplets,
            fresh: r.fresh,
            fresh_cross_region: r.fresh_cross_region,
            copies: r.copies,
            gigabytes: r.gigabytes,
            in_flight: r.in_flight,
        })
    }
}

/// A snapshot counts as fresh for this long: a day, and half a day for the schedule's
/// spread and the transfer.
pub const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(36 * 3600);

#[derive(sqlx::FromRow)]
struct Disposable {
    #[sqlx(flatten)]
    row: RawRow,
    why: String,
}
