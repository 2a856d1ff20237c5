//! What a tenant may reach: its own workspaces, their members and invitations, and the API
//! tokens of its scripts.
//!
//! Every tenant route names a workspace and goes through [`access`] first. A workspace the
//! caller is not a member of answers exactly as one that does not exist (404), whatever
//! the reason (another tenant's, a token of another workspace, a malformed id), so the
//! answers say nothing about what exists. Owners manage members and tokens; members and
//! API tokens use the workspace (a leaked script token cannot mint more tokens).

use genesis_core::{Region, WorkspaceId};
use genesis_store::accounts::{NewLink, Owner};
use genesis_store::{
    Account, Database, Member, Membership, PendingInvitation, Role, TenantToken, Workspace,
};
use uuid::Uuid;

use crate::app::accounts::{INVITE_TTL, RegionToken};
use crate::{AppState, Problem};

/// The prefix of tenant API tokens (`gt_eu-west.…`): recognisable in a leak scan.
pub const TOKEN_PREFIX: &str = "gt_";

/// Who is calling a tenant route.
#[derive(Debug, Clone)]
pub enum TenantCaller {
    /// A signed-in person (the dashboard).
    Account(Account),
    /// A script with one workspace's API token.
    Token {
        /// The token's workspace: the only one it reaches.
        workspace: WorkspaceId,
        /// The token (the audit log names it).
        id: Uuid,
    },
}

impl TenantCaller {
    /// How the audit log names the caller.
    pub fn actor(&self) -> String {
        match self {
            TenantCaller::Account(a) => a.actor(),
            TenantCaller::Token { id, .. } => format!("token:{id}"),
        }
    }
}

/// A caller's checked access to one workspace.
#[derive(Debug, Clone)]
pub struct Access {
    /// The workspace.
    pub workspace: Workspace,
    /// The caller's role there.
    pub role: Role,
    /// Who (for the audit log).
    pub actor: String,
    /// The account, when a person is calling.
    pub account: Option<Account>,
}

impl Access {
    /// The account of an owner, or 403 saying who can do `what`.
    pub fn owner(&self, what: &str) -> Result<&Account, Problem> {
        match (&self.account, self.role) {
            (Some(a), Role::Owner) => Ok(a),
            _ => Err(Problem::forbidden(format!(
                "only an owner of this workspace can {what}"
            ))),
        }
    }

    /// An owner, or a script holding the workspace's API token (which only owners make):
    /// who may take everything the workspace holds away with them (a GDPR export).
    pub fn owner_or_token(&self, what: &str) -> Result<(), Problem> {
        match (&self.account, self.role) {
            (Some(_), Role::Owner) | (None, _) => Ok(()),
            _ => Err(Problem::forbidden(format!(
                "only an owner of this workspace can {what}"
            ))),
        }
    }
}

/// The one answer for every workspace a caller may not see.
fn hidden() -> Problem {
    Problem::not_found("workspace")
}

/// Checks that `caller` may act on workspace `raw_id` (an id as the path carries it).
pub async fn access<'s>(
    state: &'s AppState,
    caller: &TenantCaller,
    raw_id: &str,
) -> Result<(Access, &'s Database), Problem> {
    let id = WorkspaceId::parse(raw_id).map_err(|_| hidden())?;
    let (workspace, db) = match state.stores.workspace_find(id).await {
        Ok(found) => found,
        Err(genesis_store::StoreError::NotFound { .. }) => return Err(hidden()),
        Err(e) => return Err(e.into()),
    };
    let (role, account) = match caller {
        TenantCaller::Account(a) => (db.member_role(id, a.id).await?, Some(a.clone())),
        TenantCaller::Token { workspace, .. } => ((*workspace == id).then_some(Role::Member), None),
    };
    let Some(role) = role else {
        metrics::counter!("genesis_tenant_access_refused_total", "reason" => "not_a_member")
            .increment(1);
        return Err(hidden());
    };
    Ok((
        Access {
            workspace,
            role,
            actor: caller.actor(),
            account,
        },
        db,
    ))
}

/// Every workspace `account` is a member of, in every region, by name.
pub async fn my_workspaces(
    state: &AppState,
    account: &Account,
) -> Result<Vec<Membership>, Problem> {
    let mut all = Vec::new();
    for db in state.stores.distinct() {
        all.extend(db.account_memberships(account.id).await?);
    }
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.slug.cmp(&b.slug)));
    Ok(all)
}

/// Creates a workspace owned by `account`, in the account's region (where its owner chose
/// to keep their data).
pub async fn create_workspace(
    state: &AppState,
    account: &Account,
    name: &str,
    slug: &str,
) -> Result<Workspace, Problem> {
    let body = crate::app::workspaces::CreateWorkspace {
        id: None,
        name: Some(name.to_owned()),
        slug: Some(slug.to_owned()),
        region: Some(account.region.clone()),
        tier: None,
        onboarding: None,
    };
    let new = body.parse()?;
    Ok(state
        .stores
        .workspace_create_unique_owned(&new, &account.actor(), Some(&Owner { account }))
        .await?)
}

/// The members of a workspace and the invitations waiting.
pub async fn members(
    db: &Database,
    access: &Access,
) -> Result<(Vec<Member>, Vec<PendingInvitation>), Problem> {
    let id = access.workspace.id;
    Ok((db.member_list(id).await?, db.invitation_list(id).await?))
}

/// Invites `email` as `role` (owners only); the link goes out through the outbox.
pub async fn invite(
    db: &Database,
    access: &Access,
    email: &str,
    role: &str,
    origin: &str,
) -> Result<(), Problem> {
    let by = access.owner("invite members")?;
    let email = genesis_core::Email::parse(email).map_err(|_| {
        Problem::invalid_field("email", "enter an e-mail address like ada@example.com")
    })?;
    let role = match role {
        "owner" => Role::Owner,
        "member" => Role::Member,
        _ => return Err(Problem::invalid_field("role", "choose owner or member")),
    };
    let token = RegionToken::new(access.workspace.region);
    let url = format!("{origin}/app/invitations?token={}", token.token);
    db.invitation_create(
        access.workspace.id,
        by,
        email.as_str(),
        role,
        &NewLink {
            token_sha256: &token.digest(),
            expires_at: chrono::Utc::now()
                + chrono::Duration::from_std(INVITE_TTL).unwrap_or(chrono::Duration::days(7)),
            url: &url,
        },
    )
    .await
    .map_err(|e| match e {
        genesis_store::StoreError::Conflict { .. } => {
            Problem::conflict("email", format!("{email} is already a member"))
        }
        e => e.into(),
    })
}

/// Accepts an invitation for the signed-in `account`. `None`: unknown, expired, used, or
/// meant for another address (one answer for all).
pub async fn accept(
    state: &AppState,
    account: &Account,
    raw: &str,
) -> Result<Option<WorkspaceId>, Problem> {
    let Some(token) = RegionToken::parse(raw) else {
        return Ok(None);
    };
    Ok(state
        .stores
        .for_region(token.region)
        .invitation_accept(&token.digest(), account)
        .await?)
}

/// The live API tokens of a workspace (owners only: a token's name can say what it is
/// for).
pub async fn tokens(db: &Database, access: &Access) -> Result<Vec<TenantToken>, Problem> {
    access.owner("see API tokens")?;
    Ok(db.tenant_token_list(access.workspace.id).await?)
}

/// Makes an API token (owners only). The token is returned once and never stored.
pub async fn token_create(
    db: &Database,
    access: &Access,
    name: &str,
) -> Result<(TenantToken, String), Problem> {
    let by = access.owner("make API tokens")?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            "name",
            "give the token a name of 1 to 60 characters, e.g. \"CRM sync\"",
        ));
    }
    let secret = RegionToken::new(access.workspace.region);
    let shown = format!("{TOKEN_PREFIX}{}", secret.token);
    let made = db
        .tenant_token_create(
            access.workspace.id,
            by,
            name,
            &crate::credentials::token_digest(&shown),
        )
        .await
        .map_err(|e| match e {
            genesis_store::StoreError::Conflict { .. } => {
                Problem::conflict("name", format!("a token named {name:?} already exists"))
            }
            e => e.into(),
        })?;
    Ok((made, shown))
}

/// Revokes an API token (owners only); 404 when the workspace has no such live token.
pub async fn token_revoke(db: &Database, access: &Access, raw_id: &str) -> Result<(), Problem> {
    access.owner("revoke API tokens")?;
    let id = Uuid::parse_str(raw_id).map_err(|_| Problem::not_found("token"))?;
    if db
        .tenant_token_revoke(access.workspace.id, &access.actor, id)
        .await?
    {
        Ok(())
    } else {
        Err(Problem::not_found("token"))
    }
}

/// The caller an `Authorization: Bearer gt_…` token names, if it is live.
pub async fn token_caller(state: &AppState, bearer: &str) -> Result<Option<TenantCaller>, Problem> {
    let Some(token) = bearer
        .strip_prefix(TOKEN_PREFIX)
        .and_then(RegionToken::parse)
    else {
        return Ok(None);
    };
    let region: Region = token.region;
    Ok(state
        .stores
        .for_region(region)
        .tenant_token_use(&crate::credentials::token_digest(bearer))
        .await?
        .map(|(workspace, id)| TenantCaller::Token { workspace, id }))
}
