//! Per-region databases (spec 62, DESIGN §5). A workspace's partition and lead data live only
//! in its region's database; in development one database may serve every region.
//!
//! Workspaces live in the database of their region too (the partition registry references
//! them, and provisioning creates both in one transaction), so lookups by id fan out over the
//! distinct databases: at most five, and usually one.

use std::collections::BTreeMap;

use genesis_core::{Region, WorkspaceId};

use crate::{Database, StoreError, Workspace};

/// The databases of all regions.
#[derive(Debug, Clone)]
pub struct RegionalStore {
    by_region: BTreeMap<Region, usize>,
    distinct: Vec<Database>,
}

impl RegionalStore {
    /// Builds the map from (regions, database) groups; every region must be covered.
    pub fn new(groups: Vec<(Vec<Region>, Database)>) -> Result<Self, StoreError> {
        let mut by_region = BTreeMap::new();
        let mut distinct = Vec::new();
        for (regions, db) in groups {
            let idx = distinct.len();
            distinct.push(db);
            for r in regions {
                by_region.insert(r, idx);
            }
        }
        if let Some(missing) = Region::ALL.iter().find(|r| !by_region.contains_key(r)) {
            return Err(StoreError::Invalid {
                field: "database.regions",
                message: format!("no database configured for region {missing}"),
            });
        }
        Ok(Self {
            by_region,
            distinct,
        })
    }

    /// One database for every region (development).
    pub fn single(db: Database) -> Self {
        Self {
            by_region: Region::ALL.iter().map(|r| (*r, 0)).collect(),
            distinct: vec![db],
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

    /// Whether a slug is taken in any region (slugs are global: they name partitions and
    /// appear in URLs).
    pub async fn slug_taken(&self, slug: &genesis_core::Slug) -> Result<bool, StoreError> {
        for db in &self.distinct {
            match db.workspace_get_by_slug(slug).await {
                Ok(_) => return Ok(true),
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}
