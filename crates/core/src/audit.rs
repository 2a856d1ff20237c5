//! The audit log's categories (spec 63.1), as a closed set: an event cannot be written
//! under a category the spec does not name, and every reader filters on the same words.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an audit event belongs. The eight of spec 63.1, and `Operations` for what
/// operators do to the fleet as a whole (a rollout started, a dead letter replayed), which
/// concerns no one tenant's data.
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
pub enum AuditCategory {
    /// A tenant's creation, ignition and onboarding.
    Provisioning,
    /// Secrets: created, accessed, rotated, deleted (vault, webhook secrets, keys).
    Credentials,
    /// n8n workflows: deployed, updated, activated, deactivated, drift and its heals.
    Workflows,
    /// A droplet's life: created, rebooted, hibernated, woken, terminated, alerts.
    Droplet,
    /// Sign-ins, refusals, accounts, roles, sidecar handshakes.
    Security,
    /// Support grants and what was done under them.
    Support,
    /// The wallet, payments, limits and the kill switch.
    Billing,
    /// Leads in and out, exports, deletion, partitions.
    Data,
    /// Fleet-wide operator actions that concern no one tenant.
    Operations,
}

impl AuditCategory {
    /// Every category, in the spec's order.
    pub const ALL: [AuditCategory; 9] = [
        AuditCategory::Provisioning,
        AuditCategory::Credentials,
        AuditCategory::Workflows,
        AuditCategory::Droplet,
        AuditCategory::Security,
        AuditCategory::Support,
        AuditCategory::Billing,
        AuditCategory::Data,
        AuditCategory::Operations,
    ];

    /// The stable code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            AuditCategory::Provisioning => "provisioning",
            AuditCategory::Credentials => "credentials",
            AuditCategory::Workflows => "workflows",
            AuditCategory::Droplet => "droplet",
            AuditCategory::Security => "security",
            AuditCategory::Support => "support",
            AuditCategory::Billing => "billing",
            AuditCategory::Data => "data",
            AuditCategory::Operations => "operations",
        }
    }

    /// Parses a code; `None` for anything else.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// How a page names it.
    pub fn label(self) -> &'static str {
        match self {
            AuditCategory::Provisioning => "Provisioning",
            AuditCategory::Credentials => "Credentials",
            AuditCategory::Workflows => "Workflows",
            AuditCategory::Droplet => "Droplet",
            AuditCategory::Security => "Security",
            AuditCategory::Support => "Support",
            AuditCategory::Billing => "Billing",
            AuditCategory::Data => "Data",
            AuditCategory::Operations => "Operations",
        }
    }
}

impl fmt::Display for AuditCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_the_old_ad_hoc_names_do_not_parse() {
        for c in AuditCategory::ALL {
            assert_eq!(AuditCategory::from_code(c.code()), Some(c));
        }
        for old in [
            "handshake",
            "hibernation",
            "vault",
            "watchdog",
            "fleet",
            "rollout",
            "operator",
            "notifications",
            "Security",
        ] {
            assert_eq!(AuditCategory::from_code(old), None, "{old}");
        }
    }
}
