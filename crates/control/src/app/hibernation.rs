//! Hibernation for tenants and operators (spec 55): wake a tenant, hold it awake, and what
//! hibernation has saved.

use genesis_core::hibernation::savings_cents;
use genesis_store::{ActivityKind, HibernationTotals};
use serde::{Deserialize, Serialize};

use crate::workers::hibernation::{WakeError, wake};
use std::collections::BTreeMap;

use crate::{AppState, Problem};

pub use crate::workers::hibernation::WakeOutcome;
use genesis_core::WorkspaceId;

/// Records `kind` for the workspace now, then wakes it if it sleeps (audited as `actor`).
pub async fn touch_and_wake(
    state: &AppState,
    id: WorkspaceId,
    kind: ActivityKind,
    trigger: &str,
    actor: &str,
) -> Result<WakeOutcome, Problem> {
    let Some(igniter) = state.igniter.clone() else {
        return Err(Problem::unavailable(
            "waking needs the cloud configured on this control plane ([cloud] and [redis])",
        ));
    };
    let (ws, db) = state.stores.workspace_find(id).await?;
    if ws.status == genesis_core::WorkspaceStatus::PendingDeletion {
        return Err(Problem::conflict(
            "id",
            "this workspace is being deleted: call the deletion off to wake it",
        ));
    }
    db.activity_touch(id, kind, chrono::Utc::now()).await?;
    let outcome = wake(db, igniter.cloud().as_ref(), id, trigger, actor)
        .await
        .map_err(|e| match e {
            WakeError::Store(s) => s.into(),
            WakeError::NoDroplet => Problem::conflict("id", "the workspace has no droplet to wake"),
            WakeError::Cloud(c) => Problem::unavailable(format!(
                "the cloud did not power the droplet on ({c}); call again to retry"
            )),
        })?;
    Ok(outcome)
}

/// `PUT /api/v1/workspaces/{id}/hibernation` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Never hibernate while set (spec 55.1's manual hold).
    pub hold: bool,
}

/// `PUT /api/v1/workspaces/{id}/schedule` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// When the tenant's next campaign starts (RFC 3339), or null for none.
    pub next_campaign_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What hibernation has saved (spec 55.2's figures).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Savings {
    /// Episodes and time, every database together.
    #[serde(flatten)]
    pub totals: HibernationTotals,
    /// Saved so far, in US cents ($3.50 per droplet-month powered off).
    pub saved_cents: i64,
    /// Saved per month at the current hibernation level.
    pub monthly_rate_cents: i64,
}

/// Hibernation's savings so far over every regional database.
pub async fn savings_now(state: &AppState) -> Result<Savings, Problem> {
    let mut totals = HibernationTotals::default();
    for db in state.stores.distinct() {
        let t = db.hibernation_totals().await?;
        totals.hibernating_now += t.hibernating_now;
        totals.episodes += t.episodes;
        totals.hibernated_seconds += t.hibernated_seconds;
    }
    Ok(Savings {
        saved_cents: savings_cents(totals.hibernated_seconds),
        monthly_rate_cents: totals.hibernating_now
            * savings_cents(genesis_core::hibernation::thresholds::MONTH_S),
        totals,
    })
}

/// One region's hot-standby pool.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct StandbyRegion {
    /// Warm and unclaimed: a wake here is served within seconds.
    pub ready: usize,
    /// Still booting.
    pub warming: usize,
    /// Serving a waking tenant (or being prepared for one).
    pub serving: usize,
}

/// Sets or lifts workspace `id`'s manual hold (spec 55.1: never hibernate while set).
pub async fn hold(
    state: &AppState,
    id: WorkspaceId,
    hold: bool,
    actor: &str,
) -> Result<(), Problem> {
    let (_, db) = state.stores.workspace_find(id).await?;
    db.hibernation_hold_set(id, hold, actor).await?;
    Ok(())
}

/// Sets workspace `id`'s next scheduled campaign; a hibernating tenant is woken ahead of it
/// (spec 55.3; High-Priority tenants 5 minutes ahead, spec 55.4).
pub async fn schedule(
    state: &AppState,
    id: WorkspaceId,
    next_campaign_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(), Problem> {
    let (_, db) = state.stores.workspace_find(id).await?;
    db.campaign_schedule_set(id, next_campaign_at).await?;
    Ok(())
}

/// The hot-standby pool per region (spec 55.4 strategy 3).
pub async fn standby_pool(state: &AppState) -> Result<BTreeMap<String, StandbyRegion>, Problem> {
    let mut out: BTreeMap<String, StandbyRegion> = BTreeMap::new();
    for db in state.stores.distinct() {
        for s in db.standby_live().await? {
            let r = out.entry(s.droplet.region.code().to_owned()).or_default();
            if s.claimed_by.is_some() {
                r.serving += 1;
            } else if s.droplet.state == genesis_core::DropletState::ActiveHealthy {
                r.ready += 1;
            } else {
                r.warming += 1;
            }
        }
    }
    Ok(out)
}

/// Rings the hibernation reconciler when `id` is asleep (a hint: its next pass wakes the
/// tenant anyway).
pub(crate) async fn ring_if_asleep(
    state: &AppState,
    db: &genesis_store::Database,
    id: WorkspaceId,
) {
    if state.igniter.is_none() {
        return;
    }
    let asleep = match db.droplet_live_for_workspace(id).await {
        Ok(ds) => ds
            .iter()
            .any(|d| d.state == genesis_core::DropletState::Hibernating),
        Err(e) => {
            tracing::warn!(workspace = %id, error = %e, "cannot tell whether the tenant sleeps; its next hibernation pass will");
            return;
        }
    };
    if asleep {
        ring(state, id).await;
    }
}

/// Asks the hibernation reconciler's leader for a pass now (a hint: its next pass does the
/// same work), when this control plane runs the fleet side.
pub(crate) async fn ring(state: &AppState, id: WorkspaceId) {
    if state.igniter.is_none() {
        return;
    }
    if let Err(e) = state
        .stores
        .coordinator()
        .reconciler_wake("hibernation")
        .await
    {
        tracing::warn!(workspace = %id, error = %e, "could not ring the hibernation reconciler; its next pass does the work");
    }
}
