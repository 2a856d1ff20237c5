//! Why a tenant is deleted, and what each reason allows (spec 64.1): how long the grace
//! period lasts, whether it can be called off, and who may start it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::workspace::WorkspaceStatus;

const DAY: Duration = Duration::from_secs(86_400);

/// The five triggers of spec 64.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeletionTrigger {
    /// The tenant asked: 7 days, reversible.
    User,
    /// The subscription was cancelled: 30 days, reversible.
    Cancelled,
    /// 90 days without payment: 7 days, reversible once paid.
    NonPayment,
    /// A breach of the terms of service: immediate, irreversible, an operator with a reason.
    Tos,
    /// Fraud: immediate, irreversible, an operator with a reason.
    Fraud,
}

impl DeletionTrigger {
    /// Every trigger.
    pub const ALL: [DeletionTrigger; 5] = [
        DeletionTrigger::User,
        DeletionTrigger::Cancelled,
        DeletionTrigger::NonPayment,
        DeletionTrigger::Tos,
        DeletionTrigger::Fraud,
    ];

    /// The stable code (`user`, `cancelled`, `non-payment`, `tos`, `fraud`).
    pub fn code(self) -> &'static str {
        match self {
            DeletionTrigger::User => "user",
            DeletionTrigger::Cancelled => "cancelled",
            DeletionTrigger::NonPayment => "non-payment",
            DeletionTrigger::Tos => "tos",
            DeletionTrigger::Fraud => "fraud",
        }
    }

    /// Parses a code; `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// How long the tenant has before the data goes.
    pub fn grace(self) -> Duration {
        match self {
            DeletionTrigger::User | DeletionTrigger::NonPayment => 7 * DAY,
            DeletionTrigger::Cancelled => 30 * DAY,
            DeletionTrigger::Tos | DeletionTrigger::Fraud => Duration::ZERO,
        }
    }

    /// Whether the deletion can be called off during the grace period (for `non-payment`,
    /// only once a payment has arrived: [`Self::needs_payment_to_reverse`]).
    pub fn reversible(self) -> bool {
        !matches!(self, DeletionTrigger::Tos | DeletionTrigger::Fraud)
    }

    /// Whether calling it off needs a payment received since it was requested (spec 64.1:
    /// non-payment is reversible "if paid"); a payment then calls it off by itself.
    pub fn needs_payment_to_reverse(self) -> bool {
        self == DeletionTrigger::NonPayment
    }

    /// Whether only an operator, giving a reason, may start it.
    pub fn needs_operator_reason(self) -> bool {
        !self.reversible()
    }

    /// Whether the tenant is told by e-mail, with a way back: not for the irreversible
    /// triggers, where there is no way back to offer.
    pub fn tells_the_tenant(self) -> bool {
        self.reversible()
    }
}

impl fmt::Display for DeletionTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The deletion saga's seven steps (spec 64.2), in the order they run. Each is forward-only
/// and idempotent: a step interrupted by a crash is run again, and finds done what was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStep {
    /// 1. The final export, kept 30 days.
    FinalExport,
    /// 2. The droplet, its snapshots and transferred images, checked against the cloud.
    CloudResources,
    /// 3. The lead partition, detached `CONCURRENTLY`, then dropped.
    LeadPartition,
    /// 4. The vault, webhooks, tokens, sessions, members and every other row.
    TenantRows,
    /// 5. The wallet's balance; the ledger stays, its references anonymised.
    Wallet,
    /// 6. The audit trail's personal fields, through their MACs.
    AuditTrail,
    /// 7. TERMINATED, and the certificate.
    Terminate,
}

impl DeletionStep {
    /// Every step, in order.
    pub const ALL: [DeletionStep; 7] = [
        DeletionStep::FinalExport,
        DeletionStep::CloudResources,
        DeletionStep::LeadPartition,
        DeletionStep::TenantRows,
        DeletionStep::Wallet,
        DeletionStep::AuditTrail,
        DeletionStep::Terminate,
    ];

    /// Its number, 1 to 7.
    pub fn number(self) -> i32 {
        self as i32 + 1
    }

    /// The step numbered `n` (1 to 7).
    pub fn from_number(n: i32) -> Option<Self> {
        usize::try_from(n - 1)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The stable code (`final_export`, ...).
    pub fn code(self) -> &'static str {
        match self {
            DeletionStep::FinalExport => "final_export",
            DeletionStep::CloudResources => "cloud_resources",
            DeletionStep::LeadPartition => "lead_partition",
            DeletionStep::TenantRows => "tenant_rows",
            DeletionStep::Wallet => "wallet",
            DeletionStep::AuditTrail => "audit_trail",
            DeletionStep::Terminate => "terminate",
        }
    }

    /// What it does, for people.
    pub fn describe(self) -> &'static str {
        match self {
            DeletionStep::FinalExport => "final export written (kept 30 days)",
            DeletionStep::CloudResources => "droplet, snapshots and images destroyed",
            DeletionStep::LeadPartition => "lead partition detached and dropped",
            DeletionStep::TenantRows => "vault, webhooks, tokens, sessions and members purged",
            DeletionStep::Wallet => "wallet balance closed, ledger anonymised",
            DeletionStep::AuditTrail => "audit trail anonymised",
            DeletionStep::Terminate => "workspace terminated",
        }
    }
}

/// How long the final export is kept after the deletion (spec 64.2, step 1).
pub const FINAL_EXPORT_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// The reminders of spec 64.1, in days after the request.
pub const REMINDER_DAYS: [u32; 2] = [3, 6];

/// The status a workspace returns to when its deletion is called off: the one it had before,
/// if that is one a deletion can start from.
pub fn status_after_cancel(previous: WorkspaceStatus) -> Option<WorkspaceStatus> {
    use WorkspaceStatus as S;
    matches!(
        previous,
        S::Pending | S::Active | S::RollbackComplete | S::Suspended
    )
    .then_some(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_64_1_grace_periods_and_reversibility() {
        let table: Vec<_> = DeletionTrigger::ALL
            .iter()
            .map(|t| (t.code(), t.grace().as_secs() / 86_400, t.reversible()))
            .collect();
        assert_eq!(
            table,
            [
                ("user", 7, true),
                ("cancelled", 30, true),
                ("non-payment", 7, true),
                ("tos", 0, false),
                ("fraud", 0, false),
            ]
        );
        for t in DeletionTrigger::ALL {
            assert_eq!(DeletionTrigger::from_code(t.code()), Some(t));
            assert_eq!(t.needs_operator_reason(), t.grace().is_zero());
        }
        assert_eq!(DeletionTrigger::from_code("USER"), None);
    }

    #[test]
    fn the_seven_steps_number_from_one_in_spec_order() {
        for (i, s) in DeletionStep::ALL.into_iter().enumerate() {
            assert_eq!(s.number(), i as i32 + 1);
            assert_eq!(DeletionStep::from_number(s.number()), Some(s));
        }
        assert_eq!(DeletionStep::from_number(0), None);
        assert_eq!(DeletionStep::from_number(8), None);
        assert_eq!(DeletionStep::ALL[2].code(), "lead_partition");
    }

    #[test]
    fn a_cancelled_deletion_returns_to_where_it_was_and_only_there() {
        for s in WorkspaceStatus::ALL {
            let can_start = s
                .next(crate::workspace::WorkspaceEvent::DeletionRequested)
                .is_ok();
            assert_eq!(status_after_cancel(s).is_some(), can_start, "{s}");
            if can_start {
                assert_eq!(status_after_cancel(s), Some(s));
            }
        }
    }
}
