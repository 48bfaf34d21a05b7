//! The schema migrations, compiled into the binary.
//!
//! diesel_migrations is synchronous; it runs on diesel-async's connection
//! wrapper inside a blocking task. An advisory lock makes concurrent starts
//! (two API replicas, parallel test processes) apply each migration once.

use anyhow::{Context, anyhow};
use diesel::{Connection, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any fixed number; it only has to be the same in every process.
const MIGRATION_LOCK: i64 = 0x6b65_746e_6f69; // "ketnoi"

type SyncConnection = AsyncConnectionWrapper<AsyncPgConnection>;

fn with_lock<T>(
    database_url: &str,
    work: impl FnOnce(&mut SyncConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut conn =
        SyncConnection::establish(database_url).context("could not connect to the database")?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})")).execute(&mut conn)?;
    let result = work(&mut conn);
    diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).execute(&mut conn)?;
    result
}

/// Applies the migrations not yet applied; returns their versions.
pub async fn run_pending(database_url: &str) -> anyhow::Result<Vec<String>> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        with_lock(&url, |conn| {
            let applied = conn
                .run_pending_migrations(MIGRATIONS)
                .map_err(|error| anyhow!(error))
                .context("a migration failed")?;
            Ok(applied.iter().map(ToString::to_string).collect())
        })
    })
    .await?
}

/// Reverts every applied migration, newest first; returns their versions.
pub async fn revert_all(database_url: &str) -> anyhow::Result<Vec<String>> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        with_lock(&url, |conn| {
            let reverted = conn
                .revert_all_migrations(MIGRATIONS)
                .map_err(|error| anyhow!(error))
                .context("reverting a migration failed")?;
            Ok(reverted.iter().map(ToString::to_string).collect())
        })
    })
    .await?
}
