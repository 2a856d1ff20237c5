//! The `region-watch` reconciler: spec 66.1's "region degraded" and "region total failure",
//! detected (DECISIONS 111), on each regional database.
//!
//! A pass, per region the database serves:
//! 1. **Reads the heartbeats**: how many of the region's droplets should report, and how
//!    many are silent for three missed windows (the zombie detector's rule).
//! 2. **Asks the cloud**, only about a suspect region (a fifth silent, or an incident open):
//!    up to [`PROBES`] of its droplets are looked up. A 5xx, a timeout or no connection is a
//!    failed look; any answer, even "not found", means the API works there.
//! 3. **Keeps the incident** ([`genesis_core::outage::observe`]): opens it, confirms it
//!    failed once failed verdicts hold for the confirmation time, closes it once clear ones
//!    do; each turn is audited.
//! 4. **Declares the failover** of a confirmed-failed region, but only when the configured
//!    policy allows it ([`RegionWatchSettings::auto_failover_after`]) and no failover is
//!    open for it. Otherwise an operator confirms with `genesis dr failover`, which links
//!    the failover to the incident. The policy never overrides a tenant's residency.
//!
//! While a region's incident is confirmed failed, the zombie detector leaves its droplets
//! alone: rebooting machines in a dead region only spends the cloud budget a failover needs.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use genesis_cloud::{Cloud, CloudError};
use genesis_core::Region;
use genesis_core::outage::{
    CONFIRM_AFTER, IncidentChange, OutageLevel, OutageSignals, PROBES, observe,
};
use genesis_store::region_incidents::RegionIncident;
use genesis_store::{Database, RegionalStore, StoreError};
use serde::Serialize;

use super::reaper::cloud_retry;
use super::reconciler::{Merge, Part, Reconciler, Retry};
use crate::app::failover::{FailoverError, FailoverRequest, declare};

/// Its name.
pub const NAME: &str = "region-watch";
/// Who it is in audit events and failovers.
pub const ACTOR: &str = "system:region-watch";

/// How the watch judges.
#[derive(Debug, Clone, Copy)]
pub struct RegionWatchSettings {
    /// How often a pass runs.
    pub every: Duration,
    /// The sidecars' heartbeat interval.
    pub heartbeat_interval: Duration,
    /// How long a verdict must hold to confirm a failure, or close an incident.
    pub confirm_after: Duration,
    /// Declare the failover of a region confirmed failed this long ago, without an
    /// operator. `None` (the default) waits for `genesis dr failover`.
    pub auto_failover_after: Option<Duration>,
}

impl Default for RegionWatchSettings {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(60),
            confirm_after: CONFIRM_AFTER,
            auto_failover_after: None,
        }
    }
}

/// Watches regions.
pub struct RegionWatch<C> {
    stores: RegionalStore,
    cloud: Arc<C>,
    settings: RegionWatchSettings,
}

impl<C: Cloud> RegionWatch<C> {
    /// Over `stores`, asking `cloud`.
    pub fn new(stores: RegionalStore, cloud: Arc<C>, settings: RegionWatchSettings) -> Self {
        Self {
            stores,
            cloud,
            settings,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct RegionWatchReport {
    /// Regions judged.
    pub regions: u64,
    /// Droplets looked up at the cloud.
    pub probes: u64,
    /// Incidents opened.
    pub opened: u64,
    /// Incidents confirmed failed.
    pub confirmed: u64,
    /// Incidents closed (regions recovered).
    pub closed: u64,
    /// Failovers the policy declared.
    pub declared: u64,
    /// Regions in an open incident after the pass.
    pub open: u64,
}

impl Merge for RegionWatchReport {
    fn merge(&mut self, o: Self) {
        self.regions += o.regions;
        self.probes += o.probes;
        self.opened += o.opened;
        self.confirmed += o.confirmed;
        self.closed += o.closed;
        self.declared += o.declared;
        self.open += o.open;
    }
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RegionWatchError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cloud's rate limit (other cloud errors are what the watch measures).
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The policy's failover could not be written.
    #[error(transparent)]
    Failover(#[from] FailoverError),
}

/// Whether a failed look says the API is down there (any answer says it is up).
fn look_failed(e: &CloudError) -> bool {
    matches!(
        e,
        CloudError::Unavailable { .. } | CloudError::Timeout(_) | CloudError::Transport(_)
    )
}

impl<C: Cloud> RegionWatch<C> {
    async fn signals(
        &self,
        db: &Database,
        region: Region,
        incident_open: bool,
    ) -> Result<OutageSignals, RegionWatchError> {
        let silent_for =
            self.settings.heartbeat_interval * genesis_core::health::thresholds::MISSED_WINDOWS;
        let cutoff =
            Utc::now() - chrono::Duration::from_std(silent_for).unwrap_or(chrono::Duration::MAX);
        let hb = db.region_heartbeats(region, cutoff, PROBES as i64).await?;
        let mut s = OutageSignals {
            watched: hb.watched,
            silent: hb.silent,
            ..Default::default()
        };
        if s.worth_probing(incident_open) {
            for id in hb.probe_ids {
                s.probes += 1;
                match self.cloud.droplet_get(id).await {
                    Ok(_) | Err(CloudError::NotFound) => {}
                    Err(e @ CloudError::RateLimited { .. }) => return Err(e.into()),
                    Err(e) if look_failed(&e) => s.probe_failures += 1,
                    // A refusal or an odd answer is still an answer from the API.
                    Err(e) => tracing::debug!(region = region.code(), error = %e, "probe answered"),
                }
            }
        }
        Ok(s)
    }

    /// Declares `incident`'s failover when the policy allows it now.
    async fn maybe_declare(
        &self,
        db: &Database,
        region: Region,
        incident: &RegionIncident,
        report: &mut RegionWatchReport,
    ) -> Result<(), RegionWatchError> {
        let (Some(after), Some(confirmed_at), None) = (
            self.settings.auto_failover_after,
            incident.confirmed_at,
            incident.failover_id,
        ) else {
            return Ok(());
        };
        if (Utc::now() - confirmed_at).to_std().unwrap_or_default() < after {
            return Ok(());
        }
        let Some(&from) = region.datacenters().first() else {
            return Ok(());
        };
        // An operator may have declared one already: it is the incident's.
        if let Some(open) = db
            .failovers(true)
            .await?
            .into_iter()
            .find(|f| f.from_datacenter == from)
        {
            db.region_incident_failover(incident.id, open.id).await?;
            return Ok(());
        }
        let req = FailoverRequest {
            from: from.to_owned(),
            to: None,
            residency_override: false,
            operator: "policy:auto-failover".into(),
            reason: format!(
                "{} confirmed failed at {}: {} of {} droplets silent, {} of {} looks at the cloud failed",
                region.code(),
                confirmed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                incident.silent,
                incident.watched,
                incident.probe_failures,
                incident.probes
            ),
        };
        let (plan, f) = declare(&self.stores, &req, ACTOR).await?;
        tracing::warn!(
            region = region.code(),
            failover = %f.id,
            restore = plan.restore,
            reignite = plan.reignite,
            held = plan.held,
            "region failed: the policy declared its failover"
        );
        report.declared += 1;
        Ok(())
    }

    async fn watch(
        &self,
        db: &Database,
        region: Region,
        report: &mut RegionWatchReport,
    ) -> Result<(), RegionWatchError> {
        let open = db.region_incident_open(region).await?;
        let signals = self.signals(db, region, open.is_some()).await?;
        report.regions += 1;
        report.probes += u64::from(signals.probes);
        let now = Utc::now();
        let change = observe(
            open.as_ref().map(RegionIncident::incident),
            signals.level(),
            now,
            self.settings.confirm_after,
        );
        let current = match (change, &open) {
            (IncidentChange::None, _) => None,
            (IncidentChange::Open(i), _) => {
                let opened = db
                    .region_incident_open_new(region, &i, &signals, now)
                    .await?;
                if let Some(o) = &opened {
                    report.opened += 1;
                    report.confirmed += u64::from(i.level == OutageLevel::Failed);
                    tracing::warn!(region = region.code(), level = %o.level, ?signals, "region incident opened");
                }
                opened
            }
            (
                IncidentChange::Update {
                    incident,
                    confirmed,
                },
                Some(o),
            ) => {
                if confirmed {
                    report.confirmed += 1;
                    tracing::error!(region = region.code(), ?signals, "region confirmed failed");
                }
                Some(
                    db.region_incident_update(o.id, region, &incident, confirmed, &signals, now)
                        .await?,
                )
            }
            (IncidentChange::Close, Some(o)) => {
                db.region_incident_close(o.id, region, &signals, now)
                    .await?;
                report.closed += 1;
                tracing::info!(region = region.code(), "region recovered");
                None
            }
            // `observe` updates or closes only an open incident.
            (IncidentChange::Update { .. } | IncidentChange::Close, None) => None,
        };
        if let Some(i) = current {
            report.open += 1;
            self.maybe_declare(db, region, &i, report).await?;
        }
        Ok(())
    }
}

impl<C: Cloud + 'static> Reconciler for RegionWatch<C> {
    type Report = RegionWatchReport;
    type Error = RegionWatchError;
    const NAME: &'static str = NAME;

    fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    async fn reconcile_part(&self, part: &Part) -> Result<RegionWatchReport, RegionWatchError> {
        let mut report = RegionWatchReport::default();
        for &region in &part.regions {
            self.watch(&part.db, region, &mut report).await?;
        }
        Ok(report)
    }

    fn noteworthy(r: &RegionWatchReport) -> bool {
        r.opened + r.confirmed + r.closed + r.declared > 0
    }

    fn error_policy(&self, e: &RegionWatchError) -> Retry {
        match e {
            RegionWatchError::Cloud(c) => cloud_retry(c),
            _ => Retry::Backoff,
        }
    }
}
