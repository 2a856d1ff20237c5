//! The sidecar (spec 51): the only thing on a droplet that talks to the control plane.
//!
//! Boot ([`agent`]): read the cloud-init env file and the metadata service, bootstrap the
//! local n8n, generate the X25519 key credentials are sealed to, hand-shake (spec 42.2) with
//! retries, then heartbeat (spec 54.1) and report metrics (spec 44.2). Meanwhile serve
//! `POST /sidecar/v1/commands` ([`server`]): each command carries an EdDSA JWT verified as
//! spec 51.3 says; refusals are answered 401/403 with a reason and reported in the next
//! heartbeat. The 13 commands ([`commands`]) drive n8n only through its public API, and the
//! n8n container only through a [`runtime::ContainerRuntime`].

pub mod agent;
pub mod cli;
pub mod commands;
pub mod config;
pub mod docker;
pub mod expiry;
pub mod front;
pub mod guard;
pub mod relay;
pub mod runtime;
pub mod server;
pub mod ssh_keys;
pub mod state;
pub mod sysstats;

/// The sidecar's version, reported in the handshake.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
