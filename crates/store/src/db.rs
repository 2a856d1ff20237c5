//! Connections: one owner pool for DDL and one runtime pool for everything else.
//!
//! # PgBouncer (spec 40.2)
//! With [`Pooler::PgBouncerTransaction`] the runtime pool may point at PgBouncer in
//! transaction mode. PgBouncer 1.18 (Debian 12) does not track protocol-level prepared
//! statements, and sqlx prepares every query as a named statement (its compile-time macros
//! cannot ask for unnamed ones). What makes this safe:
//! - the driver's statement cache is off in that mode (no statement is reused across
//!   transactions);
//! - every runtime query runs inside an explicit transaction, which pins one server
//!   connection from Parse to Execute (reads use [`Database::read`]-style transactions too);
//! - PgBouncer runs `server_reset_query = DISCARD ALL` with `server_reset_query_always = 1`
//!   (spec 40.2 names DISCARD ALL), so statements never outlive their transaction and two
//!   clients' statement names cannot collide on one server connection.
//!
//! Production on PgBouncer >= 1.21 can instead set `max_prepared_statements` (PgBouncer then
//! tracks named statements itself), keep the cache on, and drop the reset query.
//! The owner pool never goes through a transaction pooler: it uses `SET ROLE` per session.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::{
    AssertSqlSafe, Connection, PgConnection, PgPool, Postgres, Transaction,
    pool::PoolConnection,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{
    StoreError,
    bootstrap::{APP_ROLE, OWNER_ROLE, bootstrap},
};

/// A connection to read through: see [`Database::read`]. Dropping a pinned one rolls its
/// transaction back (a read has nothing to commit).
pub(crate) enum Reader {
    /// A pooled connection of its own.
    Direct(PoolConnection<Postgres>),
    /// Inside a transaction, which pins one server connection behind PgBouncer.
    Pinned(Transaction<'static, Postgres>),
}

impl Deref for Reader {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Reader::Direct(c) => c,
            Reader::Pinned(t) => t,
        }
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Reader::Direct(c) => c,
            Reader::Pinned(t) => t,
        }
    }
}

/// How long a pooled connection may sit idle before it is pinged as it comes out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// What sits between the runtime pool and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// Direct connections: named prepared statements are cached per connection.
    #[default]
    Direct,
    /// PgBouncer in transaction mode: unnamed statements only.
    PgBouncerTransaction,
}

/// How to reach one region's database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// An administrator login (superuser, or a member of `genesis_owner`): migrations and
    /// partition DDL act through it as `genesis_owner`.
    pub admin: PgConnectOptions,
    /// The runtime login as `genesis_app` (possibly through PgBouncer).
    pub app: PgConnectOptions,
    /// What `app` connects through.
    pub pooler: Pooler,
    /// Runtime pool size. Each open connection pays ~26 ms on its next query after every
    /// partition create/drop (relcache rebuild) and grows with the partitions it touches, so
    /// this stays modest and PgBouncer does the fan-in.
    pub app_pool_size: u32,
    /// Owner pool size (partition DDL serializes on the parent anyway).
    pub owner_pool_size: u32,
    /// `lock_timeout` for partition DDL; failed attempts are retried with backoff.
    pub ddl_lock_timeout: Duration,
    /// How many times partition DDL is attempted before giving up.
    pub ddl_attempts: usize,
}

impl DbOptions {
    /// Options where the runtime login is derived from the admin URL: same host, port and
    /// database, user `genesis_app` and the given password (none for trust/peer set-ups).
    pub fn derive_app(admin: PgConnectOptions, app_password: Option<&str>) -> Self {
        let mut app = PgConnectOptions::new_without_pgpass()
            .host(admin.get_host())
            .port(admin.get_port())
            .username(APP_ROLE)
            .application_name("genesis");
        if let Some(db) = admin.get_database() {
            app = app.database(db);
        }
        if let Some(pw) = app_password {
            app = app.password(pw);
        }
        Self::new(admin, app, Pooler::Direct)
    }

    /// Options with explicit admin and runtime logins.
    pub fn new(admin: PgConnectOptions, app: PgConnectOptions, pooler: Pooler) -> Self {
        Self {
            admin,
            app,
            pooler,
            app_pool_size: 10,
            owner_pool_size: 2,
            ddl_lock_timeout: Duration::from_secs(3),
            ddl_attempts: 6,
        }
    }
}

/// Both pools of one region's database.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) app: PgPool,
    pub(crate) owner: PgPool,
    pub(crate) options: DbOptions,
}

impl Database {
    /// Connects both pools (lazily: no connection is opened until first use, so a control
    /// plane can start and report "not ready" while the database is down).
    pub fn connect_lazy(options: DbOptions) -> Self {
        let mut app_opts = options.app.clone();
        if options.pooler == Pooler::PgBouncerTransaction {
            app_opts = app_opts.statement_cache_capacity(0);
        }
        // sqlx pings every connection as it returns to the pool, and by default once more
        // as it comes out. Here only a connection idle for more than a second is pinged
        // again (one a database restart may have killed); on a busy pool that second round
        // trip per query is skipped.
        let app = PgPoolOptions::new()
            .max_connections(options.app_pool_size)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(app_opts);
        let owner = PgPoolOptions::new()
            .max_connections(options.owner_pool_size)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "SET ROLE {OWNER_ROLE}; SET search_path = genesis"
                    )))
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .connect_lazy_with(options.admin.clone());
        Self {
            app,
            owner,
            options,
        }
    }

    /// Creates roles and schema if needed, then applies pending migrations as the owner.
    /// Safe to run from several replicas at once (sqlx's migrator takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        bootstrap(&self.options.admin).await?;
        sqlx::migrate!("./migrations").run(&self.owner).await?;
        Ok(())
    }

    /// Cheap liveness probe of the runtime path.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&mut *self.read().await?)
            .await?;
        Ok(())
    }

    /// The runtime pool. Outside this crate it is only meant for tests that must prove what
    /// the runtime role can and cannot do.
    pub fn app_pool(&self) -> &PgPool {
        &self.app
    }

    /// The owner pool (DDL); same caveat as [`Database::app_pool`].
    pub fn owner_pool(&self) -> &PgPool {
        &self.owner
    }

    /// The options these pools were built from.
    pub fn options(&self) -> &DbOptions {
        &self.options
    }

    /// Where a connection that needs its own server session goes (a leader's advisory lock,
    /// a `LISTEN`): the runtime login when it is direct; the administrator login when the
    /// runtime one goes through PgBouncer in transaction mode, which hands each transaction
    /// to whichever server connection is free, so a session lock or a `LISTEN` would stay
    /// behind on a connection other clients then use.
    pub(crate) fn session_options(&self) -> &sqlx::postgres::PgConnectOptions {
        match self.options.pooler {
            Pooler::Direct => &self.options.app,
            Pooler::PgBouncerTransaction => &self.options.admin,
        }
    }

    /// A runtime connection for reads. Behind PgBouncer in transaction mode a statement
    /// outside a transaction may be parsed on one server connection and executed on another,
    /// so there reads run inside one; on a direct connection they do not, which saves the
    /// `BEGIN` and `ROLLBACK` round trips (two of a single read's three: a template rollout
    /// makes about ten reads per droplet, so this is most of its database work).
    pub(crate) async fn read(&self) -> Result<Reader, StoreError> {
        Ok(match self.options.pooler {
            Pooler::Direct => Reader::Direct(self.app.acquire().await?),
            Pooler::PgBouncerTransaction => Reader::Pinned(self.app.begin().await?),
        })
    }

    /// Closes both pools.
    pub async fn close(&self) {
        self.app.close().await;
        self.owner.close().await;
    }
}
