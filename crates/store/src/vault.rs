//! The credential vault (issue 6, minimal): a tenant's credentials (OAuth tokens, API keys)
//! encrypted at rest with AES-256-GCM under a versioned master key from configuration.
//!
//! # Guarantees
//! - The database holds only ciphertext, a random 96-bit nonce and the key version.
//! - The ciphertext is bound to its workspace and credential id as associated data: a row
//!   copied to another tenant, or swapped with another credential, does not decrypt.
//! - Rotation: new writes use the current key; rows under older versions keep decrypting as
//!   long as their key is configured. Re-encrypting them is a later job.
//! - The plaintext leaves this module only to be sealed to a sidecar's key (never logged,
//!   never audited: audit events name the credential, not its content).

use genesis_core::audit::AuditCategory;
use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use chrono::{DateTime, Utc};
use genesis_core::{Region, WorkspaceId};
use uuid::Uuid;

use crate::{AuditEvent, Database, StoreError, audit::record};

/// The master keys: version → 32-byte key. `Debug` never shows them.
///
/// # Regions (spec 62.2)
/// The fleet's ring (`[vault]`) seals what belongs to no tenant: operators' TOTP secrets and
/// the command-signing keys. A region may have its own ring (`[vault.regions.<code>]`); a
/// tenant's secrets are then sealed under its region's current key, never the fleet's or
/// another region's, so that the key that opens an EU tenant's credentials can be held (and
/// destroyed) apart from the others. A region without a ring of its own uses the fleet's.
///
/// Versions are unique across all rings, so a row's `key_version` names exactly one key and
/// a row moves from the fleet's ring to its region's by an ordinary rewrap
/// (`genesis vault rotate`). [`MasterKeys::for_region`] narrows the keys to one region: they
/// then seal under that region's current version and refuse to open another region's rows.
#[derive(Clone)]
pub struct MasterKeys {
    /// The version this view seals under: the fleet's, or its region's once narrowed.
    current: u32,
    /// The fleet's current version.
    fleet_current: u32,
    /// Every version of every ring.
    keys: BTreeMap<u32, [u8; 32]>,
    /// Each region's own current version, for regions that have a ring.
    region_current: BTreeMap<Region, u32>,
    /// The versions that belong to a region's ring (the rest are the fleet's).
    owner: BTreeMap<u32, Region>,
    /// The region this view is narrowed to, if any.
    scope: Option<Region>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeys")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("regions", &self.region_current)
            .field("scope", &self.scope)
            .finish()
    }
}

impl MasterKeys {
    /// The fleet's keys by version; new writes use `current`, which must be among them.
    pub fn new(current: u32, keys: BTreeMap<u32, [u8; 32]>) -> Result<Self, StoreError> {
        if !keys.contains_key(&current) {
            return Err(StoreError::Invalid {
                field: "vault.current",
                message: format!("no key with version {current}"),
            });
        }
        Ok(Self {
            current,
            fleet_current: current,
            keys,
            region_current: BTreeMap::new(),
            owner: BTreeMap::new(),
            scope: None,
        })
    }

    /// Adds `region`'s own ring: its tenants' secrets are sealed under `current` from now on.
    /// Its versions must not be used by any other ring.
    pub fn with_region(
        mut self,
        region: Region,
        current: u32,
        keys: BTreeMap<u32, [u8; 32]>,
    ) -> Result<Self, StoreError> {
        let field = "vault.regions";
        if !keys.contains_key(&current) {
            return Err(StoreError::Invalid {
                field,
                message: format!("region {region} has no key with version {current}"),
            });
        }
        if self.region_current.contains_key(&region) {
            return Err(StoreError::Invalid {
                field,
                message: format!("region {region} is given two key rings"),
            });
        }
        for (version, key) in keys {
            if self.keys.contains_key(&version) {
                return Err(StoreError::Invalid {
                    field,
                    message: format!(
                        "key version {version} of region {region} is already used by another \
                         ring: versions must be unique across the fleet and every region"
                    ),
                });
            }
            self.keys.insert(version, key);
            self.owner.insert(version, region);
        }
        self.region_current.insert(region, current);
        Ok(self)
    }

    /// These keys as one region's tenants use them: sealing under the region's current
    /// version (the fleet's, if the region has no ring), and opening the region's and the
    /// fleet's versions only.
    pub fn for_region(&self, region: Region) -> MasterKeys {
        MasterKeys {
            current: self
                .region_current
                .get(&region)
                .copied()
                .unwrap_or(self.fleet_current),
            scope: Some(region),
            ..self.clone()
        }
    }

    /// The version new secrets are sealed under (in this view).
    pub fn current(&self) -> u32 {
        self.current
    }

    /// Every configured version.
    pub fn versions(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// The regions that have a ring of their own, with their current version.
    pub fn regional_currents(&self) -> Vec<(Region, u32)> {
        self.region_current.iter().map(|(r, v)| (*r, *v)).collect()
    }

    /// `sealed` under the current key, if it is not already: the same secret and
    /// associated data, a fresh nonce.
    pub fn rewrap(&self, sealed: &Sealed, aad: &[u8]) -> Result<Option<Sealed>, StoreError> {
        if u32::try_from(sealed.key_version).ok() == Some(self.current) {
            return Ok(None);
        }
        let plain = self.open(sealed, aad)?;
        Ok(Some(self.seal(&plain, aad)?))
    }

    fn cipher(&self, version: u32) -> Result<Aes256Gcm, StoreError> {
        let key = self.keys.get(&version).ok_or(StoreError::Invalid {
            field: "vault key version",
            message: format!("key version {version} is not configured"),
        })?;
        if let (Some(scope), Some(owner)) = (self.scope, self.owner.get(&version))
            && *owner != scope
        {
            return Err(StoreError::Invalid {
                field: "vault key version",
                message: format!("key version {version} belongs to region {owner}, not to {scope}"),
            });
        }
        Ok(Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key)))
    }
}

/// A secret sealed under a master key: what the database stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The master key's version.
    pub key_version: i32,
    /// The random 96-bit nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

impl MasterKeys {
    /// Encrypts `secret` under the current key, bound to `aad` (it opens only with the same).
    pub fn seal(&self, secret: &[u8], aad: &[u8]) -> Result<Sealed, StoreError> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher(self.current)?
            .encrypt(&Nonce::from(nonce), Payload { msg: secret, aad })
            .map_err(|_| StoreError::Invalid {
                field: "secret",
                message: "encryption failed".into(),
            })?;
        Ok(Sealed {
            key_version: self.current as i32,
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts what [`MasterKeys::seal`] made with the same `aad`.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; 12] =
            sealed
                .nonce
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt {
                    what: "sealed secret nonce",
                    value: format!("{} bytes", sealed.nonce.len()),
                })?;
        self.cipher(u32::try_from(sealed.key_version).unwrap_or(u32::MAX))?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| StoreError::Corrupt {
                what: "sealed secret",
                value: "does not decrypt (wrong key or tampered)".into(),
            })
    }
}

/// Associated data: the ciphertext only opens for this workspace and credential.
pub fn aad(workspace: WorkspaceId, credential: Uuid) -> Vec<u8> {
    let mut v = b"genesis-vault-v1".to_vec();
    v.extend_from_slice(workspace.as_uuid().as_bytes());
    v.extend_from_slice(credential.as_bytes());
    v
}

/// A credential whose latest version has not reached its droplet's n8n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCredential {
    /// The tenant.
    pub workspace: WorkspaceId,
    /// The credential's vault id.
    pub credential: Uuid,
    /// Its n8n name.
    pub name: String,
    /// Since when it waits.
    pub since: DateTime<Utc>,
}

/// A decrypted credential.
#[derive(Clone)]
pub struct VaultCredential {
    /// Credential type (n8n's, e.g. `openAiApi`).
    pub kind: String,
    /// Display name.
    pub name: String,
    /// The secret (JSON, as n8n takes it).
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for VaultCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultCredential")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// The region of `workspace`: the key ring its secrets are sealed under
    /// ([`MasterKeys::for_region`]).
    pub async fn workspace_region(&self, workspace: WorkspaceId) -> Result<Region, StoreError> {
        workspace_region(&mut *self.app.acquire().await?, workspace).await
    }

    /// Stores (or replaces) a credential, encrypted under the current key.
    #[allow(
        clippy::too_many_arguments,
        reason = "each argument is one column of the row"
    )]
    pub async fn vault_put(
        &self,
        keys: &MasterKeys,
        workspace: WorkspaceId,
        credential: Uuid,
        kind: &str,
        name: &str,
        secret: &[u8],
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let plain = VaultPlaintext {
            credential,
            kind,
            name,
            secret,
        };
        vault_put_in(&mut tx, keys, workspace, &plain, actor).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reads and decrypts a credential.
    pub async fn vault_get(
        &self,
        keys: &MasterKeys,
        workspace: WorkspaceId,
        credential: Uuid,
    ) -> Result<VaultCredential, StoreError> {
        let row = sqlx::query!(
            r#"SELECT kind, name, key_version, nonce, ciphertext FROM genesis.vault_credentials
               WHERE workspace_id = $1 AND credential_id = $2"#,
            workspace.as_uuid(),
            credential,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "credential" })?;
        let nonce: [u8; 12] = row
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt {
                what: "vault nonce",
                value: format!("{} bytes", row.nonce.len()),
            })?;
        let secret = keys
            .cipher(row.key_version as u32)?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &row.ciphertext,
                    aad: &aad(workspace, credential),
                },
            )
            .map_err(|_| StoreError::Corrupt {
                what: "vault ciphertext",
                value: "does not authenticate for this workspace and credential".into(),
            })?;
        Ok(VaultCredential {
            kind: row.kind,
            name: row.name,
            secret,
        })
    }

    /// [`Self::vault_get`] for a use of the secret (sending it to the tenant's n8n), which
    /// the audit log records (spec 63.1, Credentials: ACCESSED) with who read it and why;
    /// never the secret. The record is written before the secret is handed back: a read the
    /// log cannot record does not happen.
    pub async fn vault_use(
        &self,
        keys: &MasterKeys,
        workspace: WorkspaceId,
        credential: Uuid,
        actor: &str,
        purpose: &str,
    ) -> Result<VaultCredential, StoreError> {
        let found = self.vault_get(keys, workspace, credential).await?;
        self.audit_record(
            &AuditEvent::new(actor, AuditCategory::Credentials, "ACCESSED")
                .workspace(workspace)
                .subject(credential.to_string())
                .details(serde_json::json!({
                    "kind": found.kind,
                    "name": found.name,
                    "purpose": purpose,
                })),
        )
        .await?;
        Ok(found)
    }

    /// Notes that credential `credential`'s latest version has not reached the droplet's
    /// n8n yet; answers the mark's time (pass it to [`Self::vault_mark_applied`]).
    pub async fn vault_mark_pending(
        &self,
        workspace: WorkspaceId,
        credential: Uuid,
    ) -> Result<DateTime<Utc>, StoreError> {
        sqlx::query_scalar!(
            r#"UPDATE genesis.vault_credentials SET apply_pending_since = now()
               WHERE workspace_id = $1 AND credential_id = $2
               RETURNING apply_pending_since AS "since!""#,
            workspace.as_uuid(),
            credential,
        )
        .fetch_optional(&self.app)
        .await?
        .ok_or(StoreError::NotFound { what: "credential" })
    }

    /// Clears the mark set at `since` or before: the droplet confirmed the version read
    /// after it. A newer mark (another update meanwhile) stays.
    pub async fn vault_mark_applied(
        &self,
        workspace: WorkspaceId,
        credential: Uuid,
        since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.vault_credentials SET apply_pending_since = NULL
               WHERE workspace_id = $1 AND credential_id = $2 AND apply_pending_since <= $3"#,
            workspace.as_uuid(),
            credential,
            since,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// Up to `limit` credentials whose latest version waits for a droplet that serves
    /// again, oldest first.
    pub async fn vault_pending_on_serving(
        &self,
        limit: i64,
    ) -> Result<Vec<PendingCredential>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT v.workspace_id, v.credential_id, v.name,
                      v.apply_pending_since AS "since!"
               FROM genesis.vault_credentials v
               WHERE v.apply_pending_since IS NOT NULL
                 AND EXISTS (SELECT 1 FROM genesis.droplets d
                             WHERE d.workspace_id = v.workspace_id
                               AND d.state IN ('ACTIVE_HEALTHY', 'ACTIVE_DEGRADED', 'DRIFT_DETECTED'))
               ORDER BY v.apply_pending_since
               LIMIT $1"#,
            limit,
        )
        .fetch_all(&self.app)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PendingCredential {
                    workspace: crate::accounts::workspace_id(r.workspace_id)?,
                    credential: r.credential_id,
                    name: r.name,
                    since: r.since,
                })
            })
            .collect()
    }

    /// The ids of a workspace's stored credentials (no secrets), in id order.
    pub async fn vault_ids(&self, workspace: WorkspaceId) -> Result<Vec<Uuid>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT credential_id FROM genesis.vault_credentials
               WHERE workspace_id = $1 ORDER BY credential_id"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Deletes every credential and every workspace token of a workspace (ignition rollback,
    /// tenant deletion); returns how many credentials.
    pub async fn vault_delete_workspace(
        &self,
        workspace: WorkspaceId,
        actor: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.app.begin().await?;
        let n = sqlx::query!(
            "DELETE FROM genesis.vault_credentials WHERE workspace_id = $1",
            workspace.as_uuid(),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let tokens = crate::workspace_tokens::workspace_tokens_delete(&mut tx, workspace).await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Credentials, "VAULT_WORKSPACE_PURGED")
                .workspace(workspace)
                .details(serde_json::json!({"credentials": n, "tokens": tokens})),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// A credential to store, in clear (it lives only in memory until encrypted).
pub struct VaultPlaintext<'a> {
    /// Its id (chosen by the caller, so retries overwrite instead of duplicating).
    pub credential: Uuid,
    /// n8n credential type.
    pub kind: &'a str,
    /// Display name.
    pub name: &'a str,
    /// The secret JSON.
    pub secret: &'a [u8],
}

/// Encrypts and upserts one credential inside the caller's transaction, audited there.
pub(crate) async fn vault_put_in(
    conn: &mut sqlx::PgConnection,
    keys: &MasterKeys,
    workspace: WorkspaceId,
    plain: &VaultPlaintext<'_>,
    actor: &str,
) -> Result<(), StoreError> {
    let keys = keys.for_region(workspace_region(conn, workspace).await?);
    let sealed = keys.seal(plain.secret, &aad(workspace, plain.credential))?;
    sqlx::query!(
        r#"INSERT INTO genesis.vault_credentials
             (workspace_id, credential_id, kind, name, key_version, nonce, ciphertext)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (workspace_id, credential_id) DO UPDATE
           SET kind = EXCLUDED.kind, name = EXCLUDED.name, key_version = EXCLUDED.key_version,
               nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, updated_at = now()"#,
        workspace.as_uuid(),
        plain.credential,
        plain.kind,
        plain.name,
        sealed.key_version,
        &sealed.nonce[..],
        sealed.ciphertext,
    )
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        &AuditEvent::new(actor, AuditCategory::Credentials, "VAULT_CREDENTIAL_STORED")
            .workspace(workspace)
            .subject(plain.credential.to_string())
            .details(serde_json::json!({"kind": plain.kind, "key_version": keys.current})),
    )
    .await?;
    Ok(())
}

/// The region of `workspace`, whose ring seals its secrets (spec 62.2). Read inside the
/// writer's transaction, so that no caller can seal a tenant's secret under the wrong ring.
pub(crate) async fn workspace_region(
    conn: &mut sqlx::PgConnection,
    workspace: WorkspaceId,
) -> Result<Region, StoreError> {
    let code = sqlx::query_scalar!(
        "SELECT region FROM genesis.workspaces WHERE id = $1",
        workspace.as_uuid()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound { what: "workspace" })?;
    Region::parse(&code).map_err(|_| StoreError::Corrupt {
        what: "workspace region",
        value: code,
    })
}
