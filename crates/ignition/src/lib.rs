//! Ignition (spec 41, 42, 50.4–50.6): bringing a tenant from nothing to ACTIVE.
//!
//! - [`cloud_init`]: the droplet's `#cloud-config` document.
//! - [`templates`]: the Golden Template set.
//! - [`igniter`]: the saga's parameters and dependencies, and how an ignition starts.
//! - [`actions`]: one action and one undo action per step of spec 41.1.
//! - [`executor`]: moves a saga, recording every move in its log.
//! - [`jobs`]: those moves as jobs on the `ignition` queue.
//! - [`network`]: the fleet's Cloud Firewall and each region's VPC.
//! - [`oauth`]: refreshing tenants' OAuth tokens (the `credential_expired` heal).
//! - [`reaper`]: deletes droplets no workspace owns.
//! - [`restore`]: an ignited tenant's new droplet elsewhere (spec 66.4's failover).
//! - [`upkeep`]: redeploying workflows and refreshing OAuth tokens of ignited tenants.
//! - [`sidecar_client`]: signed commands to sidecars.

pub mod actions;
pub mod cloud_init;
pub mod executor;
pub mod igniter;
pub mod jobs;
pub mod network;
pub mod oauth;
pub mod outputs;
pub mod reaper;
pub mod restore;
pub mod sidecar_client;
pub mod standby;
pub mod templates;
pub mod upkeep;

pub use actions::{Act, StepError};
pub use cloud_init::{CloudInitError, IgnitionEnv, Images, render};
pub use executor::Advance;
pub use igniter::{
    DropletPoll, IgniteError, Ignited, Igniter, IgnitionParams, IgnitionSettings, RestoreSpec,
    WEBHOOK_TOKEN_HEADER,
};
pub use jobs::IgnitionJobs;
pub use oauth::{OAuthError, OAuthRefresher};
pub use sidecar_client::{CommandError, SidecarClient};
pub use templates::{PlatformSecret, TemplateError, TemplateSet};
