//! Heartbeats in the database (spec 54): recorded in batches with the rules of spec 54.3
//! applied on the way in, and the silence scans the zombie detector runs.
//!
//! # Guarantees
//! - A batch of heartbeats is two statements whatever its size (record, then counters); only
//!   droplets whose state changes get a transaction of their own, through the droplet state
//!   machine with its audit event.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use genesis_core::{DropletEvent, DropletId, DropletState, HealthCounters, Region, ResourceSample};
use uuid::Uuid;

use crate::alerts::resolve_in;
use crate::droplets::{fetch_in, transition_in};
use crate::{Database, Droplet, StoreError};

/// One received heartbeat, ready to record.
#[derive(Debug, Clone)]
pub struct BeatRow {
    /// The droplet (from its authenticated token).
    pub droplet: DropletId,
    /// When it arrived.
    pub at: DateTime<Utc>,
    /// What it said (spec 54.1).
    pub payload: serde_json::Value,
    /// Its resource use, in percent.
    pub sample: ResourceSample,
}

/// A state change a batch of heartbeats caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatTransition {
    /// The droplet.
    pub droplet: DropletId,
    /// Its state before.
    pub from: DropletState,
    /// The event applied.
    pub event: DropletEvent,
}

/// A droplet that has gone quiet.
#[derive(Debug, Clone)]
pub struct Silent {
    /// The droplet.
    pub droplet: Droplet,
    /// Its last heartbeat (its handshake, if it never sent one).
    pub last_heartbeat_at: DateTime<Utc>,
    /// When it entered its current state.
    pub state_since: DateTime<Utc>,
}

impl Database {
    /// Records a batch of heartbeats: the latest of each droplet, its counters, and the
    /// transitions the rules imply (degraded, recovered, back from a reboot or a wake).
    /// Returns those transitions.
    pub async fn heartbeats_record(
        &self,
        beats: &[BeatRow],
        actor: &str,
    ) -> Result<Vec<BeatTransition>, StoreError> {
        if beats.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = beats.iter().map(|b| b.droplet.as_uuid()).collect();
        let ats: Vec<DateTime<Utc>> = beats.iter().map(|b| b.at).collect();
        let payloads: Vec<serde_json::Value> = beats.iter().map(|b| b.payload.clone()).collect();
        let rows = sqlx::query!(
            r#"UPDATE genesis.droplets d
               SET last_heartbeat_at = b.at, last_heartbeat = b.payload
               FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[]) AS b(id, at, payload)
               WHERE d.id = b.id AND d.state <> 'TERMINATED'
               RETURNING d.id, d.state, d.health_counters, d.state_since"#,
            &ids,
            &ats,
            &payloads,
        )
        .fetch_all(&mut *self.app.acquire().await?)
        .await?;
        let beat_of: BTreeMap<Uuid, &BeatRow> =
            beats.iter().map(|b| (b.droplet.as_uuid(), b)).collect();
        let mut counter_ids = Vec::with_capacity(rows.len());
        let mut counter_values = Vec::with_capacity(rows.len());
        let mut events = Vec::new();
        for r in rows {
            let state = DropletState::from_code(&r.state).ok_or(StoreError::Corrupt {
                what: "droplet state",
                value: r.state.clone(),
            })?;
            let before: HealthCounters =
                serde_json::from_value(r.health_counters).unwrap_or_default();
            let mut counters = before;
            let Some(beat) = beat_of.get(&r.id) else {
                continue;
            };
            let event = match state {
                // Only a beat received after the reboot or wake began speaks for the new
                // boot: one buffered before it (flushed late) was sent by the machine that
                // was just powered off or restarted.
                DropletState::Rebooting | DropletState::Waking => {
                    (beat.at > r.state_since).then_some(DropletEvent::HeartbeatResumed)
                }
                _ => counters.observe(state, beat.sample),
            };
            // A steady droplet's capped counters stop changing: nothing to write.
            if counters != before {
                counter_ids.push(r.id);
                counter_values.push(serde_json::to_value(counters).unwrap_or_default());
            }
            if let Some(event) = event {
                events.push(BeatTransition {
                    droplet: DropletId::from_uuid(r.id),
                    from: state,
                    event,
                });
            }
        }
        if !counter_ids.is_empty() {
            sqlx::query!(
                r#"UPDATE genesis.droplets d SET health_counters = c.counters
               FROM unnest($1::uuid[], $2::jsonb[]) AS c(id, counters)
               WHERE d.id = c.id"#,
                &counter_ids,
                &counter_values,
            )
            .execute(&mut *self.app.acquire().await?)
            .await?;
        }
        let mut applied = Vec::new();
        for t in events {
            let mut tx = self.app.begin().await?;
            let current = fetch_in(&mut tx, t.droplet).await?;
            // Another writer may have moved it since the batch was read: re-check.
            if current.state == t.from {
                transition_in(&mut tx, &current, t.event, actor).await?;
                if t.event == DropletEvent::HeartbeatResumed {
                    resolve_in(&mut tx, t.droplet, "manual_review").await?;
                }
                tx.commit().await?;
                applied.push(t);
            }
        }
        Ok(applied)
    }

    /// Droplets in `states` whose last heartbeat (or handshake) is older than `before`,
    /// oldest first, at most `limit`.
    pub async fn droplets_silent_since(
        &self,
        states: &[DropletState],
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Silent>, StoreError> {
        let codes: Vec<String> = states.iter().map(|s| s.code().to_owned()).collect();
        let rows = sqlx::query!(
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at,
                      COALESCE(last_heartbeat_at, updated_at) AS "last!", state_since
               FROM genesis.droplets
               WHERE state = ANY($1) AND COALESCE(last_heartbeat_at, updated_at) < $2
               ORDER BY 9 LIMIT $3"#,
            &codes,
            before,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|r| {
                let droplet = Droplet::try_from(crate::droplets::droplet_row!(r))?;
                Ok(Silent {
                    droplet,
                    last_heartbeat_at: r.last,
                    state_since: r.state_since,
                })
            })
            .collect()
    }

    /// Droplets in `state` that entered it before `before` (e.g. REBOOTING for too long).
    pub async fn droplets_in_state_since(
        &self,
        state: DropletState,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Droplet>, StoreError> {
        sqlx::query_as!(
            crate::droplets::DropletRow,
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at
               FROM genesis.droplets WHERE state = $1 AND state_since < $2
               ORDER BY state_since LIMIT $3"#,
            state.code(),
            before,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(Droplet::try_from)
        .collect()
    }

    /// Up to `limit` serving droplets whose sidecar, in a heartbeat since `since`, reports
    /// n8n stopped or failing its probe (spec 66.1's n8n crash): each with its region and
    /// that heartbeat's time.
    pub async fn droplets_n8n_down(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(DropletId, Region, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id, region, last_heartbeat_at AS "at!" FROM genesis.droplets
               WHERE state IN ('ACTIVE_HEALTHY', 'ACTIVE_DEGRADED', 'DRIFT_DETECTED')
                 AND last_heartbeat_at >= $1
                 AND last_heartbeat ->> 'n8n_status' IN ('stopped', 'unhealthy')
               ORDER BY last_heartbeat_at LIMIT $2"#,
            since,
            limit,
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    DropletId::from_uuid(r.id),
                    Region::parse(&r.region).map_err(|_| StoreError::Corrupt {
                        what: "region",
                        value: r.region.clone(),
                    })?,
                    r.at,
                ))
            })
            .collect()
    }

    /// What droplet `id`'s last heartbeat says of n8n (`running`, `stopped`...).
    pub async fn droplet_n8n_status(&self, id: DropletId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT last_heartbeat ->> 'n8n_status' FROM genesis.droplets WHERE id = $1"#,
            id.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .flatten())
    }
}
