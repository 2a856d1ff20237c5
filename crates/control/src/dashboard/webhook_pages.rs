//! The tenant's webhooks page (spec 65.4): the endpoints their systems listen on, the form
//! to add one (its signing secret is shown once, on the page that answers the form), and
//! the deliveries that failed for good, each with "Send again". Every action is one call to
//! [`crate::app::outbound_webhooks`]; changes are for owners.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use genesis_store::DeliveryRow;
use genesis_store::outbound_webhooks::EVENTS;
use maud::{Markup, html};

use super::pages::{page, problem_at, problem_page};
use super::session::Me;
use crate::app::outbound_webhooks::{self as hooks, EndpointRequest, EndpointView};
use crate::app::tenant_access::{self, Access};
use crate::extract::ApiForm;
use crate::god::layout::{html_response, moment};
use crate::{AppState, Problem};

/// What each event means, in the tenant's words.
fn event_words(event: &str) -> &'static str {
    match event {
        "tenant.active" => "your engine started",
        "tenant.hibernated" => "your engine hibernated",
        "tenant.woken" => "your engine woke up",
        "lead.created" => "a lead was added",
        "lead.replied" => "a lead replied",
        "wallet.low" => "your wallet is running low",
        "wallet.empty" => "your wallet is empty (managed services paused)",
        "campaign.error" => "a campaign's workflow stopped",
        _ => "",
    }
}

/// A secret to show on this page, once.
struct Shown<'a> {
    url: &'a str,
    secret: &'a str,
    note: String,
}

struct View<'a> {
    access: &'a Access,
    endpoints: &'a [EndpointView],
    dead: &'a [DeliveryRow],
    created: Option<Shown<'a>>,
    typed: Option<&'a EndpointRequest>,
    error: Option<&'a Problem>,
}

fn webhooks_page(me: &Me, v: &View<'_>) -> Markup {
    let base = format!("/app/workspaces/{}/webhooks", v.access.workspace.id);
    let owner = v.access.owner("manage webhooks").is_ok();
    let chosen = |e: &str| v.typed.is_some_and(|t| t.events.iter().any(|x| x == e));
    page(
        "Webhooks",
        Some(me),
        html! {
            main {
                h1 { "Webhooks" }
                p { "Your own systems can hear what happens here: each event is POSTed to the \
                     addresses below as JSON, signed per " a href="https://www.standardwebhooks.com/" { "Standard Webhooks" }
                    " (headers " code { "webhook-id" } ", " code { "webhook-timestamp" } ", " code { "webhook-signature" }
                    "). A delivery that fails is tried again after 5 seconds, 30 seconds and 5 minutes." }
                @if let Some(c) = &v.created {
                    section #new-secret role="status" {
                        h2 { "Keep this secret now" }
                        p { "Verify every delivery to " code { (c.url) } " with this secret. It is not shown again. " (c.note) }
                        p { code #secret { (c.secret) } }
                    }
                }
                @if let Some(p) = v.error.filter(|p| p.field.is_none()) {
                    p.error role="alert" #webhooks-error { (p.detail) }
                }
                @if v.endpoints.is_empty() { p #no-endpoints { "No endpoint yet." } }
                @else {
                    table #endpoints {
                        tr { th.text { "Address" } th.text { "Events" } th.text { "Note" } th.text { "Added" } th {} }
                        @for e in v.endpoints {
                            tr data-id=(e.id) {
                                td.text { code { (e.url) } }
                                td.text { (e.events.join(", ")) }
                                td.text { (e.description) }
                                td.text { (moment(e.created_at)) }
                                td { @if owner {
                                    @if e.secret_shown {
                                        form.inline method="post" action={ (base) "/" (e.id) "/rotate" } {
                                            input type="hidden" name="csrf" value=(me.csrf);
                                            button type="submit" data-confirm="Renew the signing secret? The old one keeps signing for 24 hours." { "Renew secret" }
                                        }
                                    } @else {
                                        form.inline method="post" action={ (base) "/" (e.id) "/secret" } {
                                            input type="hidden" name="csrf" value=(me.csrf);
                                            button type="submit" { "Show the renewed secret" }
                                        }
                                    }
                                    " "
                                    form.inline method="post" action={ (base) "/" (e.id) "/remove" } {
                                        input type="hidden" name="csrf" value=(me.csrf);
                                        button.danger type="submit" data-confirm="Remove this endpoint? Nothing more is sent to it." { "Remove" }
                                    }
                                } }
                            }
                        }
                    }
                }
                @if owner {
                    form #add-endpoint method="post" action=(base) {
                        input type="hidden" name="csrf" value=(me.csrf);
                        label { "Address " input #url type="url" name="url" size="50" required
                            placeholder="https://hooks.yourcompany.com/genesis"
                            value=(v.typed.map(|t| t.url.as_str()).unwrap_or("")); }
                        (problem_at(v.error, "url"))
                        fieldset {
                            legend { "Events" }
                            @for e in EVENTS {
                                label.check {
                                    input type="checkbox" name={ "event:" (e) } value="on" checked[chosen(e)];
                                    " " code { (e) } " — " (event_words(e))
                                }
                            }
                        }
                        (problem_at(v.error, "events"))
                        label { "Note " input #description type="text" name="description" size="40" maxlength="200"
                            value=(v.typed.and_then(|t| t.description.as_deref()).unwrap_or("")); }
                        button type="submit" { "Add endpoint" }
                    }
                }
                h2 { "Deliveries that failed" }
                @if v.dead.is_empty() { p #no-dead { "None: every event reached its endpoint, or is still being tried." } }
                @else {
                    table #dead-deliveries {
                        tr { th.text { "Event" } th.text { "Written" } th.text { "Why" } th {} }
                        @for d in v.dead {
                            tr data-id=(d.id) {
                                td.text { code { (d.event) } }
                                td.text { (moment(d.created_at)) }
                                td.text { (d.last_error.as_deref().unwrap_or("")) }
                                td { @if owner {
                                    form.inline method="post" action={ (base) "/deliveries/" (d.id) "/replay" } {
                                        input type="hidden" name="csrf" value=(me.csrf);
                                        button type="submit" { "Send again" }
                                    }
                                } }
                            }
                        }
                    }
                }
                p { a href={ "/app/workspaces/" (v.access.workspace.id) } { "Back to the workspace" } }
            }
        },
    )
}

async fn show(
    state: &AppState,
    me: &Me,
    id: &str,
    created: Option<Shown<'_>>,
    typed: Option<&EndpointRequest>,
    error: Option<&Problem>,
) -> Result<Response, Problem> {
    let (access, db) = tenant_access::access(state, &me.caller(), id).await?;
    let endpoints = hooks::list(db, access.workspace.id).await?;
    let dead = hooks::deliveries(db, access.workspace.id, true).await?;
    let status = error.map_or(StatusCode::OK, |p| {
        StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST)
    });
    Ok(html_response(
        status,
        webhooks_page(
            me,
            &View {
                access: &access,
                endpoints: &endpoints,
                dead: &dead,
                created,
                typed,
                error,
            },
        ),
    ))
}

/// `GET /app/workspaces/{id}/webhooks`.
pub async fn list(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    show(&state, &me, &id, None, None, None)
        .await
        .unwrap_or_else(|p| problem_page(Some(&me), &p, "/app"))
}

/// `POST /app/workspaces/{id}/webhooks`: adds an endpoint (owners); the answer shows its
/// secret, once.
pub async fn add(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<HashMap<String, String>>,
) -> Response {
    let req = EndpointRequest {
        url: form.get("url").cloned().unwrap_or_default(),
        events: EVENTS
            .iter()
            .filter(|e| form.contains_key(&format!("event:{e}")))
            .map(|e| (*e).to_owned())
            .collect(),
        description: form.get("description").filter(|d| !d.is_empty()).cloned(),
    };
    let done = async {
        me.check_csrf(form.get("csrf").map_or("", String::as_str))?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        access.owner("add webhook endpoints")?;
        hooks::register(&state, db, access.workspace.id, &req, &access.actor).await
    }
    .await;
    let shown = match &done {
        Ok(created) => {
            let once = Shown {
                url: &created.endpoint.url,
                secret: &created.secret,
                note: String::new(),
            };
            show(&state, &me, &id, Some(once), None, None).await
        }
        Err(p) => show(&state, &me, &id, None, Some(&req), Some(p)).await,
    };
    shown.unwrap_or_else(|p| problem_page(Some(&me), &p, "/app"))
}

/// The forms of the buttons.
#[derive(Debug, serde::Deserialize)]
pub struct ButtonForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /app/workspaces/{id}/webhooks/{endpoint}/remove` (owners).
pub async fn remove(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, endpoint)): Path<(String, String)>,
    ApiForm(form): ApiForm<ButtonForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        access.owner("remove webhook endpoints")?;
        let endpoint =
            uuid::Uuid::parse_str(&endpoint).map_err(|_| Problem::not_found("webhook endpoint"))?;
        hooks::remove(db, access.workspace.id, endpoint, &access.actor).await
    }
    .await;
    after(&state, &me, &id, done).await
}

/// `POST /app/workspaces/{id}/webhooks/{endpoint}/{rotate|secret}` (owners): renews the
/// secret, or shows one renewed on schedule; either way the page shows it, once.
pub async fn secret(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, endpoint, action)): Path<(String, String, String)>,
    ApiForm(form): ApiForm<ButtonForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        access.owner("change webhook secrets")?;
        let endpoint =
            uuid::Uuid::parse_str(&endpoint).map_err(|_| Problem::not_found("webhook endpoint"))?;
        let ws = access.workspace.id;
        match action.as_str() {
            "rotate" => hooks::rotate(&state, db, ws, endpoint, &access.actor)
                .await
                .map(|r| {
                    let note = format!(
                        "The previous secret keeps signing beside it until {}.",
                        r.previous_valid_until.format("%Y-%m-%d %H:%M UTC")
                    );
                    (r.endpoint.url, r.secret, note)
                }),
            "secret" => {
                let url = hooks::list(db, ws)
                    .await?
                    .into_iter()
                    .find(|e| e.id == endpoint)
                    .map(|e| e.url)
                    .unwrap_or_default();
                hooks::reveal(&state, db, ws, endpoint, &access.actor)
                    .await
                    .map(|r| (url, r.secret, String::new()))
            }
            _ => Err(Problem::not_found("page")),
        }
    }
    .await;
    let shown = match &done {
        Ok((url, secret, note)) => {
            let once = Shown {
                url,
                secret,
                note: note.clone(),
            };
            show(&state, &me, &id, Some(once), None, None).await
        }
        Err(p) => show(&state, &me, &id, None, None, Some(p)).await,
    };
    shown.unwrap_or_else(|p| problem_page(Some(&me), &p, "/app"))
}

/// `POST /app/workspaces/{id}/webhooks/deliveries/{delivery}/replay` (owners).
pub async fn replay(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path((id, delivery)): Path<(String, String)>,
    ApiForm(form): ApiForm<ButtonForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        access.owner("send deliveries again")?;
        let delivery = uuid::Uuid::parse_str(&delivery)
            .map_err(|_| Problem::not_found("dead-lettered delivery"))?;
        hooks::replay(
            &state,
            db,
            Some(access.workspace.id),
            delivery,
            &access.actor,
        )
        .await
    }
    .await;
    after(&state, &me, &id, done).await
}

async fn after(state: &AppState, me: &Me, id: &str, done: Result<(), Problem>) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/app/workspaces/{id}/webhooks")).into_response(),
        Err(p) => show(state, me, id, None, None, Some(&p))
            .await
            .unwrap_or_else(|q| problem_page(Some(me), &q, "/app")),
    }
}
