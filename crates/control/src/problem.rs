//! RFC 9457 problem details: every API error is `application/problem+json` with a stable
//! `type`, a human `title`/`detail`, and the offending `field` when there is one.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use genesis_store::StoreError;
use serde::Serialize;

/// A problem response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable identifier of the problem kind, e.g. `/problems/invalid-field`.
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: String,
    /// Short summary of the kind.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What happened in this case.
    pub detail: String,
    /// The request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds after which a retry may succeed: sent as `Retry-After`, not in the body.
    #[serde(skip)]
    pub retry_after_s: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, kind: &str, title: &'static str, detail: String) -> Self {
        Self {
            kind: format!("/problems/{kind}"),
            title,
            status: status.as_u16(),
            detail,
            field: None,
            retry_after_s: None,
        }
    }

    /// The same problem, telling the client when to retry (`Retry-After`, whole seconds,
    /// at least one).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }

    /// A field failed to parse or validate.
    pub fn invalid_field(field: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        let field = field.into();
        let mut p = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            "Invalid field",
            format!("{field}: {detail}"),
        );
        p.field = Some(field);
        p
    }

    /// The body is not JSON of the expected shape.
    pub fn bad_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-body",
            "Malformed request body",
            detail.to_string(),
        )
    }

    /// The body is in a format this route does not read.
    pub fn unsupported_media(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail.to_string(),
        )
    }

    /// The route exists, but not for this method; `allowed` is what the `Allow` header says.
    pub fn method_not_allowed(method: &str, allowed: &str) -> Self {
        let detail = if allowed.is_empty() {
            format!("{method} is not allowed here")
        } else {
            format!("{method} is not allowed here; this route accepts {allowed}")
        };
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            detail,
        )
    }

    /// Any other status, with its standard reason as the title.
    pub fn with_status(status: StatusCode, detail: impl std::fmt::Display) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        let kind = title.to_ascii_lowercase().replace(' ', "-");
        Self::new(status, &kind, title, detail.to_string())
    }

    /// Nothing here by that name.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("{what} not found"),
        )
    }

    /// A unique value is taken.
    pub fn conflict(field: &str, detail: impl std::fmt::Display) -> Self {
        let mut p = Self::new(
            StatusCode::CONFLICT,
            "conflict",
            "Conflict",
            detail.to_string(),
        );
        p.field = Some(field.to_owned());
        p
    }

    /// Missing or wrong credentials.
    pub fn unauthorized(detail: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail.to_owned(),
        )
    }

    /// Authenticated but not allowed.
    pub fn forbidden(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            detail.to_string(),
        )
    }

    /// Too many requests from one source; retry later.
    pub fn too_many(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-requests",
            "Too many requests",
            detail.to_string(),
        )
    }

    /// A dependency is down or busy; retry later.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail.to_string(),
        )
    }

    /// A droplet's sidecar refused a command or the command failed there.
    pub fn bad_gateway(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "droplet-command-failed",
            "The droplet did not do it",
            detail.to_string(),
        )
    }

    /// A droplet's sidecar did not answer in time.
    pub fn gateway_timeout(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "droplet-unreachable",
            "The droplet did not answer",
            detail.to_string(),
        )
    }

    /// The same problem, about `field` (a form shows it beside that field).
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    /// Our fault. The detail stays generic; the cause goes to the log.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed; the error was logged".into(),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after_s;
        let mut resp = (status, Json(self)).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        // RFC 9110: a 401 names how to authenticate (RFC 6750's Bearer scheme for the API).
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"genesis\""),
            );
        }
        resp
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => Problem::not_found(what),
            StoreError::Conflict { field, value } => {
                Problem::conflict(field, format!("{field} {value:?} is already in use"))
            }
            StoreError::Invalid { field, message } => Problem::invalid_field(field, message),
            StoreError::Refused { what, message } => Problem::conflict(what, message),
            StoreError::NoLeadPartition => Problem::conflict(
                "id",
                "this workspace has no lead table yet: it is created when the workspace is ignited",
            ),
            StoreError::AccessRefused(reason) => {
                Problem::forbidden(format!("tenant access refused ({reason})"))
            }
            e if e.is_retryable() => {
                tracing::warn!(error = %e, "retryable store error");
                Problem::unavailable("the database is busy; retry shortly")
            }
            e => {
                tracing::error!(error = %e, "store error");
                Problem::internal()
            }
        }
    }
}
