//! The audit log's monthly partitions and their retention (spec 63.2; DECISIONS 104).
//!
//! Spec 63.2 keeps the audit log 7 years in every region, and at least 90 days at hand for
//! operational debugging. The online log (`genesis.audit_log`, what dashboards, the sealer
//! and the operators' viewer read) holds the current month, [`MONTHS_AHEAD`] months ahead
//! and the last [`ONLINE_MONTHS`]. An older month is moved whole to `genesis.audit_archive`
//! (read by `genesis audit verify`, a tenant's export and its deletion), and dropped once
//! it is [`RETENTION_YEARS`] old, leaving in the catalogue the chain's place and link at its
//! end, from which the verifier starts.
//!
//! A month moves in three steps that each survive a crash, recorded in
//! `genesis.audit_partitions`: the catalogue row (with the partition's bounds, row count and
//! last link), `DETACH PARTITION CONCURRENTLY` (the online log keeps taking inserts), and
//! `ATTACH` to the archive. A pass resumes any month it finds between them. Only a month
//! whose every row is sealed moves: the sealer reads the online log alone.
//!
//! Partition DDL has no crate to lean on (sqlx has no DDL builder, and the names are ours);
//! every name is checked against `audit_log_p<digits>` before it is put in a statement.

use chrono::{DateTime, Months, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use crate::{Database, StoreError};

/// Months created ahead of the current one, so that an insert always finds its partition
/// even if the reconciler stops for a while.
pub const MONTHS_AHEAD: i32 = 3;
/// Months kept in the online log after they end (spec 63.2: 90 days at least).
pub const ONLINE_MONTHS: u32 = 13;
/// Years a month is kept in all (spec 63.2: 7 years, US and EU).
pub const RETENTION_YEARS: u32 = 7;

/// What one pass did on one database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Partitions created ahead.
    pub created: u64,
    /// Months moved to the archive.
    pub archived: Vec<String>,
    /// Archived months dropped at the end of their retention.
    pub dropped: Vec<String>,
    /// Months due for the archive that still hold unsealed rows (they move once sealed).
    pub waiting: Vec<String>,
}

/// A month that left, or is leaving, the online log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchivedMonth {
    /// The partition.
    pub name: String,
    /// Its end.
    pub upper_bound: DateTime<Utc>,
    /// `archiving`, `archived` or `dropped`.
    pub state: String,
    /// Rows it held.
    pub rows: i64,
    /// The chain places it held.
    pub first_seq: Option<i64>,
    /// The last of them.
    pub last_seq: Option<i64>,
}

/// A partition name we made, safe to put in a statement.
fn checked(name: &str) -> Result<&str, StoreError> {
    let ok = name
        .strip_prefix("audit_log_p")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(name)
    } else {
        Err(StoreError::Corrupt {
            what: "audit partition name",
            value: name.chars().take(64).collect(),
        })
    }
}

/// `at` minus `months`, saturating at the earliest date.
fn months_before(at: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    at.checked_sub_months(Months::new(months))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Database {
    /// One pass of the retention at `now`: partitions ahead, unfinished moves finished,
    /// archived months past [`RETENTION_YEARS`] dropped, and months past [`ONLINE_MONTHS`]
    /// archived.
    pub async fn audit_retention_pass(
        &self,
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        let created: i32 = sqlx::query_scalar("SELECT genesis.audit_partitions_ensure($1, $2)")
            .bind(now)
            .bind(MONTHS_AHEAD)
            .fetch_one(&self.owner)
            .await?;
        report.created = u64::try_from(created).unwrap_or(0);

        for name in sqlx::query_scalar!(
            "SELECT name FROM genesis.audit_partitions WHERE state = 'archiving' ORDER BY name"
        )
        .fetch_all(&self.owner)
        .await?
        {
            self.audit_month_finish_archiving(&name).await?;
            report.archived.push(name);
        }

        // Dropping before archiving: a month's range is free in the archive before the
        // next one is attached there.
        let retained_until = months_before(now, RETENTION_YEARS * 12);
        for name in sqlx::query_scalar!(
            "SELECT name FROM genesis.audit_partitions
             WHERE state = 'archived' AND upper_bound <= $1 ORDER BY upper_bound",
            retained_until
        )
        .fetch_all(&self.owner)
        .await?
        {
            let mut tx = self.owner.begin().await?;
            sqlx::query!(
                "UPDATE genesis.audit_partitions SET state = 'dropped', dropped_at = now()
                 WHERE name = $1",
                name
            )
            .execute(&mut *tx)
            .await?;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS genesis.{}",
                checked(&name)?
            )))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            report.dropped.push(name);
        }
        let online_until = months_before(now, ONLINE_MONTHS);
        let due = sqlx::query!(
            r#"SELECT c.relname::text AS "name!", pg_get_expr(c.relpartbound, c.oid) AS "bound!",
                      substring(pg_get_expr(c.relpartbound, c.oid)
                                FROM 'TO \(''([^'']+)''\)')::timestamptz AS "upper!"
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'genesis.audit_log'::regclass
                 AND c.relname ~ '^audit_log_p[0-9]+$'
                 AND substring(pg_get_expr(c.relpartbound, c.oid)
                               FROM 'TO \(''([^'']+)''\)')::timestamptz <= $1
               ORDER BY 3"#,
            online_until
        )
        .fetch_all(&self.owner)
        .await?;
        for month in due {
            let name = checked(&month.name)?;
            if self
                .audit_month_begin_archiving(name, &month.bound, month.upper)
                .await?
            {
                self.audit_month_finish_archiving(name).await?;
                report.archived.push(month.name);
            } else {
                report.waiting.push(month.name);
            }
        }

        Ok(report)
    }

    /// Records a month about to leave the online log, with its last link; false (and
    /// nothing recorded) while it holds unsealed rows.
    async fn audit_month_begin_archiving(
        &self,
        name: &str,
        bound: &str,
        upper: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (rows, unsealed, first, last): (i64, i64, Option<i64>, Option<i64>) =
            sqlx::query_as(AssertSqlSafe(format!(
                "SELECT count(*), count(*) FILTER (WHERE chain_hash IS NULL),
                        min(chain_seq), max(chain_seq)
                 FROM genesis.{name}"
            )))
            .fetch_one(&self.owner)
            .await?;
        if unsealed > 0 {
            return Ok(false);
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO genesis.audit_partitions
               (name, bound, upper_bound, state, rows, first_seq, last_seq, last_hash)
             SELECT $1, $2, $3, 'archiving', $4, $5, $6,
                    (SELECT chain_hash FROM genesis.{name} WHERE chain_seq = $6)
             ON CONFLICT (name) DO NOTHING"
        )))
        .bind(name)
        .bind(bound)
        .bind(upper)
        .bind(rows)
        .bind(first)
        .bind(last)
        .execute(&self.owner)
        .await?;
        Ok(true)
    }

    /// Moves a recorded month from the online log to the archive, from wherever an earlier
    /// pass stopped.
    async fn audit_month_finish_archiving(&self, name: &str) -> Result<(), StoreError> {
        let name = checked(name)?;
        let bound = sqlx::query_scalar!(
            "SELECT bound FROM genesis.audit_partitions WHERE name = $1",
            name
        )
        .fetch_one(&self.owner)
        .await?;
        let parent = crate::partitions::attachment(&mut *self.owner.acquire().await?, name).await?;
        let in_archive = match parent {
            Some(p) if p.parent == "audit_log" => {
                // CONCURRENTLY: inserts into the online log go on while it detaches. One
                // interrupted halfway is finished instead.
                let how = if p.pending {
                    "FINALIZE"
                } else {
                    "CONCURRENTLY"
                };
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "ALTER TABLE genesis.audit_log DETACH PARTITION genesis.{name} {how}"
                )))
                .execute(&self.owner)
                .await?;
                false
            }
            Some(p) => p.parent == "audit_archive",
            None => false,
        };
        if !in_archive {
            if !bound.starts_with("FOR VALUES FROM (") {
                return Err(StoreError::Corrupt {
                    what: "audit partition bound",
                    value: bound.chars().take(120).collect(),
                });
            }
            sqlx::raw_sql(AssertSqlSafe(format!(
                "ALTER TABLE genesis.audit_archive ATTACH PARTITION genesis.{name} {bound}"
            )))
            .execute(&self.owner)
            .await?;
        }
        sqlx::query!(
            "UPDATE genesis.audit_partitions SET state = 'archived', archived_at = now()
             WHERE name = $1 AND state = 'archiving'",
            name
        )
        .execute(&self.owner)
        .await?;
        Ok(())
    }

    /// The months that left the online log, oldest first.
    pub async fn audit_archived_months(&self) -> Result<Vec<ArchivedMonth>, StoreError> {
        Ok(sqlx::query_as!(
            ArchivedMonth,
            "SELECT name, upper_bound, state, rows, first_seq, last_seq
             FROM genesis.audit_partitions ORDER BY upper_bound"
        )
        .fetch_all(&self.app)
        .await?)
    }
}
