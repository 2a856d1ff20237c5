//! Tenant sessions: the only way to reach tenant data.
//!
//! A [`TenantSession`] is a transaction that first runs
//! `set_config('app.workspace_id', <validated uuid>, true)` (the function form of
//! `SET LOCAL`, which works through PgBouncer in transaction mode). Its repository methods
//! (see `leads.rs`) take no workspace argument: they bind the session's own id as
//! `workspace_id = $1`, so a query can neither forget the filter nor name another tenant.
//!
//! [`Database::tenant_open`] is the gate for callers acting on behalf of someone: it parses the
//! requested id, checks it against the caller's scope, and fails closed. Every refusal writes a
//! `PERMISSION_DENIED` audit event and increments `genesis_tenant_access_refused_total`.

use genesis_core::audit::AuditCategory;
use std::fmt;

use genesis_core::{IdParseError, WorkspaceId};
use serde::Serialize;
use sqlx::{Postgres, Transaction};

use crate::{AuditEvent, Database, StoreError};

/// On whose behalf tenant data is being reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A tenant's own credentials: may reach exactly that workspace.
    Tenant(WorkspaceId),
    /// A signed-in platform operator (God Mode): may reach any workspace; still audited by
    /// the actions it takes.
    Operator(String),
    /// An internal component (a worker) acting for the platform.
    System(&'static str),
}

impl Caller {
    /// The audit `actor` string.
    pub fn actor(&self) -> String {
        match self {
            Caller::Tenant(id) => format!("tenant:{id}"),
            Caller::Operator(name) => format!("operator:{name}"),
            Caller::System(component) => format!("system:{component}"),
        }
    }
}

/// Why tenant access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// No workspace id was supplied.
    MissingContext,
    /// The supplied id is not a canonical UUID (or is nil).
    MalformedId,
    /// A tenant asked for another tenant's workspace.
    CallerMismatch,
}

impl RefusalReason {
    /// Stable code for metrics labels and audit details.
    pub fn code(self) -> &'static str {
        match self {
            RefusalReason::MissingContext => "missing_context",
            RefusalReason::MalformedId => "malformed_id",
            RefusalReason::CallerMismatch => "caller_mismatch",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An open transaction scoped to one workspace.
pub struct TenantSession {
    pub(crate) tx: Transaction<'static, Postgres>,
    pub(crate) workspace: WorkspaceId,
}

impl fmt::Debug for TenantSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSession")
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl TenantSession {
    /// The workspace this session is bound to.
    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace
    }

    /// Commits the work done in this session.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Discards the work done in this session (also what dropping it does).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Database {
    /// Opens a session for a workspace id the caller already holds as a parsed value (for
    /// internal components). External input goes through [`Database::tenant_open`].
    pub async fn tenant_session(
        &self,
        workspace: WorkspaceId,
    ) -> Result<TenantSession, StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query_scalar::<_, String>("SELECT set_config('app.workspace_id', $1, true)")
            .bind(workspace.to_string())
            .fetch_one(&mut *tx)
            .await?;
        Ok(TenantSession { tx, workspace })
    }

    /// The gate: parses `requested`, checks it against `caller`, opens a session or refuses
    /// (audited, counted).
    pub async fn tenant_open(
        &self,
        caller: &Caller,
        requested: &str,
    ) -> Result<TenantSession, StoreError> {
        let workspace = match authorize(caller, requested) {
            Ok(ws) => ws,
            Err(reason) => return Err(self.refuse(caller, requested, reason).await),
        };
        self.tenant_session(workspace).await
    }

    pub(crate) async fn refuse(
        &self,
        caller: &Caller,
        requested: &str,
        reason: RefusalReason,
    ) -> StoreError {
        metrics::counter!("genesis_tenant_access_refused_total", "reason" => reason.code())
            .increment(1);
        tracing::warn!(actor = %caller.actor(), reason = reason.code(), "tenant access refused");
        let mut event =
            AuditEvent::new(caller.actor(), AuditCategory::Security, "PERMISSION_DENIED").details(
                serde_json::json!({
                    "reason": reason.code(),
                    // Bounded and only what was asked for: never a secret.
                    "requested": requested.chars().take(64).collect::<String>(),
                }),
            );
        if let Caller::Tenant(own) = caller {
            event = event.workspace(*own);
        }
        if let Err(e) = self.audit_record(&event).await {
            // The refusal stands even if the audit write fails; the failure is loud.
            tracing::error!(error = %e, "could not audit a refused tenant access");
            metrics::counter!("genesis_audit_write_failures_total").increment(1);
        }
        StoreError::AccessRefused(reason)
    }
}

/// The pure part of the gate (no I/O), so every branch is unit-tested.
pub fn authorize(caller: &Caller, requested: &str) -> Result<WorkspaceId, RefusalReason> {
    let ws = WorkspaceId::parse(requested).map_err(|e| match e {
        IdParseError::Empty => RefusalReason::MissingContext,
        IdParseError::Malformed | IdParseError::Nil => RefusalReason::MalformedId,
    })?;
    match caller {
        Caller::Tenant(own) if *own != ws => Err(RefusalReason::CallerMismatch),
        _ => Ok(ws),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_refuses_every_bad_request() {
        let a = WorkspaceId::new();
        let b = WorkspaceId::new();
        let tenant = Caller::Tenant(a);
        assert_eq!(authorize(&tenant, &a.to_string()), Ok(a));
        assert_eq!(authorize(&tenant, ""), Err(RefusalReason::MissingContext));
        assert_eq!(authorize(&tenant, "abc"), Err(RefusalReason::MalformedId));
        assert_eq!(
            authorize(&tenant, "00000000-0000-0000-0000-000000000000"),
            Err(RefusalReason::MalformedId)
        );
        assert_eq!(
            authorize(&tenant, &b.to_string()),
            Err(RefusalReason::CallerMismatch)
        );
        assert_eq!(
            authorize(&Caller::Operator("ops".into()), &b.to_string()),
            Ok(b)
        );
    }
}
