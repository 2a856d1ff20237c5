//! Hibernation for tenants and operators (spec 55): wake a tenant, hold it awake, and what
//! hibernation has saved.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::IntoResponse,
};
use genesis_core::hibernation::savings_cents;
use genesis_store::{ActivityKind, HibernationTotals};
use serde::{Deserialize, Serialize};

use super::body::{ApiJson, workspace_id};
use crate::workers::hibernation::{WakeError, WakeOutcome, wake};
use crate::{AppState, Problem};

/// `POST /api/v1/workspaces/{id}/wake` (spec 55.3's manual trigger): 202 while the droplet
/// powers on, 200 when it was awake already. Waking is also activity: the tenant's notice,
/// if any, is withdrawn.
pub async fn wake_workspace(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    touch_and_wake(&state, &id, ActivityKind::Campaign, "api", "operator").await
}

/// `POST /api/v1/workspaces/{id}/logins` (spec 55.3's dashboard-login trigger): the tenant's
/// dashboard reports a sign-in. It counts as activity (spec 55.1) and wakes a hibernating
/// tenant, so its automations are up by the time the page has loaded; answers as `wake`.
pub async fn login(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    touch_and_wake(&state, &id, ActivityKind::Login, "login", "dashboard").await
}

/// Records `kind` for the workspace now, then wakes it if it sleeps (audited as `actor`).
async fn touch_and_wake(
    state: &AppState,
    raw_id: &str,
    kind: ActivityKind,
    trigger: &str,
    actor: &str,
) -> Result<(StatusCode, Json<WakeOutcome>), Problem> {
    let id = workspace_id(raw_id)?;
    let Some(igniter) = state.igniter.clone() else {
        return Err(Problem::unavailable(
            "waking needs the cloud configured on this control plane ([cloud] and [redis])",
        ));
    };
    let (_, db) = state.stores.workspace_find(id).await?;
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
    let status = match outcome {
        WakeOutcome::Waking { .. } => StatusCode::ACCEPTED,
        WakeOutcome::Awake { .. } => StatusCode::OK,
    };
    Ok((status, Json(outcome)))
}

/// `PUT /api/v1/workspaces/{id}/hibernation` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Never hibernate while set (spec 55.1's manual hold).
    pub hold: bool,
}

/// `PUT /api/v1/workspaces/{id}/hibernation`: sets or lifts the manual hold.
pub async fn hold(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<HoldRequest>,
) -> Result<StatusCode, Problem> {
    let id = workspace_id(&id)?;
    let (_, db) = state.stores.workspace_find(id).await?;
    db.hibernation_hold_set(id, req.hold, "operator").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/workspaces/{id}/schedule` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// When the tenant's next campaign starts (RFC 3339), or null for none.
    pub next_campaign_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `PUT /api/v1/workspaces/{id}/schedule`: the next scheduled campaign. A hibernating tenant
/// is woken ahead of it (spec 55.3; High-Priority tenants 5 minutes ahead, spec 55.4).
pub async fn schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ScheduleRequest>,
) -> Result<StatusCode, Problem> {
    let id = workspace_id(&id)?;
    let (_, db) = state.stores.workspace_find(id).await?;
    db.campaign_schedule_set(id, req.next_campaign_at).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What hibernation has saved (spec 55.2's figures).
#[derive(Debug, Serialize)]
pub struct Savings {
    /// Episodes and time, every database together.
    #[serde(flatten)]
    pub totals: HibernationTotals,
    /// Saved so far, in US cents ($3.50 per droplet-month powered off).
    pub saved_cents: i64,
    /// Saved per month at the current hibernation level.
    pub monthly_rate_cents: i64,
}

/// `GET /api/v1/fleet/hibernation`.
pub async fn savings(State(state): State<AppState>) -> Result<Json<Savings>, Problem> {
    Ok(Json(savings_now(&state).await?))
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
#[derive(Debug, Default, Serialize)]
pub struct StandbyRegion {
    /// Warm and unclaimed: a wake here is served within seconds.
    pub ready: usize,
    /// Still booting.
    pub warming: usize,
    /// Serving a waking tenant (or being prepared for one).
    pub serving: usize,
}

/// `GET /api/v1/fleet/standby`: the hot-standby pool per region (spec 55.4 strategy 3).
pub async fn standby(
    State(state): State<AppState>,
) -> Result<Json<std::collections::BTreeMap<String, StandbyRegion>>, Problem> {
    let mut out: std::collections::BTreeMap<String, StandbyRegion> = Default::default();
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
    Ok(Json(out))
}
