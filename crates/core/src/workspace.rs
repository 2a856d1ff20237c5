//! The tenant (workspace) lifecycle: provisioning, operation, and the deletion grace period
//! of spec 64.
//!
//! # Guarantees
//! - `Terminated` is final.
//! - Deletion is reversible only while `PendingDeletion` (spec 64.1's grace period).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A workspace's display name: 1 to 200 characters after trimming, with no control
/// characters and no invisible formatting characters (names end up in e-mails, dashboards
/// and log lines, where a newline forges a log line, a bidi override makes `evil.exe` read as
/// `exe.live`, and a zero-width space makes two names that look the same differ).
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
    /// Contains an invisible formatting character: a bidirectional override or isolate, a
    /// zero-width character, or a byte-order mark.
    #[error("contains an invisible formatting character (U+{0:04X})")]
    InvisibleCharacter(u32),
}

/// The first character of `s` that changes how text around it is displayed without being
/// seen itself: the bidi embeddings, overrides, isolates and marks, the zero-width space,
/// the word joiner and invisible operators, the Mongolian vowel separator and the
/// byte-order mark. The zero-width joiner and non-joiner are real parts of emoji sequences
/// (👩‍💻) and of Persian and Indic spellings, so they pass between two non-ASCII characters,
/// and nowhere else (where they could only make two names that look alike differ).
fn invisible_format(s: &str) -> Option<char> {
    let chars: Vec<char> = s.chars().collect();
    chars.iter().enumerate().find_map(|(i, &c)| {
        let always = matches!(c,
            '\u{061C}' | '\u{180E}' | '\u{200B}' | '\u{200E}' | '\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}');
        let joiner = matches!(c, '\u{200C}' | '\u{200D}');
        let between_non_ascii = i > 0
            && chars.get(i - 1).is_some_and(|p| !p.is_ascii())
            && chars.get(i + 1).is_some_and(|n| !n.is_ascii());
        (always || (joiner && !between_non_ascii)).then_some(c)
    })
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
        if let Some(c) = invisible_format(s) {
            return Err(WorkspaceNameError::InvisibleCharacter(u32::from(c)));
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
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

    /// The status in the words an operator uses (God Mode); [`WorkspaceStatus::code`] stays
    /// the machine's name.
    pub fn in_words(self) -> &'static str {
        match self {
            WorkspaceStatus::Pending => "not started",
            WorkspaceStatus::Provisioning => "starting",
            WorkspaceStatus::Active => "live",
            WorkspaceStatus::RollbackComplete => "start failed, cleaned up",
            WorkspaceStatus::Suspended => "suspended",
            WorkspaceStatus::PendingDeletion => "being deleted",
            WorkspaceStatus::Terminated => "deleted",
        }
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
    fn names_refuse_what_a_reader_cannot_see() {
        for (raw, code) in [
            ("invoice\u{202E}fdp.exe", 0x202E),
            ("Acme\u{200B}Corp", 0x200B),
            ("\u{2067}Acme", 0x2067),
            ("Acme\u{FEFF}", 0xFEFF),
            ("a\u{2060}b", 0x2060),
            ("Acme\u{200D}Corp", 0x200D),
            ("\u{200C}Acme", 0x200C),
        ] {
            assert_eq!(
                WorkspaceName::parse(raw),
                Err(WorkspaceNameError::InvisibleCharacter(code)),
                "{raw:?}"
            );
        }
        assert_eq!(
            WorkspaceName::parse("Acme\u{85}Corp"),
            Err(WorkspaceNameError::ControlCharacter)
        );
        for ok in [
            "Acme Corp",
            "Café Zürich",
            "東京ラボ",
            "שלום עולם",
            "مرحبا",
            "👩‍💻 Labs",
            "می\u{200C}خواهم",
        ] {
            assert_eq!(WorkspaceName::parse(ok).map(|n| n.0), Ok(ok.to_owned()));
        }
    }

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
