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
        let mut conn = PgConnection::connect_with(&self.options.app).await?;
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
