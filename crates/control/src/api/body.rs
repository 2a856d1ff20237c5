//! Request parsing helpers that turn every rejection into a problem naming the field.

use genesis_core::WorkspaceId;

use crate::Problem;

pub use crate::extract::{ApiJson, ApiQuery};

/// Parses the `{id}` path segment.
pub fn workspace_id(raw: &str) -> Result<WorkspaceId, Problem> {
    WorkspaceId::parse(raw).map_err(|e| Problem::invalid_field("id", e))
}

/// A required string field: missing → problem naming it.
pub fn required<'a>(field: &str, v: &'a Option<String>) -> Result<&'a str, Problem> {
    v.as_deref()
        .ok_or_else(|| Problem::invalid_field(field, "is required"))
}
