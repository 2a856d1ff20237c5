//! The atomic handshake (spec 42.2, 42.3; DESIGN §3.2), on the database side.
//!
//! - A provisioning token (15 minutes, single use) is issued when ignition creates a droplet;
//!   only its SHA-256 is stored.
//! - The handshake consumes it with one conditional `UPDATE ... WHERE consumed_at IS NULL AND
//!   expires_at > now()`. Two racing handshakes cannot both win, and a replay finds nothing.
//!   In the same transaction it records the webhook URL and the sidecar's key, moves the
//!   droplet to `ACTIVE_HEALTHY` through its state machine (each step audited), and issues a
//!   sidecar token (30 days, hashed).
//! - A refused handshake changes nothing; the control plane writes its `HANDSHAKE_REFUSED`
//!   audit event (rate-limited per source, so a flood of bad handshakes cannot flood the
//!   audit log).
//! - Before the token is consumed, [`Database::handshake_expectation`] tells the control
//!   plane which droplet it was issued for and the address the cloud reported for it: a
//!   handshake from anywhere else is refused and the token stays unused.

use chrono::{DateTime, Duration, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{DropletEvent, DropletId, DropletState, WorkspaceId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::droplets::transition_in;
use crate::{AuditEvent, Database, Droplet, StoreError, audit::record};

/// Provisioning tokens live this long (spec 42.3).
pub const PROVISIONING_TTL: Duration = Duration::minutes(15);
/// Sidecar tokens live this long (spec 42.3).
pub const SIDECAR_TTL: Duration = Duration::days(30);

/// A fresh random token (256 bits, hex) and its hash.
pub(crate) fn new_token() -> (String, Vec<u8>) {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let hash = hash(&token);
    (token, hash)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Why a handshake was refused (the HTTP answer is 401 for all of them; the audit log says
/// which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeRefusal {
    /// No such token.
    Unknown,
    /// Used before (a replay).
    Consumed,
    /// Past its 15 minutes.
    Expired,
    /// Valid, but for another workspace or droplet than the request says.
    Mismatch,
    /// The droplet cannot become active from where it is (e.g. terminated).
    WrongState,
    /// The request names another region than the workspace's.
    WrongRegion,
    /// The request did not come from the address the cloud reports for the droplet.
    NotAttested,
    /// Too many handshakes from one address: refused before the token was looked at.
    RateLimited,
}

/// What a valid provisioning token expects of its handshake: the droplet it was issued for
/// and, once the cloud reported it, that droplet's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeExpectation {
    /// The workspace the token was issued for.
    pub workspace_id: WorkspaceId,
    /// Its droplet row.
    pub droplet_id: DropletId,
    /// The cloud's id, once the create was accepted.
    pub provider_id: Option<i64>,
    /// The public address the cloud reported, once it did.
    pub public_ipv4: Option<String>,
    /// The droplet's region.
    pub region: genesis_core::Region,
}

/// A refused handshake, as the audit log keeps it.
#[derive(Debug, Clone)]
pub struct HandshakeRefusalRecord<'a> {
    /// The workspace the request named.
    pub workspace_id: Uuid,
    /// The droplet id the request named.
    pub provider_id: i64,
    /// Why it was refused.
    pub reason: HandshakeRefusal,
    /// The address it came from.
    pub source: Option<&'a str>,
    /// Refusals from the same source not written since the last one that was (audit writes
    /// are rate-limited per source).
    pub suppressed: u64,
}

/// What the sidecar sends, as far as the database is concerned.
#[derive(Debug, Clone)]
pub struct HandshakeClaim<'a> {
    /// The raw provisioning token.
    pub provisioning_token: &'a str,
    /// The workspace the sidecar says it serves.
    pub workspace_id: Uuid,
    /// The cloud's droplet id the sidecar read from the metadata service.
    pub provider_id: i64,
    /// Where its n8n's webhooks are reachable.
    pub webhook_base_url: &'a str,
    /// Its X25519 public key (base64).
    pub sidecar_public_key: &'a str,
    /// Where the droplet's n8n reaches the sidecar's relay, when it has one.
    pub relay_url: Option<&'a str>,
}

/// A completed handshake.
#[derive(Debug, Clone)]
pub struct HandshakeDone {
    /// The raw sidecar token (returned once, stored hashed).
    pub sidecar_token: String,
    /// The droplet, now `ACTIVE_HEALTHY`.
    pub droplet: Droplet,
}

/// A valid sidecar token's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidecarIdentity {
    /// Workspace.
    pub workspace_id: WorkspaceId,
    /// Droplet.
    pub droplet_id: DropletId,
    /// When the token presented expires.
    pub expires_at: DateTime<Utc>,
}

/// A freshly issued sidecar token (the raw token is returned once; only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The raw token.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// What re-attesting a droplet needs to know of it.
#[derive(Debug, Clone)]
pub struct ReattestTarget {
    /// The droplet row.
    pub droplet: Droplet,
    /// The address the cloud reported for it, when recorded.
    pub public_ipv4: Option<String>,
    /// Its sidecar's X25519 key from the handshake: the new token is sealed to it.
    pub sidecar_public_key: Option<String>,
}

/// Inserts a sidecar token for `droplet` valid for `ttl`.
async fn sidecar_token_insert(
    tx: &mut sqlx::PgConnection,
    workspace: uuid::Uuid,
    droplet: uuid::Uuid,
    ttl: Duration,
) -> Result<IssuedToken, StoreError> {
    let (token, token_hash) = new_token();
    let expires_at = sqlx::query_scalar!(
        r#"INSERT INTO genesis.sidecar_tokens (token_hash, workspace_id, droplet_id, expires_at)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4))
           RETURNING expires_at"#,
        token_hash,
        workspace,
        droplet,
        ttl.num_milliseconds() as f64 / 1000.0,
    )
    .fetch_one(tx)
    .await?;
    Ok(IssuedToken { token, expires_at })
}

impl Database {
    /// Issues a provisioning token for `droplet`; the raw token goes into its cloud-init.
    pub async fn provisioning_token_issue(
        &self,
        workspace: WorkspaceId,
        droplet: DropletId,
        actor: &str,
    ) -> Result<String, StoreError> {
        let (token, hash) = new_token();
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.provisioning_tokens (token_hash, workspace_id, droplet_id, expires_at)
               VALUES ($1, $2, $3, now() + make_interval(secs => $4))"#,
            hash,
            workspace.as_uuid(),
            droplet.as_uuid(),
            PROVISIONING_TTL.num_seconds() as f64,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Security, "PROVISIONING_TOKEN_ISSUED")
                .workspace(workspace)
                .subject(droplet.to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Completes a handshake, issuing a sidecar token valid for `ttl` (spec 42.3: 30 days),
    /// or refuses it (the caller audits refusals).
    pub async fn handshake_complete(
        &self,
        claim: &HandshakeClaim<'_>,
        ttl: Duration,
        actor: &str,
    ) -> Result<Result<HandshakeDone, HandshakeRefusal>, StoreError> {
        let token_hash = hash(claim.provisioning_token);
        let mut tx = self.app.begin().await?;
        let consumed = sqlx::query!(
            r#"UPDATE genesis.provisioning_tokens SET consumed_at = now()
               WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > now()
               RETURNING workspace_id, droplet_id"#,
            token_hash,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let refusal = match &consumed {
            None => {
                let why = sqlx::query!(
                    r#"SELECT consumed_at IS NOT NULL AS "consumed!", expires_at <= now() AS "expired!"
                       FROM genesis.provisioning_tokens WHERE token_hash = $1"#,
                    token_hash,
                )
                .fetch_optional(&mut *tx)
                .await?;
                Some(match why {
                    None => HandshakeRefusal::Unknown,
                    Some(r) if r.consumed => HandshakeRefusal::Consumed,
                    Some(_) => HandshakeRefusal::Expired,
                })
            }
            Some(row) if row.workspace_id != claim.workspace_id => Some(HandshakeRefusal::Mismatch),
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            // Nothing was consumed (or the consumption is undone); the caller audits it.
            tx.rollback().await?;
            return Ok(Err(reason));
        }
        let Some(row) = consumed else {
            return Err(StoreError::Corrupt {
                what: "handshake",
                value: "consumed row vanished".into(),
            });
        };
        let droplet_id = DropletId::from_uuid(row.droplet_id);
        let mut droplet: Droplet = crate::droplets::fetch_in(&mut tx, droplet_id).await?;
        if droplet.provider_id.is_some_and(|p| p != claim.provider_id) {
            tx.rollback().await?;
            return Ok(Err(HandshakeRefusal::Mismatch));
        }
        // The handshake proves the droplet booted and ran its cloud-init.
        for event in [
            DropletEvent::Booted,
            DropletEvent::CloudInitFinished,
            DropletEvent::HandshakeCompleted,
        ] {
            let applies = matches!(
                (droplet.state, event),
                (DropletState::Pending, DropletEvent::Booted)
                    | (DropletState::Initializing, DropletEvent::CloudInitFinished)
                    | (
                        DropletState::HandshakePending,
                        DropletEvent::HandshakeCompleted
                    )
            );
            if applies {
                droplet = transition_in(&mut tx, &droplet, event, actor).await?;
            }
        }
        if droplet.state != DropletState::ActiveHealthy {
            tx.rollback().await?;
            return Ok(Err(HandshakeRefusal::WrongState));
        }
        sqlx::query!(
            r#"UPDATE genesis.droplets
               SET webhook_base_url = $2, sidecar_public_key = $3, provider_id = $4,
                   relay_url = $5, updated_at = now()
               WHERE id = $1"#,
            droplet_id.as_uuid(),
            claim.webhook_base_url,
            claim.sidecar_public_key,
            claim.provider_id,
            claim.relay_url,
        )
        .execute(&mut *tx)
        .await?;
        let issued = sidecar_token_insert(&mut tx, row.workspace_id, row.droplet_id, ttl).await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Security, "HANDSHAKE_COMPLETED")
                .workspace(droplet.workspace_id)
                .subject(droplet_id.to_string())
                .details(serde_json::json!({
                    "provider_id": claim.provider_id,
                    "webhook_base_url": claim.webhook_base_url,
                })),
        )
        .await?;
        tx.commit().await?;
        droplet.provider_id = Some(claim.provider_id);
        Ok(Ok(HandshakeDone {
            sidecar_token: issued.token,
            droplet,
        }))
    }

    /// Writes a `HANDSHAKE_REFUSED` audit event (the control plane decides which refusals
    /// are written: writes are rate-limited per source, and the count of those skipped goes
    /// into the next one).
    pub async fn handshake_refusal_record(
        &self,
        r: &HandshakeRefusalRecord<'_>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut event = AuditEvent::new(actor, AuditCategory::Security, "HANDSHAKE_REFUSED")
            .details(serde_json::json!({
                "reason": r.reason,
                "provider_id": r.provider_id,
                "source": r.source,
                "suppressed": r.suppressed,
            }));
        if let Ok(ws) = WorkspaceId::from_uuid(r.workspace_id) {
            event = event.workspace(ws);
        }
        self.audit_record(&event).await.map(|_| ())
    }

    /// What a still-valid provisioning token expects of its handshake; `None` for a token
    /// that is unknown, used or expired (then [`Self::handshake_complete`] says which).
    /// Reads only: nothing is consumed.
    pub async fn handshake_expectation(
        &self,
        provisioning_token: &str,
    ) -> Result<Option<HandshakeExpectation>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT t.workspace_id, t.droplet_id, d.provider_id, d.public_ipv4, d.region
               FROM genesis.provisioning_tokens t
               JOIN genesis.droplets d ON d.id = t.droplet_id
               WHERE t.token_hash = $1 AND t.consumed_at IS NULL AND t.expires_at > now()"#,
            hash(provisioning_token),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(HandshakeExpectation {
            workspace_id: WorkspaceId::from_uuid(r.workspace_id).map_err(|e| {
                StoreError::Corrupt {
                    what: "provisioning token",
                    value: e.to_string(),
                }
            })?,
            droplet_id: DropletId::from_uuid(r.droplet_id),
            provider_id: r.provider_id,
            public_ipv4: r.public_ipv4,
            region: genesis_core::Region::parse(&r.region).map_err(|e| StoreError::Corrupt {
                what: "droplet region",
                value: e.to_string(),
            })?,
        }))
    }

    /// Records the public address the cloud reported for a droplet.
    pub async fn droplet_set_address(
        &self,
        droplet: DropletId,
        public_ipv4: &str,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "UPDATE genesis.droplets SET public_ipv4 = $2 WHERE id = $1 AND public_ipv4 IS DISTINCT FROM $2",
            droplet.as_uuid(),
            public_ipv4,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// Where the droplet's n8n reaches its sidecar's relay, as its handshake reported it;
    /// `None` before the handshake or for a sidecar without one.
    pub async fn droplet_relay_url(
        &self,
        droplet: DropletId,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT relay_url FROM genesis.droplets WHERE id = $1"#,
            droplet.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .flatten())
    }

    /// What a completed handshake recorded on the droplet: its webhook base URL and its
    /// sidecar's X25519 public key; `None` until the handshake.
    pub async fn droplet_handshake_record(
        &self,
        droplet: DropletId,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT webhook_base_url, sidecar_public_key FROM genesis.droplets WHERE id = $1"#,
            droplet.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "droplet" })?;
        Ok(row.webhook_base_url.zip(row.sidecar_public_key))
    }

    /// Records a droplet's latest heartbeat (or, with `metrics`, its latest metrics report).
    pub async fn droplet_report_record(
        &self,
        droplet: DropletId,
        report: &serde_json::Value,
        metrics: bool,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"UPDATE genesis.droplets SET
                 last_heartbeat_at = CASE WHEN $3 THEN last_heartbeat_at ELSE now() END,
                 last_heartbeat = CASE WHEN $3 THEN last_heartbeat ELSE $2 END,
                 last_metrics_at = CASE WHEN $3 THEN now() ELSE last_metrics_at END,
                 last_metrics = CASE WHEN $3 THEN $2 ELSE last_metrics END
               WHERE id = $1"#,
            droplet.as_uuid(),
            report,
            metrics,
        )
        .execute(&mut *self.app.acquire().await?)
        .await?;
        Ok(())
    }

    /// When the droplet's last heartbeat arrived, and what it said.
    pub async fn droplet_last_heartbeat(
        &self,
        droplet: DropletId,
    ) -> Result<Option<(DateTime<Utc>, serde_json::Value)>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT last_heartbeat_at, last_heartbeat FROM genesis.droplets WHERE id = $1"#,
            droplet.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or(StoreError::NotFound { what: "droplet" })?;
        Ok(row.last_heartbeat_at.zip(row.last_heartbeat))
    }

    /// The owner of a valid (unexpired, unrevoked) sidecar token.
    pub async fn sidecar_token_verify(
        &self,
        token: &str,
    ) -> Result<Option<SidecarIdentity>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT workspace_id, droplet_id, expires_at FROM genesis.sidecar_tokens
               WHERE token_hash = $1 AND revoked_at IS NULL"#,
            hash(token),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?;
        Ok(row.and_then(|r| {
            let expires: DateTime<Utc> = r.expires_at;
            (expires > Utc::now()).then_some(())?;
            Some(SidecarIdentity {
                workspace_id: WorkspaceId::from_uuid(r.workspace_id).ok()?,
                droplet_id: DropletId::from_uuid(r.droplet_id),
                expires_at: expires,
            })
        }))
    }

    /// Renews a valid sidecar token near its end (spec 65.1): a new token valid for `ttl`,
    /// while the old one works until it expires. At most once per ten minutes per old token:
    /// a renewal whose answer was lost is made again on a later heartbeat, not on every one.
    /// `None` when the token is not valid or was renewed lately.
    pub async fn sidecar_token_renew(
        &self,
        token: &str,
        ttl: Duration,
        actor: &str,
    ) -> Result<Option<IssuedToken>, StoreError> {
        let mut tx = self.app.begin().await?;
        let Some(row) = sqlx::query!(
            r#"UPDATE genesis.sidecar_tokens SET renewed_at = now()
               WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()
                 AND (renewed_at IS NULL OR renewed_at < now() - interval '10 minutes')
               RETURNING workspace_id, droplet_id, expires_at"#,
            hash(token),
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        let issued = sidecar_token_insert(&mut tx, row.workspace_id, row.droplet_id, ttl).await?;
        let mut event = AuditEvent::new(actor, AuditCategory::Security, "SIDECAR_TOKEN_RENEWED")
            .subject(row.droplet_id.to_string())
            .details(serde_json::json!({
                "old_expires_at": row.expires_at,
                "expires_at": issued.expires_at,
            }));
        if let Ok(ws) = WorkspaceId::from_uuid(row.workspace_id) {
            event = event.workspace(ws);
        }
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some(issued))
    }

    /// The live droplet the cloud knows as `provider_id`, with what re-attesting it needs;
    /// `None` when there is none (or it is gone).
    pub async fn reattest_target(
        &self,
        provider_id: i64,
    ) -> Result<Option<ReattestTarget>, StoreError> {
        let droplet = match self.droplet_by_provider(provider_id).await {
            Ok(d) => d,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if droplet.state.is_final() {
            return Ok(None);
        }
        let row = sqlx::query!(
            r#"SELECT public_ipv4, sidecar_public_key FROM genesis.droplets WHERE id = $1"#,
            droplet.id.as_uuid(),
        )
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(Some(ReattestTarget {
            droplet,
            public_ipv4: row.public_ipv4,
            sidecar_public_key: row.sidecar_public_key,
        }))
    }

    /// Issues a new sidecar token to a droplet that re-attested (its old token expired):
    /// audited as `SIDECAR_REATTESTED`.
    pub async fn sidecar_token_reissue(
        &self,
        droplet: &Droplet,
        source: &str,
        ttl: Duration,
        actor: &str,
    ) -> Result<IssuedToken, StoreError> {
        let mut tx = self.app.begin().await?;
        let issued = sidecar_token_insert(
            &mut tx,
            droplet.workspace_id.as_uuid(),
            droplet.id.as_uuid(),
            ttl,
        )
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Security, "SIDECAR_REATTESTED")
                .workspace(droplet.workspace_id)
                .subject(droplet.id.to_string())
                .details(serde_json::json!({"source": source, "expires_at": issued.expires_at})),
        )
        .await?;
        tx.commit().await?;
        Ok(issued)
    }
}
