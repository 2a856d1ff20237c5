//! Governed support access (spec 63.3; DECISIONS 100): support staff ask for a grant to one
//! tenant with a reason, managers approve the tiers that need it, and every tenant-scoped
//! operator action is checked here before anything is read or sent.
//!
//! The check is fail-closed: a support operator with no grant, a pending one, an expired
//! one or one whose tier does not cover the action is refused (403), and the refusal is
//! audited (Security: PERMISSION_DENIED) with what was tried and why. An allowed action is
//! stamped with the grant's id, so its ACTION_TAKEN event says under which grant it ran.
//! Managers and admins act without grants, under their own name; the shared API token is a
//! machine's and acts like an admin.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use genesis_core::support::{OperatorRole, SupportAction, SupportTier};
use genesis_store::{Approval, AuditEvent, Database, GrantRequest, Operator, SupportGrant};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::API_ACTOR;
use crate::{AppState, Problem};

/// The longest reason kept.
pub const REASON_MAX_CHARS: usize = 500;
/// The shortest reason that says something.
pub const REASON_MIN_CHARS: usize = 10;
/// The longest incident reference.
pub const INCIDENT_MAX_CHARS: usize = 100;
/// Grants listed per tenant.
pub const GRANTS_SHOWN: i64 = 50;

/// Who is asking for a tenant-scoped operator action.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// The operators' shared API token (a machine; it names no person).
    ApiToken,
    /// A person signed in to God Mode.
    Operator(&'a Operator),
}

impl Caller<'_> {
    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        match self {
            Caller::ApiToken => API_ACTOR.to_owned(),
            Caller::Operator(o) => format!("operator:{}", o.email),
        }
    }

    fn role(&self) -> OperatorRole {
        match self {
            Caller::ApiToken => OperatorRole::Admin,
            Caller::Operator(o) => o.role,
        }
    }
}

/// What [`authorise`] allowed: who acts, and under which grant when one was needed.
#[derive(Debug, Clone)]
pub struct Authority {
    /// The audit log's name for the caller.
    pub actor: String,
    /// The grant the action runs under (support staff only).
    pub grant: Option<Uuid>,
}

impl Authority {
    /// The audit event of an action under this authority (Support: ACTION_TAKEN) on
    /// `subject` of tenant `ws`: `details` with the grant's id added when there is one.
    pub fn action_taken(
        &self,
        ws: WorkspaceId,
        subject: String,
        mut details: serde_json::Value,
    ) -> AuditEvent {
        if let (Some(grant), Some(m)) = (self.grant, details.as_object_mut()) {
            m.insert("grant".into(), grant.to_string().into());
        }
        AuditEvent::new(self.actor.clone(), AuditCategory::Support, "ACTION_TAKEN")
            .workspace(ws)
            .subject(subject)
            .details(details)
    }
}

/// Why a support operator was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denial {
    NoGrant,
    Pending,
    Expired,
    BeyondTier,
    FleetOnly,
}

impl Denial {
    fn code(self) -> &'static str {
        match self {
            Denial::NoGrant => "no_grant",
            Denial::Pending => "pending",
            Denial::Expired => "expired",
            Denial::BeyondTier => "beyond_tier",
            Denial::FleetOnly => "fleet_role_required",
        }
    }
}

/// Allows `caller` to do `action` to tenant `ws` (whose database is `db`), or refuses and
/// audits the refusal.
pub async fn authorise(
    db: &Database,
    caller: Caller<'_>,
    ws: WorkspaceId,
    action: SupportAction,
) -> Result<Authority, Problem> {
    let actor = caller.actor();
    let Caller::Operator(me) = caller else {
        return Ok(Authority { actor, grant: None });
    };
    // SSH is the one thing nobody does without a grant: its key lives as long as the
    // grant, and the grant names the incident.
    if !me.role.needs_grant() && action != SupportAction::Ssh {
        return Ok(Authority { actor, grant: None });
    }
    let grant = db.support_grant_open(ws, me.id).await?;
    let now = db.now().await?;
    let (denial, message) = match &grant {
        None => (
            Denial::NoGrant,
            format!(
                "You have no support grant for this tenant, so you cannot {}. Request one on \
                 the tenant's page.",
                action.describe()
            ),
        ),
        Some(g) if g.pending() => (
            Denial::Pending,
            format!(
                "Your {} request for this tenant still waits for approval.",
                g.tier.label()
            ),
        ),
        Some(g) if !g.live_at(now) => (
            Denial::Expired,
            format!(
                "Your {} grant for this tenant expired{}. Request a new one to continue.",
                g.tier.label(),
                g.expires_at
                    .map(|e| format!(" at {} UTC", e.format("%H:%M:%S")))
                    .unwrap_or_default()
            ),
        ),
        Some(g) if !g.tier.allows(action) => (
            Denial::BeyondTier,
            format!(
                "Your {} grant does not allow you to {}: that needs {}.",
                g.tier.label(),
                action.describe(),
                action.least_tier().label()
            ),
        ),
        Some(g) => {
            return Ok(Authority {
                actor,
                grant: Some(g.id),
            });
        }
    };
    deny(
        db,
        &actor,
        Some(ws),
        action.code(),
        None,
        grant.as_ref(),
        denial,
    )
    .await?;
    Err(Problem::forbidden(message))
}

/// Refuses support staff a fleet-wide action (one that no grant covers), audited with
/// `subject` (the page or droplet tried).
pub async fn require_fleet_role(
    db: &Database,
    caller: Caller<'_>,
    ws: Option<WorkspaceId>,
    what: &'static str,
    subject: &str,
) -> Result<String, Problem> {
    let actor = caller.actor();
    if caller.role() >= OperatorRole::Manager {
        return Ok(actor);
    }
    deny(db, &actor, ws, what, Some(subject), None, Denial::FleetOnly).await?;
    Err(Problem::forbidden(
        "This needs a manager or an admin; support staff act on one tenant through a grant.",
    ))
}

async fn deny(
    db: &Database,
    actor: &str,
    ws: Option<WorkspaceId>,
    action: &str,
    subject: Option<&str>,
    grant: Option<&SupportGrant>,
    denial: Denial,
) -> Result<(), Problem> {
    let mut event = AuditEvent::new(actor, AuditCategory::Security, "PERMISSION_DENIED").details(
        serde_json::json!({
            "action": action,
            "why": denial.code(),
            "grant": grant.map(|g| g.id),
            "tier": grant.map(|g| g.tier.code()),
        }),
    );
    event.workspace_id = ws;
    event.subject = subject.map(str::to_owned);
    db.audit_record(&event).await?;
    metrics::counter!("genesis_support_denied_total", "why" => denial.code()).increment(1);
    Ok(())
}

/// What a request form sends.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestForm {
    /// The tenant (id or slug).
    pub workspace: String,
    /// `read_only`, `debug`, `write` or `emergency`.
    pub tier: String,
    /// Why.
    pub reason: String,
    /// The open incident (Emergency).
    #[serde(default)]
    pub incident: Option<String>,
}

/// The request `form` checked: the tier, the reason and the incident.
fn parse(form: &RequestForm) -> Result<(SupportTier, String, Option<String>), Problem> {
    let tier = SupportTier::from_code(form.tier.trim()).ok_or_else(|| {
        Problem::invalid_field("tier", "must be one of read_only, debug, write, emergency")
    })?;
    let reason = form.reason.trim();
    let n = reason.chars().count();
    if !(REASON_MIN_CHARS..=REASON_MAX_CHARS).contains(&n) {
        return Err(Problem::invalid_field(
            "reason",
            format!(
                "say why in {REASON_MIN_CHARS} to {REASON_MAX_CHARS} characters (the tenant \
                 reads it)"
            ),
        ));
    }
    let incident = form
        .incident
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match incident {
        None if tier.needs_incident() => {
            return Err(Problem::invalid_field(
                "incident",
                "an Emergency grant needs the open incident it is for",
            ));
        }
        Some(i) if i.chars().count() > INCIDENT_MAX_CHARS || i.chars().any(char::is_control) => {
            return Err(Problem::invalid_field(
                "incident",
                format!("must be a reference of at most {INCIDENT_MAX_CHARS} characters"),
            ));
        }
        _ => {}
    }
    Ok((tier, reason.to_owned(), incident.map(str::to_owned)))
}

/// `me` asks for a grant: granted at once for a self-service tier, pending otherwise.
pub async fn request(
    state: &AppState,
    me: &Operator,
    form: &RequestForm,
) -> Result<SupportGrant, Problem> {
    let (tier, reason, incident) = parse(form)?;
    if !me.role.needs_grant() && tier != SupportTier::Emergency {
        return Err(Problem::conflict(
            "tier",
            "managers and admins act on tenants without a grant, except over SSH (Emergency)",
        ));
    }
    let ws = super::workspaces::resolve(state, &form.workspace).await?;
    let (_, db) = state.stores.workspace_find(ws).await?;
    Ok(db
        .support_grant_request(
            me,
            &GrantRequest {
                workspace: ws,
                tier,
                reason: &reason,
                incident: incident.as_deref(),
            },
        )
        .await?)
}

/// What a support operator sees before a tenant's page: the tenant (name, slug, status,
/// nothing personal), their open grant on it if any, and the database's time.
pub async fn my_access(
    state: &AppState,
    me: &Operator,
    raw: &str,
) -> Result<
    (
        genesis_store::Workspace,
        Option<SupportGrant>,
        DateTime<Utc>,
    ),
    Problem,
> {
    let ws = super::workspaces::resolve(state, raw).await?;
    let (workspace, db) = state.stores.workspace_find(ws).await?;
    let grant = db.support_grant_open(ws, me.id).await?;
    Ok((workspace, grant, db.now().await?))
}

/// The grant `raw_id` names and the database that holds it.
pub async fn locate(state: &AppState, raw_id: &str) -> Result<(Database, SupportGrant), Problem> {
    let id = Uuid::parse_str(raw_id.trim())
        .map_err(|_| Problem::invalid_field("id", "is not a grant id"))?;
    for db in state.stores.distinct() {
        match db.support_grant_get(id).await {
            Ok(g) => return Ok((db.clone(), g)),
            Err(genesis_store::StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Problem::not_found("grant"))
}

/// `me` approves grant `raw_id`: a manager or an admin, never the requester.
pub async fn approve(state: &AppState, me: &Operator, raw_id: &str) -> Result<Approval, Problem> {
    let (db, g) = locate(state, raw_id).await?;
    if !me.role.approves() {
        deny(
            &db,
            &format!("operator:{}", me.email),
            Some(g.workspace_id),
            "approve_grant",
            None,
            Some(&g),
            Denial::FleetOnly,
        )
        .await?;
        return Err(Problem::forbidden(
            "Only a manager or an admin approves support grants.",
        ));
    }
    if g.operator_id == me.id {
        return Err(Problem::forbidden("Nobody approves their own request."));
    }
    Ok(db.support_grant_approve(g.id, me).await?)
}

/// Ends grant `raw_id` now: its holder may, and so may any manager or admin.
pub async fn revoke(
    state: &AppState,
    me: &Operator,
    raw_id: &str,
) -> Result<SupportGrant, Problem> {
    let (db, g) = locate(state, raw_id).await?;
    if g.operator_id != me.id && !me.role.approves() {
        return Err(Problem::forbidden(
            "Only the grant's holder, a manager or an admin can end it.",
        ));
    }
    end(
        state,
        &db,
        g,
        &format!("operator:{}", me.email),
        "ended by an operator",
    )
    .await
}

/// The tenant ends grant `raw_id` on its own workspace `ws` from its dashboard.
pub async fn revoke_by_tenant(
    state: &AppState,
    ws: WorkspaceId,
    actor: &str,
    raw_id: &str,
) -> Result<SupportGrant, Problem> {
    let (db, g) = locate(state, raw_id).await?;
    if g.workspace_id != ws {
        // Another tenant's grant reads exactly like one that does not exist.
        return Err(Problem::not_found("grant"));
    }
    end(state, &db, g, actor, "ended by the tenant").await
}

async fn end(
    state: &AppState,
    db: &Database,
    g: SupportGrant,
    actor: &str,
    note: &str,
) -> Result<SupportGrant, Problem> {
    let ended = db.support_grant_revoke(g.id, actor, note).await?;
    // An Emergency grant ended early takes its SSH key with it (at its expiry, sshd and
    // the sidecar drop the key by themselves).
    if ended.is_some() && g.tier == SupportTier::Emergency && g.granted_at.is_some() {
        super::droplet_ops::remove_ssh_keys(state, g.workspace_id, g.id).await;
    }
    ended.ok_or_else(|| {
        Problem::conflict(
            "grant",
            format!(
                "this grant has ended already ({})",
                g.end_reason.as_deref().unwrap_or("expired")
            ),
        )
    })
}

/// The grants God Mode's support page shows: every open one over the regions, newest
/// first.
pub async fn open_grants(state: &AppState) -> Result<Vec<SupportGrant>, Problem> {
    let mut all = Vec::new();
    for db in state.stores.distinct() {
        all.extend(db.support_grants_open(GRANTS_SHOWN).await?);
    }
    all.sort_by_key(|g| std::cmp::Reverse(g.requested_at));
    Ok(all)
}

/// Tenant `ws`'s grants, newest first, and the audit events of what was done under them.
pub async fn of_tenant(
    state: &AppState,
    ws: WorkspaceId,
) -> Result<(Vec<SupportGrant>, Vec<genesis_store::AuditEntry>), Problem> {
    let (_, db) = state.stores.workspace_find(ws).await?;
    let grants = db.support_grants_of(ws, GRANTS_SHOWN).await?;
    let filter = genesis_store::AuditFilter {
        workspace: Some(ws),
        category: Some("support".into()),
        ..Default::default()
    };
    let events = db.audit_search(&filter, 200).await?;
    Ok((grants, events))
}

/// The reconciler's pass: records every grant whose time is up and every request that
/// waited too long.
pub async fn expire(state: &AppState) -> Result<usize, Problem> {
    let mut n = 0;
    for db in state.stores.distinct() {
        n += db.support_grants_expire().await?.len();
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(tier: &str, reason: &str, incident: Option<&str>) -> RequestForm {
        RequestForm {
            workspace: "acme".into(),
            tier: tier.into(),
            reason: reason.into(),
            incident: incident.map(str::to_owned),
        }
    }

    #[test]
    fn a_request_needs_a_known_tier_a_real_reason_and_for_emergency_an_incident() {
        let field = |f: RequestForm| parse(&f).err().and_then(|p| p.field);
        assert_eq!(
            field(form("root", "customer asked about logs", None)),
            Some("tier".into())
        );
        assert_eq!(
            field(form("read_only", "  logs  ", None)),
            Some("reason".into())
        );
        assert_eq!(
            field(form("read_only", &"x".repeat(501), None)),
            Some("reason".into())
        );
        assert_eq!(
            field(form("emergency", "n8n will not start", None)),
            Some("incident".into())
        );
        assert_eq!(
            field(form("emergency", "n8n will not start", Some("  "))),
            Some("incident".into())
        );
        assert_eq!(
            field(form(
                "emergency",
                "n8n will not start",
                Some(&"i".repeat(101))
            )),
            Some("incident".into())
        );
        let (tier, reason, incident) = parse(&form(
            "emergency",
            "  n8n will not start ",
            Some(" INC-42 "),
        ))
        .expect("valid");
        assert_eq!(
            (tier, reason.as_str(), incident.as_deref()),
            (SupportTier::Emergency, "n8n will not start", Some("INC-42"))
        );
        let (_, _, none) = parse(&form("debug", "customer reports 502s", Some(""))).expect("valid");
        assert_eq!(none, None, "a blank incident is no incident");
    }

    #[test]
    fn the_grant_is_stamped_on_the_actions_details() {
        let id = Uuid::now_v7();
        let a = Authority {
            actor: "operator:s@x.test".into(),
            grant: Some(id),
        };
        let ws = WorkspaceId::new();
        let e = a.action_taken(ws, "d".into(), serde_json::json!({"action": "GET_LOGS"}));
        assert_eq!(e.details["grant"], id.to_string());
        assert_eq!((e.event, e.workspace_id), ("ACTION_TAKEN", Some(ws)));
        let none = Authority {
            actor: API_ACTOR.into(),
            grant: None,
        };
        assert_eq!(
            none.action_taken(ws, "d".into(), serde_json::json!({"action": "GET_LOGS"}))
                .details,
            serde_json::json!({"action": "GET_LOGS"})
        );
    }
}
