//! The heartbeat health rules of spec 54.3, as pure functions over what the heartbeats said.
//!
//! # Guarantees
//! - Degraded: CPU above 80 % for 5 heartbeats in a row, or memory above 85 % for 5, or disk
//!   above 90 % for 3. Recovered: CPU below 70 %, memory below 75 % and disk below 85 %, all
//!   three at once, for 3 heartbeats in a row.
//! - Hysteresis: between the two bands nothing moves, so a value sitting on a threshold never
//!   makes a droplet flap. "Above" and "below" are strict.
//! - Zombie: 3 whole heartbeat windows without a heartbeat while the cloud says the machine
//!   is running. A heartbeat that is late but arrives inside the third window resets the
//!   count, so one late heartbeat never makes a zombie.
//!
//! # Assumptions
//! - Heartbeats are fed in the order they were received, once each.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::droplet::{CloudPower, DropletEvent, DropletState};

/// Resource use from one heartbeat, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceSample {
    /// CPU.
    pub cpu: f32,
    /// Memory (used / total).
    pub memory: f32,
    /// Disk.
    pub disk: f32,
}

/// Spec 54.3's thresholds.
pub mod thresholds {
    /// CPU above this is high.
    pub const CPU_HIGH: f32 = 80.0;
    /// Memory above this is high.
    pub const MEMORY_HIGH: f32 = 85.0;
    /// Disk above this is high.
    pub const DISK_HIGH: f32 = 90.0;
    /// Heartbeats in a row of high CPU or memory to degrade.
    pub const CPU_MEMORY_RUN: u16 = 5;
    /// Heartbeats in a row of high disk to degrade.
    pub const DISK_RUN: u16 = 3;
    /// CPU below this counts toward recovery.
    pub const CPU_LOW: f32 = 70.0;
    /// Memory below this counts toward recovery.
    pub const MEMORY_LOW: f32 = 75.0;
    /// Disk below this counts toward recovery.
    pub const DISK_LOW: f32 = 85.0;
    /// Heartbeats in a row, all three low, to recover.
    pub const RECOVERY_RUN: u16 = 3;
    /// Whole heartbeat windows without a heartbeat that make a running droplet a zombie.
    pub const MISSED_WINDOWS: u32 = 3;
}

/// Consecutive-heartbeat counters of one droplet: the whole memory the rules need. Small and
/// serializable, so it is stored with the droplet and any replica can continue it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthCounters {
    /// Heartbeats in a row with CPU above 80 %.
    pub cpu_high: u16,
    /// With memory above 85 %.
    pub memory_high: u16,
    /// With disk above 90 %.
    pub disk_high: u16,
    /// With all three below the recovery band.
    pub all_low: u16,
}

/// Counts a hit, up to `cap` (the rules only ask "at least `cap` in a row?", and a counter
/// that stops moving lets the store skip rewriting a steady droplet's counters).
fn bump(counter: u16, hit: bool, cap: u16) -> u16 {
    if hit {
        counter.saturating_add(1).min(cap)
    } else {
        0
    }
}

impl HealthCounters {
    /// Counts `sample` in, and returns the event it implies for a droplet in `state`, if
    /// any: `ResourcesHigh` for a healthy one, `ResourcesRecovered` for a degraded one.
    pub fn observe(&mut self, state: DropletState, sample: ResourceSample) -> Option<DropletEvent> {
        use thresholds::*;
        self.cpu_high = bump(self.cpu_high, sample.cpu > CPU_HIGH, CPU_MEMORY_RUN);
        self.memory_high = bump(
            self.memory_high,
            sample.memory > MEMORY_HIGH,
            CPU_MEMORY_RUN,
        );
        self.disk_high = bump(self.disk_high, sample.disk > DISK_HIGH, DISK_RUN);
        self.all_low = bump(
            self.all_low,
            sample.cpu < CPU_LOW && sample.memory < MEMORY_LOW && sample.disk < DISK_LOW,
            RECOVERY_RUN,
        );
        let high = self.cpu_high >= CPU_MEMORY_RUN
            || self.memory_high >= CPU_MEMORY_RUN
            || self.disk_high >= DISK_RUN;
        match state {
            DropletState::ActiveHealthy if high => Some(DropletEvent::ResourcesHigh),
            DropletState::ActiveDegraded if self.all_low >= RECOVERY_RUN => {
                Some(DropletEvent::ResourcesRecovered)
            }
            _ => None,
        }
    }
}

/// Whole heartbeat windows that passed since the last heartbeat.
pub fn missed_windows(since_last: Duration, interval: Duration) -> u32 {
    if interval.is_zero() {
        return 0;
    }
    (since_last.as_millis() / interval.as_millis()).min(u128::from(u32::MAX)) as u32
}

/// Spec 54.3's zombie rule: enough silence and a machine the cloud says is running. The
/// caller asks the cloud only once the silence alone qualifies ([`silent_long_enough`]).
pub fn is_zombie(since_last: Duration, interval: Duration, power: CloudPower) -> bool {
    silent_long_enough(since_last, interval) && power == CloudPower::Running
}

/// The silence half of the zombie rule: at least 3 whole windows without a heartbeat.
pub fn silent_long_enough(since_last: Duration, interval: Duration) -> bool {
    missed_windows(since_last, interval) >= thresholds::MISSED_WINDOWS
}

/// Droplet states in which a missing heartbeat means something (the sidecar should be
/// reporting).
pub fn expects_heartbeats(state: DropletState) -> bool {
    matches!(
        state,
        DropletState::ActiveHealthy | DropletState::ActiveDegraded | DropletState::DriftDetected
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(cpu: f32, memory: f32, disk: f32) -> ResourceSample {
        ResourceSample { cpu, memory, disk }
    }

    /// Feeds samples through the rules and the state machine; returns every state visited.
    fn run(samples: &[ResourceSample]) -> Vec<DropletState> {
        let mut state = DropletState::ActiveHealthy;
        let mut c = HealthCounters::default();
        let mut states = vec![state];
        for x in samples {
            if let Some(e) = c.observe(state, *x) {
                state = state.next(e).expect("the rules only emit legal events");
                states.push(state);
            }
        }
        states
    }

    #[test]
    fn the_spec_examples() {
        let busy = s(95.0, 10.0, 10.0);
        assert_eq!(run(&[busy; 4]).len(), 1, "4 high-CPU beats are not enough");
        assert_eq!(
            run(&[busy; 5]),
            [DropletState::ActiveHealthy, DropletState::ActiveDegraded]
        );
        let full = s(10.0, 10.0, 95.0);
        assert_eq!(run(&[full; 3]).len(), 2, "3 high-disk beats degrade");
        let calm = s(10.0, 10.0, 10.0);
        let mut seq = vec![busy; 5];
        seq.extend([calm; 2]);
        assert_eq!(run(&seq).len(), 2, "2 calm beats do not recover");
        seq.push(calm);
        assert_eq!(
            *run(&seq).last().expect("state"),
            DropletState::ActiveHealthy
        );
    }

    #[test]
    fn a_high_run_broken_by_one_normal_beat_starts_over() {
        let busy = s(95.0, 10.0, 10.0);
        let calm = s(10.0, 10.0, 10.0);
        let seq = [busy, busy, busy, busy, calm, busy, busy, busy, busy];
        assert_eq!(run(&seq).len(), 1);
    }

    proptest! {
        /// Values on or between the thresholds never change a state: no flapping.
        #[test]
        fn boundary_values_never_flap(
            cpu in 70.0f32..=80.0, memory in 75.0f32..=85.0, disk in 85.0f32..=90.0,
            n in 1usize..50,
            degraded in any::<bool>(),
        ) {
            let state = if degraded { DropletState::ActiveDegraded } else { DropletState::ActiveHealthy };
            let mut c = HealthCounters::default();
            for _ in 0..n {
                prop_assert_eq!(c.observe(state, s(cpu, memory, disk)), None);
            }
        }

        /// Whatever the samples, a degraded droplet needs RECOVERY_RUN calm beats in a row to
        /// recover, and a healthy one at least DISK_RUN beats to degrade: never a flip on one
        /// sample.
        #[test]
        fn no_transition_on_a_single_sample(
            samples in proptest::collection::vec((0.0f32..100.0, 0.0f32..100.0, 0.0f32..100.0), 1..200)
        ) {
            let mut state = DropletState::ActiveHealthy;
            let mut c = HealthCounters::default();
            let mut since_change = 0usize;
            for (cpu, memory, disk) in samples {
                since_change += 1;
                if let Some(e) = c.observe(state, s(cpu, memory, disk)) {
                    let min = match e {
                        DropletEvent::ResourcesHigh => thresholds::DISK_RUN as usize,
                        _ => thresholds::RECOVERY_RUN as usize,
                    };
                    prop_assert!(since_change >= min, "{e:?} after {since_change} beats");
                    state = state.next(e).expect("legal");
                    since_change = 0;
                }
            }
        }

        /// Heartbeats that are late, but each within the third window after the previous one,
        /// never make a zombie.
        #[test]
        fn late_heartbeats_never_make_a_zombie(
            gaps_ms in proptest::collection::vec(0u64..179_999, 1..100)
        ) {
            let interval = Duration::from_secs(60);
            for g in gaps_ms {
                prop_assert!(!is_zombie(Duration::from_millis(g), interval, CloudPower::Running));
            }
        }

        /// Three whole windows of silence with the machine running always make a zombie; with
        /// the machine off, or gone, never (that is hibernation or deletion, not a zombie).
        #[test]
        fn three_silent_windows_and_a_running_machine_make_a_zombie(
            extra_ms in 0u64..10_000_000, secs in 1u64..120
        ) {
            let interval = Duration::from_secs(secs);
            let silence = interval * 3 + Duration::from_millis(extra_ms);
            prop_assert!(is_zombie(silence, interval, CloudPower::Running));
            prop_assert!(!is_zombie(silence, interval, CloudPower::Off));
            prop_assert!(!is_zombie(silence, interval, CloudPower::Gone));
        }
    }
}
