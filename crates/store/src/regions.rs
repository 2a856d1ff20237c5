//! Per-region databases (spec 62, DESIGN §5). A workspace's partition and lead data live only
//! in its region's database; in development one database may serve every region.
//!
//! Workspaces live in the database of their region too (the partition registry references
//! them, and provisioning creates both in one transaction), so lookups by id fan out over the
//! distinct databases: at most five, and usually one.

use std::collections::BTreeMap;

use genesis_core::{Region, WorkspaceId};

use crate::{Database, StoreError, Workspace};

/// The region whose database coordinates the fleet: it holds what belongs to no one
/// region (rollouts, operators and their sessions, the command journal, leader locks,
/// reconciler statuses).
pub const COORDINATOR: Region = Region::UsEast;

/// The databases of all regions.
#[derive(Debug, Clone)]
pub struct RegionalStore {
    by_region: BTreeMap<Region, usize>,
    distinct: Vec<Database>,
    /// The regions each of `distinct` serves, in [`Region::ALL`]'s order.
    served: Vec<Vec<Region>>,
}

/// One distinct database and the regions it serves; named by the first of them (the name
/// job payloads and statuses carry: indexes change when the configuration is reordered,
/// region codes do not).
#[derive(Debug, Clone, Copy)]
pub struct Shard<'a> {
    /// The regions it serves (at least one).
    pub regions: &'a [Region],
    /// The database.
    pub db: &'a Database,
}

impl Shard<'_> {
    /// The region that names this database.
    pub fn region(&self) -> Region {
        self.regions[0]
    }

    /// The codes of the regions it serves, joined with `+` (`us-east+us-west`).
    pub fn label(&self) -> String {
        self.regions
            .iter()
            .map(|r| r.code())
            .collect::<Vec<_>>()
            .join("+")
    }
}

impl RegionalStore {
    /// Builds the map from (regions, database) groups; every region must be covered.
    pub fn new(groups: Vec<(Vec<Region>, Database)>) -> Result<Self, StoreError> {
        let mut by_region = BTreeMap::new();
        let mut distinct = Vec::new();
        for (regions, db) in groups {
            if regions.is_empty() {
                continue;
            }
            let idx = distinct.len();
            distinct.push(db);
            for r in regions {
                if by_region.insert(r, idx).is_some() {
                    return Err(StoreError::Invalid {
                        field: "database.regions",
                        message: format!("region {r} is given two databases"),
                    });
                }
            }
        }
        if let Some(missing) = Region::ALL.iter().find(|r| !by_region.contains_key(r)) {
            return Err(StoreError::Invalid {
                field: "database.regions",
                message: format!("no database configured for region {missing}"),
            });
        }
        let served = (0..distinct.len())
            .map(|i| {
                Region::ALL
                    .into_iter()
                    .filter(|r| by_region[r] == i)
                    .collect()
            })
            .collect();
        Ok(Self {
            by_region,
            distinct,
            served,
        })
    }

    /// One database for every region (development).
    pub fn single(db: Database) -> Self {
        Self {
            by_region: Region::ALL.iter().map(|r| (*r, 0)).collect(),
            distinct: vec![db],
            served: vec![Region::ALL.to_vec()],
        }
    }

    /// The coordinating database (see [`COORDINATOR`]).
    pub fn coordinator(&self) -> &Database {
        self.for_region(COORDINATOR)
    }

    /// Each distinct database once, with the regions it serves (fan-out by name).
    pub fn shards(&self) -> impl Iterator<Item = Shard<'_>> {
        self.distinct
            .iter()
            .zip(&self.served)
            .map(|(db, regions)| Shard { regions, db })
    }

    /// The shard whose [`Shard::label`] is `label` (what pages and links name a database
    /// by), if there is one.
    pub fn shard_labelled(&self, label: &str) -> Option<Shard<'_>> {
        self.shards().find(|s| s.label() == label)
    }

    /// The shard that serves `region`.
    pub fn shard_of(&self, region: Region) -> Shard<'_> {
        let i = self.by_region[&region];
        Shard {
            regions: &self.served[i],
            db: &self.distinct[i],
        }
    }

    /// The database holding `region`'s tenants.
    pub fn for_region(&self, region: Region) -> &Database {
        // Construction guarantees every region is mapped.
        &self.distinct[self.by_region[&region]]
    }

    /// The index into [`RegionalStore::distinct`] of `region`'s database.
    pub fn index_of(&self, region: Region) -> usize {
        self.by_region[&region]
    }

    /// Each distinct database once (for migrations, health checks, fan-out reads).
    pub fn distinct(&self) -> &[Database] {
        &self.distinct
    }

    /// Finds a workspace in whichever region holds it.
    pub async fn workspace_find(
        &self,
        id: WorkspaceId,
    ) -> Result<(Workspace, &Database), StoreError> {
        for db in &self.distinct {
            match db.workspace_get(id).await {
                Ok(ws) => return Ok((ws, db)),
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::NotFound { what: "workspace" })
    }

    /// Where a record about a caller who names `workspace` goes (a refused handshake or
    /// call): that workspace's database when it exists, the coordinator's otherwise (an
    /// unknown or absent workspace). Answers the workspace too when it was found, and the
    /// coordinator's when the lookup itself failed: a record is never lost to a lookup.
    pub async fn record_home(
        &self,
        workspace: Option<WorkspaceId>,
    ) -> (&Database, Option<WorkspaceId>) {
        if let Some(ws) = workspace
            && let Ok((_, db)) = self.workspace_find(ws).await
        {
            return (db, Some(ws));
        }
        (self.coordinator(), None)
    }

    /// The workspace whose live `kind` token `token` is, in whichever region holds it.
    pub async fn workspace_token_owner(
        &self,
        token: &str,
        kind: crate::WorkspaceTokenKind,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        for db in &self.distinct {
            if let Some(ws) = db.workspace_token_owner(token, kind).await? {
                return Ok(Some(ws));
            }
        }
        Ok(None)
    }

    /// The workspace with `slug`, in whichever region holds it (slugs are global).
    pub async fn workspace_find_by_slug(
        &self,
        slug: &genesis_core::Slug,
    ) -> Result<(Workspace, &Database), StoreError> {
        for db in &self.distinct {
            match db.workspace_get_by_slug(slug).await {
                Ok(ws) => return Ok((ws, db)),
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::NotFound { what: "workspace" })
    }

    /// Whether a slug is taken in any region (slugs are global: they name partitions and
    /// appear in URLs).
    pub async fn slug_taken(&self, slug: &genesis_core::Slug) -> Result<bool, StoreError> {
        match self.workspace_find_by_slug(slug).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates a workspace in its region's database under a globally unique slug: the slug
    /// is claimed in the coordinating database first (atomic, whichever region asks), and
    /// given back if the workspace cannot be created. `Conflict` when the slug is taken.
    pub async fn workspace_create_unique(
        &self,
        new: &crate::workspaces::NewWorkspace,
        actor: &str,
    ) -> Result<Workspace, StoreError> {
        self.workspace_create_unique_owned(new, actor, None).await
    }

    /// [`Self::workspace_create_unique`], with `owner` as its first member.
    pub async fn workspace_create_unique_owned(
        &self,
        new: &crate::workspaces::NewWorkspace,
        actor: &str,
        owner: Option<&crate::accounts::Owner<'_>>,
    ) -> Result<Workspace, StoreError> {
        let taken = || StoreError::Conflict {
            field: "slug",
            value: new.slug.as_str().to_owned(),
        };
        // Workspaces created before claims existed are only in their region's table.
        if self.slug_taken(&new.slug).await? {
            return Err(taken());
        }
        if !self.coordinator().slug_claim(&new.slug, new.region).await? {
            return Err(taken());
        }
        match self
            .for_region(new.region)
            .workspace_create_owned(new, actor, owner)
            .await
        {
            Ok(ws) => Ok(ws),
            Err(e) => {
                if let Err(release) = self.coordinator().slug_release(&new.slug).await {
                    tracing::warn!(slug = new.slug.as_str(), error = %release, "a slug claim could not be given back");
                }
                Err(e)
            }
        }
    }
}
