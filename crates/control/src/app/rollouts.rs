//! Template rollouts for operators (spec 56): start one, watch it batch by batch, pause,
//! resume or abort it. The conductor (`workers::rollouts`) does the rest.
//!
//! A rollout deploys the template set this control plane carries: to ship a new version,
//! deploy the control plane with it (`ignition.templates_dir`), then start a rollout to it.

use genesis_core::rollout::{RolloutEvent, RolloutPolicy, RolloutScope, Scenario};
use genesis_store::{BatchTally, NewRollout, Rollout, RolloutTarget, StoreError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AppState, Problem};

/// `POST /api/v1/rollouts` body. Absent fields take the scenario's defaults (spec 56.3).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// Spec 56.1's scenario: `security_patch`, `bug_fix`, `feature`, `config_change`.
    #[schema(value_type = Scenario)]
    pub scenario: String,
    /// The template version; must be the one this control plane carries (the default).
    #[serde(default)]
    pub target_version: Option<String>,
    /// Swap n8n's container to this image (spec 56.2) instead of redeploying workflows.
    #[serde(default)]
    pub n8n_image: Option<String>,
    /// Which droplets (default: all).
    #[serde(default)]
    pub scope: Option<RolloutScope>,
    /// Droplets per batch (0: one batch).
    #[serde(default)]
    #[schema(maximum = 100_000)]
    pub batch_size: Option<u32>,
    /// Seconds between batches.
    #[serde(default)]
    #[schema(maximum = 86_400)]
    pub pause_between_s: Option<u64>,
    /// Pause when a batch's failures reach this percentage (0 never pauses).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub pause_at_percent: Option<f64>,
    /// Abort when all failures so far reach this percentage (0 never aborts).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub abort_at_percent: Option<f64>,
    /// The first batch's size (then batches double).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100_000)]
    pub canary: Option<u32>,
}

/// A rollout as operators see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RolloutView {
    /// The rollout.
    #[serde(flatten)]
    pub rollout: Rollout,
    /// Outcomes over every batch.
    pub totals: BatchTally,
    /// Outcomes per batch.
    pub per_batch: Vec<BatchTally>,
    /// Up to 20 failed droplets of the current and earlier batches, with why.
    pub failures: Vec<RolloutTarget>,
}

fn percent_bp(field: &str, v: Option<f64>, default: Option<u32>) -> Result<Option<u32>, Problem> {
    match v {
        None => Ok(default),
        Some(0.0) => Ok(None),
        Some(p) if p.is_finite() && p > 0.0 && p <= 100.0 => Ok(Some((p * 100.0).round() as u32)),
        Some(_) => Err(Problem::invalid_field(
            field,
            "must be a percentage above 0 and at most 100 (0 disables it)",
        )),
    }
}

fn policy_of(req: &StartRequest, scenario: Scenario) -> Result<RolloutPolicy, Problem> {
    let d = scenario.policy();
    let p = RolloutPolicy {
        batch_size: req.batch_size.unwrap_or(d.batch_size),
        pause_between: req
            .pause_between_s
            .map(std::time::Duration::from_secs)
            .unwrap_or(d.pause_between),
        pause_at_bp: percent_bp("pause_at_percent", req.pause_at_percent, d.pause_at_bp)?,
        abort_at_bp: percent_bp("abort_at_percent", req.abort_at_percent, d.abort_at_bp)?,
        canary: req.canary.or(d.canary),
    };
    p.validate().map_err(|e| {
        // The request names the pause in seconds.
        let field = match e.field {
            "pause_between" => "pause_between_s",
            f => f,
        };
        Problem::invalid_field(field, e.message)
    })?;
    Ok(p)
}

async fn view(state: &AppState, rollout: Rollout) -> Result<RolloutView, Problem> {
    let db = state.stores.coordinator();
    let per_batch = db.rollout_batches(rollout.id).await?;
    let mut totals = BatchTally {
        batch: -1,
        ..BatchTally::default()
    };
    let mut failures = Vec::new();
    for b in &per_batch {
        totals.pending += b.pending;
        totals.done += b.done;
        totals.failed += b.failed;
        totals.deferred += b.deferred;
        totals.cancelled += b.cancelled;
        if b.failed > 0 && failures.len() < 20 {
            failures.extend(
                db.rollout_batch_targets(rollout.id, b.batch)
                    .await?
                    .into_iter()
                    .filter(|t| t.status == "FAILED")
                    .take(20 - failures.len()),
            );
        }
    }
    Ok(RolloutView {
        rollout,
        totals,
        per_batch,
        failures,
    })
}

/// Plans the batches of `req` over every droplet in scope and starts the rollout, audited as
/// `actor` (the API's bearer token and God Mode's signed-in operators share this).
pub async fn start_rollout(
    state: &AppState,
    req: &StartRequest,
    actor: &str,
) -> Result<RolloutView, Problem> {
    let Some(igniter) = state.igniter.clone() else {
        return Err(Problem::unavailable(
            "rollouts need ignition configured on this control plane ([cloud] and [redis])",
        ));
    };
    let scenario = Scenario::parse(&req.scenario).ok_or_else(|| {
        Problem::invalid_field(
            "scenario",
            "must be one of security_patch, bug_fix, feature, config_change",
        )
    })?;
    let carried = igniter.templates().version.clone();
    let target_version = req
        .target_version
        .clone()
        .unwrap_or_else(|| carried.clone());
    if target_version != carried {
        return Err(Problem::invalid_field(
            "target_version",
            format!(
                "this control plane carries template version {carried}; deploy it with {target_version} first"
            ),
        ));
    }
    if let Some(image) = &req.n8n_image
        && !crate::app::droplet_ops::is_image_reference(image)
    {
        return Err(Problem::invalid_field(
            "n8n_image",
            "must be an image reference with a tag or digest (n8nio/n8n:2.8.5)",
        ));
    }
    let policy = policy_of(req, scenario)?;
    let scope = req.scope.clone().unwrap_or(RolloutScope::All);
    let mut candidates = Vec::new();
    for db in state.stores.distinct() {
        candidates.extend(db.rollout_candidates(&scope).await?);
    }
    candidates.sort_by_key(|c| c.0);
    let mut targets = Vec::with_capacity(candidates.len());
    let mut it = candidates.into_iter();
    for (batch, size) in policy
        .batch_sizes(u32::try_from(it.len()).unwrap_or(u32::MAX))
        .into_iter()
        .enumerate()
    {
        for (droplet, ws, region) in it.by_ref().take(size as usize) {
            targets.push((droplet, ws, region, batch as i32));
        }
    }
    let rollout = state
        .stores
        .coordinator()
        .rollout_create(
            &NewRollout {
                target_version,
                n8n_image: req.n8n_image.clone(),
                scenario,
                policy,
                scope,
                targets,
            },
            actor,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => Problem::conflict(
                "rollout",
                "another rollout is running or paused: finish or abort it first",
            ),
            other => other.into(),
        })?;
    view(state, rollout).await
}

fn rollout_id(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|e| Problem::invalid_field("id", e))
}

/// The rollout `raw_id` names, with its batches' outcomes.
pub async fn rollout_view(state: &AppState, raw_id: &str) -> Result<RolloutView, Problem> {
    let r = state
        .stores
        .coordinator()
        .rollout_get(rollout_id(raw_id)?)
        .await?;
    view(state, r).await
}

/// Pauses, resumes or aborts the rollout `id` as `actor`; a move its state does not allow
/// is a 409 that says why.
pub async fn control_rollout(
    state: &AppState,
    id: &str,
    event: RolloutEvent,
    actor: &str,
) -> Result<RolloutView, Problem> {
    let db = state.stores.coordinator();
    let id = rollout_id(id)?;
    let current = db.rollout_get(id).await?;
    let reason = match event {
        RolloutEvent::Pause => Some("paused by an operator"),
        RolloutEvent::Abort => Some("aborted by an operator"),
        _ => None,
    };
    let moved = db
        .rollout_move(id, current.version, event, reason, actor)
        .await
        .map_err(|e| match e {
            StoreError::Invalid { message, .. } => Problem::conflict("status", message),
            StoreError::VersionConflict { .. } => {
                Problem::conflict("status", "the rollout changed meanwhile; try again")
            }
            other => other.into(),
        })?;
    if event == RolloutEvent::Abort {
        db.rollout_cancel_pending(id).await?;
    }
    view(state, moved).await
}

/// How many rollouts the lists show.
pub const LISTED: i64 = 50;

/// The newest [`LISTED`] rollouts, newest first.
pub async fn recent(state: &AppState) -> Result<Vec<Rollout>, Problem> {
    Ok(state
        .stores
        .coordinator()
        .rollout_list(LISTED, None)
        .await?)
}

/// `GET /api/v1/rollouts` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Return the rollouts started before this one (the `next` of the previous page).
    #[param(value_type = Option<uuid::Uuid>)]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
}

/// A page of rollouts: the same shape as every other list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RolloutList {
    /// Newest first.
    pub items: Vec<Rollout>,
    /// Pass as `after` for the next page; absent on the last.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub next: Option<String>,
}

/// One page of rollouts, newest first.
pub async fn page(state: &AppState, q: &ListQuery) -> Result<RolloutList, Problem> {
    let limit = q.limit.unwrap_or(LISTED);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", "must be between 1 and 500"));
    }
    let db = state.stores.coordinator();
    let after = match q.after.as_deref() {
        Some(raw) => {
            let id = uuid::Uuid::parse_str(raw)
                .map_err(|_| Problem::invalid_field("after", "is not a rollout id"))?;
            match db.rollout_get(id).await {
                Ok(_) => Some(id),
                Err(StoreError::NotFound { .. }) => {
                    return Err(Problem::invalid_field("after", "no rollout has this id"));
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => None,
    };
    let items = db.rollout_list(limit, after).await?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(RolloutList { items, next })
}
