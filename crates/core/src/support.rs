//! Governed support access (spec 63.3): who among the operators needs a grant to touch a
//! tenant, the four tiers a grant can have, what each tier allows, how long it lasts and
//! who must approve it.
//!
//! The rules are here, without I/O, so that the store (which records grants), the control
//! plane (which checks them before every action) and the pages (which say what a tier
//! allows) cannot disagree.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const MINUTE: Duration = Duration::from_secs(60);

/// What an operator account is for.
///
/// Support staff reach a tenant only through a grant; managers and admins run the fleet
/// (rollouts, heals, alerts) under their own name and approve the grants that need a
/// manager. Every tenant-scoped action is audited whichever the role.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Sees the fleet's health; touches a tenant only under a live grant.
    Support,
    /// Runs the fleet and approves Write and Emergency grants.
    Manager,
    /// A manager who also creates operators and sets their roles.
    Admin,
}

impl OperatorRole {
    /// Every role, least powerful first.
    pub const ALL: [OperatorRole; 3] = [
        OperatorRole::Support,
        OperatorRole::Manager,
        OperatorRole::Admin,
    ];

    /// The stable code (`support`, `manager`, `admin`), as stored.
    pub fn code(self) -> &'static str {
        match self {
            OperatorRole::Support => "support",
            OperatorRole::Manager => "manager",
            OperatorRole::Admin => "admin",
        }
    }

    /// Parses a code; `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether this role may approve grants that need a manager.
    pub fn approves(self) -> bool {
        self >= OperatorRole::Manager
    }

    /// Whether this role needs a grant to act on a tenant.
    pub fn needs_grant(self) -> bool {
        self == OperatorRole::Support
    }
}

impl fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The four tiers of spec 63.3, each allowing everything the one before allows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SupportTier {
    /// Logs, metrics and configuration: 30 minutes, self-service.
    ReadOnly,
    /// The above, plus restarting containers: 60 minutes, self-service.
    Debug,
    /// Every sidecar command: 30 minutes, one manager approves.
    Write,
    /// Direct SSH: 15 minutes, two approvers and an open incident.
    Emergency,
}

impl SupportTier {
    /// Every tier, narrowest first.
    pub const ALL: [SupportTier; 4] = [
        SupportTier::ReadOnly,
        SupportTier::Debug,
        SupportTier::Write,
        SupportTier::Emergency,
    ];

    /// The stable code (`read_only`, `debug`, `write`, `emergency`), as stored.
    pub fn code(self) -> &'static str {
        match self {
            SupportTier::ReadOnly => "read_only",
            SupportTier::Debug => "debug",
            SupportTier::Write => "write",
            SupportTier::Emergency => "emergency",
        }
    }

    /// Parses a code; `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// How people name it.
    pub fn label(self) -> &'static str {
        match self {
            SupportTier::ReadOnly => "Read-Only",
            SupportTier::Debug => "Debug",
            SupportTier::Write => "Write",
            SupportTier::Emergency => "Emergency",
        }
    }

    /// What it allows, in a sentence for the request form and the tenant's page.
    pub fn allows_text(self) -> &'static str {
        match self {
            SupportTier::ReadOnly => "view logs, metrics and configuration",
            SupportTier::Debug => "view logs, metrics and configuration, and restart n8n",
            SupportTier::Write => "every sidecar command, including pulling images and rebooting",
            SupportTier::Emergency => "every sidecar command and a short-lived SSH key",
        }
    }

    /// How long a grant lasts from the moment it is granted.
    pub fn duration(self) -> Duration {
        match self {
            SupportTier::ReadOnly | SupportTier::Write => 30 * MINUTE,
            SupportTier::Debug => 60 * MINUTE,
            SupportTier::Emergency => 15 * MINUTE,
        }
    }

    /// Approvals by someone else (a manager or admin, never the requester) before it is
    /// granted; zero means self-service.
    pub fn approvals_needed(self) -> u8 {
        match self {
            SupportTier::ReadOnly | SupportTier::Debug => 0,
            SupportTier::Write => 1,
            SupportTier::Emergency => 2,
        }
    }

    /// Whether a request must name an open incident.
    pub fn needs_incident(self) -> bool {
        self == SupportTier::Emergency
    }

    /// Whether this tier allows `action`.
    pub fn allows(self, action: SupportAction) -> bool {
        self >= action.least_tier()
    }
}

impl fmt::Display for SupportTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What an operator does to one tenant, as far as grants are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportAction {
    /// The tenant's page: configuration, droplets, workflows, audit trail.
    View,
    /// A droplet's page and its n8n's log lines.
    ReadLogs,
    /// A sidecar health check (status and load, which is a metric).
    HealthCheck,
    /// Restarting n8n.
    Restart,
    /// Pulling an image, and any other sidecar command that changes the droplet.
    SidecarCommand,
    /// A hard reboot through the cloud.
    Reboot,
    /// Installing a short-lived SSH key.
    Ssh,
}

impl SupportAction {
    /// The stable code, as the audit log records it.
    pub fn code(self) -> &'static str {
        match self {
            SupportAction::View => "view",
            SupportAction::ReadLogs => "read_logs",
            SupportAction::HealthCheck => "health_check",
            SupportAction::Restart => "restart",
            SupportAction::SidecarCommand => "sidecar_command",
            SupportAction::Reboot => "reboot",
            SupportAction::Ssh => "ssh",
        }
    }

    /// The narrowest tier that allows it.
    pub fn least_tier(self) -> SupportTier {
        match self {
            SupportAction::View | SupportAction::ReadLogs | SupportAction::HealthCheck => {
                SupportTier::ReadOnly
            }
            SupportAction::Restart => SupportTier::Debug,
            SupportAction::SidecarCommand | SupportAction::Reboot => SupportTier::Write,
            SupportAction::Ssh => SupportTier::Emergency,
        }
    }

    /// How a refusal names it ("restart n8n").
    pub fn describe(self) -> &'static str {
        match self {
            SupportAction::View => "view this tenant",
            SupportAction::ReadLogs => "read this droplet's logs",
            SupportAction::HealthCheck => "run a health check",
            SupportAction::Restart => "restart n8n",
            SupportAction::SidecarCommand => "send this sidecar command",
            SupportAction::Reboot => "reboot this droplet",
            SupportAction::Ssh => "install an SSH key",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tier_allows_what_the_one_before_allows_and_no_more_than_the_spec_says() {
        use SupportAction::*;
        let actions = [
            View,
            ReadLogs,
            HealthCheck,
            Restart,
            SidecarCommand,
            Reboot,
            Ssh,
        ];
        let allowed = |t: SupportTier| -> Vec<SupportAction> {
            actions.into_iter().filter(|a| t.allows(*a)).collect()
        };
        assert_eq!(
            allowed(SupportTier::ReadOnly),
            [View, ReadLogs, HealthCheck]
        );
        assert_eq!(
            allowed(SupportTier::Debug),
            [View, ReadLogs, HealthCheck, Restart]
        );
        assert_eq!(
            allowed(SupportTier::Write),
            [View, ReadLogs, HealthCheck, Restart, SidecarCommand, Reboot]
        );
        assert_eq!(allowed(SupportTier::Emergency), actions);
    }

    #[test]
    fn durations_and_approvals_are_spec_63_3s() {
        let table: Vec<(u64, u8, bool)> = SupportTier::ALL
            .into_iter()
            .map(|t| {
                (
                    t.duration().as_secs() / 60,
                    t.approvals_needed(),
                    t.needs_incident(),
                )
            })
            .collect();
        assert_eq!(
            table,
            [
                (30, 0, false),
                (60, 0, false),
                (30, 1, false),
                (15, 2, true)
            ]
        );
    }

    #[test]
    fn codes_round_trip_and_nothing_else_parses() {
        for t in SupportTier::ALL {
            assert_eq!(SupportTier::from_code(t.code()), Some(t));
        }
        for r in OperatorRole::ALL {
            assert_eq!(OperatorRole::from_code(r.code()), Some(r));
        }
        for bad in ["", "READ_ONLY", "read-only", "root", "Admin"] {
            assert_eq!(SupportTier::from_code(bad), None, "{bad}");
            assert_eq!(OperatorRole::from_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_support_needs_grants_and_only_managers_and_admins_approve() {
        assert!(OperatorRole::Support.needs_grant());
        assert!(!OperatorRole::Manager.needs_grant() && !OperatorRole::Admin.needs_grant());
        assert!(!OperatorRole::Support.approves());
        assert!(OperatorRole::Manager.approves() && OperatorRole::Admin.approves());
    }
}
