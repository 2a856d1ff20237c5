//! Pure domain layer of the Genesis Engine.
//!
//! Everything here is data and rules: parsed identifiers that cannot hold bad input
//! ("parse, don't validate"), the lifecycle state machines, and routing decisions. No I/O,
//! so every rule can be property-tested in microseconds and reused by the store, the
//! control plane and the simulators alike.

pub mod audit;
pub mod deletion;
pub mod dr;
pub mod drift;
pub mod droplet;
pub mod health;
pub mod hibernation;
pub mod ids;
pub mod ignition;
pub mod lead;
pub mod margins;
pub mod money;
pub mod onboarding;
pub mod outage;
pub mod region;
pub mod region_health;
pub mod rollout;
pub mod routing;
pub mod schema;
pub mod services;
pub mod slug;
pub mod support;
pub mod tier;
pub mod tracking;
pub mod workspace;

pub use droplet::{CloudPower, DropletEvent, DropletState, IllegalTransition};
pub use health::{HealthCounters, ResourceSample};
pub use ids::{DropletId, IdParseError, WorkspaceId};
pub use ignition::{IgnitionStep, SagaEvent, SagaPhase};
pub use lead::{Email, EmailError, LeadStatus, LeadStatusError};
pub use money::{Millicents, TransferKind};
pub use onboarding::{Onboarding, OnboardingError};
pub use region::{Region, RegionParseError};
pub use routing::{LegacyTenant, TenantRoute, TenantRouter};
pub use slug::{Slug, SlugError};
pub use tier::{Tier, TierParseError};
pub use workspace::{
    IllegalWorkspaceTransition, WorkspaceEvent, WorkspaceName, WorkspaceNameError, WorkspaceStatus,
};
