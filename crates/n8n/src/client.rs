//! [`N8n`]: n8n's public REST API v1 (`/api/v1`, header `X-N8N-API-KEY`).
//!
//! # What n8n 2.8.4 does that this client respects (observed on the real thing)
//! - Answers are flat objects, except lists: `{data, nextCursor}`.
//! - `PUT /workflows/{id}` takes only `name`, `nodes`, `connections`, `settings` (`{}` is
//!   fine); `id`, `active`, `tags` are read-only; `versionId`, `pinData`, `meta` are refused.
//!   So every write goes through [`WorkflowDraft`], which has exactly those four fields.
//! - A credential id inside a node that does not exist is accepted at create and activate and
//!   fails only when the workflow runs: callers check ids first ([`crate::verify_credentials`]).
//! - Execution ids are strings.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::N8nError;
use crate::types::{CredentialCreated, Execution, Page, Tag, Workflow, WorkflowDraft};

/// A client for one n8n. Cheap to clone.
#[derive(Clone)]
pub struct N8n {
    http: reqwest::Client,
    base: String,
    api_key: String,
}

impl std::fmt::Debug for N8n {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("N8n")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Page size for lists (n8n's maximum is 250).
const PAGE: u32 = 250;

impl N8n {
    /// A client for the n8n at `base_url` (e.g. `http://127.0.0.1:5678`).
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<Self, N8nError> {
        Self::with_http(
            base_url,
            api_key,
            reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .map_err(|e| N8nError::Transport(e.to_string()))?,
        )
    }

    /// The same, over a prepared HTTP client (e.g. one bound to a droplet's address).
    pub fn with_http(
        base_url: &str,
        api_key: &str,
        http: reqwest::Client,
    ) -> Result<Self, N8nError> {
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.to_owned(),
        })
    }

    /// The n8n's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<T, N8nError> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .header("X-N8N-API-KEY", &self.api_key)
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| N8nError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| N8nError::Transport(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| N8nError::Decode(format!("{path}: {e}")));
        }
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => N8nError::Unauthorized(message),
            StatusCode::NOT_FOUND => N8nError::NotFound(what.to_owned()),
            StatusCode::BAD_REQUEST => N8nError::BadRequest(message),
            s => N8nError::Status {
                status: s.as_u16(),
                message,
            },
        })
    }

    async fn all<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<Vec<T>, N8nError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit={PAGE}&cursor={c}"),
                None => format!("{path}{sep}limit={PAGE}"),
            };
            let page: Page<T> = self.call(Method::GET, &url, None, what).await?;
            out.extend(page.data);
            match page.next_cursor {
                Some(c) if !c.is_empty() => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// Creates a workflow (inactive).
    pub async fn workflow_create(&self, draft: &WorkflowDraft) -> Result<Workflow, N8nError> {
        let body = serde_json::to_value(draft).map_err(|e| N8nError::Decode(e.to_string()))?;
        self.call(Method::POST, "/workflows", Some(&body), "workflow")
            .await
    }

    /// One workflow.
    pub async fn workflow_get(&self, id: &str) -> Result<Workflow, N8nError> {
        self.call(Method::GET, &format!("/workflows/{id}"), None, "workflow")
            .await
    }

    /// Every workflow.
    pub async fn workflow_list(&self) -> Result<Vec<Workflow>, N8nError> {
        self.all("/workflows", "workflow").await
    }

    /// The workflow named exactly `name`, if any. n8n filters by name on its side (a
    /// substring match), so a lookup costs the matching workflows, not the whole list:
    /// deploying one workflow to a droplet that runs many stays one small read.
    pub async fn workflow_find(&self, name: &str) -> Result<Option<Workflow>, N8nError> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("name", name)
            .append_pair("excludePinnedData", "true")
            .finish();
        Ok(self
            .all::<Workflow>(&format!("/workflows?{query}"), "workflow")
            .await?
            .into_iter()
            .find(|w| w.name == name))
    }

    /// Replaces a workflow's definition (n8n keeps its active state).
    pub async fn workflow_update(
        &self,
        id: &str,
        draft: &WorkflowDraft,
    ) -> Result<Workflow, N8nError> {
        let body = serde_json::to_value(draft).map_err(|e| N8nError::Decode(e.to_string()))?;
        self.call(
            Method::PUT,
            &format!("/workflows/{id}"),
            Some(&body),
            "workflow",
        )
        .await
    }

    /// Activates (its webhooks start answering).
    pub async fn workflow_activate(&self, id: &str) -> Result<Workflow, N8nError> {
        self.call(
            Method::POST,
            &format!("/workflows/{id}/activate"),
            Some(&json!({})),
            "workflow",
        )
        .await
    }

    /// Deactivates.
    pub async fn workflow_deactivate(&self, id: &str) -> Result<Workflow, N8nError> {
        self.call(
            Method::POST,
            &format!("/workflows/{id}/deactivate"),
            None,
            "workflow",
        )
        .await
    }

    /// Deletes.
    pub async fn workflow_delete(&self, id: &str) -> Result<Workflow, N8nError> {
        self.call(
            Method::DELETE,
            &format!("/workflows/{id}"),
            None,
            "workflow",
        )
        .await
    }

    /// Every tag.
    pub async fn tag_list(&self) -> Result<Vec<Tag>, N8nError> {
        self.all("/tags", "tag").await
    }

    /// The id of the tag named `name`, creating it when missing. Tag names are unique in
    /// n8n, so a concurrent creation (409) is settled by reading the winner's id. n8n 2.8.4
    /// also answers 409 to a name it cannot store (empty, or over 24 characters); with no
    /// winner to read, that is reported as the refusal it is.
    pub async fn tag_ensure(&self, name: &str) -> Result<String, N8nError> {
        let find = |tags: Vec<Tag>| tags.into_iter().find(|t| t.name == name).map(|t| t.id);
        if let Some(id) = find(self.tag_list().await?) {
            return Ok(id);
        }
        match self
            .call::<Tag>(Method::POST, "/tags", Some(&json!({ "name": name })), "tag")
            .await
        {
            Ok(t) => Ok(t.id),
            Err(N8nError::Status { status: 409, .. }) => {
                find(self.tag_list().await?).ok_or_else(|| {
                    N8nError::BadRequest(format!(
                        "n8n refused the tag name {name:?} (tag names are 1 to 24 characters)"
                    ))
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Replaces a workflow's tags with `tag_ids`.
    pub async fn workflow_tags_set(&self, id: &str, tag_ids: &[String]) -> Result<(), N8nError> {
        let body: Vec<Value> = tag_ids.iter().map(|t| json!({ "id": t })).collect();
        self.call::<Vec<Tag>>(
            Method::PUT,
            &format!("/workflows/{id}/tags"),
            Some(&Value::Array(body)),
            "workflow",
        )
        .await
        .map(|_| ())
    }

    /// Creates a credential; `data` must match the type's schema.
    pub async fn credential_create(
        &self,
        name: &str,
        kind: &str,
        data: &Value,
    ) -> Result<CredentialCreated, N8nError> {
        let body = json!({"name": name, "type": kind, "data": data});
        self.call(Method::POST, "/credentials", Some(&body), "credential")
            .await
    }

    /// Replaces a credential's data.
    pub async fn credential_patch(
        &self,
        id: &str,
        data: &Value,
    ) -> Result<CredentialCreated, N8nError> {
        let body = json!({"data": data});
        self.call(
            Method::PATCH,
            &format!("/credentials/{id}"),
            Some(&body),
            "credential",
        )
        .await
    }

    /// Deletes a credential.
    pub async fn credential_delete(&self, id: &str) -> Result<(), N8nError> {
        self.call::<Value>(
            Method::DELETE,
            &format!("/credentials/{id}"),
            None,
            "credential",
        )
        .await
        .map(|_| ())
    }

    /// Every credential (ids, names and types only).
    pub async fn credential_list(&self) -> Result<Vec<CredentialCreated>, N8nError> {
        self.all("/credentials", "credential").await
    }

    /// The JSON Schema of a credential type's data.
    pub async fn credential_schema(&self, kind: &str) -> Result<Value, N8nError> {
        self.call(
            Method::GET,
            &format!("/credentials/schema/{kind}"),
            None,
            "credential type",
        )
        .await
    }

    /// Executions, newest first, optionally of one workflow.
    pub async fn execution_list(
        &self,
        workflow_id: Option<&str>,
    ) -> Result<Vec<Execution>, N8nError> {
        match workflow_id {
            Some(w) => {
                self.all(&format!("/executions?workflowId={w}"), "execution")
                    .await
            }
            None => self.all("/executions", "execution").await,
        }
    }

    /// Executions in one status (`running`, `waiting`, `error`, ...), across all pages.
    pub async fn execution_list_by_status(&self, status: &str) -> Result<Vec<Execution>, N8nError> {
        self.all(&format!("/executions?status={status}"), "execution")
            .await
    }

    /// One execution.
    pub async fn execution_get(&self, id: &str) -> Result<Execution, N8nError> {
        self.call(Method::GET, &format!("/executions/{id}"), None, "execution")
            .await
    }
}
