//! `genesis admin tenants ...`: tenant administration straight against the store, for a
//! machine with the database and no running control plane (`genesis tenants` does the same
//! through `/api/v1/workspaces`).

use clap::{Args, Subcommand};
use genesis_core::{Region, Slug, Tier, WorkspaceId, WorkspaceName};
use genesis_store::{NewWorkspace, PartitionManager, RegionalStore, Workspace};

use super::CliError;
use crate::{
    config::Config,
    output::{Output, print},
};

/// Workspace commands.
#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// Create a workspace and its lead partition (atomically).
    Create(CreateArgs),
    /// List workspaces in slug order.
    List {
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one workspace (by id or slug).
    Get {
        /// Workspace id or slug.
        workspace: String,
    },
    /// Drop a workspace's lead partition and its data (idempotent; asks first).
    DropPartition {
        /// Workspace id or slug.
        workspace: String,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `workspaces create` arguments.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Display name.
    #[arg(long)]
    name: String,
    /// Slug: lowercase letters, digits and '_', at most 50.
    #[arg(long)]
    slug: String,
    /// Region.
    #[arg(long, value_parser = crate::values::regions())]
    region: String,
    /// Tier.
    #[arg(long, default_value = "standard", value_parser = crate::values::tiers())]
    tier: String,
    /// Explicit id (for idempotent scripts).
    #[arg(long)]
    id: Option<String>,
}

fn usage(field: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("--{field}: {e}"))
}

/// Finds a workspace by id or slug in any region.
pub async fn resolve(stores: &RegionalStore, key: &str) -> Result<Workspace, CliError> {
    if let Ok(id) = WorkspaceId::parse(key) {
        return Ok(stores.workspace_find(id).await?.0);
    }
    let slug = Slug::parse(key)
        .map_err(|e| CliError::Usage(format!("workspace {key:?}: not an id, and the slug {e}")))?;
    match stores.workspace_find_by_slug(&slug).await {
        Ok((ws, _)) => Ok(ws),
        Err(genesis_store::StoreError::NotFound { .. }) => {
            Err(CliError::Usage(format!("no workspace with slug {key:?}")))
        }
        Err(e) => Err(e.into()),
    }
}

fn rows(list: &[Workspace]) -> Vec<Vec<String>> {
    list.iter()
        .map(|w| {
            vec![
                w.id.to_string(),
                w.slug.to_string(),
                w.name.clone(),
                w.region.to_string(),
                w.tier.to_string(),
                w.status.to_string(),
            ]
        })
        .collect()
}

const HEADERS: [&str; 6] = ["id", "slug", "name", "region", "tier", "status"];

/// Runs a workspaces command.
pub async fn run(cmd: WorkspacesCommand, cfg: Config, out: Output) -> Result<(), CliError> {
    let stores = cfg.regional_store()?;
    match cmd {
        WorkspacesCommand::Create(a) => {
            let new = NewWorkspace {
                id: a
                    .id
                    .as_deref()
                    .map(WorkspaceId::parse)
                    .transpose()
                    .map_err(|e| usage("id", e))?
                    .unwrap_or_default(),
                name: WorkspaceName::parse(&a.name).map_err(|e| usage("name", e))?,
                slug: Slug::parse(&a.slug).map_err(|e| usage("slug", e))?,
                region: Region::parse(&a.region).map_err(|e| usage("region", e))?,
                tier: Tier::parse(&a.tier).map_err(|e| usage("tier", e))?,
                onboarding: Default::default(),
            };
            if stores.slug_taken(&new.slug).await? {
                return Err(usage(
                    "slug",
                    format!("{:?} is already in use", new.slug.as_str()),
                ));
            }
            let ws = PartitionManager::new(stores.for_region(new.region).clone())
                .workspace_provision(&new, "cli")
                .await?;
            print(out, &ws, &HEADERS, rows(std::slice::from_ref(&ws)));
        }
        WorkspacesCommand::List { limit } => {
            let mut all = Vec::new();
            for db in stores.distinct() {
                all.extend(db.workspace_list(None, limit).await?);
            }
            all.sort_by(|a, b| a.slug.cmp(&b.slug));
            all.truncate(limit.max(0) as usize);
            print(out, &all, &HEADERS, rows(&all));
        }
        WorkspacesCommand::Get { workspace } => {
            let ws = resolve(&stores, &workspace).await?;
            print(out, &ws, &HEADERS, rows(std::slice::from_ref(&ws)));
        }
        WorkspacesCommand::DropPartition { workspace, yes } => {
            let ws = resolve(&stores, &workspace).await?;
            super::confirm(
                &format!(
                    "Drop {}'s lead partition? Every lead in it is deleted.",
                    ws.slug
                ),
                yes,
            )?;
            let outcome = PartitionManager::new(stores.for_region(ws.region).clone())
                .drop(ws.id, "cli")
                .await?;
            print(
                out,
                &serde_json::json!({"workspace": ws.id, "outcome": outcome}),
                &["workspace", "outcome"],
                vec![vec![ws.slug.to_string(), format!("{outcome:?}")]],
            );
        }
    }
    Ok(())
}
