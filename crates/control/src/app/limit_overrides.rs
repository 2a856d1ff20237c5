//! Per-tenant limits (spec 59.2: "100/day per tenant by default"): an operator gives one
//! workspace its own per-tenant limits for a service, and the gateway applies the matrix's
//! limits with the workspace's own in their place. Global limits stay the matrix's: they
//! protect Genesis's account with the vendor, whoever calls.
//!
//! Each process remembers a workspace's overrides for [`OVERRIDES_TTL`], so the gateway does
//! not read the database on every call; the process that changes them forgets at once, the
//! others within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use genesis_core::WorkspaceId;
use genesis_core::services::{Limits, Service};
use genesis_store::limit_overrides::LimitOverride;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wallet::Wallets;
use crate::{AppState, Problem};

/// How long a process remembers a workspace's overrides.
pub const OVERRIDES_TTL: Duration = Duration::from_secs(30);

/// The largest per-tenant limit an operator may set.
pub const MAX_LIMIT: u32 = 10_000_000;

/// What each process remembers: per workspace, when it read them and what they were.
#[derive(Default)]
pub struct OverrideCache(Mutex<HashMap<Uuid, (Instant, Vec<LimitOverride>)>>);

impl std::fmt::Debug for OverrideCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OverrideCache")
    }
}

impl OverrideCache {
    fn get(&self, workspace: WorkspaceId) -> Option<Vec<LimitOverride>> {
        let m = self.0.lock().ok()?;
        m.get(&workspace.as_uuid())
            .filter(|(at, _)| at.elapsed() < OVERRIDES_TTL)
            .map(|(_, o)| o.clone())
    }

    fn put(&self, workspace: WorkspaceId, o: Vec<LimitOverride>) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(workspace.as_uuid(), (Instant::now(), o));
        }
    }

    fn forget(&self, workspace: WorkspaceId) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&workspace.as_uuid());
        }
    }
}

/// The matrix's limits with an override's per-tenant ones in their place.
fn apply(mut limits: Limits, o: Option<&LimitOverride>) -> Limits {
    if let Some(o) = o {
        limits.rpm_per_tenant = o.rpm_per_tenant.or(limits.rpm_per_tenant);
        limits.daily_per_tenant = o.daily_per_tenant.or(limits.daily_per_tenant);
        limits.concurrent_per_tenant = o.concurrent_per_tenant.or(limits.concurrent_per_tenant);
    }
    limits
}

impl Wallets {
    /// `service`'s limits for `workspace`. When its overrides cannot be read, the matrix's
    /// (the defaults every tenant gets).
    pub async fn limits_for(&self, service: &Service, workspace: WorkspaceId) -> Limits {
        let overrides = match self.overrides().get(workspace) {
            Some(o) => o,
            None => {
                let read = match self.ledger_of(workspace).await {
                    Ok(db) => db.limit_overrides(workspace).await.map_err(Problem::from),
                    Err(p) => Err(p),
                };
                match read {
                    Ok(o) => {
                        self.overrides().put(workspace, o.clone());
                        o
                    }
                    Err(p) => {
                        tracing::warn!(%workspace, detail = %p.detail, "limit overrides unread; the matrix's apply");
                        Vec::new()
                    }
                }
            }
        };
        apply(
            service.limits,
            overrides.iter().find(|o| o.service == service.id),
        )
    }
}

/// One service's per-tenant limits for a workspace, as they apply.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceLimits {
    /// The service's id in the matrix.
    pub service: String,
    /// Its name.
    pub name: String,
    /// Requests per minute for this workspace (none: no such limit).
    pub rpm_per_tenant: Option<u32>,
    /// Calls per day (UTC).
    pub daily_per_tenant: Option<u32>,
    /// Calls in flight.
    pub concurrent_per_tenant: Option<u32>,
    /// Whether an operator set them for this workspace (else they are the matrix's).
    pub overridden: bool,
    /// Why, when overridden.
    pub reason: Option<String>,
}

/// Per-tenant limits to set; a field left out keeps the matrix's.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsChange {
    /// Requests per minute.
    pub rpm_per_tenant: Option<u32>,
    /// Calls per day (UTC).
    pub daily_per_tenant: Option<u32>,
    /// Calls in flight.
    pub concurrent_per_tenant: Option<u32>,
    /// Why (1 to 200 characters): the audit log and the next operator read it.
    pub reason: String,
}

fn wallets(state: &AppState) -> Result<&Wallets, Problem> {
    state
        .wallets
        .as_deref()
        .ok_or_else(|| Problem::unavailable("limits need the wallet, which needs Redis"))
}

fn view(service: &Service, o: Option<&LimitOverride>) -> ServiceLimits {
    let l = apply(service.limits, o);
    ServiceLimits {
        service: service.id.clone(),
        name: service.name.clone(),
        rpm_per_tenant: l.rpm_per_tenant,
        daily_per_tenant: l.daily_per_tenant,
        concurrent_per_tenant: l.concurrent_per_tenant,
        overridden: o.is_some(),
        reason: o.map(|o| o.reason.clone()),
    }
}

/// Every metered service's per-tenant limits for `workspace`.
pub async fn list(state: &AppState, workspace: WorkspaceId) -> Result<Vec<ServiceLimits>, Problem> {
    let w = wallets(state)?;
    let overrides = w
        .ledger_of(workspace)
        .await?
        .limit_overrides(workspace)
        .await?;
    Ok(w.settings()
        .matrix
        .metered()
        .map(|s| view(s, overrides.iter().find(|o| o.service == s.id)))
        .collect())
}

/// Sets `workspace`'s per-tenant limits for `service`, audited.
pub async fn set(
    state: &AppState,
    workspace: WorkspaceId,
    service: &str,
    change: LimitsChange,
    actor: &str,
) -> Result<ServiceLimits, Problem> {
    let w = wallets(state)?;
    let svc = w
        .settings()
        .matrix
        .metered()
        .find(|s| s.id == service)
        .ok_or_else(|| Problem::not_found(&format!("metered service {service:?}")))?
        .clone();
    for (field, v) in [
        ("rpm_per_tenant", change.rpm_per_tenant),
        ("daily_per_tenant", change.daily_per_tenant),
        ("concurrent_per_tenant", change.concurrent_per_tenant),
    ] {
        if v.is_some_and(|n| n == 0 || n > MAX_LIMIT) {
            return Err(Problem::invalid_field(
                field,
                format!("a limit is from 1 to {MAX_LIMIT}; leave it out to keep the matrix's"),
            ));
        }
    }
    if change.rpm_per_tenant.is_none()
        && change.daily_per_tenant.is_none()
        && change.concurrent_per_tenant.is_none()
    {
        return Err(Problem::invalid_field(
            "daily_per_tenant",
            "set at least one limit (or DELETE to go back to the matrix's)",
        ));
    }
    let reason = change.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Problem::invalid_field("reason", "1 to 200 characters"));
    }
    let o = LimitOverride {
        service: svc.id.clone(),
        rpm_per_tenant: change.rpm_per_tenant,
        daily_per_tenant: change.daily_per_tenant,
        concurrent_per_tenant: change.concurrent_per_tenant,
        reason: reason.to_owned(),
        updated_at: chrono::Utc::now(),
    };
    w.ledger_of(workspace)
        .await?
        .limit_override_set(workspace, &o, actor)
        .await?;
    w.overrides().forget(workspace);
    Ok(view(&svc, Some(&o)))
}

/// Gives `workspace` the matrix's per-tenant limits for `service` again, audited; 404 when
/// it had none of its own.
pub async fn reset(
    state: &AppState,
    workspace: WorkspaceId,
    service: &str,
    actor: &str,
) -> Result<(), Problem> {
    let w = wallets(state)?;
    let gone = w
        .ledger_of(workspace)
        .await?
        .limit_override_clear(workspace, service, actor)
        .await?;
    w.overrides().forget(workspace);
    if gone {
        Ok(())
    } else {
        Err(Problem::not_found(&format!(
            "limits of its own for {service:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_replaces_only_the_per_tenant_limits_it_names() {
        let matrix = Limits {
            daily_global: Some(10_000),
            daily_per_tenant: Some(100),
            concurrent_per_tenant: Some(5),
            ..Limits::default()
        };
        let o = LimitOverride {
            service: "google_cse".into(),
            rpm_per_tenant: None,
            daily_per_tenant: Some(1_000),
            concurrent_per_tenant: None,
            reason: "agency plan".into(),
            updated_at: chrono::Utc::now(),
        };
        let l = apply(matrix, Some(&o));
        assert_eq!(l.daily_per_tenant, Some(1_000));
        assert_eq!(l.concurrent_per_tenant, Some(5), "kept");
        assert_eq!(
            l.daily_global,
            Some(10_000),
            "global limits stay the matrix's"
        );
        assert_eq!(apply(matrix, None), matrix);
    }
}
