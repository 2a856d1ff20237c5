//! The health of one region, judged from how many of its droplets are in each state (God
//! Mode's regional status, spec 44.1).
//!
//! # Rules
//! - Only droplets that should be serving count: a hibernating droplet is asleep on
//!   purpose, and one still being provisioned (or in planned maintenance) has not started
//!   serving yet. The "serving share" is the share of the counted ones that are healthy.
//! - A region is **Critical** when any of its droplets is lost (zombie, orphan, failed) and
//!   lost ones are 5 % or more of the counted, or when fewer than 80 % serve healthily.
//! - It is **Degraded** when anything is lost, degraded, drifting or rebooting, or fewer
//!   than 95 % serve healthily.
//! - Otherwise it is **Healthy**, including a region with nothing to count (no droplets, or
//!   all asleep): nothing there is failing.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::DropletState;

/// Below this serving share a region is degraded.
pub const HEALTHY_SHARE: f64 = 0.95;
/// Below this serving share, or with this share of its counted droplets lost, critical.
pub const CRITICAL_SHARE: f64 = 0.80;
/// A lost share at or above this makes a region critical.
pub const CRITICAL_LOST_SHARE: f64 = 0.05;

/// A region's verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegionStatus {
    /// Nothing needs an operator.
    #[default]
    Healthy,
    /// Something is wrong with a few droplets: look when you can.
    Degraded,
    /// A real share of the region is down: look now.
    Critical,
}

impl RegionStatus {
    /// The stable code pages and the API show.
    pub fn code(self) -> &'static str {
        match self {
            RegionStatus::Healthy => "HEALTHY",
            RegionStatus::Degraded => "DEGRADED",
            RegionStatus::Critical => "CRITICAL",
        }
    }
}

/// One region's droplets, grouped the way an operator reads them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RegionHealth {
    /// Every live droplet of the region.
    pub total: i64,
    /// `ACTIVE_HEALTHY`.
    pub healthy: i64,
    /// Serving but not well: degraded, drifting, rebooting, waking.
    pub impaired: i64,
    /// Lost: zombie, orphan, failed.
    pub lost: i64,
    /// Hibernating on purpose.
    pub asleep: i64,
    /// Not serving yet, or in planned maintenance.
    pub not_counted: i64,
    /// healthy / (healthy + impaired + lost); 1 when none are counted.
    pub serving_share: f64,
    /// The verdict.
    pub status: RegionStatus,
}

impl RegionHealth {
    /// Judges a region from its count per state code (unknown codes count as impaired:
    /// a state this build does not know is not a reason to call a region healthy).
    pub fn judge(counts: &BTreeMap<String, i64>) -> Self {
        let mut h = RegionHealth::default();
        for (code, &n) in counts {
            h.total += n;
            match DropletState::from_code(code) {
                Some(DropletState::ActiveHealthy) => h.healthy += n,
                Some(DropletState::Hibernating) => h.asleep += n,
                Some(DropletState::Zombie | DropletState::Orphan | DropletState::Failed) => {
                    h.lost += n
                }
                Some(
                    DropletState::Pending
                    | DropletState::Initializing
                    | DropletState::HandshakePending
                    | DropletState::Maintenance
                    | DropletState::Terminated,
                ) => h.not_counted += n,
                Some(
                    DropletState::ActiveDegraded
                    | DropletState::DriftDetected
                    | DropletState::Rebooting
                    | DropletState::Waking,
                )
                | None => h.impaired += n,
            }
        }
        let counted = h.healthy + h.impaired + h.lost;
        h.serving_share = if counted == 0 {
            1.0
        } else {
            h.healthy as f64 / counted as f64
        };
        let lost_share = if counted == 0 {
            0.0
        } else {
            h.lost as f64 / counted as f64
        };
        h.status = if h.serving_share < CRITICAL_SHARE || lost_share >= CRITICAL_LOST_SHARE {
            RegionStatus::Critical
        } else if h.lost > 0 || h.impaired > 0 || h.serving_share < HEALTHY_SHARE {
            RegionStatus::Degraded
        } else {
            RegionStatus::Healthy
        };
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
    }

    #[test]
    fn the_rule_table() {
        let cases: &[(&[(&str, i64)], RegionStatus)] = &[
            (&[], RegionStatus::Healthy),
            (&[("HIBERNATING", 40)], RegionStatus::Healthy),
            (&[("ACTIVE_HEALTHY", 100)], RegionStatus::Healthy),
            (
                &[("ACTIVE_HEALTHY", 100), ("INITIALIZING", 50)],
                RegionStatus::Healthy,
            ),
            (
                &[("ACTIVE_HEALTHY", 99), ("ACTIVE_DEGRADED", 1)],
                RegionStatus::Degraded,
            ),
            (
                &[("ACTIVE_HEALTHY", 99), ("ZOMBIE", 1)],
                RegionStatus::Degraded,
            ),
            // 5 % lost is critical even though 95 % serve.
            (
                &[("ACTIVE_HEALTHY", 95), ("ZOMBIE", 5)],
                RegionStatus::Critical,
            ),
            // 20 % impaired but nothing lost: at the critical share, still degraded.
            (
                &[("ACTIVE_HEALTHY", 80), ("DRIFT_DETECTED", 20)],
                RegionStatus::Degraded,
            ),
            (
                &[("ACTIVE_HEALTHY", 79), ("DRIFT_DETECTED", 21)],
                RegionStatus::Critical,
            ),
            // Hibernating droplets dilute nothing.
            (
                &[("ACTIVE_HEALTHY", 10), ("HIBERNATING", 1000), ("FAILED", 1)],
                RegionStatus::Critical,
            ),
            // A state this build does not know is not healthy.
            (
                &[("ACTIVE_HEALTHY", 10), ("SOMETHING_NEW", 1)],
                RegionStatus::Degraded,
            ),
        ];
        for (pairs, want) in cases {
            let h = RegionHealth::judge(&counts(pairs));
            assert_eq!(h.status, *want, "{pairs:?} → {h:?}");
            assert_eq!(
                h.total,
                pairs.iter().map(|(_, n)| n).sum::<i64>(),
                "every droplet is in the total"
            );
            assert_eq!(
                h.healthy + h.impaired + h.lost + h.asleep + h.not_counted,
                h.total,
                "every droplet is in exactly one group"
            );
        }
    }

    #[test]
    fn the_serving_share_leaves_out_sleeping_and_new_droplets() {
        let h = RegionHealth::judge(&counts(&[
            ("ACTIVE_HEALTHY", 30),
            ("ZOMBIE", 10),
            ("HIBERNATING", 500),
            ("PENDING", 7),
        ]));
        assert!((h.serving_share - 0.75).abs() < 1e-9, "{h:?}");
        assert_eq!((h.asleep, h.not_counted, h.lost), (500, 7, 10));
    }
}
