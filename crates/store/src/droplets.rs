//! Droplet rows: the persisted side of the droplet state machine. Every change is computed by
//! [`DropletState::next`], applied only if the row is still at the version the caller read
//! (optimistic concurrency: two workers acting on one droplet cannot both win), and audited in
//! the same transaction.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletEvent, DropletId, DropletState, Region, WorkspaceId};
use serde::Serialize;
use uuid::Uuid;

use sqlx::PgConnection;

use crate::{AuditEvent, Database, StoreError, audit::record};

/// A stored droplet.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Droplet {
    /// Our id.
    pub id: DropletId,
    /// Owner.
    pub workspace_id: WorkspaceId,
    /// DigitalOcean's numeric id, once the create call was accepted.
    pub provider_id: Option<i64>,
    /// Region.
    pub region: Region,
    /// Lifecycle state.
    pub state: DropletState,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A [`DropletRow`] from any query record that selects the droplet's columns by their names
/// (queries that add columns of their own get anonymous record types).
macro_rules! droplet_row {
    ($r:expr) => {
        $crate::droplets::DropletRow {
            id: $r.id,
            workspace_id: $r.workspace_id,
            provider_id: $r.provider_id,
            region: $r.region,
            state: $r.state,
            version: $r.version,
            created_at: $r.created_at,
            updated_at: $r.updated_at,
        }
    };
}
pub(crate) use droplet_row;

pub(crate) struct DropletRow {
    pub(crate) id: Uuid,
    pub(crate) workspace_id: Uuid,
    pub(crate) provider_id: Option<i64>,
    pub(crate) region: String,
    pub(crate) state: String,
    pub(crate) version: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl TryFrom<DropletRow> for Droplet {
    type Error = StoreError;
    fn try_from(r: DropletRow) -> Result<Self, StoreError> {
        Ok(Droplet {
            id: DropletId::from_uuid(r.id),
            workspace_id: WorkspaceId::from_uuid(r.workspace_id).map_err(|_| {
                StoreError::Corrupt {
                    what: "workspace id",
                    value: "nil".into(),
                }
            })?,
            provider_id: r.provider_id,
            region: Region::parse(&r.region).map_err(|_| StoreError::Corrupt {
                what: "region",
                value: r.region.clone(),
            })?,
            state: DropletState::from_code(&r.state)
                .ok_or_else(|| StoreError::corrupt_state(&r.state))?,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

impl Database {
    /// Registers a droplet in `PENDING` (before the cloud is called, so a crash between the
    /// two leaves a row the reconciler can find) and audits it.
    pub async fn droplet_register(
        &self,
        id: DropletId,
        workspace: WorkspaceId,
        region: Region,
        actor: &str,
    ) -> Result<Droplet, StoreError> {
        let mut tx = self.app.begin().await?;
        let droplet = register_in(&mut tx, id, workspace, region, actor).await?;
        tx.commit().await?;
        Ok(droplet)
    }

    /// One droplet.
    pub async fn droplet_get(&self, id: DropletId) -> Result<Droplet, StoreError> {
        sqlx::query_as!(
            DropletRow,
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at
               FROM genesis.droplets WHERE id = $1"#,
            id.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "droplet" })?
        .try_into()
    }

    /// The states of these droplets (missing ones are left out): one query for a list a
    /// reconciler checks every pass.
    pub async fn droplet_states(
        &self,
        ids: &[DropletId],
    ) -> Result<Vec<(DropletId, DropletState)>, StoreError> {
        let ids: Vec<Uuid> = ids.iter().map(|d| d.as_uuid()).collect();
        sqlx::query!(
            "SELECT id, state FROM genesis.droplets WHERE id = ANY($1)",
            &ids,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok((
                DropletId::from_uuid(r.id),
                DropletState::from_code(&r.state)
                    .ok_or_else(|| StoreError::corrupt_state(&r.state))?,
            ))
        })
        .collect()
    }

    /// Records the cloud's id for a droplet (once known; the handshake may have recorded it
    /// first, and then it must agree).
    pub async fn droplet_set_provider(
        &self,
        id: DropletId,
        provider_id: i64,
    ) -> Result<(), StoreError> {
        let updated = sqlx::query!(
            r#"UPDATE genesis.droplets SET provider_id = $2, updated_at = now()
               WHERE id = $1 AND (provider_id IS NULL OR provider_id = $2)"#,
            id.as_uuid(),
            provider_id,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?
        .rows_affected();
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                field: "provider_id",
                value: provider_id.to_string(),
            })
        }
    }

    /// Marks a droplet destroyed (any state but TERMINATED) and revokes its tokens, in one
    /// audited transaction. A missing or already terminated droplet is fine: returns `false`.
    pub async fn droplet_terminate(&self, id: DropletId, actor: &str) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let done = terminate_in(&mut tx, id, actor).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// A workspace's droplets that are not TERMINATED, newest first: the first is the one
    /// that serves the tenant. After a failover's restore the droplet it replaced stays
    /// (set aside, in MAINTENANCE) until the cleanup, which may be days later: it comes
    /// after the restored one.
    pub async fn droplet_live_for_workspace(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<Droplet>, StoreError> {
        sqlx::query_as!(
            DropletRow,
            r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at
               FROM genesis.droplets WHERE workspace_id = $1 AND state <> 'TERMINATED'
               ORDER BY created_at DESC, id DESC"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(Droplet::try_from)
        .collect()
    }

    /// Applies `event` if the droplet is still at `expected_version`; audits the change in the
    /// same transaction. Refuses illegal transitions without touching the row.
    pub async fn droplet_transition(
        &self,
        id: DropletId,
        expected_version: i64,
        event: DropletEvent,
        actor: &str,
    ) -> Result<Droplet, StoreError> {
        let mut tx = self.app.begin().await?;
        let current = fetch_at_version_in(&mut tx, id, expected_version).await?;
        let next = transition_in(&mut tx, &current, event, actor).await?;
        tx.commit().await?;
        Ok(next)
    }
}

/// One droplet, read inside a transaction, provided it is still at `version` (the caller's
/// optimistic check before a transition).
pub(crate) async fn fetch_at_version_in(
    conn: &mut PgConnection,
    id: DropletId,
    version: i64,
) -> Result<Droplet, StoreError> {
    let current = fetch_in(conn, id).await?;
    if current.version != version {
        return Err(StoreError::VersionConflict {
            what: "droplet",
            expected: version,
        });
    }
    Ok(current)
}

/// One droplet, read inside a transaction.
pub(crate) async fn fetch_in(
    conn: &mut PgConnection,
    id: DropletId,
) -> Result<Droplet, StoreError> {
    sqlx::query_as!(
        DropletRow,
        r#"SELECT id, workspace_id, provider_id, region, state, version, created_at, updated_at
           FROM genesis.droplets WHERE id = $1"#,
        id.as_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound { what: "droplet" })?
    .try_into()
}

/// Applies `event` to `current` (which the caller read in this transaction) if the row is
/// still at its version, and audits the change in the same transaction.
pub(crate) async fn transition_in(
    conn: &mut PgConnection,
    current: &Droplet,
    event: DropletEvent,
    actor: &str,
) -> Result<Droplet, StoreError> {
    let next = current.state.next(event)?;
    let row = sqlx::query_as!(
        DropletRow,
        r#"UPDATE genesis.droplets SET state = $3, version = version + 1, updated_at = now(), state_since = now()
           WHERE id = $1 AND version = $2
           RETURNING id, workspace_id, provider_id, region, state, version, created_at, updated_at"#,
        current.id.as_uuid(),
        current.version,
        next.code(),
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::VersionConflict {
        what: "droplet",
        expected: current.version,
    })?;
    record(
        conn,
        &AuditEvent::new(
            actor,
            AuditCategory::Droplet,
            current.state.audit_event(next),
        )
        .workspace(current.workspace_id)
        .subject(current.id.to_string())
        .details(serde_json::json!({
            "from": current.state.code(),
            "to": next.code(),
            "event": event,
            "version": current.version + 1,
        })),
    )
    .await?;
    // What a tenant's own systems are told (spec 65.4), in the same transaction.
    let told = match (current.state, next) {
        (from, DropletState::Hibernating) if from != DropletState::Hibernating => {
            Some("tenant.hibernated")
        }
        (DropletState::Waking, DropletState::ActiveHealthy) => Some("tenant.woken"),
        _ => None,
    };
    if let Some(event) = told {
        crate::outbound_webhooks::emit(
            conn,
            current.workspace_id,
            event,
            serde_json::json!({
                "workspace_id": current.workspace_id,
                "droplet_id": current.id,
            }),
        )
        .await?;
    }
    row.try_into()
}

/// Registers a PENDING droplet row, audited, inside the caller's transaction.
pub(crate) async fn register_in(
    conn: &mut PgConnection,
    id: DropletId,
    workspace: WorkspaceId,
    region: Region,
    actor: &str,
) -> Result<Droplet, StoreError> {
    let row = sqlx::query_as!(
        DropletRow,
        r#"INSERT INTO genesis.droplets (id, workspace_id, region, state)
           VALUES ($1, $2, $3, $4)
           RETURNING id, workspace_id, provider_id, region, state, version, created_at, updated_at"#,
        id.as_uuid(),
        workspace.as_uuid(),
        region.code(),
        DropletState::Pending.code(),
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| {
        if crate::error::sqlstate(&e).as_deref() == Some("23503") {
            StoreError::NotFound { what: "workspace" }
        } else {
            StoreError::Database(e)
        }
    })?;
    record(
        conn,
        &AuditEvent::new(actor, AuditCategory::Droplet, "CREATED")
            .workspace(workspace)
            .subject(id.to_string())
            .details(serde_json::json!({ "state": DropletState::Pending.code() })),
    )
    .await?;
    row.try_into()
}

/// Moves a droplet to TERMINATED through its state machine and revokes its tokens, inside
/// the caller's transaction. `false` when there is no such droplet or it already ended.
pub(crate) async fn terminate_in(
    conn: &mut PgConnection,
    id: DropletId,
    actor: &str,
) -> Result<bool, StoreError> {
    let current = match fetch_in(conn, id).await {
        Ok(d) => d,
        Err(StoreError::NotFound { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    if current.state.is_final() {
        return Ok(false);
    }
    transition_in(conn, &current, DropletEvent::Destroyed, actor).await?;
    sqlx::query!(
        "UPDATE genesis.sidecar_tokens SET revoked_at = now() WHERE droplet_id = $1 AND revoked_at IS NULL",
        id.as_uuid(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE genesis.provisioning_tokens SET consumed_at = now() WHERE droplet_id = $1 AND consumed_at IS NULL",
        id.as_uuid(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}
