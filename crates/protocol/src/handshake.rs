//! The atomic handshake (spec 42.2, DESIGN §3.2): the sidecar trades its one-time provisioning
//! token for a long-lived sidecar token and the key that signs its commands.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Versions a sidecar reports, so rollouts (spec 56) know what runs where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// The sidecar's own version.
    pub sidecar: String,
    /// The n8n version it drives.
    pub n8n: String,
}

/// `POST /api/v1/sidecar/handshake`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakeRequest {
    /// The one-time token cloud-init delivered (15 minutes, single use).
    pub provisioning_token: String,
    /// The workspace the droplet serves.
    pub workspace_id: Uuid,
    /// The cloud's droplet id (from the metadata service).
    pub droplet_id: i64,
    /// The workspace's region (from the env file): which regional database holds it.
    pub region: String,
    /// Base URL of the droplet's n8n webhooks, pushed so the dashboard never polls for it.
    pub webhook_base_url: String,
    /// The sidecar's X25519 public key (base64): credentials are sealed to it.
    pub sidecar_public_key: String,
    /// What the droplet runs.
    pub versions: Versions,
    /// Base URL of the sidecar's relay as the droplet's n8n reaches it (spec 65.3): the
    /// templates' calls to the control plane go there to be signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_url: Option<String>,
}

/// How often a sidecar reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidecarConfig {
    /// Seconds between heartbeats (spec 54.1: 60).
    pub heartbeat_interval_s: u64,
    /// Seconds between metric reports (spec 44.2: 900).
    pub metrics_interval_s: u64,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_s: 60,
            metrics_interval_s: 900,
        }
    }
}

/// The handshake's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeResponse {
    /// Bearer token for heartbeats and reports (30 days).
    pub sidecar_token: String,
    /// The control plane's Ed25519 public key (base64, 32 bytes) that signs command JWTs.
    pub command_public_key: String,
    /// Its key id, as carried in every command JWT's `kid` header.
    #[serde(default)]
    pub command_key_id: String,
    /// Reporting intervals.
    pub config: SidecarConfig,
    /// The secret (`whsec_...`) the relay signs n8n's calls to the control plane with
    /// ([`crate::inbound`]); absent from a control plane that verifies none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_secret: Option<String>,
}

/// A sidecar token the control plane issued in place of one near its end (spec 65.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewedToken {
    /// The new token: use it from now on; the old one works until it expires.
    pub sidecar_token: String,
    /// When the new token expires (Unix milliseconds).
    pub expires_at_ms: i64,
}

/// The answer to a heartbeat that carries something (`204 No Content` otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    /// A renewed sidecar token, when the one presented is near its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed: Option<RenewedToken>,
    /// The command keys (Ed25519 public keys, base64) to trust from now on, exactly, when
    /// they differ from the ids the heartbeat reported: how a key rotation reaches every
    /// sidecar (spec 65.1), including one that slept through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_keys: Option<Vec<String>>,
}

/// `POST /api/v1/sidecar/reattest`: a sidecar whose token expired asks for a new one. No
/// token: it is accepted only from the droplet's own address (as the handshake), and the
/// new token is sealed to the X25519 key the sidecar hand-shook with, so only that sidecar
/// can read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReattestRequest {
    /// The workspace the droplet serves.
    pub workspace_id: Uuid,
    /// The cloud's droplet id.
    pub droplet_id: i64,
    /// The workspace's region.
    pub region: String,
}

/// The answer to a re-attestation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReattestResponse {
    /// The new sidecar token, sealed to the sidecar's X25519 key.
    pub sealed_token: crate::SealedSecret,
    /// When it expires (Unix milliseconds).
    pub expires_at_ms: i64,
}
