//! God Mode's operators and their sign-in sessions (spec 44, audited as spec 63.1's
//! LOGIN_SUCCESS / LOGIN_FAILED).
//!
//! This module stores and checks; it never sees a password or a session token in clear.
//! Hashing passwords (argon2id) and minting tokens is the control plane's job: the store
//! receives the PHC string and the token's SHA-256, so neither a log of its queries nor a
//! dump of its tables signs anyone in.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::support::OperatorRole;
use uuid::Uuid;

use crate::{AuditEvent, Database, StoreError, audit::record};

/// An operator as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Stable id.
    pub id: Uuid,
    /// Lower-case e-mail address; the sign-in name.
    pub email: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// What the account may do (support staff need a grant per tenant).
    pub role: OperatorRole,
}

/// A stored role code, read back; a code the check constraint let in always parses.
fn role_of(code: &str) -> Result<OperatorRole, StoreError> {
    OperatorRole::from_code(code).ok_or_else(|| StoreError::Corrupt {
        what: "operator role",
        value: code.to_owned(),
    })
}

/// What a sign-in attempt needs to check a password.
#[derive(Debug, Clone)]
pub struct OperatorCredentials {
    /// The account.
    pub operator: Operator,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled account never signs in, whatever the password.
    pub disabled: bool,
    /// The second factor's secret, sealed (see [`totp_aad`]), when one is enrolled.
    pub totp: Option<crate::Sealed>,
}

/// Associated data of an operator's sealed TOTP secret: it opens for this operator only.
pub fn totp_aad(operator: Uuid) -> Vec<u8> {
    let mut v = b"genesis-operator-totp-v1".to_vec();
    v.extend_from_slice(operator.as_bytes());
    v
}

/// A session being opened.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    /// SHA-256 of the cookie's token.
    pub token_sha256: &'a [u8; 32],
    /// Who signed in.
    pub operator: Uuid,
    /// When the session ends on its own.
    pub expires_at: DateTime<Utc>,
    /// Where the sign-in came from (an address), for the audit trail.
    pub client: Option<&'a str>,
}

fn actor(email: &str) -> String {
    format!("operator:{email}")
}

impl Database {
    /// Creates an admin operator, audited; see [`Database::operator_create_with_role`].
    pub async fn operator_create(
        &self,
        email: &str,
        password_hash: &str,
        by: &str,
    ) -> Result<Operator, StoreError> {
        self.operator_create_with_role(email, password_hash, OperatorRole::Admin, by)
            .await
    }

    /// Creates an operator with `role`, audited. `email` must already be lower case (the
    /// check constraint refuses anything else); a taken address is a
    /// [`StoreError::Conflict`].
    pub async fn operator_create_with_role(
        &self,
        email: &str,
        password_hash: &str,
        role: OperatorRole,
        by: &str,
    ) -> Result<Operator, StoreError> {
        let mut tx = self.app.begin().await?;
        let row = sqlx::query!(
            r#"INSERT INTO genesis.operators (id, email, password_hash, role) VALUES ($1, $2, $3, $4)
               ON CONFLICT (email) DO NOTHING
               RETURNING id, email, created_at"#,
            Uuid::now_v7(),
            email,
            password_hash,
            role.code(),
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Conflict {
            field: "email",
            value: email.to_owned(),
        })?;
        let mut event = AuditEvent::new(by, AuditCategory::Security, "OPERATOR_CREATED");
        event.subject = Some(row.email.clone());
        event.details = serde_json::json!({ "role": role.code() });
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Operator {
            id: row.id,
            email: row.email,
            created_at: row.created_at,
            role,
        })
    }

    /// Gives `email` the role `role`, audited (Security: ROLE_CHANGED) with the role it had.
    /// `NotFound` for an unknown address.
    pub async fn operator_set_role(
        &self,
        email: &str,
        role: OperatorRole,
        by: &str,
    ) -> Result<OperatorRole, StoreError> {
        let mut tx = self.app.begin().await?;
        let before = sqlx::query_scalar!(
            "SELECT role FROM genesis.operators WHERE email = $1 FOR UPDATE",
            email
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound { what: "operator" })?;
        sqlx::query!(
            "UPDATE genesis.operators SET role = $2 WHERE email = $1",
            email,
            role.code()
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(by, AuditCategory::Security, "ROLE_CHANGED")
                .subject(email.to_owned())
                .details(serde_json::json!({ "from": before, "to": role.code() })),
        )
        .await?;
        tx.commit().await?;
        role_of(&before)
    }

    /// The account signing in as `email` (already lower case), if there is one.
    pub async fn operator_credentials(
        &self,
        email: &str,
    ) -> Result<Option<OperatorCredentials>, StoreError> {
        sqlx::query!(
            r#"SELECT id, email, created_at, role, password_hash, disabled_at IS NOT NULL AS "disabled!",
                      totp_key_version, totp_nonce, totp_ciphertext
               FROM genesis.operators WHERE email = $1"#,
            email,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .map(|r| -> Result<OperatorCredentials, StoreError> {
            Ok(OperatorCredentials {
            operator: Operator {
                id: r.id,
                email: r.email,
                created_at: r.created_at,
                role: role_of(&r.role)?,
            },
            password_hash: r.password_hash,
            disabled: r.disabled,
            totp: match (r.totp_key_version, r.totp_nonce, r.totp_ciphertext) {
                (Some(key_version), Some(nonce), Some(ciphertext)) => Some(crate::Sealed {
                    key_version,
                    nonce,
                    ciphertext,
                }),
                _ => None,
            },
            })
        })
        .transpose()
    }

    /// Enrolls (or replaces) `email`'s second factor: `secret`, sealed with `keys`, audited
    /// OPERATOR_TOTP_ENROLLED. `NotFound` for an unknown address.
    pub async fn operator_totp_enroll(
        &self,
        keys: &crate::MasterKeys,
        email: &str,
        secret: &[u8],
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let id = sqlx::query_scalar!("SELECT id FROM genesis.operators WHERE email = $1", email)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound { what: "operator" })?;
        let sealed = keys.seal(secret, &totp_aad(id))?;
        sqlx::query!(
            r#"UPDATE genesis.operators
               SET totp_key_version = $2, totp_nonce = $3, totp_ciphertext = $4,
                   totp_last_step = NULL
               WHERE id = $1"#,
            id,
            sealed.key_version,
            sealed.nonce,
            sealed.ciphertext,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(actor, AuditCategory::Security, "OPERATOR_TOTP_ENROLLED")
                .subject(email.to_owned())
                .details(serde_json::json!({ "key_version": sealed.key_version })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses up time step `step` of `operator`'s second factor: false when a code of this
    /// step or a later one was already accepted (a replay).
    pub async fn operator_totp_use(&self, operator: Uuid, step: i64) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let used = sqlx::query!(
            r#"UPDATE genesis.operators SET totp_last_step = $2
               WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)"#,
            operator,
            step,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(used == 1)
    }

    /// Opens a session and audits LOGIN_SUCCESS in the same transaction.
    pub async fn operator_session_open(
        &self,
        session: NewSession<'_>,
        email: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.operator_sessions (token_sha256, operator_id, expires_at, client)
               VALUES ($1, $2, $3, $4)"#,
            &session.token_sha256[..],
            session.operator,
            session.expires_at,
            session.client,
        )
        .execute(&mut *tx)
        .await?;
        let mut event = AuditEvent::new(actor(email), AuditCategory::Security, "LOGIN_SUCCESS");
        event.details = serde_json::json!({ "client": session.client });
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Audits a refused sign-in (spec 63.1's LOGIN_FAILED): the address tried, from where,
    /// and why, never the password. `held_back` is how many refusals from the same source
    /// were not audited one by one before this one (the control plane's audit budget).
    pub async fn operator_login_failed(
        &self,
        email: &str,
        client: Option<&str>,
        reason: &'static str,
        held_back: u64,
    ) -> Result<(), StoreError> {
        let mut event = AuditEvent::new(actor(email), AuditCategory::Security, "LOGIN_FAILED");
        event.details = serde_json::json!({
            "client": client,
            "reason": reason,
            "held_back": held_back,
        });
        record(&mut *self.app.acquire().await?, &event).await?;
        Ok(())
    }

    /// Refused sign-ins for `email` from `source` in the current window of `window` (the
    /// brake on password guessing: per account and source, so that guesses from elsewhere
    /// do not lock the operator out).
    pub async fn sign_in_failures(
        &self,
        email: &str,
        source: &str,
        window: std::time::Duration,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar!(
            r#"SELECT failures::bigint AS "n!" FROM genesis.sign_in_failures
               WHERE email = $1 AND source = $2
                 AND window_start > now() - $3::float8 * interval '1 second'"#,
            email,
            source,
            window.as_secs_f64(),
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .unwrap_or(0))
    }

    /// Counts one refused sign-in of `email` from `source`, starting a new window when the
    /// last one has passed, and forgets pairs idle for longer than `window`.
    pub async fn sign_in_failure_note(
        &self,
        email: &str,
        source: &str,
        window: std::time::Duration,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"DELETE FROM genesis.sign_in_failures
               WHERE last_at < now() - $1::float8 * interval '1 second'"#,
            window.as_secs_f64(),
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"INSERT INTO genesis.sign_in_failures AS f (email, source, failures, window_start, last_at)
               VALUES ($1, $2, 1, now(), now())
               ON CONFLICT (email, source) DO UPDATE SET
                 failures = CASE WHEN f.window_start > now() - $3::float8 * interval '1 second'
                                 THEN f.failures + 1 ELSE 1 END,
                 window_start = CASE WHEN f.window_start > now() - $3::float8 * interval '1 second'
                                     THEN f.window_start ELSE now() END,
                 last_at = now()"#,
            email,
            source,
            window.as_secs_f64(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the refused sign-ins of `email` from `source` (after a successful one).
    pub async fn sign_in_failures_clear(
        &self,
        email: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            "DELETE FROM genesis.sign_in_failures WHERE email = $1 AND source = $2",
            email,
            source,
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// The operator a live session belongs to: neither expired, revoked, nor of a disabled
    /// account. `None` for anything else, which callers treat as "not signed in".
    pub async fn operator_session(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<Operator>, StoreError> {
        sqlx::query!(
            r#"SELECT o.id, o.email, o.created_at, o.role
               FROM genesis.operator_sessions s JOIN genesis.operators o ON o.id = s.operator_id
               WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
                 AND o.disabled_at IS NULL"#,
            &token_sha256[..],
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .map(|r| {
            Ok(Operator {
                id: r.id,
                email: r.email,
                created_at: r.created_at,
                role: role_of(&r.role)?,
            })
        })
        .transpose()
    }

    /// Ends a session (sign-out), audited as LOGOUT. False when it was not live.
    pub async fn operator_session_revoke(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let Some(email) = sqlx::query_scalar!(
            r#"UPDATE genesis.operator_sessions s SET revoked_at = now()
               FROM genesis.operators o
               WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND o.id = s.operator_id
               RETURNING o.email"#,
            &token_sha256[..],
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        record(
            &mut tx,
            &AuditEvent::new(actor(&email), AuditCategory::Security, "LOGOUT"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
