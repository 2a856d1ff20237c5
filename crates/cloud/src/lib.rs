//! The cloud layer (spec 50, DESIGN §3.6): the [`Cloud`] trait sized to what the fleet needs,
//! and [`DigitalOcean`], its implementation over DigitalOcean's API v2. The same client talks
//! to the real API and to `genesis sim-cloud`; only the base URL differs.

pub mod budget;
pub mod client;
pub mod error;
pub mod types;

pub use budget::{CallPriority, SharedBudget};
pub use client::{ClientOptions, DigitalOcean};
pub use error::CloudError;
pub use types::{
    Action, ActionStatus, CreateDroplet, Droplet, DropletStatus, Firewall, FirewallTargets, Image,
    ImageRef, InboundRule, OutboundRule, PowerAction, Region, Size, Snapshot, Vpc,
};

use std::future::Future;

/// What the fleet asks of a cloud. Every call has a deadline; every droplet it creates is
/// tagged `genesis` and `ws-<workspace uuid>` so it can always be found again.
pub trait Cloud: Send + Sync {
    /// The same cloud, its requests weighed as `priority` against the shared budget
    /// ([`SharedBudget`]): routine work takes a prioritised handle, so that it yields to
    /// ignitions and restores when the budget runs short.
    fn prioritised(&self, priority: CallPriority) -> Self
    where
        Self: Sized;
    /// Creates a droplet unless one with the same workspace tag and name exists (a retried
    /// step never makes a second droplet); returns the droplet and the create action, if any.
    fn droplet_create(
        &self,
        req: &CreateDroplet,
    ) -> impl Future<Output = Result<(Droplet, Option<Action>), CloudError>> + Send;
    /// One droplet.
    fn droplet_get(&self, id: i64) -> impl Future<Output = Result<Droplet, CloudError>> + Send;
    /// Every droplet carrying `tag`, across all pages.
    fn droplet_list_by_tag(
        &self,
        tag: &str,
    ) -> impl Future<Output = Result<Vec<Droplet>, CloudError>> + Send;
    /// Deletes a droplet; deleting one that is already gone is not an error.
    fn droplet_delete(&self, id: i64) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Starts a power action.
    fn droplet_action(
        &self,
        id: i64,
        action: PowerAction,
    ) -> impl Future<Output = Result<Action, CloudError>> + Send;
    /// Starts a snapshot of the droplet (power it off first for a consistent disk); the
    /// snapshot exists once the action completes. Not retried on an unknown outcome.
    fn droplet_snapshot(
        &self,
        id: i64,
        name: &str,
    ) -> impl Future<Output = Result<Action, CloudError>> + Send;
    /// The droplet's snapshots.
    fn droplet_snapshots(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Vec<Snapshot>, CloudError>> + Send;
    /// Every droplet snapshot of the account, across all pages.
    fn snapshot_list(&self) -> impl Future<Output = Result<Vec<Snapshot>, CloudError>> + Send;
    /// One snapshot.
    fn snapshot_get(&self, id: i64) -> impl Future<Output = Result<Snapshot, CloudError>> + Send;
    /// Deletes a snapshot; deleting one that is already gone is not an error.
    fn snapshot_delete(&self, id: i64) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// One image (a snapshot is an image too): where it is available.
    fn image_get(&self, id: i64) -> impl Future<Output = Result<Image, CloudError>> + Send;
    /// Starts copying an image (snapshot) to another region.
    fn image_transfer(
        &self,
        id: i64,
        region: &str,
    ) -> impl Future<Output = Result<Action, CloudError>> + Send;
    /// Datacenters.
    fn regions(&self) -> impl Future<Output = Result<Vec<Region>, CloudError>> + Send;
    /// Droplet sizes.
    fn sizes(&self) -> impl Future<Output = Result<Vec<Size>, CloudError>> + Send;
    /// Every Cloud Firewall of the account.
    fn firewall_list(&self) -> impl Future<Output = Result<Vec<Firewall>, CloudError>> + Send;
    /// Creates a Cloud Firewall.
    fn firewall_create(
        &self,
        firewall: &Firewall,
    ) -> impl Future<Output = Result<Firewall, CloudError>> + Send;
    /// Every VPC network of the account.
    fn vpc_list(&self) -> impl Future<Output = Result<Vec<Vpc>, CloudError>> + Send;
    /// One action.
    fn action_get(&self, id: i64) -> impl Future<Output = Result<Action, CloudError>> + Send;
    /// Polls an action until `completed` (Ok) or `errored` / the deadline (Err).
    fn action_wait(
        &self,
        id: i64,
        deadline: std::time::Duration,
    ) -> impl Future<Output = Result<Action, CloudError>> + Send;
}
