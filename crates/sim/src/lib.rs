//! Simulators of the services the control plane cannot reach from here (spec 45). Each speaks
//! the real API over HTTP so our real clients are what gets tested.

pub mod ai_providers;
pub mod apify;
pub mod caddy;
pub mod cloud_init;
#[cfg(feature = "contract")]
pub mod contract;
pub mod digitalocean;
pub mod dns;
pub mod docker;
pub mod fleet;
pub mod fleet_admin;
pub mod google_oauth;
pub mod managed;
pub mod n8n;
pub mod payments;
pub mod residential_proxy;
pub mod vhost;
pub mod wizard;
