//! Fleet template rollouts (spec 56): the scenarios of spec 56.1 as policies, how a rollout
//! cuts its droplets into batches, what it decides after each batch (spec 56.3), and its
//! lifecycle. Pure: the conductor in the control plane applies these decisions.
//!
//! # Decisions after a batch
//! - **Abort** when failures reach `abort_at` of every droplet attempted so far (spec 56.3:
//!   10 %); abort wins over pause.
//! - **Pause** when failures reach `pause_at` of the batch (spec 56.3: 5 %) — a person
//!   resumes or aborts.
//! - **Continue** otherwise, after `pause_between` (spec 56.3: 30 s).
//!
//! Ratios compare whole counts (`failed * 10_000 >= attempted * basis_points`), so a value
//! exactly on a threshold always triggers it, with no floating-point doubt.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Spec 56.1's update scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Critical security patch: immediate push, accept failures.
    SecurityPatch,
    /// Bug fix: batched, pause on failures.
    BugFix,
    /// New feature: a canary batch, then batches that double up to the batch size.
    Feature,
    /// Config change: batched, no pause.
    ConfigChange,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 4] = [
        Scenario::SecurityPatch,
        Scenario::BugFix,
        Scenario::Feature,
        Scenario::ConfigChange,
    ];

    /// The stable code (`security_patch`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Scenario::SecurityPatch => "security_patch",
            Scenario::BugFix => "bug_fix",
            Scenario::Feature => "feature",
            Scenario::ConfigChange => "config_change",
        }
    }

    /// Parses a code.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == raw)
    }

    /// The scenario's default policy (every field may be overridden per rollout).
    ///
    /// Spec 56.1 names the strategies; spec 56.3 gives the numbers for batched ones. Two
    /// readings are ours: "immediate" is one batch of everything with no thresholds, and a
    /// config change ("batched, no pause") neither waits between batches nor pauses on
    /// failures, but still aborts at 10 % — a broken config should not reach the fleet.
    pub fn policy(self) -> RolloutPolicy {
        let batched = RolloutPolicy {
            batch_size: 100,
            pause_between: Duration::from_secs(30),
            pause_at_bp: Some(500),
            abort_at_bp: Some(1_000),
            canary: None,
        };
        match self {
            Scenario::SecurityPatch => RolloutPolicy {
                batch_size: 0,
                pause_between: Duration::ZERO,
                pause_at_bp: None,
                abort_at_bp: None,
                canary: None,
            },
            Scenario::BugFix => batched,
            Scenario::Feature => RolloutPolicy {
                canary: Some(10),
                ..batched
            },
            Scenario::ConfigChange => RolloutPolicy {
                pause_between: Duration::ZERO,
                pause_at_bp: None,
                ..batched
            },
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The largest batch (or canary) a policy may name: more droplets than any fleet holds, so
/// a bigger number can only be a typing mistake.
pub const MAX_BATCH: u32 = 100_000;

/// How a rollout proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutPolicy {
    /// Droplets per batch; 0 means all in one batch.
    #[schema(maximum = 100_000)]
    pub batch_size: u32,
    /// Wait between a batch's end and the next batch's start, in milliseconds.
    #[serde(with = "millis")]
    #[schema(value_type = u64, maximum = 86_400_000)]
    pub pause_between: Duration,
    /// Pause when a batch's failures reach this share, in basis points (500 = 5 %).
    pub pause_at_bp: Option<u32>,
    /// Abort when failures reach this share of all attempts so far, in basis points.
    pub abort_at_bp: Option<u32>,
    /// The first batch's size, after which batches double up to `batch_size`.
    #[schema(minimum = 1, maximum = 100_000)]
    pub canary: Option<u32>,
}

/// A policy as people read it: the units `POST /api/v1/rollouts` and the CLI take (seconds
/// and percent), not the stored ones (milliseconds and basis points).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// Droplets per batch; 0 means all in one batch.
    pub batch_size: u32,
    /// Wait between a batch's end and the next batch's start, in seconds.
    pub pause_between_s: f64,
    /// Pause when a batch's failures reach this percentage.
    pub pause_at_percent: Option<f64>,
    /// Abort when failures reach this percentage of all attempts so far.
    pub abort_at_percent: Option<f64>,
    /// The first batch's size, after which batches double up to `batch_size`.
    pub canary: Option<u32>,
}

impl From<&RolloutPolicy> for PolicyView {
    fn from(p: &RolloutPolicy) -> Self {
        Self {
            batch_size: p.batch_size,
            pause_between_s: p.pause_between.as_secs_f64(),
            pause_at_percent: p.pause_at_bp.map(|bp| f64::from(bp) / 100.0),
            abort_at_percent: p.abort_at_bp.map(|bp| f64::from(bp) / 100.0),
            canary: p.canary,
        }
    }
}

impl RolloutPolicy {
    /// Serializes as a [`PolicyView`] (for API answers; storage keeps the exact units).
    pub fn serialize_for_people<S: serde::Serializer>(
        policy: &RolloutPolicy,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        PolicyView::from(policy).serialize(s)
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyError {
    /// The field.
    pub field: &'static str,
    /// Why.
    pub message: String,
}

impl RolloutPolicy {
    /// Checks the thresholds and sizes make sense.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (field, v) in [
            ("pause_at", self.pause_at_bp),
            ("abort_at", self.abort_at_bp),
        ] {
            if let Some(bp) = v
                && !(1..=10_000).contains(&bp)
            {
                return Err(PolicyError {
                    field,
                    message: format!("must be above 0 % and at most 100 % (got {bp} bp)"),
                });
            }
        }
        for (field, v) in [
            ("batch_size", Some(self.batch_size)),
            ("canary", self.canary),
        ] {
            if v.is_some_and(|n| n > MAX_BATCH) {
                return Err(PolicyError {
                    field,
                    message: format!("must be at most {MAX_BATCH} droplets"),
                });
            }
        }
        if self.canary == Some(0) {
            return Err(PolicyError {
                field: "canary",
                message: "a canary batch needs at least one droplet".into(),
            });
        }
        if self.pause_between > Duration::from_secs(24 * 3600) {
            return Err(PolicyError {
                field: "pause_between",
                message: "at most a day".into(),
            });
        }
        Ok(())
    }

    /// The batch sizes for `total` droplets, in order; they add up to `total`.
    pub fn batch_sizes(&self, total: u32) -> Vec<u32> {
        let full = if self.batch_size == 0 {
            total.max(1)
        } else {
            self.batch_size
        };
        let mut out = Vec::new();
        let mut left = total;
        let mut next = self.canary.map_or(full, |c| c.min(full));
        while left > 0 {
            let take = next.min(left);
            out.push(take);
            left -= take;
            next = next.saturating_mul(2).min(full);
        }
        out
    }

    /// What to do after a batch.
    pub fn judge(&self, batch: Tally, overall: Tally) -> Verdict {
        if let Some(bp) = self.abort_at_bp
            && reaches(overall, bp)
        {
            return Verdict::Abort(format!(
                "{} of {} droplets failed, at or above the {} abort threshold",
                overall.failed,
                overall.attempted(),
                percent(bp)
            ));
        }
        if let Some(bp) = self.pause_at_bp
            && reaches(batch, bp)
        {
            return Verdict::Pause(format!(
                "{} of {} droplets in the batch failed, at or above the {} pause threshold",
                batch.failed,
                batch.attempted(),
                percent(bp)
            ));
        }
        Verdict::Continue
    }
}

fn reaches(t: Tally, bp: u32) -> bool {
    t.failed > 0 && u64::from(t.failed) * 10_000 >= u64::from(t.attempted()) * u64::from(bp)
}

fn percent(bp: u32) -> String {
    if bp.is_multiple_of(100) {
        format!("{} %", bp / 100)
    } else {
        format!("{:.2} %", f64::from(bp) / 100.0)
    }
}

/// Outcomes counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tally {
    /// Updated.
    pub done: u32,
    /// Failed.
    pub failed: u32,
}

impl Tally {
    /// Droplets with an outcome.
    pub fn attempted(self) -> u32 {
        self.done + self.failed
    }
}

/// The decision after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the next batch.
    Continue,
    /// Stop for a person (why).
    Pause(String),
    /// Cancel the rollout (why).
    Abort(String),
}

/// A rollout's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutStatus {
    /// Batches are being sent.
    Running,
    /// Stopped by a threshold or an operator; resumable.
    Paused,
    /// Every batch done.
    Completed,
    /// Cancelled; nothing more is sent.
    Aborted,
}

/// What moves a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutEvent {
    /// An operator, or a threshold, pauses it.
    Pause,
    /// An operator resumes it.
    Resume,
    /// An operator, or a threshold, aborts it.
    Abort,
    /// The last batch ended.
    Finish,
}

/// A move the lifecycle does not allow; its message says why, for the operator who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct IllegalRolloutMove {
    /// Where it was.
    pub from: RolloutStatus,
    /// What was asked.
    pub event: &'static str,
}

impl fmt::Display for IllegalRolloutMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asked = match self.event {
            "pause" => "paused",
            "resume" => "resumed",
            "abort" => "aborted",
            other => other,
        };
        match (self.from, self.event) {
            (RolloutStatus::Completed, _) => write!(
                f,
                "this rollout has completed already, so it cannot be {asked}"
            ),
            (RolloutStatus::Aborted, _) => write!(
                f,
                "this rollout was aborted already, so it cannot be {asked}"
            ),
            (RolloutStatus::Paused, "pause") => f.write_str("this rollout is paused already"),
            (RolloutStatus::Running, "resume") => {
                f.write_str("this rollout is running, not paused: there is nothing to resume")
            }
            (from, _) => write!(
                f,
                "a rollout that is {} cannot be {asked}",
                from.code().to_lowercase()
            ),
        }
    }
}

impl RolloutStatus {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            RolloutStatus::Running => "RUNNING",
            RolloutStatus::Paused => "PAUSED",
            RolloutStatus::Completed => "COMPLETED",
            RolloutStatus::Aborted => "ABORTED",
        }
    }

    /// Parses a code.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            RolloutStatus::Running,
            RolloutStatus::Paused,
            RolloutStatus::Completed,
            RolloutStatus::Aborted,
        ]
        .into_iter()
        .find(|s| s.code() == raw)
    }

    /// Whether nothing more will happen.
    pub fn is_final(self) -> bool {
        matches!(self, RolloutStatus::Completed | RolloutStatus::Aborted)
    }

    /// The status after `event`.
    pub fn apply(self, event: RolloutEvent) -> Result<RolloutStatus, IllegalRolloutMove> {
        use RolloutEvent as E;
        use RolloutStatus as S;
        match (self, event) {
            (S::Running, E::Pause) => Ok(S::Paused),
            (S::Paused, E::Resume) => Ok(S::Running),
            (S::Running | S::Paused, E::Abort) => Ok(S::Aborted),
            (S::Running, E::Finish) => Ok(S::Completed),
            (from, e) => Err(IllegalRolloutMove {
                from,
                event: match e {
                    E::Pause => "pause",
                    E::Resume => "resume",
                    E::Abort => "abort",
                    E::Finish => "finish",
                },
            }),
        }
    }
}

impl fmt::Display for RolloutStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tally(done: u32, failed: u32) -> Tally {
        Tally { done, failed }
    }

    #[test]
    fn spec_56_3_example_continues_then_pauses() {
        let p = Scenario::BugFix.policy();
        assert_eq!(p.judge(tally(98, 2), tally(98, 2)), Verdict::Continue);
        let v = p.judge(tally(95, 5), tally(193, 7));
        assert!(
            matches!(v, Verdict::Pause(ref m) if m.contains("5 of 100")),
            "{v:?}"
        );
    }

    #[test]
    fn failure_rates_of_the_issue_continue_pause_and_abort() {
        let p = Scenario::BugFix.policy();
        // 2 %, 5 % and 12 % of a first batch of 100.
        assert_eq!(p.judge(tally(98, 2), tally(98, 2)), Verdict::Continue);
        assert!(matches!(
            p.judge(tally(95, 5), tally(95, 5)),
            Verdict::Pause(_)
        ));
        assert!(matches!(
            p.judge(tally(88, 12), tally(88, 12)),
            Verdict::Abort(_)
        ));
        // Abort counts every attempt so far, not just the batch.
        assert!(matches!(
            p.judge(tally(96, 4), tally(180, 20)),
            Verdict::Abort(_)
        ));
    }

    #[test]
    fn a_security_patch_is_one_batch_that_accepts_failures() {
        let p = Scenario::SecurityPatch.policy();
        assert_eq!(p.batch_sizes(15_000), [15_000]);
        assert_eq!(p.judge(tally(1, 99), tally(1, 99)), Verdict::Continue);
    }

    #[test]
    fn a_feature_starts_with_a_canary_and_widens() {
        let p = Scenario::Feature.policy();
        assert_eq!(p.batch_sizes(400), [10, 20, 40, 80, 100, 100, 50]);
        assert_eq!(Scenario::BugFix.policy().batch_sizes(250), [100, 100, 50]);
        assert!(Scenario::BugFix.policy().batch_sizes(0).is_empty());
    }

    #[test]
    fn a_config_change_never_pauses_but_aborts() {
        let p = Scenario::ConfigChange.policy();
        assert_eq!(p.pause_between, Duration::ZERO);
        assert_eq!(p.judge(tally(90, 9), tally(910, 90)), Verdict::Continue);
        assert!(matches!(
            p.judge(tally(80, 20), tally(80, 20)),
            Verdict::Abort(_)
        ));
    }

    #[test]
    fn the_lifecycle_allows_only_its_moves() {
        use RolloutEvent as E;
        use RolloutStatus as S;
        assert_eq!(S::Running.apply(E::Pause), Ok(S::Paused));
        assert_eq!(S::Paused.apply(E::Resume), Ok(S::Running));
        assert_eq!(S::Paused.apply(E::Abort), Ok(S::Aborted));
        assert!(S::Paused.apply(E::Finish).is_err());
        assert!(S::Completed.apply(E::Resume).is_err());
        assert!(S::Aborted.apply(E::Resume).is_err());
        assert!(S::Running.apply(E::Resume).is_err());
    }

    #[test]
    fn policies_are_validated() {
        let mut p = Scenario::BugFix.policy();
        p.pause_at_bp = Some(0);
        assert_eq!(p.validate().map_err(|e| e.field), Err("pause_at"));
        p.pause_at_bp = Some(10_001);
        assert!(p.validate().is_err());
        p = Scenario::Feature.policy();
        p.canary = Some(0);
        assert_eq!(p.validate().map_err(|e| e.field), Err("canary"));
        for s in Scenario::ALL {
            assert_eq!(s.policy().validate(), Ok(()));
            assert_eq!(Scenario::parse(s.code()), Some(s));
        }
    }

    proptest! {
        #[test]
        fn batches_cover_every_droplet_once(total in 0u32..20_000, size in 0u32..500, canary in proptest::option::of(1u32..50)) {
            let p = RolloutPolicy { batch_size: size, canary, ..Scenario::BugFix.policy() };
            let sizes = p.batch_sizes(total);
            prop_assert_eq!(sizes.iter().map(|s| u64::from(*s)).sum::<u64>(), u64::from(total));
            prop_assert!(sizes.iter().all(|s| *s > 0));
            if size > 0 {
                prop_assert!(sizes.iter().all(|s| *s <= size));
            }
        }

        #[test]
        fn on_a_threshold_always_triggers(attempted in 1u32..5_000, bp in 1u32..=10_000) {
            // The smallest failure count that reaches bp.
            let failed = ((u64::from(attempted) * u64::from(bp)).div_ceil(10_000)) as u32;
            let p = RolloutPolicy { pause_at_bp: Some(bp), abort_at_bp: None, ..Scenario::BugFix.policy() };
            let at = tally(attempted - failed.min(attempted), failed.min(attempted));
            prop_assert!(matches!(p.judge(at, at), Verdict::Pause(_)));
            if failed > 1 {
                let below = tally(attempted - failed + 1, failed - 1);
                prop_assert_eq!(p.judge(below, below), Verdict::Continue);
            }
        }

        #[test]
        fn abort_wins_over_pause(done in 0u32..1_000, failed in 1u32..1_000) {
            let p = Scenario::BugFix.policy();
            let t = tally(done, failed);
            if u64::from(failed) * 10 >= u64::from(done + failed) {
                prop_assert!(matches!(p.judge(t, t), Verdict::Abort(_)));
            }
        }
    }
}

/// Which droplets a rollout updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RolloutScope {
    /// Every serving droplet.
    All,
    /// One region's.
    Region {
        /// The region.
        region: crate::Region,
    },
    /// One tier's.
    Tier {
        /// The tier.
        tier: crate::Tier,
    },
    /// These workspaces' droplets.
    Workspaces {
        /// The workspaces.
        ids: Vec<crate::WorkspaceId>,
    },
}
