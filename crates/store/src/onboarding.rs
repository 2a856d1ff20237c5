//! The wizard's progress per workspace (spec 60.1): what each stage confirmed, so a tenant
//! resumes from any device. Each stage's save, with the secrets it vaults, is one
//! transaction with its audit event.
//!
//! The wizard's secrets (the Gmail grant, AI keys) are sealed under the vault's master key
//! like the droplet's credentials, but kept in their own table: they are the tenant's
//! answers, which an ignition copies into the droplet's credentials, and which a rolled-back
//! ignition (which purges those) must not lose.

use chrono::{DateTime, Utc};
use genesis_core::WorkspaceId;
use genesis_core::audit::AuditCategory;
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
use crate::vault::{MasterKeys, Sealed};
use crate::{Database, StoreError};

/// Where a workspace's wizard stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// The brand stage's confirmed fields (a JSON object), if confirmed.
    pub brand: Option<serde_json::Value>,
    /// When the brand was confirmed.
    pub brand_confirmed_at: Option<DateTime<Utc>>,
    /// The booking stage's link and accepted warnings (a JSON object), if confirmed.
    pub booking: Option<serde_json::Value>,
    /// When the booking link was confirmed.
    pub booking_confirmed_at: Option<DateTime<Utc>>,
    /// The email stage's sender (address and name), if confirmed.
    pub email: Option<serde_json::Value>,
    /// When Gmail was connected.
    pub email_confirmed_at: Option<DateTime<Utc>>,
    /// The AI keys stage's checked providers (masked keys), if confirmed.
    pub ai_keys: Option<serde_json::Value>,
    /// When the AI keys were confirmed.
    pub ai_keys_confirmed_at: Option<DateTime<Utc>>,
    /// The DNS stage's domain, DKIM selector and public key, once a domain was chosen.
    pub dns: Option<serde_json::Value>,
    /// When DNS was seen serving every record.
    pub dns_confirmed_at: Option<DateTime<Utc>>,
}

/// A wizard stage that saves what it confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedStage {
    /// Stage 2 (spec 61.1).
    Brand,
    /// Stage 6 (spec 61.3).
    Booking,
    /// Stage 3 (spec 60.2).
    Email,
    /// Stage 4.
    AiKeys,
    /// Stage 5 (spec 61.2).
    Dns,
}

impl SavedStage {
    /// Its name in the audit log.
    pub fn code(self) -> &'static str {
        match self {
            SavedStage::Brand => "brand",
            SavedStage::Booking => "booking",
            SavedStage::Email => "email",
            SavedStage::AiKeys => "ai_keys",
            SavedStage::Dns => "dns",
        }
    }
}

impl Database {
    /// The wizard's progress for `workspace` (empty when it has not started).
    pub async fn onboarding_progress(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Progress, StoreError> {
        Ok(sqlx::query_as!(
            Progress,
            r#"SELECT brand, brand_confirmed_at, booking, booking_confirmed_at,
                      email, email_confirmed_at, ai_keys, ai_keys_confirmed_at,
                      dns, dns_confirmed_at
               FROM genesis.onboarding_progress WHERE workspace_id = $1"#,
            workspace.as_uuid(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .unwrap_or_default())
    }

    /// Confirms a stage: keeps what the tenant confirmed, sets the workspace's onboarding
    /// values the Golden Template reads (e.g. `company_name` for `YOUR_COMPANY_NAME`), seals
    /// the stage's secrets, and audits `ONBOARDING_STAGE_COMPLETED`, in one transaction.
    pub async fn onboarding_confirm(
        &self,
        workspace: WorkspaceId,
        confirmed: &Confirmation<'_>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let ws = workspace.as_uuid();
        let value = confirmed.value;
        match confirmed.stage {
            SavedStage::Brand => sqlx::query!(
                r#"INSERT INTO genesis.onboarding_progress (workspace_id, brand, brand_confirmed_at)
                   VALUES ($1, $2, now())
                   ON CONFLICT (workspace_id) DO UPDATE
                     SET brand = EXCLUDED.brand, brand_confirmed_at = now(), updated_at = now()"#,
                ws,
                value,
            )
            .execute(&mut *tx)
            .await?,
            SavedStage::Booking => sqlx::query!(
                r#"INSERT INTO genesis.onboarding_progress (workspace_id, booking, booking_confirmed_at)
                   VALUES ($1, $2, now())
                   ON CONFLICT (workspace_id) DO UPDATE
                     SET booking = EXCLUDED.booking, booking_confirmed_at = now(), updated_at = now()"#,
                ws,
                value,
            )
            .execute(&mut *tx)
            .await?,
            SavedStage::Email => sqlx::query!(
                r#"INSERT INTO genesis.onboarding_progress (workspace_id, email, email_confirmed_at)
                   VALUES ($1, $2, now())
                   ON CONFLICT (workspace_id) DO UPDATE
                     SET email = EXCLUDED.email, email_confirmed_at = now(), updated_at = now()"#,
                ws,
                value,
            )
            .execute(&mut *tx)
            .await?,
            SavedStage::AiKeys => sqlx::query!(
                r#"INSERT INTO genesis.onboarding_progress (workspace_id, ai_keys, ai_keys_confirmed_at)
                   VALUES ($1, $2, now())
                   ON CONFLICT (workspace_id) DO UPDATE
                     SET ai_keys = EXCLUDED.ai_keys, ai_keys_confirmed_at = now(), updated_at = now()"#,
                ws,
                value,
            )
            .execute(&mut *tx)
            .await?,
            SavedStage::Dns => sqlx::query!(
                r#"INSERT INTO genesis.onboarding_progress (workspace_id, dns, dns_confirmed_at)
                   VALUES ($1, $2, now())
                   ON CONFLICT (workspace_id) DO UPDATE
                     SET dns = EXCLUDED.dns, dns_confirmed_at = now(), updated_at = now()"#,
                ws,
                value,
            )
            .execute(&mut *tx)
            .await?,
        };
        let (keys, values): (Vec<&str>, Vec<&str>) = confirmed.template.iter().copied().unzip();
        let updated = sqlx::query!(
            r#"UPDATE genesis.workspaces
               SET onboarding = onboarding || COALESCE(
                       (SELECT jsonb_object_agg(k, v) FROM unnest($2::text[], $3::text[]) AS t (k, v)),
                       '{}'::jsonb),
                   version = version + 1, updated_at = now()
               WHERE id = $1"#,
            ws,
            &keys as &[&str],
            &values as &[&str],
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound { what: "workspace" });
        }
        for secret in confirmed.secrets {
            secret_put_in(&mut tx, confirmed.keys, workspace, secret).await?;
        }
        let kinds: Vec<&str> = confirmed.secrets.iter().map(|s| s.kind.code()).collect();
        record(
            &mut tx,
            &AuditEvent::new(
                actor,
                AuditCategory::Provisioning,
                "ONBOARDING_STAGE_COMPLETED",
            )
            .workspace(workspace)
            .details(serde_json::json!({ "stage": confirmed.stage.code(), "secrets": kinds })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// What a stage confirms.
pub struct Confirmation<'a> {
    /// The stage.
    pub stage: SavedStage,
    /// What the tenant confirmed (a JSON object; never a secret).
    pub value: &'a serde_json::Value,
    /// Onboarding values for the Golden Template: `(key, value)`.
    pub template: &'a [(&'a str, &'a str)],
    /// Secrets to seal (none for most stages).
    pub secrets: &'a [NewSecret<'a>],
    /// The vault's keys (used only when there are secrets).
    pub keys: Option<&'a MasterKeys>,
}

/// A kind of wizard secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The Gmail grant: n8n's `gmailOAuth2` data with the refresh token.
    Gmail,
    /// An OpenAI API key.
    OpenAi,
    /// An Anthropic API key.
    Anthropic,
    /// A Relevance AI region, project and key.
    Relevance,
    /// The sending domain's DKIM private key (PKCS#8, DER).
    Dkim,
}

impl SecretKind {
    /// Its name in the database.
    pub fn code(self) -> &'static str {
        match self {
            SecretKind::Gmail => "gmail",
            SecretKind::OpenAi => "openai",
            SecretKind::Anthropic => "anthropic",
            SecretKind::Relevance => "relevance",
            SecretKind::Dkim => "dkim",
        }
    }

    fn parse(code: &str) -> Option<Self> {
        [
            Self::Gmail,
            Self::OpenAi,
            Self::Anthropic,
            Self::Relevance,
            Self::Dkim,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// A secret to seal, in clear only in memory.
pub struct NewSecret<'a> {
    /// Which.
    pub kind: SecretKind,
    /// What a page may show of it (a masked key, an address).
    pub hint: &'a str,
    /// The secret.
    pub secret: &'a [u8],
}

/// Associated data: a sealed wizard secret opens only for its workspace and kind.
fn secret_aad(workspace: WorkspaceId, kind: SecretKind) -> Vec<u8> {
    secret_aad_of(&workspace.as_uuid(), kind.code())
}

/// [`secret_aad`] from the stored columns (the vault's rewrap reads them raw).
pub(crate) fn secret_aad_of(workspace: &uuid::Uuid, kind: &str) -> Vec<u8> {
    let mut v = b"genesis-onboarding-v1".to_vec();
    v.extend_from_slice(workspace.as_bytes());
    v.extend_from_slice(kind.as_bytes());
    v
}

async fn secret_put_in(
    conn: &mut sqlx::PgConnection,
    keys: Option<&MasterKeys>,
    workspace: WorkspaceId,
    secret: &NewSecret<'_>,
) -> Result<(), StoreError> {
    let keys = keys.ok_or(StoreError::Invalid {
        field: "vault",
        message: "no master key is configured: secrets cannot be stored".into(),
    })?;
    let keys = keys.for_region(crate::vault::workspace_region(conn, workspace).await?);
    let sealed = keys.seal(secret.secret, &secret_aad(workspace, secret.kind))?;
    sqlx::query!(
        r#"INSERT INTO genesis.onboarding_secrets
             (workspace_id, kind, hint, key_version, nonce, ciphertext)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (workspace_id, kind) DO UPDATE
           SET hint = EXCLUDED.hint, key_version = EXCLUDED.key_version, nonce = EXCLUDED.nonce,
               ciphertext = EXCLUDED.ciphertext, updated_at = now()"#,
        workspace.as_uuid(),
        secret.kind.code(),
        secret.hint,
        sealed.key_version,
        &sealed.nonce[..],
        sealed.ciphertext,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An OAuth authorization in flight, as the callback finds it.
#[derive(Debug, Clone)]
pub struct OAuthFlow {
    /// The workspace being set up.
    pub workspace: WorkspaceId,
    /// Who started it (the callback must come from the same account).
    pub account: Uuid,
    /// The sender's name, typed before leaving.
    pub sender_name: String,
    /// The PKCE verifier, opened.
    pub verifier: String,
}

/// What the callback's `state` found.
#[derive(Debug, Clone)]
pub enum FlowTake {
    /// A flow not used before and not expired; now used.
    Fresh(OAuthFlow),
    /// Used already (a replayed callback).
    Used,
    /// Too old.
    Expired,
    /// No such state.
    Unknown,
}

pub(crate) fn flow_aad(state_sha256: &[u8]) -> Vec<u8> {
    let mut v = b"genesis-oauth-flow-v1".to_vec();
    v.extend_from_slice(state_sha256);
    v
}

impl Database {
    /// Opens and answers a wizard secret of `workspace`, if one is stored.
    pub async fn onboarding_secret(
        &self,
        keys: &MasterKeys,
        workspace: WorkspaceId,
        kind: SecretKind,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query!(
            r#"SELECT key_version, nonce, ciphertext FROM genesis.onboarding_secrets
               WHERE workspace_id = $1 AND kind = $2"#,
            workspace.as_uuid(),
            kind.code(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|r| {
            keys.open(
                &Sealed {
                    key_version: r.key_version,
                    nonce: r.nonce,
                    ciphertext: r.ciphertext,
                },
                &secret_aad(workspace, kind),
            )
        })
        .transpose()
    }

    /// The kinds of wizard secrets `workspace` holds, each with what may be shown of it.
    pub async fn onboarding_secret_hints(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<(SecretKind, String)>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT kind, hint FROM genesis.onboarding_secrets
               WHERE workspace_id = $1 ORDER BY kind"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| SecretKind::parse(&r.kind).map(|k| (k, r.hint)))
            .collect())
    }

    /// Chooses the DNS stage's domain (stage 5): keeps `plan` (domain, selector, public key)
    /// unconfirmed and seals the DKIM private key, replacing an earlier choice, in one
    /// transaction with its audit event.
    pub async fn onboarding_dns_plan(
        &self,
        keys: &MasterKeys,
        workspace: WorkspaceId,
        plan: &serde_json::Value,
        dkim_private: &NewSecret<'_>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.onboarding_progress (workspace_id, dns, dns_confirmed_at)
               VALUES ($1, $2, NULL)
               ON CONFLICT (workspace_id) DO UPDATE
                 SET dns = EXCLUDED.dns, dns_confirmed_at = NULL, updated_at = now()"#,
            workspace.as_uuid(),
            plan,
        )
        .execute(&mut *tx)
        .await?;
        secret_put_in(&mut tx, Some(keys), workspace, dkim_private).await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Provisioning, "ONBOARDING_DNS_PLANNED")
                .workspace(workspace)
                .details(serde_json::json!({
                    "domain": plan["domain"], "selector": plan["selector"]
                })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records an OAuth authorization about to leave for the provider, for `ttl`.
    #[allow(
        clippy::too_many_arguments,
        reason = "each argument is one column of the row"
    )]
    pub async fn oauth_flow_open(
        &self,
        keys: &MasterKeys,
        state_sha256: &[u8; 32],
        workspace: WorkspaceId,
        account: Uuid,
        sender_name: &str,
        verifier: &str,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut conn = self.app.acquire().await?;
        let keys = keys.for_region(crate::vault::workspace_region(&mut conn, workspace).await?);
        let sealed = keys.seal(verifier.as_bytes(), &flow_aad(state_sha256))?;
        // Flows nobody came back from are only clutter once expired.
        sqlx::query!("DELETE FROM genesis.oauth_flows WHERE expires_at < now() - interval '1 day'")
            .execute(&mut *conn)
            .await?;
        sqlx::query!(
            r#"INSERT INTO genesis.oauth_flows
                 (state_sha256, workspace_id, account_id, sender_name, provider,
                  key_version, nonce, verifier, expires_at)
               VALUES ($1, $2, $3, $4, 'google', $5, $6, $7,
                       now() + make_interval(secs => $8::bigint / 1000.0))"#,
            &state_sha256[..],
            workspace.as_uuid(),
            account,
            sender_name,
            sealed.key_version,
            &sealed.nonce[..],
            sealed.ciphertext,
            ttl_ms,
        )
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Takes the flow `state_sha256` names: marks it used, once.
    pub async fn oauth_flow_take(
        &self,
        keys: &MasterKeys,
        state_sha256: &[u8; 32],
    ) -> Result<FlowTake, StoreError> {
        let taken = sqlx::query!(
            r#"UPDATE genesis.oauth_flows SET used_at = now()
               WHERE state_sha256 = $1 AND used_at IS NULL AND expires_at > now()
               RETURNING workspace_id, account_id, sender_name, key_version, nonce, verifier"#,
            &state_sha256[..],
        )
        .fetch_optional(&mut *self.app.acquire().await?)
        .await?;
        if let Some(r) = taken {
            let verifier = keys.open(
                &Sealed {
                    key_version: r.key_version,
                    nonce: r.nonce,
                    ciphertext: r.verifier,
                },
                &flow_aad(state_sha256),
            )?;
            return Ok(FlowTake::Fresh(OAuthFlow {
                workspace: crate::accounts::workspace_id(r.workspace_id)?,
                account: r.account_id,
                sender_name: r.sender_name,
                verifier: String::from_utf8(verifier).map_err(|_| StoreError::Corrupt {
                    what: "PKCE verifier",
                    value: "not UTF-8".into(),
                })?,
            }));
        }
        let seen = sqlx::query!(
            r#"SELECT used_at IS NOT NULL AS "used!" FROM genesis.oauth_flows
               WHERE state_sha256 = $1"#,
            &state_sha256[..],
        )
        .fetch_optional(&mut *self.app.acquire().await?)
        .await?;
        Ok(match seen {
            None => FlowTake::Unknown,
            Some(r) if r.used => FlowTake::Used,
            Some(_) => FlowTake::Expired,
        })
    }
}
