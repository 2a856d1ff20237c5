//! The Ohio exception (spec 3): one decision, in one place, about whether a workspace takes
//! the legacy path or the sovereign path.
//!
//! The legacy workspace's id and its n8n URL come from configuration; no other code compares
//! workspace ids against a legacy id, and only the store's legacy adapter knows the legacy
//! table's name.

use crate::WorkspaceId;

/// The single legacy tenant, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTenant {
    /// The legacy workspace's id (`OHIO_WORKSPACE_UUID` in spec 3.2).
    pub workspace_id: WorkspaceId,
    /// The legacy n8n instance's base URL.
    pub n8n_url: String,
}

/// Where a workspace's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantRoute<'a> {
    /// Legacy infrastructure: legacy lead table and legacy n8n.
    Legacy(&'a LegacyTenant),
    /// The V30 path: `genesis.leads_p_<slug>` and the tenant's sidecar.
    Sovereign,
}

/// Decides the route for a workspace. Built once from configuration.
#[derive(Debug, Clone, Default)]
pub struct TenantRouter {
    legacy: Option<LegacyTenant>,
}

impl TenantRouter {
    /// A router with the configured legacy tenant, or none (every tenant sovereign).
    pub fn new(legacy: Option<LegacyTenant>) -> Self {
        Self { legacy }
    }

    /// The route for `workspace`.
    pub fn route(&self, workspace: WorkspaceId) -> TenantRoute<'_> {
        match &self.legacy {
            Some(l) if l.workspace_id == workspace => TenantRoute::Legacy(l),
            _ => TenantRoute::Sovereign,
        }
    }

    /// The configured legacy tenant, if any.
    pub fn legacy(&self) -> Option<&LegacyTenant> {
        self.legacy.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_id_is_legacy() {
        let ohio = WorkspaceId::new();
        let router = TenantRouter::new(Some(LegacyTenant {
            workspace_id: ohio,
            n8n_url: "http://legacy-n8n.invalid".into(),
        }));
        assert!(matches!(router.route(ohio), TenantRoute::Legacy(l) if l.workspace_id == ohio));
        assert_eq!(router.route(WorkspaceId::new()), TenantRoute::Sovereign);
        assert_eq!(TenantRouter::default().route(ohio), TenantRoute::Sovereign);
    }
}
