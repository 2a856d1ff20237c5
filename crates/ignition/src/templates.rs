//! The Golden Template set (spec 53): a versioned directory of n8n workflow templates with a
//! manifest naming the credentials they need. The default set, `templates/golden/`, is built
//! into the binary so a fresh install ignites without any files; operators may point the
//! control plane at another directory (a newer version, their own workflows).
//!
//! # Guarantees
//! - A loaded set is usable: every workflow parses, every credential placeholder a workflow
//!   uses is declared in the manifest, names and keys are unique.
//! - Every trigger node carries a `webhookId`, so the URL n8n serves it at does not depend on
//!   the id n8n gives the workflow (`genesis_n8n::webhooks`).
//! - [`TemplateSet::variables`] is exactly the set of `YOUR_...` placeholders of all workflows,
//!   so an ignition can refuse a missing onboarding value before it starts anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A credential the templates need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialSpec {
    /// What the API calls it in an ignite request (`gmail`).
    pub key: String,
    /// The placeholder the templates use as the credential id (`TEMPLATE_GMAIL_UUID`).
    pub placeholder: String,
    /// n8n's credential type (`gmailOAuth2`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The credential's name in the tenant's n8n (also its idempotency key there).
    pub name: String,
    /// Set when the platform makes this credential itself instead of asking the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformSecret>,
}

/// A credential the platform makes for every tenant and injects into its n8n (an
/// `httpHeaderAuth` credential, so n8n itself checks or sends the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformSecret {
    /// The token the lead-intake webhook demands in `X-Genesis-Token` (n8n's Webhook node
    /// with header auth answers 403 without it); shown to the tenant once, at ignite.
    WebhookToken,
    /// The workspace token the templates call the control plane back with (`Authorization:
    /// Bearer`): it may import and read that workspace's leads, nothing else.
    IngestToken,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: String,
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for operators; not used by code")]
    description: String,
    credentials: Vec<CredentialSpec>,
    workflows: Vec<String>,
}

/// One workflow template.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowTemplate {
    /// File name without `.json` (`lead-intake`): stable across versions.
    pub key: String,
    /// The n8n workflow JSON with placeholders.
    pub body: Value,
}

/// A loaded, checked template set.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSet {
    /// Version string recorded on every droplet that gets it.
    pub version: String,
    /// Credentials, in manifest order.
    pub credentials: Vec<CredentialSpec>,
    /// Workflows, in manifest order (deployment order).
    pub workflows: Vec<WorkflowTemplate>,
}

/// Why a template set was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not the JSON it should be.
    #[error("{file} is not valid: {message}")]
    Parse {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// The set is inconsistent.
    #[error("template set: {0}")]
    Inconsistent(String),
}

const GOLDEN: [(&str, &str); 4] = [
    (
        "manifest.json",
        include_str!("../../../templates/golden/manifest.json"),
    ),
    (
        "lead-intake.json",
        include_str!("../../../templates/golden/lead-intake.json"),
    ),
    (
        "outreach.json",
        include_str!("../../../templates/golden/outreach.json"),
    ),
    (
        "reply-handler.json",
        include_str!("../../../templates/golden/reply-handler.json"),
    ),
];

impl TemplateSet {
    /// The built-in Golden Template set.
    pub fn golden() -> Result<Self, TemplateError> {
        let files: BTreeMap<String, String> = GOLDEN
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        Self::from_files(&files)
    }

    /// Loads a set from a directory holding `manifest.json` and the workflows it lists.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                path: path.display().to_string(),
                source,
            })
        };
        let manifest_text = read("manifest.json")?;
        let manifest: Manifest = parse("manifest.json", &manifest_text)?;
        let mut files = BTreeMap::from([("manifest.json".to_owned(), manifest_text)]);
        for w in &manifest.workflows {
            if w.contains(['/', '\\']) || w.starts_with('.') {
                return Err(TemplateError::Inconsistent(format!(
                    "workflow file {w:?} must be a plain file name in the set's directory"
                )));
            }
            files.insert(w.clone(), read(w)?);
        }
        Self::from_files(&files)
    }

    fn from_files(files: &BTreeMap<String, String>) -> Result<Self, TemplateError> {
        let manifest_text = files
            .get("manifest.json")
            .ok_or_else(|| TemplateError::Inconsistent("no manifest.json".into()))?;
        let manifest: Manifest = parse("manifest.json", manifest_text)?;
        if manifest.version.trim().is_empty() {
            return Err(TemplateError::Inconsistent("empty version".into()));
        }
        let mut keys = BTreeSet::new();
        let mut placeholders = BTreeSet::new();
        for c in &manifest.credentials {
            if genesis_n8n::CredentialTypes::pinned()
                .get(&c.kind)
                .is_none()
            {
                return Err(TemplateError::Inconsistent(format!(
                    "credential {:?} has type {:?}, which is not one of the pinned n8n {} types ({})",
                    c.key,
                    c.kind,
                    genesis_n8n::N8N_VERSION,
                    genesis_n8n::CredentialTypes::pinned()
                        .names()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if c.platform.is_some() && c.kind != "httpHeaderAuth" {
                return Err(TemplateError::Inconsistent(format!(
                    "credential {:?} is made by the platform, so its type must be httpHeaderAuth, not {:?}",
                    c.key, c.kind
                )));
            }
            if !keys.insert(c.key.clone()) || !placeholders.insert(c.placeholder.clone()) {
                return Err(TemplateError::Inconsistent(format!(
                    "credential {:?} is declared twice",
                    c.key
                )));
            }
        }
        let mut workflows = Vec::new();
        let mut names = BTreeSet::new();
        for file in &manifest.workflows {
            let text = files.get(file).ok_or_else(|| {
                TemplateError::Inconsistent(format!("{file} is listed but missing"))
            })?;
            let body: Value = parse(file, text)?;
            let name = body["name"].as_str().ok_or_else(|| TemplateError::Parse {
                file: file.clone(),
                message: "no \"name\"".into(),
            })?;
            if !names.insert(name.to_owned()) {
                return Err(TemplateError::Inconsistent(format!(
                    "two workflows are named {name:?}"
                )));
            }
            if let Some(node) = trigger_without_webhook_id(&body) {
                return Err(TemplateError::Inconsistent(format!(
                    "{file}: trigger node {node:?} has no webhookId (n8n would serve it under the workflow's id)"
                )));
            }
            for used in credential_placeholders(&body) {
                if !placeholders.contains(&used) {
                    return Err(TemplateError::Inconsistent(format!(
                        "{file} uses credential {used} that manifest.json does not declare"
                    )));
                }
            }
            workflows.push(WorkflowTemplate {
                key: file.trim_end_matches(".json").to_owned(),
                body,
            });
        }
        Ok(TemplateSet {
            version: manifest.version,
            credentials: manifest.credentials,
            workflows,
        })
    }

    /// Every variable placeholder the workflows use.
    pub fn variables(&self) -> BTreeSet<String> {
        self.workflows
            .iter()
            .flat_map(|w| genesis_n8n::template_variables(&w.body))
            .collect()
    }
}

fn parse<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, TemplateError> {
    serde_json::from_str(text).map_err(|e| TemplateError::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })
}

/// The name of a trigger node (a Webhook node, or any `...Trigger` but the manual one) that
/// has no `webhookId`.
fn trigger_without_webhook_id(workflow: &Value) -> Option<String> {
    workflow["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| {
            let t = n["type"].as_str().unwrap_or_default();
            let trigger = t == genesis_n8n::webhooks::WEBHOOK_NODE
                || (t.ends_with("Trigger") && t != "n8n-nodes-base.manualTrigger");
            trigger && n["webhookId"].as_str().is_none_or(str::is_empty)
        })
        .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
}

/// Credential ids of the form `TEMPLATE_..._UUID` in nodes' `credentials`.
fn credential_placeholders(workflow: &Value) -> BTreeSet<String> {
    workflow["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["credentials"].as_object())
        .flat_map(|c| c.values())
        .filter_map(|r| r["id"].as_str())
        .filter(|id| id.starts_with("TEMPLATE_"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_golden_set_loads_and_says_what_it_needs() {
        let set = TemplateSet::golden().expect("golden set");
        assert_eq!(set.workflows.len(), 3);
        let kinds: Vec<&str> = set.credentials.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "gmailOAuth2",
                "openAiApi",
                "httpHeaderAuth",
                "httpHeaderAuth"
            ]
        );
        let made: Vec<Option<PlatformSecret>> =
            set.credentials.iter().map(|c| c.platform).collect();
        assert_eq!(
            made,
            [
                None,
                None,
                Some(PlatformSecret::WebhookToken),
                Some(PlatformSecret::IngestToken)
            ]
        );
        let vars = set.variables();
        for v in [
            "YOUR_WORKSPACE_ID",
            "YOUR_DASHBOARD_URL",
            "YOUR_SENDER_EMAIL",
            "YOUR_NAME",
            "YOUR_COMPANY_NAME",
            "YOUR_CALENDLY_LINK_1",
        ] {
            assert!(vars.contains(v), "{v} missing from {vars:?}");
        }
    }

    #[test]
    fn the_directory_copy_equals_the_built_in_one() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates/golden");
        assert_eq!(
            TemplateSet::load(&dir).expect("loads"),
            TemplateSet::golden().expect("golden")
        );
    }

    #[test]
    fn a_trigger_without_a_webhook_id_is_refused() {
        let mut files: BTreeMap<String, String> = GOLDEN
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        let mut intake: Value = serde_json::from_str(&files["lead-intake.json"]).expect("json");
        intake["nodes"][0]
            .as_object_mut()
            .map(|n| n.remove("webhookId"));
        files.insert("lead-intake.json".into(), intake.to_string());
        let err = TemplateSet::from_files(&files).expect_err("refused");
        assert!(
            err.to_string().contains("lead-intake.json") && err.to_string().contains("webhookId"),
            "{err}"
        );
    }

    #[test]
    fn an_undeclared_credential_is_refused_by_file() {
        let mut files: BTreeMap<String, String> = GOLDEN
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        let outreach = files["outreach.json"].replace("TEMPLATE_OPENAI_UUID", "TEMPLATE_X_UUID");
        files.insert("outreach.json".into(), outreach);
        let err = TemplateSet::from_files(&files).expect_err("refused");
        assert!(err.to_string().contains("outreach.json"), "{err}");
        assert!(err.to_string().contains("TEMPLATE_X_UUID"), "{err}");
    }
}
