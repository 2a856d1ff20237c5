//! Pre-update snapshots (spec 66.2: "before updates", kept 48 hours; DECISIONS 112): before
//! a droplet's n8n container is swapped for another image, by a rollout or on a deferred
//! droplet's wake, the droplet is snapshotted, and the swap waits until the snapshot exists.
//! A swap that goes wrong in a way the sidecar's own rollback does not catch can then be
//! undone from the snapshot.
//!
//! The snapshot is a row of `genesis.snapshots` (kind `pre_update`), named for the droplet
//! and the update, so every run of the update's job finds the same one:
//! - none yet: the row is written, then the cloud is asked (a crash between the two leaves
//!   a row the next run looks up by name);
//! - being taken: the droplet's snapshot list is read for the name; while it is missing the
//!   action says whether it may still come;
//! - available: the update goes ahead;
//! - failed, or refused by the cloud: the update is not made, and says why.
//!
//! The job does not hold a worker while DigitalOcean snapshots (minutes): it answers
//! [`PreUpdate::Wait`], and its caller runs it again later. The snapshot schedule's GC
//! deletes it after its 48 hours like any other.

use chrono::{DateTime, Utc};
use genesis_cloud::{ActionStatus, Cloud, CloudError};
use genesis_core::dr::SnapshotKind;
use genesis_store::snapshots::{DueSnapshot, SnapshotRow};
use genesis_store::{Database, Droplet, StoreError};
use uuid::Uuid;

/// A snapshot still missing this long after it was asked for is given up.
const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Where a droplet's pre-update snapshot stands.
#[derive(Debug, Clone, PartialEq)]
pub enum PreUpdate {
    /// It exists (its row, with its image): the update may go ahead.
    Ready(Box<SnapshotRow>),
    /// It is being taken: run again later.
    Wait,
    /// It cannot be had: the update must not be made. Says why, for the operator.
    Failed(String),
}

/// Why the state could not be learnt (the caller retries).
#[derive(Debug, thiserror::Error)]
pub enum PreUpdateError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cloud, transiently (rate limit, 5xx, timeout).
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// Whether a cloud error says something about this request (not the API's health).
fn refused(e: &CloudError) -> bool {
    matches!(
        e,
        CloudError::Refused { .. } | CloudError::NotFound | CloudError::ActionErrored { .. }
    )
}

/// The name of `droplet`'s snapshot before update `update`.
pub fn snapshot_name(droplet: Uuid, update: Uuid) -> String {
    let u = update.simple().to_string();
    format!("genesis-{}-pre-{}", droplet.simple(), &u[..12])
}

/// Takes, or follows, `droplet`'s snapshot before update `update` (a rollout's id).
pub async fn pre_update_snapshot<C: Cloud>(
    db: &Database,
    cloud: &C,
    droplet: &Droplet,
    update: Uuid,
    now: DateTime<Utc>,
) -> Result<PreUpdate, PreUpdateError> {
    let Some(provider) = droplet.provider_id else {
        return Ok(PreUpdate::Failed("the droplet has no cloud id".into()));
    };
    let name = snapshot_name(droplet.id.as_uuid(), update);
    let Some(mut s) = db.snapshot_named(&name).await? else {
        let due = DueSnapshot {
            droplet_id: droplet.id.as_uuid(),
            workspace_id: droplet.workspace_id.as_uuid(),
            provider_id: provider,
            kind: SnapshotKind::PreUpdate,
        };
        let id = db.snapshot_requested(&due, &name, now).await?;
        return match cloud.droplet_snapshot(provider, &name).await {
            Ok(action) => {
                db.snapshot_action(id, action.id).await?;
                Ok(PreUpdate::Wait)
            }
            Err(e) if refused(&e) => {
                db.snapshot_failed(id).await?;
                Ok(PreUpdate::Failed(format!(
                    "the cloud refused its pre-update snapshot: {e}"
                )))
            }
            // Unknown outcome: the row waits, and the next run looks for it by name.
            Err(e) => Err(e.into()),
        };
    };
    match s.state.as_str() {
        "available" => return Ok(PreUpdate::Ready(Box::new(s))),
        "taking" => {}
        _ => return Ok(PreUpdate::Failed("its pre-update snapshot failed".into())),
    }
    let listed = cloud.droplet_snapshots(provider).await?;
    if let Some(image) = listed.into_iter().find(|i| i.name == name) {
        let datacenter = image.regions.first().cloned().unwrap_or_default();
        db.snapshot_available(s.id, image.id, &datacenter, image.size_gigabytes, now)
            .await?;
        s.state = "available".into();
        s.image_id = Some(image.id);
        s.datacenter = Some(datacenter);
        return Ok(PreUpdate::Ready(Box::new(s)));
    }
    let may_still_come = match s.action_id {
        Some(action) => match cloud.action_get(action).await {
            Ok(a) => a.status != ActionStatus::Errored,
            Err(e) if refused(&e) => false,
            Err(e) => return Err(e.into()),
        },
        // The answer that carried the action was lost: only its name can find it.
        None => true,
    };
    if may_still_come && now - s.requested_at < GIVE_UP_AFTER {
        return Ok(PreUpdate::Wait);
    }
    db.snapshot_failed(s.id).await?;
    Ok(PreUpdate::Failed(if may_still_come {
        "its pre-update snapshot did not appear within an hour".into()
    } else {
        "its pre-update snapshot errored at the cloud".into()
    }))
}
