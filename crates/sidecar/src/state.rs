//! What the sidecar keeps across restarts, in one 0600 file: its X25519 key (credentials are
//! sealed to it), and after the handshake the sidecar token and the control plane's command
//! key. A restarted sidecar never hand-shakes twice (the provisioning token is single-use).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use genesis_n8n::secret_file::{read_optional, write_private};
use genesis_protocol::{SealingKey, SidecarConfig};
use serde::{Deserialize, Serialize};

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("sidecar state {path}: {reason}")]
pub struct StateError {
    /// The file.
    pub path: String,
    /// Why.
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    sealing_key: String,
    sidecar_token: Option<String>,
    command_public_key: Option<String>,
    #[serde(default)]
    config: Option<SidecarConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inbound_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    command_keys: Vec<String>,
}

/// The sidecar's persistent state.
pub struct SidecarState {
    path: PathBuf,
    /// The key credentials are sealed to.
    pub sealing: SealingKey,
    /// Bearer token for heartbeats (after the handshake).
    pub sidecar_token: Option<String>,
    /// The control plane's command-signing key (after the handshake).
    pub command_public_key: Option<String>,
    /// Reporting intervals (after the handshake).
    pub config: Option<SidecarConfig>,
    /// The secret the relay signs n8n's calls to the control plane with (spec 65.3).
    pub inbound_secret: Option<String>,
    /// The command keys trusted since the control plane last rotated its key (empty until
    /// then: the handshake's key alone).
    pub command_keys: Vec<String>,
}

impl std::fmt::Debug for SidecarState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarState")
            .field("path", &self.path)
            .field("handshaken", &self.sidecar_token.is_some())
            .finish_non_exhaustive()
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl SidecarState {
    /// Loads `dir/sidecar.json`, or creates it with a fresh key.
    pub fn load_or_create(dir: &Path) -> Result<Self, StateError> {
        let path = dir.join("sidecar.json");
        let err = |reason: String| StateError {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        match read_optional(&path).map_err(|e| err(e.to_string()))? {
            Some(bytes) => {
                let d: OnDisk = serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?;
                let raw = b64()
                    .decode(d.sealing_key)
                    .map_err(|e| err(e.to_string()))?;
                Ok(Self {
                    sealing: SealingKey::from_bytes(&raw).map_err(|e| err(e.to_string()))?,
                    sidecar_token: d.sidecar_token,
                    command_public_key: d.command_public_key,
                    config: d.config,
                    inbound_secret: d.inbound_secret,
                    command_keys: d.command_keys,
                    path,
                })
            }
            None => {
                let s = Self {
                    sealing: SealingKey::generate(),
                    sidecar_token: None,
                    command_public_key: None,
                    config: None,
                    inbound_secret: None,
                    command_keys: Vec::new(),
                    path,
                };
                s.save()?;
                Ok(s)
            }
        }
    }

    /// Writes the state (atomically, 0600).
    pub fn save(&self) -> Result<(), StateError> {
        let d = OnDisk {
            sealing_key: b64().encode(self.sealing.to_bytes()),
            sidecar_token: self.sidecar_token.clone(),
            command_public_key: self.command_public_key.clone(),
            config: self.config,
            inbound_secret: self.inbound_secret.clone(),
            command_keys: self.command_keys.clone(),
        };
        let bytes = serde_json::to_vec(&d).map_err(|e| StateError {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_private(&self.path, &bytes).map_err(|e| StateError {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })
    }
}
