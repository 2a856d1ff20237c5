//! What the margin report (spec 59.1) and God Mode's Financial page read from one regional
//! database: each workspace's wallet spending by type in a month, the hours its droplets ran,
//! and the wallets that need an operator's eye.

use chrono::{DateTime, Utc};
use genesis_core::money::{Millicents, TransferKind};
use genesis_core::{Region, Tier, WorkspaceId};

use crate::{Database, StoreError};

/// One workspace's month, as the database knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceMonth {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: Tier,
    /// Its region.
    pub region: Region,
    /// Charges posted in the month, by transaction type.
    pub charged: Vec<(TransferKind, Millicents)>,
    /// Refunds credited in the month.
    pub refunds: Millicents,
    /// Hours its droplets existed at the cloud in the month, each started hour counted (the
    /// cloud bills a powered-off droplet too).
    pub droplet_hours: i64,
}

/// A wallet an operator should look at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WalletWatch {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Available now (the ledger's figure).
    pub available: Millicents,
    /// Its alert level (ok, low_5, low_1, empty).
    pub alert_level: String,
    /// Since when the kill-switch holds it.
    pub halted_at: Option<DateTime<Utc>>,
    /// Spent this month.
    pub spent: Millicents,
}

impl Database {
    /// Every workspace that existed in `[start, end)`, with its month's figures.
    pub async fn margin_month(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<WorkspaceMonth>, StoreError> {
        let mut conn = self.read().await?;
        let workspaces = sqlx::query!(
            r#"SELECT id, slug, name, tier, region FROM genesis.workspaces
               WHERE created_at < $1 ORDER BY slug"#,
            end
        )
        .fetch_all(&mut *conn)
        .await?;
        let charges = sqlx::query!(
            r#"SELECT workspace_id, kind, sum(amount)::bigint AS "amount!"
               FROM genesis.ledger_transfers
               WHERE created_at >= $1 AND created_at < $2 AND phase IN ('single', 'post')
               GROUP BY workspace_id, kind"#,
            start,
            end
        )
        .fetch_all(&mut *conn)
        .await?;
        let hours = sqlx::query!(
            r#"SELECT workspace_id,
                      sum(ceil(extract(epoch FROM
                          least(CASE WHEN state = 'TERMINATED' THEN updated_at ELSE now() END, $2)
                          - greatest(created_at, $1)) / 3600))::bigint AS "hours!"
               FROM genesis.droplets
               WHERE provider_id IS NOT NULL AND created_at < $2
                 AND least(CASE WHEN state = 'TERMINATED' THEN updated_at ELSE now() END, $2)
                     > greatest(created_at, $1)
               GROUP BY workspace_id"#,
            start,
            end
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::with_capacity(workspaces.len());
        for w in workspaces {
            let corrupt = |what: &'static str, value: &str| StoreError::Corrupt {
                what,
                value: value.to_owned(),
            };
            let mut month = WorkspaceMonth {
                workspace: crate::accounts::workspace_id(w.id)?,
                slug: w.slug,
                name: w.name,
                tier: Tier::parse(&w.tier).map_err(|_| corrupt("tier", &w.tier))?,
                region: Region::parse(&w.region).map_err(|_| corrupt("region", &w.region))?,
                charged: Vec::new(),
                refunds: Millicents::ZERO,
                droplet_hours: 0,
            };
            for c in charges.iter().filter(|c| c.workspace_id == w.id) {
                let kind = TransferKind::from_code(&c.kind)
                    .ok_or_else(|| corrupt("transfer kind", &c.kind))?;
                match kind {
                    TransferKind::Refund => month.refunds = Millicents(c.amount),
                    TransferKind::Deposit | TransferKind::AutoTopup => {}
                    _ => month.charged.push((kind, Millicents(c.amount))),
                }
            }
            month.droplet_hours = hours
                .iter()
                .find(|h| h.workspace_id == w.id)
                .map_or(0, |h| h.hours);
            out.push(month);
        }
        Ok(out)
    }

    /// Wallets that are low (under $5), empty or halted, and the month's biggest spenders
    /// (at most `top` of each), with what they spent since `month_start`.
    pub async fn wallet_watchlist(
        &self,
        month_start: DateTime<Utc>,
        top: i64,
    ) -> Result<(Vec<WalletWatch>, Vec<WalletWatch>), StoreError> {
        let mut conn = self.read().await?;
        let rows = sqlx::query!(
            r#"WITH spent AS (
                   SELECT workspace_id, sum(amount)::bigint AS spent
                   FROM genesis.ledger_transfers
                   WHERE created_at >= $1 AND phase IN ('single', 'post')
                     AND kind NOT IN ('DEPOSIT', 'AUTO_TOPUP', 'REFUND')
                   GROUP BY workspace_id)
               SELECT w.id, w.slug, w.name,
                      a.credits_posted - a.debits_posted - a.debits_pending AS "available!",
                      v.alert_level, v.halted_at, coalesce(s.spent, 0)::bigint AS "spent!",
                      (v.alert_level <> 'ok' OR v.halted_at IS NOT NULL) AS "watch!"
               FROM genesis.wallets v
               JOIN genesis.workspaces w ON w.id = v.workspace_id
               JOIN genesis.ledger_accounts a ON a.workspace_id = v.workspace_id
               LEFT JOIN spent s ON s.workspace_id = v.workspace_id
               WHERE v.alert_level <> 'ok' OR v.halted_at IS NOT NULL OR s.spent > 0
               ORDER BY coalesce(s.spent, 0) DESC, w.slug"#,
            month_start
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut watch = Vec::new();
        let mut spenders = Vec::new();
        for r in rows {
            let item = WalletWatch {
                workspace: crate::accounts::workspace_id(r.id)?,
                slug: r.slug,
                name: r.name,
                available: Millicents(r.available),
                alert_level: r.alert_level,
                halted_at: r.halted_at,
                spent: Millicents(r.spent),
            };
            if r.watch && (watch.len() as i64) < top {
                watch.push(item.clone());
            }
            if item.spent.get() > 0 && (spenders.len() as i64) < top {
                spenders.push(item);
            }
        }
        watch.sort_by_key(|w| (w.halted_at.is_none(), w.available));
        Ok((watch, spenders))
    }
}
