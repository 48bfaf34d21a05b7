//! Vector tiles kept in memory, so that a map's popular tiles are drawn
//! once per change of the directory rather than once per visitor.
//!
//! Every tile is kept under the map's version (`map_version`, migration
//! 12), which every change to what the map shows moves inside its own
//! transaction. A request reads the version first, then looks the tile up
//! under it, and draws it only when missing; so a kept tile is never older
//! than the version it is kept under, and each server sees a change as soon
//! as its database does (a replica: when it has replayed it). Requests for
//! the same missing tile wait for one drawing. The cache is bounded by the
//! bytes of the tiles it holds (least recently and least frequently used go
//! first); tiles of an older version are dropped when a newer one is seen.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use actix_web::web::Bytes;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::problem::ApiError;
use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::public_map::Layers;
use crate::db::schema::map_version;
use crate::domain::category::Category;
use crate::domain::map::{Lang, Tile};

/// One tile as asked: which, which layers, in which language, for which
/// category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileRequest {
    pub tile: Tile,
    pub layers: Layers,
    pub lang: Lang,
    pub category: Option<Category>,
}

/// A drawn tile and its entity tag.
#[derive(Debug)]
pub struct DrawnTile {
    pub body: Bytes,
    pub etag: String,
}

/// What an entry costs beyond its bytes (key, tag, bookkeeping), so that
/// many empty tiles still count.
const ENTRY_OVERHEAD: usize = 160;

pub struct TileCache {
    tiles: Option<moka::future::Cache<(i64, TileRequest), Arc<DrawnTile>>>,
    /// The newest map version seen.
    newest: AtomicI64,
}

impl TileCache {
    /// A cache holding at most `max_bytes` of tiles; 0 keeps none (every
    /// tile is drawn when asked).
    pub fn new(max_bytes: u64) -> Self {
        let tiles = (max_bytes > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, tile: &Arc<DrawnTile>| {
                    u32::try_from(tile.body.len() + tile.etag.len() + ENTRY_OVERHEAD)
                        .unwrap_or(u32::MAX)
                })
                .build()
        });
        Self {
            tiles,
            newest: AtomicI64::new(i64::MIN),
        }
    }

    /// The tile `request` asks for: kept, or drawn by `draw` (and kept).
    pub async fn get<F>(
        &self,
        conn: &mut DbConn,
        request: TileRequest,
        draw: F,
    ) -> Result<Arc<DrawnTile>, ApiError>
    where
        F: AsyncFnOnce(&mut DbConn) -> Result<Vec<u8>, DbError>,
    {
        let Some(tiles) = &self.tiles else {
            return Ok(Arc::new(drawn(draw(conn).await?)));
        };
        let version: i64 = map_version::table
            .select(map_version::version)
            .first(conn)
            .await
            .map_err(DbError::from)?;
        if self.newest.fetch_max(version, Ordering::AcqRel) < version {
            // Nothing kept under an older version will be asked for again
            // (readers read the version first), so free its room now.
            tiles.invalidate_all();
        }
        tiles
            .try_get_with((version, request), async move {
                Ok::<_, DbError>(Arc::new(drawn(draw(conn).await?)))
            })
            .await
            .map_err(|error| match Arc::try_unwrap(error) {
                Ok(error) => ApiError::from(error),
                // Several requests waited for this drawing: each answers
                // with the same kind of error.
                Err(shared) if shared.is_unavailable() || shared.is_retryable() => {
                    ApiError::Unavailable(anyhow::anyhow!("{shared}"))
                }
                Err(shared) => ApiError::Internal(anyhow::anyhow!("{shared}")),
            })
    }
}

fn drawn(body: Vec<u8>) -> DrawnTile {
    let etag = super::etag::tag(&body);
    DrawnTile {
        body: Bytes::from(body),
        etag,
    }
}
