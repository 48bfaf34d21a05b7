//! The public map: which services are at which public points in a box, and
//! vector tiles of them. Both read the `public_map_points` view (migration
//! 7), which holds no exact point of a confidential location, only its
//! public one.

use diesel::sql_types::{BigInt, Bool, Bytea, Double, Integer, Nullable, Text, Uuid};
use diesel_async::RunQueryDsl;

use super::DbError;
use crate::db::DbConn;
use crate::domain::category::Category;
use crate::domain::ids::{LocationId, ServiceId};
use crate::domain::map::{Bbox, Lang, Tile};
use crate::domain::province::ProvinceCode;

/// What a map asks for: the box it shows, and optionally one category and
/// one province (of the location).
#[derive(Debug, Clone)]
pub struct MapFilter {
    pub bbox: Bbox,
    pub category: Option<Category>,
    pub province: Option<ProvinceCode>,
}

#[derive(Debug, diesel::QueryableByName)]
struct PointRow {
    #[diesel(sql_type = Uuid)]
    service_id: uuid::Uuid,
    #[diesel(sql_type = Uuid)]
    location_id: uuid::Uuid,
}

/// The service-at-location pairs in the box, by service id then location
/// id, after the pair `after` (a keyset cursor), at most `limit` of them.
const POINTS: &str = "
SELECT p.service_id, p.location_id
FROM public_map_points p
WHERE ST_Intersects(p.geom, ST_MakeEnvelope($1, $2, $3, $4, 4326))
  AND ($5::text IS NULL OR EXISTS (
        SELECT 1 FROM service_categories sc
        WHERE sc.service_id = p.service_id AND sc.category_code = $5))
  AND ($6::text IS NULL OR p.province_code = $6)
  AND ($7::uuid IS NULL OR (p.service_id, p.location_id) > ($7, $8))
ORDER BY p.service_id, p.location_id
LIMIT $9";

pub async fn points(
    conn: &mut DbConn,
    filter: &MapFilter,
    after: Option<(ServiceId, LocationId)>,
    limit: i64,
) -> Result<Vec<(ServiceId, LocationId)>, DbError> {
    let rows: Vec<PointRow> = diesel::sql_query(POINTS)
        .bind::<Double, _>(filter.bbox.min_lon)
        .bind::<Double, _>(filter.bbox.min_lat)
        .bind::<Double, _>(filter.bbox.max_lon)
        .bind::<Double, _>(filter.bbox.max_lat)
        .bind::<Nullable<Text>, _>(filter.category.map(Category::as_str))
        .bind::<Nullable<Text>, _>(filter.province.map(ProvinceCode::as_str))
        .bind::<Nullable<Uuid>, _>(after.map(|(service, _)| service.0))
        .bind::<Nullable<Uuid>, _>(after.map(|(_, location)| location.0))
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (ServiceId(row.service_id), LocationId(row.location_id)))
        .collect())
}

/// Tile extent, in the tile's own integer coordinates (the MVT default).
const EXTENT: i32 = 4096;

/// The shallowest zoom whose tiles carry the `services` layer. Below it a
/// tile covers much of the country (a zoom-7 tile is about 300 km wide), so
/// the layer would hold most of the directory at once: megabytes and
/// seconds for 100,000 services. Maps show services at those zooms from
/// the paged GeoJSON, clustered.
pub const SERVICES_MIN_ZOOM: u8 = 8;

/// Which layers a tile carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    pub services: bool,
    pub provinces: bool,
}

/// One tile, two layers: `services` (a point per service at a location,
/// at its public point; when $7) and `provinces` (boundaries clipped to the
/// tile, then simplified to its pixel; when $8). Points within 64 units
/// (1/64 of the tile) beyond the edge are kept, so that a symbol on a tile
/// edge is drawn whole on both sides; boundaries get the same margin. Rows
/// are ordered, so that the same data always gives the same bytes (and
/// `ETag`).
const TILE: &str = "
WITH tile AS (
    SELECT ST_TileEnvelope($1, $2, $3) AS envelope,
           ST_Transform(ST_TileEnvelope($1, $2, $3, margin => 64.0 / 4096), 4326) AS search
),
points AS (
    SELECT ST_AsMVTGeom(ST_Transform(p.geom, 3857), tile.envelope, 4096, 64, true) AS geom,
           p.service_id::text AS service_id,
           p.location_id::text AS location_id,
           CASE WHEN $4 = 'en' THEN p.name_en ELSE p.name END AS name,
           CASE WHEN $4 = 'en' THEN p.organization_en ELSE p.organization END AS organization,
           p.categories,
           p.approximate
    FROM public_map_points p, tile
    WHERE $7 AND p.geom && tile.search
      AND ($5::text IS NULL OR EXISTS (
            SELECT 1 FROM service_categories sc
            WHERE sc.service_id = p.service_id AND sc.category_code = $5))
    ORDER BY p.service_id, p.location_id
),
boundaries AS (
    SELECT ST_AsMVTGeom(
               ST_SimplifyPreserveTopology(
                   ST_ClipByBox2D(pr.boundary_mercator, ST_Expand(tile.envelope, $6 * 64)), $6),
               tile.envelope, 4096, 64, true) AS geom,
           pr.code,
           CASE WHEN $4 = 'en' THEN pr.name_en ELSE pr.name END AS name
    FROM provinces pr, tile
    WHERE $8 AND pr.boundary_mercator && tile.envelope
    ORDER BY pr.code
)
SELECT coalesce((SELECT ST_AsMVT(points, 'services', 4096, 'geom') FROM points
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(boundaries, 'provinces', 4096, 'geom') FROM boundaries
                 WHERE geom IS NOT NULL), ''::bytea) AS tile";

#[derive(Debug, diesel::QueryableByName)]
struct TileRow {
    #[diesel(sql_type = Bytea)]
    tile: Vec<u8>,
}

/// Half the Earth's circumference at the equator, in Web Mercator metres.
const HALF_WORLD_M: f64 = 20_037_508.342_789_244;

/// The Mapbox Vector Tile of `tile`, empty when nothing is in it.
pub async fn tile(
    conn: &mut DbConn,
    tile: Tile,
    layers: Layers,
    lang: Lang,
    category: Option<Category>,
) -> Result<Vec<u8>, DbError> {
    // One pixel of the tile in Web Mercator metres: finer detail would be
    // lost in the tile's integer grid anyway.
    let pixel_m = 2.0 * HALF_WORLD_M / f64::from(1u32 << tile.z()) / f64::from(EXTENT);
    let row: TileRow = diesel::sql_query(TILE)
        .bind::<Integer, _>(i32::from(tile.z()))
        .bind::<Integer, _>(i32::try_from(tile.x()).unwrap_or(i32::MAX))
        .bind::<Integer, _>(i32::try_from(tile.y()).unwrap_or(i32::MAX))
        .bind::<Text, _>(lang.as_str())
        .bind::<Nullable<Text>, _>(category.map(Category::as_str))
        .bind::<Double, _>(pixel_m)
        .bind::<Bool, _>(layers.services && tile.z() >= SERVICES_MIN_ZOOM)
        .bind::<Bool, _>(layers.provinces)
        .get_result(conn)
        .await?;
    Ok(row.tile)
}
