//! One error type for the store boundary. It keeps what a user may see (which field, which
//! resource) apart from internal context, and says whether a retry can help.

use genesis_core::{IllegalTransition, IllegalWorkspaceTransition};

/// Everything the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist (or is invisible to this tenant, which callers must
    /// not distinguish).
    #[error("{what} not found")]
    NotFound {
        /// A short noun: "workspace", "droplet", "lead".
        what: &'static str,
    },
    /// A unique value is already taken.
    #[error("{field} {value:?} is already in use")]
    Conflict {
        /// The offending field, as named in the API.
        field: &'static str,
        /// The value that collided.
        value: String,
    },
    /// Input the database refused (a CHECK constraint) that the parsers should have caught.
    #[error("{field} is invalid: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A request the current state does not allow, in words for the person who made it
    /// ("the grace period ended on ...").
    #[error("{message}")]
    Refused {
        /// The field or resource it is about.
        what: &'static str,
        /// Why, for people.
        message: String,
    },
    /// A state-machine refusal.
    #[error(transparent)]
    IllegalDropletTransition(#[from] IllegalTransition),
    /// A state-machine refusal.
    #[error(transparent)]
    IllegalWorkspaceTransition(#[from] IllegalWorkspaceTransition),
    /// Somebody else changed the row first (optimistic concurrency); re-read and retry.
    #[error("{what} was changed concurrently (expected version {expected})")]
    VersionConflict {
        /// "workspace" or "droplet".
        what: &'static str,
        /// The version the caller based its change on.
        expected: i64,
    },
    /// A stored value this build does not understand; never silently defaulted.
    #[error("corrupt {what} in the database: {value:?}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// The stored value.
        value: String,
    },
    /// The tenant's lead partition does not exist yet: it is created by the workspace's
    /// ignition, so leads cannot be stored before.
    #[error("the workspace has no lead table yet")]
    NoLeadPartition,
    /// Tenant access refused (fail-closed); the refusal has been audited.
    #[error("tenant access refused: {0}")]
    AccessRefused(crate::tenant::RefusalReason),
    /// DDL could not get its lock within `lock_timeout` after every retry.
    #[error("partition DDL for {partition} gave up after {attempts} lock timeouts")]
    LockTimeout {
        /// The partition concerned.
        partition: String,
        /// How many attempts were made.
        attempts: usize,
    },
    /// Anything else from the driver or the server.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migration failure.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True when the same call may succeed later without any change by the caller.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::VersionConflict { .. } | StoreError::LockTimeout { .. } => true,
            StoreError::Database(e) => sqlstate(e).is_some_and(is_transient_sqlstate),
            _ => false,
        }
    }

    pub(crate) fn corrupt_state(value: &str) -> Self {
        StoreError::Corrupt {
            what: "state",
            value: value.to_owned(),
        }
    }
}

/// A row that no partition takes (SQLSTATE 23514 from the partition router, as opposed to a
/// CHECK constraint's) becomes [`StoreError::NoLeadPartition`].
pub(crate) fn no_partition_or(e: sqlx::Error) -> StoreError {
    let unrouted = e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("23514") && d.message().starts_with("no partition of relation")
    });
    if unrouted {
        StoreError::NoLeadPartition
    } else {
        StoreError::Database(e)
    }
}

/// The SQLSTATE of a server error, if it is one.
pub(crate) fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// lock_not_available, deadlock_detected, serialization_failure.
pub(crate) fn is_transient_sqlstate(code: String) -> bool {
    matches!(code.as_str(), "55P03" | "40P01" | "40001")
}

/// Maps a unique violation on a known constraint to [`StoreError::Conflict`].
pub(crate) fn conflict_or(e: sqlx::Error, field: &'static str, value: &str) -> StoreError {
    if sqlstate(&e).as_deref() == Some("23505") {
        StoreError::Conflict {
            field,
            value: value.to_owned(),
        }
    } else {
        StoreError::Database(e)
    }
}
