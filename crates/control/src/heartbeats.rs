//! Heartbeat ingestion (DESIGN §3.3, spec 54): authenticate, validate, buffer; a flusher
//! writes each batch to PostgreSQL in two statements and applies spec 54.3's rules on the
//! way in.
//!
//! # Guarantees
//! - Every heartbeat is authenticated by its sidecar token. Verified tokens are cached for
//!   `token_ttl` (by SHA-256, never in clear), and never past their own expiry, so a revoked
//!   token keeps working for at most that long; unknown tokens are never cached and always
//!   cost a database lookup.
//! - A token within [`TokenPolicy::renew_before`] of its end is renewed on heartbeat (spec
//!   65.1): the answer carries the new one, and the old one works until it expires.
//! - An accepted heartbeat is in PostgreSQL within one flush interval (only the latest per
//!   droplet is kept: an older one in the same batch carries nothing the newer lacks).
//! - A failed flush puts its heartbeats back (unless a newer one arrived) and is retried at
//!   the next tick.
//!
//! # Caveats
//! - The buffer is per process. Behind a load balancer, each replica flushes its own share;
//!   a droplet's heartbeats landing on two replicas are both recorded, the later one last
//!   within a batch interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use genesis_core::{DropletId, ResourceSample, WorkspaceId};
use genesis_protocol::Heartbeat;
use genesis_store::handshake::SidecarIdentity;
use genesis_store::{BeatRow, RegionalStore, StoreError};
use sha2::{Digest, Sha256};

/// Memory assumed when a sidecar does not say (spec 50.1's smallest droplet).
const DEFAULT_MEMORY_MB: u64 = 1024;

struct Pending {
    at: chrono::DateTime<Utc>,
    heartbeat: Heartbeat,
    sample: ResourceSample,
}

struct Cached {
    db: usize,
    identity: SidecarIdentity,
    until: Instant,
}

/// How long sidecar tokens live and when they are renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// A token's life (spec 42.3, 65.1: 30 days).
    pub ttl: Duration,
    /// Renew a token presented this close to its end (7 days: a droplet that hibernated
    /// for a week still wakes with a working token).
    pub renew_before: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30 * 86_400),
            renew_before: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Buffers authenticated heartbeats and flushes them in batches.
pub struct HeartbeatSink {
    stores: RegionalStore,
    token_ttl: Duration,
    policy: TokenPolicy,
    tokens: Mutex<HashMap<[u8; 32], Cached>>,
    /// Per database (index into `stores.distinct()`): droplet → its latest heartbeat, kept
    /// parsed (only the latest of each droplet is ever serialized, at flush time).
    pending: Mutex<HashMap<usize, HashMap<DropletId, Pending>>>,
}

/// Who a token belongs to, and which database holds it.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    /// Index into `RegionalStore::distinct()`.
    pub db: usize,
    /// The token's owner.
    pub identity: SidecarIdentity,
}

impl HeartbeatSink {
    /// A sink over `stores`; verified tokens are trusted for `token_ttl`.
    pub fn new(stores: RegionalStore, token_ttl: Duration) -> Self {
        Self {
            stores,
            token_ttl,
            policy: TokenPolicy::default(),
            tokens: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The same sink, issuing and renewing sidecar tokens by `policy`.
    pub fn with_token_policy(mut self, policy: TokenPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How sidecar tokens live and are renewed.
    pub fn token_policy(&self) -> TokenPolicy {
        self.policy
    }

    /// The stores it writes to.
    pub fn stores(&self) -> &RegionalStore {
        &self.stores
    }

    /// The owner of `token`, if it is a valid sidecar token (and, when `workspace` is given,
    /// one of that workspace's).
    pub async fn authenticate(
        &self,
        token: &str,
        workspace: Option<uuid::Uuid>,
    ) -> Result<Option<Authenticated>, StoreError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Ok(cache) = self.tokens.lock()
            && let Some(c) = cache.get(&key)
            && c.until > now
            && c.identity.expires_at > Utc::now()
        {
            return Ok(
                matches_workspace(c.identity, workspace).then_some(Authenticated {
                    db: c.db,
                    identity: c.identity,
                }),
            );
        }
        let candidates: Vec<usize> = match workspace {
            Some(w) => {
                let Ok(ws) = WorkspaceId::from_uuid(w) else {
                    return Ok(None);
                };
                match self.stores.workspace_find(ws).await {
                    Ok((found, _)) => vec![self.stores.index_of(found.region)],
                    Err(StoreError::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            None => (0..self.stores.distinct().len()).collect(),
        };
        for i in candidates {
            let db = &self.stores.distinct()[i];
            if let Some(identity) = db.sidecar_token_verify(token).await? {
                if !matches_workspace(identity, workspace) {
                    return Ok(None);
                }
                if let Ok(mut cache) = self.tokens.lock() {
                    cache.retain(|_, c| c.until > now);
                    cache.insert(
                        key,
                        Cached {
                            db: i,
                            identity,
                            until: now + self.token_ttl,
                        },
                    );
                }
                return Ok(Some(Authenticated { db: i, identity }));
            }
        }
        Ok(None)
    }

    /// Buffers a heartbeat from an authenticated sidecar.
    pub fn accept(&self, who: Authenticated, hb: Heartbeat) {
        let total = if hb.memory_total_mb > 0 {
            hb.memory_total_mb
        } else {
            DEFAULT_MEMORY_MB
        };
        let sample = ResourceSample {
            cpu: hb.cpu_usage_percent,
            memory: (hb.memory_usage_mb as f64 * 100.0 / total as f64) as f32,
            disk: hb.disk_usage_percent,
        };
        let pending = Pending {
            at: Utc::now(),
            heartbeat: hb,
            sample,
        };
        if let Ok(mut p) = self.pending.lock() {
            p.entry(who.db)
                .or_default()
                .insert(who.identity.droplet_id, pending);
        }
    }

    /// Heartbeats waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.pending
            .lock()
            .map(|p| p.values().map(HashMap::len).sum())
            .unwrap_or(0)
    }

    /// Writes everything buffered; returns how many heartbeats were recorded.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let batches: Vec<(usize, HashMap<DropletId, Pending>)> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => return Ok(0),
        };
        let mut written = 0;
        let mut first_error = None;
        for (db, beats) in batches {
            let rows: Vec<BeatRow> = beats
                .iter()
                .map(|(id, p)| BeatRow {
                    droplet: *id,
                    at: p.at,
                    payload: serde_json::to_value(&p.heartbeat).unwrap_or_default(),
                    sample: p.sample,
                })
                .collect();
            match self.stores.distinct()[db]
                .heartbeats_record(&rows, "heartbeat")
                .await
            {
                Ok(transitions) => {
                    written += rows.len();
                    for t in transitions {
                        tracing::info!(droplet = %t.droplet, from = %t.from, event = ?t.event, "heartbeat rule applied");
                    }
                }
                Err(e) => {
                    // Put them back unless a newer heartbeat arrived meanwhile.
                    if let Ok(mut p) = self.pending.lock() {
                        let slot = p.entry(db).or_default();
                        for (id, row) in beats {
                            slot.entry(id).or_insert(row);
                        }
                    }
                    first_error.get_or_insert(e);
                }
            }
        }
        metrics::counter!("genesis_heartbeats_recorded_total").increment(written as u64);
        match first_error {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }

    /// Flushes every `interval` until `stop` says so, then once more.
    pub async fn run(&self, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "heartbeat flush failed; retrying next tick");
            }
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "final heartbeat flush failed");
        }
    }
}

fn matches_workspace(identity: SidecarIdentity, workspace: Option<uuid::Uuid>) -> bool {
    workspace.is_none_or(|w| identity.workspace_id.as_uuid() == w)
}
