//! The public map: which services are at which public points in a box, and
//! vector tiles of them. Both read the `public_map_points` view (migration
//! 7), which holds no exact point of a confidential location, only its
//! public one.

use crate::db::postgis::srid;
use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Bytea, Double, Integer, Nullable, Text, Uuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::DbError;
use crate::db::DbConn;
use crate::domain::category::Category;
use crate::domain::ids::{LocationId, ServiceId};
use crate::domain::map::{Bbox, ClusterCells, HALF_WORLD_M, Lang, Tile};
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
const POINTS: &str = concat!(
    "
SELECT p.service_id, p.location_id
FROM public_map_points p
WHERE ST_Intersects(p.geom, ST_MakeEnvelope($1, $2, $3, $4, ",
    srid!(),
    "))
  AND ($5::text IS NULL OR EXISTS (
        SELECT 1 FROM service_categories sc
        WHERE sc.service_id = p.service_id AND sc.category_code = $5))
  AND ($6::text IS NULL OR p.province_code = $6)
  AND ($7::uuid IS NULL OR (p.service_id, p.location_id) > ($7, $8))
ORDER BY p.service_id, p.location_id
LIMIT $9"
);

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

pub use crate::domain::map::SERVICES_MIN_ZOOM;

/// Which layers a tile carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layers {
    pub services: bool,
    pub provinces: bool,
    /// Ward boundaries (`wards`) and their names at their reference points
    /// (`ward_labels`): a base map that needs no other server.
    pub wards: bool,
}

/// Wards are drawn from this zoom: below it their 3,321 outlines are a
/// blur (about 2 pixels per ward at zoom 6).
pub const WARDS_MIN_ZOOM: u8 = 7;

/// Clusters (the CTEs `clustered`, `cells`, `cell_categories` and
/// `clusters`), after a CTE `grid` giving `wanted`, `search` (a box of
/// public points to read, holding the cells), `category` (or null),
/// `cell_m` (a cell's side in Web Mercator metres) and the first and last
/// cell columns and rows (`min_x`, `max_x`, `min_y`, `max_y`): every public
/// point whose cell is in range, counted per cell of the grid
/// ([`crate::domain::map::ClusterCells`]) and per category, at the mean of
/// the points counted. Every point counted is already public (a shelter's
/// is its 0.1° point), so a cluster places nothing more exactly than its
/// points. One text for tiles and GeoJSON, so both give the same clusters.
macro_rules! clusters_cte {
    () => {
        "
clustered AS MATERIALIZED (
    SELECT ST_Transform(p.geom, 3857) AS m, p.service_id
    FROM public_map_points p, grid
    WHERE grid.wanted AND p.geom && grid.search
      AND (grid.category IS NULL OR EXISTS (
            SELECT 1 FROM service_categories sc
            WHERE sc.service_id = p.service_id AND sc.category_code = grid.category))
),
cells AS (
    SELECT floor((ST_X(c.m) + 20037508.342789244) / grid.cell_m)::int AS cx,
           floor((20037508.342789244 - ST_Y(c.m)) / grid.cell_m)::int AS cy,
           c.m, c.service_id
    FROM clustered c, grid
),
cell_categories AS (
    SELECT per.cx, per.cy, jsonb_object_agg(per.category_code, per.n) AS counts
    FROM (SELECT cells.cx, cells.cy, sc.category_code, count(*)::int AS n
          FROM cells JOIN service_categories sc ON sc.service_id = cells.service_id
          GROUP BY 1, 2, 3) per
    GROUP BY per.cx, per.cy
),
clusters AS MATERIALIZED (
    SELECT g.cx, g.cy, g.centre, g.count, coalesce(cc.counts, '{}'::jsonb) AS categories
    -- Points collected in the order of their coordinates: the same points
    -- give the same centre to the last bit, whatever order the rows come
    -- in (a hidden change rewrites a shelter's row and moves it).
    FROM (SELECT cells.cx, cells.cy,
                 ST_Centroid(ST_Collect(cells.m ORDER BY ST_X(cells.m), ST_Y(cells.m))) AS centre,
                 count(*)::int AS count
          FROM cells, grid
          WHERE cells.cx BETWEEN grid.min_x AND grid.max_x
            AND cells.cy BETWEEN grid.min_y AND grid.max_y
          GROUP BY cells.cx, cells.cy) g
    LEFT JOIN cell_categories cc USING (cx, cy)
),"
    };
}

/// SQL for a boundary (an expression in Web Mercator) as a tile's
/// geometry, the tile being a relation with its `envelope` and `pixel_m`:
/// clipped to the tile with a margin of 64 units, so that a line on its
/// edge is drawn whole on both sides, then simplified to its pixel. The
/// public map's provinces and wards and the coverage review's wards are
/// drawn alike.
macro_rules! boundary_in_tile {
    ($boundary:literal, $tile:literal) => {
        concat!(
            "ST_AsMVTGeom(ST_SimplifyPreserveTopology(ST_ClipByBox2D(",
            $boundary,
            ", ST_Expand(",
            $tile,
            ".envelope, ",
            $tile,
            ".pixel_m * 64)), ",
            $tile,
            ".pixel_m), ",
            $tile,
            ".envelope, 4096, 64, true)"
        )
    };
}
pub(super) use boundary_in_tile;

/// One tile, two layers: `services` (a point per service at a location,
/// at its public point; when `services`) and `provinces` (boundaries
/// clipped to the tile, then simplified to its pixel; when `provinces`).
/// Points within 64 units (1/64 of the tile) beyond the edge are kept, so
/// that a symbol on a tile edge is drawn whole on both sides; boundaries
/// get the same margin. Rows are ordered, so that the same data always
/// gives the same bytes (and `ETag`). The two layers are materialised so
/// that `ST_AsMVTGeom` runs once per row (inlined, the `IS NOT NULL` below
/// would be pushed into the scan and compute it twice). Follows the
/// parameters' CTE written by [`TileStatement`].
const TILE: &str = concat!(
    "
tile AS (
    SELECT ST_TileEnvelope(z, x, y) AS envelope,
           -- With its margin, cut at the world's edge (beyond it the box
           -- would wrap round to the other side).
           ST_Transform(ST_ClipByBox2D(ST_TileEnvelope(z, x, y, margin => 64.0 / 4096),
                                       ST_TileEnvelope(0, 0, 0)), ",
    srid!(),
    ") AS search,
           lang, category, pixel_m, services, provinces, wards
    FROM params
),
grid AS (
    SELECT p.clusters AS wanted, tile.search, p.category, p.cell_m,
           p.min_x, p.max_x, p.min_y, p.max_y
    FROM params p, tile
),",
    clusters_cte!(),
    "
points AS MATERIALIZED (
    SELECT ST_AsMVTGeom(ST_Transform(p.geom, 3857), tile.envelope, 4096, 64, true) AS geom,
           p.service_id::text AS service_id,
           p.location_id::text AS location_id,
           CASE WHEN tile.lang = 'en' THEN p.name_en ELSE p.name END AS name,
           CASE WHEN tile.lang = 'en' THEN p.organization_en ELSE p.organization END AS organization,
           p.categories,
           p.approximate
    FROM public_map_points p, tile
    WHERE tile.services AND p.geom && tile.search
      AND (tile.category IS NULL OR EXISTS (
            SELECT 1 FROM service_categories sc
            WHERE sc.service_id = p.service_id AND sc.category_code = tile.category))
    ORDER BY p.service_id, p.location_id
),
tile_clusters AS MATERIALIZED (
    SELECT ST_AsMVTGeom(c.centre, tile.envelope, 4096, 0, true) AS geom,
           c.count, c.categories
    FROM clusters c, tile
    ORDER BY c.cy, c.cx
),
boundaries AS MATERIALIZED (
    SELECT ",
    boundary_in_tile!("pr.boundary_mercator", "tile"),
    " AS geom,
           pr.code,
           CASE WHEN tile.lang = 'en' THEN pr.name_en ELSE pr.name END AS name
    FROM provinces pr, tile
    WHERE tile.provinces AND pr.boundary_mercator && tile.envelope
    ORDER BY pr.code
),
ward_shapes AS MATERIALIZED (
    SELECT ",
    boundary_in_tile!("w.boundary_mercator", "tile"),
    " AS geom,
           w.code,
           -- A number too, for map clients' feature state (promoteId).
           w.code::int AS ward_id,
           CASE WHEN tile.lang = 'en' THEN w.full_name_en ELSE w.full_name END AS name
    FROM wards w, tile
    WHERE tile.wards AND w.boundary_mercator && tile.envelope
    ORDER BY w.code
),
ward_labels AS MATERIALIZED (
    SELECT ST_AsMVTGeom(ST_Transform(w.reference_point::geometry, 3857), tile.envelope, 4096, 64, true) AS geom,
           w.code,
           CASE WHEN tile.lang = 'en' THEN w.full_name_en ELSE w.full_name END AS name
    FROM wards w, tile
    WHERE tile.wards AND w.reference_point::geometry && tile.search
    ORDER BY w.code
)
SELECT coalesce((SELECT ST_AsMVT(points, 'services', 4096, 'geom') FROM points
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(tile_clusters, 'clusters', 4096, 'geom') FROM tile_clusters
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(boundaries, 'provinces', 4096, 'geom') FROM boundaries
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(ward_shapes, 'wards', 4096, 'geom') FROM ward_shapes
                 WHERE geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(ward_labels, 'ward_labels', 4096, 'geom') FROM ward_labels
                 WHERE geom IS NOT NULL), ''::bytea)"
);

/// The tile query with its parameters, as a statement diesel prepares once
/// per connection and reuses (a `sql_query` would be parsed and planned
/// again for every tile: half the time of a small tile).
struct TileStatement {
    z: i32,
    x: i32,
    y: i32,
    lang: &'static str,
    category: Option<&'static str>,
    pixel_m: f64,
    /// A cluster cell's side, and the tile's first and last cell columns
    /// and rows.
    cell_m: f64,
    cell_range: [i32; 4],
    services: bool,
    clusters: bool,
    provinces: bool,
    wards: bool,
}

impl QueryId for TileStatement {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl Query for TileStatement {
    type SqlType = Bytea;
}

impl QueryFragment<Pg> for TileStatement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH params AS (SELECT ");
        out.push_bind_param::<Integer, _>(&self.z)?;
        out.push_sql("::int AS z, ");
        out.push_bind_param::<Integer, _>(&self.x)?;
        out.push_sql("::int AS x, ");
        out.push_bind_param::<Integer, _>(&self.y)?;
        out.push_sql("::int AS y, ");
        out.push_bind_param::<Text, _>(&self.lang)?;
        out.push_sql("::text AS lang, ");
        out.push_bind_param::<Nullable<Text>, _>(&self.category)?;
        out.push_sql("::text AS category, ");
        out.push_bind_param::<Double, _>(&self.pixel_m)?;
        out.push_sql("::float8 AS pixel_m, ");
        out.push_bind_param::<Double, _>(&self.cell_m)?;
        out.push_sql("::float8 AS cell_m, ");
        for (value, name) in self
            .cell_range
            .iter()
            .zip(["min_x", "max_x", "min_y", "max_y"])
        {
            out.push_bind_param::<Integer, _>(value)?;
            out.push_sql("::int AS ");
            out.push_sql(name);
            out.push_sql(", ");
        }
        out.push_bind_param::<Bool, _>(&self.services)?;
        out.push_sql("::bool AS services, ");
        out.push_bind_param::<Bool, _>(&self.clusters)?;
        out.push_sql("::bool AS clusters, ");
        out.push_bind_param::<Bool, _>(&self.provinces)?;
        out.push_sql("::bool AS provinces, ");
        out.push_bind_param::<Bool, _>(&self.wards)?;
        out.push_sql("::bool AS wards),");
        out.push_sql(TILE);
        Ok(())
    }
}

/// One pixel of a tile in Web Mercator metres: finer detail would be lost
/// in the tile's integer grid anyway.
pub fn pixel_m(tile: Tile) -> f64 {
    2.0 * HALF_WORLD_M / f64::from(1u32 << tile.z()) / f64::from(EXTENT)
}

/// The Mapbox Vector Tile of `tile`, empty when nothing is in it.
pub async fn tile(
    conn: &mut DbConn,
    tile: Tile,
    layers: Layers,
    lang: Lang,
    category: Option<Category>,
) -> Result<Vec<u8>, DbError> {
    let pixel_m = pixel_m(tile);
    let cells = ClusterCells::of_tile(tile);
    let statement = TileStatement {
        z: i32::from(tile.z()),
        x: i32::try_from(tile.x()).unwrap_or(i32::MAX),
        y: i32::try_from(tile.y()).unwrap_or(i32::MAX),
        lang: lang.as_str(),
        category: category.map(Category::as_str),
        pixel_m,
        cell_m: cells.cell_m,
        cell_range: cell_range(&cells),
        services: layers.services && tile.z() >= SERVICES_MIN_ZOOM,
        clusters: layers.services && tile.z() < SERVICES_MIN_ZOOM,
        provinces: layers.provinces,
        wards: layers.wards && tile.z() >= WARDS_MIN_ZOOM,
    };
    Ok(statement.get_result(conn).await?)
}

/// The map's version (migration 12): a number every change to what the map
/// shows moves, inside the change's own transaction.
pub async fn map_version(conn: &mut AsyncPgConnection) -> Result<i64, DbError> {
    use crate::db::schema::map_version;
    use diesel::QueryDsl;
    Ok(map_version::table
        .select(map_version::version)
        .first(conn)
        .await?)
}

/// Asks for every later move of the map's version to be announced on this
/// connection: each on the channel `ketnoi_map_version`, with the new
/// version as its payload, once its transaction has committed (migration
/// 16). A server in recovery (a hot standby) refuses this.
pub async fn listen_for_map_version(conn: &mut AsyncPgConnection) -> Result<(), DbError> {
    diesel::sql_query(format!("LISTEN {MAP_VERSION_CHANNEL}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// The channel of [`listen_for_map_version`].
pub const MAP_VERSION_CHANNEL: &str = "ketnoi_map_version";

/// The first and last cell columns and rows, as SQL integers (a grid of at
/// most 2^22 tiles of 16 cells fits).
fn cell_range(cells: &ClusterCells) -> [i32; 4] {
    [cells.min_x, cells.max_x, cells.min_y, cells.max_y]
        .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
}

/// The clusters of a box at one zoom, with the parameters of a `grid`: the
/// box's whole cells ([`ClusterCells::covering`]).
const CLUSTERS: &str = concat!(
    "
WITH grid AS (
    SELECT true AS wanted,
           ST_Transform(ST_ClipByBox2D(ST_Expand(ST_MakeEnvelope($1, $2, $3, $4, 3857), $5 / 64),
                                       ST_TileEnvelope(0, 0, 0)), ",
    srid!(),
    ") AS search,
           $6::text AS category, $5::float8 AS cell_m,
           $7::int AS min_x, $8::int AS max_x, $9::int AS min_y, $10::int AS max_y
),",
    clusters_cte!(),
    "
point AS (
    SELECT cx, cy, count, categories, ST_Transform(centre, ",
    srid!(),
    ") AS centre FROM clusters
)
SELECT cx, cy, count,
       round(ST_X(centre)::numeric, 6)::float8 AS lon, round(ST_Y(centre)::numeric, 6)::float8 AS lat,
       categories::text AS categories
FROM point
ORDER BY cy, cx"
);

/// One cluster: its cell, how many services at a location it counts, where
/// it is shown (longitude, latitude) and its counts per category code.
#[derive(Debug, diesel::QueryableByName)]
pub struct ClusterRow {
    #[diesel(sql_type = Integer)]
    pub cx: i32,
    #[diesel(sql_type = Integer)]
    pub cy: i32,
    #[diesel(sql_type = Integer)]
    pub count: i32,
    #[diesel(sql_type = Double)]
    pub lon: f64,
    #[diesel(sql_type = Double)]
    pub lat: f64,
    /// A JSON object, category code to count.
    #[diesel(sql_type = Text)]
    pub categories: String,
}

/// The clusters of the services on the map in `cells`, of one category if
/// given, west to east then north to south.
pub async fn clusters(
    conn: &mut DbConn,
    cells: &ClusterCells,
    category: Option<Category>,
) -> Result<Vec<ClusterRow>, DbError> {
    let [west, south, east, north] = cells.envelope_m();
    let [min_x, max_x, min_y, max_y] = cell_range(cells);
    Ok(diesel::sql_query(CLUSTERS)
        .bind::<Double, _>(west)
        .bind::<Double, _>(south)
        .bind::<Double, _>(east)
        .bind::<Double, _>(north)
        .bind::<Double, _>(cells.cell_m)
        .bind::<Nullable<Text>, _>(category.map(Category::as_str))
        .bind::<Integer, _>(min_x)
        .bind::<Integer, _>(max_x)
        .bind::<Integer, _>(min_y)
        .bind::<Integer, _>(max_y)
        .load(conn)
        .await?)
}
