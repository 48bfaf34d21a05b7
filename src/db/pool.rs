//! The connection pool. Waiting for a connection is bounded, so that when the
//! database is down or saturated a request fails fast (503) instead of
//! hanging.

use std::time::Duration;

use diesel::{ConnectionError, ConnectionResult};
use diesel_async::pooled_connection::deadpool::{self, Object};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::BoxFuture;

pub type Pool = deadpool::Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;
pub type PoolError = deadpool::PoolError;

/// Session settings for an OLTP API. No JIT: compiling costs more than the
/// millisecond queries it would speed up. Generic plans for prepared
/// statements: the matcher's statements are long, planning them is a good
/// part of their cost, and their plan does not depend on the values (index
/// walks in distance or area order, cut by LIMIT).
const SESSION_SETTINGS: [&str; 2] = ["SET jit = off", "SET plan_cache_mode = force_generic_plan"];

/// Opens a connection, names it `application_name` (what
/// `pg_stat_activity` shows) and applies [`SESSION_SETTINGS`].
async fn connect(url: &str, application_name: &str) -> ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(url).await?;
    diesel::sql_query("SELECT set_config('application_name', $1, false)")
        .bind::<diesel::sql_types::Text, _>(application_name)
        .execute(&mut conn)
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    for setting in SESSION_SETTINGS {
        diesel::sql_query(setting)
            .execute(&mut conn)
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
    }
    Ok(conn)
}

/// A connection opened the way `pool` opens its own (the same server, the
/// same session settings) but not part of it, named `application_name`: for
/// a task that holds one for as long as it runs, which would otherwise keep
/// a request's place in the pool.
pub async fn dedicated(pool: &Pool, application_name: &str) -> ConnectionResult<AsyncPgConnection> {
    use ::deadpool::managed::Manager;
    use diesel_async::pooled_connection::PoolError as OpenError;
    let mut conn = pool.manager().create().await.map_err(|error| match error {
        OpenError::ConnectionError(error) => error,
        OpenError::QueryError(error) => ConnectionError::CouldntSetupConfiguration(error),
    })?;
    diesel::sql_query("SELECT set_config('application_name', $1, false)")
        .bind::<diesel::sql_types::Text, _>(application_name)
        .execute(&mut conn)
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// How a pool hands back a connection it already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// As it is: a broken connection fails its next query, which maps to
    /// 503, and is then dropped. Right for the primary, which has no
    /// alternative anyway.
    Unchecked,
    /// After a test query: a dead server shows at checkout, when the
    /// caller can still go elsewhere. Right for read replicas.
    Verified,
}

/// Builds a pool for the primary, named `ketnoi` in `pg_stat_activity`;
/// connections are opened lazily, on first use.
pub fn build(database_url: &str, max_size: usize, timeout: Duration) -> anyhow::Result<Pool> {
    build_named(database_url, "ketnoi", Reuse::Unchecked, max_size, timeout)
}

/// Builds a pool whose connections are named `application_name`.
pub fn build_named(
    database_url: &str,
    application_name: &str,
    reuse: Reuse,
    max_size: usize,
    timeout: Duration,
) -> anyhow::Result<Pool> {
    let mut config = ManagerConfig::default();
    config.recycling_method = match reuse {
        Reuse::Unchecked => RecyclingMethod::Fast,
        Reuse::Verified => RecyclingMethod::Verified,
    };
    let application_name = application_name.to_owned();
    config.custom_setup = Box::new(
        move |url: &str| -> BoxFuture<'_, ConnectionResult<AsyncPgConnection>> {
            let application_name = application_name.clone();
            Box::pin(async move { connect(url, &application_name).await })
        },
    );
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    let pool = Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()?;
    Ok(pool)
}
