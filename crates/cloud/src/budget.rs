//! The request budget that replicas share (spec 66's "shared DigitalOcean budget"; DECISIONS
//! 107): every control-plane process holds its own GCRA limiter, and each request also asks
//! a [`SharedBudget`] (Redis, in `genesis_queue::cloud_budget`) so that all replicas together
//! stay under one token's limits.
//!
//! Requests carry a [`CallPriority`]: routine work may use only part of the budget, so that
//! a mass restore or an ignition is never queued behind a fleet's daily snapshots.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// How much a request matters when the budget runs short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum CallPriority {
    /// Routine background work (snapshots, their GC): at most 40 % of the budget.
    Routine,
    /// Everything else (rollouts, wakes, the reaper): with routine work, at most 80 %.
    #[default]
    Normal,
    /// A tenant waiting (ignitions) or a region down (restores): the whole budget.
    Urgent,
}

impl CallPriority {
    /// Its name in the shared budget.
    pub fn code(self) -> &'static str {
        match self {
            CallPriority::Routine => "routine",
            CallPriority::Normal => "normal",
            CallPriority::Urgent => "urgent",
        }
    }
}

/// A budget shared by every client of one token, across processes.
pub trait SharedBudget: Send + Sync + std::fmt::Debug {
    /// Admits one request of `priority` now (`Ok(Duration::ZERO)`), or says how long to
    /// wait before asking again. An error means the budget cannot be reached: the client
    /// then goes on under its own limiter and the API's rate-limit headers.
    fn admit(
        &self,
        priority: CallPriority,
    ) -> Pin<Box<dyn Future<Output = Result<Duration, String>> + Send + '_>>;
}
