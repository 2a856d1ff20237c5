//! The tenant's wallet page (spec 58.1, 58.2): the balance and its banner, the money that
//! moved, the saved card, a top-up, and the automatic top-up settings. Every action is one
//! call to [`crate::app::payments`] or [`crate::app::tenant_wallet`].

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use genesis_core::money::Millicents;
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{page, problem_at, problem_page};
use super::session::Me;
use crate::app::payments;
use crate::app::tenant_access::{self, Access};
use crate::app::tenant_wallet::{self, WalletLine, WalletView};
use crate::extract::ApiForm;
use crate::god::layout::{html_response, moment};
use crate::{AppState, Problem};

/// The card tokens a simulated provider accepts (Stripe's test cards). With a real provider
/// the card form is the provider's own, and hands this page a token the same way.
const TEST_CARDS: &[(&str, &str)] = &[
    ("pm_card_visa", "Visa ending 4242"),
    ("pm_card_mastercard", "Mastercard ending 4444"),
    (
        "pm_card_chargeDeclined",
        "Visa ending 0002 (always declined)",
    ),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "Visa ending 9995 (insufficient funds)",
    ),
];

/// What the page says after an action.
#[derive(Debug, Deserialize)]
pub struct Shown {
    done: Option<String>,
}

fn dollars(m: i64) -> String {
    let m = Millicents(m);
    let s = m.to_string();
    s.trim_start_matches('$').to_owned()
}

#[allow(clippy::too_many_arguments)]
fn wallet_page(
    me: &Me,
    access: &Access,
    wallet: &WalletView,
    lines: &[WalletLine],
    offered: bool,
    done: Option<&str>,
    error: Option<&Problem>,
) -> Markup {
    let base = format!("/app/workspaces/{}/wallet", access.workspace.id);
    let owner = access.owner("manage").is_ok();
    let key = uuid::Uuid::now_v7().to_string();
    page(
        "Wallet",
        Some(me),
        html! {
            main {
                h1 { "Wallet" }
                @if let Some(b) = wallet.banner() { p.error role="alert" #wallet-banner { (b) } }
                p { "Managed services (search, e-mail verification, scraping, proxies) are paid \
                    from this prepaid balance, call by call. When it runs out they pause until \
                    you top up; nothing else stops." }
                dl.facts {
                    dt { "Balance" } dd #balance { (Millicents(wallet.balance_millicents)) }
                    dt { "Available" } dd #available { (Millicents(wallet.available_millicents)) }
                    dt { "Deposited, ever" } dd #deposits { (Millicents(wallet.lifetime_deposits_millicents)) }
                    dt { "Spent, ever" } dd #usage { (Millicents(wallet.lifetime_usage_millicents)) }
                    dt { "Card" } dd #card { @match &wallet.card { Some(c) => (c), None => "none saved" } }
                }
                @match done {
                    Some("card") => { p #wallet-note { "Card saved." } }
                    Some("top-up") => { p #wallet-note { "Payment accepted: your balance rises as soon as the payment provider confirms it, usually within seconds." } }
                    Some("auto") => { p #wallet-note { "Automatic top-up saved." } }
                    _ => {}
                }
                @if let Some(p) = error.filter(|p| p.field.is_none()) {
                    p.error role="alert" #wallet-error { (p.detail) }
                }
                @if owner && offered {
                    h2 { "Top up" }
                    form #top-up method="post" action={ (base) "/top-up" } {
                        input type="hidden" name="csrf" value=(me.csrf);
                        input type="hidden" name="key" value=(key);
                        label { "Amount in dollars " input #amount type="text" name="amount" value="50" size="8" required; }
                        button type="submit" { "Pay with the saved card" }
                    }
                    (problem_at(error, "amount"))
                    (problem_at(error, "card"))
                    h2 { "Card" }
                    form #save-card method="post" action={ (base) "/card" } {
                        input type="hidden" name="csrf" value=(me.csrf);
                        label { "Card " select #payment-method name="payment_method" {
                            @for (token, words) in TEST_CARDS { option value=(token) { (words) } }
                        } }
                        button type="submit" { "Save card" }
                    }
                    (problem_at(error, "payment_method"))
                    h2 { "Automatic top-up" }
                    form #auto-top-up method="post" action={ (base) "/auto-top-up" } {
                        input type="hidden" name="csrf" value=(me.csrf);
                        label { input #auto-enabled type="checkbox" name="enabled" value="on" checked[wallet.auto_topup_enabled]; " Top up automatically" }
                        " "
                        label { "when the balance falls under $" input #auto-threshold type="text" name="threshold" value=(dollars(wallet.auto_topup_threshold_millicents)) size="6"; }
                        " "
                        label { "by $" input #auto-amount type="text" name="amount" value=(dollars(wallet.auto_topup_amount_millicents)) size="6"; }
                        button type="submit" { "Save" }
                    }
                    (problem_at(error, "threshold"))
                    (problem_at(error, "enabled"))
                } @else if !offered {
                    p.quiet #no-payments { "Top-ups are not offered on this platform yet: ask support to credit your wallet." }
                }
                h2 { "Transactions" }
                @if lines.is_empty() { p #no-transactions { "No money has moved yet." } }
                @else {
                    table #transactions {
                        tr { th.text { "When" } th.text { "Type" } th { "Amount" } th.text { "For" } }
                        @for l in lines {
                            tr data-kind=(l.kind) {
                                td.text { (moment(l.at)) }
                                td.text { (l.kind) }
                                td { (l.amount) }
                                td.text { @if let Some(r) = &l.reference { (r) } }
                            }
                        }
                    }
                }
                p { a href={ "/app/workspaces/" (access.workspace.id) } { "Back to the workspace" } }
            }
        },
    )
}

async fn show(
    state: &AppState,
    me: &Me,
    id: &str,
    done: Option<&str>,
    error: Option<&Problem>,
) -> Result<Response, Problem> {
    let (access, db) = tenant_access::access(state, &me.caller(), id).await?;
    let wallet = tenant_wallet::view(db, &access).await?;
    let lines = tenant_wallet::lines(db, &access, None, 50).await?;
    let status = error.map_or(StatusCode::OK, |p| {
        StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST)
    });
    let offered = state.providers.payments.is_some();
    Ok(html_response(
        status,
        wallet_page(me, &access, &wallet, &lines, offered, done, error),
    ))
}

/// `GET /app/workspaces/{id}/wallet`.
pub async fn wallet(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    Query(shown): Query<Shown>,
) -> Response {
    show(&state, &me, &id, shown.done.as_deref(), None)
        .await
        .unwrap_or_else(|p| problem_page(Some(&me), &p, "/app"))
}

async fn after(
    state: &AppState,
    me: &Me,
    id: &str,
    what: &str,
    done: Result<(), Problem>,
) -> Response {
    match done {
        Ok(()) => Redirect::to(&format!("/app/workspaces/{id}/wallet?done={what}")).into_response(),
        Err(p) => show(state, me, id, None, Some(&p))
            .await
            .unwrap_or_else(|q| problem_page(Some(me), &q, "/app")),
    }
}

fn money_field(field: &'static str, text: &str) -> Result<Millicents, Problem> {
    Millicents::parse_dollars(text.trim())
        .map_err(|_| Problem::invalid_field(field, "an amount in dollars, such as 50 or 12.50"))
}

/// The card form.
#[derive(Debug, Deserialize)]
pub struct CardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    payment_method: String,
}

/// `POST /app/workspaces/{id}/wallet/card`: saves a card (owners).
pub async fn card(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<CardForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        payments::save_card(&state, db, &access, &form.payment_method)
            .await
            .map(|_| ())
    }
    .await;
    after(&state, &me, &id, "card", done).await
}

/// The top-up form.
#[derive(Debug, Deserialize)]
pub struct TopUpForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    amount: String,
}

/// `POST /app/workspaces/{id}/wallet/top-up`: charges the saved card (owners).
pub async fn top_up(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<TopUpForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let amount = money_field("amount", &form.amount)?;
        payments::top_up(&state, db, &access, amount, &form.key)
            .await
            .map(|_| ())
    }
    .await;
    after(&state, &me, &id, "top-up", done).await
}

/// The automatic top-up form.
#[derive(Debug, Deserialize)]
pub struct AutoForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    threshold: String,
    #[serde(default)]
    amount: String,
}

/// `POST /app/workspaces/{id}/wallet/auto-top-up`: the automatic top-up settings (owners).
pub async fn auto_top_up(
    State(state): State<AppState>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
    ApiForm(form): ApiForm<AutoForm>,
) -> Response {
    let done = async {
        me.check_csrf(&form.csrf)?;
        let (access, db) = tenant_access::access(&state, &me.caller(), &id).await?;
        let threshold = money_field("threshold", &form.threshold)?;
        let amount = money_field("amount", &form.amount)?;
        tenant_wallet::set_auto_top_up(
            &state,
            db,
            &access,
            form.enabled.is_some(),
            threshold,
            amount,
        )
        .await
    }
    .await;
    after(&state, &me, &id, "auto", done).await
}
