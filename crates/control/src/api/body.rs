//! Request parsing helpers that turn every rejection into a problem naming the field.

use axum::extract::{FromRequest, Request, rejection::JsonRejection};
use genesis_core::WorkspaceId;
use serde::de::DeserializeOwned;

use crate::Problem;

/// `Json<T>` whose rejections are problem+json (serde's message names the field).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(Problem::bad_body(e.body_text())),
            Err(e) => Err(Problem::bad_body(e.body_text())),
        }
    }
}

/// Parses the `{id}` path segment.
pub fn workspace_id(raw: &str) -> Result<WorkspaceId, Problem> {
    WorkspaceId::parse(raw).map_err(|e| Problem::invalid_field("id", e))
}

/// A required string field: missing → problem naming it.
pub fn required<'a>(field: &str, v: &'a Option<String>) -> Result<&'a str, Problem> {
    v.as_deref()
        .ok_or_else(|| Problem::invalid_field(field, "is required"))
}
