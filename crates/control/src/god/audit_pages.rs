//! The audit-log viewer (spec 63.1): every event, newest first, filtered by who acted, the
//! tenant, the category and a time window, a page at a time. A filter that cannot be read
//! says which and why, and shows nothing rather than everything.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use genesis_store::AuditFilter;
use maud::html;
use serde::Deserialize;

use super::layout::{actor, html_response, moment, page};
use super::session::SignedIn;
use crate::app::audit::{categories, search};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// The viewer's query: what the filter form sends, plus the page cursor.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    after: String,
}

/// `datetime-local` input (`2026-12-05T17:30`, seconds optional), read as UTC.
fn moment_field(field: &str, raw: &str) -> Result<Option<DateTime<Utc>>, Problem> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| {
            Problem::invalid_field(
                field,
                "must be a date and time such as 2026-12-05T17:30 (UTC)",
            )
        })
}

impl AuditQuery {
    async fn filter(&self, state: &AppState) -> Result<AuditFilter, Problem> {
        let tenant = match self.tenant.trim() {
            "" => None,
            raw => {
                Some(crate::app::workspaces::resolve(state, raw).await.map_err(
                    |p| match p.status {
                        404 => Problem::invalid_field("tenant", "no tenant has this slug or id"),
                        _ => Problem::invalid_field(
                            "tenant",
                            "is neither a tenant's slug nor its id",
                        ),
                    },
                )?)
            }
        };
        let since = moment_field("since", &self.since)?;
        let until = moment_field("until", &self.until)?;
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err(Problem::invalid_field("until", "must be after since"));
        }
        Ok(AuditFilter {
            actor_prefix: Some(self.actor.trim())
                .filter(|a| !a.is_empty())
                .map(str::to_owned),
            workspace: tenant,
            category: Some(self.category.trim())
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            since,
            until,
            after: crate::app::audit::parse_cursor(&self.after)?,
        })
    }

    /// This query's link to the page after `(at, id)`.
    fn next_link(&self, at: DateTime<Utc>, id: i64) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("tenant", &self.tenant),
            ("category", &self.category),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.append_pair("after", &crate::app::audit::cursor_text(at, id));
        format!("/god/audit?{}", q.finish())
    }
}

/// `GET /god/audit`.
pub async fn audit(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, Problem> {
    let known = categories(&state).await?;
    let (found, refusal) = match q.filter(&state).await {
        Ok(f) => (Some(search(&state, &f).await?), None),
        Err(p) => (None, Some(p)),
    };
    let body = html! {
        main {
            h1 { "Audit log" }
            form.filters #audit-filters method="get" action="/god/audit" {
                label { "Actor starts with"
                    input name="actor" value=(q.actor) list="actors" placeholder="operator:"; }
                datalist #actors { option value="operator:" { "every operator" } option value="operator:api-token" { "the API token" } }
                label { "Tenant (slug or id)" input name="tenant" value=(q.tenant); }
                label { "Category" select name="category" {
                    option value="" { "any" }
                    @for c in &known { option value=(c) selected[q.category == *c] { (c) } }
                } }
                label { "Since (UTC)" input type="datetime-local" name="since" value=(q.since); }
                label { "Until (UTC)" input type="datetime-local" name="until" value=(q.until); }
                button type="submit" #apply-audit-filters { "Show" }
                a href="/god/audit" { "Clear" }
            }
            @if let Some(p) = &refusal {
                p.error role="alert" #audit-refused { (p.detail) }
            }
            @if let Some(page) = &found {
                @if page.items.is_empty() {
                    p.quiet #no-events { "No event matches these filters." }
                } @else {
                    table #audit {
                        tr { th { "When" } th.text { "Event" } th.text { "Category" } th.text { "By" } th.text { "Tenant" } th.text { "Subject" } th.text { "Details" } }
                        @for e in &page.items {
                            tr data-event=(e.event) data-actor=(e.actor) {
                                td { (moment(e.occurred_at)) }
                                td.text { code { (e.event) } }
                                td.text { (e.category) }
                                td.text { (actor(&e.actor)) }
                                td.text { @if let Some(w) = e.workspace_id { a href={ "/god/tenants/" (w) } { code { (w.to_string().get(..8).unwrap_or_default()) "…" } } } }
                                td.text { (e.subject.as_deref().unwrap_or("")) }
                                td.text { small { code { (e.details.to_string()) } } }
                            }
                        }
                    }
                    @if let Some((at, id)) = page.next {
                        p { a #older rel="next" href=(q.next_link(at, id)) { "Older events →" } }
                    }
                }
            }
        }
    };
    let status = if refusal.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok(html_response(status, page("Audit log", Some(&me), body)))
}
