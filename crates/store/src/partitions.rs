//! The partition manager (spec 40.3, 40.5): one `genesis.leads_p_<slug>` per workspace.
//!
//! # Guarantees
//! - Creation is atomic: table, indexes, ATTACH, registry row and audit event commit together
//!   or not at all, under an advisory lock keyed by the workspace.
//! - Creation is idempotent: a second call (or eight concurrent ones) returns the existing
//!   partition.
//! - Removal is idempotent and resumable: a DETACH interrupted half-way is finalized by the
//!   next call.
//! - Nothing here blocks other tenants' queries: the table and its indexes are built standalone
//!   and joined to its hash bucket with `ATTACH PARTITION` (SHARE UPDATE EXCLUSIVE on the bucket, which does not
//!   conflict with readers or writers); removal uses `DETACH PARTITION ... CONCURRENTLY`. A
//!   plain `CREATE TABLE ... PARTITION OF` or `DROP` would take ACCESS EXCLUSIVE on the parent,
//!   queue behind any open transaction and stall every tenant meanwhile.
//! - All DDL runs under `lock_timeout` and is retried with jittered backoff.
//!
//! # Assumptions
//! - Runs as `genesis_owner` (the owner pool). The runtime role has no privilege on partitions
//!   and cannot run DDL at all; `DETACH ... CONCURRENTLY` cannot run inside a function or a
//!   transaction, so this manager (not a SECURITY DEFINER function) is the one way in.
//!
//! # Caveats
//! - Each create/drop invalidates the parent's relcache entry: every open connection pays a
//!   rebuild (~26 ms at 15k partitions) on its next query touching `genesis.leads`.

use genesis_core::audit::AuditCategory;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use genesis_core::{Slug, WorkspaceId};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::{
    AuditEvent, Database, NewWorkspace, StoreError, Workspace,
    audit::record,
    bootstrap::{OWNER_ROLE, quote_ident},
    error::{is_transient_sqlstate, sqlstate},
    workspaces::insert_workspace,
};

/// Hash buckets under `genesis.leads` (`genesis.leads_h00` .. `leads_h63`, migration 0002).
/// Each tenant partition is attached to its bucket, so ATTACH and the relcache rebuilds it
/// causes cost O(tenants per bucket), not O(all tenants).
pub const LEAD_BUCKETS: i32 = 64;

/// Namespace (first key) of partition advisory locks.
const PARTITION_LOCK_NS: i32 = 0x4c50; // "LP"
/// Namespace of the per-bucket lock detaches take turns under.
const DETACH_LOCK_NS: i32 = 0x4c44; // "LD"

/// What `ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionOutcome {
    /// The partition was built by this call.
    Created,
    /// It already existed; nothing changed.
    Existing,
    /// `drop` found nothing to remove.
    AlreadyGone,
    /// `drop` removed it.
    Dropped,
}

/// A registered partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionInfo {
    /// Owner workspace.
    pub workspace_id: WorkspaceId,
    /// Unqualified table name.
    pub partition_name: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Creates and removes lead partitions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PartitionManager {
    db: Database,
}

/// What a table of `genesis` is a partition of.
pub(crate) struct Attachment {
    /// The partitioned table.
    pub parent: String,
    /// A `DETACH … CONCURRENTLY` of it was interrupted: it can only be finished (`FINALIZE`).
    pub pending: bool,
}

/// What `genesis.<name>` is a partition of; `None` when it is a partition of nothing.
pub(crate) async fn attachment(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<Attachment>, StoreError> {
    Ok(sqlx::query_as!(
        Attachment,
        r#"SELECT p.relname AS "parent!", i.inhdetachpending AS "pending!"
           FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
           JOIN pg_class p ON p.oid = i.inhparent
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'genesis' AND c.relname = $1"#,
        name
    )
    .fetch_optional(conn)
    .await?)
}

fn qualified(partition: &str) -> String {
    format!("genesis.{}", quote_ident(partition))
}

/// Index and constraint names derive from the workspace id, not the slug: always unique and
/// always within PostgreSQL's 63-byte limit (`leads_p_` + 50 + a suffix would not be).
fn object_name(prefix: &str, ws: WorkspaceId) -> String {
    quote_ident(&format!("{prefix}_{}", ws.simple_hex()))
}

impl PartitionManager {
    /// A manager over `db`'s owner pool.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(self.db.options.ddl_attempts.saturating_sub(1))
            .with_jitter()
    }

    fn lock_timeout_sql(&self) -> String {
        format!(
            "SET LOCAL lock_timeout = '{}ms'",
            self.db.options.ddl_lock_timeout.as_millis()
        )
    }

    /// Creates a workspace and its partition in one transaction: both exist afterwards, or
    /// neither does.
    pub async fn workspace_provision(
        &self,
        new: &NewWorkspace,
        actor: &str,
    ) -> Result<Workspace, StoreError> {
        let partition = new.slug.partition_table();
        self.with_lock_retries(&partition, || async {
            let mut tx = self.db.owner.begin().await?;
            ddl(&mut tx, self.lock_timeout_sql()).await?;
            lock_workspace(&mut tx, new.id).await?;
            let ws = insert_workspace(&mut tx, new, actor).await?;
            self.build_partition(&mut tx, new.id, &new.slug, actor)
                .await?;
            tx.commit().await?;
            Ok(ws)
        })
        .await
    }

    /// Makes sure the workspace's partition exists; returns whether it was built now.
    pub async fn ensure(
        &self,
        ws: WorkspaceId,
        actor: &str,
    ) -> Result<PartitionOutcome, StoreError> {
        self.with_lock_retries(&ws.to_string(), || async {
            let mut tx = self.db.owner.begin().await?;
            ddl(&mut tx, self.lock_timeout_sql()).await?;
            lock_workspace(&mut tx, ws).await?;
            let registered = sqlx::query_scalar!(
                "SELECT partition_name FROM genesis.partition_registry WHERE workspace_id = $1",
                ws.as_uuid()
            )
            .fetch_optional(&mut *tx)
            .await?;
            if registered.is_some() {
                tx.commit().await?;
                return Ok(PartitionOutcome::Existing);
            }
            let slug = sqlx::query_scalar!(
                "SELECT slug FROM genesis.workspaces WHERE id = $1",
                ws.as_uuid()
            )
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound { what: "workspace" })?;
            let slug = Slug::parse(&slug).map_err(|_| StoreError::Corrupt {
                what: "slug",
                value: slug.clone(),
            })?;
            self.build_partition(&mut tx, ws, &slug, actor).await?;
            tx.commit().await?;
            Ok(PartitionOutcome::Created)
        })
        .await
    }

    /// Builds, indexes and attaches the partition, registers it and audits it, on `tx`.
    async fn build_partition(
        &self,
        tx: &mut PgConnection,
        ws: WorkspaceId,
        slug: &Slug,
        actor: &str,
    ) -> Result<(), StoreError> {
        let name = slug.partition_table();
        let table = qualified(&name);
        let bucket = bucket_of(tx, ws).await?;
        // `ws` is a parsed UUID: its Display form is exactly 36 hex digits and hyphens.
        let bound = format!("'{ws}'::uuid");
        let statements = [
            // LIKE copies columns, defaults, NOT NULL and CHECKs; the extra CHECK equals the
            // partition bound, so ATTACH skips its validation scan.
            format!(
                "CREATE TABLE {table} (LIKE genesis.leads INCLUDING DEFAULTS INCLUDING CONSTRAINTS, \
                 CONSTRAINT {} CHECK (workspace_id = {bound}))",
                object_name("lck", ws)
            ),
            format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} PRIMARY KEY (workspace_id, id)",
                object_name("lpk", ws)
            ),
            format!(
                "CREATE INDEX {} ON {table} (workspace_id, status, created_at DESC, id DESC)",
                object_name("lst", ws)
            ),
            format!(
                "CREATE UNIQUE INDEX {} ON {table} (workspace_id, email)",
                object_name("lem", ws)
            ),
            // No policies on the partition: with RLS forced, direct access yields nothing
            // even for a role that somehow got a grant. Reads through the parent use the
            // parent's policies.
            format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
            format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"),
            format!("REVOKE ALL ON {table} FROM PUBLIC"),
            format!("ALTER TABLE {bucket} ATTACH PARTITION {table} FOR VALUES IN ({bound})"),
        ];
        for stmt in statements {
            ddl(tx, stmt).await.map_err(|e| {
                if sqlstate(&e).as_deref() == Some("42P07") {
                    StoreError::Conflict {
                        field: "slug",
                        value: slug.to_string(),
                    }
                } else {
                    StoreError::Database(e)
                }
            })?;
        }
        sqlx::query!(
            "INSERT INTO genesis.partition_registry (workspace_id, partition_name) VALUES ($1, $2)",
            ws.as_uuid(),
            name
        )
        .execute(&mut *tx)
        .await?;
        record(
            tx,
            &AuditEvent::new(actor, AuditCategory::Data, "PARTITION_CREATED")
                .workspace(ws)
                .subject(&name),
        )
        .await?;
        metrics::counter!("genesis_partitions_created_total").increment(1);
        Ok(())
    }

    /// Removes the workspace's partition (and its data). Idempotent; resumes an interrupted
    /// detach. Uses its own connection because the advisory lock must outlive several
    /// transactions and `DETACH ... CONCURRENTLY` cannot run inside one.
    pub async fn drop(&self, ws: WorkspaceId, actor: &str) -> Result<PartitionOutcome, StoreError> {
        self.with_lock_retries(&ws.to_string(), || async {
            let mut conn = PgConnection::connect_with(&self.db.options.admin).await?;
            let result = self.drop_on(&mut conn, ws, actor).await;
            let _ = conn.close().await;
            result
        })
        .await
    }

    async fn drop_on(
        &self,
        conn: &mut PgConnection,
        ws: WorkspaceId,
        actor: &str,
    ) -> Result<PartitionOutcome, StoreError> {
        ddl(
            conn,
            format!(
                "SET ROLE {OWNER_ROLE}; SET lock_timeout = '{}ms'",
                self.db.options.ddl_lock_timeout.as_millis()
            ),
        )
        .await?;
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(PARTITION_LOCK_NS)
            .bind(ws.lock_key())
            .execute(&mut *conn)
            .await?;
        let Some(name) = sqlx::query_scalar!(
            "SELECT partition_name FROM genesis.partition_registry WHERE workspace_id = $1",
            ws.as_uuid()
        )
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(PartitionOutcome::AlreadyGone);
        };
        let table = qualified(&name);
        // None: not attached (already detached); pending: a detach was interrupted.
        let attached = attachment(conn, &name).await?;
        if let Some(a) = attached {
            let parent = qualified(&a.parent);
            // PostgreSQL allows one pending detach per parent: a second `DETACH ...
            // CONCURRENTLY` on the same bucket while one waits for old snapshots fails
            // ("already pending detach"). Detaches from one bucket take turns, across
            // replicas (found by `genesis bench deletion`, 8 deletions at once).
            sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
                .bind(DETACH_LOCK_NS)
                .bind(&a.parent)
                .execute(&mut *conn)
                .await?;
            // Read again under the lock: another detach may have finished this one.
            let pending = sqlx::query_scalar!(
                r#"SELECT i.inhdetachpending AS "pending!"
                   FROM pg_inherits i
                   JOIN pg_class c ON c.oid = i.inhrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'genesis' AND c.relname = $1"#,
                name
            )
            .fetch_optional(&mut *conn)
            .await?;
            let detached = match pending {
                None => Ok(()),
                Some(pending) => {
                    let how = if pending || a.pending {
                        "FINALIZE"
                    } else {
                        "CONCURRENTLY"
                    };
                    ddl(
                        conn,
                        format!("ALTER TABLE {parent} DETACH PARTITION {table} {how}"),
                    )
                    .await
                }
            };
            sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(DETACH_LOCK_NS)
                .bind(&a.parent)
                .execute(&mut *conn)
                .await?;
            detached?;
        }
        let mut tx = conn.begin().await?;
        ddl(&mut tx, format!("DROP TABLE IF EXISTS {table}")).await?;
        sqlx::query!(
            "DELETE FROM genesis.partition_registry WHERE workspace_id = $1",
            ws.as_uuid()
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Data, "PARTITION_DROPPED")
                .workspace(ws)
                .subject(&name),
        )
        .await?;
        tx.commit().await?;
        metrics::counter!("genesis_partitions_dropped_total").increment(1);
        Ok(PartitionOutcome::Dropped)
    }

    /// The registered partition of a workspace, if any.
    pub async fn get(&self, ws: WorkspaceId) -> Result<Option<PartitionInfo>, StoreError> {
        let row = sqlx::query!(
            "SELECT partition_name, created_at FROM genesis.partition_registry WHERE workspace_id = $1",
            ws.as_uuid()
        )
        .fetch_optional(&self.db.owner)
        .await?;
        Ok(row.map(|r| PartitionInfo {
            workspace_id: ws,
            partition_name: r.partition_name,
            created_at: r.created_at,
        }))
    }

    /// How many partitions are registered.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM genesis.partition_registry"#)
                .fetch_one(&self.db.owner)
                .await?,
        )
    }

    /// Runs `op`, retrying transient lock failures with jittered exponential backoff.
    async fn with_lock_retries<T, F, Fut>(&self, what: &str, op: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let attempts = self.db.options.ddl_attempts;
        op.retry(self.backoff())
            .when(|e: &StoreError| match e {
                StoreError::Database(db) => sqlstate(db).is_some_and(is_transient_sqlstate),
                _ => false,
            })
            .notify(|e, after| {
                tracing::warn!(partition = what, error = %e, retry_in = ?after, "partition DDL retry");
            })
            .await
            .map_err(|e| match e {
                StoreError::Database(db) if sqlstate(&db).as_deref() == Some("55P03") => {
                    StoreError::LockTimeout {
                        partition: what.to_owned(),
                        attempts,
                    }
                }
                other => other,
            })
    }
}

/// Runs one DDL string. Every caller builds it only from quoted identifiers of parsed values
/// (`Slug`, `WorkspaceId`) and integers, which is what makes `AssertSqlSafe` true here.
async fn ddl(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// The hash bucket (`genesis.leads_hNN`) a workspace's rows route to, as PostgreSQL computes it.
async fn bucket_of(conn: &mut PgConnection, ws: WorkspaceId) -> Result<String, StoreError> {
    let remainder = sqlx::query_scalar!(
        r#"SELECT r AS "r!" FROM generate_series(0, $1::int - 1) AS r
           WHERE satisfies_hash_partition('genesis.leads'::regclass, $1::int, r, $2::uuid)"#,
        LEAD_BUCKETS,
        ws.as_uuid()
    )
    .fetch_one(conn)
    .await?;
    Ok(qualified(&format!("leads_h{remainder:02}")))
}

async fn lock_workspace(tx: &mut PgConnection, ws: WorkspaceId) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(PARTITION_LOCK_NS)
        .bind(ws.lock_key())
        .execute(tx)
        .await?;
    Ok(())
}
