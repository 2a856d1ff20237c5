//! The ignition saga's shape (spec 41.1): its steps in order, each with its timeout and
//! whether it has an undo action, and the saga's own phases. The actions themselves live in
//! `genesis-ignition`; this is the part every crate agrees on (the store persists these codes,
//! the API shows them, the CLI draws them).
//!
//! # Vocabulary (after oxidecomputer/steno)
//! - **action**: what a step does; idempotent, so running it twice changes nothing the second
//!   time.
//! - **undo action**: what reverses a step that completed (spec 50.6's compensation).
//! - **saga log**: the persisted record of every action and undo started and finished; the only
//!   thing recovery reads.
//! - **unwind**: running the undo actions of every completed step in reverse order.
//!
//! # Guarantees
//! - Either every step completes or every completed step is undone (spec 41.1's atomic
//!   guarantee).
//! - A saga never moves backwards: once it unwinds, it only unwinds.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One step of the ignition saga, in spec 41.1's order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IgnitionStep {
    /// Create the tenant's lead partition. Undo: drop it.
    PartitionCreating,
    /// Create the droplet with its cloud-init and wait until the cloud says it runs.
    /// Undo: delete every droplet tagged for the workspace.
    DropletProvisioning,
    /// Wait for the sidecar's handshake. No undo of its own: the droplet's deletion (the
    /// previous step's undo) is spec 41.1's "DELETE droplet" for this step.
    HandshakePending,
    /// Send the tenant's credentials, sealed, to the sidecar. Undo: purge the vault.
    CredentialsInjecting,
    /// Deploy the Golden Template through the UUID Mapper. Undo: forget the webhook rows
    /// (the workflows die with the droplet; spec 41.1 says N/A).
    WorkflowsDeploying,
    /// Activate the workflows. Undo: deactivate them.
    Activating,
}

impl IgnitionStep {
    /// Every step, in order.
    pub const ALL: [IgnitionStep; 6] = [
        IgnitionStep::PartitionCreating,
        IgnitionStep::DropletProvisioning,
        IgnitionStep::HandshakePending,
        IgnitionStep::CredentialsInjecting,
        IgnitionStep::WorkflowsDeploying,
        IgnitionStep::Activating,
    ];

    /// Spec 41.1's timeout: past it, the step fails and the saga unwinds.
    pub fn timeout(self) -> Duration {
        Duration::from_secs(match self {
            IgnitionStep::PartitionCreating => 30,
            IgnitionStep::DropletProvisioning => 120,
            IgnitionStep::HandshakePending => 300,
            IgnitionStep::CredentialsInjecting => 60,
            IgnitionStep::WorkflowsDeploying => 120,
            IgnitionStep::Activating => 30,
        })
    }

    /// The step after this one; `None` after the last.
    pub fn next(self) -> Option<IgnitionStep> {
        let i = IgnitionStep::ALL.iter().position(|s| *s == self)?;
        IgnitionStep::ALL.get(i + 1).copied()
    }

    /// 1-based position (what progress bars show: "step 3/6").
    pub fn number(self) -> usize {
        IgnitionStep::ALL
            .iter()
            .position(|s| *s == self)
            .map_or(0, |i| i + 1)
    }

    /// The stable code stored in the saga log and shown in APIs.
    pub fn code(self) -> &'static str {
        match self {
            IgnitionStep::PartitionCreating => "PARTITION_CREATING",
            IgnitionStep::DropletProvisioning => "DROPLET_PROVISIONING",
            IgnitionStep::HandshakePending => "HANDSHAKE_PENDING",
            IgnitionStep::CredentialsInjecting => "CREDENTIALS_INJECTING",
            IgnitionStep::WorkflowsDeploying => "WORKFLOWS_DEPLOYING",
            IgnitionStep::Activating => "ACTIVATING",
        }
    }

    /// Parses a stored code; `None` means corruption.
    pub fn from_code(code: &str) -> Option<Self> {
        IgnitionStep::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for IgnitionStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Where a saga is as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SagaPhase {
    /// Running actions forward.
    Running,
    /// A step failed; running undo actions in reverse.
    Unwinding,
    /// Every action completed. Final.
    Done,
    /// Every completed action was undone. Final.
    RolledBack,
}

impl SagaPhase {
    /// Every phase.
    pub const ALL: [SagaPhase; 4] = [
        SagaPhase::Running,
        SagaPhase::Unwinding,
        SagaPhase::Done,
        SagaPhase::RolledBack,
    ];

    /// No more work will happen.
    pub fn is_final(self) -> bool {
        matches!(self, SagaPhase::Done | SagaPhase::RolledBack)
    }

    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            SagaPhase::Running => "RUNNING",
            SagaPhase::Unwinding => "UNWINDING",
            SagaPhase::Done => "DONE",
            SagaPhase::RolledBack => "ROLLED_BACK",
        }
    }

    /// Parses a stored code; `None` means corruption.
    pub fn from_code(code: &str) -> Option<Self> {
        SagaPhase::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for SagaPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One entry of a saga's log: a step's action or undo action started, finished, or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SagaEvent {
    /// The action began.
    ActionStarted,
    /// The action completed (its output is the entry's detail).
    ActionDone,
    /// The action failed for good (the error is the detail).
    ActionFailed,
    /// The undo action began.
    UndoStarted,
    /// The undo action completed.
    UndoDone,
    /// The undo action failed (an operator must look).
    UndoFailed,
}

impl SagaEvent {
    /// Every event.
    pub const ALL: [SagaEvent; 6] = [
        SagaEvent::ActionStarted,
        SagaEvent::ActionDone,
        SagaEvent::ActionFailed,
        SagaEvent::UndoStarted,
        SagaEvent::UndoDone,
        SagaEvent::UndoFailed,
    ];

    /// The stable code (stored, and shown by the API).
    pub fn code(self) -> &'static str {
        match self {
            SagaEvent::ActionStarted => "action_started",
            SagaEvent::ActionDone => "action_done",
            SagaEvent::ActionFailed => "action_failed",
            SagaEvent::UndoStarted => "undo_started",
            SagaEvent::UndoDone => "undo_done",
            SagaEvent::UndoFailed => "undo_failed",
        }
    }

    /// Parses a stored code; `None` means corruption.
    pub fn from_code(code: &str) -> Option<Self> {
        SagaEvent::ALL.into_iter().find(|e| e.code() == code)
    }
}

impl fmt::Display for SagaEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saga_event_codes_round_trip_and_match_serde() {
        for e in SagaEvent::ALL {
            assert_eq!(SagaEvent::from_code(e.code()), Some(e));
            assert_eq!(serde_json::json!(e), serde_json::json!(e.code()));
        }
        assert_eq!(SagaEvent::from_code("ACTION_DONE"), None);
    }

    #[test]
    fn steps_walk_in_spec_order_and_codes_round_trip() {
        let mut s = IgnitionStep::PartitionCreating;
        let mut seen = vec![s];
        while let Some(n) = s.next() {
            assert!(n > s, "steps only move forward");
            seen.push(n);
            s = n;
        }
        assert_eq!(seen, IgnitionStep::ALL);
        for (i, s) in IgnitionStep::ALL.into_iter().enumerate() {
            assert_eq!(IgnitionStep::from_code(s.code()), Some(s));
            assert_eq!(s.number(), i + 1);
        }
        for p in SagaPhase::ALL {
            assert_eq!(SagaPhase::from_code(p.code()), Some(p));
        }
    }

    #[test]
    fn timeouts_are_spec_41_1() {
        let total: u64 = IgnitionStep::ALL
            .iter()
            .map(|s| s.timeout().as_secs())
            .sum();
        assert_eq!(total, 30 + 120 + 300 + 60 + 120 + 30);
        assert_eq!(IgnitionStep::HandshakePending.timeout().as_secs(), 300);
    }
}
