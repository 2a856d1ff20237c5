//! Fleet health for operators: counts per state and region, one droplet with its last
//! heartbeat and history, and the alerts people must look at.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use genesis_store::{Alert, Droplet, FleetCounts, StateChange};
use serde::{Deserialize, Serialize};

use crate::app::hibernation::{Savings, savings_now};
use crate::{AppState, Problem};

/// Droplets per region and state over every regional database (the API and God Mode's
/// overview show the same figures).
pub async fn fleet_totals(state: &AppState) -> Result<FleetCounts, Problem> {
    let mut out = FleetCounts::default();
    for db in state.stores.distinct() {
        let c = db.fleet_counts().await?;
        for (region, states) in c.by_region {
            let slot = out.by_region.entry(region).or_default();
            for (s, n) in states {
                *slot.entry(s).or_default() += n;
            }
        }
        for (s, n) in c.by_state {
            *out.by_state.entry(s).or_default() += n;
        }
        for (t, n) in c.by_tier {
            *out.by_tier.entry(t).or_default() += n;
        }
        out.total += c.total;
    }
    Ok(out)
}

/// One droplet as operators see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DropletDetail {
    /// The droplet.
    #[serde(flatten)]
    pub droplet: Droplet,
    /// When its last heartbeat arrived.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// What it said (spec 54.1).
    pub last_heartbeat: Option<serde_json::Value>,
    /// Its state changes, oldest first.
    pub history: Vec<StateChange>,
    /// The latest commands sent to its sidecar and how they went, newest first.
    pub commands: Vec<genesis_store::command_journal::CommandEntry>,
    /// Its tenant's slug.
    pub workspace_slug: String,
    /// The public address the cloud reported for it, once it did.
    pub public_ipv4: Option<String>,
    /// Its open alerts, newest first.
    pub open_alerts: Vec<Alert>,
}

/// Commands shown with a droplet.
const RECENT_COMMANDS: i64 = 20;

/// The droplet `raw_id` names, from whichever regional database holds it, with its last
/// heartbeat and state history (the API and God Mode's droplet page show the same).
pub async fn droplet_detail(state: &AppState, raw_id: &str) -> Result<DropletDetail, Problem> {
    let (db, droplet) = crate::app::droplets::locate(state, raw_id).await?;
    let last = db.droplet_last_heartbeat(droplet.id).await?;
    let history = db.droplet_history(droplet.id, 500).await?;
    // The journal is in the workspace's regional database, by the cloud's id.
    let commands = match droplet.provider_id {
        Some(pid) => {
            db.command_journal_recent(droplet.workspace_id.as_uuid(), pid, RECENT_COMMANDS)
                .await?
        }
        None => Vec::new(),
    };
    let workspace_slug = db
        .workspace_get(droplet.workspace_id)
        .await?
        .slug
        .to_string();
    let public_ipv4 = db.droplet_public_ipv4(droplet.id).await?;
    let open_alerts = db.alert_open_for_droplet(droplet.id).await?;
    Ok(DropletDetail {
        droplet,
        last_heartbeat_at: last.as_ref().map(|(at, _)| *at),
        last_heartbeat: last.map(|(_, hb)| hb),
        history,
        commands,
        workspace_slug,
        public_ipv4,
        open_alerts,
    })
}

/// `GET /api/v1/alerts` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// Include resolved alerts (default: open only).
    #[serde(default)]
    pub all: bool,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<i64>,
}

/// Alerts across regions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertList {
    /// The alerts.
    pub items: Vec<Alert>,
    /// Open alerts per kind.
    pub open_by_kind: BTreeMap<String, usize>,
}

/// The newest `limit` alerts over every regional database (only open ones when
/// `open_only`), with the open ones counted per kind.
pub async fn alerts_of(
    state: &AppState,
    open_only: bool,
    limit: i64,
) -> Result<AlertList, Problem> {
    let mut items = Vec::new();
    for db in state.stores.distinct() {
        items.extend(db.alert_list(open_only, limit).await?);
    }
    items.sort_by_key(|a| std::cmp::Reverse(a.opened_at));
    items.truncate(limit as usize);
    let mut open_by_kind = BTreeMap::new();
    for a in items.iter().filter(|a| a.resolved_at.is_none()) {
        *open_by_kind.entry(a.kind.clone()).or_default() += 1;
    }
    Ok(AlertList {
        items,
        open_by_kind,
    })
}

/// `GET /api/v1/fleet/reconcilers` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReconcilerList {
    /// Every reconciler, in name order.
    pub items: Vec<crate::app::reconcilers::ReconcilerView>,
}

/// What the fleet overview shows (also served as JSON at `/god/api/fleet`).
#[derive(Debug, Serialize)]
pub struct Overview {
    /// Droplets per state and region.
    pub fleet: genesis_store::FleetCounts,
    /// Hibernation savings (spec 55.2).
    pub hibernation: Savings,
    /// Ignition sagas running or unwinding.
    pub ignitions: IgnitionsInFlight,
}

/// Ignitions in flight over every regional database.
#[derive(Debug, Default, Serialize)]
pub struct IgnitionsInFlight {
    /// How many.
    pub count: i64,
    /// The oldest few: a saga that stays here long is stuck.
    pub oldest: Vec<genesis_store::IgnitionInFlight>,
}

/// How many in-flight ignitions the overview lists by name.
const IGNITIONS_LISTED: usize = 10;

async fn ignitions_of(state: &AppState) -> Result<IgnitionsInFlight, Problem> {
    let mut out = IgnitionsInFlight::default();
    for db in state.stores.distinct() {
        let (n, oldest) = db.ignitions_in_flight(IGNITIONS_LISTED as i64).await?;
        out.count += n;
        out.oldest.extend(oldest);
    }
    out.oldest.sort_by_key(|i| i.started_at);
    out.oldest.truncate(IGNITIONS_LISTED);
    Ok(out)
}

/// The fleet overview: droplets, hibernation savings, ignitions in flight.
pub async fn overview(state: &AppState) -> Result<Overview, Problem> {
    Ok(Overview {
        fleet: fleet_totals(state).await?,
        hibernation: savings_now(state).await?,
        ignitions: ignitions_of(state).await?,
    })
}

/// Every live droplet's cell of the health heatmap, per region code.
pub async fn heatmap_cells(
    state: &AppState,
) -> Result<BTreeMap<String, Vec<genesis_store::FleetCell>>, Problem> {
    let mut regions: BTreeMap<String, Vec<genesis_store::FleetCell>> = BTreeMap::new();
    for db in state.stores.distinct() {
        for cell in db.fleet_cells().await? {
            regions.entry(cell.region.clone()).or_default().push(cell);
        }
    }
    Ok(regions)
}

/// The newest `limit` drift heals (audited DRIFT_HEALED) over every regional database.
pub async fn recent_heals(
    state: &AppState,
    limit: i64,
) -> Result<Vec<genesis_store::AuditEntry>, Problem> {
    let mut heals = Vec::new();
    for db in state.stores.distinct() {
        heals.extend(db.audit_list(None, Some("DRIFT_HEALED"), limit).await?);
    }
    heals.sort_by_key(|h| std::cmp::Reverse(h.occurred_at));
    heals.truncate(usize::try_from(limit).unwrap_or_default());
    Ok(heals)
}
