//! The DigitalOcean request budget shared by every control-plane replica (issue 26;
//! DECISIONS 107), in Redis: one GCRA state per limit (per minute and per hour), checked
//! and taken in one script, so that replicas together never exceed one token's 250/min and
//! 5,000/h.
//!
//! Priorities hold back part of the budget: routine work answers to keys sized at 40 % of
//! each limit, normal work (with routine) to keys at 80 %, urgent work only to the whole.
//! So urgent work always finds at least a fifth of the budget, and routine work can never
//! take more than two fifths, however much of it is queued.
//!
//! Why ours: the GCRA crates (governor) keep their state in the process; the shape of the
//! limiter is the client's own (`genesis_cloud::client`'s quota), so that a process with
//! and without the shared budget paces alike.

use redis::Script;

use crate::QueueError;
use crate::redis_conn::RedisConn;

/// The shared budget of one API token.
#[derive(Clone)]
pub struct CloudBudget {
    conn: RedisConn,
    keys: [String; 6],
    per_minute: u32,
    per_hour: u32,
    window_ms: u64,
    admit: Script,
}

impl std::fmt::Debug for CloudBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudBudget")
            .field("per_minute", &self.per_minute)
            .field("per_hour", &self.per_hour)
            .finish_non_exhaustive()
    }
}

impl CloudBudget {
    /// The budget of the token whose SHA-256 is `token_hash` (never the token itself), on
    /// `conn`, its keys under `prefix`: `per_minute` requests in each `window` and
    /// `per_hour` in 60 of them.
    pub fn new(
        conn: RedisConn,
        prefix: &str,
        token_hash: &str,
        per_minute: u32,
        per_hour: u32,
        window: std::time::Duration,
    ) -> Self {
        let tag: String = token_hash.chars().take(16).collect();
        let base = format!("{prefix}cloud:{{{tag}}}");
        let keys = [
            format!("{base}:all:m"),
            format!("{base}:all:h"),
            format!("{base}:below_urgent:m"),
            format!("{base}:below_urgent:h"),
            format!("{base}:routine:m"),
            format!("{base}:routine:h"),
        ];
        Self {
            conn,
            keys,
            per_minute,
            per_hour,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1),
            admit: Script::new(include_str!("lua/cloud/admit.lua")),
        }
    }

    /// Admits one request of `priority` (0 routine, 1 normal, 2 urgent) now, or says how
    /// many milliseconds to wait.
    pub async fn admit(&self, priority: u8) -> Result<u64, QueueError> {
        let mut inv = self.admit.prepare_invoke();
        for k in &self.keys {
            inv.key(k);
        }
        inv.arg(self.per_minute)
            .arg(self.per_hour)
            .arg(self.window_ms)
            .arg(priority.min(2));
        let mut conn = self.conn.clone();
        let wait: i64 = inv.invoke_async(&mut conn).await?;
        Ok(u64::try_from(wait).unwrap_or(0))
    }
}
