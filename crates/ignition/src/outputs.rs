//! What each step of the ignition saga records as its output, typed (issue 19).
//!
//! Outputs are stored as JSON in the saga log (the log is the saga's history, and must stay
//! readable by people and by older builds), but they are written and read only through these
//! types: a step that needs an earlier step's output gets it whole or fails at once, saying
//! which output is missing or unreadable. (Before, a missing droplet address read as `""`
//! and the step was retried against it until its timeout.)

use std::collections::BTreeMap;

use genesis_core::IgnitionStep;
use genesis_store::Ignition;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::actions::StepError;

/// A step's recorded output.
pub trait StepOutput: Serialize + DeserializeOwned {
    /// The step that records it.
    const STEP: IgnitionStep;

    /// This step's output in `ig`: an error, not a default, when it is missing or does not
    /// read as this type.
    fn of(ig: &Ignition) -> Result<Self, StepError> {
        let raw = ig.output(Self::STEP).ok_or_else(|| {
            StepError::Fail(format!("the {} step recorded no output", Self::STEP.code()))
        })?;
        serde_json::from_value(raw.clone()).map_err(|e| {
            StepError::Fail(format!(
                "the {} step's output is unreadable: {e}",
                Self::STEP.code()
            ))
        })
    }

    /// As the saga log stores it.
    fn to_json(&self) -> serde_json::Value {
        // Plain structs of strings, numbers and maps always serialise.
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// `PARTITION_CREATING`: what the partition manager did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOutput {
    /// `Created`, `Existing`, ...
    pub partition: String,
}

impl StepOutput for PartitionOutput {
    const STEP: IgnitionStep = IgnitionStep::PartitionCreating;
}

/// `DROPLET_PROVISIONING`: the machine the tenant got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropletOutput {
    /// The cloud's id.
    pub provider_id: i64,
    /// Its public address.
    pub ip: String,
}

impl StepOutput for DropletOutput {
    const STEP: IgnitionStep = IgnitionStep::DropletProvisioning;
}

/// `HANDSHAKE_PENDING`: what the sidecar said at its handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeOutput {
    /// Where its n8n's webhooks are reached.
    pub webhook_base_url: String,
    /// The key credentials are sealed to.
    pub sidecar_public_key: String,
    /// Where its n8n reaches the sidecar's relay (spec 65.3), when it reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_url: Option<String>,
}

impl StepOutput for HandshakeOutput {
    const STEP: IgnitionStep = IgnitionStep::HandshakePending;
}

/// One credential as the tenant's n8n knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedCredential {
    /// n8n's id.
    pub id: String,
    /// Its name in n8n.
    pub name: String,
}

/// `CREDENTIALS_INJECTING`: the credentials injected, by the template placeholder they fill.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialsOutput {
    /// By placeholder.
    pub credentials: BTreeMap<String, InjectedCredential>,
}

impl StepOutput for CredentialsOutput {
    const STEP: IgnitionStep = IgnitionStep::CredentialsInjecting;
}

/// One workflow deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedWorkflow {
    /// The template's key.
    pub key: String,
    /// n8n's id.
    pub id: String,
    /// The production webhook it exposes, if any.
    #[serde(default)]
    pub webhook_url: Option<String>,
}

/// `WORKFLOWS_DEPLOYING`: the template version and the workflows deployed from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployOutput {
    /// The template set's version.
    pub template_version: String,
    /// The workflows.
    pub workflows: Vec<DeployedWorkflow>,
}

impl StepOutput for DeployOutput {
    const STEP: IgnitionStep = IgnitionStep::WorkflowsDeploying;
}

/// `ACTIVATING`: how many workflows were activated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateOutput {
    /// Activated.
    pub active: usize,
}

impl StepOutput for ActivateOutput {
    const STEP: IgnitionStep = IgnitionStep::Activating;
}

#[cfg(test)]
mod tests {
    use super::*;
    use genesis_core::{DropletId, SagaPhase, WorkspaceId};

    fn saga(outputs: serde_json::Value) -> Ignition {
        Ignition {
            id: uuid::Uuid::now_v7(),
            workspace_id: WorkspaceId::new(),
            droplet_id: DropletId::new(),
            phase: SagaPhase::Running,
            step: Some(IgnitionStep::CredentialsInjecting),
            step_started_at: chrono::Utc::now(),
            failed_step: None,
            error: None,
            params: serde_json::Value::Null,
            outputs,
            version: 1,
            wakeups: 0,
            busy_ms: 0,
            started_at: chrono::Utc::now(),
            finished_at: None,
        }
    }

    #[test]
    fn a_recorded_output_reads_back_whole() {
        let drop = DropletOutput {
            provider_id: 42,
            ip: "203.0.113.7".into(),
        };
        let ig =
            saga(serde_json::json!({ IgnitionStep::DropletProvisioning.code(): drop.to_json() }));
        assert_eq!(DropletOutput::of(&ig), Ok(drop));
    }

    #[test]
    fn a_missing_or_partial_output_is_a_failure_not_an_empty_value() {
        let ig = saga(serde_json::json!({}));
        let Err(StepError::Fail(why)) = DropletOutput::of(&ig) else {
            panic!("a missing output must fail");
        };
        assert!(why.contains("DROPLET_PROVISIONING"), "{why}");
        // An address-less droplet output once read as "" and was retried until the timeout.
        let ig = saga(
            serde_json::json!({ IgnitionStep::DropletProvisioning.code(): { "provider_id": 42 } }),
        );
        let Err(StepError::Fail(why)) = DropletOutput::of(&ig) else {
            panic!("a partial output must fail");
        };
        assert!(why.contains("ip"), "{why}");
    }
}
