//! A workspace's leads: bulk import and keyset-paginated listing, routed by the Ohio router
//! and opened through the tenant gate.

use axum::{
    Json,
    extract::{Path, State},
};
use genesis_core::{Email, LeadStatus, TenantRoute};
use genesis_store::{Caller, Database, ImportReport, LeadCursor, LeadPage, NewLead};
use serde::Deserialize;

use super::body::{ApiJson, required, workspace_id};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// The API acts for an operator (the bearer token); per-tenant credentials arrive with the
/// tenant-facing API.
fn caller() -> Caller {
    Caller::Operator("api".into())
}

async fn database_for(state: &AppState, raw_id: &str) -> Result<Database, Problem> {
    let id = workspace_id(raw_id)?;
    if let TenantRoute::Legacy(_) = state.router.route(id) {
        // The legacy tenant has no workspace row; its table lives in the home database.
        return Ok(state.stores.coordinator().clone());
    }
    Ok(state.stores.workspace_find(id).await?.1.clone())
}

/// One lead of an import body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeadInput {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    status: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// `POST /api/v1/workspaces/{id}/leads` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    leads: Vec<LeadInput>,
}

fn parse_lead(i: usize, l: &LeadInput) -> Result<NewLead, Problem> {
    let field = |f: &str| format!("leads[{i}].{f}");
    let email = Email::parse(required(&field("email"), &l.email)?)
        .map_err(|e| Problem::invalid_field(field("email"), e))?;
    let mut lead = NewLead::with_email(email);
    lead.first_name = l.first_name.clone();
    lead.last_name = l.last_name.clone();
    lead.company = l.company.clone();
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
        lead.data = d.clone();
    }
    Ok(lead)
}

/// Imports leads (all or nothing; duplicates by address are skipped and counted).
pub async fn import(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ImportBody>,
) -> Result<Json<ImportReport>, Problem> {
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
    let db = database_for(&state, &id).await?;
    let mut store = db.leads_open(&state.router, &caller(), &id).await?;
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
    wake_for_service_call(&state, &db, &id);
    Ok(Json(report))
}

/// A managed-service call for a hibernating tenant wakes it (spec 55.3), in the background:
/// the leads live in PostgreSQL, so the call itself need not wait for the droplet.
fn wake_for_service_call(state: &AppState, db: &Database, raw_id: &str) {
    let (Ok(id), Some(igniter)) = (workspace_id(raw_id), state.igniter.clone()) else {
        return;
    };
    if let TenantRoute::Legacy(_) = state.router.route(id) {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        if let Err(e) = db
            .activity_touch(
                id,
                genesis_store::ActivityKind::Campaign,
                chrono::Utc::now(),
            )
            .await
        {
            tracing::warn!(workspace = %id, error = %e, "recording activity failed");
        }
        match crate::workers::hibernation::wake(
            &db,
            igniter.cloud().as_ref(),
            id,
            "service_call",
            "leads-api",
        )
        .await
        {
            Ok(_) | Err(crate::workers::hibernation::WakeError::NoDroplet) => {}
            Err(e) => tracing::warn!(workspace = %id, error = %e, "wake on a service call failed"),
        }
    });
}

/// `GET /api/v1/workspaces/{id}/leads` query.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// One page of leads, newest first.
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<LeadPage>, Problem> {
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
    let db = database_for(&state, &id).await?;
    let mut store = db.leads_open(&state.router, &caller(), &id).await?;
    let page = store.page(status, cursor, limit).await?;
    store.commit().await?;
    Ok(Json(page))
}
