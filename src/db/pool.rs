//! The connection pool. Waiting for a connection is bounded, so that when the
//! database is down or saturated a request fails fast (503) instead of
//! hanging.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{self, Object};

pub type Pool = deadpool::Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;
pub type PoolError = deadpool::PoolError;

/// Builds a pool; connections are opened lazily, on first use.
pub fn build(database_url: &str, max_size: usize, timeout: Duration) -> anyhow::Result<Pool> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    let pool = Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(::deadpool::Runtime::Tokio1)
        .build()?;
    Ok(pool)
}
