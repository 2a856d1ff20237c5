//! What can go wrong talking to n8n.

/// An n8n call that failed.
#[derive(Debug, thiserror::Error)]
pub enum N8nError {
    /// The API key is missing, wrong or revoked.
    #[error("n8n refused the API key: {0}")]
    Unauthorized(String),
    /// No such workflow, credential or execution.
    #[error("n8n has no such {0}")]
    NotFound(String),
    /// n8n rejected the request (its message says why).
    #[error("n8n rejected the request: {0}")]
    BadRequest(String),
    /// Any other status.
    #[error("n8n answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// n8n's message.
        message: String,
    },
    /// n8n could not be reached in time.
    #[error("n8n is unreachable: {0}")]
    Transport(String),
    /// n8n answered something this crate cannot read.
    #[error("unexpected answer from n8n: {0}")]
    Decode(String),
    /// Bootstrap could not complete (state file, readiness, owner, key).
    #[error("n8n bootstrap failed: {0}")]
    Bootstrap(String),
}
