//! A tenant's workspaces: the list, creating one, and one workspace's page with its
//! members, invitations and API tokens; accepting an invitation; and the same data as JSON
//! for scripts holding an API token.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::pages::{page, problem_page, region_in_words};
use super::session::{Me, link_origin};
use crate::app::tenant_access;
use crate::extract::{ApiForm, ApiQuery};
use crate::god::layout::{html_response, moment};
use crate::{AppState, Problem};

/// A page, or the refusal as a page that leads back to `back`.
fn or_page(me: &Me, back: &str, r: Result<Response, Problem>) -> Response {
    r.unwrap_or_else(|p| problem_page(Some(me), &p, back))
}

/// `GET /app`: the workspaces the tenant belongs to, and a form to start one.
pub async fn home(State(state): State<AppState>, Extension(me): Extension<Me>) -> Response {
    let r = async {
        let mine = tenant_access::my_workspaces(&state, &me.account).await?;
        let region = genesis_core::Region::parse(&me.account.region).ok();
        Ok(html_response(
            StatusCode::OK,
            page(
                "Your workspaces",
                Some(&me),
                html! {
                    main {
                        h1 { "Your workspaces" }
                        @if mine.is_empty() {
                            p #no-workspaces { "You have no workspace yet. Start one below." }
                        } @else {
                            table #workspaces {
                                tr { th.text { "Workspace" } th.text { "Status" } th.text { "Your role" } }
                                @for w in &mine {
                                    tr {
                                        td.text { a href={ "/app/workspaces/" (w.workspace_id) } { (w.name) } }
                                        td.text { (genesis_core::WorkspaceStatus::from_code(&w.status).map_or(w.status.as_str(), |s| s.in_words())) }
                                        td.text { (w.role.code()) }
                                    }
                                }
                            }
                        }
                        h2 { "Start a workspace" }
                        form #new-workspace method="post" action="/app/workspaces" {
                            input type="hidden" name="csrf" value=(me.csrf);
                            label { "Company name " input type="text" name="name" required; }
                            label { " Short name (lower case, digits, _) " input type="text" name="slug" required pattern="[a-z0-9_]{1,50}"; }
                            button type="submit" { "Create" }
                        }
                        @if let Some(r) = region {
                            p.quiet { "Its data will be stored in " (region_in_words(r)) ", where your account is." }
                        }
                    }
                },
            ),
        ))
    }
    .await;
    or_page(&me, "/app", r)
}

/// An audit event's code as a phrase (`LEAD_REPLIED` → "lead replied").
pub(crate) fn event_in_words(code: &str) -> String {
    let words = code.to_lowercase().replace('_', " ");
    let mut c = words.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The leads page's query.
#[derive(Debug, Deserialize)]
pub struct LeadsQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    after: Option<String>,
}

/// `GET /app/workspaces/{id}/leads`: the workspace's leads, newest first, 50 a page,
/// filtered by status and searched by address, name or company.
pub async fn leads(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<LeadsQuery>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let status = query.status.as_deref().unwrap_or_default();
        let q = query.q.as_deref().unwrap_or_default();
        let found = crate::app::tenant_dashboard::leads(
            &state,
            db,
            &access,
            Some(status),
            Some(q),
            query.after.as_deref(),
        )
        .await?;
        let base = format!("/app/workspaces/{}/leads", access.workspace.id);
        let next = found.next.map(|c| {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("status", status)
                .append_pair("q", q)
                .append_pair("after", &c.to_string())
                .finish();
            format!("{base}?{query}")
        });
        Ok(html_response(
            StatusCode::OK,
            page(
                "Leads",
                Some(&me),
                html! {
                    main {
                        h1 { "Leads of " (access.workspace.name) }
                        form #import-leads method="post" action={ (base) "/import" } enctype="multipart/form-data" {
                            input type="hidden" name="csrf" value=(me.csrf);
                            label { "Import a CSV file (an email column; first_name, last_name, company, status and any others are kept) "
                                input type="file" name="file" accept=".csv,text/csv"; }
                            " " button type="submit" #import { "Import" }
                        }
                        form.filters #lead-filters method="get" action=(base) {
                            label { "Search" input type="search" name="q" value=(q) placeholder="Address, name or company"; }
                            label { "Status" select name="status" {
                                option value="" selected[status.is_empty()] { "any" }
                                @for s in ["new", "contacted", "replied", "booked", "bounced", "unsubscribed"] {
                                    option value=(s) selected[status == s] { (s) }
                                }
                            } }
                            button type="submit" { "Show" }
                        }
                        @if found.items.is_empty() { p #no-leads { "No leads match." } }
                        @else {
                            table #lead-list {
                                tr { th.text { "E-mail" } th.text { "Name" } th.text { "Company" } th.text { "Status" } th.text { "Added" } }
                                @for l in &found.items {
                                    tr {
                                        td.text { (l.email) }
                                        td.text { (l.first_name.as_deref().unwrap_or_default()) " " (l.last_name.as_deref().unwrap_or_default()) }
                                        td.text { (l.company.as_deref().unwrap_or_default()) }
                                        td.text { (l.status.code()) }
                                        td.text { (moment(l.created_at)) }
                                    }
                                }
                            }
                        }
                        @if let Some(n) = &next { p { a #next-page href=(n) { "Older leads" } } }
                        p { a href=(back) { "Back to the workspace" } }
                    }
                },
            ),
        ))
    }
    .await;
    or_page(&me, &back, r)
}

/// What the workspace page was sent back with.
#[derive(Debug, Default, Deserialize)]
pub struct WorkspaceQuery {
    /// How a campaign toggle went: `now` or `later`.
    #[serde(default)]
    applied: Option<String>,
}

/// A campaign's key in words (`reply-handler` → "Reply handler").
fn campaign_in_words(key: &str) -> String {
    let words = key.replace(['-', '_'], " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The campaign toggle's form.
#[derive(Debug, Deserialize)]
pub struct CampaignForm {
    #[serde(default)]
    csrf: String,
    /// `pause` or `resume`.
    #[serde(default)]
    action: String,
}

/// `POST /app/workspaces/{id}/campaigns/{key}`: pauses or resumes a campaign, back to the
/// workspace page saying whether the engine did it now or will follow.
pub async fn campaign(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, key)): Path<(String, String)>,
    ApiForm(form): ApiForm<CampaignForm>,
) -> Response {
    let r = async {
        me.check_csrf(&form.csrf)?;
        let active = match form.action.as_str() {
            "pause" => false,
            "resume" => true,
            _ => return Err(Problem::invalid_field("action", "choose pause or resume")),
        };
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let applied = crate::app::campaigns::set_active(&state, db, &access, &key, active).await?;
        let word = match applied {
            crate::app::campaigns::Applied::Now | crate::app::campaigns::Applied::Unchanged => {
                "now"
            }
            crate::app::campaigns::Applied::Later => "later",
        };
        Ok(Redirect::to(&format!(
            "/app/workspaces/{}?applied={word}",
            access.workspace.id
        ))
        .into_response())
    }
    .await;
    or_page(&me, "/app", r)
}

/// The new-workspace form.
#[derive(Debug, Deserialize)]
pub struct NewWorkspaceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
}

/// `POST /app/workspaces`.
pub async fn create(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    ApiForm(form): ApiForm<NewWorkspaceForm>,
) -> Response {
    let r = async {
        me.check_csrf(&form.csrf)?;
        let ws =
            tenant_access::create_workspace(&state, &me.account, &form.name, &form.slug).await?;
        Ok(Redirect::to(&format!("/app/workspaces/{}", ws.id)).into_response())
    }
    .await;
    or_page(&me, "/app", r)
}

/// `GET /app/workspaces/{id}`: the workspace, its members and invitations, its API tokens
/// (owners), and the forms to invite and make tokens.
pub async fn workspace(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    Query(shown): Query<WorkspaceQuery>,
) -> Response {
    let r = async {
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let campaigns = crate::app::campaigns::campaigns(db, &access).await?;
        let (members, invitations) = tenant_access::members(db, &access).await?;
        let engine = crate::app::tenant_dashboard::engine(db, &access).await?;
        let activity = crate::app::tenant_dashboard::activity(db, &access).await?;
        let wallet_banner = crate::app::tenant_wallet::banner(db, &access).await?;
        let owner = access.owner("manage").is_ok();
        let deletion = crate::app::deletion::for_owner(db, &access).await?;
        let tokens = if owner {
            tenant_access::tokens(db, &access).await?
        } else {
            Vec::new()
        };
        let ws = &access.workspace;
        let base = format!("/app/workspaces/{}", ws.id);
        Ok(html_response(
            StatusCode::OK,
            page(
                &ws.name,
                Some(&me),
                html! {
                    main {
                        h1 { (ws.name) }
                        @if let Some(b) = &wallet_banner {
                            p.error role="alert" #wallet-banner { (b) " " a href={ (base) "/wallet" } { "Open the wallet" } }
                        }
                        dl.facts {
                            dt { "Status" } dd #status { (ws.status.in_words()) }
                            dt { "Engine" } dd #engine {
                                @match engine { Some(d) => { (d.for_tenant()) }, None => { "not started yet" } }
                            }
                            dt { "Data stored in" } dd { (region_in_words(ws.region)) }
                            dt { "Your role" } dd #role { (access.role.code()) }
                        }
                        p { a #setup href={ (base) "/setup" } { "Set up your engine" } " · " a #leads href={ (base) "/leads" } { "Leads" } " · " a #tracking href={ (base) "/tracking-domains" } { "Tracking domains" } " · " a #wallet href={ (base) "/wallet" } { "Wallet" } " · " a #webhooks href={ (base) "/webhooks" } { "Webhooks" } }
                        @if !campaigns.is_empty() {
                            h2 { "Campaigns" }
                            @match shown.applied.as_deref() {
                                Some("now") => { p #campaign-note { "Done: your engine applied it." } }
                                Some("later") => { p #campaign-note { "Saved: your engine will follow within a few minutes." } }
                                _ => {}
                            }
                            table #campaigns {
                                tr { th.text { "Campaign" } th.text { "State" } th {} }
                                @for c in &campaigns {
                                    tr data-campaign=(c.key) data-active=(c.active) {
                                        td.text { (campaign_in_words(&c.key)) }
                                        td.text { @if let Some(e) = &c.error { "in error: " (e) } @else if c.active { "active" } @else { "paused" } }
                                        td { @if owner {
                                            form.inline method="post" action={ (base) "/campaigns/" (c.key) } {
                                                input type="hidden" name="csrf" value=(me.csrf);
                                                @if c.active {
                                                    button type="submit" name="action" value="pause" { "Pause" }
                                                } @else {
                                                    button type="submit" name="action" value="resume" { "Resume" }
                                                }
                                            }
                                        } }
                                    }
                                }
                            }
                        }
                        h2 { "Recent activity" }
                        @if activity.is_empty() { p.quiet { "Nothing yet." } }
                        @else {
                            table #activity {
                                tr { th.text { "When" } th.text { "What" } th.text { "By" } }
                                @for e in &activity {
                                    tr {
                                        td.text { (moment(e.occurred_at)) }
                                        td.text { (event_in_words(&e.event)) }
                                        td.text { (crate::god::layout::actor(&e.actor)) }
                                    }
                                }
                            }
                        }
                        p { a #audit-link href={ "/app/workspaces/" (ws.id) "/audit" } { "The whole audit log" } }
                        h2 { "Members" }
                        table #members {
                            tr { th.text { "E-mail" } th.text { "Role" } th.text { "Since" } }
                            @for m in &members {
                                tr { td.text { (m.email) } td.text { (m.role.code()) } td.text { (moment(m.added_at)) } }
                            }
                            @for i in &invitations {
                                tr.quiet { td.text { (i.email) } td.text { (i.role.code()) " (invited)" } td.text { "until " (moment(i.expires_at)) } }
                            }
                        }
                        @if owner {
                            form #invite method="post" action={ (base) "/members" } {
                                input type="hidden" name="csrf" value=(me.csrf);
                                label { "Invite by e-mail " input type="email" name="email" required; }
                                label { " as " select name="role" { option value="member" { "member" } option value="owner" { "owner" } } }
                                button type="submit" { "Send invitation" }
                            }
                            h2 { "API tokens" }
                            p.quiet { "For your own scripts: " code { "Authorization: Bearer gt_…" } " on " code { "/api/v1/tenant/workspaces/" (ws.id) } "." }
                            table #tokens {
                                tr { th.text { "Name" } th.text { "Made" } th.text { "Last used" } th {} }
                                @for t in &tokens {
                                    tr {
                                        td.text { (t.name) }
                                        td.text { (moment(t.created_at)) }
                                        td.text { @if let Some(u) = t.last_used_at { (moment(u)) } @else { "never" } }
                                        td {
                                            form.inline method="post" action={ (base) "/tokens/" (t.id) "/revoke" } {
                                                input type="hidden" name="csrf" value=(me.csrf);
                                                button.danger type="submit" data-confirm={ "Revoke " (t.name) "? Scripts using it stop working at once." } { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                            form #new-token method="post" action={ (base) "/tokens" } {
                                input type="hidden" name="csrf" value=(me.csrf);
                                label { "Token name " input type="text" name="name" required maxlength="60"; }
                                button type="submit" { "Make a token" }
                            }
                            (super::support_pages::link(&base))
                            (super::export_pages::section(&me, &base))
                            (super::deletion_pages::section(&me, &base, ws.slug.as_str(), deletion.as_ref()))
                        }
                    }
                },
            ),
        ))
    }
    .await;
    or_page(&me, "/app", r)
}

/// The invitation form.
#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /app/workspaces/{id}/members`: invites by e-mail (owners).
pub async fn invite(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<InviteForm>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let origin = link_origin(&headers, &state.god)?;
        tenant_access::invite(db, &access, &form.email, &form.role, &origin).await?;
        Ok(Redirect::to(&back).into_response())
    }
    .await;
    or_page(&me, &back, r)
}

/// The new-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /app/workspaces/{id}/tokens`: makes a token and shows it, once.
pub async fn token_create(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<TokenForm>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let (made, secret) = tenant_access::token_create(db, &access, &form.name).await?;
        Ok(html_response(
            StatusCode::CREATED,
            page(
                "Your new token",
                Some(&me),
                html! {
                    main {
                        h1 { "Token " (made.name) }
                        p { "Copy it now: it is shown only this once, and we keep only a fingerprint of it." }
                        pre #new-token-value { (secret) }
                        p { a href=(back) { "Back to the workspace" } }
                    }
                },
            ),
        ))
    }
    .await;
    or_page(&me, &back, r)
}

/// A form carrying only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/workspaces/{id}/tokens/{token}/revoke`.
pub async fn token_revoke(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, token)): Path<(String, String)>,
    ApiForm(form): ApiForm<CsrfForm>,
) -> Response {
    let back = format!("/app/workspaces/{id}");
    let r = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        tenant_access::token_revoke(db, &access, &token).await?;
        Ok(Redirect::to(&back).into_response())
    }
    .await;
    or_page(&me, &back, r)
}

/// The invitation link's query.
#[derive(Debug, Deserialize)]
pub struct InvitationQuery {
    #[serde(default)]
    token: String,
}

/// `GET /app/invitations?token=…`: a button to accept (a mail scanner fetching the link
/// does not spend it).
pub async fn invitation(
    Extension(me): Extension<Me>,
    ApiQuery(q): ApiQuery<InvitationQuery>,
) -> Response {
    html_response(
        StatusCode::OK,
        page(
            "Join a workspace",
            Some(&me),
            html! {
                main {
                    h1 { "Join a workspace" }
                    p { "You are signed in as " strong { (me.account.email) } ". The invitation must be for this address." }
                    form method="post" action="/app/invitations" {
                        input type="hidden" name="csrf" value=(me.csrf);
                        input type="hidden" name="token" value=(q.token);
                        button type="submit" #accept { "Accept the invitation" }
                    }
                }
            },
        ),
    )
}

/// The acceptance form.
#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// `POST /app/invitations`: joins the workspace.
pub async fn accept(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    ApiForm(form): ApiForm<AcceptForm>,
) -> Response {
    let r = async {
        me.check_csrf(&form.csrf)?;
        match tenant_access::accept(&state, &me.account, &form.token).await? {
            Some(ws) => Ok(Redirect::to(&format!("/app/workspaces/{ws}")).into_response()),
            None => Err(Problem::with_status(
                StatusCode::GONE,
                "this invitation has expired, was already used, or is for another e-mail address",
            )),
        }
    }
    .await;
    or_page(&me, "/app", r)
}
