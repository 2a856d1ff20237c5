//! One shape for every background loop (HOUSE_STYLE: kube-rs's controller, Nexus's
//! background tasks): a reconciler looks at one part of the world, fixes what it finds and
//! returns a report; [`super::driver`] runs it on the replica that leads it, part by part,
//! with a retry policy per error, and publishes what each part last did.
//!
//! A pass is split into [`Part`]s so that a failure in one region's database does not stop
//! the others: most reconcilers act on each distinct regional database
//! ([`Scope::EachDatabase`]); those that act on the whole fleet at once (the rollout
//! conductor, the orphan reaper) have one part, the coordinator ([`Scope::Fleet`]).

use std::future::Future;
use std::time::Duration;

use genesis_core::Region;
use genesis_store::{Database, RegionalStore};
use serde::Serialize;

/// How a reconciler's pass is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One part per distinct regional database.
    EachDatabase,
    /// One part for the whole fleet, run against the coordinating database.
    Fleet,
}

/// One part of a pass: a database and the name it goes by.
#[derive(Debug, Clone)]
pub struct Part {
    /// How statuses and logs name it: the regions served (`us-east+us-west`), or `fleet`.
    pub label: String,
    /// The regions whose data it holds (every region for [`Scope::Fleet`]).
    pub regions: Vec<Region>,
    /// The database.
    pub db: Database,
}

/// What the driver does after a part fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Back off: the reconciler's period, doubled after each consecutive failure, up to
    /// [`MAX_BACKOFF`].
    Backoff,
    /// Try again after this long (for example what a rate limit asked for).
    After(Duration),
}

/// The longest a failing part waits between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Adds another part's report into this one (the total of a pass).
pub trait Merge {
    /// `self += other`.
    fn merge(&mut self, other: Self);
}

/// A background reconciler: no input, safe to run any number of times on any replica.
pub trait Reconciler: Send + Sync + 'static {
    /// What one part's pass did.
    type Report: Serialize + Default + Merge + std::fmt::Debug + Send + 'static;
    /// Why one part's pass stopped.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The stable name (its leader lock, its status, its wake-up).
    const NAME: &'static str;

    /// The databases it acts on.
    fn stores(&self) -> &RegionalStore;

    /// How a pass is split.
    fn scope(&self) -> Scope {
        Scope::EachDatabase
    }

    /// One pass over one part.
    fn reconcile_part(
        &self,
        part: &Part,
    ) -> impl Future<Output = Result<Self::Report, Self::Error>> + Send;

    /// Whether a report is worth a log line (the driver logs every error).
    fn noteworthy(_report: &Self::Report) -> bool {
        false
    }

    /// What to do after `error` (kube-rs's `error_policy`).
    fn error_policy(&self, _error: &Self::Error) -> Retry {
        Retry::Backoff
    }

    /// The parts of a pass, in a stable order.
    fn parts(&self) -> Vec<Part> {
        let stores = self.stores();
        match self.scope() {
            Scope::EachDatabase => stores
                .shards()
                .map(|s| Part {
                    label: s.label(),
                    regions: s.regions.to_vec(),
                    db: s.db.clone(),
                })
                .collect(),
            Scope::Fleet => vec![Part {
                label: "fleet".into(),
                regions: Region::ALL.to_vec(),
                db: stores.coordinator().clone(),
            }],
        }
    }

    /// One whole pass, part after part, stopping at the first error: for tests and
    /// benchmarks that want a pass's total. The driver isolates parts instead.
    fn reconcile(&self) -> impl Future<Output = Result<Self::Report, Self::Error>> + Send {
        async move {
            let mut total = Self::Report::default();
            for part in self.parts() {
                total.merge(self.reconcile_part(&part).await?);
            }
            Ok(total)
        }
    }
}

/// The wait before the next attempt after `failures` consecutive failures (at least 1).
pub fn backoff(every: Duration, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    every
        .max(Duration::from_millis(100))
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_period_and_stops_at_the_cap() {
        let every = Duration::from_secs(1);
        assert_eq!(backoff(every, 1), Duration::from_secs(1));
        assert_eq!(backoff(every, 2), Duration::from_secs(2));
        assert_eq!(backoff(every, 4), Duration::from_secs(8));
        assert_eq!(backoff(every, 40), MAX_BACKOFF);
        assert_eq!(backoff(Duration::from_secs(600), 1), MAX_BACKOFF);
    }
}
