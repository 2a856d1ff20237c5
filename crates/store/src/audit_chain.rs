//! The audit log's hash chain (issue 25, spec 63.1): what makes a changed, removed or
//! forged row visible.
//!
//! Each sealed row carries `chain_hash = HMAC(key, link_tag ‖ previous chain_hash ‖
//! chain_seq ‖ id ‖ occurred_at ‖ category ‖ event ‖ workspace ‖ personal)`, where
//! `personal = HMAC(key, personal_tag ‖ actor ‖ subject ‖ details)`, each field
//! length-prefixed. The key is `server.audit_key`, which the database never sees: whoever
//! can write the tables (a database owner, a restored backup, a hand-run `UPDATE`) cannot
//! compute the links that would hide the change.
//!
//! `personal` is its own MAC so that a tenant's deletion can anonymise its rows (spec 64.2,
//! step 6) and keep the chain whole: it stores the row's `personal` in `personal_mac`,
//! computed from the original values, and overwrites them. Nobody without the key could
//! have produced that value, so an anonymised row is as tamper-evident as any other.
//!
//! Sealing is separate from writing ([`Database::audit_seal_pending`], run by the
//! `audit-seal` reconciler): rows get their place in the order the sealer finds them
//! committed, so no audited transaction waits for another's commit. The chain's places are
//! filled through `genesis.audit_seal`, which only fills empty ones, right after the head.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use uuid::Uuid;

use crate::{Database, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// The advisory lock every sealer of one database takes, so that two read the same head
/// one after the other.
const CHAIN_LOCK: &str = "genesis.audit_chain";

/// How far a sealed row's time may fall behind a row sealed before it. Rows are stamped
/// with their transaction's start; a transaction that ran this long while writing audit
/// rows does not happen here, a row inserted later with an earlier date does.
pub const BACKDATING_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The key the chain is computed with (`server.audit_key`). Never printed.
#[derive(Clone)]
pub struct AuditChainKey([u8; 32]);

impl AuditChainKey {
    /// From its 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn mac(&self, tag: &[u8]) -> HmacSha256 {
        // An HMAC takes a key of any length; 32 bytes is never refused.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(tag);
        mac
    }

    /// The MAC of a row's personal fields.
    fn personal(&self, row: &ChainRow) -> [u8; 32] {
        self.personal_of(&row.actor, row.subject.as_deref(), &row.details)
    }

    /// The MAC of personal fields as a row holds them (`details` as PostgreSQL's text of
    /// the `jsonb` value): what an anonymised row keeps in their place.
    pub(crate) fn personal_of(
        &self,
        actor: &str,
        subject: Option<&str>,
        details: &str,
    ) -> [u8; 32] {
        let mut mac = self.mac(b"genesis-audit-personal-v1");
        field(&mut mac, Some(actor.as_bytes()));
        field(&mut mac, subject.map(str::as_bytes));
        field(&mut mac, Some(details.as_bytes()));
        mac.finalize().into_bytes().into()
    }

    /// The link of `row` at place `seq` after `prev`.
    fn link(&self, prev: &[u8; 32], seq: i64, row: &ChainRow) -> [u8; 32] {
        let personal = match row.personal_mac.as_deref().map(<[u8; 32]>::try_from) {
            Some(Ok(stored)) => stored,
            // A malformed stored MAC cannot match any link; hash it as found.
            Some(Err(_)) | None => self.personal(row),
        };
        let mut mac = self.mac(b"genesis-audit-link-v1");
        mac.update(prev);
        mac.update(&seq.to_be_bytes());
        mac.update(&row.id.to_be_bytes());
        mac.update(&row.occurred_at.timestamp_micros().to_be_bytes());
        field(&mut mac, Some(row.category.as_bytes()));
        field(&mut mac, Some(row.event.as_bytes()));
        field(
            &mut mac,
            row.workspace_id.as_ref().map(|w| w.as_bytes().as_slice()),
        );
        mac.update(&personal);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for AuditChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditChainKey(..)")
    }
}

/// One field, unambiguously: absent, or present with its length.
fn field(mac: &mut HmacSha256, value: Option<&[u8]>) {
    match value {
        None => mac.update(&[0]),
        Some(v) => {
            mac.update(&[1]);
            mac.update(&(v.len() as u64).to_be_bytes());
            mac.update(v);
        }
    }
}

/// A row as the chain sees it. `details` is PostgreSQL's own text of the `jsonb` value,
/// which is the same for the same value however it was written.
#[derive(Debug, sqlx::FromRow)]
struct ChainRow {
    id: i64,
    occurred_at: DateTime<Utc>,
    actor: String,
    category: String,
    event: String,
    workspace_id: Option<Uuid>,
    subject: Option<String>,
    details: String,
    personal_mac: Option<Vec<u8>>,
}

/// A sealed row as the verifier reads it.
#[derive(Debug, sqlx::FromRow)]
struct SealedRow {
    chain_seq: i64,
    chain_hash: Vec<u8>,
    #[sqlx(flatten)]
    row: ChainRow,
}

/// What is wrong with a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BreakKind {
    /// Places are missing before this one: rows were removed.
    Missing {
        /// The first place that is missing.
        from_seq: i64,
    },
    /// Another row holds this place already (places are unique by construction: the
    /// sealer's lock; a second one was written by hand).
    Repeated,
    /// The row's link does not verify: it was changed after it was sealed, or it was
    /// written into the chain by someone without the key.
    Altered,
    /// The row is dated well before a row sealed ahead of it: it was inserted later with
    /// an earlier date.
    Backdated {
        /// By how much, in seconds.
        behind_secs: i64,
    },
}

/// One broken link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The place of the first row after it.
    pub seq: i64,
    /// That row's id.
    pub id: i64,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: BreakKind,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            BreakKind::Missing { from_seq } => write!(
                f,
                "places {from_seq} to {} are missing before row {} (rows were removed)",
                self.seq - 1,
                self.id
            ),
            BreakKind::Repeated => write!(
                f,
                "row {} claims place {}, which another row holds (written by hand)",
                self.id, self.seq
            ),
            BreakKind::Altered => write!(
                f,
                "row {} (place {}) does not match its link: changed after sealing, or written by someone without the key",
                self.id, self.seq
            ),
            BreakKind::Backdated { behind_secs } => write!(
                f,
                "row {} (place {}) is dated {behind_secs} s before a row sealed ahead of it (inserted later with an earlier date)",
                self.id, self.seq
            ),
        }
    }
}

/// What checking one database's chain found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    /// Sealed rows read.
    pub sealed: u64,
    /// The first place present (1 unless months past the retention were dropped).
    pub first_seq: Option<i64>,
    /// The place the chain starts after, when months past the retention were dropped: the
    /// last place of the newest of them.
    pub checkpoint_seq: Option<i64>,
    /// Rows kept whose place is at or before the checkpoint (written across the end of a
    /// dropped month): counted, not checked.
    pub before_checkpoint: u64,
    /// The last place present.
    pub last_seq: Option<i64>,
    /// Rows written but not yet sealed.
    pub unsealed: u64,
    /// The oldest of them.
    pub oldest_unsealed: Option<DateTime<Utc>>,
    /// Broken links found (each counted once).
    pub broken: u64,
    /// The first broken link, in chain order.
    pub first_break: Option<ChainBreak>,
}

impl ChainReport {
    /// No broken link.
    pub fn intact(&self) -> bool {
        self.broken == 0
    }

    fn found(&mut self, b: ChainBreak) {
        self.broken += 1;
        if self.first_break.is_none() {
            self.first_break = Some(b);
        }
    }
}

impl Database {
    /// Seals up to `limit` unsealed audit rows, oldest id first, after the chain's head;
    /// returns how many. Safe to run on any number of replicas at once: they queue on the
    /// chain's lock, and each reads the head the previous one left.
    pub async fn audit_seal_pending(
        &self,
        key: &AuditChainKey,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(CHAIN_LOCK)
            .execute(&mut *tx)
            .await?;
        // The head may be online, archived, or only a dropped month's checkpoint.
        let head = sqlx::query!(
            r#"SELECT seq AS "seq!", hash AS "hash!" FROM genesis.audit_chain_head()
               WHERE seq IS NOT NULL"#
        )
        .fetch_optional(&mut *tx)
        .await?;
        let rows = sqlx::query_as!(
            ChainRow,
            r#"SELECT id, occurred_at, actor, category, event, workspace_id, subject,
                      details::text AS "details!", personal_mac
               FROM genesis.audit_log WHERE chain_hash IS NULL ORDER BY id LIMIT $1"#,
            limit
        )
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let (mut seq, mut prev) = match head {
            Some(h) => (h.seq, to_32(&h.hash)),
            None => (0, [0; 32]),
        };
        let first_seq = seq + 1;
        let mut ids = Vec::with_capacity(rows.len());
        let mut hashes = Vec::with_capacity(rows.len());
        for row in &rows {
            seq += 1;
            prev = key.link(&prev, seq, row);
            ids.push(row.id);
            hashes.push(prev.to_vec());
        }
        let sealed = sqlx::query_scalar!(
            r#"SELECT genesis.audit_seal($1, $2, $3) AS "sealed!""#,
            &ids,
            &hashes,
            first_seq
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(sealed as u64)
    }

    /// Seals in transactions of `batch` rows until nothing is left, or after `max_batches`
    /// when given (so one caller does not hold the chain's lock for a long backlog at a
    /// time); returns how many were sealed.
    pub async fn audit_seal_backlog(
        &self,
        key: &AuditChainKey,
        batch: i64,
        max_batches: Option<usize>,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        for _ in 0..max_batches.unwrap_or(usize::MAX) {
            let n = self.audit_seal_pending(key, batch).await?;
            total += n;
            if n < batch as u64 {
                break;
            }
        }
        Ok(total)
    }

    /// Checks this database's chain from its first place to its last, archived months
    /// included, streaming (a long log is never held in memory), and counts what is not
    /// yet sealed. The chain starts at place 1 with the zero link, or, once months older
    /// than the retention were dropped, at the checkpoint the last of them left.
    pub async fn audit_verify(&self, key: &AuditChainKey) -> Result<ChainReport, StoreError> {
        let mut report = ChainReport::default();
        let checkpoint = sqlx::query!(
            r#"SELECT last_seq AS "seq!", last_hash AS "hash!" FROM genesis.audit_partitions
               WHERE state = 'dropped' AND last_seq IS NOT NULL
               ORDER BY last_seq DESC LIMIT 1"#
        )
        .fetch_optional(&self.app)
        .await?;
        report.checkpoint_seq = checkpoint.as_ref().map(|c| c.seq);
        let mut rows = sqlx::query_as::<_, SealedRow>(
            "SELECT chain_seq, chain_hash, id, occurred_at, actor, category, event, workspace_id,
                    subject, details::text AS details, personal_mac
             FROM genesis.audit_history WHERE chain_seq IS NOT NULL ORDER BY chain_seq",
        )
        .fetch(&self.app);
        let mut prev: (i64, [u8; 32]) =
            checkpoint.map_or((0, [0; 32]), |c| (c.seq, to_32(&c.hash)));
        let mut latest: Option<DateTime<Utc>> = None;
        while let Some(r) = rows.try_next().await? {
            // A row from a transaction that straddled the end of a dropped month can hold a
            // place before that month's last one: its link cannot be checked (the place
            // before it is gone), and it says nothing about the chain after the checkpoint.
            if report.checkpoint_seq.is_some_and(|c| r.chain_seq <= c) {
                report.before_checkpoint += 1;
                continue;
            }
            report.sealed += 1;
            report.first_seq.get_or_insert(r.chain_seq);
            report.last_seq = Some(r.chain_seq);
            let stored = to_32(&r.chain_hash);
            let brk = |kind| ChainBreak {
                seq: r.chain_seq,
                id: r.row.id,
                kind,
            };
            // The link it should have: the first place follows the chain's start (the zero
            // link, or the checkpoint), and every other the place before it.
            let (seq, p) = prev;
            let expected = if r.chain_seq <= seq {
                report.found(brk(BreakKind::Repeated));
                None
            } else if r.chain_seq != seq + 1 {
                report.found(brk(BreakKind::Missing { from_seq: seq + 1 }));
                None
            } else {
                Some(key.link(&p, r.chain_seq, &r.row))
            };
            if expected.is_some_and(|e| e != stored) {
                report.found(brk(BreakKind::Altered));
            }
            if let Some(l) = latest
                && l - r.row.occurred_at > BACKDATING_TOLERANCE
            {
                report.found(brk(BreakKind::Backdated {
                    behind_secs: (l - r.row.occurred_at).num_seconds(),
                }));
            }
            latest = Some(latest.map_or(r.row.occurred_at, |l| l.max(r.row.occurred_at)));
            prev = (r.chain_seq, stored);
        }
        drop(rows);
        let unsealed = sqlx::query!(
            r#"SELECT count(*) AS "n!", min(occurred_at) AS oldest
               FROM genesis.audit_log WHERE chain_hash IS NULL"#
        )
        .fetch_one(&self.app)
        .await?;
        report.unsealed = unsealed.n as u64;
        report.oldest_unsealed = unsealed.oldest;
        Ok(report)
    }
}

/// A stored hash as 32 bytes; one of another length (written by hand) cannot match a link.
fn to_32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0xff; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ChainRow {
        ChainRow {
            id: 7,
            occurred_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("a time"),
            actor: "operator:ada".into(),
            category: "security".into(),
            event: "LOGIN".into(),
            workspace_id: None,
            subject: Some("x".into()),
            details: "{}".into(),
            personal_mac: None,
        }
    }

    #[test]
    fn every_field_is_in_the_link() {
        let key = AuditChainKey::new([3; 32]);
        let base = key.link(&[0; 32], 1, &row());
        let variants: [fn(&mut ChainRow); 9] = [
            |r| r.id = 8,
            |r| r.occurred_at += chrono::TimeDelta::microseconds(1),
            |r| r.actor = "operator:bob".into(),
            |r| r.category = "support".into(),
            |r| r.event = "LOGOUT".into(),
            |r| r.workspace_id = Some(Uuid::nil()),
            |r| r.subject = None,
            |r| r.subject = Some(String::new()),
            |r| r.details = "{\"a\": 1}".into(),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut r = row();
            change(&mut r);
            assert_ne!(key.link(&[0; 32], 1, &r), base, "variant {i}");
        }
        assert_ne!(key.link(&[1; 32], 1, &row()), base, "previous link");
        assert_ne!(key.link(&[0; 32], 2, &row()), base, "place");
        assert_ne!(
            AuditChainKey::new([4; 32]).link(&[0; 32], 1, &row()),
            base,
            "key"
        );
    }

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let key = AuditChainKey::new([3; 32]);
        let mut a = row();
        a.actor = "operator:a".into();
        a.subject = Some("bc".into());
        let mut b = row();
        b.actor = "operator:ab".into();
        b.subject = Some("c".into());
        assert_ne!(key.link(&[0; 32], 1, &a), key.link(&[0; 32], 1, &b));
    }

    #[test]
    fn an_anonymised_row_links_through_its_stored_personal_mac() {
        let key = AuditChainKey::new([3; 32]);
        let original = row();
        let link = key.link(&[0; 32], 1, &original);
        let mut anonymised = row();
        anonymised.personal_mac = Some(key.personal(&original).to_vec());
        anonymised.actor = "anonymised".into();
        anonymised.subject = None;
        anonymised.details = "{}".into();
        assert_eq!(key.link(&[0; 32], 1, &anonymised), link);
        anonymised.personal_mac = Some(vec![0; 32]);
        assert_ne!(key.link(&[0; 32], 1, &anonymised), link);
    }

    #[test]
    fn the_key_is_not_printed() {
        assert_eq!(
            format!("{:?}", AuditChainKey::new([9; 32])),
            "AuditChainKey(..)"
        );
    }
}
