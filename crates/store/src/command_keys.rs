//! The stored command-key ring (spec 65.1, migration 0039): the keys that sign commands to
//! sidecars, sealed under the vault, and the steps of a rotation, each one transaction so a
//! control plane killed between two of them resumes from what is written here. Every time
//! is the caller's clock (a test compresses 90 days into a jump), never the database's.
//!
//! - [`Database::command_key_begin`] adds the NEXT key (and, the first time, stores the key
//!   the configuration gave as ACTIVE, so its age counts and a restart finds it).
//! - [`Database::command_key_laggards`] lists the droplets whose latest heartbeat does not
//!   report a key id.
//! - [`Database::command_key_switch`] makes NEXT active and retires the old key, with the
//!   droplets that never confirmed, audited (Credentials: COMMAND_KEY_ROTATED).

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletId, DropletState, WorkspaceId};
use serde::Serialize;

use crate::audit::{AuditEvent, record};
use crate::vault::Sealed;
use crate::{Database, StoreError};

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandKeyState {
    /// Being delivered to sidecars; signs nothing yet.
    Next,
    /// Signs every command.
    Active,
    /// Signs nothing; sidecars are told to drop it.
    Retired,
}

impl CommandKeyState {
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "NEXT" => Ok(Self::Next),
            "ACTIVE" => Ok(Self::Active),
            "RETIRED" => Ok(Self::Retired),
            other => Err(StoreError::Corrupt {
                what: "command key state",
                value: other.into(),
            }),
        }
    }
}

/// One stored key.
#[derive(Debug, Clone)]
pub struct StoredCommandKey {
    /// Its id (`kid`).
    pub kid: String,
    /// Its public half, base64.
    pub public_key: String,
    /// Its secret, sealed (see [`command_key_aad`]).
    pub sealed: Sealed,
    /// Its state.
    pub state: CommandKeyState,
    /// When the rotation that brought it began.
    pub created_at: DateTime<Utc>,
    /// When it began to sign.
    pub activated_at: Option<DateTime<Utc>>,
    /// When it stopped.
    pub retired_at: Option<DateTime<Utc>>,
    /// At its switch, the droplets that had not confirmed it.
    pub unconfirmed: Option<serde_json::Value>,
}

/// A key to store: its id, public half and sealed secret.
#[derive(Debug, Clone)]
pub struct NewCommandKey {
    /// Its id.
    pub kid: String,
    /// Its public half, base64.
    pub public_key: String,
    /// Its secret, sealed with [`command_key_aad`].
    pub sealed: Sealed,
}

/// A droplet whose sidecar has not reported a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyLaggard {
    /// The droplet.
    pub droplet: DropletId,
    /// Its tenant.
    pub workspace: WorkspaceId,
    /// The cloud's id.
    pub provider_id: Option<i64>,
    /// Its state now.
    pub state: DropletState,
}

impl KeyLaggard {
    /// Whether the droplet should be heartbeating now: an awake droplet holds a rotation
    /// back, a sleeping one is reported and catches up when it wakes.
    pub fn awake(&self) -> bool {
        matches!(
            self.state,
            DropletState::ActiveHealthy
                | DropletState::ActiveDegraded
                | DropletState::DriftDetected
                | DropletState::Maintenance
        )
    }
}

/// Associated data of a sealed command key: it opens only as the key it claims to be.
pub fn command_key_aad(kid: &str) -> Vec<u8> {
    let mut v = b"genesis-command-key-v1".to_vec();
    v.extend_from_slice(kid.as_bytes());
    v
}

impl Database {
    /// Every stored key that is not retired, and the last few that are, newest first.
    pub async fn command_keys(&self) -> Result<Vec<StoredCommandKey>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT kid, public_key, key_version, nonce, ciphertext, state, created_at,
                      activated_at, retired_at, unconfirmed
               FROM genesis.command_keys
               ORDER BY (state = 'RETIRED'), created_at DESC
               LIMIT 8"#,
        )
        .fetch_all(&self.app)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StoredCommandKey {
                    state: CommandKeyState::parse(&r.state)?,
                    kid: r.kid,
                    public_key: r.public_key,
                    sealed: Sealed {
                        key_version: r.key_version,
                        nonce: r.nonce,
                        ciphertext: r.ciphertext,
                    },
                    created_at: r.created_at,
                    activated_at: r.activated_at,
                    retired_at: r.retired_at,
                    unconfirmed: r.unconfirmed,
                })
            })
            .collect()
    }

    /// Stores `key` as the active key if none is stored yet (the configuration's key, so
    /// that its age counts from now); answers whether it was stored. Audited
    /// (Credentials: COMMAND_KEY_ADOPTED).
    pub async fn command_key_adopt(
        &self,
        key: &NewCommandKey,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let stored = insert(&mut tx, key, "ACTIVE", at).await?;
        if stored {
            record(
                &mut tx,
                &AuditEvent::new(actor, AuditCategory::Credentials, "COMMAND_KEY_ADOPTED")
                    .details(serde_json::json!({ "kid": key.kid })),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Begins a rotation: `next` is stored as the next key, and `adopt` (the key in use,
    /// when none is stored yet) as the active one, in one transaction. Answers false, and
    /// changes nothing, when a rotation is already under way. Audited (Credentials:
    /// COMMAND_KEY_ROTATION_STARTED).
    pub async fn command_key_begin(
        &self,
        adopt: Option<&NewCommandKey>,
        next: &NewCommandKey,
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        if let Some(active) = adopt {
            insert(&mut tx, active, "ACTIVE", at).await?;
        }
        if !insert(&mut tx, next, "NEXT", at).await? {
            return Ok(false);
        }
        record(
            &mut tx,
            &AuditEvent::new(
                actor,
                AuditCategory::Credentials,
                "COMMAND_KEY_ROTATION_STARTED",
            )
            .details(serde_json::json!({ "kid": next.kid })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Ends a rotation: the next key `kid` signs from now on and the active one is retired,
    /// with `unconfirmed` (the droplets that never reported `kid`) kept beside it. Answers
    /// false, changing nothing, when `kid` is not the next key (another process switched
    /// first). Audited (Credentials: COMMAND_KEY_ROTATED).
    pub async fn command_key_switch(
        &self,
        kid: &str,
        unconfirmed: &[KeyLaggard],
        at: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let retired = sqlx::query_scalar!(
            r#"UPDATE genesis.command_keys SET state = 'RETIRED', retired_at = $1
               WHERE state = 'ACTIVE' RETURNING kid"#,
            at,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let report = serde_json::to_value(unconfirmed).unwrap_or_default();
        let switched = sqlx::query!(
            r#"UPDATE genesis.command_keys
               SET state = 'ACTIVE', activated_at = $3, unconfirmed = $2
               WHERE kid = $1 AND state = 'NEXT'"#,
            kid,
            report,
            at,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if switched != 1 {
            return Ok(false);
        }
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Credentials, "COMMAND_KEY_ROTATED").details(
                serde_json::json!({
                    "kid": kid,
                    "retired": retired,
                    "unconfirmed": unconfirmed.len(),
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The droplets of this database whose sidecar has a token but whose latest heartbeat
    /// does not report trusting key `kid`.
    pub async fn command_key_laggards(&self, kid: &str) -> Result<Vec<KeyLaggard>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT id, workspace_id, provider_id, state FROM genesis.droplets
               WHERE state NOT IN ('PENDING', 'INITIALIZING', 'HANDSHAKE_PENDING', 'FAILED',
                                   'ORPHAN', 'TERMINATED')
                 AND NOT coalesce(last_heartbeat->'command_key_ids' ? $1, false)
               ORDER BY created_at"#,
            kid,
        )
        .fetch_all(&self.app)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(KeyLaggard {
                    droplet: DropletId::from_uuid(r.id),
                    workspace: crate::accounts::workspace_id(r.workspace_id)?,
                    provider_id: r.provider_id,
                    state: DropletState::from_code(&r.state).ok_or(StoreError::Corrupt {
                        what: "droplet state",
                        value: r.state.clone(),
                    })?,
                })
            })
            .collect()
    }
}

/// Inserts `key` in `state` at `at` unless the one key allowed in that state exists (or
/// the key itself does); answers whether it was inserted.
async fn insert(
    tx: &mut sqlx::PgConnection,
    key: &NewCommandKey,
    state: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let activated = state == "ACTIVE";
    let n = sqlx::query!(
        r#"INSERT INTO genesis.command_keys
               (kid, public_key, key_version, nonce, ciphertext, state, created_at, activated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $8::timestamptz, CASE WHEN $7 THEN $8::timestamptz END)
           ON CONFLICT DO NOTHING"#,
        key.kid,
        key.public_key,
        key.sealed.key_version,
        key.sealed.nonce,
        key.sealed.ciphertext,
        state,
        activated,
        at,
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}
