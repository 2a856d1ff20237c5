//! n8n, as the sidecar drives it (spec 51, 53; DESIGN §3.7): the public REST API v1 client,
//! the headless bootstrap of a fresh n8n, and the Dynamic UUID Mapper that turns a Golden
//! Template into one tenant's workflow. Only this crate knows n8n's JSON.
//!
//! Pinned to **n8n 2.8.4** (the newest release that runs on Node.js 20); the behaviour this
//! crate relies on was observed on that version and is listed on [`client::N8n`].

pub mod bootstrap;
pub mod client;
pub mod credential_types;
pub mod error;
pub mod mapper;
pub mod secret_file;
pub mod types;
pub mod webhooks;

pub use client::N8n;
pub use credential_types::{CredentialProblem, CredentialType, CredentialTypes};
pub use error::N8nError;
pub use mapper::{MapError, map_template, template_variables, verify_credentials};
pub use types::{
    CredentialCreated, Execution, TEMPLATE_TAG_PREFIX, Tag, Workflow, WorkflowDraft, template_tag,
};
pub use webhooks::{ProductionWebhook, production_webhooks};

/// The n8n release this crate is written against.
pub const N8N_VERSION: &str = "2.8.4";
