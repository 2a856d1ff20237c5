//! The wizard's pages (spec 60.1): where a workspace's setup stands, and the brand stage
//! (61.1), whose form can be filled from the company's website and is then corrected and
//! confirmed by the tenant.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::pages::{page, problem_at, problem_page};
use super::session::Me;
use crate::app::tenant_access;
use crate::app::wizard::{self, BrandForm, StageState};
use crate::extract::ApiForm;
use crate::god::layout::html_response;
use crate::{AppState, Problem};

/// The form posted by the brand stage: which button, the CSRF token, and the fields.
#[derive(Debug, serde::Deserialize)]
pub struct BrandPost {
    #[serde(default)]
    csrf: String,
    /// `fetch` (fill from the website) or `confirm`.
    #[serde(default)]
    action: String,
    #[serde(flatten)]
    form: BrandForm,
}

fn stage_word(s: StageState) -> &'static str {
    match s {
        StageState::Done => "done",
        StageState::ToDo => "to do",
    }
}

/// Where a stage has a page of its own (brand and booking are on the set-up page itself).
fn stage_page(code: &str) -> Option<&'static str> {
    match code {
        "email" => Some("/setup/email"),
        "ai_keys" => Some("/setup/ai-keys"),
        "dns" => Some("/setup/dns"),
        "ignition" => Some("/setup/ignition"),
        _ => None,
    }
}

/// The brand form, filled with `form`, with `error` next to its field.
fn brand_form(me: &Me, action: &str, form: &BrandForm, error: Option<&Problem>) -> Markup {
    let err = |field: &str| problem_at(error, field);
    html! {
        form #brand method="post" action=(action) {
            input type="hidden" name="csrf" value=(me.csrf);
            p { label { "Website " input #website type="text" name="website" value=(form.website) placeholder="https://acme.com"; } " "
                button type="submit" name="action" value="fetch" #fetch { "Fill in from my website" } }
            (err("website"))
            p { label { "Company name " input #name type="text" name="name" value=(form.name) maxlength="100"; } }
            (err("name"))
            p { label { "Logo (address of an image) " input #logo type="text" name="logo" value=(form.logo); } }
            (err("logo"))
            p { label { "What the company does" br; textarea #description name="description" rows="3" cols="70" { (form.description) } } }
            (err("description"))
            p { label { "Products or services, one per line" br; textarea #products name="products" rows="6" cols="50" { (form.products) } } }
            (err("products"))
            button type="submit" name="action" value="confirm" #confirm-brand { "Confirm" }
        }
    }
}

/// The booking stage's form as it stands: the link typed, and what its check said.
#[derive(Debug, Default)]
struct BookingView {
    url: String,
    warnings: Vec<String>,
    error: Option<Problem>,
}

fn booking_form(me: &Me, action: &str, view: &BookingView) -> Markup {
    html! {
        form #booking method="post" action=(action) {
            input type="hidden" name="csrf" value=(me.csrf);
            p { label { "Booking link " input #booking_url type="text" name="booking_url" value=(view.url)
                placeholder="https://calendly.com/you/30min" size="50"; } }
            (problem_at(view.error.as_ref(), "booking_url"))
            @if view.warnings.is_empty() {
                button type="submit" #save-booking { "Check and save" }
            } @else {
                ul #booking-warnings { @for w in &view.warnings { li { (w) } } }
                input type="hidden" name="accept" value="1";
                button type="submit" #save-booking-anyway { "Save anyway" }
                " or change the link and save again."
            }
        }
    }
}

fn setup_page(
    me: &Me,
    access: &tenant_access::Access,
    wiz: &wizard::Wizard,
    form: &BrandForm,
    error: Option<&Problem>,
    note: Option<&str>,
) -> Markup {
    let booking = BookingView {
        url: wiz.booking.clone().unwrap_or_default(),
        ..BookingView::default()
    };
    setup_page_with(me, access, wiz, form, error, note, &booking)
}

fn setup_page_with(
    me: &Me,
    access: &tenant_access::Access,
    wiz: &wizard::Wizard,
    form: &BrandForm,
    error: Option<&Problem>,
    note: Option<&str>,
    booking: &BookingView,
) -> Markup {
    let base = format!("/app/workspaces/{}", access.workspace.id);
    page(
        "Set up your engine",
        Some(me),
        html! {
            main {
                h1 { "Set up " (access.workspace.name) }
                ol #stages {
                    @for (code, label, state) in &wiz.stages {
                        li data-stage=(code) data-state=(stage_word(*state)) {
                            @match stage_page(code) {
                                Some(path) => {
                                    a href={ (base) (path) } { (label) }
                                }
                                None => { (label) }
                            }
                            " — " (stage_word(*state))
                            @for svc in wiz.services.for_stage(code) {
                                br;
                                span.quiet data-service=(svc.id) {
                                    (svc.name) ": " (svc.cost_to_tenant())
                                }
                            }
                        }
                    }
                }
                h2 { "Set up for you" }
                p.quiet { "These run without any setup; the wallet pays for what is used." }
                ul #automatic {
                    @for svc in wiz.services.automatic() {
                        li data-service=(svc.id) { (svc.name) " — " (svc.cost_to_tenant()) }
                    }
                }
                h2 { "Brand" }
                @if let Some(n) = note { p.quiet #note { (n) } }
                @if let (Some(b), None) = (&wiz.brand, error) {
                    p #brand-confirmed { "Confirmed: " strong { (b.name.as_deref().unwrap_or_default()) }
                        @match b.products.len() { 0 => {}, 1 => { ", 1 product" }, n => { ", " (n) " products" } } "." }
                }
                @if access.owner("set up").is_ok() {
                    (brand_form(me, &format!("{base}/setup/brand"), form, error))
                    h2 { "Booking link" }
                    @if let (Some(url), true) = (&wiz.booking, booking.warnings.is_empty() && booking.error.is_none()) {
                        p #booking-confirmed { "Prospects book through " a href=(url) { (url) } "." }
                    }
                    (booking_form(me, &format!("{base}/setup/booking"), booking))
                } @else {
                    p { "Only an owner of this workspace can set it up." }
                }
                p { a href=(base) { "Back to the workspace" } }
            }
        },
    )
}

/// The checks every wizard form passes first: its CSRF token, the caller's membership
/// (a 404 otherwise), and ownership.
async fn owner_of<'s>(
    state: &'s AppState,
    me: &Me,
    csrf: &str,
    id: &str,
) -> Result<(tenant_access::Access, &'s genesis_store::Database), Problem> {
    me.check_csrf(csrf)?;
    let (access, db) = tenant_access::access(state, &me.caller(), id).await?;
    access.owner("set the workspace up")?;
    Ok((access, db))
}

/// The brand form as last confirmed (empty before).
fn confirmed_form(wiz: &wizard::Wizard) -> BrandForm {
    wiz.brand
        .as_ref()
        .map(|b| BrandForm::from_brand("", b))
        .unwrap_or_default()
}

/// `GET /app/workspaces/{id}/setup`: the stages, and the brand form as last confirmed.
pub async fn setup(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    let r = async {
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let wiz = wizard::wizard(&state, db, &access).await?;
        let form = confirmed_form(&wiz);
        Ok(html_response(
            StatusCode::OK,
            setup_page(&me, &access, &wiz, &form, None, None),
        ))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}

/// `POST /app/workspaces/{id}/setup/brand`: `fetch` fills the form from the website (the
/// tenant then corrects it); `confirm` saves it. Errors come back on the form, by field,
/// with everything typed kept.
pub async fn brand(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(post): ApiForm<BrandPost>,
) -> Response {
    let r = async {
        let (access, db) = owner_of(&state, &me, &post.csrf, &id).await?;
        let (status, form, error, note) = match post.action.as_str() {
            "fetch" => match crate::app::brand::scrape_for(&state, &post.form.website).await {
                Ok(draft) => (
                    StatusCode::OK,
                    BrandForm::from_brand(&post.form.website, &draft),
                    None,
                    Some("Filled in from your website: check every field, then confirm."),
                ),
                Err(p) => (StatusCode::UNPROCESSABLE_ENTITY, post.form, Some(p), None),
            },
            "confirm" => match wizard::confirm_brand(db, &access, &post.form).await {
                Ok(_) => {
                    return Ok(Redirect::to(&format!(
                        "/app/workspaces/{}/setup",
                        access.workspace.id
                    ))
                    .into_response());
                }
                Err(p) if p.field.is_some() => {
                    (StatusCode::UNPROCESSABLE_ENTITY, post.form, Some(p), None)
                }
                Err(p) => return Err(p),
            },
            _ => return Err(Problem::invalid_field("action", "choose fetch or confirm")),
        };
        // Read only when the page is shown again (a confirmation redirects).
        let wiz = wizard::wizard(&state, db, &access).await?;
        Ok(html_response(
            status,
            setup_page(&me, &access, &wiz, &form, error.as_ref(), note),
        ))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}

/// The booking stage's form.
#[derive(Debug, serde::Deserialize)]
pub struct BookingPost {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    booking_url: String,
    /// Set by "Save anyway": the warnings were read.
    #[serde(default)]
    accept: Option<String>,
}

/// `POST /app/workspaces/{id}/setup/booking`: checks the link; saves it when nothing is
/// doubtful, or when the tenant saw the warnings and saves anyway. A link that cannot be a
/// booking page is refused by name.
pub async fn booking(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(post): ApiForm<BookingPost>,
) -> Response {
    let r = async {
        let (access, db) = owner_of(&state, &me, &post.csrf, &id).await?;
        let (status, view) = match crate::app::booking::check_for(&state, &post.booking_url).await {
            Ok(check) if check.warnings.is_empty() || post.accept.is_some() => {
                wizard::confirm_booking(db, &access, &check).await?;
                return Ok(
                    Redirect::to(&format!("/app/workspaces/{}/setup", access.workspace.id))
                        .into_response(),
                );
            }
            Ok(check) => (
                StatusCode::OK,
                BookingView {
                    url: check.url,
                    warnings: check.warnings,
                    error: None,
                },
            ),
            Err(p) if p.field.is_some() => (
                StatusCode::UNPROCESSABLE_ENTITY,
                BookingView {
                    url: post.booking_url,
                    warnings: Vec::new(),
                    error: Some(p),
                },
            ),
            Err(p) => return Err(p),
        };
        let wiz = wizard::wizard(&state, db, &access).await?;
        let form = confirmed_form(&wiz);
        Ok(html_response(
            status,
            setup_page_with(&me, &access, &wiz, &form, None, None, &view),
        ))
    }
    .await;
    r.unwrap_or_else(|p: Problem| problem_page(Some(&me), &p, "/app"))
}
