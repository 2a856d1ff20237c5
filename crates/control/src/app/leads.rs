//! A workspace's leads: bulk import and keyset-paginated listing, routed by the Ohio router
//! and opened through the tenant gate.

use genesis_core::{DropletState, Email, LeadStatus, TenantRoute, WorkspaceId};
use genesis_store::{ActivityKind, Caller, Database, ImportReport, LeadCursor, LeadPage, NewLead};
use serde::Deserialize;

use crate::extract::required;
use crate::{AppState, Problem};

/// The API acts for an operator (the bearer token); per-tenant credentials arrive with the
/// tenant-facing API.
fn caller() -> Caller {
    Caller::Operator("api".into())
}

/// The database holding workspace `id`'s leads.
async fn database_for(state: &AppState, id: WorkspaceId) -> Result<Database, Problem> {
    if let TenantRoute::Legacy(_) = state.router.route(id) {
        // The legacy tenant has no workspace row; its table lives in the home database.
        return Ok(state.stores.coordinator().clone());
    }
    Ok(state.stores.workspace_find(id).await?.1.clone())
}

/// One lead of an import body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    /// The lead's address (unique per workspace; a duplicate is skipped and counted).
    #[schema(value_type = Email, required = true)]
    email: Option<String>,
    /// Given name.
    first_name: Option<String>,
    /// Family name.
    last_name: Option<String>,
    /// Company.
    company: Option<String>,
    /// Funnel status; `new` when absent.
    #[schema(value_type = Option<LeadStatus>)]
    status: Option<String>,
    /// Enrichment data: a JSON object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Value>,
}

/// `POST /api/v1/workspaces/{id}/leads` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The leads, all stored or none.
    leads: Vec<LeadInput>,
}

fn parse_lead(i: usize, l: &LeadInput) -> Result<NewLead, Problem> {
    let field = |f: &str| format!("leads[{i}].{f}");
    let email = Email::parse(required(&field("email"), &l.email)?)
        .map_err(|e| Problem::invalid_field(field("email"), e))?;
    let mut lead = NewLead::with_email(email);
    lead.first_name = text(&field("first_name"), &l.first_name)?;
    lead.last_name = text(&field("last_name"), &l.last_name)?;
    lead.company = text(&field("company"), &l.company)?;
    if let Some(s) = &l.status {
        lead.status =
            LeadStatus::parse(s).map_err(|e| Problem::invalid_field(field("status"), e))?;
    }
    if let Some(d) = &l.data {
        if !d.is_object() {
            return Err(Problem::invalid_field(
                field("data"),
                "must be a JSON object",
            ));
        }
        if let Some(path) = nul_in(d) {
            return Err(Problem::invalid_field(
                field("data"),
                format!(
                    "holds a NUL character (\\u0000) at {}, which cannot be stored",
                    path.trim_start()
                ),
            ));
        }
        lead.data = d.clone();
    }
    Ok(lead)
}

/// The longest name or company a lead may carry, in characters.
const MAX_LEAD_TEXT: usize = 300;

/// A lead's free-text field: at most [`MAX_LEAD_TEXT`] characters and no control
/// characters (PostgreSQL cannot store a NUL at all, and a newline or escape in a name only
/// breaks the e-mails and pages that show it).
fn text(field: &str, v: &Option<String>) -> Result<Option<String>, Problem> {
    let Some(v) = v else { return Ok(None) };
    if v.chars().count() > MAX_LEAD_TEXT {
        return Err(Problem::invalid_field(
            field,
            format!("is longer than {MAX_LEAD_TEXT} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            field,
            "contains a control character",
        ));
    }
    Ok(Some(v.clone()))
}

/// Where in `v` a string or key holds a NUL (PostgreSQL's `jsonb` refuses `\u0000`), as a
/// JSON path such as `.a[2]`. The path is built on the way back from a find only, so a
/// clean import (the usual case, up to 50,000 leads) allocates nothing here.
fn nul_in(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => s.contains('\0').then(String::new),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item).map(|rest| format!("[{i}]{rest}"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                Some(" (a key)".to_owned())
            } else {
                nul_in(item).map(|rest| format!(".{k}{rest}"))
            }
        }),
        _ => None,
    }
}

/// A managed-service call for a hibernating tenant wakes it (spec 55.3). The call is
/// recorded as activity before anything else, so it is never lost; the wake itself is the
/// hibernation reconciler's (it wakes every hibernating tenant called since it went to
/// sleep), and is asked for at once when this tenant is asleep.
async fn note_service_call(
    state: &AppState,
    db: &Database,
    id: WorkspaceId,
) -> Result<(), Problem> {
    if let TenantRoute::Legacy(_) = state.router.route(id) {
        return Ok(());
    }
    db.activity_touch(id, ActivityKind::Campaign, chrono::Utc::now())
        .await?;
    Ok(())
}

/// Rings the hibernation reconciler when `id` is asleep (a hint: its next pass wakes the
/// tenant anyway).
async fn wake_if_asleep(state: &AppState, db: &Database, id: WorkspaceId) {
    if state.igniter.is_none() {
        return;
    }
    let asleep = match db.droplet_live_for_workspace(id).await {
        Ok(ds) => ds.iter().any(|d| d.state == DropletState::Hibernating),
        Err(e) => {
            tracing::warn!(workspace = %id, error = %e, "cannot tell whether the tenant sleeps; its next hibernation pass will");
            return;
        }
    };
    if asleep
        && let Err(e) = state
            .stores
            .coordinator()
            .reconciler_wake("hibernation")
            .await
    {
        tracing::warn!(workspace = %id, error = %e, "could not ring the hibernation reconciler; its next pass wakes the tenant");
    }
}

/// Imports leads into workspace `raw_id` (all or nothing; duplicates by address are
/// skipped and counted), as a managed-service call that wakes a hibernating tenant.
pub async fn import(
    state: &AppState,
    raw_id: &str,
    body: &ImportBody,
) -> Result<ImportReport, Problem> {
    if body.leads.len() > 50_000 {
        return Err(Problem::invalid_field(
            "leads",
            "at most 50,000 leads per request",
        ));
    }
    let leads = body
        .leads
        .iter()
        .enumerate()
        .map(|(i, l)| parse_lead(i, l))
        .collect::<Result<Vec<_>, _>>()?;
    let id = super::workspaces::resolve(state, raw_id).await?;
    let db = database_for(state, id).await?;
    note_service_call(state, &db, id).await?;
    let mut store = db
        .leads_open(&state.router, &caller(), &id.to_string())
        .await?;
    let report = match &mut store {
        genesis_store::LeadStore::Sovereign(s) => s.lead_import(&leads).await?,
        genesis_store::LeadStore::Legacy(_) => {
            let mut inserted = 0;
            for l in &leads {
                match store.insert(l).await {
                    Ok(_) => inserted += 1,
                    Err(genesis_store::StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            ImportReport {
                received: leads.len() as u64,
                inserted,
                duplicates: leads.len() as u64 - inserted,
            }
        }
    };
    store.commit().await?;
    wake_if_asleep(state, &db, id).await;
    Ok(report)
}

/// One page of workspace `raw_id`'s leads, newest first.
pub async fn page(state: &AppState, raw_id: &str, q: &PageQuery) -> Result<LeadPage, Problem> {
    let status = match &q.status {
        Some(s) => LeadStatus::parse(s).map_err(|e| Problem::invalid_field("status", e))?,
        None => LeadStatus::New,
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(str::parse::<LeadCursor>)
        .transpose()
        .map_err(|e| Problem::invalid_field("cursor", e))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid_field(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    let id = super::workspaces::resolve(state, raw_id).await?;
    let db = database_for(state, id).await?;
    let mut store = db
        .leads_open(&state.router, &caller(), &id.to_string())
        .await?;
    let page = store.page(status, cursor, limit).await?;
    store.commit().await?;
    Ok(page)
}

/// `GET /api/v1/workspaces/{id}/leads` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Only leads in this status.
    #[param(value_type = Option<LeadStatus>)]
    status: Option<String>,
    /// Where the page starts: the previous page's `next`.
    cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    limit: Option<i64>,
}
