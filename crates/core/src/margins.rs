//! A tenant's monthly margin (spec 59.1): revenue (the subscription and the wallet's spending
//! by service) against costs (the droplet from its real running hours, bandwidth, snapshots,
//! the wholesale cost of each managed service, overhead). Pure arithmetic in millicents; the
//! figures come from the ledger, the fleet's history and the service matrix.

use serde::Serialize;

use crate::money::Millicents;
use crate::services::{Billing, ServiceMatrix};

/// Hours DigitalOcean bills a month at most (its monthly price caps the hourly one).
pub const HOURS_PER_MONTH: i64 = 672;

/// What one managed service did for a tenant in the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceUsage {
    /// The service's id in the matrix.
    pub service: String,
    /// Operations charged (posted, less refunded).
    pub operations: i64,
    /// What the wallet was charged for them.
    pub charged: Millicents,
}

/// One tenant-month's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonthInputs {
    /// The subscription's price for the month.
    pub subscription: Millicents,
    /// Managed services used.
    pub usage: Vec<ServiceUsage>,
    /// Refunds credited to the wallet (revenue given back).
    pub refunds: Millicents,
    /// Hours the droplet ran.
    pub droplet_hours: i64,
    /// Bandwidth cost.
    pub bandwidth: Millicents,
    /// Snapshot storage cost.
    pub snapshots: Millicents,
    /// The tenant's share of the platform's overhead.
    pub overhead: Millicents,
}

/// One line of a margin report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// What it is.
    pub label: String,
    /// How much.
    pub amount: Millicents,
}

/// A tenant-month's margin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Margin {
    /// Revenue lines.
    pub revenue: Vec<Line>,
    /// Cost lines.
    pub costs: Vec<Line>,
    /// Σ revenue.
    pub total_revenue: Millicents,
    /// Σ costs.
    pub total_costs: Millicents,
    /// Revenue less costs (negative: a loss).
    pub margin: Millicents,
    /// The margin as a share of revenue, in basis points (8174 = 81.74%); `None` without
    /// revenue.
    pub margin_bp: Option<i64>,
}

impl Margin {
    /// The margin as a percentage with one decimal, as spec 59.1 writes it (`81.7%`).
    pub fn percent(&self) -> String {
        match self.margin_bp {
            None => "n/a".into(),
            Some(bp) => {
                // Basis points to tenths of a percent, rounded half away from zero.
                let tenths = (bp * 10 + if bp >= 0 { 50 } else { -50 }) / 100;
                let sign = if tenths < 0 { "-" } else { "" };
                format!("{sign}{}.{}%", tenths.abs() / 10, tenths.abs() % 10)
            }
        }
    }
}

fn sum(lines: &[Line]) -> Millicents {
    Millicents(lines.iter().map(|l| l.amount.get()).sum())
}

/// The droplet's cost: its hourly rate (the monthly wholesale over [`HOURS_PER_MONTH`],
/// rounded up to a millicent) for the hours it ran, never more than the monthly price.
pub fn droplet_cost(monthly: Millicents, hours: i64) -> Millicents {
    let hourly = (monthly.get() + HOURS_PER_MONTH - 1) / HOURS_PER_MONTH;
    Millicents((hourly * hours.max(0)).min(monthly.get()))
}

/// Computes a tenant-month's margin with `matrix`'s wholesale costs.
pub fn compute(matrix: &ServiceMatrix, m: &MonthInputs) -> Margin {
    let mut revenue = vec![Line {
        label: "Subscription".into(),
        amount: m.subscription,
    }];
    let mut costs = Vec::new();
    if let Some(Billing::Monthly { wholesale, .. }) = matrix.get("digitalocean").map(|s| s.billing)
    {
        costs.push(Line {
            label: "Droplet".into(),
            amount: droplet_cost(wholesale, m.droplet_hours),
        });
    }
    costs.push(Line {
        label: "Bandwidth".into(),
        amount: m.bandwidth,
    });
    costs.push(Line {
        label: "Snapshots".into(),
        amount: m.snapshots,
    });
    for u in &m.usage {
        let service = matrix.get(&u.service);
        let name = service.map_or(u.service.as_str(), |s| s.name.as_str());
        revenue.push(Line {
            label: format!("Wallet ({name} - {} operations)", u.operations),
            amount: u.charged,
        });
        if let Some((_, wholesale, _)) = service.and_then(|s| s.per_call()) {
            costs.push(Line {
                label: format!("{name} wholesale"),
                amount: Millicents(wholesale.get() * u.operations),
            });
        }
    }
    if m.refunds.get() > 0 {
        revenue.push(Line {
            label: "Refunds".into(),
            amount: Millicents(-m.refunds.get()),
        });
    }
    costs.push(Line {
        label: "Overhead".into(),
        amount: m.overhead,
    });
    let (total_revenue, total_costs) = (sum(&revenue), sum(&costs));
    let margin = Millicents(total_revenue.get() - total_costs.get());
    let margin_bp = (total_revenue.get() > 0).then(|| {
        // Rounded to the nearest basis point.
        (margin.get() * 10_000 * 2 + total_revenue.get()) / (total_revenue.get() * 2)
    });
    Margin {
        revenue,
        costs,
        total_revenue,
        total_costs,
        margin,
        margin_bp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(service: &str, operations: i64, charged: i64) -> ServiceUsage {
        ServiceUsage {
            service: service.into(),
            operations,
            charged: Millicents::from_cents(charged),
        }
    }

    /// Spec 59.1's example, "Acme Corp", January 2026.
    #[test]
    fn acme_corp_makes_81_7_percent() {
        let m = compute(
            ServiceMatrix::builtin(),
            &MonthInputs {
                subscription: Millicents::from_dollars(99),
                usage: vec![
                    usage("apify", 770, 1_540),
                    usage("google_cse", 900, 450),
                    usage("proxies", 2_100, 210),
                ],
                refunds: Millicents::ZERO,
                droplet_hours: 744,
                bandwidth: Millicents::from_cents(80),
                snapshots: Millicents::from_cents(62),
                overhead: Millicents::from_cents(5),
            },
        );
        assert_eq!(m.total_revenue, Millicents::from_cents(12_100));
        let cost = |label: &str| m.costs.iter().find(|l| l.label == label).map(|l| l.amount);
        assert_eq!(cost("Droplet"), Some(Millicents::from_cents(400)));
        assert_eq!(cost("Apify wholesale"), Some(Millicents::from_cents(1_155)));
        assert_eq!(
            cost("Google CSE wholesale"),
            Some(Millicents::from_cents(360))
        );
        assert_eq!(
            cost("Residential Proxies wholesale"),
            Some(Millicents::from_cents(147))
        );
        assert_eq!(m.total_costs, Millicents::from_cents(2_209));
        assert_eq!(m.margin, Millicents::from_cents(9_891));
        assert_eq!(m.margin_bp, Some(8_174));
        assert_eq!(m.percent(), "81.7%");
    }

    /// A hand-computed month: a droplet that ran 100 hours, e-mail verifications, a loss.
    #[test]
    fn a_part_month_and_a_loss_add_up() {
        assert_eq!(
            droplet_cost(Millicents::from_dollars(4), 100),
            Millicents(59_600)
        );
        assert_eq!(
            droplet_cost(Millicents::from_dollars(4), 10_000),
            Millicents::from_dollars(4)
        );
        let m = compute(
            ServiceMatrix::builtin(),
            &MonthInputs {
                subscription: Millicents::ZERO,
                usage: vec![usage("email_verify", 1_000, 300)],
                refunds: Millicents::ZERO,
                droplet_hours: 100,
                bandwidth: Millicents::from_cents(10),
                snapshots: Millicents::ZERO,
                overhead: Millicents::from_cents(5),
            },
        );
        // Revenue $3.00; costs 0.596 + 0.10 + 2.00 (1,000 × $0.002) + 0.05 = $2.746.
        assert_eq!(m.total_revenue, Millicents(300_000));
        assert_eq!(m.total_costs, Millicents(274_600));
        assert_eq!(m.margin, Millicents(25_400));
        assert_eq!(m.percent(), "8.5%");
        // The same month with $0.30 refunded: revenue $2.70, a loss of $0.046 (-1.7%).
        let refunded = compute(
            ServiceMatrix::builtin(),
            &MonthInputs {
                subscription: Millicents::ZERO,
                usage: vec![usage("email_verify", 1_000, 300)],
                refunds: Millicents::from_cents(30),
                droplet_hours: 100,
                bandwidth: Millicents::from_cents(10),
                snapshots: Millicents::ZERO,
                overhead: Millicents::from_cents(5),
            },
        );
        assert_eq!(refunded.total_revenue, Millicents(270_000));
        assert_eq!(refunded.margin, Millicents(-4_600));
        assert_eq!(refunded.percent(), "-1.7%");
        let nothing = compute(
            ServiceMatrix::builtin(),
            &MonthInputs {
                overhead: Millicents::from_cents(5),
                ..Default::default()
            },
        );
        assert_eq!(nothing.margin, Millicents(-5_000));
        assert_eq!(nothing.percent(), "n/a");
    }
}
