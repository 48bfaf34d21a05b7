//! Vector tiles kept in memory, so that a map's popular tiles are drawn
//! once per change of the directory rather than once per visitor, and a
//! kept tile is answered without touching the database.
//!
//! Every tile is kept under the map's version (`map_version`, migration
//! 12), which every change to what the map shows moves inside its own
//! transaction and announces when it commits (`NOTIFY`, migration 16). A
//! follower ([`TileCache::follow`]) holds a connection of its own to the
//! primary, listens for the announcements, and reads the version again
//! every [`CHECK_INTERVAL`] in case one was lost (and to prove the
//! connection alive). While it follows, a request looks its tile up under
//! the version it knows, with no database at all; only a missing tile
//! takes a connection, to be drawn. Where the primary refuses to listen (a
//! server in recovery), the follower reads the version every
//! [`POLL_INTERVAL`] instead. While it does not follow (starting, or
//! reconnecting after an error, which it logs), each request reads the
//! version itself before looking its tile up, on the connection that would
//! draw it.
//!
//! A kept tile is never older than the version it is kept under: a drawing
//! reads the version on its own connection first, and is kept under a
//! version only if that connection has reached it (a tile drawn on a read
//! replica that has not replayed the change yet is answered, not kept).
//! A change reaches the kept tiles when its announcement arrives
//! (milliseconds after it commits); when announcements are lost, at the
//! next check; when the follower's connection dies silently, requests read
//! the version themselves after at most [`CHECK_INTERVAL`] and
//! [`QUERY_TIMEOUT`]. Requests for the same missing tile wait for one
//! drawing. The cache is bounded by the bytes of the tiles it holds (least
//! recently and least frequently used go first); tiles of an older version
//! are dropped when a newer one is seen.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::StreamExt;
use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, Opts};

use super::problem::ApiError;
use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::public_map::{self, Layers};
use crate::db::pool::PoolError;
use crate::db::routing::Pools;
use crate::domain::category::Category;
use crate::domain::map::{Lang, Tile};

/// How often the follower reads the version even without an announcement:
/// a change whose announcement was lost (a connection pooler between the
/// server and the database can swallow them) reaches the kept tiles within
/// this, and a connection that no longer answers is noticed.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);
/// How often the version is read where the database refuses to listen.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long connecting, listening or one reading of the version may take
/// before the follower gives its connection up.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// The first and the longest wait before the follower connects again.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);
/// How the follower's connection shows in `pg_stat_activity`.
const APPLICATION_NAME: &str = "ketnoi-tiles";

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

type Tiles = moka::future::Cache<(i64, TileRequest), Arc<DrawnTile>>;

pub struct TileCache {
    tiles: Option<Tiles>,
    /// The newest map version known.
    known: AtomicI64,
    /// Whether the follower keeps `known` up to date, so that a request may
    /// look its tile up under it without asking the database.
    following: AtomicBool,
    metrics: CacheMetrics,
}

/// Where a drawing gets its connection and the version it has reached.
#[expect(
    clippy::large_enum_variant,
    reason = "one per request, moved once, never stored"
)]
enum Source<C> {
    /// The connection the request read the version on.
    Read(DbConn, i64),
    /// A connection still to be checked out.
    Checkout(C),
}

/// Why a drawing was not kept.
#[derive(Debug)]
enum Unkept {
    /// Drawn on a connection that had not reached the version it was asked
    /// under (a read replica behind the primary): answered, not kept.
    Behind(Arc<DrawnTile>),
    Failed(DbError),
}

impl From<DbError> for Unkept {
    fn from(error: DbError) -> Self {
        Self::Failed(error)
    }
}

impl From<PoolError> for Unkept {
    fn from(error: PoolError) -> Self {
        Self::Failed(error.into())
    }
}

impl TileCache {
    /// A cache holding at most `max_bytes` of tiles; 0 keeps none (every
    /// tile is drawn when asked).
    pub fn new(max_bytes: u64) -> anyhow::Result<Self> {
        let tiles = (max_bytes > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, tile: &Arc<DrawnTile>| {
                    u32::try_from(tile.body.len() + tile.etag.len() + ENTRY_OVERHEAD)
                        .unwrap_or(u32::MAX)
                })
                .build()
        });
        Ok(Self {
            tiles,
            known: AtomicI64::new(i64::MIN),
            following: AtomicBool::new(false),
            metrics: CacheMetrics::new()?,
        })
    }

    /// The collectors to register with the metrics registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.metrics.following.clone()),
            Box::new(self.metrics.answers.clone()),
        ]
    }

    /// The tile `request` asks for: kept, or drawn by `draw` on a
    /// connection from `checkout` (and kept).
    pub async fn get<C, F>(
        &self,
        checkout: C,
        request: TileRequest,
        draw: F,
    ) -> Result<Arc<DrawnTile>, ApiError>
    where
        C: AsyncFnOnce() -> Result<DbConn, PoolError>,
        F: AsyncFnOnce(&mut DbConn) -> Result<Vec<u8>, DbError>,
    {
        let Some(tiles) = &self.tiles else {
            let mut conn = checkout().await.map_err(DbError::from)?;
            let tile = drawn(draw(&mut conn).await?);
            self.metrics.drawn();
            return Ok(Arc::new(tile));
        };
        // The version to look the tile up under, and where a drawing gets
        // its connection.
        let (version, source) = if self.following.load(Ordering::Acquire) {
            (
                self.known.load(Ordering::Acquire),
                Source::Checkout(checkout),
            )
        } else {
            let mut conn = checkout().await.map_err(DbError::from)?;
            let version = public_map::map_version(&mut conn).await?;
            self.advance(version);
            (version, Source::Read(conn, version))
        };
        if let Some(tile) = tiles.get(&(version, request)).await {
            self.metrics.answers.with_label_values(&["memory"]).inc();
            return Ok(tile);
        }
        let drawing = async move {
            let (mut conn, reached) = match source {
                Source::Read(conn, reached) => (conn, reached),
                Source::Checkout(checkout) => {
                    let mut conn = checkout().await?;
                    let reached = public_map::map_version(&mut conn).await?;
                    (conn, reached)
                }
            };
            // Drawn after `reached` was read, so from data at least as new.
            let tile = Arc::new(drawn(draw(&mut conn).await?));
            self.metrics.drawn();
            if reached < version {
                return Err(Unkept::Behind(tile));
            }
            Ok(tile)
        };
        match tiles.try_get_with((version, request), drawing).await {
            Ok(tile) => Ok(tile),
            Err(unkept) => match Arc::try_unwrap(unkept) {
                Ok(Unkept::Behind(tile)) => Ok(tile),
                Ok(Unkept::Failed(error)) => Err(ApiError::from(error)),
                // Several requests waited for this drawing: each answers
                // with the same tile, or the same kind of error.
                Err(shared) => match &*shared {
                    Unkept::Behind(tile) => Ok(Arc::clone(tile)),
                    Unkept::Failed(error) if error.is_unavailable() || error.is_retryable() => {
                        Err(ApiError::Unavailable(anyhow::anyhow!("{error}")))
                    }
                    Unkept::Failed(error) => Err(ApiError::Internal(anyhow::anyhow!("{error}"))),
                },
            },
        }
    }

    /// Notes that the map has reached `version`; what is kept under an
    /// older one will not be asked for again, so its room is freed now.
    fn advance(&self, version: i64) {
        if self.known.fetch_max(version, Ordering::AcqRel) < version {
            self.forget_all();
        }
    }

    /// Takes `version`, just read by a follower that (re)connected, as the
    /// map's version even if it is older than the one known: the database
    /// may have been restored, or failed over to a replica that had not
    /// received the last changes, and what is kept under the numbers it
    /// will reach again was drawn from data it no longer holds.
    fn restart_at(&self, version: i64) {
        if self.known.swap(version, Ordering::AcqRel) != version {
            self.forget_all();
        }
    }

    fn forget_all(&self) {
        if let Some(tiles) = &self.tiles {
            tiles.invalidate_all();
        }
    }

    fn set_following(&self, following: bool) {
        self.following.store(following, Ordering::Release);
        self.metrics.following.set(i64::from(following));
    }

    /// Starts following the map's version on a connection of its own to
    /// the primary of `pools`, checking every `check_every` (normally
    /// [`CHECK_INTERVAL`]), for as long as both the cache and the pools
    /// live. Does nothing for a cache that keeps no tiles.
    pub fn follow(self: &Arc<Self>, pools: &Arc<Pools>, check_every: Duration) {
        if self.tiles.is_none() {
            return;
        }
        let cache = Arc::downgrade(self);
        let pools = Arc::downgrade(pools);
        tokio::spawn(async move {
            let mut retry = RETRY_FIRST;
            // Whether this outage (or the failure to start) was logged.
            let mut warned = false;
            loop {
                let error = match follow_once(&cache, &pools, check_every).await {
                    Ok(()) => return,
                    Err(error) => error,
                };
                let Some(tiles) = cache.upgrade() else {
                    return;
                };
                if tiles.following.load(Ordering::Acquire) {
                    tiles.set_following(false);
                    retry = RETRY_FIRST;
                    warned = false;
                }
                if warned {
                    tracing::debug!(%error, "the tile cache's follower could not connect again");
                } else {
                    warned = true;
                    tracing::warn!(
                        %error,
                        "the tile cache does not follow the map's version; each tile request \
                         reads it until the follower has connected again"
                    );
                }
                drop(tiles);
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        });
    }
}

/// What the follower waits for.
enum Event {
    Announced(Option<Result<diesel::pg::PgNotification, diesel::result::Error>>),
    Check,
}

/// Connects, listens (or, refused, polls) and follows the version until an
/// error, returned, or until the cache or the pools are gone (`Ok`).
async fn follow_once(
    cache: &Weak<TileCache>,
    pools: &Weak<Pools>,
    check_every: Duration,
) -> anyhow::Result<()> {
    let mut conn = {
        let Some(pools) = pools.upgrade() else {
            return Ok(());
        };
        timed(pools.dedicated_primary(APPLICATION_NAME)).await??
    };
    let every = match timed(public_map::listen_for_map_version(&mut conn)).await? {
        Ok(()) => check_every,
        Err(error) if !error.is_unavailable() => {
            tracing::info!(
                error = %error.without_details(),
                "the database refuses to announce the map's version; the tile cache reads it \
                 every second instead"
            );
            POLL_INTERVAL.min(check_every)
        }
        Err(error) => return Err(error.into()),
    };
    // Read after listening: a change that commits in between is announced,
    // one that committed before is read.
    let version = timed(public_map::map_version(&mut conn)).await??;
    {
        let Some(cache) = cache.upgrade() else {
            return Ok(());
        };
        cache.restart_at(version);
        cache.set_following(true);
        tracing::info!("the tile cache follows the map's version");
    }
    let mut checks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let event = {
            let mut announcements = std::pin::pin!(conn.notifications_stream());
            tokio::select! {
                announced = announcements.next() => Event::Announced(announced),
                _ = checks.tick() => Event::Check,
            }
        };
        let version = match event {
            Event::Announced(Some(Ok(announced))) => match announced.payload.parse::<i64>() {
                Ok(version) => version,
                Err(_) => timed(public_map::map_version(&mut conn)).await??,
            },
            Event::Announced(Some(Err(error))) => return Err(error.into()),
            Event::Announced(None) => anyhow::bail!("the connection closed"),
            Event::Check => timed(public_map::map_version(&mut conn)).await??,
        };
        let Some(cache) = cache.upgrade() else {
            return Ok(());
        };
        cache.advance(version);
    }
}

/// `work`, given up after [`QUERY_TIMEOUT`].
async fn timed<T>(work: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(QUERY_TIMEOUT, work)
        .await
        .map_err(|_| anyhow::anyhow!("the database took more than {QUERY_TIMEOUT:?} to answer"))
}

/// The cache's metrics, registered by [`crate::metrics`].
struct CacheMetrics {
    following: IntGauge,
    answers: IntCounterVec,
}

impl CacheMetrics {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            following: IntGauge::new(
                "ketnoi_tile_cache_following",
                "1 while the tile cache follows the map's version, so that kept tiles are \
                 answered without the database; 0 while each tile request reads the version",
            )?,
            answers: IntCounterVec::new(
                Opts::new(
                    "ketnoi_tile_cache_answers_total",
                    "Vector tiles answered from memory (`memory`) and drawn from the database \
                     (`drawn`); a request that waited for another's drawing counts in neither",
                ),
                &["source"],
            )?,
        })
    }

    fn drawn(&self) {
        self.answers.with_label_values(&["drawn"]).inc();
    }
}

fn drawn(body: Vec<u8>) -> DrawnTile {
    let etag = super::etag::tag(&body);
    DrawnTile {
        body: Bytes::from(body),
        etag,
    }
}
