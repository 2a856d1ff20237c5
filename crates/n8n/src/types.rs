//! n8n's JSON as far as the fleet reads it. Nodes and connections stay JSON: the mapper edits
//! them, and n8n owns their shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What `POST /workflows` and `PUT /workflows/{id}` accept: exactly these four fields (n8n
/// 2.8.4 rejects `versionId`, `pinData`, `meta`, and ignores the read-only ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDraft {
    /// Display name.
    pub name: String,
    /// Nodes.
    pub nodes: Vec<Value>,
    /// Connections between nodes, by source node name.
    pub connections: Value,
    /// Settings (`{}` is fine).
    pub settings: Value,
}

impl WorkflowDraft {
    /// The draft inside a workflow document (a template, or an exported workflow), keeping
    /// only the fields n8n accepts.
    pub fn from_document(doc: &Value) -> Result<Self, crate::N8nError> {
        let name = doc
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| crate::N8nError::BadRequest("the workflow has no name".into()))?;
        let nodes = doc
            .get("nodes")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| crate::N8nError::BadRequest("the workflow has no nodes".into()))?;
        Ok(Self {
            name: name.to_owned(),
            nodes,
            connections: doc
                .get("connections")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
            settings: doc
                .get("settings")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
        })
    }
}

/// A workflow as n8n returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// n8n's id (16 characters).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether its triggers are live.
    #[serde(default)]
    pub active: bool,
    /// Nodes.
    #[serde(default)]
    pub nodes: Vec<Value>,
    /// Connections.
    #[serde(default)]
    pub connections: Value,
    /// Settings.
    #[serde(default)]
    pub settings: Value,
    /// ISO 8601.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// Its tags (read-only in a workflow write; set through `/workflows/{id}/tags`).
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Workflow {
    /// The Golden Template version this workflow was deployed from, read from its
    /// [`TEMPLATE_TAG_PREFIX`] tag: what the watchdog compares (spec 43.2 `version_mismatch`).
    pub fn template_version(&self) -> Option<&str> {
        self.tags
            .iter()
            .find_map(|t| t.name.strip_prefix(TEMPLATE_TAG_PREFIX))
    }
}

/// The prefix of the tag that records a workflow's template version (`tpl:2026.11.1`).
/// Tags are n8n's own way to label workflows, survive restarts and show in its editor, so
/// the version travels with the workflow instead of living in a side file of the sidecar.
/// Short, because n8n limits tag names to 24 characters.
pub const TEMPLATE_TAG_PREFIX: &str = "tpl:";

/// The tag name for `version`.
pub fn template_tag(version: &str) -> String {
    format!("{TEMPLATE_TAG_PREFIX}{version}")
}

/// One n8n tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// n8n's id.
    pub id: String,
    /// Its unique name.
    pub name: String,
}

/// `POST /credentials` and `PATCH /credentials/{id}` answers (never the data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialCreated {
    /// n8n's id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Type, e.g. `openAiApi`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// An execution. n8n 2.8.4 returns ids as strings although its OpenAPI says numbers; both
/// are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Id.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// Whether it ended.
    #[serde(default)]
    pub finished: bool,
    /// `webhook`, `trigger`, `manual`, ...
    #[serde(default)]
    pub mode: String,
    /// `success`, `error`, `running`, `waiting`, ...
    #[serde(default)]
    pub status: String,
    /// The workflow.
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub workflow_id: Option<String>,
    /// Start (ISO 8601).
    #[serde(default)]
    pub started_at: Option<String>,
    /// End (ISO 8601), null while running.
    #[serde(default)]
    pub stopped_at: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected an id, got {other}"
        ))),
    }
}

fn opt_string_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(serde::de::Error::custom(format!(
            "expected an id, got {other}"
        ))),
    }
}

/// `{data, nextCursor}` of every list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}
