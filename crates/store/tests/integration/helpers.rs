use genesis_core::{Email, LeadStatus, Region, Slug, Tier, WorkspaceId, WorkspaceName};
use genesis_store::{Database, NewLead, NewWorkspace, PartitionManager, Workspace};

/// A unique, valid slug for this test run.
pub fn unique_slug(prefix: &str) -> Slug {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    Slug::parse(&format!("{prefix}_{}", &hex[..12])).expect("valid slug")
}

pub fn new_workspace(prefix: &str) -> NewWorkspace {
    NewWorkspace {
        id: WorkspaceId::new(),
        slug: unique_slug(prefix),
        name: WorkspaceName::parse("Test Workspace").expect("valid name"),
        region: Region::EuWest,
        tier: Tier::Standard,
        onboarding: Default::default(),
    }
}

/// Creates a workspace with its partition.
pub async fn provision(db: &Database, prefix: &str) -> Workspace {
    PartitionManager::new(db.clone())
        .workspace_provision(&new_workspace(prefix), "test")
        .await
        .expect("workspace provisioned")
}

pub fn lead(email: &str, status: LeadStatus) -> NewLead {
    let mut l = NewLead::with_email(Email::parse(email).expect("valid email"));
    l.status = status;
    l
}

/// The SQLSTATE of an error, for privilege assertions.
pub fn sqlstate(e: &sqlx::Error) -> String {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| format!("not a database error: {e}"))
}
