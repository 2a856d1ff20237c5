//! Support grants (spec 63.3): a support operator's time-boxed access to one tenant, its
//! approvals, and its end. Each change is written with its audit event (Support:
//! ACCESS_REQUESTED, ACCESS_APPROVED, ACCESS_GRANTED, ACCESS_REVOKED) in one transaction, in
//! the tenant's own database.
//!
//! Time is the database's: a grant's lifetime starts at `now()` when its last approval
//! lands, and "live" means `expires_at > now()` at the moment of the check, so a grant is
//! dead the instant it expires, whether or not the sweep has recorded it yet.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use genesis_core::support::SupportTier;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::record;
use crate::{AuditEvent, Database, Operator, StoreError};

/// How long a request that needs approval waits before it lapses.
pub const REQUEST_TTL_MINUTES: i32 = 60;

/// The audit category of everything here.
const CATEGORY: AuditCategory = AuditCategory::Support;

/// One grant, as the checks, God Mode and the tenant's page read it.
#[derive(Debug, Clone, Serialize)]
pub struct SupportGrant {
    /// Stable id; every action under the grant names it in the audit log.
    pub id: Uuid,
    /// The tenant it opens.
    pub workspace_id: WorkspaceId,
    /// Who asked (and who may use it).
    pub operator_id: Uuid,
    /// Their address, as the tenant sees it.
    pub operator_email: String,
    /// What it allows.
    pub tier: SupportTier,
    /// Why, in the requester's words.
    pub reason: String,
    /// The open incident (Emergency only).
    pub incident: Option<String>,
    /// Approvals it needs before it is granted.
    pub approvals_needed: i16,
    /// Who approved it so far (addresses), oldest first.
    pub approvers: Vec<String>,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When it took effect (`None` while it waits for approval).
    pub granted_at: Option<DateTime<Utc>>,
    /// When it stops (or stopped) allowing anything.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was ended, by revocation, expiry or lapse.
    pub ended_at: Option<DateTime<Utc>>,
    /// Who ended it.
    pub ended_by: Option<String>,
    /// `revoked`, `expired` or `lapsed`.
    pub end_reason: Option<String>,
}

impl SupportGrant {
    /// Whether it allows anything at `now`: granted, not ended, not past its expiry.
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && self.expires_at.is_some_and(|e| e > now)
    }

    /// Whether it still waits for approvals.
    pub fn pending(&self) -> bool {
        self.ended_at.is_none() && self.granted_at.is_none()
    }

    /// How its state reads on a page: `pending`, `live`, `expired`, `revoked`, `lapsed`.
    pub fn status_at(&self, now: DateTime<Utc>) -> &str {
        match (&self.end_reason, self.granted_at) {
            (Some(reason), _) => reason,
            (None, None) => "pending",
            (None, Some(_)) if self.live_at(now) => "live",
            (None, Some(_)) => "expired",
        }
    }
}

/// What a request carries.
#[derive(Debug, Clone)]
pub struct GrantRequest<'a> {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The tier asked for.
    pub tier: SupportTier,
    /// Why (10 to 500 characters).
    pub reason: &'a str,
    /// The open incident's reference (Emergency only, required there).
    pub incident: Option<&'a str>,
}

/// What an approval did.
#[derive(Debug, Clone)]
pub enum Approval {
    /// Recorded; the grant still waits for `remaining` more.
    Recorded {
        /// Approvals still needed.
        remaining: i16,
    },
    /// That was the last one: the grant is live.
    Granted(Box<SupportGrant>),
}

fn actor_of(operator: &Operator) -> String {
    format!("operator:{}", operator.email)
}

fn grant_event(actor: &str, event: &'static str, g: &SupportGrant) -> AuditEvent {
    AuditEvent::new(actor, CATEGORY, event)
        .workspace(g.workspace_id)
        .subject(g.id.to_string())
        .details(serde_json::json!({
            "grant": g.id,
            "operator": g.operator_email,
            "tier": g.tier.code(),
            "reason": g.reason,
            "incident": g.incident,
            "approvers": g.approvers,
            "expires_at": g.expires_at,
        }))
}

/// Reads one grant with its approvers, locking it when `lock` (a change follows).
async fn load(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<SupportGrant>, StoreError> {
    let row = if lock {
        sqlx::query_scalar!(
            "SELECT id FROM genesis.support_grants WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *conn)
        .await?
    } else {
        Some(id)
    };
    if row.is_none() {
        return Ok(None);
    }
    Ok(select(conn, Filter::One(id), 1).await?.into_iter().next())
}

/// Which grants [`select`] returns.
enum Filter {
    One(Uuid),
    Workspace(Uuid),
    Open,
    /// One operator's open grant on one tenant.
    OpenOf(Uuid, Uuid),
}

async fn select(
    conn: &mut PgConnection,
    filter: Filter,
    limit: i64,
) -> Result<Vec<SupportGrant>, StoreError> {
    let (one, workspace, open, operator) = match filter {
        Filter::One(id) => (Some(id), None, false, None),
        Filter::Workspace(ws) => (None, Some(ws), false, None),
        Filter::Open => (None, None, true, None),
        Filter::OpenOf(ws, op) => (None, Some(ws), true, Some(op)),
    };
    let rows = sqlx::query!(
        r#"SELECT g.id, g.workspace_id, g.operator_id, g.operator_email, g.tier, g.reason,
                  g.incident, g.approvals_needed, g.requested_at, g.granted_at, g.expires_at,
                  g.ended_at, g.ended_by, g.end_reason,
                  COALESCE((SELECT array_agg(a.approver_email ORDER BY a.approved_at)
                            FROM genesis.support_grant_approvals a WHERE a.grant_id = g.id),
                           '{}') AS "approvers!"
           FROM genesis.support_grants g
           WHERE ($1::uuid IS NULL OR g.id = $1)
             AND ($2::uuid IS NULL OR g.workspace_id = $2)
             AND (NOT $3 OR g.ended_at IS NULL)
             AND ($5::uuid IS NULL OR g.operator_id = $5)
           ORDER BY g.requested_at DESC, g.id DESC
           LIMIT $4"#,
        one,
        workspace,
        open,
        limit,
        operator,
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(SupportGrant {
                id: r.id,
                workspace_id: WorkspaceId::from_uuid(r.workspace_id).map_err(|_| {
                    StoreError::Corrupt {
                        what: "workspace id",
                        value: r.workspace_id.to_string(),
                    }
                })?,
                operator_id: r.operator_id,
                operator_email: r.operator_email,
                tier: SupportTier::from_code(&r.tier).ok_or_else(|| StoreError::Corrupt {
                    what: "support tier",
                    value: r.tier.clone(),
                })?,
                reason: r.reason,
                incident: r.incident,
                approvals_needed: r.approvals_needed,
                approvers: r.approvers,
                requested_at: r.requested_at,
                granted_at: r.granted_at,
                expires_at: r.expires_at,
                ended_at: r.ended_at,
                ended_by: r.ended_by,
                end_reason: r.end_reason,
            })
        })
        .collect()
}

/// Starts `id`'s lifetime now, for its tier's duration.
async fn start(conn: &mut PgConnection, id: Uuid, tier: SupportTier) -> Result<(), StoreError> {
    let seconds = tier.duration().as_secs_f64();
    sqlx::query!(
        r#"UPDATE genesis.support_grants
           SET granted_at = now(), expires_at = now() + make_interval(secs => $2)
           WHERE id = $1"#,
        id,
        seconds,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records the end of every open grant of `operator` on `ws` whose time is up, so a new
/// request is not blocked by one the sweep has not reached yet.
async fn close_expired_of(
    conn: &mut PgConnection,
    ws: Uuid,
    operator: Uuid,
) -> Result<(), StoreError> {
    let ids = sqlx::query_scalar!(
        r#"SELECT id FROM genesis.support_grants
           WHERE workspace_id = $1 AND operator_id = $2 AND ended_at IS NULL
             AND (expires_at <= now()
                  OR (granted_at IS NULL
                      AND requested_at <= now() - make_interval(mins => $3)))
           FOR UPDATE"#,
        ws,
        operator,
        REQUEST_TTL_MINUTES,
    )
    .fetch_all(&mut *conn)
    .await?;
    for id in ids {
        end(conn, id, "system:support-expiry", None).await?;
    }
    Ok(())
}

/// Ends open grant `id` (locked by the caller): `revoked` when `by_operator` says who,
/// otherwise `expired` or `lapsed` as its state says. Audited ACCESS_REVOKED.
async fn end(
    conn: &mut PgConnection,
    id: Uuid,
    actor: &str,
    revoked: Option<&str>,
) -> Result<Option<SupportGrant>, StoreError> {
    let Some(g) = load(conn, id, false).await? else {
        return Ok(None);
    };
    if g.ended_at.is_some() {
        return Ok(None);
    }
    let reason = match (revoked, g.granted_at) {
        (Some(_), _) => "revoked",
        (None, None) => "lapsed",
        (None, Some(_)) => "expired",
    };
    sqlx::query!(
        r#"UPDATE genesis.support_grants
           SET ended_at = now(), ended_by = $2, end_reason = $3
           WHERE id = $1"#,
        id,
        actor,
        reason,
    )
    .execute(&mut *conn)
    .await?;
    let mut event = grant_event(actor, "ACCESS_REVOKED", &g);
    if let Some(m) = event.details.as_object_mut() {
        m.insert("why".into(), reason.into());
        if let Some(note) = revoked {
            m.insert("note".into(), note.into());
        }
    }
    record(conn, &event).await?;
    let ended = load(conn, id, false).await?;
    Ok(ended)
}

impl Database {
    /// `operator` asks for `req`. A self-service tier is granted at once (ACCESS_GRANTED);
    /// one that needs approval waits (ACCESS_REQUESTED). A second open grant of the same
    /// operator on the same tenant is a [`StoreError::Conflict`] naming `tier`.
    pub async fn support_grant_request(
        &self,
        operator: &Operator,
        req: &GrantRequest<'_>,
    ) -> Result<SupportGrant, StoreError> {
        let mut tx = self.app.begin().await?;
        let ws = req.workspace.as_uuid();
        close_expired_of(&mut tx, ws, operator.id).await?;
        let id = Uuid::now_v7();
        let inserted = sqlx::query!(
            r#"INSERT INTO genesis.support_grants
                   (id, workspace_id, operator_id, operator_email, tier, reason, incident,
                    approvals_needed)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (workspace_id, operator_id) WHERE ended_at IS NULL DO NOTHING"#,
            id,
            ws,
            operator.id,
            operator.email,
            req.tier.code(),
            req.reason.trim(),
            req.incident.map(str::trim),
            i16::from(req.tier.approvals_needed()),
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
                StoreError::NotFound { what: "workspace" }
            }
            e => e.into(),
        })?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict {
                field: "tier",
                value: "an open grant on this tenant (revoke it first)".into(),
            });
        }
        let event = if req.tier.approvals_needed() == 0 {
            start(&mut tx, id, req.tier).await?;
            "ACCESS_GRANTED"
        } else {
            "ACCESS_REQUESTED"
        };
        let g = load(&mut tx, id, false)
            .await?
            .ok_or(StoreError::NotFound { what: "grant" })?;
        record(&mut tx, &grant_event(&actor_of(operator), event, &g)).await?;
        tx.commit().await?;
        Ok(g)
    }

    /// `approver` approves pending grant `id`. Refused when it is not pending, when the
    /// approver asked for it, or approved it already; the last approval needed starts it
    /// (ACCESS_GRANTED), an earlier one is recorded (ACCESS_APPROVED). The caller checks
    /// the approver's role.
    pub async fn support_grant_approve(
        &self,
        id: Uuid,
        approver: &Operator,
    ) -> Result<Approval, StoreError> {
        let mut tx = self.app.begin().await?;
        let g = load(&mut tx, id, true)
            .await?
            .ok_or(StoreError::NotFound { what: "grant" })?;
        let refused = |message: String| StoreError::Refused {
            what: "grant",
            message,
        };
        if !g.pending() {
            return Err(refused(format!(
                "this grant is {}; only a pending request can be approved",
                g.status_at(Utc::now())
            )));
        }
        if sqlx::query_scalar!(
            r#"SELECT requested_at <= now() - make_interval(mins => $2) AS "lapsed!"
               FROM genesis.support_grants WHERE id = $1"#,
            id,
            REQUEST_TTL_MINUTES
        )
        .fetch_one(&mut *tx)
        .await?
        {
            end(&mut tx, id, "system:support-expiry", None).await?;
            tx.commit().await?;
            return Err(refused(format!(
                "this request waited more than {REQUEST_TTL_MINUTES} minutes and lapsed; \
                 ask for a new one"
            )));
        }
        if g.operator_id == approver.id {
            return Err(refused("nobody approves their own request".into()));
        }
        let added = sqlx::query!(
            r#"INSERT INTO genesis.support_grant_approvals (grant_id, approver_id, approver_email)
               VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"#,
            id,
            approver.id,
            approver.email,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if added == 0 {
            return Err(refused("you have approved this request already".into()));
        }
        let approvals = i16::try_from(g.approvers.len() + 1).unwrap_or(i16::MAX);
        let remaining = g.approvals_needed - approvals;
        let actor = actor_of(approver);
        let outcome = if remaining <= 0 {
            start(&mut tx, id, g.tier).await?;
            let g = load(&mut tx, id, false)
                .await?
                .ok_or(StoreError::NotFound { what: "grant" })?;
            record(&mut tx, &grant_event(&actor, "ACCESS_GRANTED", &g)).await?;
            Approval::Granted(Box::new(g))
        } else {
            let g = load(&mut tx, id, false)
                .await?
                .ok_or(StoreError::NotFound { what: "grant" })?;
            record(&mut tx, &grant_event(&actor, "ACCESS_APPROVED", &g)).await?;
            Approval::Recorded { remaining }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Ends open grant `id` now, by `actor` (the grantee, an approver, or the tenant).
    /// `None` when it had ended already.
    pub async fn support_grant_revoke(
        &self,
        id: Uuid,
        actor: &str,
        note: &str,
    ) -> Result<Option<SupportGrant>, StoreError> {
        let mut tx = self.app.begin().await?;
        if load(&mut tx, id, true).await?.is_none() {
            return Err(StoreError::NotFound { what: "grant" });
        }
        let ended = end(&mut tx, id, actor, Some(note)).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Records the end of every grant whose time is up and every request that waited too
    /// long, each audited; answers what it ended (an Emergency grant's key is then removed
    /// by the caller).
    pub async fn support_grants_expire(&self) -> Result<Vec<SupportGrant>, StoreError> {
        let mut tx = self.app.begin().await?;
        let ids = sqlx::query_scalar!(
            r#"SELECT id FROM genesis.support_grants
               WHERE ended_at IS NULL
                 AND (expires_at <= now()
                      OR (granted_at IS NULL
                          AND requested_at <= now() - make_interval(mins => $1)))
               ORDER BY requested_at
               LIMIT 500
               FOR UPDATE SKIP LOCKED"#,
            REQUEST_TTL_MINUTES,
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut ended = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(g) = end(&mut tx, id, "system:support-expiry", None).await? {
                ended.push(g);
            }
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// One grant.
    pub async fn support_grant_get(&self, id: Uuid) -> Result<SupportGrant, StoreError> {
        load(&mut *self.read().await?, id, false)
            .await?
            .ok_or(StoreError::NotFound { what: "grant" })
    }

    /// `operator`'s open grant on `ws` (pending, live, or expired but not yet swept), if any.
    pub async fn support_grant_open(
        &self,
        ws: WorkspaceId,
        operator: Uuid,
    ) -> Result<Option<SupportGrant>, StoreError> {
        Ok(select(
            &mut *self.read().await?,
            Filter::OpenOf(ws.as_uuid(), operator),
            1,
        )
        .await?
        .into_iter()
        .next())
    }

    /// The database's clock, which is the one grants expire by.
    pub async fn now(&self) -> Result<DateTime<Utc>, StoreError> {
        Ok(sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
            .fetch_one(&mut *self.read().await?)
            .await?)
    }

    /// The newest `limit` grants on `ws`, newest first (the tenant's page, God Mode's).
    pub async fn support_grants_of(
        &self,
        ws: WorkspaceId,
        limit: i64,
    ) -> Result<Vec<SupportGrant>, StoreError> {
        select(
            &mut *self.read().await?,
            Filter::Workspace(ws.as_uuid()),
            limit,
        )
        .await
    }

    /// Every open grant of this database (pending ones wait for approvers).
    pub async fn support_grants_open(&self, limit: i64) -> Result<Vec<SupportGrant>, StoreError> {
        select(&mut *self.read().await?, Filter::Open, limit).await
    }
}
