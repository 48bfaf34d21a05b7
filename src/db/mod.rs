//! Everything that talks to PostgreSQL: the schema, the connection pool, the
//! migrations, the reference data and sample directory loaders, and the
//! queries, each beside the rows it reads.

pub mod migrations;
pub mod models;
pub mod pool;
pub mod postgis;
pub mod reference;
pub mod routing;
pub mod schema;
pub mod seed;

pub use pool::{DbConn, Pool};
