//! [`Bus`]: the queue operations, each one Lua script and one round trip.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use redis::{Script, Value};
use serde_json::json;

use crate::config::{GovernorConfig, QueueConfig};
use crate::redis_conn::RedisConn;

const COMMON: &str = include_str!("lua/common.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

/// A queue operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis is unreachable or refused the command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A name or setting is unusable.
    #[error("{0}")]
    Invalid(String),
    /// Redis answered something the scripts never return.
    #[error("unexpected reply: {0}")]
    Protocol(String),
}

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The job id (its idempotency key).
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its payload (JSON text, as added).
    pub payload: String,
    /// 1 for the first run.
    pub attempt: u32,
}

/// What `add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new job.
    Created,
    /// The id exists; nothing changed. Its current state.
    Exists(String),
}

/// What `fail` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailOutcome {
    /// Will run again at this Unix time (ms).
    Retry {
        /// When.
        at_ms: u64,
    },
    /// Dead-lettered.
    Dead,
    /// The worker no longer held the job (its lease expired); nothing changed.
    Lost,
}

/// Why a claim came back empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Nothing to run.
    Empty,
    /// The global concurrency cap is reached.
    Concurrency,
    /// The rate window is full; try again after this long.
    Rate(Duration),
}

/// How much of the governor is taken at one moment (see [`Bus::governor_use`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GovernorUse {
    /// Jobs claimed and not yet finished, across every queue of the set.
    pub claimed: u64,
    /// Jobs started within the last rate window.
    pub started_in_window: u64,
}

/// Jobs per state of one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Waiting to run.
    pub waiting: u64,
    /// Delayed or backing off.
    pub delayed: u64,
    /// Claimed now.
    pub active: u64,
    /// Completed (since the counters began).
    pub completed: u64,
    /// Failed attempts.
    pub failed: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Stalls (lost workers).
    pub stalled: u64,
}

/// How long an add waits for a replica of its shard to have it (cluster only).
const REPLICA_WAIT_MS: u64 = 250;
/// After a shard's replica failed to acknowledge in time, how long adds stop waiting for one
/// (so a shard left without a replica by a failover is not slowed down by every add).
const REPLICA_RETRY_MS: u64 = 10_000;

/// A governed set of queues on one Redis (a node or a cluster).
#[derive(Clone)]
pub struct Bus {
    conn: RedisConn,
    /// Unix ms until which adds do not wait for a replica (see [`Bus::add`]).
    unreplicated_until: Arc<AtomicU64>,
    prefix: String,
    cfg: GovernorConfig,
    cfg_json: String,
    queues: Vec<QueueConfig>,
    add: Script,
    claim: Script,
    complete: Script,
    fail: Script,
    extend: Script,
    progress: Script,
    drain: Script,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

fn parse_claims(v: &Value) -> Result<Vec<Claimed>, QueueError> {
    let Value::Array(items) = v else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|j| match j {
            Value::Array(f) if f.len() == 4 => Ok(Claimed {
                id: text(&f[0]).unwrap_or_default(),
                queue: text(&f[1]).unwrap_or_default(),
                payload: text(&f[2]).unwrap_or_default(),
                attempt: int(&f[3]).unwrap_or(1) as u32,
            }),
            other => Err(QueueError::Protocol(format!("{other:?}"))),
        })
        .collect()
}

fn parse_idle(reason: &Value, wait: &Value) -> Idle {
    match text(reason).as_deref() {
        Some("concurrency") => Idle::Concurrency,
        Some("rate") => Idle::Rate(Duration::from_millis(int(wait).unwrap_or(1).max(1) as u64)),
        _ => Idle::Empty,
    }
}

impl Bus {
    /// A bus for the governed set `set` (one hash tag) with these queues, on the Redis node
    /// or cluster at `redis_url` (see [`crate::redis_conn`] for the forms it takes).
    pub async fn connect(
        redis_url: &str,
        set: &str,
        queues: Vec<QueueConfig>,
        cfg: GovernorConfig,
    ) -> Result<Self, QueueError> {
        let conn = RedisConn::connect(redis_url).await?;
        Self::on(conn, set, queues, cfg)
    }

    /// A bus for the governed set `set` over an existing connection.
    pub fn on(
        conn: RedisConn,
        set: &str,
        queues: Vec<QueueConfig>,
        cfg: GovernorConfig,
    ) -> Result<Self, QueueError> {
        if !valid_name(set) {
            return Err(QueueError::Invalid(format!(
                "{set:?} is not a valid set name"
            )));
        }
        if let Some(q) = queues.iter().find(|q| !valid_name(&q.name)) {
            return Err(QueueError::Invalid(format!(
                "{:?} is not a valid queue name",
                q.name
            )));
        }
        if cfg.max_concurrency == 0 || cfg.rate_max == 0 || cfg.max_attempts == 0 {
            return Err(QueueError::Invalid(
                "max_concurrency, rate_max and max_attempts must be positive".into(),
            ));
        }
        let mut sorted = queues;
        sorted.sort_by_key(|q| q.priority);
        let pace = cfg
            .rate_max
            .saturating_sub((cfg.rate_max / 64).max(1))
            .max(1);
        let cfg_json = json!({
            "queues": sorted,
            "max_concurrency": cfg.max_concurrency,
            "rate_max": cfg.rate_max,
            // u32::MAX means no rate limit (throughput benchmarks): no log, no pacing.
            "rate_limited": cfg.rate_max != u32::MAX,
            "window_us": cfg.rate_window.as_micros() as u64,
            // The pace runs 1/64 under the limit, with bursts of at most 5 ms worth of
            // starts (one start at 200/s): what workers observe, a few milliseconds late, then
            // stays under the limit too.
            "pace": pace,
            "burst": (u128::from(pace) * 5_000 / cfg.rate_window.as_micros().max(1)).max(1) as u64,
            "lease_ms": cfg.lease.as_millis() as u64,
            "max_stalls": cfg.max_stalls,
        })
        .to_string();
        Ok(Self {
            conn,
            unreplicated_until: Arc::new(AtomicU64::new(0)),
            prefix: format!("genesis:{{gov:{set}}}"),
            cfg,
            cfg_json,
            queues: sorted,
            add: script(include_str!("lua/add.lua")),
            claim: script(include_str!("lua/claim.lua")),
            complete: script(include_str!("lua/complete.lua")),
            fail: script(include_str!("lua/fail.lua")),
            extend: script(include_str!("lua/extend.lua")),
            progress: script(include_str!("lua/progress.lua")),
            drain: script(include_str!("lua/drain.lua")),
        })
    }

    /// The governor settings.
    pub fn config(&self) -> &GovernorConfig {
        &self.cfg
    }

    /// The key prefix (for dashboards reading the events stream: `<prefix>:events`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The queues this bus serves, by name.
    pub fn queue_names(&self) -> Vec<String> {
        self.queues.iter().map(|q| q.name.clone()).collect()
    }

    fn queue_known(&self, queue: &str) -> Result<(), QueueError> {
        if self.queues.iter().any(|q| q.name == queue) {
            Ok(())
        } else {
            Err(QueueError::Invalid(format!("no queue named {queue:?}")))
        }
    }

    /// Adds a job unless its id exists (ids are idempotency keys). `delay` postpones it.
    ///
    /// On a cluster, a job is acknowledged only once a replica of its shard has it too
    /// (`WAIT 1`, up to 250 ms), so a failover that promotes that replica keeps it. A shard
    /// whose replica does not answer in time is written to without waiting for the next 10 s
    /// (logged): a failover then can lose what the replica had not received, typically under
    /// a millisecond of adds.
    pub async fn add(
        &self,
        queue: &str,
        id: &str,
        payload: &str,
        delay: Duration,
    ) -> Result<AddOutcome, QueueError> {
        self.queue_known(queue)?;
        if id.is_empty() || id.len() > 200 {
            return Err(QueueError::Invalid("a job id is 1 to 200 bytes".into()));
        }
        let mut conn = self.conn.clone();
        let (created, state): (i64, String) = self
            .add
            .key(&self.prefix)
            .arg(id)
            .arg(queue)
            .arg(payload)
            .arg(self.cfg.max_attempts)
            .arg(delay.as_millis() as u64)
            .arg(self.cfg.keep_completed.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        // Also when the job existed: this may be the retry of an add whose wait failed.
        self.replicate(&mut conn).await?;
        Ok(if created == 1 {
            AddOutcome::Created
        } else {
            AddOutcome::Exists(state)
        })
    }

    /// Waits for one replica of the set's shard to have every write made so far on this
    /// connection (cluster only; see [`Bus::add`]).
    async fn replicate(&self, conn: &mut RedisConn) -> Result<(), QueueError> {
        if !conn.is_cluster() {
            return Ok(());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if now < self.unreplicated_until.load(Ordering::Relaxed) {
            return Ok(());
        }
        let acked: i64 = conn
            .on_primary_of(&self.prefix, redis::cmd("WAIT").arg(1).arg(REPLICA_WAIT_MS))
            .await?;
        if acked < 1 {
            self.unreplicated_until
                .store(now + REPLICA_RETRY_MS, Ordering::Relaxed);
            tracing::warn!(
                set = %self.prefix,
                "no replica of this queue set's Redis shard acknowledged an add within {REPLICA_WAIT_MS} ms; \
                 adds are not waiting for one for {} s (a failover now may lose the latest adds)",
                REPLICA_RETRY_MS / 1000
            );
        }
        Ok(())
    }

    /// Claims up to `n` jobs for `worker`, highest priority first, within the governor.
    pub async fn claim(&self, worker: &str, n: u32) -> Result<(Vec<Claimed>, Idle), QueueError> {
        let mut conn = self.conn.clone();
        let v: Value = self
            .claim
            .key(&self.prefix)
            .arg(&self.cfg_json)
            .arg(worker)
            .arg(n)
            .invoke_async(&mut conn)
            .await?;
        match v {
            Value::Array(parts) if parts.len() == 3 => {
                Ok((parse_claims(&parts[0])?, parse_idle(&parts[1], &parts[2])))
            }
            other => Err(QueueError::Protocol(format!("{other:?}"))),
        }
    }

    /// Completes `job` and claims up to `next` more in the same round trip. Returns whether
    /// the completion counted (false: the lease had expired and someone else has the job).
    pub async fn complete(
        &self,
        worker: &str,
        job: &Claimed,
        next: u32,
    ) -> Result<(bool, Vec<Claimed>, Idle), QueueError> {
        let mut conn = self.conn.clone();
        let v: Value = self
            .complete
            .key(&self.prefix)
            .arg(&self.cfg_json)
            .arg(worker)
            .arg(&job.id)
            .arg(next)
            .invoke_async(&mut conn)
            .await?;
        match v {
            Value::Array(parts) if parts.len() == 4 => Ok((
                text(&parts[0]).as_deref() == Some("completed"),
                parse_claims(&parts[1])?,
                parse_idle(&parts[2], &parts[3]),
            )),
            other => Err(QueueError::Protocol(format!("{other:?}"))),
        }
    }

    /// The backoff before attempt `attempt + 1`: base·2^(attempt-1), capped, with "equal
    /// jitter" (between half and all of it), so retries of a failed batch spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .cfg
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let d = exp.min(self.cfg.backoff_max);
        let half = d / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// Records a failed attempt: retry after the backoff, or dead letters when `permanent` or
    /// out of attempts.
    pub async fn fail(
        &self,
        worker: &str,
        job: &Claimed,
        error: &str,
        permanent: bool,
    ) -> Result<FailOutcome, QueueError> {
        let mut conn = self.conn.clone();
        let (status, at): (String, i64) = self
            .fail
            .key(&self.prefix)
            .arg(worker)
            .arg(&job.id)
            .arg(error)
            .arg(if permanent { "1" } else { "0" })
            .arg(self.backoff(job.attempt).as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(match status.as_str() {
            "retry" => FailOutcome::Retry { at_ms: at as u64 },
            "dead" => FailOutcome::Dead,
            _ => FailOutcome::Lost,
        })
    }

    /// Extends the lease of a job `worker` holds; false when it was lost.
    pub async fn extend(&self, worker: &str, job_id: &str) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let ok: i64 = self
            .extend
            .key(&self.prefix)
            .arg(worker)
            .arg(job_id)
            .arg(self.cfg.lease.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(ok == 1)
    }

    /// Publishes progress (0–100) on the events stream.
    pub async fn progress(&self, worker: &str, job_id: &str, pct: u8) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .progress
            .key(&self.prefix)
            .arg(worker)
            .arg(job_id)
            .arg(pct.min(100))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Publishes an event of `kind` with `fields` on the events stream, next to the queue's
    /// own (capped like them): how work built on jobs (a rollout's batches) reports progress
    /// to whoever watches the stream.
    pub async fn publish(&self, kind: &str, fields: &[(&str, String)]) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("XADD");
        cmd.arg(format!("{}:events", self.prefix))
            .arg("MAXLEN")
            .arg("~")
            .arg(100_000)
            .arg("*")
            .arg("type")
            .arg(kind);
        for (k, v) in fields {
            cmd.arg(*k).arg(v);
        }
        let _: String = cmd.query_async(&mut conn).await?;
        Ok(())
    }

    /// The latest `n` events of `kind` on the events stream, newest last, as field maps.
    /// Reads the stream backwards a page at a time (it is capped, so this ends).
    pub async fn events(
        &self,
        kind: &str,
        n: usize,
    ) -> Result<Vec<std::collections::BTreeMap<String, String>>, QueueError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::new();
        let mut end = String::from("+");
        while out.len() < n {
            let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(format!("{}:events", self.prefix))
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(1_000)
                .query_async(&mut conn)
                .await?;
            let Some(last) = reply.ids.last() else {
                break;
            };
            end = format!("({}", last.id);
            for e in &reply.ids {
                let fields: std::collections::BTreeMap<String, String> = e
                    .map
                    .iter()
                    .map(|(k, v)| {
                        let v: String = redis::from_redis_value(v.clone()).unwrap_or_default();
                        (k.clone(), v)
                    })
                    .collect();
                if fields.get("type").map(String::as_str) == Some(kind) && out.len() < n {
                    out.push(fields);
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Stops claims from `queue` (running jobs finish).
    pub async fn pause(&self, queue: &str) -> Result<(), QueueError> {
        self.set_paused(queue, true).await
    }

    /// Resumes a paused queue.
    pub async fn resume(&self, queue: &str) -> Result<(), QueueError> {
        self.set_paused(queue, false).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), QueueError> {
        self.queue_known(queue)?;
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd(if paused { "SADD" } else { "SREM" })
            .arg(format!("{}:paused", self.prefix))
            .arg(queue)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes every waiting and delayed job of `queue`; returns how many.
    pub async fn drain(&self, queue: &str) -> Result<u64, QueueError> {
        self.queue_known(queue)?;
        let mut conn = self.conn.clone();
        let n: i64 = self
            .drain
            .key(&self.prefix)
            .arg(queue)
            .invoke_async(&mut conn)
            .await?;
        Ok(n as u64)
    }

    /// Jobs per state of `queue`.
    pub async fn counts(&self, queue: &str) -> Result<Counts, QueueError> {
        self.queue_known(queue)?;
        let p = &self.prefix;
        let mut conn = self.conn.clone();
        let (waiting, delayed, active, stats): (u64, u64, Option<u64>, BTreeMap<String, u64>) =
            redis::pipe()
                .cmd("LLEN")
                .arg(format!("{p}:wait:{queue}"))
                .cmd("ZCARD")
                .arg(format!("{p}:delayed:{queue}"))
                .cmd("HGET")
                .arg(format!("{p}:inflight"))
                .arg(queue)
                .cmd("HGETALL")
                .arg(format!("{p}:stats:{queue}"))
                .query_async(&mut conn)
                .await?;
        let s = |k: &str| stats.get(k).copied().unwrap_or(0);
        Ok(Counts {
            waiting,
            delayed,
            active: active.unwrap_or(0),
            completed: s("completed"),
            failed: s("failed"),
            dead: s("dead"),
            stalled: s("stalled"),
        })
    }

    /// Ids of dead-lettered jobs of `queue`, newest first, with their last error.
    pub async fn dead(&self, queue: &str) -> Result<Vec<(String, String)>, QueueError> {
        self.queue_known(queue)?;
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("LRANGE")
            .arg(format!("{}:dead:{queue}", self.prefix))
            .arg(0)
            .arg(999)
            .query_async(&mut conn)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let err: Option<String> = redis::cmd("HGET")
                .arg(format!("{}:job:{id}", self.prefix))
                .arg("last_error")
                .query_async(&mut conn)
                .await?;
            out.push((id, err.unwrap_or_default()));
        }
        Ok(out)
    }

    /// How much of the governor is taken now: jobs claimed (against `max_concurrency`) and
    /// starts in the last rate window (against `rate_max`), read without changing anything.
    /// On a cluster both keys share the set's slot, so one node answers.
    pub async fn governor_use(&self) -> Result<GovernorUse, QueueError> {
        let mut conn = self.conn.clone();
        let (secs, micros): (u64, u64) = conn
            .on_primary_of(&self.prefix, &redis::cmd("TIME"))
            .await?;
        let now_us = secs * 1_000_000 + micros;
        let since = now_us.saturating_sub(self.cfg.rate_window.as_micros() as u64);
        let (claimed, started): (u64, u64) = redis::pipe()
            .cmd("ZCARD")
            .arg(format!("{}:active", self.prefix))
            .cmd("ZCOUNT")
            .arg(format!("{}:starts", self.prefix))
            .arg(format!("({since}"))
            .arg("+inf")
            .query_async(&mut conn)
            .await?;
        Ok(GovernorUse {
            claimed,
            started_in_window: started,
        })
    }

    /// Completed and failed attempts per second of `queue` over the last `over`, counted from
    /// the events stream (what a dashboard shows as throughput).
    pub async fn rates(&self, queue: &str, over: Duration) -> Result<(f64, f64), QueueError> {
        self.queue_known(queue)?;
        let mut conn = self.conn.clone();
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await?;
        let now_ms = secs * 1000 + micros / 1000;
        let since = now_ms.saturating_sub(over.as_millis() as u64);
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(format!("{}:events", self.prefix))
            .arg(since)
            .arg("+")
            .query_async(&mut conn)
            .await
            .map(|v: redis::streams::StreamRangeReply| {
                v.ids
                    .into_iter()
                    .map(|e| {
                        let fields = e
                            .map
                            .iter()
                            .flat_map(|(k, v)| {
                                let v: String =
                                    redis::from_redis_value(v.clone()).unwrap_or_default();
                                [k.clone(), v]
                            })
                            .collect();
                        (e.id, fields)
                    })
                    .collect()
            })?;
        let mut completed = 0u64;
        let mut failed = 0u64;
        for (_, f) in &entries {
            let get = |name: &str| f.chunks(2).find(|c| c[0] == name).map(|c| c[1].as_str());
            if get("queue") != Some(queue) {
                continue;
            }
            match get("type") {
                Some("completed") => completed += 1,
                Some("failed") | Some("dead") => failed += 1,
                _ => {}
            }
        }
        let secs = over.as_secs_f64().max(0.001);
        Ok((completed as f64 / secs, failed as f64 / secs))
    }

    /// The p50 and p99 of `queue`'s recent wait times and run times, in ms (one job in 16
    /// is sampled, the last 1,000 samples kept); `None` for a phase with no sample yet, so
    /// that "nothing measured" never reads as "instant".
    pub async fn latencies(&self, queue: &str) -> Result<[Option<(u64, u64)>; 2], QueueError> {
        self.queue_known(queue)?;
        let mut conn = self.conn.clone();
        let mut out = [None; 2];
        for (i, kind) in ["wait_ms", "run_ms"].iter().enumerate() {
            let mut v: Vec<u64> = redis::cmd("LRANGE")
                .arg(format!("{}:{kind}:{queue}", self.prefix))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await?;
            if v.is_empty() {
                continue;
            }
            v.sort_unstable();
            let pct = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
            out[i] = Some((pct(0.5), pct(0.99)));
        }
        Ok(out)
    }

    /// Deletes every key of this set (tests and tear-down), scanning rather than blocking
    /// Redis with `KEYS`.
    pub async fn destroy(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        loop {
            // On a cluster, SCAN walks one node: the one holding the set's slot.
            let (next, keys): (u64, Vec<String>) = conn
                .on_primary_of(
                    &self.prefix,
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{}:*", self.prefix))
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}
