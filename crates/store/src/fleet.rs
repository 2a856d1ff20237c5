//! The fleet as a whole: God Mode's heatmap cells, counts per region and state, the
//! ignitions in flight, a droplet by its cloud id, and a droplet's state history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use genesis_core::DropletId;
use serde::Serialize;
use uuid::Uuid;

use crate::{Database, Droplet, StoreError};

/// One droplet in God Mode's health heatmap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetCell {
    /// The droplet.
    pub id: Uuid,
    /// Its region's code.
    pub region: String,
    /// Its state's code.
    pub state: String,
    /// Its tenant's slug.
    pub slug: String,
    /// Its tenant's tier code.
    pub tier: String,
    /// When its last heartbeat arrived.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
}

/// Droplets per region and state.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct FleetCounts {
    /// region → state → count.
    pub by_region: BTreeMap<String, BTreeMap<String, i64>>,
    /// state → count, all regions.
    pub by_state: BTreeMap<String, i64>,
    /// tier → count: what the fleet costs and which promises it carries (enterprise never
    /// hibernates).
    pub by_tier: BTreeMap<String, i64>,
    /// All live droplets.
    pub total: i64,
}

/// One step of a fleet-history chart (see [`Database::fleet_sample_steps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetStep {
    /// The step's index from the chart's start.
    pub step: i32,
    /// The state's code.
    pub state: String,
    /// Droplets in that state, summed over the step's samples.
    pub droplets: i64,
    /// Minutes sampled in the step (any state): the divisor of the step's mean.
    pub minutes: i64,
}

/// Droplets in one state in one region at one minute (fleet states over time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetSample {
    /// The minute.
    pub sampled_at: DateTime<Utc>,
    /// The region's code.
    pub region: String,
    /// The state's code.
    pub state: String,
    /// How many droplets.
    pub droplets: i32,
}

/// How long fleet samples are kept (days).
pub const FLEET_SAMPLES_KEPT_DAYS: i32 = 30;

/// An ignition saga still running or unwinding, as the overview lists it.
#[derive(Debug, Clone, Serialize)]
pub struct IgnitionInFlight {
    /// The saga.
    pub id: Uuid,
    /// Its tenant.
    pub workspace_id: Uuid,
    /// `RUNNING` or `UNWINDING`.
    pub phase: String,
    /// The step being done (or undone).
    pub step: Option<String>,
    /// When the saga started.
    pub started_at: DateTime<Utc>,
}

impl Database {
    /// Every live droplet as one heatmap cell: id, region, state, its tenant's slug and
    /// tier, and its last heartbeat, by region then id (a droplet keeps its place in the map
    /// while its colour changes). Narrow columns and one hash join: 15,000 rows stay well
    /// under God Mode's 300 ms budget (`genesis bench god-mode`).
    pub async fn fleet_cells(&self) -> Result<Vec<FleetCell>, StoreError> {
        Ok(sqlx::query_as!(
            FleetCell,
            r#"SELECT d.id, d.region, d.state, w.slug, w.tier, d.last_heartbeat_at
               FROM genesis.droplets d JOIN genesis.workspaces w ON w.id = d.workspace_id
               WHERE d.state <> 'TERMINATED' ORDER BY d.region, d.id"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// The public address the cloud reported for a droplet, once it did.
    pub async fn droplet_public_ipv4(
        &self,
        droplet: DropletId,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT public_ipv4 FROM genesis.droplets WHERE id = $1"#,
            droplet.as_uuid()
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .flatten())
    }

    /// Records this minute's droplets per region and state (once: a second sample in the
    /// same minute, from another replica or a retried pass, changes nothing), and forgets
    /// samples older than [`FLEET_SAMPLES_KEPT_DAYS`]. Returns the rows written.
    pub async fn fleet_sample(&self) -> Result<u64, StoreError> {
        let mut tx = self.app.begin().await?;
        // One statement: only the rows this call wrote (not a replica's, not a retry's) are
        // added into their hour, and the hour counts the minute once.
        let written = sqlx::query!(
            r#"WITH m AS (
                 INSERT INTO genesis.fleet_samples (sampled_at, region, state, droplets)
                 SELECT date_trunc('minute', now()), region, state, count(*)::int
                 FROM genesis.droplets WHERE state <> 'TERMINATED' GROUP BY region, state
                 ON CONFLICT DO NOTHING
                 RETURNING region, state, droplets),
               h AS (
                 INSERT INTO genesis.fleet_sample_hours (hour, minutes)
                 SELECT date_trunc('hour', now()), 1 WHERE EXISTS (SELECT 1 FROM m)
                 ON CONFLICT (hour) DO UPDATE SET minutes = genesis.fleet_sample_hours.minutes + 1)
               INSERT INTO genesis.fleet_samples_hourly (hour, region, state, droplet_minutes)
               SELECT date_trunc('hour', now()), region, state, droplets FROM m
               ON CONFLICT (hour, region, state) DO UPDATE SET
                 droplet_minutes = genesis.fleet_samples_hourly.droplet_minutes
                                   + EXCLUDED.droplet_minutes"#
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for table in [
            "DELETE FROM genesis.fleet_samples WHERE sampled_at < now() - make_interval(days => $1)",
            "DELETE FROM genesis.fleet_samples_hourly WHERE hour < now() - make_interval(days => $1)",
            "DELETE FROM genesis.fleet_sample_hours WHERE hour < now() - make_interval(days => $1)",
        ] {
            sqlx::query(table)
                .bind(FLEET_SAMPLES_KEPT_DAYS)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Samples taken at or after `since`, optionally in one region, oldest first.
    pub async fn fleet_samples_since(
        &self,
        since: DateTime<Utc>,
        region: Option<&str>,
    ) -> Result<Vec<FleetSample>, StoreError> {
        Ok(sqlx::query_as!(
            FleetSample,
            r#"SELECT sampled_at, region, state, droplets FROM genesis.fleet_samples
               WHERE sampled_at >= $1 AND ($2::text IS NULL OR region = $2)
               ORDER BY sampled_at, region, state"#,
            since,
            region,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Fleet history for a chart of `steps` steps of `step_minutes` from `from`, optionally
    /// in one region: per step and state, the droplets summed over the step's samples (and
    /// regions), with the minutes sampled in the step. Aggregated here, not in the caller:
    /// 30 days hold up to ~1.7 M sample rows, and a chart needs at most a few thousand.
    pub async fn fleet_sample_steps(
        &self,
        from: DateTime<Utc>,
        step_minutes: i64,
        steps: i64,
        region: Option<&str>,
    ) -> Result<Vec<FleetStep>, StoreError> {
        Ok(sqlx::query_as!(
            FleetStep,
            r#"WITH s AS (
                 SELECT (extract(epoch FROM sampled_at - $1)::bigint / 60 / $2)::int AS step,
                        sampled_at, state, droplets
                 FROM genesis.fleet_samples
                 WHERE sampled_at >= $1 AND sampled_at < $1 + make_interval(mins => ($2 * $3)::int)
                   AND ($4::text IS NULL OR region = $4))
               SELECT a.step AS "step!", a.state AS "state!", a.droplets AS "droplets!",
                      m.minutes AS "minutes!"
               FROM (SELECT step, state, sum(droplets)::bigint AS droplets
                     FROM s GROUP BY step, state) a
               JOIN (SELECT step, count(DISTINCT sampled_at) AS minutes FROM s GROUP BY step) m
                 USING (step)
               ORDER BY a.step, a.state"#,
            from,
            step_minutes,
            steps,
            region,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// [`Self::fleet_sample_steps`] from the hourly sums, for steps of whole hours (`from`
    /// on an hour): a 30-day chart reads ~29,000 rows instead of ~1.7 M.
    pub async fn fleet_sample_hour_steps(
        &self,
        from: DateTime<Utc>,
        step_minutes: i64,
        steps: i64,
        region: Option<&str>,
    ) -> Result<Vec<FleetStep>, StoreError> {
        Ok(sqlx::query_as!(
            FleetStep,
            r#"WITH s AS (
                 SELECT (extract(epoch FROM hour - $1)::bigint / 60 / $2)::int AS step,
                        state, droplet_minutes
                 FROM genesis.fleet_samples_hourly
                 WHERE hour >= $1 AND hour < $1 + make_interval(mins => ($2 * $3)::int)
                   AND ($4::text IS NULL OR region = $4)),
               m AS (
                 SELECT (extract(epoch FROM hour - $1)::bigint / 60 / $2)::int AS step,
                        sum(minutes)::bigint AS minutes
                 FROM genesis.fleet_sample_hours
                 WHERE hour >= $1 AND hour < $1 + make_interval(mins => ($2 * $3)::int)
                 GROUP BY 1)
               SELECT s.step AS "step!", s.state AS "state!",
                      sum(s.droplet_minutes)::bigint AS "droplets!", m.minutes AS "minutes!"
               FROM s JOIN m USING (step)
               GROUP BY s.step, s.state, m.minutes
               ORDER BY s.step, s.state"#,
            from,
            step_minutes,
            steps,
            region,
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Live droplets counted per region and state.
    pub async fn fleet_counts(&self) -> Result<FleetCounts, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT region, state, count(*) AS "n!" FROM genesis.droplets
               WHERE state <> 'TERMINATED' GROUP BY region, state"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut out = FleetCounts::default();
        for r in rows {
            *out.by_region
                .entry(r.region)
                .or_default()
                .entry(r.state.clone())
                .or_default() += r.n;
            *out.by_state.entry(r.state).or_default() += r.n;
            out.total += r.n;
        }
        let tiers = sqlx::query!(
            r#"SELECT w.tier, count(*) AS "n!" FROM genesis.droplets d
               JOIN genesis.workspaces w ON w.id = d.workspace_id
               WHERE d.state <> 'TERMINATED' GROUP BY w.tier"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        out.by_tier = tiers.into_iter().map(|r| (r.tier, r.n)).collect();
        Ok(out)
    }

    /// How many ignitions are in flight, and the `limit` oldest of them (the ones an
    /// operator should look at first).
    pub async fn ignitions_in_flight(
        &self,
        limit: i64,
    ) -> Result<(i64, Vec<IgnitionInFlight>), StoreError> {
        let mut conn = self.read().await?;
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.ignitions
               WHERE phase IN ('RUNNING', 'UNWINDING')"#
        )
        .fetch_one(&mut *conn)
        .await?;
        let oldest = sqlx::query_as!(
            IgnitionInFlight,
            r#"SELECT id, workspace_id, phase, step, started_at FROM genesis.ignitions
               WHERE phase IN ('RUNNING', 'UNWINDING') ORDER BY started_at LIMIT $1"#,
            limit
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok((n, oldest))
    }

    /// Workspaces per status code (every status present, none missing ones).
    pub async fn workspace_status_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        Ok(sqlx::query!(
            r#"SELECT status, count(*) AS "n!" FROM genesis.workspaces GROUP BY status"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| (r.status, r.n))
        .collect())
    }

    /// Ignitions in flight (running or unwinding) per step code; a saga between steps
    /// counts under `none`.
    pub async fn ignition_step_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        Ok(sqlx::query!(
            r#"SELECT coalesce(step, 'none') AS "step!", count(*) AS "n!"
               FROM genesis.ignitions WHERE phase IN ('RUNNING', 'UNWINDING')
               GROUP BY 1"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| (r.step, r.n))
        .collect())
    }

    /// A droplet by the cloud's id.
    pub async fn droplet_by_provider(&self, provider_id: i64) -> Result<Droplet, StoreError> {
        sqlx::query_as!(
            crate::droplets::DropletRow,
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at
               FROM genesis.droplets WHERE provider_id = $1"#,
            provider_id,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "droplet" })?
        .try_into()
    }
}

/// One state change of a droplet, from the audit log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StateChange {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// From which state.
    pub from: Option<String>,
    /// To which state.
    pub to: Option<String>,
    /// The event.
    pub event: Option<String>,
}

impl Database {
    /// A droplet's state changes, oldest first (the audit log is the history).
    pub async fn droplet_history(
        &self,
        droplet: DropletId,
        limit: i64,
    ) -> Result<Vec<StateChange>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT occurred_at, actor, details FROM genesis.audit_log
               WHERE subject = $1 AND event = ANY($3)
               ORDER BY id DESC LIMIT $2"#,
            droplet.to_string(),
            limit,
            &genesis_core::droplet::TRANSITION_EVENTS.map(str::to_owned)[..],
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().map(str::to_owned);
        let mut out: Vec<StateChange> = rows
            .into_iter()
            .map(|r| StateChange {
                at: r.occurred_at,
                actor: r.actor,
                from: text(&r.details, "from"),
                to: text(&r.details, "to"),
                event: text(&r.details, "event"),
            })
            .collect();
        out.reverse();
        Ok(out)
    }
}
