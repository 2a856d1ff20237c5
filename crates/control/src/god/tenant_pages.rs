//! Finding a tenant and looking after it (spec 63.3's support view): `GET /god/search`
//! (the navigation's search box: name, slug or id, and a droplet id finds its droplet) and
//! `GET /god/tenants/{id or slug}`: the tenant, its ignition, each droplet with its
//! heartbeat, workflows, commands, alerts and actions, and its audit trail.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::fleet_pages::droplet_section;
use super::layout::{actor, html_response, moment, page};
use super::pages::found_or_page;
use super::session::SignedIn;
use super::support_pages::{access_page, emergency_section, grant_banner};
use crate::app::support::{Found, SEARCH_LIMIT, search, tenant};
use crate::app::support_access::{self, Caller};
use crate::extract::ApiQuery;
use crate::{AppState, Problem};

/// `?q=`.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /god/search?q=`: an exact slug or id opens its tenant's page; otherwise the
/// matches, or a way to try again.
pub async fn search_page(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Response, Problem> {
    let q = query.q.trim();
    let found = search(&state, q).await?;
    let tenants = match found {
        Found::Droplet(id) => {
            return Ok(Redirect::to(&format!("/god/droplets/{id}")).into_response());
        }
        Found::Tenants(t) => Some(t),
        Found::TooShort => None,
    };
    // Exact matches come first: an exact slug or id names one tenant, whatever else
    // contains the text.
    if let Some(first) = tenants.as_deref().and_then(<[_]>::first)
        && (first.slug.as_str() == q.to_lowercase() || first.id.to_string() == q.to_lowercase())
    {
        return Ok(Redirect::to(&format!("/god/tenants/{}", first.slug)).into_response());
    }
    let body = html! {
        main {
            h1 { "Tenants" }
            form.filters role="search" method="get" action="/god/search" {
                label { "Name, slug, or a tenant's or droplet's id"
                    input #search-q type="search" name="q" value=(q) autofocus minlength="2"; }
                button type="submit" { "Find" }
            }
            @match &tenants {
                None => p.quiet #search-hint { "Type at least two characters of a tenant's name or slug, or a whole id." },
                Some(t) if t.is_empty() => p #no-match { "No tenant's name, slug or id matches " b { (q) } "." },
                Some(t) => {
                    p.quiet { (t.len()) " found"
                        @if t.len() as i64 == SEARCH_LIMIT { " (the first " (SEARCH_LIMIT) "; type more to narrow it)" } "." }
                    table #matches {
                        tr { th { "Slug" } th.text { "Name" } th.text { "Status" } th.text { "Region" } th.text { "Tier" } th { "Created" } }
                        @for w in t {
                            tr data-slug=(w.slug) {
                                td { a href={ "/god/tenants/" (w.slug) } { (w.slug) } }
                                td.text { (w.name) }
                                td.text title=(w.status.code()) { (w.status.in_words()) }
                                td.text { (w.region.code()) }
                                td.text { (w.tier.code()) }
                                td { (moment(w.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page("Tenants", Some(&me), body),
    ))
}

/// `GET /god/tenants/{id or slug}`.
pub async fn tenant_page(
    State(state): State<AppState>,
    Extension(me): Extension<SignedIn>,
    Path(raw): Path<String>,
) -> Result<Response, Problem> {
    // Support staff see the tenant only under a live grant; without one, the page is the
    // form that asks for it.
    let mut grant = None;
    if me.operator.role.needs_grant() {
        let (ws, open, now) = match found_or_page(
            support_access::my_access(&state, &me.operator, &raw).await,
            &me,
        )? {
            Ok(found) => found,
            Err(page) => return Ok(page),
        };
        match open {
            Some(g) if g.live_at(now) => grant = Some(g),
            open => return Ok(access_page(&me, &ws, open.as_ref(), now)),
        }
    }
    let t = match found_or_page(
        tenant(&state, &raw, Caller::Operator(&me.operator)).await,
        &me,
    )? {
        Ok(t) => t,
        Err(page) => return Ok(page),
    };
    let ws = &t.workspace.workspace;
    let back = format!("/god/tenants/{}", ws.slug);
    // Managers and admins need a grant for SSH alone: theirs, or the form that asks.
    let emergency = if me.operator.role.needs_grant() {
        None
    } else {
        let db = state.stores.for_region(ws.region);
        let mine = db.support_grant_open(ws.id, me.operator.id).await?;
        Some(emergency_section(&me, ws, mine.as_ref(), db.now().await?))
    };
    let body = html! {
        main {
            h1 { (ws.name) " " small.quiet { code { (ws.slug) } } }
            @if let Some(g) = &grant { (grant_banner(&me, g, &back)) }
            dl.facts #tenant-facts {
                dt { "Status" } dd #tenant-status title=(ws.status.code()) { (ws.status.in_words()) }
                dt { "Id" } dd { code { (ws.id) } }
                dt { "Region" } dd { (ws.region.code()) }
                dt { "Tier" } dd { (ws.tier.code()) }
                dt { "Created" } dd { (moment(ws.created_at)) }
                @if let Some(ig) = &t.workspace.ignition {
                    dt { "Ignition" } dd #ignition {
                        (ig.phase.code())
                        @if let Some(step) = ig.step { ", step " (step.code()) }
                        @if let Some(e) = &ig.error { " — " span.error { (e) } }
                        " (started " (moment(ig.started_at)) ")"
                    }
                }
                @if !me.operator.role.needs_grant() {
                    dt { "Audit log" } dd { a href={ "/god/audit?tenant=" (ws.slug) } { "every event of this tenant" } }
                }
            }
            @if !t.workspace.webhooks.is_empty() {
                h2 { "Webhooks" }
                table #webhooks {
                    tr { th { "Name" } th.text { "Workflow" } th.text { "URL" } }
                    @for h in &t.workspace.webhooks {
                        tr { td { (h.name) } td.text { code { (h.workflow_id) } } td.text { code { (h.url) } } }
                    }
                }
            }
            @if t.droplets.is_empty() {
                h2 { "Droplet" }
                p.quiet #no-droplet { "This tenant has no live droplet." }
            }
            @for d in &t.droplets {
                section.tenant-droplet data-droplet=(d.droplet.id) {
                    h2 { "Droplet " a href={ "/god/droplets/" (d.droplet.id) } { code { (d.droplet.id) } } }
                    (droplet_section(&me, d, &back))
                }
            }
            @if let Some(e) = &emergency { (e) }
            h2 { "Audit trail " small.quiet { "(newest first)" } }
            @if t.audit.is_empty() {
                p.quiet { "Nothing recorded." }
            } @else {
                table #tenant-audit {
                    tr { th { "When" } th.text { "Event" } th.text { "Category" } th.text { "By" } th.text { "Subject" } }
                    @for e in &t.audit {
                        tr {
                            td { (moment(e.occurred_at)) }
                            td.text { code { (e.event) } }
                            td.text { (e.category) }
                            td.text { (actor(&e.actor)) }
                            td.text { (e.subject.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(&ws.name, Some(&me), body),
    ))
}
