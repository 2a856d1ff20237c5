//! Region outages as the platform saw them (spec 66.1; DECISIONS 111): what one pass of the
//! `region-watch` reconciler reads of a region (its droplets' heartbeats, a few droplets to
//! look up at the cloud) and the incident it keeps, with an audit event at each of the
//! incident's turns (opened, confirmed failed, closed) in the same transaction.

use chrono::{DateTime, Utc};
use genesis_core::Region;
use genesis_core::audit::AuditCategory;
use genesis_core::outage::{Incident, OutageLevel, OutageSignals};
use serde::Serialize;
use uuid::Uuid;

use crate::{AuditEvent, Database, StoreError, audit::record};

/// The droplet states in which a sidecar should be reporting (the zombie detector's).
const WATCHED: [&str; 3] = ["ACTIVE_HEALTHY", "ACTIVE_DEGRADED", "DRIFT_DETECTED"];
/// States whose droplets exist at the cloud and may be looked up to probe a region (the
/// watched ones, plus those a failover or a reboot set aside).
const AT_THE_CLOUD: [&str; 7] = [
    "ACTIVE_HEALTHY",
    "ACTIVE_DEGRADED",
    "DRIFT_DETECTED",
    "MAINTENANCE",
    "ZOMBIE",
    "REBOOTING",
    "ORPHAN",
];

/// What the database says of a region's heartbeats, and whom to look up at the cloud.
#[derive(Debug, Clone, Default)]
pub struct RegionHeartbeats {
    /// Droplets that should be reporting.
    pub watched: i64,
    /// Of those, silent since the cut-off.
    pub silent: i64,
    /// Cloud ids of a few droplets to look up: silent ones first, then any the region still
    /// has at the cloud.
    pub probe_ids: Vec<i64>,
}

/// One incident.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RegionIncident {
    /// Its id.
    pub id: Uuid,
    /// The region.
    pub region: String,
    /// `degraded` or `failed`.
    pub level: String,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it was confirmed failed.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Since when failed verdicts hold.
    pub failing_since: Option<DateTime<Utc>>,
    /// Since when clear verdicts hold.
    pub clear_since: Option<DateTime<Utc>>,
    /// Droplets that should be reporting, at the last pass.
    pub watched: i64,
    /// Of those, silent.
    pub silent: i64,
    /// Droplets looked up at the cloud at the last pass.
    pub probes: i32,
    /// Looks that failed.
    pub probe_failures: i32,
    /// The last pass.
    pub seen_at: DateTime<Utc>,
    /// The failover declared for it.
    pub failover_id: Option<Uuid>,
    /// When it closed (the region recovered).
    pub closed_at: Option<DateTime<Utc>>,
}

impl RegionIncident {
    /// The rules' view of it.
    pub fn incident(&self) -> Incident {
        Incident {
            level: OutageLevel::from_code(&self.level).unwrap_or(OutageLevel::Degraded),
            failing_since: self.failing_since,
            clear_since: self.clear_since,
        }
    }
}

const COLUMNS: &str = "id, region, level, opened_at, confirmed_at, failing_since, clear_since, \
    watched, silent, probes, probe_failures, seen_at, failover_id, closed_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    region: String,
    level: String,
    opened_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    clear_since: Option<DateTime<Utc>>,
    watched: i64,
    silent: i64,
    probes: i32,
    probe_failures: i32,
    seen_at: DateTime<Utc>,
    failover_id: Option<Uuid>,
    closed_at: Option<DateTime<Utc>>,
}

impl From<Row> for RegionIncident {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            region: r.region,
            level: r.level,
            opened_at: r.opened_at,
            confirmed_at: r.confirmed_at,
            failing_since: r.failing_since,
            clear_since: r.clear_since,
            watched: r.watched,
            silent: r.silent,
            probes: r.probes,
            probe_failures: r.probe_failures,
            seen_at: r.seen_at,
            failover_id: r.failover_id,
            closed_at: r.closed_at,
        }
    }
}

fn audit(event: &'static str, region: Region, id: Uuid, s: &OutageSignals) -> AuditEvent {
    AuditEvent::new("system:region-watch", AuditCategory::Operations, event)
        .subject(id.to_string())
        .details(serde_json::json!({
            "region": region.code(), "watched": s.watched, "silent": s.silent,
            "probes": s.probes, "probe_failures": s.probe_failures,
        }))
}

impl Database {
    /// `region`'s heartbeats: its droplets that should be reporting, those silent since
    /// `silent_before`, and up to `probes` cloud ids to look up.
    pub async fn region_heartbeats(
        &self,
        region: Region,
        silent_before: DateTime<Utc>,
        probes: i64,
    ) -> Result<RegionHeartbeats, StoreError> {
        let watched: Vec<String> = WATCHED.iter().map(|s| (*s).to_owned()).collect();
        let at_cloud: Vec<String> = AT_THE_CLOUD.iter().map(|s| (*s).to_owned()).collect();
        let counts = sqlx::query!(
            r#"SELECT count(*) AS "watched!",
                      count(*) FILTER (WHERE COALESCE(last_heartbeat_at, updated_at) < $3)
                        AS "silent!"
               FROM genesis.droplets WHERE region = $1 AND state = ANY($2)"#,
            region.code(),
            &watched,
            silent_before,
        )
        .fetch_one(&mut *self.read().await?)
        .await?;
        // Silent watched droplets first (the ones in question), then any the cloud still
        // holds there (a region whose droplets a failover set aside is still probed, to see
        // it come back).
        let probe_ids = sqlx::query_scalar!(
            r#"SELECT provider_id AS "provider_id!" FROM genesis.droplets
               WHERE region = $1 AND state = ANY($2) AND provider_id IS NOT NULL
               ORDER BY (state = ANY($3) AND COALESCE(last_heartbeat_at, updated_at) < $4) DESC,
                        COALESCE(last_heartbeat_at, updated_at)
               LIMIT $5"#,
            region.code(),
            &at_cloud,
            &watched,
            silent_before,
            probes,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(RegionHeartbeats {
            watched: counts.watched,
            silent: counts.silent,
            probe_ids,
        })
    }

    /// `region`'s open incident, if any.
    pub async fn region_incident_open(
        &self,
        region: Region,
    ) -> Result<Option<RegionIncident>, StoreError> {
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM genesis.region_incidents
             WHERE region = $1 AND closed_at IS NULL"
        )))
        .bind(region.code())
        .fetch_optional(&self.app)
        .await?;
        Ok(row.map(Into::into))
    }

    /// Incidents, newest first: the open ones only, or the last `limit` of all.
    pub async fn region_incidents(
        &self,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<RegionIncident>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM genesis.region_incidents
             WHERE NOT $1 OR closed_at IS NULL ORDER BY opened_at DESC LIMIT $2"
        )))
        .bind(open_only)
        .bind(limit)
        .fetch_all(&self.app)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Opens `region`'s incident, audited (`REGION_DEGRADED`, or `REGION_FAILED` when it is
    /// confirmed at once). A concurrent pass that opened one first wins: answers `None`.
    pub async fn region_incident_open_new(
        &self,
        region: Region,
        incident: &Incident,
        signals: &OutageSignals,
        now: DateTime<Utc>,
    ) -> Result<Option<RegionIncident>, StoreError> {
        let mut tx = self.app.begin().await?;
        let failed = incident.level == OutageLevel::Failed;
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO genesis.region_incidents
               (id, region, level, opened_at, confirmed_at, failing_since, clear_since,
                watched, silent, probes, probe_failures, seen_at)
             VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN $4 END, $6, NULL, $7, $8, $9, $10, $4)
             ON CONFLICT (region) WHERE closed_at IS NULL DO NOTHING
             RETURNING {COLUMNS}"
        )))
        .bind(Uuid::now_v7())
        .bind(region.code())
        .bind(incident.level.code())
        .bind(now)
        .bind(failed)
        .bind(incident.failing_since)
        .bind(signals.watched)
        .bind(signals.silent)
        .bind(signals.probes as i32)
        .bind(signals.probe_failures as i32)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let event = if failed {
            "REGION_FAILED"
        } else {
            "REGION_DEGRADED"
        };
        record(&mut tx, &audit(event, region, row.id, signals)).await?;
        tx.commit().await?;
        Ok(Some(row.into()))
    }

    /// Records a pass on open incident `id`; `confirmed` makes it failed, audited
    /// (`REGION_FAILED`).
    pub async fn region_incident_update(
        &self,
        id: Uuid,
        region: Region,
        incident: &Incident,
        confirmed: bool,
        signals: &OutageSignals,
        now: DateTime<Utc>,
    ) -> Result<RegionIncident, StoreError> {
        let mut tx = self.app.begin().await?;
        let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE genesis.region_incidents
             SET level = $2, confirmed_at = COALESCE(confirmed_at, CASE WHEN $3 THEN $4 END),
                 failing_since = $5, clear_since = $6, watched = $7, silent = $8, probes = $9,
                 probe_failures = $10, seen_at = $4
             WHERE id = $1 AND closed_at IS NULL
             RETURNING {COLUMNS}"
        )))
        .bind(id)
        .bind(incident.level.code())
        .bind(confirmed)
        .bind(now)
        .bind(incident.failing_since)
        .bind(incident.clear_since)
        .bind(signals.watched)
        .bind(signals.silent)
        .bind(signals.probes as i32)
        .bind(signals.probe_failures as i32)
        .fetch_optional(&mut *tx)
        .await?;
        let row = row.ok_or(StoreError::NotFound {
            what: "open region incident",
        })?;
        if confirmed {
            record(&mut tx, &audit("REGION_FAILED", region, id, signals)).await?;
        }
        tx.commit().await?;
        Ok(row.into())
    }

    /// Closes open incident `id`: the region recovered, audited (`REGION_RECOVERED`).
    pub async fn region_incident_close(
        &self,
        id: Uuid,
        region: Region,
        signals: &OutageSignals,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let closed = sqlx::query!(
            r#"UPDATE genesis.region_incidents
               SET closed_at = $2, seen_at = $2, clear_since = COALESCE(clear_since, $2),
                   failing_since = NULL
               WHERE id = $1 AND closed_at IS NULL"#,
            id,
            now,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed > 0 {
            record(&mut tx, &audit("REGION_RECOVERED", region, id, signals)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Links open incident `id` to the failover declared for it.
    pub async fn region_incident_failover(
        &self,
        id: Uuid,
        failover_id: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.region_incidents SET failover_id = $2
               WHERE id = $1 AND failover_id IS NULL"#,
            id,
            failover_id,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// The regions with an open incident confirmed failed: their droplets' silence is the
    /// region's, not theirs (the zombie detector leaves them alone).
    pub async fn regions_failed(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT region FROM genesis.region_incidents
               WHERE closed_at IS NULL AND level = 'failed'"#
        )
        .fetch_all(&self.app)
        .await?)
    }
}
