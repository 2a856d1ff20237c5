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

    /// Whether the deletion can be called off during the grace period.
    pub fn reversible(self) -> bool {
        !matches!(self, DeletionTrigger::Tos | DeletionTrigger::Fraud)
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
