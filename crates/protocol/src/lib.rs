//! What the control plane and the sidecar say to each other (DESIGN §3.2–§3.5), in one place
//! so neither side can drift from the other: the handshake, heartbeats and metric reports,
//! the 13 commands of spec 51.4 (and `SET_TRACKING_DOMAINS`, spec 61.4, and the SSH keys of
//! spec 63.3's Emergency tier) with their signed
//! JWTs, the web front's fixed points, secrets sealed to a sidecar's key, Standard Webhooks
//! signatures, and the signatures on calls from a droplet to the control plane.

pub mod command;
pub mod connect;
pub mod envfile;
pub mod front;
pub mod handshake;
pub mod heartbeat;
pub mod inbound;
pub mod jwt;
pub mod keyring;
pub mod sealed;
pub mod source;
pub mod ssh_key;
pub mod webhook;

pub use command::{Command, CommandName, CommandReply};
pub use handshake::{
    HandshakeRequest, HandshakeResponse, HeartbeatAnswer, ReattestRequest, ReattestResponse,
    RenewedToken, SidecarConfig,
};
pub use heartbeat::{CredentialState, Heartbeat, MetricsReport, N8nStatus, WorkflowState};
pub use jwt::{CommandClaims, CommandSigner, CommandVerifier, Refusal, RefusalReason};
pub use keyring::CommandKeyRing;
pub use sealed::{SealedSecret, SealingKey};
pub use webhook::{WebhookSigner, WebhookVerifier};

/// Base64 (standard alphabet, padded) for keys and sealed bytes on the wire.
pub(crate) fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}
