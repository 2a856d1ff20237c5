//! The tenant (workspace) lifecycle: provisioning, operation, and the deletion grace period
//! of spec 64.
//!
//! # Guarantees
//! - `Terminated` is final.
//! - Deletion is reversible only while `PendingDeletion` (spec 64.1's grace period).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A workspace's display name: 1 to 200 characters after trimming, no control characters
/// (names end up in e-mails, dashboards and log lines).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct WorkspaceName(String);

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceNameError {
    /// Empty after trimming.
    #[error("is empty")]
    Empty,
    /// Over 200 characters.
    #[error("is longer than 200 characters")]
    TooLong,
    /// Contains a control character (newline, escape, ...).
    #[error("contains a control character")]
    ControlCharacter,
}

impl WorkspaceName {
    /// Parses a display name.
    pub fn parse(raw: &str) -> Result<Self, WorkspaceNameError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(WorkspaceNameError::Empty);
        }
        if s.chars().count() > 200 {
            return Err(WorkspaceNameError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(WorkspaceNameError::ControlCharacter);
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for WorkspaceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A workspace's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkspaceStatus {
    /// Created, never ignited: a row and nothing else (no partition, no droplet).
    Pending,
    /// An ignition saga is running (forward or unwinding).
    Provisioning,
    /// Ignited and serving.
    Active,
    /// The last ignition failed and every step was undone (spec 50.6); may be ignited again.
    RollbackComplete,
    /// Suspended (e.g. kill-switch); data kept, automation stopped.
    Suspended,
    /// In the deletion grace period; can still be cancelled.
    PendingDeletion,
    /// Hard-deleted. Final.
    Terminated,
}

/// Something that happened to a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkspaceEvent {
    /// An ignition saga started.
    IgnitionStarted,
    /// The ignition saga finished.
    IgnitionSucceeded,
    /// The ignition saga failed and unwound.
    IgnitionFailed,
    /// Automation stopped for this tenant.
    Suspended,
    /// Automation resumed.
    Resumed,
    /// Deletion requested (grace period starts).
    DeletionRequested,
    /// Deletion cancelled during the grace period.
    DeletionCancelled,
    /// Hard deletion finished.
    DeletionCompleted,
}

/// An event the current status does not accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("workspace in status {from} cannot accept event {event:?}")]
pub struct IllegalWorkspaceTransition {
    /// The status the workspace was in.
    pub from: WorkspaceStatus,
    /// The refused event.
    pub event: WorkspaceEvent,
}

impl WorkspaceStatus {
    /// Every status.
    pub const ALL: [WorkspaceStatus; 7] = [
        WorkspaceStatus::Pending,
        WorkspaceStatus::Provisioning,
        WorkspaceStatus::Active,
        WorkspaceStatus::RollbackComplete,
        WorkspaceStatus::Suspended,
        WorkspaceStatus::PendingDeletion,
        WorkspaceStatus::Terminated,
    ];

    /// The transition table.
    pub fn next(self, event: WorkspaceEvent) -> Result<Self, IllegalWorkspaceTransition> {
        use WorkspaceEvent as E;
        use WorkspaceStatus as S;
        let next = match (self, event) {
            (S::Pending | S::RollbackComplete, E::IgnitionStarted) => Some(S::Provisioning),
            (S::Provisioning, E::IgnitionSucceeded) => Some(S::Active),
            (S::Provisioning, E::IgnitionFailed) => Some(S::RollbackComplete),
            (S::Active, E::Suspended) => Some(S::Suspended),
            (S::Suspended, E::Resumed) => Some(S::Active),
            (S::Pending | S::Active | S::RollbackComplete | S::Suspended, E::DeletionRequested) => {
                Some(S::PendingDeletion)
            }
            (S::PendingDeletion, E::DeletionCancelled) => Some(S::Active),
            (S::PendingDeletion, E::DeletionCompleted) => Some(S::Terminated),
            _ => None,
        };
        next.ok_or(IllegalWorkspaceTransition { from: self, event })
    }

    /// The stable code stored in the database and shown in APIs.
    pub fn code(self) -> &'static str {
        match self {
            WorkspaceStatus::Pending => "PENDING",
            WorkspaceStatus::Provisioning => "PROVISIONING",
            WorkspaceStatus::Active => "ACTIVE",
            WorkspaceStatus::RollbackComplete => "ROLLBACK_COMPLETE",
            WorkspaceStatus::Suspended => "SUSPENDED",
            WorkspaceStatus::PendingDeletion => "PENDING_DELETION",
            WorkspaceStatus::Terminated => "TERMINATED",
        }
    }

    /// Parses a stored code; `None` means corruption, never a default.
    pub fn from_code(code: &str) -> Option<Self> {
        WorkspaceStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for WorkspaceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_is_reversible_only_in_grace() {
        let s = WorkspaceStatus::Active
            .next(WorkspaceEvent::DeletionRequested)
            .expect("active can be deleted");
        assert_eq!(
            s.next(WorkspaceEvent::DeletionCancelled),
            Ok(WorkspaceStatus::Active)
        );
        let t = s
            .next(WorkspaceEvent::DeletionCompleted)
            .expect("grace ends in termination");
        assert!(t.next(WorkspaceEvent::DeletionCancelled).is_err());
    }

    #[test]
    fn an_ignition_starts_from_pending_or_after_a_rollback_and_nothing_deletes_mid_saga() {
        use WorkspaceEvent as E;
        use WorkspaceStatus as S;
        assert_eq!(S::Pending.next(E::IgnitionStarted), Ok(S::Provisioning));
        assert_eq!(
            S::Provisioning.next(E::IgnitionFailed),
            Ok(S::RollbackComplete)
        );
        assert_eq!(
            S::RollbackComplete.next(E::IgnitionStarted),
            Ok(S::Provisioning)
        );
        // A running saga owns resources: deleting under it would leak them.
        assert!(S::Provisioning.next(E::DeletionRequested).is_err());
        assert!(S::Active.next(E::IgnitionStarted).is_err());
        assert!(S::Terminated.next(E::IgnitionStarted).is_err());
    }

    #[test]
    fn codes_round_trip() {
        for s in WorkspaceStatus::ALL {
            assert_eq!(WorkspaceStatus::from_code(s.code()), Some(s));
        }
    }
}
