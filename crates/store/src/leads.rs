//! Lead data, reached only through a [`TenantSession`] (or, for the legacy tenant, the Ohio
//! adapter), and the router between the two.
//!
//! Every query here binds the session's own workspace as `workspace_id = $1`. RLS would filter
//! the rows anyway; the explicit predicate is what lets PostgreSQL prune to one partition at
//! plan time (a query restricted only by RLS takes minutes to plan at 15,000 partitions).
//!
//! Bulk import uses COPY into a transaction-local temporary table and one
//! `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into the parent: PostgreSQL refuses
//! `COPY FROM` straight into a table under row-level security, and the INSERT keeps the
//! policy's WITH CHECK in force.

use genesis_core::audit::AuditCategory;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use genesis_core::{Email, LeadStatus, TenantRoute, TenantRouter};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    AuditEvent, Caller, Database, StoreError, TenantSession, legacy::ohio::OhioLeads,
    tenant::authorize,
};

/// A lead to insert.
#[derive(Debug, Clone)]
pub struct NewLead {
    /// Normalized address; unique per workspace.
    pub email: Email,
    /// Optional given name.
    pub first_name: Option<String>,
    /// Optional family name.
    pub last_name: Option<String>,
    /// Optional company.
    pub company: Option<String>,
    /// Funnel status.
    pub status: LeadStatus,
    /// Free-form enrichment data.
    pub data: serde_json::Value,
}

impl NewLead {
    /// A `new` lead with only an address.
    pub fn with_email(email: Email) -> Self {
        Self {
            email,
            first_name: None,
            last_name: None,
            company: None,
            status: LeadStatus::New,
            data: serde_json::Value::Object(Default::default()),
        }
    }
}

/// A stored lead.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Lead {
    /// Lead id (UUID v7).
    pub id: Uuid,
    /// Address.
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Funnel status.
    pub status: LeadStatus,
    /// Enrichment data.
    pub data: serde_json::Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

pub(crate) struct LeadRow {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company: Option<String>,
    pub status: String,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<LeadRow> for Lead {
    type Error = StoreError;
    fn try_from(r: LeadRow) -> Result<Self, StoreError> {
        Ok(Lead {
            status: LeadStatus::parse(&r.status).map_err(|_| StoreError::Corrupt {
                what: "lead status",
                value: r.status.clone(),
            })?,
            id: r.id,
            email: r.email,
            first_name: r.first_name,
            last_name: r.last_name,
            company: r.company,
            data: r.data,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Position after the last lead of a page (newest first). Opaque to API clients:
/// `<created_at microseconds>.<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadCursor {
    created_at: DateTime<Utc>,
    id: Uuid,
}

impl LeadCursor {
    pub(crate) fn parts(self) -> (DateTime<Utc>, Uuid) {
        (self.created_at, self.id)
    }
}

/// A cursor string that was not produced by us.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid page cursor")]
pub struct CursorError;

impl fmt::Display for LeadCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }
}

impl FromStr for LeadCursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, CursorError> {
        let (micros, id) = s.split_once('.').ok_or(CursorError)?;
        let micros: i64 = micros.parse().map_err(|_| CursorError)?;
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros).ok_or(CursorError)?,
            id: Uuid::try_parse(id).map_err(|_| CursorError)?,
        })
    }
}

/// One page of leads.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LeadPage {
    /// Newest first.
    pub items: Vec<Lead>,
    /// Where the next page starts; `None` on the last page.
    #[serde(serialize_with = "serialize_cursor")]
    #[schema(value_type = Option<String>)]
    pub next: Option<LeadCursor>,
}

fn serialize_cursor<S: serde::Serializer>(c: &Option<LeadCursor>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        Some(c) => s.serialize_some(&c.to_string()),
        None => s.serialize_none(),
    }
}

/// What a bulk import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Rows sent.
    pub received: u64,
    /// Rows stored.
    pub inserted: u64,
    /// Rows skipped because the address was already present (in the table or the batch).
    pub duplicates: u64,
}

pub(crate) fn lead_page_from(rows: Vec<LeadRow>, limit: i64) -> Result<LeadPage, StoreError> {
    let items = rows
        .into_iter()
        .map(Lead::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() as i64 == limit {
        items.last().map(|l| LeadCursor {
            created_at: l.created_at,
            id: l.id,
        })
    } else {
        None
    };
    Ok(LeadPage { items, next })
}

/// Appends one CSV field (always quoted; `None` is the unquoted empty field, which COPY reads
/// as NULL).
fn csv_field(out: &mut String, value: Option<&str>) {
    if let Some(v) = value {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    }
}

/// What recording a lead's reply did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// The lead left its sequence: its status changed from `from`.
    Marked {
        /// The lead.
        lead: Uuid,
        /// Its status before.
        from: LeadStatus,
    },
    /// The lead was already out of its sequence; nothing changed.
    Unchanged {
        /// The lead.
        lead: Uuid,
        /// Its status.
        status: LeadStatus,
    },
    /// No lead has that address.
    NoLead,
}

/// What a reply to the lead found as (`id`, stored `status`) does, if anything: `Ok(from)`
/// when it moves to `to` (a lead still in its sequence, new or contacted, always does; an
/// unsubscribe also overrides any other status but itself), else the outcome to report.
pub(crate) fn reply_plan(
    found: Option<(Uuid, &str)>,
    to: LeadStatus,
) -> Result<Result<(Uuid, LeadStatus), ReplyOutcome>, StoreError> {
    let Some((lead, raw)) = found else {
        return Ok(Err(ReplyOutcome::NoLead));
    };
    let current = LeadStatus::parse(raw).map_err(|_| StoreError::Corrupt {
        what: "lead status",
        value: raw.to_owned(),
    })?;
    let moves = matches!(current, LeadStatus::New | LeadStatus::Contacted)
        || (to == LeadStatus::Unsubscribed && current != LeadStatus::Unsubscribed);
    Ok(if moves {
        Ok((lead, current))
    } else {
        Err(ReplyOutcome::Unchanged {
            lead,
            status: current,
        })
    })
}

/// The audit event of a reply that moved a lead.
pub(crate) fn reply_event(
    actor: &str,
    lead: Uuid,
    from: LeadStatus,
    to: LeadStatus,
    label: &str,
) -> AuditEvent {
    AuditEvent::new(actor, AuditCategory::Data, "LEAD_REPLIED")
        .subject(lead.to_string())
        .details(serde_json::json!({ "from": from.code(), "to": to.code(), "label": label }))
}

impl TenantSession {
    /// Inserts one lead. A duplicate address is a conflict on `email`.
    pub async fn lead_insert(&mut self, lead: &NewLead) -> Result<Lead, StoreError> {
        let row = sqlx::query_as!(
            LeadRow,
            r#"INSERT INTO genesis.leads
                   (workspace_id, id, email, first_name, last_name, company, status, data)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               RETURNING id, email, first_name, last_name, company, status, data, created_at, updated_at"#,
            self.workspace.as_uuid(),
            Uuid::now_v7(),
            lead.email.as_str(),
            lead.first_name,
            lead.last_name,
            lead.company,
            lead.status.code(),
            lead.data,
        )
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| match crate::error::no_partition_or(e) {
            StoreError::Database(e) => crate::error::conflict_or(e, "email", lead.email.as_str()),
            other => other,
        })?;
        crate::outbound_webhooks::emit(
            &mut self.tx,
            self.workspace,
            "lead.created",
            serde_json::json!({
                "workspace_id": self.workspace,
                "lead_id": row.id,
                "email": row.email,
                "status": row.status,
                "source": "api",
            }),
        )
        .await?;
        row.try_into()
    }

    /// Bulk import through COPY; duplicates (by address) are skipped and counted.
    pub async fn lead_import(&mut self, leads: &[NewLead]) -> Result<ImportReport, StoreError> {
        sqlx::query(
            "CREATE TEMPORARY TABLE IF NOT EXISTS lead_import (
                 id uuid, email text, first_name text, last_name text, company text,
                 status text, data jsonb) ON COMMIT DROP",
        )
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("TRUNCATE pg_temp.lead_import")
            .execute(&mut *self.tx)
            .await?;
        const CHUNK: usize = 5_000;
        for chunk in leads.chunks(CHUNK) {
            let mut buf = String::with_capacity(chunk.len() * 96);
            for l in chunk {
                let data = l.data.to_string();
                let id = Uuid::now_v7().to_string();
                for (i, field) in [
                    Some(id.as_str()),
                    Some(l.email.as_str()),
                    l.first_name.as_deref(),
                    l.last_name.as_deref(),
                    l.company.as_deref(),
                    Some(l.status.code()),
                    Some(data.as_str()),
                ]
                .into_iter()
                .enumerate()
                {
                    if i > 0 {
                        buf.push(',');
                    }
                    csv_field(&mut buf, field);
                }
                buf.push('\n');
            }
            let mut copy = self
                .tx
                .copy_in_raw(
                    "COPY pg_temp.lead_import (id, email, first_name, last_name, company, status, data) \
                     FROM STDIN WITH (FORMAT csv)",
                )
                .await?;
            copy.send(buf.into_bytes()).await?;
            copy.finish().await?;
        }
        // Each lead new to the workspace is also a `lead.created` event for the endpoints
        // that asked for it, in the same statement (nothing when none did).
        let inserted: i64 = sqlx::query_scalar(
            "WITH ins AS (
                 INSERT INTO genesis.leads (workspace_id, id, email, first_name, last_name, company, status, data)
                 SELECT $1, id, email, first_name, last_name, company, status, data FROM pg_temp.lead_import
                 ON CONFLICT (workspace_id, email) DO NOTHING
                 RETURNING id, email, status
             ), hooks AS (
                 INSERT INTO genesis.webhook_deliveries (id, endpoint_id, workspace_id, event, payload)
                 SELECT gen_random_uuid(), e.id, $1, 'lead.created',
                        jsonb_build_object('type', 'lead.created', 'timestamp', now(),
                            'data', jsonb_build_object('workspace_id', $1, 'lead_id', ins.id,
                                'email', ins.email, 'status', ins.status, 'source', 'import'))
                 FROM ins CROSS JOIN genesis.webhook_endpoints e
                 WHERE e.workspace_id = $1 AND e.disabled_at IS NULL
                   AND 'lead.created' = ANY (e.events)
             )
             SELECT count(*) FROM ins",
        )
        .bind(self.workspace.as_uuid())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(crate::error::no_partition_or)?;
        let inserted = u64::try_from(inserted).unwrap_or(0);
        let received = leads.len() as u64;
        Ok(ImportReport {
            received,
            inserted,
            duplicates: received - inserted,
        })
    }

    /// One page of leads with `status`, newest first, after `cursor`.
    pub async fn lead_page(
        &mut self,
        status: LeadStatus,
        cursor: Option<LeadCursor>,
        limit: i64,
    ) -> Result<LeadPage, StoreError> {
        // The runtime role plans every statement with its values (force_custom_plan), so
        // the search's absent filters fold away and this reads the status index as before.
        self.lead_search(Some(status), None, cursor, limit).await
    }

    /// One page of leads, newest first, optionally in one status and matching `q` (part
    /// of the address, name or company, in any case; `%` and `_` are plain characters).
    pub async fn lead_search(
        &mut self,
        status: Option<LeadStatus>,
        q: Option<&str>,
        cursor: Option<LeadCursor>,
        limit: i64,
    ) -> Result<LeadPage, StoreError> {
        let limit = limit.clamp(1, 1_000);
        let q = q
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        let rows = sqlx::query_as!(
            LeadRow,
            r#"SELECT id, email, first_name, last_name, company, status, data, created_at, updated_at
               FROM genesis.leads
               WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)
                 AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
                 AND ($6::text IS NULL
                      OR strpos(lower(email || ' ' || coalesce(first_name, '') || ' '
                                      || coalesce(last_name, '') || ' ' || coalesce(company, '')), $6) > 0)
               ORDER BY created_at DESC, id DESC
               LIMIT $5"#,
            self.workspace.as_uuid(),
            status.map(|s| s.code()),
            cursor.map(|c| c.parts().0),
            cursor.map(|c| c.parts().1),
            limit,
            q,
        )
        .fetch_all(&mut *self.tx)
        .await?;
        lead_page_from(rows, limit)
    }

    /// One lead by id.
    pub async fn lead_get(&mut self, id: Uuid) -> Result<Lead, StoreError> {
        sqlx::query_as!(
            LeadRow,
            r#"SELECT id, email, first_name, last_name, company, status, data, created_at, updated_at
               FROM genesis.leads WHERE workspace_id = $1 AND id = $2"#,
            self.workspace.as_uuid(),
            id,
        )
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or(StoreError::NotFound { what: "lead" })?
        .try_into()
    }

    /// Number of leads, optionally with one status.
    pub async fn lead_count(&mut self, status: Option<LeadStatus>) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.leads
               WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)"#,
            self.workspace.as_uuid(),
            status.map(|s| s.code()),
        )
        .fetch_one(&mut *self.tx)
        .await?)
    }

    /// Records a reply from `email`: a lead in its sequence moves to `to` (replied, or
    /// unsubscribed), which takes it out of the sequence (the outreach workflow mails only
    /// new leads), audited `LEAD_REPLIED` in the same transaction.
    pub async fn lead_reply(
        &mut self,
        email: &str,
        to: LeadStatus,
        actor: &str,
        label: &str,
    ) -> Result<ReplyOutcome, StoreError> {
        let found = sqlx::query!(
            r#"SELECT id, status FROM genesis.leads WHERE workspace_id = $1 AND email = $2 FOR UPDATE"#,
            self.workspace.as_uuid(),
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
            r#"UPDATE genesis.leads SET status = $3, updated_at = now()
               WHERE workspace_id = $1 AND id = $2"#,
            self.workspace.as_uuid(),
            lead,
            to.code(),
        )
        .execute(&mut *self.tx)
        .await?;
        crate::audit::record(
            &mut self.tx,
            &reply_event(actor, lead, current, to, label).workspace(self.workspace),
        )
        .await?;
        crate::outbound_webhooks::emit(
            &mut self.tx,
            self.workspace,
            "lead.replied",
            serde_json::json!({
                "workspace_id": self.workspace,
                "lead_id": lead,
                "email": email,
                "from": current.code(),
                "to": to.code(),
                "label": label,
            }),
        )
        .await?;
        Ok(ReplyOutcome::Marked {
            lead,
            from: current,
        })
    }

    /// Deletes one lead; false when there was none (or it belongs to someone else, which is
    /// indistinguishable on purpose).
    pub async fn lead_delete(&mut self, id: Uuid) -> Result<bool, StoreError> {
        let deleted = sqlx::query_scalar!(
            r#"DELETE FROM genesis.leads WHERE workspace_id = $1 AND id = $2 RETURNING id"#,
            self.workspace.as_uuid(),
            id,
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(deleted.is_some())
    }
}

/// Lead access for one workspace, on whichever path the router chose (spec 3.2).
#[derive(Debug)]
pub enum LeadStore {
    /// The V30 path: the tenant's partition under RLS.
    Sovereign(TenantSession),
    /// The legacy tenant's own table.
    Legacy(OhioLeads),
}

impl LeadStore {
    /// Inserts one lead.
    pub async fn insert(&mut self, lead: &NewLead) -> Result<Lead, StoreError> {
        match self {
            LeadStore::Sovereign(s) => s.lead_insert(lead).await,
            LeadStore::Legacy(l) => l.insert(lead).await,
        }
    }

    /// Counts leads.
    pub async fn count(&mut self, status: Option<LeadStatus>) -> Result<i64, StoreError> {
        match self {
            LeadStore::Sovereign(s) => s.lead_count(status).await,
            LeadStore::Legacy(l) => l.count(status).await,
        }
    }

    /// One page of leads.
    pub async fn page(
        &mut self,
        status: LeadStatus,
        cursor: Option<LeadCursor>,
        limit: i64,
    ) -> Result<LeadPage, StoreError> {
        match self {
            LeadStore::Sovereign(s) => s.lead_page(status, cursor, limit).await,
            LeadStore::Legacy(l) => l.page(status, cursor, limit).await,
        }
    }

    /// Records a reply (see [`TenantSession::lead_reply`]).
    pub async fn reply(
        &mut self,
        email: &str,
        to: LeadStatus,
        actor: &str,
        label: &str,
    ) -> Result<ReplyOutcome, StoreError> {
        match self {
            LeadStore::Sovereign(s) => s.lead_reply(email, to, actor, label).await,
            LeadStore::Legacy(l) => l.reply(email, to, actor, label).await,
        }
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            LeadStore::Sovereign(s) => s.commit().await,
            LeadStore::Legacy(l) => l.commit().await,
        }
    }
}

impl Database {
    /// Opens lead access for `requested` on behalf of `caller`, routed by `router`: the gate of
    /// [`Database::tenant_open`] applies to both paths.
    pub async fn leads_open(
        &self,
        router: &TenantRouter,
        caller: &Caller,
        requested: &str,
    ) -> Result<LeadStore, StoreError> {
        let ws = match authorize(caller, requested) {
            Ok(ws) => ws,
            Err(reason) => return Err(self.refuse(caller, requested, reason).await),
        };
        match router.route(ws) {
            TenantRoute::Legacy(_) => Ok(LeadStore::Legacy(OhioLeads::begin(self, ws).await?)),
            TenantRoute::Sovereign => Ok(LeadStore::Sovereign(self.tenant_session(ws).await?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_refuses_garbage() {
        let c = LeadCursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("valid"),
            id: Uuid::now_v7(),
        };
        assert_eq!(c.to_string().parse::<LeadCursor>(), Ok(c));
        for bad in ["", "1", "x.y", "1.not-a-uuid", "99999999999999999999.00"] {
            assert!(bad.parse::<LeadCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_and_nulls() {
        let mut s = String::new();
        csv_field(&mut s, Some("a\"b,c\nd"));
        s.push(',');
        csv_field(&mut s, None);
        assert_eq!(s, "\"a\"\"b,c\nd\",");
    }
}
