//! Business logic the API and God Mode share (DESIGN: `app/`, one module per resource):
//! handlers in `api/` and `god/` parse and authorise, then call one function here, and
//! render what it returns. Nothing here knows HTTP beyond the error it returns
//! ([`crate::Problem`], which carries its status); imports run `api`/`god` → `app` →
//! (`workers`, store, ignition, queue), never back.

pub mod accounts;
pub mod ai_keys;
pub mod alerts;
pub mod audit;
pub mod booking;
pub mod brand;
pub mod campaigns;
pub mod command_keys;
pub mod deletion;
pub mod deletion_saga;
pub mod dns;
pub mod droplet_ops;
pub mod droplet_power;
pub mod droplets;
pub mod exports;
pub mod failover;
pub mod fleet;
pub mod gmail;
pub mod hibernation;
pub mod ignition;
pub mod inbound;
pub mod lead_import;
pub mod leads;
pub mod limit_overrides;
pub mod managed;
pub mod margins;
pub mod metrics;
pub mod notifications;
pub mod operators;
pub mod outbound_webhooks;
pub mod payments;
pub mod proxy_tunnel;
pub mod reconcilers;
pub mod rollouts;
pub mod service_matrix;
pub mod support;
pub mod support_access;
pub mod tenant_access;
pub mod tenant_credentials;
pub mod tenant_dashboard;
pub mod tenant_wallet;
pub mod tracking_domains;
pub mod wallet;
pub mod wallet_sync;
pub mod wizard;
pub mod workspaces;
