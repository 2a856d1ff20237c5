//! Leader election for singleton loops (the zombie detector, the watchdog sweep): a session
//! advisory lock held on a dedicated connection. Two control-plane replicas never act twice:
//! only the holder runs the loop, and the lock goes with the holder's connection, so a crashed
//! leader frees it at once (PostgreSQL ends the session).
//!
//! # Caveats
//! - A leader must check [`Leadership::still_held`] before each pass: if its connection
//!   died, another replica may already lead.

use sqlx::{Connection, PgConnection};

use crate::{Database, StoreError};

/// Advisory-lock namespace of leader locks (the first key of the two-key form).
const LEADER_NS: i32 = 0x4c45_4144; // "LEAD"

/// A held leadership. Dropping it closes the connection and so releases the lock.
pub struct Leadership {
    conn: PgConnection,
    name: String,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("name", &self.name)
            .finish()
    }
}

fn key_of(name: &str) -> i32 {
    // FNV-1a: stable across builds and platforms (std's hasher is not).
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as i32
}

impl Database {
    /// Tries to become the leader of `name`; `None` when another session leads.
    pub async fn leader_try(&self, name: &str) -> Result<Option<Leadership>, StoreError> {
        let mut conn = PgConnection::connect_with(self.session_options()).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(LEADER_NS)
            .bind(key_of(name))
            .fetch_one(&mut conn)
            .await?;
        if got {
            Ok(Some(Leadership {
                conn,
                name: name.to_owned(),
            }))
        } else {
            let _ = conn.close().await;
            Ok(None)
        }
    }
}

impl Leadership {
    /// Whether the session holding the lock is alive (so the lock is still ours).
    pub async fn still_held(&mut self) -> bool {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut self.conn)
            .await
            .is_ok()
    }

    /// What is led.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A reconciler's published status, as the leader last wrote it.
#[derive(Debug, Clone)]
pub struct ReconcilerStatusRow {
    /// The reconciler.
    pub name: String,
    /// The replica that wrote it (host and process).
    pub replica: String,
    /// The status (the driver's JSON).
    pub status: serde_json::Value,
    /// When it was written.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The channel reconciler wake-ups are sent on (`NOTIFY`), so that the replica that leads
/// a reconciler hears a wake asked of any replica.
pub const WAKE_CHANNEL: &str = "genesis_reconciler_wake";

impl Database {
    /// Replaces `name`'s published status.
    pub async fn reconciler_status_put(
        &self,
        name: &str,
        replica: &str,
        status: &serde_json::Value,
    ) -> Result<(), StoreError> {
        // In a transaction: behind PgBouncer in transaction mode a statement outside one
        // may be parsed and executed on different server connections.
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.reconciler_status (name, replica, status, updated_at)
               VALUES ($1, $2, $3, now())
               ON CONFLICT (name) DO UPDATE
               SET replica = EXCLUDED.replica, status = EXCLUDED.status, updated_at = now()"#,
            name,
            replica,
            status,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every published status, by name.
    pub async fn reconciler_statuses(&self) -> Result<Vec<ReconcilerStatusRow>, StoreError> {
        Ok(sqlx::query_as!(
            ReconcilerStatusRow,
            r#"SELECT name, replica, status, updated_at FROM genesis.reconciler_status
               ORDER BY name"#
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Asks whichever replica leads `name` to run a pass now.
    pub async fn reconciler_wake(&self, name: &str) -> Result<(), StoreError> {
        // Sent at commit; in a transaction for PgBouncer's sake (see above).
        let mut tx = self.app.begin().await?;
        sqlx::query!("SELECT pg_notify($1, $2)", WAKE_CHANNEL, name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Listens for reconciler wake-ups (see [`Database::reconciler_wake`]).
    pub async fn reconciler_wakes(&self) -> Result<ReconcilerWakes, StoreError> {
        // A pool of one for the listener's own session (see `session_options`).
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(self.session_options().clone());
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await?;
        listener.listen(WAKE_CHANNEL).await?;
        Ok(ReconcilerWakes { listener })
    }
}

/// A stream of reconciler names whose wake was asked.
pub struct ReconcilerWakes {
    listener: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for ReconcilerWakes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconcilerWakes").finish_non_exhaustive()
    }
}

impl ReconcilerWakes {
    /// The next name asked to wake. After a lost connection the listener reconnects by
    /// itself (wakes sent meanwhile are lost: they are hints, the periodic pass is the
    /// guarantee).
    pub async fn next(&mut self) -> Result<String, StoreError> {
        Ok(self.listener.recv().await?.payload().to_owned())
    }
}
