//! The fleet's job system (spec 52, spec 2.2): ignitions, credential rotations, template
//! rollouts, heartbeat processing, metric collection and reboots all go through Redis-backed
//! queues under one governor, so 15,000 droplets are never hit at once and no job is lost.
//!
//! Why not a crate: apalis-redis 1.0 has no priorities in its Redis backend, enforces
//! concurrency and rate limits only per process, and has a fixed retry schedule; the governor
//! here must hold across every worker of every replica. So the queue is ours: a few Lua
//! scripts, each one round trip, and a worker loop.
//!
//! # Redis layout
//! One node or a Redis Cluster ([`redis_conn`]). Every key of one governed set of queues
//! starts with `genesis:{gov:<set>}`; the hash tag puts them in one cluster slot, so each
//! script is atomic on Redis Cluster too (a test watches every script's commands and checks
//! their slots). One slot per set, not one per queue: claiming must compare priorities across
//! queues and check the global limits in the same atomic step. Decision 78 says what that
//! costs on a cluster and how to spread load (a set per region).
//!
//! | key | type | holds |
//! |---|---|---|
//! | `…:job:<id>` | hash | queue, payload, state, attempts, max_attempts, stalls, seq, times, last_error, worker |
//! | `…:wait:<queue>` | list | waiting job ids, FIFO |
//! | `…:delayed:<queue>` | sorted set | delayed and backing-off job ids by due time (ms) |
//! | `…:active` | sorted set | claimed job ids by lease expiry (ms) |
//! | `…:inflight` | hash | claimed jobs per queue |
//! | `…:starts` | sorted set | job starts in the last rate window (µs): the sliding-window log |
//! | `…:tat` | string | GCRA theoretical arrival time (µs): the pace of starts |
//! | `…:paused` | set | paused queues |
//! | `…:dead:<queue>` | list | dead-lettered job ids, newest first |
//! | `…:stats:<queue>` | hash | completed, failed, dead, stalled counters |
//! | `…:wait_ms:<queue>`, `…:run_ms:<queue>` | list | the last 1,000 sampled wait and run times (one job in 16) |
//! | `…:events` | stream | progress, completed, failed, stalled, dead (capped ~100,000) |
//! | `…:seq` | string | enqueue order, for FIFO across queues of equal priority |
//!
//! # Guarantees
//! - **At-least-once.** A claimed job has a lease the worker extends while it runs. If the
//!   worker dies, the lease expires and the job returns to the head of its queue ("stalled",
//!   counted); after `max_stalls` it is dead-lettered. A completion or failure from a worker
//!   that lost its lease is ignored, so a job completes once. Handlers get the attempt number
//!   and must be idempotent.
//! - **Governor.** At most `max_concurrency` jobs are claimed at any moment across all
//!   workers, at most `concurrency` per queue. Starts are admitted against an exact sliding
//!   log: no window of `rate_window` (by Redis's clock) holds more than `rate_max` starts.
//!   BullMQ's fixed window lets up to 1.5x through. Starts are also paced by GCRA, one at a
//!   time, `rate_window / (rate_max - rate_max/64)` apart, so they do not bunch at the start
//!   of each window: measured where the handlers run, a few milliseconds late, no window
//!   holds more than the limit either.
//! - **Order.** A lower priority number runs first. Within one priority, jobs start in enqueue
//!   order (FIFO), unless their queue is paused or at its cap.
//! - **Retries.** Exponential backoff with jitter, `max_attempts` in all, then dead letters
//!   with the last error. A permanent failure goes straight to the dead letters.
//! - **Idempotent ids.** Adding a job whose id exists changes nothing and returns its state.
//!   Completed jobs are kept `keep_completed` (then expire), so a re-add within that time is
//!   still a no-op.
//!
//! # Durability
//! Production Redis runs with `appendonly yes` and `appendfsync everysec`: a crash loses at
//! most the last second of writes. A lost add means the caller saw an error or timed out and
//! must retry (ids make that safe). A lost claim, completion or failure replays as a stall:
//! the job runs again. Without AOF (RDB snapshots only), everything since the last snapshot
//! is lost, jobs included; do not run the fleet that way.
//!
//! On a cluster, a failover promotes a replica that may lack the primary's last writes
//! (replication is asynchronous). An add is therefore acknowledged only once a replica has it
//! (`WAIT`, see [`Bus::add`]); other lost writes replay as stalls, as above.

pub mod bus;
pub mod cloud_budget;
pub mod config;
pub mod limits;
pub mod redis_conn;
pub mod testing;
pub mod wallet;
pub mod worker;

pub use bus::{AddOutcome, Bus, Claimed, Counts, FailOutcome, GovernorUse, QueueError};
pub use config::{GovernorConfig, QueueConfig};
pub use redis_conn::{RedisConn, RedisTarget};
pub use worker::{Handler, JobError, Worker};
