//! A workspace's leads: bulk import and keyset-paginated listing, routed by the Ohio router
//! and opened through the tenant gate.

use genesis_core::{Email, LeadStatus, TenantRoute, WorkspaceId};
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
    let report = store_batch(&mut store, &leads).await?;
    store.commit().await?;
    super::hibernation::ring_if_asleep(state, &db, id).await;
    Ok(report)
}

/// Stores `leads` in the open `store` (duplicates by address skipped and counted); the
/// caller commits.
pub(crate) async fn store_batch(
    store: &mut genesis_store::LeadStore,
    leads: &[NewLead],
) -> Result<ImportReport, Problem> {
    Ok(match store {
        genesis_store::LeadStore::Sovereign(s) => s.lead_import(leads).await?,
        genesis_store::LeadStore::Legacy(_) => {
            let mut inserted = 0;
            for l in leads {
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
    })
}

/// A lead from its fields as a person typed them (a CSV row): a refusal names the field
/// (`email`, `first_name`, ...). Other columns go into its data as text.
pub(crate) fn lead_from_fields(
    email: &str,
    first_name: Option<String>,
    last_name: Option<String>,
    company: Option<String>,
    status: Option<&str>,
    data: serde_json::Map<String, serde_json::Value>,
) -> Result<NewLead, Problem> {
    if email.trim().is_empty() {
        return Err(Problem::invalid_field("email", "is empty"));
    }
    let email = Email::parse(email).map_err(|e| Problem::invalid_field("email", e))?;
    let mut lead = NewLead::with_email(email);
    lead.first_name = text("first_name", &first_name)?;
    lead.last_name = text("last_name", &last_name)?;
    lead.company = text("company", &company)?;
    if let Some(s) = status.filter(|s| !s.is_empty()) {
        lead.status = LeadStatus::parse(s).map_err(|e| Problem::invalid_field("status", e))?;
    }
    let data = serde_json::Value::Object(data);
    if let Some(path) = nul_in(&data) {
        return Err(Problem::invalid_field(
            path.trim_start_matches('.'),
            "holds a NUL character, which cannot be stored",
        ));
    }
    lead.data = data;
    Ok(lead)
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

/// `POST /api/v1/workspaces/{id}/replies` body: what the Golden Template's reply handler
/// sends for each reply it classified.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    /// The sender, as the mail's `From` header has it: `ada@acme.com` or
    /// `Ada Lovelace <ada@acme.com>`.
    #[schema(required = true)]
    from: Option<String>,
    /// The classifier's label: `interested`, `not_interested`, `out_of_office` or
    /// `unsubscribe` (other text counts as a reply).
    label: Option<String>,
}

/// What recording a reply did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ReplyResult {
    /// `marked` (the lead left its sequence), `unchanged` (it had already left it),
    /// `auto_reply` (an out-of-office answer: the sequence goes on) or `no_lead` (nobody
    /// with that address is a lead here).
    pub outcome: &'static str,
    /// The lead, when there is one.
    pub lead_id: Option<uuid::Uuid>,
    /// Its status now, when there is one.
    #[schema(value_type = Option<LeadStatus>)]
    pub status: Option<&'static str>,
}

/// The address in a `From` header: the part in angle brackets, or the whole.
fn sender_address(from: &str) -> &str {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &from[open + 1..close],
        _ => from,
    }
}

/// The classifier's label, normalised (`"Not interested."` → `not_interested`), at most 40
/// characters.
fn normalise_label(label: &str) -> String {
    label
        .trim()
        .trim_end_matches(['.', '!'])
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}

/// Records a reply to workspace `raw_id`'s outreach: the lead leaves its sequence
/// (`replied`, or `unsubscribed` when it asked to be left alone), audited `LEAD_REPLIED`.
/// An out-of-office answer changes nothing.
pub async fn reply(
    state: &AppState,
    raw_id: &str,
    body: &ReplyBody,
) -> Result<ReplyResult, Problem> {
    let from = required("from", &body.from)?;
    let email =
        Email::parse(sender_address(from)).map_err(|e| Problem::invalid_field("from", e))?;
    let label = normalise_label(body.label.as_deref().unwrap_or_default());
    let to = match label.as_str() {
        "out_of_office" | "auto_reply" => {
            return Ok(ReplyResult {
                outcome: "auto_reply",
                lead_id: None,
                status: None,
            });
        }
        "unsubscribe" | "unsubscribed" => LeadStatus::Unsubscribed,
        _ => LeadStatus::Replied,
    };
    let id = super::workspaces::resolve(state, raw_id).await?;
    let db = database_for(state, id).await?;
    let mut store = db
        .leads_open(&state.router, &caller(), &id.to_string())
        .await?;
    let outcome = store
        .reply(email.as_str(), to, &format!("workspace:{id}"), &label)
        .await?;
    store.commit().await?;
    Ok(match outcome {
        genesis_store::ReplyOutcome::Marked { lead, .. } => ReplyResult {
            outcome: "marked",
            lead_id: Some(lead),
            status: Some(to.code()),
        },
        genesis_store::ReplyOutcome::Unchanged { lead, status } => ReplyResult {
            outcome: "unchanged",
            lead_id: Some(lead),
            status: Some(status.code()),
        },
        genesis_store::ReplyOutcome::NoLead => ReplyResult {
            outcome: "no_lead",
            lead_id: None,
            status: None,
        },
    })
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn senders_and_labels_are_read_as_a_mail_client_writes_them() {
        assert_eq!(
            sender_address("Ada Lovelace <ada@acme.com>"),
            "ada@acme.com"
        );
        assert_eq!(sender_address("ada@acme.com"), "ada@acme.com");
        assert_eq!(normalise_label(" Not interested. "), "not_interested");
        assert_eq!(normalise_label("OUT-OF-OFFICE"), "out_of_office");
        assert_eq!(normalise_label("<script>"), "script");
    }
}
