//! An operator's hands on a droplet's machine: a hard reboot, and destroying an ORPHAN
//! (spec 44.1's droplet page, spec 54.4's manual review).
//!
//! Both go through the droplet's state machine, so what may happen when is decided in one
//! place, and the transition's audit event carries the operator's name. The state machine
//! is asked *before* the cloud is: an action it would refuse is never sent.

use genesis_cloud::{Cloud, PowerAction};
use genesis_core::support::SupportAction;
use genesis_core::{DropletEvent, DropletState};
use genesis_store::{AlertAction, Droplet, StoreError};

use super::droplets::locate;
use super::support_access::{Caller, authorise, require_fleet_role};
use crate::{AppState, Problem};

/// The cloud's id of `d`, or why there is none.
fn provider_of(d: &Droplet) -> Result<i64, Problem> {
    d.provider_id
        .ok_or_else(|| Problem::conflict("state", "the droplet has no cloud id yet"))
}

fn cloud_problem(e: genesis_cloud::CloudError) -> Problem {
    Problem::unavailable(format!("the cloud API refused or did not answer: {e}"))
}

/// A lost race with another writer, for people.
fn moved(e: StoreError) -> Problem {
    match e {
        StoreError::VersionConflict { .. } => Problem::conflict(
            "state",
            "the droplet changed while this ran; reload its page and look again",
        ),
        e => e.into(),
    }
}

/// Power-cycles a serving droplet and marks it REBOOTING: its heartbeat must return within
/// the zombie detector's reboot deadline, or it becomes ORPHAN with a review alert.
pub async fn reboot(
    state: &AppState,
    raw_id: &str,
    caller: Caller<'_>,
) -> Result<Droplet, Problem> {
    let (db, droplet) = locate(state, raw_id).await?;
    let authority = authorise(&db, caller, droplet.workspace_id, SupportAction::Reboot).await?;
    let actor = authority.actor.as_str();
    if droplet.state.next(DropletEvent::RebootIssued).is_err() {
        return Err(Problem::conflict(
            "state",
            format!(
                "the droplet is {}; only a serving or unresponsive droplet can be rebooted",
                droplet.state.in_words()
            ),
        ));
    }
    let provider = provider_of(&droplet)?;
    let igniter = igniter(state)?;
    // Like a sidecar command: audited, with the grant it runs under, before it is sent.
    if authority.grant.is_some() {
        db.audit_record(&authority.action_taken(
            droplet.workspace_id,
            droplet.id.to_string(),
            serde_json::json!({ "action": "REBOOT" }),
        ))
        .await?;
    }
    igniter
        .cloud()
        .droplet_action(provider, PowerAction::PowerCycle)
        .await
        .map_err(cloud_problem)?;
    db.droplet_transition(
        droplet.id,
        droplet.version,
        DropletEvent::RebootIssued,
        actor,
    )
    .await
    .map_err(|e| match e {
        // The power cycle went out; only the mark did not: say so, or the operator reboots
        // it a second time.
        StoreError::VersionConflict { .. } => Problem::conflict(
            "state",
            "the droplet was power-cycled, but its state changed meanwhile, so it is not \
             marked REBOOTING; reload its page before acting again",
        ),
        e => e.into(),
    })
}

/// Destroys an ORPHAN at the cloud, marks it TERMINATED, and resolves its open alerts
/// (the review they asked for is this decision). Only an ORPHAN: every other droplet has a
/// tenant who may still need it.
pub async fn destroy_orphan(
    state: &AppState,
    raw_id: &str,
    caller: Caller<'_>,
) -> Result<Droplet, Problem> {
    let (db, droplet) = locate(state, raw_id).await?;
    let actor = require_fleet_role(
        &db,
        caller,
        Some(droplet.workspace_id),
        "destroy_orphan",
        &droplet.id.to_string(),
    )
    .await?;
    let actor = actor.as_str();
    if droplet.state != DropletState::Orphan {
        return Err(Problem::conflict(
            "state",
            format!(
                "the droplet is {}; only a lost (ORPHAN) droplet is destroyed from here",
                droplet.state.in_words()
            ),
        ));
    }
    let igniter = igniter(state)?;
    if let Some(provider) = droplet.provider_id {
        // A droplet the cloud no longer has counts as deleted (the client says so).
        igniter
            .cloud()
            .droplet_delete(provider)
            .await
            .map_err(cloud_problem)?;
    }
    let gone = db
        .droplet_transition(droplet.id, droplet.version, DropletEvent::Destroyed, actor)
        .await
        .map_err(moved)?;
    for alert in db.alert_open_for_droplet(droplet.id).await? {
        match db
            .alert_act(droplet.id, &alert.kind, AlertAction::Resolve, actor)
            .await
        {
            Ok(_) | Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(gone)
}

fn igniter(
    state: &AppState,
) -> Result<&std::sync::Arc<genesis_ignition::Igniter<genesis_cloud::DigitalOcean>>, Problem> {
    state.igniter.as_ref().ok_or_else(|| {
        Problem::unavailable("this control plane has no cloud configured; it cannot reach droplets")
    })
}
