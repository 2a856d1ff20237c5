//! The wizard's pages that connect the tenant's accounts elsewhere: Gmail (stage 3, through
//! Google's consent page and back), the AI keys (stage 4) and DNS (stage 5, through the DNS
//! provider, then checked). Errors come back on the page, by field, in words.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::pages::{page, problem_at, problem_page};
use super::session::{Me, link_origin};
use crate::app::ai_keys::{AiKeysForm, RELEVANCE_REGIONS};
use crate::app::dns::{self, PlannedRecord, RecordState};
use crate::app::gmail::{self, CallbackQuery};
use crate::app::tenant_access::{self, Access};
use crate::app::wizard::{self, Wizard};
use crate::extract::ApiForm;
use crate::god::layout::html_response;
use crate::{AppState, Problem};

fn back_links(base: &str) -> Markup {
    html! { p { a href={ (base) "/setup" } { "Back to the set-up" } " · " a href=(base) { "The workspace" } } }
}

fn email_page(me: &Me, access: &Access, wiz: &Wizard, error: Option<&Problem>) -> Markup {
    let base = format!("/app/workspaces/{}", access.workspace.id);
    let name = wiz
        .email
        .as_ref()
        .map(|(_, n)| n.clone())
        .unwrap_or_default();
    page(
        "Connect Gmail",
        Some(me),
        html! {
            main {
                h1 { "Email: connect Gmail" }
                p { "Your engine sends its emails from your Gmail. Genesis asks Google for one \
                     permission: to send email on your behalf. It never reads your mailbox." }
                @if let Some((address, name)) = &wiz.email {
                    p #gmail-connected { "Connected: emails go out from " strong { (address) } " as " strong { (name) } "." }
                }
                @if let Some(p) = error.filter(|p| p.field.as_deref() != Some("sender_name")) {
                    p.error role="alert" #gmail-error { (p.detail.strip_prefix("gmail: ").unwrap_or(&p.detail)) }
                }
                form #connect-gmail method="post" action={ (base) "/setup/email" } {
                    input type="hidden" name="csrf" value=(me.csrf);
                    p { label { "Your name, as recipients will see it " input #sender_name type="text" name="sender_name" value=(name) maxlength="80"; } }
                    (problem_at(error, "sender_name"))
                    button type="submit" #connect { @if wiz.email.is_some() { "Connect another Gmail" } @else { "Connect Gmail" } }
                }
                (back_links(&base))
            }
        },
    )
}

/// The form posted by "Connect Gmail".
#[derive(Debug, serde::Deserialize)]
pub struct ConnectPost {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sender_name: String,
}

/// A stage's page as it stands: the caller's membership checked (404 otherwise), the
/// wizard read, the page drawn by `draw`.
async fn stage_page(
    state: &AppState,
    me: &Me,
    id: &str,
    draw: impl FnOnce(&Access, &Wizard) -> Response,
) -> Response {
    let r = async {
        let (access, db) = tenant_access::access(state, &me.caller(), id).await?;
        let wiz = wizard::wizard(state, db, &access).await?;
        Ok(draw(&access, &wiz))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(me), &p, "/app"))
}

/// The email page: its policy lets its form lead on to Google's consent page.
fn email_response(state: &AppState, status: StatusCode, body: Markup) -> Response {
    let mut resp = html_response(status, body);
    let google = state
        .providers
        .google
        .as_ref()
        .and_then(|g| url::Url::parse(&g.auth_url).ok())
        .map(|u| u.origin().ascii_serialization());
    if let Some(policy) = google
        .as_deref()
        .and_then(crate::front_door::policy_with_form_action_to)
    {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_SECURITY_POLICY, policy);
    }
    resp
}

/// `GET /app/workspaces/{id}/setup/email`.
pub async fn email(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    stage_page(&state, &me, &id, |access, wiz| {
        email_response(&state, StatusCode::OK, email_page(&me, access, wiz, None))
    })
    .await
}

/// `POST /app/workspaces/{id}/setup/email`: off to Google's consent page.
pub async fn connect(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiForm(post): ApiForm<ConnectPost>,
) -> Response {
    let r = async {
        me.check_csrf(&post.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let origin = link_origin(&headers, &state.god)?;
        match gmail::start(&state, &access, &post.sender_name, &origin).await {
            Ok(url) => Ok(Redirect::to(&url).into_response()),
            Err(p) if p.field.is_some() => {
                let wiz = wizard::wizard(&state, db, &access).await?;
                Ok(email_response(
                    &state,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    email_page(&me, &access, &wiz, Some(&p)),
                ))
            }
            Err(p) => Err(p),
        }
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}

/// `GET /app/oauth/google/callback`: Google sends the browser back here. Success goes on to
/// the set-up; a refusal is said on the email stage of its workspace (or on its own page
/// when the link names no flow of this person's).
pub async fn google_callback(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let origin = match link_origin(&headers, &state.god) {
        Ok(o) => o,
        Err(p) => return problem_page(Some(&me), &p, "/app"),
    };
    match gmail::callback(&state, &me.account, &q, &origin).await {
        Ok((ws, _)) => Redirect::to(&format!("/app/workspaces/{ws}/setup")).into_response(),
        Err(refusal) => {
            let shown = async {
                let ws = refusal.workspace.ok_or(())?;
                let (access, db) = tenant_access::access(&state, &me.caller(), &ws.to_string())
                    .await
                    .map_err(|_| ())?;
                let wiz = wizard::wizard(&state, db, &access).await.map_err(|_| ())?;
                Ok::<_, ()>(email_response(
                    &state,
                    StatusCode::from_u16(refusal.problem.status)
                        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                    email_page(&me, &access, &wiz, Some(&refusal.problem)),
                ))
            }
            .await;
            shown.unwrap_or_else(|()| problem_page(Some(&me), &refusal.problem, "/app"))
        }
    }
}

fn ai_keys_page(
    me: &Me,
    access: &Access,
    wiz: &Wizard,
    form: &AiKeysForm,
    error: Option<&Problem>,
) -> Markup {
    let base = format!("/app/workspaces/{}", access.workspace.id);
    let saved = |k: &str| {
        wiz.ai_keys
            .as_ref()
            .and_then(|v| v[k].as_str().map(str::to_owned))
    };
    page(
        "AI keys",
        Some(me),
        html! {
            main {
                h1 { "AI keys" }
                p { "Your engine writes with your own AI accounts. Keys are checked with each \
                     provider, then kept encrypted; no page shows them again." }
                @if let Some(openai) = saved("openai") {
                    p #ai-keys-saved { "Saved: OpenAI " code { (openai) }
                        @if let Some(a) = saved("anthropic") { ", Anthropic " code { (a) } }
                        @if wiz.ai_keys.as_ref().is_some_and(|v| v["relevance"].is_object()) { ", Relevance AI" }
                        "." }
                }
                @if let Some(p) = error.filter(|p| p.field.is_none()) {
                    p.error role="alert" #ai-keys-error { (p.detail) }
                }
                form #ai-keys method="post" action={ (base) "/setup/ai-keys" } autocomplete="off" {
                    input type="hidden" name="csrf" value=(me.csrf);
                    p { label { "OpenAI API key (required) " input #openai_key type="password" name="openai_key" size="60"; } }
                    (problem_at(error, "openai_key"))
                    p { label { "Anthropic API key (optional) " input #anthropic_key type="password" name="anthropic_key" size="60"; } }
                    (problem_at(error, "anthropic_key"))
                    fieldset {
                        legend { "Relevance AI (optional)" }
                        p { label { "Region "
                            select #relevance_region name="relevance_region" {
                                option value="" { "—" }
                                @for (code, place) in RELEVANCE_REGIONS {
                                    option value=(code) selected[form.relevance_region == code] { (place) " (" (code) ")" }
                                }
                            } } }
                        (problem_at(error, "relevance_region"))
                        p { label { "Project id " input #relevance_project type="text" name="relevance_project" value=(form.relevance_project) size="40"; } }
                        (problem_at(error, "relevance_project"))
                        p { label { "API key " input #relevance_key type="password" name="relevance_key" size="50"; } }
                        (problem_at(error, "relevance_key"))
                    }
                    button type="submit" #save-ai-keys { "Check and save" }
                }
                (back_links(&base))
            }
        },
    )
}

/// The AI keys form as posted.
#[derive(Debug, serde::Deserialize)]
pub struct AiKeysPost {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: AiKeysForm,
}

/// `GET /app/workspaces/{id}/setup/ai-keys`.
pub async fn ai_keys(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    stage_page(&state, &me, &id, |access, wiz| {
        html_response(
            StatusCode::OK,
            ai_keys_page(&me, access, wiz, &AiKeysForm::default(), None),
        )
    })
    .await
}

/// `POST /app/workspaces/{id}/setup/ai-keys`: checks every key live, saves them all or none.
pub async fn save_ai_keys(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(post): ApiForm<AiKeysPost>,
) -> Response {
    let r = async {
        me.check_csrf(&post.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        match crate::app::ai_keys::confirm(&state, db, &access, &post.form).await {
            Ok(_) => Ok(
                Redirect::to(&format!("/app/workspaces/{}/setup", access.workspace.id))
                    .into_response(),
            ),
            Err(p) if p.field.is_some() || p.status == 503 => {
                let wiz = wizard::wizard(&state, db, &access).await?;
                // Keys never go back into a page; the region and project do.
                let kept = AiKeysForm {
                    relevance_region: post.form.relevance_region.clone(),
                    relevance_project: post.form.relevance_project.clone(),
                    ..AiKeysForm::default()
                };
                Ok(html_response(
                    StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                    ai_keys_page(&me, &access, &wiz, &kept, Some(&p)),
                ))
            }
            Err(p) => Err(p),
        }
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}

fn state_word(s: &RecordState) -> &'static str {
    match s {
        RecordState::Found => "found",
        RecordState::Missing => "missing",
        RecordState::Wrong(_) => "wrong",
    }
}

fn dns_page(
    me: &Me,
    access: &Access,
    wiz: &Wizard,
    checked: Option<&[(PlannedRecord, RecordState)]>,
    typed: Option<&str>,
    error: Option<&Problem>,
) -> Markup {
    let base = format!("/app/workspaces/{}", access.workspace.id);
    let action = format!("{base}/setup/dns");
    let suggested = typed.map(str::to_owned).or_else(|| {
        wiz.dns.as_ref().map(|d| d.domain.clone()).or_else(|| {
            dns::suggested_domain(
                wiz.email.as_ref().map(|(a, _)| a.as_str()),
                wiz.website.as_deref(),
            )
        })
    });
    page(
        "DNS",
        Some(me),
        html! {
            main {
                h1 { "DNS: let receivers trust your emails" }
                p { "Three records on your domain tell receiving servers that your engine's \
                     emails are really yours: SPF, DKIM and DMARC." }
                @if wiz.done("dns") { p #dns-configured { strong { "DNS configured." } " Every record is in place." } }
                @if let Some(p) = error.filter(|p| p.field.as_deref() != Some("domain")) {
                    p.error role="alert" #dns-error { (p.detail) }
                }
                form #dns-domain method="post" action=(action) {
                    input type="hidden" name="csrf" value=(me.csrf);
                    input type="hidden" name="action" value="domain";
                    p { label { "The domain your emails come from " input #domain type="text" name="domain" value=(suggested.unwrap_or_default()) placeholder="acme.com"; } " "
                        button type="submit" #choose-domain { @if wiz.dns.is_some() { "Use another domain" } @else { "Continue" } } }
                    (problem_at(error, "domain"))
                }
                @if let Some(plan) = &wiz.dns {
                    h2 { "Records for " (plan.domain) }
                    table #dns-records {
                        tr { th { "Purpose" } th { "Type" } th { "Host" } th { "Value" } th { "State" } }
                        @for r in plan.records() {
                            @let state = checked.and_then(|c| c.iter().find(|(p, _)| p.purpose == r.purpose).map(|(_, s)| s.clone()));
                            tr data-purpose=(r.purpose) data-state=(state.as_ref().map_or("unchecked", state_word)) {
                                td { (r.purpose) } td { (r.kind) } td { code { (r.host) } }
                                td { code.wrap { (r.value) } }
                                td { @match &state {
                                    None => { "not checked yet" }
                                    Some(RecordState::Found) => { "found" }
                                    Some(RecordState::Missing) => { "missing" }
                                    Some(RecordState::Wrong(found)) => { "wrong: found " code { (found) } }
                                } }
                            }
                        }
                    }
                    form.inline method="post" action=(action) {
                        input type="hidden" name="csrf" value=(me.csrf);
                        button type="submit" name="action" value="apply" #apply-dns { "Set up automatically with my DNS provider" }
                        " "
                        button type="submit" name="action" value="check" #check-dns { "Check again" }
                    }
                }
                (back_links(&base))
            }
        },
    )
}

/// The DNS stage's form.
#[derive(Debug, serde::Deserialize)]
pub struct DnsPost {
    #[serde(default)]
    csrf: String,
    /// `domain` (choose it), `apply` (through the provider, then check) or `check`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    domain: String,
}

/// `GET /app/workspaces/{id}/setup/dns`.
pub async fn dns_stage(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    stage_page(&state, &me, &id, |access, wiz| {
        html_response(StatusCode::OK, dns_page(&me, access, wiz, None, None, None))
    })
    .await
}

/// `POST /app/workspaces/{id}/setup/dns`: choose the domain, apply the records through the
/// provider, or check them; the page shows each record's state.
pub async fn dns_post(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(post): ApiForm<DnsPost>,
) -> Response {
    let r = async {
        me.check_csrf(&post.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let outcome: Result<Option<Vec<(PlannedRecord, RecordState)>>, Problem> = async {
            match post.action.as_str() {
                "domain" => {
                    dns::choose_domain(&state, db, &access, &post.domain).await?;
                    Ok(None)
                }
                "apply" | "check" => {
                    let wiz = wizard::wizard(&state, db, &access).await?;
                    let plan = wiz.dns.ok_or_else(|| {
                        Problem::invalid_field("domain", "choose your domain first")
                    })?;
                    if post.action == "apply" {
                        dns::apply(&state, &access, &plan).await?;
                    }
                    Ok(Some(
                        dns::check_and_confirm(&state, db, &access, &plan).await?,
                    ))
                }
                _ => Err(Problem::invalid_field(
                    "action",
                    "choose domain, apply or check",
                )),
            }
        }
        .await;
        let wiz = wizard::wizard(&state, db, &access).await?;
        let (status, checked, error) = match outcome {
            Ok(c) => (StatusCode::OK, c, None),
            Err(p) if p.field.is_some() || p.status == 503 => (
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                None,
                Some(p),
            ),
            Err(p) => return Err(p),
        };
        let typed = (post.action == "domain" && error.is_some()).then_some(post.domain.as_str());
        Ok(html_response(
            status,
            dns_page(
                &me,
                &access,
                &wiz,
                checked.as_deref(),
                typed,
                error.as_ref(),
            ),
        ))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}
