//! The PostgreSQL system of record (spec 40, DESIGN §5).
//!
//! Two roles reach the database: `genesis_owner` (migrations and partition DDL, via
//! [`Database::owner_pool`]) and `genesis_app` (everything at run time). Tenant data is only
//! reachable through a [`TenantSession`], which sets `app.workspace_id` for its transaction
//! and states `workspace_id = $1` in every query it runs, so plan-time partition pruning works
//! at 15,000 partitions and RLS is a second, independent fence.
//!
//! Only this crate writes SQL.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod audit_chain;
pub mod audit_retention;
pub mod bench;
pub mod bootstrap;
pub mod command_journal;
pub mod command_keys;
pub mod db;
pub mod deletion_saga;
pub mod deletions;
pub mod desired_workflows;
pub mod droplets;
pub mod error;
pub mod export;
pub mod failovers;
pub mod fleet;
pub mod handshake;
pub mod heartbeats;
pub mod hibernation;
pub mod ignitions;
pub mod lead_imports;
pub mod leader;
pub mod leads;
pub mod ledger;
pub mod legacy;
pub mod limit_overrides;
pub mod lost_droplets;
pub mod margins;
pub mod metrics;
pub mod notifications;
pub mod onboarding;
pub mod operators;
pub mod outbound_webhooks;
pub mod partitions;
pub mod region_incidents;
pub mod regions;
pub mod rollouts;
pub mod settings;
pub mod snapshots;
pub mod standby;
pub mod support_grants;
pub mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tracking_domains;
pub mod vault;
pub mod vault_rotation;
pub mod wallet_payments;
pub mod webhooks;
pub mod workspace_tokens;
pub mod workspaces;

pub use accounts::{
    Account, AccountCredentials, Member, Membership, PendingInvitation, Role, TenantToken,
};
pub use alerts::{Alert, AlertAction, NewAlert};
pub use audit::{AuditEntry, AuditEvent, AuditFilter};
pub use audit_chain::{AuditChainKey, BreakKind, ChainBreak, ChainReport};
pub use audit_retention::{ArchivedMonth, RetentionReport};
pub use command_keys::{CommandKeyState, KeyLaggard, NewCommandKey, StoredCommandKey};
pub use db::{Database, DbOptions, Pooler};
pub use deletion_saga::DeletionProgress;
pub use deletions::Deletion;
pub use desired_workflows::{DesiredWorkflowRow, WatchedDroplet};
pub use droplets::Droplet;
pub use error::StoreError;
pub use fleet::{FleetCell, FleetCounts, FleetSample, IgnitionInFlight, StateChange};
pub use heartbeats::{BeatRow, BeatTransition, Silent};
pub use hibernation::{ActivityKind, HibernationCandidate, HibernationTotals};
pub use ignitions::{Ignition, IgnitionLogEntry, IgnitionSecrets, IgnitionStart};
pub use leader::{Leadership, ReconcilerStatusRow, ReconcilerWakes};
pub use leads::{ImportReport, Lead, LeadCursor, LeadPage, LeadStore, NewLead, ReplyOutcome};
pub use metrics::{MetricsBucket, MetricsFigures};
pub use notifications::{DeadNotification, Notification, OutboxCounts, Outgoing};
pub use operators::{NewSession, Operator, OperatorCredentials};
pub use outbound_webhooks::{DeliveryRow, DueDelivery, Endpoint, NewEndpoint};
pub use partitions::{LEAD_BUCKETS, PartitionInfo, PartitionManager, PartitionOutcome};
pub use regions::{COORDINATOR, RegionalStore, Shard};
pub use rollouts::{BatchTally, NewRollout, Rollout, RolloutTarget};
pub use settings::{SettingCheck, SettingLevel};
pub use standby::{StandbyDroplet, WakeWithoutStandby};
pub use support_grants::{Approval, GrantRequest, SupportGrant};
pub use tenant::{Caller, RefusalReason, TenantSession};
pub use vault::{MasterKeys, PendingCredential, Sealed, VaultCredential, VaultPlaintext};
pub use webhooks::WebhookEntry;
pub use workspace_tokens::{NewWorkspaceToken, WorkspaceTokenKind};
pub use workspaces::{NewWorkspace, Workspace};
