//! Tenants' accounts: the people who sign up, verify their address, sign in, and act on the
//! workspaces they are members of; their invitations and their scripts' API tokens.
//!
//! An account lives in the database of the region its owner chose (decision 81); the
//! coordinating database only claims the SHA-256 of its address (see
//! [`Database::account_claim`]). Every secret is kept as the SHA-256 of what its holder
//! has, never in clear, and every change is audited in its own transaction.

use chrono::{DateTime, Utc};
use genesis_core::audit::AuditCategory;
use genesis_core::{Region, WorkspaceId};
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{AuditEvent, record};
use crate::{Database, StoreError};

/// What a member may do in a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including inviting members and making API tokens.
    Owner,
    /// Sees and runs the workspace; cannot manage members or tokens.
    Member,
}

impl Role {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    /// The role a stored code names.
    pub fn parse(code: &str) -> Result<Self, StoreError> {
        match code {
            "owner" => Ok(Role::Owner),
            "member" => Ok(Role::Member),
            other => Err(StoreError::Corrupt {
                what: "member role",
                value: other.to_owned(),
            }),
        }
    }
}

/// A tenant's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Its id.
    pub id: Uuid,
    /// The address it signs in with (lower case).
    pub email: String,
    /// The region whose database holds it.
    pub region: String,
    /// When the address was proved (`None`: not yet; such an account cannot sign in).
    pub verified_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// How the audit log names this person.
    pub fn actor(&self) -> String {
        format!("account:{}", self.email)
    }
}

/// An account with what signing in checks.
#[derive(Debug, Clone)]
pub struct AccountCredentials {
    /// The account.
    pub account: Account,
    /// Its argon2id PHC string.
    pub password_hash: String,
    /// Disabled accounts cannot sign in.
    pub disabled: bool,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    /// Its id.
    pub id: Uuid,
    /// Lower-cased address.
    pub email: &'a str,
    /// argon2id PHC string.
    pub password_hash: &'a str,
    /// Where it lives.
    pub region: Region,
}

/// An e-mail link to record and send: the digest of its token, when it expires, and the
/// link itself (kept in the outbox until delivered: it is the message).
#[derive(Debug, Clone)]
pub struct NewLink<'a> {
    /// SHA-256 of the token the link carries.
    pub token_sha256: &'a [u8; 32],
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// The whole link, for the message.
    pub url: &'a str,
}

/// A member of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Member {
    /// The member's account.
    pub account_id: Uuid,
    /// Their address.
    pub email: String,
    /// What they may do.
    pub role: Role,
    /// Since when.
    pub added_at: DateTime<Utc>,
}

/// An invitation not yet accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PendingInvitation {
    /// Who is invited.
    pub email: String,
    /// As what.
    pub role: Role,
    /// Sent.
    pub created_at: DateTime<Utc>,
    /// Stops working.
    pub expires_at: DateTime<Utc>,
}

/// A tenant API token as its workspace lists it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TenantToken {
    /// Its id (revoking names it).
    pub id: Uuid,
    /// What its owner called it.
    pub name: String,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Last seen on a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A workspace an account is a member of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Its status code.
    pub status: String,
    /// The account's role there.
    pub role: Role,
}

/// Who adds a workspace as its first owner.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    /// The account.
    pub account: &'a Account,
}

pub(crate) fn workspace_id(u: Uuid) -> Result<WorkspaceId, StoreError> {
    WorkspaceId::from_uuid(u).map_err(|_| StoreError::Corrupt {
        what: "workspace id",
        value: u.to_string(),
    })
}

/// Writes the notification carrying an e-mail link to `recipient`, in `conn`'s transaction.
async fn notify_link(
    conn: &mut sqlx::PgConnection,
    workspace: Option<Uuid>,
    recipient: &str,
    kind: &str,
    subject: &str,
    link: &NewLink<'_>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO genesis.notifications (workspace_id, recipient, kind, subject, body)
           VALUES ($1, $2, $3, $4, $5)"#,
        workspace,
        recipient,
        kind,
        subject,
        serde_json::json!({ "link": link.url, "expires_at": link.expires_at }),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Database {
    /// Claims `email_sha256` for an account in `region` (coordinating database). False when
    /// another account, in any region, has the address.
    pub async fn account_claim(
        &self,
        email_sha256: &[u8; 32],
        region: Region,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query!(
            "INSERT INTO genesis.account_claims (email_sha256, region) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &email_sha256[..],
            region.code(),
        )
        .execute(&self.app)
        .await?
        .rows_affected()
            == 1)
    }

    /// Gives a claim back (its account could not be created).
    pub async fn account_claim_release(&self, email_sha256: &[u8; 32]) -> Result<(), StoreError> {
        sqlx::query!(
            "DELETE FROM genesis.account_claims WHERE email_sha256 = $1",
            &email_sha256[..]
        )
        .execute(&self.app)
        .await?;
        Ok(())
    }

    /// The region holding the account of `email_sha256`, if any (coordinating database).
    pub async fn account_claim_region(
        &self,
        email_sha256: &[u8; 32],
    ) -> Result<Option<Region>, StoreError> {
        let code = sqlx::query_scalar!(
            "SELECT region FROM genesis.account_claims WHERE email_sha256 = $1",
            &email_sha256[..]
        )
        .fetch_optional(&mut *self.read().await?)
        .await?;
        code.map(|c| {
            Region::parse(&c).map_err(|_| StoreError::Corrupt {
                what: "account claim region",
                value: c,
            })
        })
        .transpose()
    }

    /// Creates an unverified account with its first verification link, the message that
    /// carries it, and the audit event, in one transaction.
    pub async fn account_create(
        &self,
        new: &NewAccount<'_>,
        link: &NewLink<'_>,
    ) -> Result<Account, StoreError> {
        let mut tx = self.app.begin().await?;
        let created_at = sqlx::query_scalar!(
            r#"INSERT INTO genesis.accounts (id, email, password_hash, region)
               VALUES ($1, $2, $3, $4) RETURNING created_at"#,
            new.id,
            new.email,
            new.password_hash,
            new.region.code(),
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| crate::error::conflict_or(e, "email", new.email))?;
        let account = Account {
            id: new.id,
            email: new.email.to_owned(),
            region: new.region.code().to_owned(),
            verified_at: None,
            created_at,
        };
        insert_verification(&mut tx, &account, link).await?;
        record(
            &mut tx,
            &AuditEvent::new(account.actor(), AuditCategory::Security, "ACCOUNT_CREATED")
                .subject(account.id.to_string())
                .details(serde_json::json!({ "region": account.region })),
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Sends a fresh verification link to an unverified account, unless one was sent in the
    /// last `quiet` (a person signing in again and again gets one message, not one each).
    /// True when a link was written.
    pub async fn account_verification_resend(
        &self,
        account: &Account,
        link: &NewLink<'_>,
        quiet: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        // Serialises resends of one account, so two sign-ins at once send one link.
        sqlx::query!(
            "SELECT id FROM genesis.accounts WHERE id = $1 FOR UPDATE",
            account.id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let recent = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.account_verifications
               WHERE account_id = $1 AND created_at > now() - $2::float8 * interval '1 second'"#,
            account.id,
            quiet.as_secs_f64(),
        )
        .fetch_one(&mut *tx)
        .await?;
        if recent > 0 {
            return Ok(false);
        }
        insert_verification(&mut tx, account, link).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Uses a verification link: marks the account verified and the link spent. `None`
    /// when the link is unknown, expired or already used (callers say the same for all).
    pub async fn account_verify(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<Account>, StoreError> {
        let mut tx = self.app.begin().await?;
        let Some(id) = sqlx::query_scalar!(
            r#"UPDATE genesis.account_verifications SET used_at = now()
               WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > now()
               RETURNING account_id"#,
            &token_sha256[..],
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let account = sqlx::query_as!(
            Account,
            r#"UPDATE genesis.accounts SET verified_at = coalesce(verified_at, now())
               WHERE id = $1
               RETURNING id, email, region, verified_at, created_at"#,
            id,
        )
        .fetch_one(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(account.actor(), AuditCategory::Security, "EMAIL_VERIFIED")
                .subject(account.id.to_string()),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(account))
    }

    /// The account signing in with `email`, with its password hash.
    pub async fn account_credentials(
        &self,
        email: &str,
    ) -> Result<Option<AccountCredentials>, StoreError> {
        Ok(sqlx::query!(
            r#"SELECT id, email, region, verified_at, created_at, password_hash,
                      disabled_at IS NOT NULL AS "disabled!"
               FROM genesis.accounts WHERE email = $1"#,
            email,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .map(|r| AccountCredentials {
            account: Account {
                id: r.id,
                email: r.email,
                region: r.region,
                verified_at: r.verified_at,
                created_at: r.created_at,
            },
            password_hash: r.password_hash,
            disabled: r.disabled,
        }))
    }

    /// Opens a session for `account` (audited LOGIN_SUCCESS).
    pub async fn account_session_open(
        &self,
        account: &Account,
        token_sha256: &[u8; 32],
        expires_at: DateTime<Utc>,
        client: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        sqlx::query!(
            r#"INSERT INTO genesis.account_sessions (token_sha256, account_id, expires_at, client)
               VALUES ($1, $2, $3, $4)"#,
            &token_sha256[..],
            account.id,
            expires_at,
            client,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(account.actor(), AuditCategory::Security, "LOGIN_SUCCESS")
                .details(serde_json::json!({ "client": client, "surface": "dashboard" })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The account of a live session: not expired, not revoked, not disabled, verified.
    pub async fn account_session(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<Account>, StoreError> {
        Ok(sqlx::query_as!(
            Account,
            r#"SELECT a.id, a.email, a.region, a.verified_at, a.created_at
               FROM genesis.account_sessions s JOIN genesis.accounts a ON a.id = s.account_id
               WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
                 AND a.disabled_at IS NULL AND a.verified_at IS NOT NULL"#,
            &token_sha256[..],
        )
        .fetch_optional(&mut *self.read().await?)
        .await?)
    }

    /// Ends one session, or (with `everywhere`) every live session of its account; audited
    /// LOGOUT. Returns the sessions ended.
    pub async fn account_session_revoke(
        &self,
        account: &Account,
        token_sha256: &[u8; 32],
        everywhere: bool,
    ) -> Result<u64, StoreError> {
        let mut tx = self.app.begin().await?;
        let ended = sqlx::query!(
            r#"UPDATE genesis.account_sessions SET revoked_at = now()
               WHERE account_id = $1 AND revoked_at IS NULL AND ($3 OR token_sha256 = $2)"#,
            account.id,
            &token_sha256[..],
            everywhere,
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        record(
            &mut tx,
            &AuditEvent::new(account.actor(), AuditCategory::Security, "LOGOUT")
                .details(serde_json::json!({ "everywhere": everywhere, "sessions": ended })),
        )
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// The workspaces `account` is a member of in this database, by name.
    pub async fn account_memberships(&self, account: Uuid) -> Result<Vec<Membership>, StoreError> {
        sqlx::query!(
            r#"SELECT w.id, w.slug, w.name, w.region, w.status, m.role
               FROM genesis.workspace_members m JOIN genesis.workspaces w ON w.id = m.workspace_id
               WHERE m.account_id = $1 ORDER BY w.name, w.id"#,
            account,
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Membership {
                workspace_id: workspace_id(r.id)?,
                slug: r.slug,
                name: r.name,
                region: r.region,
                status: r.status,
                role: Role::parse(&r.role)?,
            })
        })
        .collect()
    }

    /// `account`'s role in `workspace`, or `None` when it is no member (which callers
    /// answer exactly as a workspace that does not exist).
    pub async fn member_role(
        &self,
        workspace: WorkspaceId,
        account: Uuid,
    ) -> Result<Option<Role>, StoreError> {
        sqlx::query_scalar!(
            "SELECT role FROM genesis.workspace_members WHERE workspace_id = $1 AND account_id = $2",
            workspace.as_uuid(),
            account,
        )
        .fetch_optional(&mut *self.read().await?)
        .await?
        .map(|r| Role::parse(&r))
        .transpose()
    }

    /// The members of `workspace`, owners first, then by address.
    pub async fn member_list(&self, workspace: WorkspaceId) -> Result<Vec<Member>, StoreError> {
        sqlx::query!(
            r#"SELECT account_id, email, role, added_at FROM genesis.workspace_members
               WHERE workspace_id = $1 ORDER BY role DESC, email"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Member {
                account_id: r.account_id,
                email: r.email,
                role: Role::parse(&r.role)?,
                added_at: r.added_at,
            })
        })
        .collect()
    }

    /// Invites `email` into `workspace` as `role`: the invitation, its message and the
    /// audit event in one transaction. `Conflict` when the address is already a member.
    pub async fn invitation_create(
        &self,
        workspace: WorkspaceId,
        by: &Account,
        email: &str,
        role: Role,
        link: &NewLink<'_>,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.begin().await?;
        let member = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM genesis.workspace_members
               WHERE workspace_id = $1 AND email = $2"#,
            workspace.as_uuid(),
            email,
        )
        .fetch_one(&mut *tx)
        .await?;
        if member > 0 {
            return Err(StoreError::Conflict {
                field: "email",
                value: email.to_owned(),
            });
        }
        sqlx::query!(
            r#"INSERT INTO genesis.workspace_invitations
                 (token_sha256, workspace_id, email, role, invited_by, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)"#,
            &link.token_sha256[..],
            workspace.as_uuid(),
            email,
            role.code(),
            by.id,
            link.expires_at,
        )
        .execute(&mut *tx)
        .await?;
        notify_link(
            &mut tx,
            Some(workspace.as_uuid()),
            email,
            "INVITATION",
            "You are invited to a Genesis workspace",
            link,
        )
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(by.actor(), AuditCategory::Security, "MEMBER_INVITED")
                .workspace(workspace)
                .details(serde_json::json!({ "email": email, "role": role.code() })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Invitations of `workspace` still waiting for an answer.
    pub async fn invitation_list(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<PendingInvitation>, StoreError> {
        sqlx::query!(
            r#"SELECT email, role, created_at, expires_at FROM genesis.workspace_invitations
               WHERE workspace_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
                 AND expires_at > now()
               ORDER BY created_at DESC"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?
        .into_iter()
        .map(|r| {
            Ok(PendingInvitation {
                email: r.email,
                role: Role::parse(&r.role)?,
                created_at: r.created_at,
                expires_at: r.expires_at,
            })
        })
        .collect()
    }

    /// Accepts an invitation for `account`: only the invited address can, once, before it
    /// expires. Returns the workspace joined, or `None` (unknown, expired, used, or meant
    /// for another address: callers say the same for all).
    pub async fn invitation_accept(
        &self,
        token_sha256: &[u8; 32],
        account: &Account,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        let mut tx = self.app.begin().await?;
        let Some(r) = sqlx::query!(
            r#"UPDATE genesis.workspace_invitations SET accepted_at = now()
               WHERE token_sha256 = $1 AND email = $2 AND accepted_at IS NULL
                 AND revoked_at IS NULL AND expires_at > now()
               RETURNING workspace_id, role"#,
            &token_sha256[..],
            account.email,
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let workspace = workspace_id(r.workspace_id)?;
        sqlx::query!(
            r#"INSERT INTO genesis.workspace_members (workspace_id, account_id, account_region, email, role)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"#,
            r.workspace_id,
            account.id,
            account.region,
            account.email,
            r.role,
        )
        .execute(&mut *tx)
        .await?;
        record(
            &mut tx,
            &AuditEvent::new(account.actor(), AuditCategory::Security, "MEMBER_ADDED")
                .workspace(workspace)
                .details(serde_json::json!({ "email": account.email, "role": r.role })),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(workspace))
    }

    /// Records a new API token of `workspace` (its digest), audited. `Conflict` when a live
    /// token has that name.
    pub async fn tenant_token_create(
        &self,
        workspace: WorkspaceId,
        by: &Account,
        name: &str,
        token_sha256: &[u8; 32],
    ) -> Result<TenantToken, StoreError> {
        let mut tx = self.app.begin().await?;
        let id = Uuid::now_v7();
        let created_at = sqlx::query_scalar!(
            r#"INSERT INTO genesis.tenant_api_tokens (id, workspace_id, name, token_sha256, created_by)
               VALUES ($1, $2, $3, $4, $5) RETURNING created_at"#,
            id,
            workspace.as_uuid(),
            name,
            &token_sha256[..],
            by.id,
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| crate::error::conflict_or(e, "name", name))?;
        record(
            &mut tx,
            &AuditEvent::new(by.actor(), AuditCategory::Credentials, "CREATED")
                .workspace(workspace)
                .subject(id.to_string())
                .details(serde_json::json!({ "kind": "api_token", "name": name })),
        )
        .await?;
        tx.commit().await?;
        Ok(TenantToken {
            id,
            name: name.to_owned(),
            created_at,
            last_used_at: None,
        })
    }

    /// The live API tokens of `workspace`, newest first.
    pub async fn tenant_token_list(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<TenantToken>, StoreError> {
        Ok(sqlx::query_as!(
            TenantToken,
            r#"SELECT id, name, created_at, last_used_at FROM genesis.tenant_api_tokens
               WHERE workspace_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"#,
            workspace.as_uuid(),
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Revokes token `id` of `workspace`, audited. False when there is no such live token
    /// in that workspace.
    pub async fn tenant_token_revoke(
        &self,
        workspace: WorkspaceId,
        by: &str,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let mut tx = self.app.begin().await?;
        let Some(name) = sqlx::query_scalar!(
            r#"UPDATE genesis.tenant_api_tokens SET revoked_at = now()
               WHERE id = $1 AND workspace_id = $2 AND revoked_at IS NULL RETURNING name"#,
            id,
            workspace.as_uuid(),
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        record(
            &mut tx,
            &AuditEvent::new(by, AuditCategory::Credentials, "DELETED")
                .workspace(workspace)
                .subject(id.to_string())
                .details(serde_json::json!({ "kind": "api_token", "name": name })),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The workspace and token id of a live API token, noting its use (at most once a
    /// minute, so a busy script does not write on every request).
    pub async fn tenant_token_use(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<(WorkspaceId, Uuid)>, StoreError> {
        let found = sqlx::query!(
            r#"SELECT id, workspace_id, last_used_at FROM genesis.tenant_api_tokens
               WHERE token_sha256 = $1 AND revoked_at IS NULL"#,
            &token_sha256[..],
        )
        .fetch_optional(&mut *self.read().await?)
        .await?;
        let Some(r) = found else { return Ok(None) };
        if r.last_used_at
            .is_none_or(|t| Utc::now() - t > chrono::Duration::minutes(1))
        {
            sqlx::query!(
                "UPDATE genesis.tenant_api_tokens SET last_used_at = now() WHERE id = $1",
                r.id
            )
            .execute(&self.app)
            .await?;
        }
        Ok(Some((workspace_id(r.workspace_id)?, r.id)))
    }
}

/// Adds `owner` as the first owner of `workspace`, in the transaction creating it.
pub(crate) async fn insert_owner(
    conn: &mut sqlx::PgConnection,
    workspace: WorkspaceId,
    owner: &Owner<'_>,
) -> Result<(), StoreError> {
    let a = owner.account;
    sqlx::query!(
        r#"INSERT INTO genesis.workspace_members (workspace_id, account_id, account_region, email, role)
           VALUES ($1, $2, $3, $4, 'owner')"#,
        workspace.as_uuid(),
        a.id,
        a.region,
        a.email,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_verification(
    conn: &mut sqlx::PgConnection,
    account: &Account,
    link: &NewLink<'_>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO genesis.account_verifications (token_sha256, account_id, expires_at)
           VALUES ($1, $2, $3)"#,
        &link.token_sha256[..],
        account.id,
        link.expires_at,
    )
    .execute(&mut *conn)
    .await?;
    notify_link(
        conn,
        None,
        &account.email,
        "EMAIL_VERIFICATION",
        "Confirm your e-mail address for Genesis",
        link,
    )
    .await
}
