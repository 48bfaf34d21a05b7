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

/// Opens a connection and applies [`SESSION_SETTINGS`].
fn connect(url: &str) -> BoxFuture<'_, ConnectionResult<AsyncPgConnection>> {
    Box::pin(async move {
        let mut conn = AsyncPgConnection::establish(url).await?;
        for setting in SESSION_SETTINGS {
            diesel::sql_query(setting)
                .execute(&mut conn)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
        }
        Ok(conn)
    })
}

/// Builds a pool; connections are opened lazily, on first use. A returned
/// connection is reused without a test query (a broken one fails its next
/// query, which maps to 503, and is then dropped).
pub fn build(database_url: &str, max_size: usize, timeout: Duration) -> anyhow::Result<Pool> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(connect);
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
