//! A wallet's link to the payment provider (spec 58.1): the saved card, the automatic top-up
//! settings, and the one-at-a-time claim on an automatic top-up. The money itself only ever
//! moves through the ledger ([`crate::ledger`]), when the provider confirms a charge.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use genesis_core::money::Millicents;
use serde_json::json;

use crate::audit::{AuditEvent, record};
use crate::{Database, StoreError};

/// The card a wallet charges: the provider's ids, and what the tenant is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    /// The provider's customer.
    pub customer_ref: String,
    /// The provider's payment method.
    pub payment_method_ref: String,
    /// The brand (`visa`).
    pub brand: String,
    /// The last four digits.
    pub last4: String,
}

/// What an automatic top-up charges, once claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUpClaim {
    /// The card.
    pub card: SavedCard,
    /// How much.
    pub amount: Millicents,
    /// When it was claimed: names the charge (the provider's idempotency key), so asking
    /// again for the same claim charges once.
    pub claimed_at: DateTime<Utc>,
}

/// How long a claimed top-up may go unanswered before another may be started.
pub const TOPUP_CLAIM_MINUTES: i32 = 15;

impl Database {
    /// Saves `card` as `workspace`'s payment method, audited (Billing).
    pub async fn wallet_card_set(
        &self,
        workspace: WorkspaceId,
        card: &SavedCard,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"UPDATE genesis.wallets SET customer_ref = $2, payment_method_ref = $3,
                   card_brand = $4, card_last4 = $5, updated_at = now()
               WHERE workspace_id = $1"#,
            workspace.as_uuid(),
            card.customer_ref,
            card.payment_method_ref,
            card.brand,
            card.last4
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Billing, "PAYMENT_METHOD_SAVED")
                .workspace(workspace)
                .details(json!({ "brand": card.brand, "last4": card.last4 })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets `workspace`'s automatic top-up (spec 58.1), audited. Turning it on needs a saved
    /// card.
    pub async fn wallet_autotopup_set(
        &self,
        workspace: WorkspaceId,
        enabled: bool,
        threshold: Millicents,
        amount: Millicents,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let has_card = sqlx::query_scalar!(
            r#"SELECT payment_method_ref IS NOT NULL AS "has!" FROM genesis.wallets
               WHERE workspace_id = $1 FOR UPDATE"#,
            workspace.as_uuid()
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound { what: "wallet" })?;
        if enabled && !has_card {
            return Err(StoreError::Invalid {
                field: "enabled",
                message: "save a card before turning on automatic top-up".into(),
            });
        }
        sqlx::query!(
            r#"UPDATE genesis.wallets SET auto_topup_enabled = $2, auto_topup_threshold = $3,
                   auto_topup_amount = $4, updated_at = now()
               WHERE workspace_id = $1"#,
            workspace.as_uuid(),
            enabled,
            threshold.get(),
            amount.get()
        )
        .execute(&mut *tx)
        .await
        .map_err(
            |e| match e.as_database_error().map(|d| d.is_check_violation()) {
                Some(true) => StoreError::Invalid {
                    field: "amount",
                    message: "top up by at least $5.00, in whole cents".into(),
                },
                _ => e.into(),
            },
        )?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Billing, "AUTO_TOPUP_SET")
                .workspace(workspace)
                .details(json!({
                    "enabled": enabled,
                    "threshold": threshold.to_string(),
                    "amount": amount.to_string(),
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims `workspace`'s automatic top-up if it is on, has a card, its available balance
    /// `available` is under the threshold, and no other claim is younger than
    /// [`TOPUP_CLAIM_MINUTES`]: of many callers crossing the threshold at once, one wins.
    /// Audited.
    pub async fn wallet_topup_claim(
        &self,
        workspace: WorkspaceId,
        available: Millicents,
    ) -> Result<Option<TopUpClaim>, StoreError> {
        let mut tx = self.app.begin().await?;
        let Some(r) = sqlx::query!(
            r#"UPDATE genesis.wallets SET topup_started_at = now(), updated_at = now()
               WHERE workspace_id = $1 AND auto_topup_enabled AND payment_method_ref IS NOT NULL
                 AND $2::bigint < auto_topup_threshold
                 AND (topup_started_at IS NULL
                      OR topup_started_at < now() - make_interval(mins => $3))
               RETURNING customer_ref AS "customer_ref!", payment_method_ref AS "pm!",
                         card_brand, card_last4, auto_topup_amount,
                         topup_started_at AS "claimed_at!""#,
            workspace.as_uuid(),
            available.get(),
            TOPUP_CLAIM_MINUTES
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        record(
            &mut tx,
            &AuditEvent::new(
                "system:wallet",
                AuditCategory::Billing,
                "AUTO_TOPUP_STARTED",
            )
            .workspace(workspace)
            .details(json!({
                "available": available.to_string(),
                "amount": Millicents(r.auto_topup_amount).to_string(),
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(TopUpClaim {
            card: SavedCard {
                customer_ref: r.customer_ref,
                payment_method_ref: r.pm,
                brand: r.card_brand.unwrap_or_default(),
                last4: r.card_last4.unwrap_or_default(),
            },
            amount: Millicents(r.auto_topup_amount),
            claimed_at: r.claimed_at,
        }))
    }

    /// Ends `workspace`'s automatic top-up claim. A failure (`Some(why)`, in the tenant's
    /// words) is audited and sent to the tenant; a success was audited with its credit.
    pub async fn wallet_topup_finish(
        &self,
        workspace: WorkspaceId,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let ended = sqlx::query_scalar!(
            r#"UPDATE genesis.wallets SET topup_started_at = NULL, updated_at = now()
               WHERE workspace_id = $1 AND topup_started_at IS NOT NULL
               RETURNING workspace_id"#,
            workspace.as_uuid()
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let (Some(_), Some(why)) = (ended, failure) {
            sqlx::query!(
                r#"INSERT INTO genesis.notifications (workspace_id, kind, subject, body)
                   VALUES ($1, 'WALLET_TOPUP_FAILED', 'Your automatic top-up did not go through', $2)"#,
                workspace.as_uuid(),
                json!({ "reason": why }),
            )
            .execute(&mut *tx)
            .await?;
            record(
                &mut tx,
                &AuditEvent::new(
                    "system:payments",
                    AuditCategory::Billing,
                    "AUTO_TOPUP_FAILED",
                )
                .workspace(workspace)
                .details(json!({ "reason": why })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
