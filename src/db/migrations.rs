//! The schema migrations, compiled into the binary.
//!
//! diesel_migrations is synchronous; it runs on diesel-async's connection
//! wrapper inside a blocking task. An advisory lock makes concurrent starts
//! (two API replicas, parallel test processes) apply each migration once.

use anyhow::{Context, anyhow};
use diesel::migration::MigrationVersion;
use diesel::{Connection, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any fixed number; it only has to be the same in every process.
const MIGRATION_LOCK: i64 = 0x6b65_746e_6f69; // "ketnoi"

type SyncConnection = AsyncConnectionWrapper<AsyncPgConnection>;

/// What a step of the harness answers: the versions it applied or reverted.
type Versions<'c> = diesel::migration::Result<Vec<MigrationVersion<'c>>>;

/// Runs one step of the harness on a blocking task, holding the lock;
/// returns the versions the step applied or reverted.
async fn with_lock(
    database_url: &str,
    failed: &'static str,
    step: for<'c> fn(&'c mut SyncConnection) -> Versions<'c>,
) -> anyhow::Result<Vec<String>> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            SyncConnection::establish(&url).context("could not connect to the database")?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .execute(&mut conn)?;
        let result = step(&mut conn)
            .map_err(|error| anyhow!(error))
            .context(failed)
            .map(|versions| versions.iter().map(ToString::to_string).collect());
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .execute(&mut conn)?;
        result
    })
    .await?
}

/// Applies the migrations not yet applied; returns their versions.
pub async fn run_pending(database_url: &str) -> anyhow::Result<Vec<String>> {
    with_lock(database_url, "a migration failed", |conn| {
        conn.run_pending_migrations(MIGRATIONS)
    })
    .await
}

/// Reverts every applied migration, newest first; returns their versions.
pub async fn revert_all(database_url: &str) -> anyhow::Result<Vec<String>> {
    with_lock(database_url, "reverting a migration failed", |conn| {
        conn.revert_all_migrations(MIGRATIONS)
    })
    .await
}
