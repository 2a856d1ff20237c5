//! Declaring a regional failover (spec 66.4 phase 1, assessment; DECISIONS 109): which
//! tenants move, each from what, and which stay because their data may not leave its
//! residency area. Declaring one is an operator's decision (`genesis dr failover`); the
//! `failover` reconciler then runs phases 2 to 4.

use genesis_core::Region;
use genesis_core::dr::{RestorePlan, backup_datacenter, region_of_datacenter};
use genesis_store::failovers::{Affected, Failover, NewFailover};
use genesis_store::{Database, RegionalStore, StoreError};
use serde::Serialize;
use uuid::Uuid;

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct FailoverRequest {
    /// The failed datacenter (`fra1`).
    pub from: String,
    /// Where to; spec 66.3's backup datacenter when `None`.
    pub to: Option<String>,
    /// Lets tenants leave their residency area (audited).
    pub residency_override: bool,
    /// Who asks.
    pub operator: String,
    /// Why (recorded with the audit events).
    pub reason: String,
}

/// Why a failover cannot be declared.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// The request names something that does not exist, in words for the operator.
    #[error("{0}")]
    Invalid(String),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The assessment: every affected tenant and its plan.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverPlan {
    /// The failed datacenter.
    pub from: String,
    /// The target.
    pub to: String,
    /// Tenants restored from a snapshot.
    pub restore: usize,
    /// Tenants re-ignited (no usable backup: what their droplet held is lost).
    pub reignite: usize,
    /// Tenants not moved: the target is outside their residency area.
    pub held: usize,
    /// The oldest snapshot restored from, as hours before now: the worst data loss (RPO).
    pub worst_rpo_hours: Option<f64>,
    #[serde(skip)]
    tenants: Vec<(Affected, RestorePlan)>,
}

impl FailoverPlan {
    /// Each tenant's plan.
    pub fn tenants(&self) -> &[(Affected, RestorePlan)] {
        &self.tenants
    }
}

/// The failed datacenter's region, the target datacenter, and the database that holds the
/// region's tenants.
pub fn resolve(req: &FailoverRequest) -> Result<(Region, String), FailoverError> {
    let from = region_of_datacenter(&req.from).ok_or_else(|| {
        FailoverError::Invalid(format!(
            "{} is not a datacenter the platform uses (one of: {})",
            req.from,
            Region::ALL
                .iter()
                .flat_map(|r| r.datacenters().iter().copied())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let to = match &req.to {
        Some(t) => t.clone(),
        None => backup_datacenter(&req.from)
            .ok_or_else(|| FailoverError::Invalid(format!("{} has no backup region", req.from)))?
            .to_owned(),
    };
    let target = region_of_datacenter(&to).ok_or_else(|| {
        FailoverError::Invalid(format!("{to} is not a datacenter the platform uses"))
    })?;
    if target == from {
        return Err(FailoverError::Invalid(format!(
            "{to} is in the failed region itself; name a datacenter of another region"
        )));
    }
    Ok((from, to))
}

/// Phase 1: the affected tenants of `req.from` in `db` and what happens to each. Writes
/// nothing: `--dry-run` prints this.
pub async fn assess(db: &Database, req: &FailoverRequest) -> Result<FailoverPlan, FailoverError> {
    let (from, to) = resolve(req)?;
    let target = region_of_datacenter(&to).ok_or_else(|| FailoverError::Invalid(to.clone()))?;
    let now = chrono::Utc::now();
    let tenants: Vec<(Affected, RestorePlan)> = db
        .failover_affected(from, &to)
        .await?
        .into_iter()
        .map(|a| {
            let plan = if !a.home.may_run_in(target) && !req.residency_override {
                RestorePlan::Held
            } else if a.snapshot.is_some() {
                RestorePlan::Restore
            } else {
                RestorePlan::Reignite
            };
            (a, plan)
        })
        .collect();
    let count = |p| tenants.iter().filter(|(_, q)| *q == p).count();
    let worst_rpo_hours = tenants
        .iter()
        .filter(|(_, p)| *p == RestorePlan::Restore)
        .filter_map(|(a, _)| a.snapshot.map(|s| s.2))
        .min()
        .map(|oldest| (now - oldest).num_seconds() as f64 / 3600.0);
    Ok(FailoverPlan {
        from: req.from.clone(),
        restore: count(RestorePlan::Restore),
        reignite: count(RestorePlan::Reignite),
        held: count(RestorePlan::Held),
        worst_rpo_hours,
        to,
        tenants,
    })
}

/// Declares the failover: assesses it and writes it with every tenant's plan and the mass
/// notification, in the failed region's database. The `failover` reconciler takes it from
/// there.
pub async fn declare(
    stores: &RegionalStore,
    req: &FailoverRequest,
    actor: &str,
) -> Result<(FailoverPlan, Failover), FailoverError> {
    let (from, _) = resolve(req)?;
    let db = stores.for_region(from);
    let plan = assess(db, req).await?;
    let f = db
        .failover_start(
            &NewFailover {
                id: Uuid::now_v7(),
                from_datacenter: &plan.from,
                to_datacenter: &plan.to,
                operator: &req.operator,
                reason: &req.reason,
                residency_override: req.residency_override,
            },
            plan.tenants(),
            actor,
        )
        .await?;
    // The region's outage, if the watch saw one, is now the failover's.
    if let Some(incident) = db.region_incident_open(from).await? {
        db.region_incident_failover(incident.id, f.id).await?;
    }
    Ok((plan, f))
}

/// Declares the failback of the last failover out of datacenter `from` (spec 66.4 phase 4,
/// option B; DECISIONS 114): its tenants move home, each from a snapshot taken for the move.
/// Refused while the region's outage is confirmed and open: the region must answer again.
/// The `failover` reconciler runs it; `genesis dr cleanup` on the backup datacenter then
/// deletes the droplets it leaves there.
pub async fn failback(
    stores: &RegionalStore,
    from: &str,
    operator: &str,
    reason: &str,
    actor: &str,
) -> Result<Failover, FailoverError> {
    let (region, _) = resolve(&FailoverRequest {
        from: from.to_owned(),
        to: None,
        residency_override: false,
        operator: operator.to_owned(),
        reason: reason.to_owned(),
    })?;
    let db = stores.for_region(region);
    if db
        .region_incident_open(region)
        .await?
        .is_some_and(|i| i.confirmed_at.is_some())
    {
        return Err(FailoverError::Invalid(format!(
            "{} is still confirmed failed (`genesis dr status`): fail back once it answers again",
            region.code()
        )));
    }
    let of = db
        .failovers(false)
        .await?
        .into_iter()
        .filter(|f| f.from_datacenter == from && f.failback_of.is_none())
        .max_by_key(|f| f.started_at)
        .ok_or_else(|| FailoverError::Invalid(format!("no failover out of {from} to fail back")))?;
    Ok(db
        .failback_start(&of, Uuid::now_v7(), operator, reason, actor)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: &str, to: Option<&str>) -> FailoverRequest {
        FailoverRequest {
            from: from.into(),
            to: to.map(Into::into),
            residency_override: false,
            operator: "ops".into(),
            reason: "drill".into(),
        }
    }

    #[test]
    fn the_target_defaults_to_66_3s_backup_and_must_be_another_region() {
        assert_eq!(
            resolve(&req("fra1", None)).expect("fra1").1,
            "lon1",
            "66.3: fra1 -> lon1"
        );
        assert_eq!(resolve(&req("sgp1", None)).expect("sgp1").1, "sfo1");
        let same = resolve(&req("nyc3", Some("nyc1"))).expect_err("same region");
        assert!(same.to_string().contains("failed region itself"), "{same}");
        let unknown = resolve(&req("ams3", None)).expect_err("unknown");
        assert!(
            unknown.to_string().contains("fra1"),
            "lists the real ones: {unknown}"
        );
    }
}
