//! The rate-limit registry (spec 59.2) in Redis: for each service, global and per-tenant
//! limits of three kinds, checked and taken in one script:
//!
//! - **requests per minute**, as a token bucket in GCRA form (one key holding the
//!   theoretical arrival time; bursts of up to a second's worth);
//! - **daily hard caps**, a counter per UTC day that expires after it;
//! - **concurrency slots**, a sorted set of leases scored by when they lapse, so a process
//!   that dies holding a slot loses it after the lease instead of forever.
//!
//! Every limit is checked before any is taken, so a refused call costs nothing, and the
//! refusal says which limit and when to retry. All keys of a service carry one hash tag
//! (`limits:{<service>}`), so a call's check is one round trip on one cluster slot.
//!
//! Why ours: the rate-limit crates keep state in the process (governor) or cover one kind;
//! the registry needs all three, shared by every replica, atomically.

use chrono::{Datelike, Timelike, Utc};
use redis::Script;

use crate::QueueError;
use crate::redis_conn::RedisConn;

/// A service's limits, as the service matrix states them.
pub use genesis_core::services::Limits as ServiceLimits;

/// A call admitted: what to give back when it ends ([`RateLimits::release`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    keys: [String; 6],
    lease: String,
    holds: bool,
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; release when done.
    Admitted(Admitted),
    /// Not now.
    Refused {
        /// Which limit (`daily_per_tenant`, `concurrent_global`, …).
        limit: String,
        /// When a retry may succeed, in milliseconds.
        retry_after_ms: u64,
    },
}

/// The registry.
#[derive(Clone)]
pub struct RateLimits {
    conn: RedisConn,
    prefix: String,
    acquire: Script,
    release: Script,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// How long a slot stays taken by a call that never gives it back.
pub const LEASE_MS: u64 = 5 * 60 * 1000;

impl RateLimits {
    /// The registry on `conn`, its keys under `prefix`.
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            acquire: Script::new(include_str!("lua/limits/acquire.lua")),
            release: Script::new(include_str!("lua/limits/release.lua")),
        }
    }

    fn keys(&self, service: &str, tenant: uuid::Uuid) -> [String; 6] {
        let now = Utc::now();
        let day = format!("{:04}{:02}{:02}", now.year(), now.month(), now.day());
        let base = format!("{}limits:{{{service}}}", self.prefix);
        [
            format!("{base}:rpm"),
            format!("{base}:rpm:{tenant}"),
            format!("{base}:day:{day}"),
            format!("{base}:day:{day}:{tenant}"),
            format!("{base}:slots"),
            format!("{base}:slots:{tenant}"),
        ]
    }

    /// Admits one call of `service` by `tenant` under `limits`, or refuses it.
    pub async fn acquire(
        &self,
        service: &str,
        tenant: uuid::Uuid,
        limits: &ServiceLimits,
    ) -> Result<Admission, QueueError> {
        let keys = self.keys(service, tenant);
        let lease = uuid::Uuid::now_v7().to_string();
        let now = Utc::now();
        let ms_today = u64::from(now.num_seconds_from_midnight()) * 1000
            + u64::from(now.timestamp_subsec_millis());
        let to_midnight = 86_400_000u64.saturating_sub(ms_today).max(1);
        let n = |v: Option<u32>| v.unwrap_or(0);
        let mut inv = self.acquire.prepare_invoke();
        for k in &keys {
            inv.key(k);
        }
        inv.arg(n(limits.rpm_global))
            .arg(n(limits.rpm_per_tenant))
            .arg(n(limits.daily_global))
            .arg(n(limits.daily_per_tenant))
            .arg(n(limits.concurrent_global))
            .arg(n(limits.concurrent_per_tenant))
            .arg(&lease)
            .arg(LEASE_MS)
            .arg(to_midnight);
        let mut conn = self.conn.clone();
        let (ok, wait, which): (i64, i64, String) = inv.invoke_async(&mut conn).await?;
        if ok == 1 {
            Ok(Admission::Admitted(Admitted {
                keys,
                lease,
                holds: limits.concurrent_global.is_some() || limits.concurrent_per_tenant.is_some(),
            }))
        } else {
            Ok(Admission::Refused {
                limit: which,
                retry_after_ms: u64::try_from(wait).unwrap_or(1000).max(1),
            })
        }
    }

    /// Ends an admitted call: gives back its slots, and with `unused` (the vendor was never
    /// asked) its place in the day's counts.
    pub async fn release(&self, admitted: &Admitted, unused: bool) -> Result<(), QueueError> {
        if !admitted.holds && !unused {
            return Ok(());
        }
        let mut inv = self.release.prepare_invoke();
        for k in &admitted.keys[2..] {
            inv.key(k);
        }
        inv.arg(&admitted.lease).arg(if unused { "1" } else { "0" });
        let mut conn = self.conn.clone();
        let _: i64 = inv.invoke_async(&mut conn).await?;
        Ok(())
    }

    /// Calls counted today for `service` (globally, and for `tenant`).
    pub async fn used_today(
        &self,
        service: &str,
        tenant: uuid::Uuid,
    ) -> Result<(u64, u64), QueueError> {
        let keys = self.keys(service, tenant);
        let mut conn = self.conn.clone();
        let (g, t): (Option<u64>, Option<u64>) = redis::cmd("MGET")
            .arg(&keys[2])
            .arg(&keys[3])
            .query_async(&mut conn)
            .await?;
        Ok((g.unwrap_or(0), t.unwrap_or(0)))
    }
}
