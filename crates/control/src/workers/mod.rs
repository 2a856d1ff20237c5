//! Background reconcilers (HOUSE_STYLE: each takes no input, looks at the world, fixes what
//! it finds, reports a status value, and is safe to run any number of times on any replica).
//!
//! - [`zombies`]: spec 54.4's zombie recovery (detect, confirm with the cloud, ZOMBIE,
//!   reboot job, REBOOTING, ORPHAN with a review item when the heartbeat never returns).
//! - [`jobs`]: one handler for every queue of the fleet's set.
//! - [`watchdog`]: spec 43's drift detection; it queues heals.
//! - [`heals`]: spec 43.3's heal actions, as jobs on the `template` and `security` queues.
//! - [`oauth_ahead`]: refreshes OAuth tokens 14 days before they expire (spec 65.1), daily.
//! - [`rollouts`]: spec 56's template rollouts (the conductor and the per-droplet updates).
//! - [`hibernation`]: spec 55's hibernation (notice, final metrics, power-off) and wake.
//! - [`standby`]: spec 55.4's hot-standby pool (claim on wake, serve, swap back, refill).
//! - [`reaper`]: deletes tagged droplets no live workspace owns.
//! - [`tracking_domains`]: spec 61.4's tracking domains (DNS looks, the engine's list).
//! - [`wallet`]: spec 58.3's wallet syncer and cache check.
//! - [`mail`]: sends the notifications outbox by e-mail.
//! - [`webhooks`]: delivers tenants' outbound webhooks on spec 65.4's schedule.
//! - [`webhook_secrets`]: renews their signing secrets every 90 days (spec 65.1).
//! - [`audit_seal`]: seals audit rows into each region's hash chain (spec 63.1).
//! - [`deletions`]: the day-3 and day-6 reminders of a deletion (spec 64.1).
//! - [`failover`]: phases 2 to 4 of regional failovers (spec 66.4).
//! - [`reconciler`]: the shape every reconciler above has; [`driver`] runs them (leader
//!   election, parts isolated from each other, retry policy, wake-ups, published status).

pub mod audit_retention;
pub mod audit_seal;
pub mod command_keys;
pub mod deletions;
pub mod driver;
mod droplet_job;
pub mod droplet_restore;
pub mod failover;
pub mod fleet_sampler;
pub mod heals;
pub mod hibernation;
pub mod jobs;
pub mod mail;
pub mod n8n_restart;
pub mod oauth_ahead;
pub mod pending_credentials;
pub mod pre_update;
pub mod reaper;
pub mod reconciler;
pub mod region_watch;
pub mod rollouts;
pub mod snapshots;
pub mod standby;
pub mod support_grants;
pub mod tracking_domains;
pub mod wallet;
pub mod watchdog;
pub mod webhook_secrets;
pub mod webhooks;
pub mod zombies;
