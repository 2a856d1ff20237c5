//! Hibernation (spec 55): which tenants may be powered off (spec 55.1), how long the notice
//! lasts (spec 55.2), and what hibernation saves (spec 55.2's cost figures). Pure: the
//! hibernation reconciler gathers the facts and acts.
//!
//! # Rules
//! A tenant may hibernate only when every criterion of spec 55.1 holds: its workspace is
//! ACTIVE, no manual hold is set, its tier is not Enterprise (spec 55.4: never hibernates),
//! and it has had no campaign activity and no workflow execution for 7 days and no dashboard
//! login for 14 days. A tenant that never had an activity of a kind counts from when its
//! workspace became active, so a new tenant is never hibernated on its first day.

use serde::{Deserialize, Serialize};

use crate::Tier;

/// Spec 55's figures.
pub mod thresholds {
    /// Days without campaign activity.
    pub const NO_CAMPAIGNS_DAYS: i64 = 7;
    /// Days without a workflow execution.
    pub const NO_EXECUTIONS_DAYS: i64 = 7;
    /// Days without a dashboard login.
    pub const NO_LOGINS_DAYS: i64 = 14;
    /// The notice before hibernating (spec 55.2 step 1), seconds.
    pub const NOTICE_S: i64 = 24 * 3600;
    /// A running droplet's cost, cents per month (spec 55.2).
    pub const RUNNING_CENTS_PER_MONTH: i64 = 400;
    /// A powered-off droplet's cost (storage only), cents per month.
    pub const OFF_CENTS_PER_MONTH: i64 = 50;
    /// Seconds in the month the prices are quoted for (730 hours, as clouds bill).
    pub const MONTH_S: i64 = 730 * 3600;
    /// How early a High-Priority tenant is woken before a scheduled campaign (spec 55.4
    /// strategy 2), seconds.
    pub const PREWARM_LEAD_S: i64 = 5 * 60;
    /// How early a Standard tenant is woken before one: the wake time of spec 55.3.
    pub const STANDARD_WAKE_LEAD_S: i64 = 60;
    /// Idle time after which a pre-warmed tenant hibernates again (spec 55.4), seconds.
    pub const PREWARM_IDLE_S: i64 = 2 * 3600;
}

/// How long before a scheduled campaign a hibernating tenant of `tier` is woken (`None`:
/// the tier never hibernates).
pub fn wake_lead_s(tier: Tier) -> Option<i64> {
    match tier {
        Tier::Enterprise => None,
        Tier::HighPriority => Some(thresholds::PREWARM_LEAD_S),
        Tier::Standard => Some(thresholds::STANDARD_WAKE_LEAD_S),
    }
}

/// Whether a tenant a pre-warm woke at `prewarmed_at` should hibernate again at `now` (no
/// activity since: the pre-warm cleared nothing the tenant did).
pub fn prewarm_expired(prewarmed_at: i64, now: i64) -> bool {
    now - prewarmed_at >= thresholds::PREWARM_IDLE_S
}

const DAY: i64 = 86_400;

/// The facts about one tenant (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Activity {
    /// Its tier.
    pub tier: Tier,
    /// Whether the workspace is ACTIVE (not suspended, not being deleted).
    pub workspace_active: bool,
    /// An operator or the tenant asked never to hibernate for now.
    pub manual_hold: bool,
    /// When the workspace became active (the count starts there).
    pub active_since: i64,
    /// Last campaign activity.
    pub last_campaign_at: Option<i64>,
    /// Last workflow execution.
    pub last_execution_at: Option<i64>,
    /// Last dashboard login.
    pub last_login_at: Option<i64>,
}

/// Why a tenant may not hibernate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Blocker {
    /// Enterprise never hibernates (spec 55.4).
    EnterpriseTier,
    /// The workspace is not ACTIVE.
    NotActive,
    /// A manual hold is set.
    ManualHold,
    /// A campaign ran within 7 days.
    RecentCampaign,
    /// A workflow ran within 7 days.
    RecentExecution,
    /// Someone signed in within 14 days.
    RecentLogin,
}

fn within(last: Option<i64>, since: i64, days: i64, now: i64) -> bool {
    now - last.unwrap_or(since).max(since) < days * DAY
}

/// Every reason `a` may not hibernate at `now`; empty means eligible.
pub fn blockers(a: &Activity, now: i64) -> Vec<Blocker> {
    use thresholds::*;
    let mut out = Vec::new();
    if a.tier == Tier::Enterprise {
        out.push(Blocker::EnterpriseTier);
    }
    if !a.workspace_active {
        out.push(Blocker::NotActive);
    }
    if a.manual_hold {
        out.push(Blocker::ManualHold);
    }
    if within(a.last_campaign_at, a.active_since, NO_CAMPAIGNS_DAYS, now) {
        out.push(Blocker::RecentCampaign);
    }
    if within(a.last_execution_at, a.active_since, NO_EXECUTIONS_DAYS, now) {
        out.push(Blocker::RecentExecution);
    }
    if within(a.last_login_at, a.active_since, NO_LOGINS_DAYS, now) {
        out.push(Blocker::RecentLogin);
    }
    out
}

/// Whether `a` may hibernate at `now`.
pub fn eligible(a: &Activity, now: i64) -> bool {
    blockers(a, now).is_empty()
}

/// What `seconds` of hibernation saved, in cents (spec 55.2: $3.50 a month per droplet).
pub fn savings_cents(seconds: i64) -> i64 {
    use thresholds::*;
    (RUNNING_CENTS_PER_MONTH - OFF_CENTS_PER_MONTH) * seconds.max(0) / MONTH_S
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    fn idle(tier: Tier) -> Activity {
        Activity {
            tier,
            workspace_active: true,
            manual_hold: false,
            active_since: NOW - 90 * DAY,
            last_campaign_at: Some(NOW - 8 * DAY),
            last_execution_at: Some(NOW - 8 * DAY),
            last_login_at: Some(NOW - 15 * DAY),
        }
    }

    /// Spec 55.1's table, one row per criterion, each on both sides of its threshold.
    #[test]
    fn the_eligibility_table() {
        type Row = (&'static str, fn(&mut Activity), Option<Blocker>);
        let rows: [Row; 12] = [
            ("idle standard", |_| {}, None),
            ("idle high-priority", |a| a.tier = Tier::HighPriority, None),
            (
                "enterprise",
                |a| a.tier = Tier::Enterprise,
                Some(Blocker::EnterpriseTier),
            ),
            (
                "suspended",
                |a| a.workspace_active = false,
                Some(Blocker::NotActive),
            ),
            (
                "manual hold",
                |a| a.manual_hold = true,
                Some(Blocker::ManualHold),
            ),
            (
                "campaign 6 days ago",
                |a| a.last_campaign_at = Some(NOW - 6 * DAY),
                Some(Blocker::RecentCampaign),
            ),
            (
                "campaign exactly 7 days ago",
                |a| a.last_campaign_at = Some(NOW - 7 * DAY),
                None,
            ),
            (
                "execution 1 hour ago",
                |a| a.last_execution_at = Some(NOW - 3600),
                Some(Blocker::RecentExecution),
            ),
            (
                "login 13 days ago",
                |a| a.last_login_at = Some(NOW - 13 * DAY),
                Some(Blocker::RecentLogin),
            ),
            (
                "login exactly 14 days ago",
                |a| a.last_login_at = Some(NOW - 14 * DAY),
                None,
            ),
            (
                "never logged in, active 20 days",
                |a| {
                    a.last_login_at = None;
                    a.active_since = NOW - 20 * DAY;
                },
                None,
            ),
            (
                "never logged in, active 3 days",
                |a| {
                    a.last_login_at = None;
                    a.last_campaign_at = None;
                    a.last_execution_at = None;
                    a.active_since = NOW - 3 * DAY;
                },
                Some(Blocker::RecentCampaign),
            ),
        ];
        for (name, change, want) in rows {
            let mut a = idle(Tier::Standard);
            change(&mut a);
            let got = blockers(&a, NOW);
            match want {
                None => assert!(got.is_empty(), "{name}: {got:?}"),
                Some(b) => assert!(got.contains(&b), "{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn spec_55_4_lead_times_and_idle_rehibernation() {
        assert_eq!(wake_lead_s(Tier::HighPriority), Some(300));
        assert_eq!(wake_lead_s(Tier::Standard), Some(60));
        assert_eq!(wake_lead_s(Tier::Enterprise), None);
        assert!(!prewarm_expired(NOW - 2 * 3600 + 1, NOW));
        assert!(prewarm_expired(NOW - 2 * 3600, NOW));
    }

    #[test]
    fn spec_55_2_savings() {
        // $3.50 a month per tenant; 4,500 tenants hibernated for a month save $15,750.
        assert_eq!(savings_cents(thresholds::MONTH_S), 350);
        assert_eq!(4_500 * savings_cents(thresholds::MONTH_S), 1_575_000);
        assert_eq!(savings_cents(-5), 0);
    }

    proptest! {
        #[test]
        fn enterprise_never_hibernates(days in 0i64..10_000, hold: bool) {
            let mut a = idle(Tier::Enterprise);
            a.manual_hold = hold;
            a.active_since = NOW - days * DAY;
            prop_assert!(!eligible(&a, NOW));
        }

        #[test]
        fn any_recent_activity_blocks(ago in 0i64..(7 * DAY), which in 0usize..3) {
            let mut a = idle(Tier::Standard);
            match which {
                0 => a.last_campaign_at = Some(NOW - ago),
                1 => a.last_execution_at = Some(NOW - ago),
                _ => a.last_login_at = Some(NOW - ago),
            }
            prop_assert!(!eligible(&a, NOW));
        }

        #[test]
        fn activity_before_activation_does_not_count(before in 1i64..1_000) {
            // A restored workspace's old logins do not make it look idle.
            let mut a = idle(Tier::Standard);
            a.active_since = NOW - DAY;
            a.last_login_at = Some(NOW - DAY - before * DAY);
            prop_assert!(blockers(&a, NOW).contains(&Blocker::RecentLogin));
        }
    }
}
