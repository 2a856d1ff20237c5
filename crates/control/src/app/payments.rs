//! Money into wallets (spec 58.1): a saved card, top-ups the tenant asks for, automatic
//! top-ups when the balance falls under the tenant's threshold, and the payment provider's
//! webhook that confirms each charge.
//!
//! The provider speaks Stripe's API: customers, payment methods attached from the card form's
//! token, and PaymentIntents confirmed off-session. **Only the webhook credits a wallet**
//! (`payment_intent.succeeded`), never the answer to our own request: the webhook is the one
//! message that arrives for every charge, whoever started it and however the request ended.
//! The credit's ledger id is derived from the PaymentIntent's id, so a webhook delivered
//! twice (the provider retries until it hears 2xx) credits once. A delivery is refused unless
//! its `Stripe-Signature` holds under our endpoint secret within the tolerance
//! ([`crate::payment_signature`]), and a signature already seen is refused as a replay.
//!
//! Written over reqwest rather than a Stripe SDK: four form-encoded calls, and the SDKs carry
//! the whole API's generated types.

use std::time::Duration;

use genesis_core::WorkspaceId;
use genesis_core::money::{Millicents, TransferKind};
use genesis_store::Database;
use genesis_store::ledger::TransferOutcome;
use genesis_store::wallet_payments::{SavedCard, TopUpClaim};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::tenant_access::Access;
use super::wallet::{Wallets, payment_required};
use crate::payment_signature::{self, SignatureError};
use crate::{AppState, Problem};

/// The smallest top-up, as the wallet's automatic top-up amount is held to.
pub const MIN_TOP_UP: Millicents = Millicents::from_dollars(5);
/// The largest top-up at once.
pub const MAX_TOP_UP: Millicents = Millicents::from_dollars(10_000);
/// How far a webhook's timestamp may be from our clock (Stripe's libraries' default).
pub const DEFAULT_TOLERANCE_S: i64 = 300;
/// The largest webhook body read.
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;
/// How long one call to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the provider is, and our credentials with it.
#[derive(Clone)]
pub struct PaymentProvider {
    /// The API's base (`https://api.stripe.com`).
    pub api_url: String,
    /// The secret API key (`sk_…`).
    pub secret_key: String,
    /// The webhook endpoint's signing secret (`whsec_…`).
    pub webhook_secret: String,
    /// How far a webhook's timestamp may be from our clock, in seconds.
    pub tolerance_s: i64,
}

impl std::fmt::Debug for PaymentProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentProvider")
            .field("api_url", &self.api_url)
            .field("tolerance_s", &self.tolerance_s)
            .finish_non_exhaustive()
    }
}

/// What went wrong with a call to the provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The card was declined: the provider's message, for the tenant.
    #[error("{0}")]
    Declined(String),
    /// The provider refused the request (our bug, or our key).
    #[error("the payment provider refused the request: {0}")]
    Refused(String),
    /// No answer.
    #[error("the payment provider could not be reached")]
    Unreachable(#[from] reqwest::Error),
}

impl From<ProviderError> for Problem {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Declined(why) => {
                payment_required(format!("The card was declined: {why}"))
            }
            ProviderError::Refused(why) => {
                tracing::error!(%why, "payment provider refused a request");
                Problem::bad_gateway("the payment provider refused the request; we have been told")
            }
            ProviderError::Unreachable(e) => {
                tracing::warn!(error = %e, "payment provider unreachable");
                Problem::unavailable("the payment provider cannot be reached; try again shortly")
            }
        }
    }
}

impl PaymentProvider {
    /// POSTs `params` form-encoded to `path` under `idempotency_key`.
    async fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        idempotency_key: &str,
        params: &[(&str, String)],
    ) -> Result<Value, ProviderError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let answer = http
            .post(format!("{}{path}", self.api_url.trim_end_matches('/')))
            .bearer_auth(&self.secret_key)
            .header("idempotency-key", idempotency_key)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .timeout(PROVIDER_TIMEOUT)
            .send()
            .await?;
        let status = answer.status();
        let value: Value = answer.json().await?;
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        let message = error["message"]
            .as_str()
            .unwrap_or("no reason given")
            .to_owned();
        if error["type"] == "card_error" {
            Err(ProviderError::Declined(message))
        } else {
            Err(ProviderError::Refused(format!("{status}: {message}")))
        }
    }

    /// Charges `card` `amount` off-session for `workspace`, as `kind`; the PaymentIntent.
    async fn charge(
        &self,
        http: &reqwest::Client,
        workspace: WorkspaceId,
        card: &SavedCard,
        amount: Millicents,
        kind: TransferKind,
        idempotency_key: &str,
    ) -> Result<Value, ProviderError> {
        self.post(
            http,
            "/v1/payment_intents",
            idempotency_key,
            &[
                ("amount", amount.cents_floor().to_string()),
                ("currency", "usd".into()),
                ("customer", card.customer_ref.clone()),
                ("payment_method", card.payment_method_ref.clone()),
                ("confirm", "true".into()),
                ("off_session", "true".into()),
                (
                    "description",
                    format!("Genesis wallet {}", kind.code().to_lowercase()),
                ),
                ("metadata[workspace]", workspace.to_string()),
                ("metadata[kind]", kind.code().into()),
            ],
        )
        .await
    }
}

fn provider(state: &AppState) -> Result<&PaymentProvider, Problem> {
    state
        .providers
        .payments
        .as_ref()
        .ok_or_else(|| Problem::unavailable("top-ups are not offered on this platform yet"))
}

fn wallets(state: &AppState) -> Result<&Wallets, Problem> {
    state
        .wallets
        .as_deref()
        .ok_or_else(|| Problem::unavailable("the wallet is not enabled on this platform"))
}

/// Saves the card behind `token` (the card form's payment method) as the workspace's:
/// creates the provider's customer the first time, attaches the card to it, audited.
/// Owners only.
pub async fn save_card(
    state: &AppState,
    db: &Database,
    access: &Access,
    token: &str,
) -> Result<SavedCard, Problem> {
    let owner = access.owner("change the wallet's card")?;
    let p = provider(state)?;
    let token = token.trim();
    if token.is_empty() || token.len() > 255 || !token.starts_with("pm_") {
        return Err(Problem::invalid_field("payment_method", "choose a card"));
    }
    let ws = access.workspace.id;
    db.wallet_open(ws).await?;
    let current = db.wallet_state(ws).await?.ok_or_else(Problem::internal)?;
    let customer = match current.customer_ref {
        Some(c) => c,
        None => {
            let c = p
                .post(
                    &state.providers.http,
                    "/v1/customers",
                    &format!("customer:{ws}"),
                    &[
                        ("email", owner.email.to_string()),
                        ("name", access.workspace.name.to_string()),
                        ("metadata[workspace]", ws.to_string()),
                    ],
                )
                .await?;
            c["id"].as_str().ok_or_else(Problem::internal)?.to_owned()
        }
    };
    let pm = p
        .post(
            &state.providers.http,
            &format!("/v1/payment_methods/{token}/attach"),
            &format!("attach:{ws}:{}", Uuid::now_v7()),
            &[("customer", customer.clone())],
        )
        .await
        .map_err(|e| match e {
            ProviderError::Refused(_) => {
                Problem::invalid_field("payment_method", "this card could not be saved")
            }
            other => other.into(),
        })?;
    let card = SavedCard {
        customer_ref: customer,
        payment_method_ref: pm["id"].as_str().ok_or_else(Problem::internal)?.to_owned(),
        brand: pm["card"]["brand"].as_str().unwrap_or("card").to_owned(),
        last4: pm["card"]["last4"].as_str().unwrap_or("0000").to_owned(),
    };
    db.wallet_card_set(ws, &card, &access.actor).await?;
    Ok(card)
}

/// A top-up asked of the provider.
#[derive(Debug, Clone)]
pub struct TopUp {
    /// The provider's PaymentIntent.
    pub payment_intent: String,
    /// Its status (`succeeded`: the credit follows with the provider's webhook).
    pub status: String,
}

/// Charges the saved card `amount` (owners only). `key` names the request: the same key
/// charges once, so a form sent twice is one payment.
pub async fn top_up(
    state: &AppState,
    db: &Database,
    access: &Access,
    amount: Millicents,
    key: &str,
) -> Result<TopUp, Problem> {
    access.owner("top up the wallet")?;
    let p = provider(state)?;
    if amount < MIN_TOP_UP || amount > MAX_TOP_UP || !amount.is_whole_cents() {
        return Err(Problem::invalid_field(
            "amount",
            format!("top up by {MIN_TOP_UP} to {MAX_TOP_UP}, in whole cents"),
        ));
    }
    let key = key.trim();
    if key.is_empty() || key.len() > 100 {
        return Err(Problem::invalid_field("key", "a request key is needed"));
    }
    let ws = access.workspace.id;
    let state_now = db.wallet_state(ws).await?;
    let card = state_now
        .and_then(|s| {
            Some(SavedCard {
                customer_ref: s.customer_ref?,
                payment_method_ref: s.payment_method_ref?,
                brand: s.card_brand.unwrap_or_default(),
                last4: s.card_last4.unwrap_or_default(),
            })
        })
        .ok_or_else(|| Problem::invalid_field("card", "save a card first"))?;
    let pi = p
        .charge(
            &state.providers.http,
            ws,
            &card,
            amount,
            TransferKind::Deposit,
            &format!("topup:{ws}:{key}"),
        )
        .await?;
    Ok(TopUp {
        payment_intent: pi["id"].as_str().unwrap_or_default().to_owned(),
        status: pi["status"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Starts an automatic top-up of `workspace` if its settings want one at `available` and
/// none is under way. The charge is named by the claim, so a retried call charges once; a
/// declined card ends the claim and tells the tenant; no answer leaves the claim to age out.
pub async fn auto_top_up(
    db: &Database,
    provider: &PaymentProvider,
    http: &reqwest::Client,
    workspace: WorkspaceId,
    available: Millicents,
) -> Result<bool, Problem> {
    let Some(TopUpClaim {
        card,
        amount,
        claimed_at,
    }) = db.wallet_topup_claim(workspace, available).await?
    else {
        return Ok(false);
    };
    let key = format!("auto-topup:{workspace}:{}", claimed_at.timestamp_micros());
    match provider
        .charge(
            http,
            workspace,
            &card,
            amount,
            TransferKind::AutoTopup,
            &key,
        )
        .await
    {
        Ok(_) => {
            metrics::counter!("genesis_wallet_auto_topups_total", "outcome" => "charged")
                .increment(1);
            Ok(true)
        }
        Err(ProviderError::Declined(why)) => {
            metrics::counter!("genesis_wallet_auto_topups_total", "outcome" => "declined")
                .increment(1);
            db.wallet_topup_finish(workspace, Some(&why)).await?;
            Ok(false)
        }
        Err(e) => {
            metrics::counter!("genesis_wallet_auto_topups_total", "outcome" => "no_answer")
                .increment(1);
            Err(e.into())
        }
    }
}

/// What a webhook delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A wallet was credited.
    Credited(WorkspaceId, Millicents),
    /// The charge was credited before (the provider sent it again).
    AlreadyCredited,
    /// A failed automatic top-up was recorded.
    FailureRecorded,
    /// Nothing for us in it (another event type, another currency, no workspace).
    Ignored(&'static str),
}

/// The ledger id of the credit for PaymentIntent `pi`: the same charge is the same transfer.
pub fn credit_id(pi: &str) -> Uuid {
    let digest = Sha256::digest(format!("payment_intent:{pi}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn refused(e: SignatureError) -> Problem {
    metrics::counter!("genesis_payment_webhooks_total", "outcome" => e.label()).increment(1);
    Problem::invalid_field("stripe-signature", "the delivery's signature is not valid")
}

/// Receives one webhook delivery: checks its signature and freshness, refuses a replay, and
/// applies the event.
pub async fn receive(
    state: &AppState,
    signature: Option<&str>,
    body: &[u8],
) -> Result<Delivery, Problem> {
    let p = state
        .providers
        .payments
        .as_ref()
        .ok_or_else(|| Problem::not_found("route"))?;
    let header = signature.ok_or_else(|| refused(SignatureError::Malformed))?;
    let now = chrono::Utc::now().timestamp();
    payment_signature::verify(header, body, &p.webhook_secret, p.tolerance_s, now)
        .map_err(refused)?;
    let wallets = wallets(state)?;
    let fingerprint = crate::credentials::hex(&Sha256::digest(header.as_bytes()));
    let ttl = u64::try_from(p.tolerance_s.saturating_mul(2)).unwrap_or(600);
    let first = wallets
        .cache()
        .first_sighting(&fingerprint, ttl)
        .await
        .map_err(|_| Problem::unavailable("try again shortly"))?;
    if !first {
        metrics::counter!("genesis_payment_webhooks_total", "outcome" => "replayed").increment(1);
        return Err(Problem::conflict(
            "stripe-signature",
            "this delivery was received before",
        ));
    }
    let event: Value = serde_json::from_slice(body).map_err(|_| {
        metrics::counter!("genesis_payment_webhooks_total", "outcome" => "unreadable").increment(1);
        Problem::bad_body("the event is not JSON")
    })?;
    let delivery = apply(wallets, &event).await?;
    let label = match delivery {
        Delivery::Credited(..) => "credited",
        Delivery::AlreadyCredited => "duplicate",
        Delivery::FailureRecorded => "failure_recorded",
        Delivery::Ignored(_) => "ignored",
    };
    metrics::counter!("genesis_payment_webhooks_total", "outcome" => label).increment(1);
    Ok(delivery)
}

/// Applies a verified event.
async fn apply(wallets: &Wallets, event: &Value) -> Result<Delivery, Problem> {
    let kind = event["type"].as_str().unwrap_or_default();
    let pi = &event["data"]["object"];
    let Some(workspace) = pi["metadata"]["workspace"]
        .as_str()
        .and_then(|w| WorkspaceId::parse(w).ok())
    else {
        return Ok(Delivery::Ignored("no workspace"));
    };
    let transfer_kind = match pi["metadata"]["kind"].as_str() {
        Some("AUTO_TOPUP") => TransferKind::AutoTopup,
        Some("DEPOSIT") => TransferKind::Deposit,
        _ => return Ok(Delivery::Ignored("not a wallet charge")),
    };
    match kind {
        "payment_intent.succeeded" => {
            let (Some(id), Some(cents), Some("usd")) = (
                pi["id"].as_str(),
                pi["amount_received"].as_i64(),
                pi["currency"].as_str(),
            ) else {
                tracing::warn!(kind, "a payment the wallet cannot read");
                return Ok(Delivery::Ignored("unreadable payment"));
            };
            if cents <= 0 {
                return Ok(Delivery::Ignored("nothing received"));
            }
            let amount = Millicents::from_cents(cents);
            let outcome = match wallets
                .credit(
                    workspace,
                    credit_id(id),
                    transfer_kind,
                    amount,
                    Some(format!("payment {id}")),
                    "system:payments",
                )
                .await
            {
                Ok(o) => o,
                // A workspace deleted since: nothing to credit; the provider must stop.
                Err(p) if p.status == 404 => return Ok(Delivery::Ignored("no such workspace")),
                Err(p) => return Err(p),
            };
            if transfer_kind == TransferKind::AutoTopup {
                let db = wallets.ledger_of(workspace).await?;
                db.wallet_topup_finish(workspace, None).await?;
            }
            Ok(match outcome {
                TransferOutcome::Created(_) => Delivery::Credited(workspace, amount),
                TransferOutcome::Exists(_) => Delivery::AlreadyCredited,
            })
        }
        "payment_intent.payment_failed" if transfer_kind == TransferKind::AutoTopup => {
            let why = pi["last_payment_error"]["message"]
                .as_str()
                .unwrap_or("the card was declined");
            let db = wallets.ledger_of(workspace).await?;
            db.wallet_topup_finish(workspace, Some(why)).await?;
            Ok(Delivery::FailureRecorded)
        }
        _ => Ok(Delivery::Ignored("event not used")),
    }
}
