//! The margin report (spec 59.1): for a month, each tenant's revenue (the subscription and
//! the wallet's spending by service, less refunds) against its costs (the droplet from the
//! hours it existed at the cloud, the wholesale cost of each managed service, overhead), and
//! the fleet's totals. Figures come from each region's ledger and fleet tables; prices and
//! costs from the service matrix. The arithmetic is [`genesis_core::margins`].
//!
//! Bandwidth and snapshot storage are not metered yet (snapshots arrive with disaster
//! recovery): their lines read zero, and the report says so.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use genesis_core::margins::{self, Margin, MonthInputs, ServiceUsage};
use genesis_core::money::Millicents;
use genesis_store::margins::WalletWatch;
use serde::Serialize;

use crate::{AppState, Problem};

/// One tenant's month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantMargin {
    /// The workspace's id.
    pub workspace: String,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Its tier.
    pub tier: String,
    /// Hours its droplets existed at the cloud.
    pub droplet_hours: i64,
    /// The report's lines and totals (amounts in millicents).
    #[schema(value_type = Object)]
    pub margin: Margin,
    /// The margin as spec 59.1 writes it (`81.7%`, or `n/a` without revenue).
    pub percent: String,
}

/// The fleet's month.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MarginReport {
    /// `YYYY-MM`.
    pub month: String,
    /// Every tenant that existed in the month, by slug.
    pub tenants: Vec<TenantMargin>,
    /// Σ revenue (millicents).
    pub total_revenue_millicents: i64,
    /// Σ costs (millicents).
    pub total_costs_millicents: i64,
    /// Revenue less costs (millicents).
    pub margin_millicents: i64,
    /// The fleet's margin as a percentage.
    pub percent: String,
    /// What the report does not count yet.
    pub notes: Vec<String>,
}

/// The first instant of `month` (`YYYY-MM`) and of the month after it.
pub fn month_bounds(month: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), Problem> {
    let bad = || Problem::invalid_field("month", "a month as YYYY-MM, such as 2026-11");
    let (y, m) = month.trim().split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    let at = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| Utc.from_utc_datetime(&t))
            .ok_or_else(bad)
    };
    Ok((at(first)?, at(next)?))
}

/// This month, as `YYYY-MM`.
pub fn this_month() -> String {
    let now = Utc::now();
    format!("{:04}-{:02}", now.year(), now.month())
}

/// The report for `month` (`YYYY-MM`) over every region.
pub async fn report(state: &AppState, month: &str) -> Result<MarginReport, Problem> {
    let (start, end) = month_bounds(month)?;
    if start > Utc::now() {
        return Err(Problem::invalid_field(
            "month",
            "that month has not started yet",
        ));
    }
    let matrix = super::service_matrix::in_effect(state);
    let mut tenants = Vec::new();
    for db in state.stores.distinct() {
        for w in db.margin_month(start, end).await? {
            let usage = w
                .charged
                .iter()
                .map(|(kind, charged)| {
                    let service = matrix.by_transaction(*kind);
                    // Each call is charged its price times its units: the operations are
                    // what was charged over the price (prices change with a new matrix, not
                    // within a month).
                    let operations = service
                        .and_then(|s| s.per_call())
                        .map_or(0, |(price, _, _)| charged.get() / price.get().max(1));
                    ServiceUsage {
                        service: service.map_or_else(|| kind.code().to_owned(), |s| s.id.clone()),
                        operations,
                        charged: *charged,
                    }
                })
                .collect();
            let inputs = MonthInputs {
                subscription: matrix.plans.subscription(w.tier),
                usage,
                refunds: w.refunds,
                droplet_hours: w.droplet_hours,
                bandwidth: Millicents::ZERO,
                snapshots: Millicents::ZERO,
                overhead: matrix.plans.overhead_per_tenant,
            };
            let margin = margins::compute(&matrix, &inputs);
            tenants.push(TenantMargin {
                workspace: w.workspace.to_string(),
                slug: w.slug,
                name: w.name,
                region: w.region.code().to_owned(),
                tier: w.tier.code().to_owned(),
                droplet_hours: w.droplet_hours,
                percent: margin.percent(),
                margin,
            });
        }
    }
    tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    let revenue: i64 = tenants.iter().map(|t| t.margin.total_revenue.get()).sum();
    let costs: i64 = tenants.iter().map(|t| t.margin.total_costs.get()).sum();
    let fleet = Margin {
        revenue: Vec::new(),
        costs: Vec::new(),
        total_revenue: Millicents(revenue),
        total_costs: Millicents(costs),
        margin: Millicents(revenue - costs),
        margin_bp: (revenue > 0)
            .then(|| ((revenue - costs) * 10_000 * 2 + revenue) / (revenue * 2)),
    };
    Ok(MarginReport {
        month: month.trim().to_owned(),
        tenants,
        total_revenue_millicents: revenue,
        total_costs_millicents: costs,
        margin_millicents: revenue - costs,
        percent: fleet.percent(),
        notes: vec![
            "Bandwidth and snapshot storage are not metered yet: their lines read $0.".into(),
        ],
    })
}

/// Wallets an operator should look at (low, empty, halted) and the month's top spenders,
/// over every region.
pub async fn watchlist(
    state: &AppState,
    top: i64,
) -> Result<(Vec<WalletWatch>, Vec<WalletWatch>), Problem> {
    let (start, _) = month_bounds(&this_month())?;
    let mut watch = Vec::new();
    let mut spenders = Vec::new();
    for db in state.stores.distinct() {
        let (w, s) = db.wallet_watchlist(start, top).await?;
        watch.extend(w);
        spenders.extend(s);
    }
    watch.sort_by_key(|w| (w.halted_at.is_none(), w.available));
    watch.truncate(top as usize);
    spenders.sort_by_key(|s| std::cmp::Reverse(s.spent));
    spenders.truncate(top as usize);
    Ok((watch, spenders))
}
