//! Cluster- and database-level set-up that must exist before migrations: the two roles and
//! the `genesis` schema (see `sql/bootstrap.sql` for what each role may do).
//!
//! Roles are cluster-wide while tests create databases in parallel, so the bootstrap runs
//! under an advisory lock taken in the administrator's maintenance database and is retried on
//! the catalog races PostgreSQL can still report ("tuple concurrently updated").

use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, postgres::PgConnectOptions};

use crate::StoreError;

/// The SQL that creates roles, grants and the schema; also applied by
/// `scripts/sqlx-prepare.sh` with psql.
pub const BOOTSTRAP_SQL: &str = include_str!("../sql/bootstrap.sql");

/// The role that owns the schema (migrations, partition DDL).
pub const OWNER_ROLE: &str = "genesis_owner";
/// The runtime role.
pub const APP_ROLE: &str = "genesis_app";

const BOOTSTRAP_LOCK: i64 = 0x6765_6e65_7369_7301; // "genesis" + 1

/// Runs the bootstrap against the database `admin` points at.
pub async fn bootstrap(admin: &PgConnectOptions) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let mut conn = PgConnection::connect_with(admin).await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(BOOTSTRAP_LOCK)
                .execute(&mut conn)
                .await?;
            let applied = conn.execute(BOOTSTRAP_SQL).await.map(|_| ());
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(BOOTSTRAP_LOCK)
                .execute(&mut conn)
                .await;
            let _ = conn.close().await;
            applied
        }
        .await;
        match result {
            Ok(()) => return Ok(()),
            // XX000 "tuple concurrently updated" and unique violations on pg_authid can still
            // surface when another database's bootstrap touches the same role row.
            Err(e) if attempt < 5 => {
                tracing::debug!(error = %e, attempt, "bootstrap raced, retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates a database (for tests and `genesis db create`); a database that already exists
/// is not an error.
pub async fn create_database(admin: &PgConnectOptions, name: &str) -> Result<(), StoreError> {
    let mut conn = PgConnection::connect_with(admin).await?;
    let sql = format!("CREATE DATABASE {}", quote_ident(name));
    // The name is quoted by `quote_ident`.
    let created = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if crate::error::sqlstate(&e).as_deref() == Some("42P04") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Drops a database, disconnecting its sessions first.
pub async fn drop_database(admin: &PgConnectOptions, name: &str) -> Result<(), StoreError> {
    let mut conn = PgConnection::connect_with(admin).await?;
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
    Ok(())
}

/// Quotes an SQL identifier (double quotes, inner quotes doubled). Every identifier we build
/// from data goes through here even when its parser already excludes quotes.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quote_ident("leads_p_a"), "\"leads_p_a\"");
        assert_eq!(quote_ident("x\"y"), "\"x\"\"y\"");
    }
}
