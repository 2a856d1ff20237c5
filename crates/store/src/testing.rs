//! Test support: a fresh, migrated database per test, so integration tests run in parallel
//! against one real PostgreSQL server (`DATABASE_URL`, an administrator login).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use crate::{
    Database, DbOptions, Pooler, StoreError,
    bootstrap::{create_database, drop_database},
};

/// A throwaway database; call [`TestDb::cleanup`] at the end of a test (a failed test leaves
/// its database behind for inspection; `make test` runs on a throwaway server anyway).
#[derive(Debug)]
pub struct TestDb {
    /// The migrated database.
    pub db: Database,
    /// Its name.
    pub name: String,
    admin_server: PgConnectOptions,
}

impl TestDb {
    /// Creates and migrates a database named `genesis_t_<random>` on `DATABASE_URL`'s server.
    pub async fn create() -> Result<Self, StoreError> {
        Self::create_with(|o| o).await
    }

    /// Like [`TestDb::create`], letting the caller adjust the options (pool sizes, pooler).
    pub async fn create_with(
        adjust: impl FnOnce(DbOptions) -> DbOptions,
    ) -> Result<Self, StoreError> {
        let url = std::env::var("DATABASE_URL").map_err(|_| StoreError::Invalid {
            field: "DATABASE_URL",
            message: "must point at a PostgreSQL server (run tests through `make test`)".into(),
        })?;
        let admin_server = PgConnectOptions::from_str(&url)?;
        let name = format!("genesis_t_{}", uuid::Uuid::new_v4().simple());
        create_database(&admin_server, &name).await?;
        let admin = admin_server.clone().database(&name);
        let db = Database::connect_lazy(adjust(DbOptions::derive_app(admin, None)));
        db.migrate().await?;
        Ok(Self {
            db,
            name,
            admin_server,
        })
    }

    /// Options for a second runtime path into the same database (e.g. through PgBouncer).
    pub fn options_via(&self, app: PgConnectOptions, pooler: Pooler) -> DbOptions {
        DbOptions::new(self.db.options().admin.clone(), app, pooler)
    }

    /// Drops the database (terminating its sessions) and closes the pools. Closing waits for
    /// checked-out connections, so it is bounded: a test that still holds a session must not
    /// hang the suite.
    pub async fn cleanup(self) -> Result<(), StoreError> {
        drop_database(&self.admin_server, &self.name).await?;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.db.close()).await;
        Ok(())
    }
}

/// Two regional databases: eu-west alone on one, every other region (the coordinator's
/// us-east included) on the other, listed eu-west first, so a test sees that nothing
/// depends on the configuration's order. Clean both up at the end.
pub async fn two_regions() -> Result<(TestDb, TestDb, crate::RegionalStore), StoreError> {
    use genesis_core::Region;
    let home = TestDb::create().await?;
    let eu = TestDb::create().await?;
    let others: Vec<Region> = Region::ALL
        .into_iter()
        .filter(|r| *r != Region::EuWest)
        .collect();
    let stores = crate::RegionalStore::new(vec![
        (vec![Region::EuWest], eu.db.clone()),
        (others, home.db.clone()),
    ])?;
    Ok((home, eu, stores))
}
