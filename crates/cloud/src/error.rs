//! Errors of the cloud boundary, split by what the caller should do about them.

use std::time::Duration;

/// A cloud call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The API refused the request (4xx other than 429): fix the input, do not retry.
    #[error("cloud refused the request ({status} {id}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// DigitalOcean's error id.
        id: String,
        /// DigitalOcean's message.
        message: String,
        /// The request field the message names, when it names one.
        field: Option<String>,
    },
    /// The resource does not exist.
    #[error("not found")]
    NotFound,
    /// Still rate limited after every retry.
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// What the server asked for.
        retry_after: Duration,
    },
    /// 5xx after every retry.
    #[error("cloud unavailable ({status}) after {attempts} attempts")]
    Unavailable {
        /// Last status.
        status: u16,
        /// Attempts made.
        attempts: usize,
    },
    /// No answer within the call's deadline.
    #[error("cloud call timed out after {0:?}")]
    Timeout(Duration),
    /// Connection-level failure.
    #[error("cloud transport error: {0}")]
    Transport(String),
    /// A response we could not decode (a contract break).
    #[error("unexpected cloud response: {0}")]
    Decode(String),
    /// The action ended `errored`.
    #[error("action {id} ({kind}) errored")]
    ActionErrored {
        /// Action id.
        id: i64,
        /// Action type.
        kind: String,
    },
    /// The action did not finish before its deadline.
    #[error("action {id} still in progress after {deadline:?}")]
    ActionDeadline {
        /// Action id.
        id: i64,
        /// The deadline.
        deadline: Duration,
    },
}

impl CloudError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudError::RateLimited { .. }
                | CloudError::Unavailable { .. }
                | CloudError::Timeout(_)
                | CloudError::Transport(_)
                | CloudError::ActionDeadline { .. }
        )
    }
}
