//! Queue and governor settings (spec 52.1, 52.2).

use std::time::Duration;

use serde::Serialize;

/// One queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueConfig {
    /// Name (`ignition`, `security`, ...).
    pub name: String,
    /// Lower runs first.
    pub priority: u32,
    /// Jobs of this queue claimed at once, across all workers.
    pub concurrency: u32,
}

impl QueueConfig {
    /// A queue.
    pub fn new(name: &str, priority: u32, concurrency: u32) -> Self {
        Self {
            name: name.to_owned(),
            priority,
            concurrency,
        }
    }
}

/// The governor and retry policy shared by every worker.
#[derive(Debug, Clone, PartialEq)]
pub struct GovernorConfig {
    /// Jobs claimed at once across all queues and workers (spec 52.2: 100).
    pub max_concurrency: u32,
    /// Starts allowed per `rate_window` (spec 52.2: 200); `u32::MAX` turns the limit off.
    pub rate_max: u32,
    /// The rate window (spec 52.2: 1 s).
    pub rate_window: Duration,
    /// Attempts in all before dead letters (spec 52.2: 5 retries).
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with jitter.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How long a claim lasts without an extension.
    pub lease: Duration,
    /// Stalls (lost workers) a job survives before dead letters.
    pub max_stalls: u32,
    /// How long completed jobs are kept (idempotency window; zero deletes at once).
    pub keep_completed: Duration,
}

impl Default for GovernorConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 100,
            rate_max: 200,
            rate_window: Duration::from_secs(1),
            max_attempts: 5,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            lease: Duration::from_secs(30),
            max_stalls: 3,
            keep_completed: Duration::from_secs(24 * 3600),
        }
    }
}

/// The queues of spec 52.1 with their priority and concurrency, and `hibernation` (spec 55's
/// power-downs, which fit none of them).
pub fn fleet_queues() -> Vec<QueueConfig> {
    vec![
        QueueConfig::new("ignition", 1, 50),
        QueueConfig::new("security", 2, 100),
        QueueConfig::new("reboot", 2, 25),
        QueueConfig::new("template", 3, 100),
        QueueConfig::new("health", 4, 500),
        QueueConfig::new("metric", 4, 200),
        QueueConfig::new("hibernation", 4, 50),
    ]
}
