//! The control plane's half of spec 65.3: a call made with a workspace's ingest token (the
//! token only that workspace's n8n holds) must carry its droplet's signature
//! ([`genesis_protocol::inbound`]), made by the sidecar's relay. Operators' calls, with the
//! operators' token, are not signed.
//!
//! Checked in the order that makes a flood cheapest to refuse:
//! 1. the signature and the timestamp: two HMACs, nothing read;
//! 2. the id, remembered for ten minutes (twice the window, so an id cannot come back from
//!    the other side of it): one `SET NX` in Redis, which every replica shares, or in this
//!    process's memory when there is no Redis (one replica, which is then the whole memory);
//! 3. only then the token, in the database, and that it belongs to the workspace that
//!    signed.
//!
//! A refusal is a 401 that names no detail, counted by reason
//! (`genesis_inbound_refusals_total`), and audited `INBOUND_REFUSED` at most once per source
//! per [`AUDIT_EVERY`] and [`AUDIT_PER_SECOND`] in all, each row carrying how many were
//! skipped before it ([`crate::audit_budget`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use genesis_protocol::inbound::{self, InboundRefusal, MessageId};
use genesis_queue::redis_conn::LazyRedis;

use crate::audit_budget::AuditBudget;

/// How long an id is remembered: the window on either side of now.
pub const REMEMBER: Duration = Duration::from_secs(2 * inbound::TOLERANCE_S);
/// At most one refusal per source is audited in this long.
pub const AUDIT_EVERY: Duration = Duration::from_secs(10);
/// At most this many refusals are audited per second, from all sources together.
pub const AUDIT_PER_SECOND: u32 = 20;
/// Ids the in-process memory holds at most (without Redis); beyond it, the oldest half is
/// dropped early, which can only let a replay older than five minutes through, and that one
/// fails the timestamp check anyway.
const MEMORY_CAP: usize = 1_000_000;

/// The key droplets' secrets derive from, and the memory of ids.
pub struct InboundGuard {
    key: [u8; 32],
    memory: Memory,
    audit: AuditBudget<IpAddr>,
}

impl std::fmt::Debug for InboundGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InboundGuard(..)")
    }
}

enum Memory {
    Redis(std::sync::Arc<LazyRedis>, String),
    Local(Mutex<HashMap<String, Instant>>),
}

impl InboundGuard {
    /// A guard over `key` (32 bytes), remembering ids in `redis` (keys under `prefix`) or,
    /// without it, in this process.
    pub fn new(key: [u8; 32], redis: Option<(std::sync::Arc<LazyRedis>, String)>) -> Self {
        Self {
            key,
            memory: match redis {
                Some((r, prefix)) => Memory::Redis(r, prefix),
                None => Memory::Local(Mutex::new(HashMap::new())),
            },
            audit: AuditBudget::new(AUDIT_EVERY, AUDIT_PER_SECOND),
        }
    }

    /// A key for another purpose (download links, ...), derived from this one: HMAC-SHA256
    /// of `purpose` under it, so no purpose's key tells anything of another's.
    pub fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"genesis-derived-key-v1:");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    /// The secret the sidecar of `droplet` (the cloud's id) serving `workspace` signs with.
    pub fn droplet_secret(&self, workspace: uuid::Uuid, droplet: i64) -> String {
        inbound::droplet_secret(&self.key, workspace, droplet)
    }

    /// Steps 1 and 2 of the module doc for one call: who signed it, if it is genuine, fresh
    /// and new. `Err(Unavailable)` when the memory of ids cannot be asked (fail closed).
    pub async fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<MessageId, Checked> {
        let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let id = h(inbound::HEADER_ID);
        let who = inbound::check(
            &self.key,
            id,
            h(inbound::HEADER_TIMESTAMP),
            h(inbound::HEADER_SIGNATURE),
            body,
            now,
        )
        .map_err(Checked::Refused)?;
        let id = id.unwrap_or_default();
        if self.first_sight(id).await.map_err(Checked::Unavailable)? {
            Ok(who)
        } else {
            Err(Checked::Refused(InboundRefusal::Replayed))
        }
    }

    /// Whether `id` is new (and remembered from now on).
    async fn first_sight(&self, id: &str) -> Result<bool, String> {
        match &self.memory {
            Memory::Redis(redis, prefix) => {
                let mut conn = redis.get().await.map_err(|e| e.to_string())?;
                let set: Option<String> = redis::cmd("SET")
                    .arg(format!("{prefix}inbound:{id}"))
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(REMEMBER.as_millis() as u64)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(set.is_some())
            }
            Memory::Local(seen) => {
                let now = Instant::now();
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                if seen.len() >= MEMORY_CAP {
                    seen.retain(|_, at| now.duration_since(*at) < REMEMBER);
                    if seen.len() >= MEMORY_CAP {
                        let mut ages: Vec<Instant> = seen.values().copied().collect();
                        ages.sort_unstable();
                        let cut = ages[ages.len() / 2];
                        seen.retain(|_, at| *at > cut);
                    }
                }
                match seen.get(id) {
                    Some(at) if now.duration_since(*at) < REMEMBER => Ok(false),
                    _ => {
                        seen.insert(id.to_owned(), now);
                        Ok(true)
                    }
                }
            }
        }
    }

    /// Whether a refusal from `source` is audited now: `Some(skipped)`, or `None`.
    pub fn audit_slot(&self, source: Option<IpAddr>) -> Option<u64> {
        self.audit
            .slot(source.unwrap_or(IpAddr::from([0, 0, 0, 0])))
    }
}

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Refused, for this reason.
    Refused(InboundRefusal),
    /// The memory of ids did not answer: refused too, but as 503 (try again).
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn signed(guard: &InboundGuard, ws: uuid::Uuid, body: &[u8], at: u64) -> HeaderMap {
        let secret = guard.droplet_secret(ws, 5);
        let mut h = HeaderMap::new();
        for (k, v) in inbound::sign(&secret, ws, 5, body, at).expect("sign") {
            h.insert(k, HeaderValue::from_str(&v).expect("value"));
        }
        h
    }

    #[tokio::test]
    async fn a_signed_call_passes_once_and_its_replay_is_refused() {
        let guard = InboundGuard::new([3; 32], None);
        let ws = uuid::Uuid::new_v4();
        let now = chrono::Utc::now().timestamp() as u64;
        let h = signed(&guard, ws, b"{}", now);
        let who = guard.check(&h, b"{}").await.expect("genuine");
        assert_eq!((who.workspace, who.droplet), (ws, 5));
        assert_eq!(
            guard.check(&h, b"{}").await,
            Err(Checked::Refused(InboundRefusal::Replayed))
        );
        // A fresh id with the same body is another call.
        assert!(
            guard
                .check(&signed(&guard, ws, b"{}", now), b"{}")
                .await
                .is_ok()
        );
        let stale = signed(&guard, ws, b"{}", now - 301);
        assert_eq!(
            guard.check(&stale, b"{}").await,
            Err(Checked::Refused(InboundRefusal::Stale))
        );
        // A forged call is refused before the memory is touched: the genuine one with its
        // id is still accepted afterwards.
        let real = signed(&guard, ws, b"{}", now);
        assert_eq!(
            guard.check(&real, b"{\"x\":1}").await,
            Err(Checked::Refused(InboundRefusal::Forged))
        );
        assert!(guard.check(&real, b"{}").await.is_ok());
        assert_eq!(
            guard.check(&HeaderMap::new(), b"{}").await,
            Err(Checked::Refused(InboundRefusal::Unsigned))
        );
    }
}
