//! Workspaces: create, get, list.

use std::collections::BTreeMap;

use genesis_core::{Onboarding, Region, Slug, Tier, WorkspaceId, WorkspaceName};
use genesis_store::{NewWorkspace, Workspace};
use serde::{Deserialize, Serialize};

use crate::extract::required;
use crate::{AppState, Problem};

/// `POST /api/v1/workspaces` body. Every field is optional here so that a missing one is
/// reported by name, like an invalid one.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Optional caller-chosen id (idempotent retries).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub id: Option<String>,
    /// Display name.
    #[schema(value_type = WorkspaceName, required = true)]
    pub name: Option<String>,
    /// Slug.
    #[schema(value_type = Slug, required = true)]
    pub slug: Option<String>,
    /// Region code.
    #[schema(value_type = Region, required = true)]
    pub region: Option<String>,
    /// Tier code; `standard` when absent.
    #[schema(value_type = Option<Tier>)]
    pub tier: Option<String>,
    /// Values the Golden Template's variables need (spec 53.3), e.g. `sender_email`.
    pub onboarding: Option<BTreeMap<String, String>>,
}

impl CreateWorkspace {
    /// Parses every field; the first bad one is reported.
    pub fn parse(&self) -> Result<NewWorkspace, Problem> {
        Ok(NewWorkspace {
            id: match &self.id {
                Some(raw) => {
                    WorkspaceId::parse(raw).map_err(|e| Problem::invalid_field("id", e))?
                }
                None => WorkspaceId::new(),
            },
            name: WorkspaceName::parse(required("name", &self.name)?)
                .map_err(|e| Problem::invalid_field("name", e))?,
            slug: Slug::parse(required("slug", &self.slug)?)
                .map_err(|e| Problem::invalid_field("slug", e))?,
            region: Region::parse(required("region", &self.region)?)
                .map_err(|e| Problem::invalid_field("region", e))?,
            tier: match &self.tier {
                Some(t) => Tier::parse(t).map_err(|e| Problem::invalid_field("tier", e))?,
                None => Tier::Standard,
            },
            onboarding: Onboarding::parse(self.onboarding.clone().unwrap_or_default())
                .map_err(|e| Problem::invalid_field("onboarding", e))?,
        })
    }
}

/// A workspace with its latest ignition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceDetail {
    /// The workspace.
    #[serde(flatten)]
    pub workspace: Workspace,
    /// Its latest ignition, if it was ever ignited.
    pub ignition: Option<super::ignition::IgnitionView>,
    /// Its registered webhooks (after a successful ignition).
    pub webhooks: Vec<genesis_store::WebhookEntry>,
    /// Its live droplets (usually one; `genesis droplets ...` takes their ids).
    pub droplets: Vec<genesis_store::Droplet>,
}

/// `GET /api/v1/workspaces` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Return slugs after this one.
    #[param(value_type = Option<Slug>)]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A page of workspaces.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceList {
    /// In slug order.
    pub items: Vec<Workspace>,
    /// Pass as `after` for the next page.
    pub next: Option<String>,
}

/// Creates a workspace (a row in its region's database, status PENDING) under a slug no
/// other region holds; its partition, droplet and credentials come with its ignition.
pub async fn create(
    state: &AppState,
    body: &CreateWorkspace,
    actor: &str,
) -> Result<Workspace, Problem> {
    let new = body.parse()?;
    Ok(state.stores.workspace_create_unique(&new, actor).await?)
}

/// The workspace a path names by its id or by its slug, as operators type either. A slug
/// no region holds is a 404, like an id; text that is neither is a 422 naming `id`.
pub async fn resolve(state: &AppState, raw: &str) -> Result<WorkspaceId, Problem> {
    if let Ok(id) = WorkspaceId::parse(raw) {
        return Ok(id);
    }
    let slug = Slug::parse(raw)
        .map_err(|_| Problem::invalid_field("id", "is neither a workspace id nor a slug"))?;
    Ok(state.stores.workspace_find_by_slug(&slug).await?.0.id)
}

/// Workspace `raw_id` (an id or a slug), with where its ignition stands.
pub async fn detail(state: &AppState, raw_id: &str) -> Result<WorkspaceDetail, Problem> {
    let id = resolve(state, raw_id).await?;
    let (found, _) = state.stores.workspace_find(id).await?;
    let db = state.stores.for_region(found.region);
    // The ignition first, then the workspace: a saga's last move changes both in one
    // transaction, so whoever sees the saga finished also sees the workspace's final status.
    let ignition = match db.ignition_latest(id).await? {
        Some(ig) => Some(super::ignition::view(db, &ig).await?),
        None => None,
    };
    let ws = db.workspace_get(id).await?;
    let webhooks = db.webhook_list(ws.id).await?;
    let droplets = db.droplet_live_for_workspace(ws.id).await?;
    Ok(WorkspaceDetail {
        workspace: ws,
        ignition,
        webhooks,
        droplets,
    })
}

/// Workspaces across regions, in slug order, a page at a time.
pub async fn list(state: &AppState, q: &ListQuery) -> Result<WorkspaceList, Problem> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", "must be between 1 and 500"));
    }
    let after = q
        .after
        .as_deref()
        .map(Slug::parse)
        .transpose()
        .map_err(|e| Problem::invalid_field("after", e))?;
    let mut items = Vec::new();
    for db in state.stores.distinct() {
        items.extend(db.workspace_list(after.as_ref(), limit).await?);
    }
    items.sort_by(|a, b| a.slug.cmp(&b.slug));
    items.truncate(limit as usize);
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|w| w.slug.to_string()))
        .flatten();
    Ok(WorkspaceList { items, next })
}
