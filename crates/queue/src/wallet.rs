//! The wallet's fast path in Redis (spec 58.3): a cached balance per workspace that a managed
//! call reserves from and settles against in one atomic script, and a journal of what it did
//! for the ledger's syncer.
//!
//! Why ours: no crate keeps a balance and a ledger journal together; the work is a handful of
//! Lua scripts, each one round trip on one cluster slot (`wallet:{<workspace>}` tags every
//! key of a wallet), as the job queue's are.
//!
//! # Which side is the truth
//! The ledger in PostgreSQL is the truth for everything the syncer has written. Between a
//! reservation and its sync (about a second; at most the syncer's interval), the truth is
//! Redis: the cached balance and the journal entry written in the same script. So at every
//! moment *ledger + unsynced journal = cache*, and the reconciler checks exactly that. A
//! reservation can never take the cached balance below zero (the script refuses it), and the
//! ledger refuses anything that would take a wallet below zero whatever the cache said.
//!
//! # What a flush loses
//! A Redis flush or failover loses the journal entries not yet synced: at most one sync
//! interval of reservations and settlements. The next call finds the wallet unloaded and
//! loads it from the ledger. A settlement whose hold was lost goes to the ledger directly
//! (decision 84).

use redis::Script;
use serde::Deserialize;

use crate::QueueError;
use crate::redis_conn::RedisConn;

const COMMON: &str = include_str!("lua/wallet/common.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

/// The key of the set of wallets with journal entries to sync (one global key: a wallet's
/// scripts cannot reach it on a cluster, so the caller adds to it after the script).
pub const DIRTY: &str = "wallet-dirty";

/// How long a wallet with nothing to sync and nothing held stays cached (spec 58.3 says 60 s
/// for a TTL refreshed by use; the clock starts when its last entry is synced).
pub const IDLE_TTL_S: u64 = 120;

/// A reservation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserve {
    /// Reserved; what is left.
    Reserved(i64),
    /// This hold was reserved before (a retry); what is left.
    AlreadyHeld(i64),
    /// The balance does not cover it; the balance.
    Short(i64),
    /// The kill-switch is on; the balance.
    Halted(i64),
    /// The wallet is not in Redis: load it from the ledger and try again.
    NotLoaded,
}

/// A settlement's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done; what is left.
    Done(i64),
    /// The wallet is not in Redis (flushed).
    NotLoaded,
    /// No such hold (expired, or lost with a flush).
    NoHold,
    /// More than was held; the amount held.
    MoreThanHeld(i64),
}

/// One journal entry: what a script did, for the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    /// Its number in the wallet's journal.
    #[serde(rename = "s")]
    pub seq: i64,
    /// `R` reserve, `P` post, `V` void.
    #[serde(rename = "o")]
    pub op: String,
    /// The hold (the pending transfer's id).
    #[serde(rename = "h")]
    pub hold: String,
    /// The settling transfer's id (post, void).
    #[serde(default)]
    pub id: Option<String>,
    /// The transfer kind (`CSE_SEARCH`).
    #[serde(rename = "k")]
    pub kind: String,
    /// Reserved or posted.
    #[serde(rename = "a")]
    pub amount: i64,
    /// What the hold was (post, void).
    #[serde(default)]
    pub held: Option<i64>,
    /// The hold's timeout (reserve).
    #[serde(rename = "t", default)]
    pub timeout_s: Option<i32>,
    /// The reference (reserve).
    #[serde(rename = "r", default)]
    pub reference: Option<String>,
    /// When it was journaled (ms since the epoch, Redis's clock): the syncer's lag.
    #[serde(rename = "m", default)]
    pub at_ms: Option<i64>,
}

impl Entry {
    /// What this entry changed the cached balance by.
    pub fn effect(&self) -> i64 {
        match self.op.as_str() {
            "R" => -self.amount,
            _ => self.held.unwrap_or(0) - self.amount,
        }
    }
}

/// A consistent picture of one cached wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// What may still be reserved.
    pub avail: i64,
    /// The last journal entry's number.
    pub seq: i64,
    /// The kill-switch.
    pub halted: bool,
    /// Holds open.
    pub holds: i64,
    /// Journal entries not yet synced.
    pub journal_len: i64,
    /// The first of them.
    pub journal: Vec<Entry>,
}

/// The wallets' Redis side.
#[derive(Clone)]
pub struct WalletCache {
    conn: RedisConn,
    prefix: String,
    reserve: Script,
    settle: Script,
    load: Script,
    credit: Script,
    halt: Script,
    snapshot: Script,
    ack: Script,
    drop_hold: Script,
    rebuild: Script,
}

impl std::fmt::Debug for WalletCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn bad(what: &str) -> QueueError {
    QueueError::Protocol(format!("wallet script answered {what}"))
}

impl WalletCache {
    /// Wallets on `conn`, their keys under `prefix` (empty in production: `wallet:{id}` as
    /// spec 58.3 names them; tests and benchmarks give their own).
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            reserve: script(include_str!("lua/wallet/reserve.lua")),
            settle: script(include_str!("lua/wallet/settle.lua")),
            load: script(include_str!("lua/wallet/load.lua")),
            credit: script(include_str!("lua/wallet/credit.lua")),
            halt: script(include_str!("lua/wallet/halt.lua")),
            snapshot: script(include_str!("lua/wallet/snapshot.lua")),
            ack: script(include_str!("lua/wallet/ack.lua")),
            drop_hold: script(include_str!("lua/wallet/drop_hold.lua")),
            rebuild: script(include_str!("lua/wallet/rebuild.lua")),
        }
    }

    /// The rate-limit registry on the same Redis, under the same prefix.
    pub fn rate_limits(&self) -> crate::limits::RateLimits {
        crate::limits::RateLimits::new(self.conn.clone(), &self.prefix)
    }

    /// The wallet's three keys.
    pub fn keys(&self, workspace: uuid::Uuid) -> [String; 3] {
        let w = format!("{}wallet:{{{workspace}}}", self.prefix);
        [w.clone(), format!("{w}:holds"), format!("{w}:journal")]
    }

    fn dirty_key(&self) -> String {
        format!("{}{DIRTY}", self.prefix)
    }

    fn invocation<'a>(
        &self,
        script: &'a Script,
        workspace: uuid::Uuid,
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        for k in self.keys(workspace) {
            inv.key(k);
        }
        inv
    }

    async fn mark_dirty(&self, workspace: uuid::Uuid) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("ZADD")
            .arg(self.dirty_key())
            .arg("NX")
            .arg(now_ms())
            .arg(workspace.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Marks the wallet for the syncer when a script wrote its journal's first entry. The
    /// journal's later entries need no mark: the wallet is marked already, or its syncer is
    /// writing it and marks it again when its ack leaves entries behind. This saves a round
    /// trip on every reservation and settlement; the check pass marks any wallet whose mark
    /// was lost (a Redis error between the script and the mark).
    async fn mark_if_first(&self, workspace: uuid::Uuid, first: i64) -> Result<(), QueueError> {
        if first == 1 {
            self.mark_dirty(workspace).await?;
        }
        Ok(())
    }

    /// Whether `fingerprint` is seen here for the first time in `ttl_s` seconds: the payment
    /// receiver's memory of signatures it accepted, so a captured delivery sent again within
    /// its tolerance is refused. One `SET NX EX`: the memory is bounded by the TTL.
    pub async fn first_sighting(&self, fingerprint: &str, ttl_s: u64) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}payment-seen:{fingerprint}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl_s.max(1))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Reserves `amount` for `hold` if the balance covers it, for at most `timeout_s`.
    pub async fn reserve(
        &self,
        workspace: uuid::Uuid,
        hold: uuid::Uuid,
        amount: i64,
        timeout_s: i32,
        kind: &str,
        reference: &str,
    ) -> Result<Reserve, QueueError> {
        let mut conn = self.conn.clone();
        let (status, avail, first): (i64, i64, i64) = self
            .invocation(&self.reserve, workspace)
            .arg(hold.to_string())
            .arg(amount)
            .arg(timeout_s)
            .arg(kind)
            .arg(reference)
            .invoke_async(&mut conn)
            .await?;
        Ok(match status {
            1 => {
                self.mark_if_first(workspace, first).await?;
                Reserve::Reserved(avail)
            }
            2 => Reserve::AlreadyHeld(avail),
            0 => Reserve::Short(avail),
            3 => Reserve::Halted(avail),
            -1 => Reserve::NotLoaded,
            _ => return Err(bad("an unknown reserve status")),
        })
    }

    /// Posts `amount` of `hold` (at most what it held) as transfer `id`.
    pub async fn post(
        &self,
        workspace: uuid::Uuid,
        hold: uuid::Uuid,
        id: uuid::Uuid,
        amount: i64,
    ) -> Result<Settle, QueueError> {
        self.settle(workspace, hold, id, amount, "P").await
    }

    /// Voids `hold` as transfer `id`.
    pub async fn void(
        &self,
        workspace: uuid::Uuid,
        hold: uuid::Uuid,
        id: uuid::Uuid,
    ) -> Result<Settle, QueueError> {
        self.settle(workspace, hold, id, 0, "V").await
    }

    async fn settle(
        &self,
        workspace: uuid::Uuid,
        hold: uuid::Uuid,
        id: uuid::Uuid,
        amount: i64,
        op: &str,
    ) -> Result<Settle, QueueError> {
        let mut conn = self.conn.clone();
        let (status, value, first): (i64, i64, i64) = self
            .invocation(&self.settle, workspace)
            .arg(hold.to_string())
            .arg(id.to_string())
            .arg(amount)
            .arg(op)
            .invoke_async(&mut conn)
            .await?;
        Ok(match status {
            1 => {
                self.mark_if_first(workspace, first).await?;
                Settle::Done(value)
            }
            -1 => Settle::NotLoaded,
            -2 => Settle::NoHold,
            -3 => Settle::MoreThanHeld(value),
            _ => return Err(bad("an unknown settle status")),
        })
    }

    /// Loads a wallet from the ledger's figures unless it is loaded: `avail` (the ledger's
    /// available balance), `ledger_seq` (its last transfer), and the journal number to go on
    /// from. Whether it was loaded now.
    pub async fn load(
        &self,
        workspace: uuid::Uuid,
        avail: i64,
        ledger_seq: i64,
        halted: bool,
        journal_seq: i64,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let loaded: i64 = self
            .invocation(&self.load, workspace)
            .arg(avail)
            .arg(ledger_seq)
            .arg(if halted { "1" } else { "0" })
            .arg(journal_seq)
            .invoke_async(&mut conn)
            .await?;
        Ok(loaded == 1)
    }

    /// Adds a credit the ledger wrote as its transfer number `ledger_seq`; `lift_halt` turns
    /// the kill-switch off. The new balance, `None` when the wallet is not cached.
    pub async fn credit(
        &self,
        workspace: uuid::Uuid,
        amount: i64,
        ledger_seq: i64,
        lift_halt: bool,
    ) -> Result<Option<i64>, QueueError> {
        let mut conn = self.conn.clone();
        let avail: i64 = self
            .invocation(&self.credit, workspace)
            .arg(amount)
            .arg(ledger_seq)
            .arg(if lift_halt { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await?;
        Ok((avail >= 0).then_some(avail))
    }

    /// Turns the kill-switch on or off in the cache.
    pub async fn set_halted(&self, workspace: uuid::Uuid, halted: bool) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .invocation(&self.halt, workspace)
            .arg(if halted { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// The wallet as one picture, with at most `max_entries` journal entries; `None` when
    /// it is not cached.
    pub async fn snapshot(
        &self,
        workspace: uuid::Uuid,
        max_entries: usize,
    ) -> Result<Option<Snapshot>, QueueError> {
        let mut conn = self.conn.clone();
        let v: Vec<redis::Value> = self
            .invocation(&self.snapshot, workspace)
            .arg(max_entries.max(1))
            .invoke_async(&mut conn)
            .await?;
        let int = |i: usize| -> Result<i64, QueueError> {
            let v = v.get(i).ok_or_else(|| bad("a short snapshot"))?;
            redis::from_redis_value_ref::<i64>(v).map_err(|_| bad("a snapshot field"))
        };
        if int(0)? == 0 {
            return Ok(None);
        }
        let raw: Vec<String> = v
            .get(6)
            .map(redis::from_redis_value_ref)
            .transpose()
            .map_err(|_| bad("a snapshot journal"))?
            .unwrap_or_default();
        let journal = raw
            .iter()
            .map(|e| serde_json::from_str(e))
            .collect::<Result<Vec<Entry>, _>>()
            .map_err(|e| bad(&format!("a journal entry that does not parse: {e}")))?;
        Ok(Some(Snapshot {
            avail: int(1)?,
            seq: int(2)?,
            halted: int(3)? == 1,
            holds: int(4)?,
            journal_len: int(5)?,
            journal,
        }))
    }

    /// Drops journal entries numbered up to `upto` (written to the ledger); the entries left.
    pub async fn ack(&self, workspace: uuid::Uuid, upto: i64) -> Result<i64, QueueError> {
        let mut conn = self.conn.clone();
        Ok(self
            .invocation(&self.ack, workspace)
            .arg(upto)
            .arg(IDLE_TTL_S)
            .invoke_async(&mut conn)
            .await?)
    }

    /// Gives an expired hold's money back (the ledger expired it). Whether it was held.
    pub async fn drop_hold(
        &self,
        workspace: uuid::Uuid,
        hold: uuid::Uuid,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let dropped: i64 = self
            .invocation(&self.drop_hold, workspace)
            .arg(hold.to_string())
            .invoke_async(&mut conn)
            .await?;
        Ok(dropped == 1)
    }

    /// Sets the cached balance to `avail` if nothing was journaled since `seq`.
    pub async fn rebuild(
        &self,
        workspace: uuid::Uuid,
        seq: i64,
        avail: i64,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let set: i64 = self
            .invocation(&self.rebuild, workspace)
            .arg(seq)
            .arg(avail)
            .invoke_async(&mut conn)
            .await?;
        Ok(set == 1)
    }

    /// Takes up to `n` wallets with entries to sync, oldest first. A wallet taken and then
    /// not fully synced must be [`WalletCache::mark`]ed again.
    pub async fn take_dirty(&self, n: usize) -> Result<Vec<uuid::Uuid>, QueueError> {
        let mut conn = self.conn.clone();
        let popped: Vec<(String, f64)> = redis::cmd("ZPOPMIN")
            .arg(self.dirty_key())
            .arg(n.max(1))
            .query_async(&mut conn)
            .await?;
        Ok(popped
            .into_iter()
            .filter_map(|(id, _)| uuid::Uuid::parse_str(&id).ok())
            .collect())
    }

    /// Marks a wallet as having entries to sync.
    pub async fn mark(&self, workspace: uuid::Uuid) -> Result<(), QueueError> {
        self.mark_dirty(workspace).await
    }

    /// Removes `workspace`'s wallet from the cache (its tenant is deleted): its three keys
    /// and its mark. The caller has written its journal to the ledger first.
    pub async fn forget(&self, workspace: uuid::Uuid) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        // One slot (`{workspace}`), so one command, on a cluster too.
        let _: i64 = redis::cmd("DEL")
            .arg(&self.keys(workspace)[..])
            .query_async(&mut conn)
            .await?;
        let _: i64 = redis::cmd("ZREM")
            .arg(self.dirty_key())
            .arg(workspace.to_string())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// How many wallets wait for the syncer.
    pub async fn dirty_count(&self) -> Result<i64, QueueError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("ZCARD")
            .arg(self.dirty_key())
            .query_async(&mut conn)
            .await?)
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
