//! Where a tenant's tracking domain stands (spec 61.4). DNS decides the first three states;
//! only the engine confirming that its web front serves the host makes it active.

use serde::Serialize;

/// A tracking domain's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrackingState {
    /// No record for the host yet.
    Pending,
    /// The host's record points somewhere other than the tenant's engine.
    WrongTarget,
    /// DNS points at the engine; the engine has not confirmed it serves the host yet.
    Verified,
    /// The engine serves the host (Caddy has it, and obtains its certificate).
    Active,
}

impl TrackingState {
    /// Every state.
    pub const ALL: [TrackingState; 4] = [
        TrackingState::Pending,
        TrackingState::WrongTarget,
        TrackingState::Verified,
        TrackingState::Active,
    ];

    /// The stored name.
    pub fn code(self) -> &'static str {
        match self {
            TrackingState::Pending => "pending",
            TrackingState::WrongTarget => "wrong_target",
            TrackingState::Verified => "verified",
            TrackingState::Active => "active",
        }
    }

    /// Parses a stored name.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The audit event of a change into this state.
    pub fn audit_event(self) -> &'static str {
        match self {
            TrackingState::Pending => "TRACKING_DOMAIN_PENDING",
            TrackingState::WrongTarget => "TRACKING_DOMAIN_WRONG_TARGET",
            TrackingState::Verified => "TRACKING_DOMAIN_VERIFIED",
            TrackingState::Active => "TRACKING_DOMAIN_ACTIVE",
        }
    }

    /// The state after DNS was looked at: `points_at_engine` (None: no record at all). An
    /// active host stays active while DNS still points at the engine; it is not served
    /// again until the engine confirms it.
    pub fn after_dns(self, points_at_engine: Option<bool>) -> Self {
        match points_at_engine {
            None => TrackingState::Pending,
            Some(false) => TrackingState::WrongTarget,
            Some(true) if self == TrackingState::Active => TrackingState::Active,
            Some(true) => TrackingState::Verified,
        }
    }

    /// Whether the engine should serve a host in this state.
    pub fn served(self) -> bool {
        matches!(self, TrackingState::Verified | TrackingState::Active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_moves_a_host_and_only_the_engine_makes_it_active() {
        use TrackingState::*;
        for s in TrackingState::ALL {
            assert_eq!(TrackingState::from_code(s.code()), Some(s));
            assert_eq!(s.after_dns(None), Pending);
            assert_eq!(s.after_dns(Some(false)), WrongTarget);
        }
        assert_eq!(Pending.after_dns(Some(true)), Verified);
        assert_eq!(WrongTarget.after_dns(Some(true)), Verified);
        assert_eq!(Verified.after_dns(Some(true)), Verified);
        assert_eq!(Active.after_dns(Some(true)), Active);
        assert!(Verified.served() && Active.served() && !Pending.served());
        assert_eq!(TrackingState::from_code("gone"), None);
    }
}
