//! The droplet lifecycle: the states of spec 50.5 and the health states of spec 54.2 as one
//! enum, with one transition function.
//!
//! # Guarantees
//! - [`DropletState::next`] is the only way to compute a new state; the store persists the
//!   result with an optimistic-concurrency version and an audit event in one transaction.
//! - `Terminated` is final: no event leaves it.
//!
//! # Caveats
//! - `Destroyed` is accepted from every live state, not only from `Orphan` as spec 50.5's table
//!   lists: tenant deletion (spec 64.2) destroys healthy and hibernating droplets too.
//! - `Failed` is spec 50.5's outcome of a create or boot that never reached the handshake; it
//!   differs from `Orphan` (a droplet that booted but never registered) only in the cleanup that
//!   follows, and both end in `Terminated`.
//! - `RebootIssued` is accepted from every serving state, not only from `Zombie`: an operator
//!   reboots a droplet from God Mode (issue 21), and the same deadline then applies.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a droplet is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DropletState {
    /// The cloud API was called; the droplet is being created.
    Pending,
    /// Cloud-init is running.
    Initializing,
    /// Waiting for the sidecar's handshake POST.
    HandshakePending,
    /// Normal operation.
    ActiveHealthy,
    /// Normal operation under resource pressure (spec 54.3).
    ActiveDegraded,
    /// Workflows or credentials differ from the desired state (spec 43).
    DriftDetected,
    /// Powered off to save cost (spec 55).
    Hibernating,
    /// Powering on from hibernation.
    Waking,
    /// Powered on but the sidecar is silent (spec 54.4).
    Zombie,
    /// A hard reboot is in progress.
    Rebooting,
    /// Provisioning or recovery failed; needs rollback or manual review.
    Orphan,
    /// Creation or boot failed before the handshake.
    Failed,
    /// An operator took manual control; automation leaves it alone.
    Maintenance,
    /// Destroyed at the cloud. Final.
    Terminated,
}

/// Something that happened to a droplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DropletEvent {
    /// The cloud reports the droplet booted; cloud-init starts.
    Booted,
    /// Cloud-init finished; the sidecar should now call home.
    CloudInitFinished,
    /// The create or boot failed.
    ProvisioningFailed,
    /// The sidecar completed the handshake.
    HandshakeCompleted,
    /// No handshake within its deadline.
    HandshakeTimedOut,
    /// Resource thresholds of spec 54.3 crossed.
    ResourcesHigh,
    /// Resources back under the recovery thresholds.
    ResourcesRecovered,
    /// The watchdog found drift.
    DriftFound,
    /// The drift was healed.
    DriftHealed,
    /// Hibernation finished powering the droplet off.
    Hibernated,
    /// A wake trigger arrived.
    WakeRequested,
    /// Heartbeats arrive again after a wake or a reboot.
    HeartbeatResumed,
    /// Three heartbeat windows missed while the cloud says "powered on".
    HeartbeatsMissed,
    /// A power cycle was issued.
    RebootIssued,
    /// No heartbeat within 5 minutes of a reboot.
    RebootTimedOut,
    /// An operator took manual control.
    MaintenanceStarted,
    /// An operator handed control back.
    MaintenanceEnded,
    /// The droplet was destroyed at the cloud.
    Destroyed,
}

/// An event that the current state does not accept. Carrying both lets callers log exactly
/// what was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("droplet in state {from} cannot accept event {event:?}")]
pub struct IllegalTransition {
    /// The state the droplet was in.
    pub from: DropletState,
    /// The refused event.
    pub event: DropletEvent,
}

/// What the cloud says about a droplet's machine, in the cloud's own words mapped to four
/// vendor-neutral facts (DigitalOcean: `new`, `active`, `off`, `archive`; a 404 is `Gone`).
/// The cloud never decides our state by itself: it only implies an event, which then goes
/// through [`DropletState::next`] like any other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloudPower {
    /// Still being created.
    Provisioning,
    /// Powered on (says nothing about the software inside).
    Running,
    /// Powered off.
    Off,
    /// Destroyed or archived.
    Gone,
}

/// The audit events a droplet's change of state is written under (spec 63.1's Droplet
/// events where one applies, [`DropletState::audit_event`]); a reader of a droplet's history
/// reads them all.
pub const TRANSITION_EVENTS: [&str; 5] = [
    "DROPLET_STATE_CHANGED",
    "REBOOTED",
    "HIBERNATED",
    "WOKEN",
    "TERMINATED",
];

impl DropletState {
    /// The audit event of a change from `self` to `to`: spec 63.1's REBOOTED, HIBERNATED,
    /// WOKEN or TERMINATED when the change is one, DROPLET_STATE_CHANGED otherwise. (CREATED
    /// is the registration's.)
    pub fn audit_event(self, to: DropletState) -> &'static str {
        use DropletState::*;
        match (self, to) {
            (_, Rebooting) => "REBOOTED",
            (from, Hibernating) if from != Hibernating => "HIBERNATED",
            (Waking, ActiveHealthy | ActiveDegraded | DriftDetected) => "WOKEN",
            (_, Terminated) => "TERMINATED",
            _ => "DROPLET_STATE_CHANGED",
        }
    }

    /// The event that a cloud observation implies for a droplet in this state, if any.
    ///
    /// - `Gone` destroys any live droplet (someone deleted it behind our back, or we did).
    /// - `Running` boots a `Pending` droplet; otherwise power-on says nothing new.
    /// - `Off` where a droplet should be serving is a missed heartbeat (the zombie path of
    ///   spec 54 power-cycles it); `Off` during creation is a failed provisioning; `Off`
    ///   while hibernating, rebooting, in maintenance or already a zombie is expected.
    pub fn on_cloud_power(self, observed: CloudPower) -> Option<DropletEvent> {
        use CloudPower as P;
        use DropletEvent as E;
        use DropletState as S;
        match (self, observed) {
            (S::Terminated, _) => None,
            (_, P::Gone) => Some(E::Destroyed),
            (S::Pending, P::Running) => Some(E::Booted),
            (S::Pending | S::Initializing, P::Off) => Some(E::ProvisioningFailed),
            (S::ActiveHealthy | S::ActiveDegraded | S::DriftDetected | S::Waking, P::Off) => {
                Some(E::HeartbeatsMissed)
            }
            _ => None,
        }
    }

    /// Every state, for exhaustive tests and dashboards.
    pub const ALL: [DropletState; 14] = [
        DropletState::Pending,
        DropletState::Initializing,
        DropletState::HandshakePending,
        DropletState::ActiveHealthy,
        DropletState::ActiveDegraded,
        DropletState::DriftDetected,
        DropletState::Hibernating,
        DropletState::Waking,
        DropletState::Zombie,
        DropletState::Rebooting,
        DropletState::Orphan,
        DropletState::Failed,
        DropletState::Maintenance,
        DropletState::Terminated,
    ];

    /// The transition table. Returns the next state or says why the event is refused.
    pub fn next(self, event: DropletEvent) -> Result<DropletState, IllegalTransition> {
        use DropletEvent as E;
        use DropletState as S;
        let next = match (self, event) {
            (S::Terminated, _) => None,
            (_, E::Destroyed) => Some(S::Terminated),
            (S::Pending, E::Booted) => Some(S::Initializing),
            (S::Pending | S::Initializing, E::ProvisioningFailed) => Some(S::Failed),
            (S::Initializing, E::CloudInitFinished) => Some(S::HandshakePending),
            (S::HandshakePending, E::HandshakeCompleted) => Some(S::ActiveHealthy),
            (S::HandshakePending, E::HandshakeTimedOut) => Some(S::Orphan),
            (S::ActiveHealthy, E::ResourcesHigh) => Some(S::ActiveDegraded),
            (S::ActiveDegraded, E::ResourcesRecovered) => Some(S::ActiveHealthy),
            (S::ActiveHealthy | S::ActiveDegraded, E::DriftFound) => Some(S::DriftDetected),
            (S::DriftDetected, E::DriftHealed) => Some(S::ActiveHealthy),
            (S::ActiveHealthy | S::ActiveDegraded, E::Hibernated) => Some(S::Hibernating),
            (S::Hibernating, E::WakeRequested) => Some(S::Waking),
            (S::Waking | S::Rebooting, E::HeartbeatResumed) => Some(S::ActiveHealthy),
            (
                S::ActiveHealthy | S::ActiveDegraded | S::DriftDetected | S::Waking,
                E::HeartbeatsMissed,
            ) => Some(S::Zombie),
            // The watchdog reboots a zombie; an operator may reboot any serving droplet
            // (God Mode's Reboot). Either way the heartbeat must return within the deadline.
            (
                S::Zombie | S::ActiveHealthy | S::ActiveDegraded | S::DriftDetected,
                E::RebootIssued,
            ) => Some(S::Rebooting),
            (S::Rebooting, E::RebootTimedOut) => Some(S::Orphan),
            (s, E::MaintenanceStarted) if s != S::Maintenance => Some(S::Maintenance),
            (S::Maintenance, E::MaintenanceEnded) => Some(S::ActiveHealthy),
            _ => None,
        };
        next.ok_or(IllegalTransition { from: self, event })
    }

    /// True for the one state no event leaves.
    pub fn is_final(self) -> bool {
        self == DropletState::Terminated
    }

    /// True while the droplet's n8n runs and its sidecar takes commands: the states a
    /// command can be sent in (a degraded or drifted droplet still serves).
    pub fn is_serving(self) -> bool {
        matches!(
            self,
            DropletState::ActiveHealthy
                | DropletState::ActiveDegraded
                | DropletState::DriftDetected
        )
    }

    /// The state in the words a tenant uses on their dashboard: whether their engine is
    /// running, sleeping, waking, updating, restarting or stopped, never the machine's
    /// vocabulary.
    pub fn for_tenant(self) -> &'static str {
        match self {
            DropletState::Pending | DropletState::Initializing | DropletState::HandshakePending => {
                "starting"
            }
            DropletState::ActiveHealthy
            | DropletState::ActiveDegraded
            | DropletState::DriftDetected => "running",
            DropletState::Hibernating => "sleeping",
            DropletState::Waking => "waking",
            DropletState::Maintenance => "updating",
            DropletState::Zombie | DropletState::Rebooting => "restarting",
            DropletState::Orphan | DropletState::Failed => "stopped (our team is on it)",
            DropletState::Terminated => "removed",
        }
    }

    /// The state in the words an operator uses (God Mode's cards, tooltips and messages);
    /// [`DropletState::code`] stays the machine's name.
    pub fn in_words(self) -> &'static str {
        match self {
            DropletState::Pending => "being created",
            DropletState::Initializing => "booting",
            DropletState::HandshakePending => "waiting for its agent",
            DropletState::ActiveHealthy => "healthy",
            DropletState::ActiveDegraded => "under strain",
            DropletState::DriftDetected => "drifted",
            DropletState::Hibernating => "asleep",
            DropletState::Waking => "waking",
            DropletState::Zombie => "not responding",
            DropletState::Rebooting => "rebooting",
            DropletState::Orphan => "lost",
            DropletState::Failed => "failed to start",
            DropletState::Maintenance => "in maintenance",
            DropletState::Terminated => "destroyed",
        }
    }

    /// The stable code stored in the database and shown in APIs.
    pub fn code(self) -> &'static str {
        match self {
            DropletState::Pending => "PENDING",
            DropletState::Initializing => "INITIALIZING",
            DropletState::HandshakePending => "HANDSHAKE_PENDING",
            DropletState::ActiveHealthy => "ACTIVE_HEALTHY",
            DropletState::ActiveDegraded => "ACTIVE_DEGRADED",
            DropletState::DriftDetected => "DRIFT_DETECTED",
            DropletState::Hibernating => "HIBERNATING",
            DropletState::Waking => "WAKING",
            DropletState::Zombie => "ZOMBIE",
            DropletState::Rebooting => "REBOOTING",
            DropletState::Orphan => "ORPHAN",
            DropletState::Failed => "FAILED",
            DropletState::Maintenance => "MAINTENANCE",
            DropletState::Terminated => "TERMINATED",
        }
    }

    /// Parses a stored code; `None` means the database holds something this build does not
    /// know, which callers must treat as corruption, not as a default.
    pub fn from_code(code: &str) -> Option<Self> {
        DropletState::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for DropletState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_change_is_audited_under_spec_63_1s_name_when_it_has_one() {
        use DropletState::*;
        let cases = [
            (ActiveHealthy, Rebooting, "REBOOTED"),
            (Zombie, Rebooting, "REBOOTED"),
            (ActiveHealthy, Hibernating, "HIBERNATED"),
            (Waking, ActiveHealthy, "WOKEN"),
            (Waking, DriftDetected, "WOKEN"),
            (Orphan, Terminated, "TERMINATED"),
            (Pending, Initializing, "DROPLET_STATE_CHANGED"),
            (Hibernating, Waking, "DROPLET_STATE_CHANGED"),
            (ActiveHealthy, Zombie, "DROPLET_STATE_CHANGED"),
        ];
        for (from, to, want) in cases {
            assert_eq!(from.audit_event(to), want, "{from:?} -> {to:?}");
            assert!(TRANSITION_EVENTS.contains(&want));
        }
    }

    const EVENTS: [DropletEvent; 18] = [
        DropletEvent::Booted,
        DropletEvent::CloudInitFinished,
        DropletEvent::ProvisioningFailed,
        DropletEvent::HandshakeCompleted,
        DropletEvent::HandshakeTimedOut,
        DropletEvent::ResourcesHigh,
        DropletEvent::ResourcesRecovered,
        DropletEvent::DriftFound,
        DropletEvent::DriftHealed,
        DropletEvent::Hibernated,
        DropletEvent::WakeRequested,
        DropletEvent::HeartbeatResumed,
        DropletEvent::HeartbeatsMissed,
        DropletEvent::RebootIssued,
        DropletEvent::RebootTimedOut,
        DropletEvent::MaintenanceStarted,
        DropletEvent::MaintenanceEnded,
        DropletEvent::Destroyed,
    ];

    #[test]
    fn the_happy_path_of_spec_50_5() {
        let mut s = DropletState::Pending;
        for e in [
            DropletEvent::Booted,
            DropletEvent::CloudInitFinished,
            DropletEvent::HandshakeCompleted,
            DropletEvent::Hibernated,
            DropletEvent::WakeRequested,
            DropletEvent::HeartbeatResumed,
            DropletEvent::HeartbeatsMissed,
            DropletEvent::RebootIssued,
            DropletEvent::RebootTimedOut,
            DropletEvent::Destroyed,
        ] {
            s = s.next(e).expect("legal step");
        }
        assert_eq!(s, DropletState::Terminated);
    }

    #[test]
    fn refusals_name_state_and_event() {
        let err = DropletState::Hibernating
            .next(DropletEvent::HandshakeCompleted)
            .expect_err("hibernating droplets do not handshake");
        assert_eq!(err.from, DropletState::Hibernating);
        assert_eq!(err.event, DropletEvent::HandshakeCompleted);
    }

    #[test]
    fn codes_round_trip() {
        for s in DropletState::ALL {
            assert_eq!(DropletState::from_code(s.code()), Some(s));
        }
        assert_eq!(DropletState::from_code("active"), None);
    }

    #[test]
    fn cloud_observations_imply_only_legal_events() {
        let all = [
            CloudPower::Provisioning,
            CloudPower::Running,
            CloudPower::Off,
            CloudPower::Gone,
        ];
        for s in DropletState::ALL {
            for p in all {
                if let Some(e) = s.on_cloud_power(p) {
                    assert!(s.next(e).is_ok(), "{s} + {p:?} implies illegal {e:?}");
                }
            }
        }
        assert_eq!(
            DropletState::Pending.on_cloud_power(CloudPower::Running),
            Some(DropletEvent::Booted)
        );
        assert_eq!(
            DropletState::ActiveHealthy.on_cloud_power(CloudPower::Off),
            Some(DropletEvent::HeartbeatsMissed)
        );
        assert_eq!(
            DropletState::Hibernating.on_cloud_power(CloudPower::Off),
            None
        );
        assert_eq!(
            DropletState::Hibernating.on_cloud_power(CloudPower::Gone),
            Some(DropletEvent::Destroyed)
        );
        assert_eq!(
            DropletState::Terminated.on_cloud_power(CloudPower::Gone),
            None
        );
    }

    proptest! {
        #[test]
        fn terminated_is_absorbing(path in proptest::collection::vec(0usize..18, 0..40)) {
            let mut s = DropletState::Pending;
            for i in path {
                let e = EVENTS[i];
                match s.next(e) {
                    Ok(n) => { prop_assert!(!s.is_final()); s = n; }
                    Err(err) => { prop_assert_eq!(err.from, s); }
                }
            }
            for e in EVENTS {
                prop_assert!(DropletState::Terminated.next(e).is_err());
            }
        }
    }
}
