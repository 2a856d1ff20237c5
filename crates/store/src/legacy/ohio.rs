//! The Ohio legacy adapter (spec 3): the one module that names `leads_ohio`.
//!
//! Ohio is a single legacy tenant on its own table, outside the partitioned schema and
//! outside V30 features (spec 3.3). The router in `leads.rs` sends the configured legacy
//! workspace here and every other workspace to its partition.

use genesis_core::{LeadStatus, WorkspaceId};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::{
    Database, Lead, LeadCursor, LeadPage, NewLead, StoreError,
    error::conflict_or,
    leads::{LeadRow, ReplyOutcome, lead_page_from, reply_event, reply_plan},
};

/// An open transaction on the legacy lead table.
#[derive(Debug)]
pub struct OhioLeads {
    tx: Transaction<'static, Postgres>,
}

impl OhioLeads {
    /// Opens a transaction on the legacy table in `workspace`'s tenant context: the table's
    /// row-level security shows its rows only to the registered legacy workspace
    /// ([`Database::legacy_ohio_register`]).
    pub(crate) async fn begin(db: &Database, workspace: WorkspaceId) -> Result<Self, StoreError> {
        let mut tx = db.app.begin().await?;
        sqlx::query("SELECT set_config('app.workspace_id', $1, true)")
            .bind(workspace.as_uuid().to_string())
            .execute(&mut *tx)
            .await?;
        Ok(Self { tx })
    }

    /// Inserts one lead (legacy columns only; enrichment data is not kept).
    pub async fn insert(&mut self, lead: &NewLead) -> Result<Lead, StoreError> {
        let row = sqlx::query_as!(
            LeadRow,
            r#"INSERT INTO genesis.leads_ohio (id, email, first_name, last_name, company, status)
               VALUES ($1, $2, $3, $4, $5, $6)
               RETURNING id, email, first_name, last_name, company, status,
                         '{}'::jsonb AS "data!", created_at, created_at AS "updated_at!""#,
            Uuid::now_v7(),
            lead.email.as_str(),
            lead.first_name,
            lead.last_name,
            lead.company,
            lead.status.code(),
        )
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| conflict_or(e, "email", lead.email.as_str()))?;
        row.try_into()
    }

    /// Records a reply (see [`crate::TenantSession::lead_reply`]).
    pub async fn reply(
        &mut self,
        email: &str,
        to: LeadStatus,
        actor: &str,
        label: &str,
    ) -> Result<ReplyOutcome, StoreError> {
        let found = sqlx::query!(
            r#"SELECT id, status FROM genesis.leads_ohio WHERE email = $1 FOR UPDATE"#,
            email,
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        let (lead, current) =
            match reply_plan(found.as_ref().map(|r| (r.id, r.status.as_str())), to)? {
                Ok(moves) => moves,
                Err(outcome) => return Ok(outcome),
            };
        sqlx::query!(
            "UPDATE genesis.leads_ohio SET status = $2 WHERE id = $1",
            lead,
            to.code(),
        )
        .execute(&mut *self.tx)
        .await?;
        crate::audit::record(&mut self.tx, &reply_event(actor, lead, current, to, label)).await?;
        Ok(ReplyOutcome::Marked {
            lead,
            from: current,
        })
    }

    /// Counts leads.
    pub async fn count(&mut self, status: Option<LeadStatus>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.leads_ohio WHERE ($1::text IS NULL OR status = $1)"#,
            status.map(|s| s.code()),
        )
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// One page, newest first.
    pub async fn page(
        &mut self,
        status: LeadStatus,
        cursor: Option<LeadCursor>,
        limit: i64,
    ) -> Result<LeadPage, StoreError> {
        let limit = limit.clamp(1, 1_000);
        let (after_at, after_id) = cursor.map(|c| c.parts()).unzip();
        let rows = sqlx::query_as!(
            LeadRow,
            r#"SELECT id, email, first_name, last_name, company, status,
                      '{}'::jsonb AS "data!", created_at, created_at AS "updated_at!"
               FROM genesis.leads_ohio
               WHERE status = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
               ORDER BY created_at DESC, id DESC LIMIT $4"#,
            status.code(),
            after_at,
            after_id,
            limit,
        )
        .fetch_all(&mut *self.tx)
        .await?;
        lead_page_from(rows, limit)
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Database {
    /// Records `workspace` as the legacy table's one tenant (as the owner: `genesis migrate`
    /// does it from `[ohio]`). Until it is recorded, no session sees a legacy row.
    pub async fn legacy_ohio_register(&self, workspace: WorkspaceId) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO genesis.legacy_tenants (table_name, workspace_id) VALUES ('leads_ohio', $1)
             ON CONFLICT (table_name) DO UPDATE SET workspace_id = EXCLUDED.workspace_id",
        )
        .bind(workspace.as_uuid())
        .execute(&self.owner)
        .await?;
        Ok(())
    }
}
