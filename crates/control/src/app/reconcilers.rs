//! The background reconcilers as operators see them: what each last did, on every part,
//! whichever replica leads it, and a way to make one run now.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::workers::driver::{PUBLISH_EVERY, ReconcilerStatus};
use crate::{AppState, Problem};

/// Every reconciler `serve` runs, by the name it publishes under.
pub const RECONCILERS: &[&str] = &[
    "audit-retention",
    "audit-seal",
    "command-keys",
    "deletions",
    "droplet-restore",
    "failover",
    "fleet-sampler",
    "hibernation",
    "mail",
    "oauth-ahead",
    "orphan-reaper",
    "pending-credentials",
    "region-watch",
    "rollouts",
    "snapshots",
    "standby",
    "support-grants",
    "tracking-domains",
    "wallet-check",
    "wallet-sync",
    "watchdog",
    "webhook-secrets",
    "webhooks",
    "zombie-detector",
];

/// How a reconciler is doing, as far as its published status tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Its leader published recently, and no part is failing.
    Running,
    /// Its leader published recently, and at least one part's last pass failed.
    Failing,
    /// Nothing published for several periods: no replica leads it (the fleet side is off,
    /// or its leader died and none took over yet).
    Stale,
    /// Never published.
    NeverRan,
}

/// One reconciler.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReconcilerView {
    /// Its name.
    pub name: String,
    /// See [`Liveness`].
    pub liveness: Liveness,
    /// The replica that last published (host and process).
    pub leader: Option<String>,
    /// When it last published.
    pub updated_at: Option<DateTime<Utc>>,
    /// What it published.
    pub status: Option<ReconcilerStatus>,
}

/// A status is stale after this many periods without a publication (and never before
/// three times the publication throttle).
const STALE_PERIODS: u32 = 3;

/// Every reconciler, in name order.
pub async fn list(state: &AppState) -> Result<Vec<ReconcilerView>, Problem> {
    let rows = state.stores.coordinator().reconciler_statuses().await?;
    let now = Utc::now();
    Ok(RECONCILERS
        .iter()
        .map(|name| {
            let Some(row) = rows.iter().find(|r| r.name == *name) else {
                return ReconcilerView {
                    name: (*name).into(),
                    liveness: Liveness::NeverRan,
                    leader: None,
                    updated_at: None,
                    status: None,
                };
            };
            let status: Option<ReconcilerStatus> = serde_json::from_value(row.status.clone()).ok();
            let every = status.as_ref().map_or(PUBLISH_EVERY, |s| {
                std::time::Duration::from_millis(s.every_ms)
            });
            let quiet_for = (every.max(PUBLISH_EVERY)) * STALE_PERIODS;
            let stale = (now - row.updated_at).to_std().unwrap_or_default() > quiet_for;
            let failing = status
                .as_ref()
                .is_some_and(|s| s.parts.iter().any(|p| p.consecutive_failures > 0));
            ReconcilerView {
                name: (*name).into(),
                liveness: if stale {
                    Liveness::Stale
                } else if failing {
                    Liveness::Failing
                } else {
                    Liveness::Running
                },
                leader: Some(row.replica.clone()),
                updated_at: Some(row.updated_at),
                status,
            }
        })
        .collect())
}

/// Asks the leader of `name` to run a pass now; 404 for a name no reconciler has.
pub async fn wake(state: &AppState, name: &str) -> Result<(), Problem> {
    let Some(name) = RECONCILERS.iter().find(|n| **n == name) else {
        return Err(Problem::not_found("reconciler"));
    };
    // The leader hears it through its listener, on this replica or another.
    Ok(state.stores.coordinator().reconciler_wake(name).await?)
}

#[cfg(test)]
mod tests {
    use super::RECONCILERS;
    use crate::workers::reconciler::Reconciler;

    #[test]
    fn the_list_names_every_reconciler_serve_runs() {
        type C = genesis_cloud::DigitalOcean;
        let mut names = vec![
            crate::workers::zombies::ZombieDetector::<C>::NAME,
            crate::workers::watchdog::Watchdog::NAME,
            crate::workers::hibernation::Hibernator::<C>::NAME,
            crate::workers::rollouts::RolloutConductor::NAME,
            crate::workers::standby::StandbyPool::<C>::NAME,
            crate::workers::reaper::OrphanReaper::<C>::NAME,
            crate::workers::fleet_sampler::FleetSampler::NAME,
            crate::workers::tracking_domains::TrackingDomains::NAME,
            crate::workers::wallet::WalletSyncer::NAME,
            crate::workers::wallet::WalletCheck::NAME,
            crate::workers::mail::MailSender::NAME,
            crate::workers::webhooks::WebhookDeliveries::NAME,
            crate::workers::webhook_secrets::WebhookSecrets::NAME,
            crate::workers::oauth_ahead::OAuthAhead::NAME,
            crate::workers::command_keys::CommandKeyRotation::NAME,
            crate::workers::pending_credentials::PendingCredentials::<C>::NAME,
            crate::workers::audit_seal::AuditSealer::NAME,
            crate::workers::deletions::Deletions::<C>::NAME,
            crate::workers::support_grants::SupportGrantSweep::NAME,
            crate::workers::audit_retention::AuditRetention::NAME,
            crate::workers::snapshots::SnapshotSchedule::<C>::NAME,
            crate::workers::failover::FailoverConductor::<C>::NAME,
            crate::workers::region_watch::RegionWatch::<C>::NAME,
            crate::workers::droplet_restore::DropletRestorer::<C>::NAME,
        ];
        names.sort_unstable();
        assert_eq!(names, RECONCILERS);
    }
}
