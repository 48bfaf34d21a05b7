//! The coverage review's query: for one category and every ward of the
//! chosen provinces, the nearest eligible in-person location from the
//! ward's reference point and whether an eligible remote service covers the
//! ward, in one statement.
//!
//! The nearest location is found as the matcher finds it: a nearest-first
//! walk of the category's partition of match_locations (GiST, `<->` on the
//! sphere), checking each location's service (one primary-key lookup) and
//! stopping at the first few that pass; the walk is bounded by the horizon
//! (an index condition), so a ward with nothing eligible nearby costs at
//! most the locations within it. Of the first four found, the smallest
//! spheroid distance wins (the sphere and the spheroid order may differ by
//! well under 1%). Remote reach is computed once per province, per ward and
//! for the services that serve everywhere, and per ward only for polygons.
//!
//! Bind parameters: `$1` category, `$2` provinces (text[], NULL: all), `$3`
//! horizon (metres), `$4`/`$5` the age band, `$6` gender, `$7` victim
//! status, `$8` languages (text[]), `$9` documents (text[]), `$10` ward
//! codes (text[], NULL: all of the provinces). Nationality and residence
//! are not part of a band: their rules do not exclude.

use std::sync::LazyLock;

use diesel::sql_types::{Array, Double, Integer, Nullable, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;

use super::DbError;
use super::eligibility::{ProfileBinds, eligibility_sql};
use super::public_map::boundary_in_tile;
use crate::db::DbConn;
use crate::domain::access::{Audience, point_column};
use crate::domain::category::Category;
use crate::domain::coverage::{CoverageQuery, HORIZON_M, Reach};
use crate::domain::map::Tile;

const BINDS: ProfileBinds = ProfileBinds {
    age_min: "$4",
    age_max: "$5",
    gender: "$6",
    victim_status: "$7",
    nationality: "NULL",
    residence_province: "NULL",
    languages: "$8",
    documents: "$9",
};

fn statement(points: Audience) -> String {
    let eligible = format!(
        "s.status = 'active' AND s.accepting_referrals AND {}",
        eligibility_sql(&BINDS)
    );
    let p = format!("m.{}", point_column(points));
    format!(
        "WITH w AS MATERIALIZED (
    SELECT code, province_code, reference_point AS pt FROM wards
    WHERE reference_point IS NOT NULL AND ($2::text[] IS NULL OR province_code = ANY ($2::text[]))
      AND ($10::text[] IS NULL OR code = ANY ($10::text[]))
), everywhere AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM match_reach m JOIN services s ON s.id = m.service_id
                   WHERE m.category_code = $1 AND m.province_code IS NULL AND m.ward_code IS NULL
                     AND m.service_area_m2 IS NULL AND {eligible}) AS yes
), by_province AS MATERIALIZED (
    SELECT DISTINCT m.province_code FROM match_reach m JOIN services s ON s.id = m.service_id
    WHERE m.category_code = $1 AND m.province_code IS NOT NULL AND {eligible}
), by_ward AS MATERIALIZED (
    SELECT DISTINCT m.ward_code FROM match_reach m JOIN services s ON s.id = m.service_id
    WHERE m.category_code = $1 AND m.ward_code IS NOT NULL AND {eligible}
)
SELECT w.code,
    (SELECT min(ST_Distance(x.pt, w.pt)) FROM (
        SELECT {p} AS pt FROM match_locations m
        CROSS JOIN LATERAL (SELECT * FROM services WHERE id = m.service_id LIMIT 1) s
        WHERE m.category_code = $1 AND ST_DWithin({p}, w.pt, $3)
          AND {eligible}
          AND (s.service_area_m2 IS NULL OR EXISTS (
                SELECT 1 FROM service_areas a WHERE a.service_id = s.id
                AND (a.province_code = w.province_code OR a.ward_code = w.code
                     OR ST_Covers(a.extent::geometry, w.pt::geometry))))
        ORDER BY {p} <-> w.pt
        LIMIT 4) x) AS nearest_m,
    (SELECT yes FROM everywhere)
        OR w.province_code IN (SELECT province_code FROM by_province)
        OR w.code IN (SELECT ward_code FROM by_ward)
        OR EXISTS (SELECT 1 FROM service_areas a JOIN services s ON s.id = a.service_id
                   WHERE ST_Covers(a.extent::geometry, w.pt::geometry) AND s.delivery_remote
                     AND {eligible}
                     AND EXISTS (SELECT 1 FROM service_categories sc
                                 WHERE sc.service_id = s.id AND sc.category_code = $1)) AS remote
FROM w
ORDER BY w.code"
    )
}

static EXACT: LazyLock<String> = LazyLock::new(|| statement(Audience::Full));
static PUBLIC: LazyLock<String> = LazyLock::new(|| statement(Audience::Public));

/// The statement as it is sent (with `$n` parameters), for benchmarks that
/// replay it without the API.
pub fn statement_for(points: Audience) -> &'static str {
    match points {
        Audience::Full => &EXACT,
        Audience::Public => &PUBLIC,
    }
}

#[derive(Debug, QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Nullable<Double>)]
    nearest_m: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    remote: bool,
}

/// Every reviewed ward's reach for one category, by ward code (only the
/// `wards` given, if any). Distances are measured to the points `points`
/// names (the public ones for readers who are given bands).
pub async fn reach(
    conn: &mut DbConn,
    query: &CoverageQuery,
    category: Category,
    points: Audience,
    wards: Option<&[String]>,
) -> Result<Vec<(String, Reach)>, DbError> {
    let provinces: Option<Vec<&str>> =
        (!query.provinces.is_empty()).then(|| query.provinces.iter().map(|p| p.as_str()).collect());
    let (min_age, max_age) = query.band.ages();
    let rows: Vec<Row> = sql_query(statement_for(points))
        .bind::<Text, _>(category.as_str())
        .bind::<Nullable<Array<Text>>, _>(provinces)
        .bind::<Double, _>(HORIZON_M)
        .bind::<Nullable<Integer>, _>(min_age.map(i32::from))
        .bind::<Nullable<Integer>, _>(max_age.map(i32::from))
        .bind::<Nullable<Text>, _>(query.band.gender.map(|g| g.as_str()))
        .bind::<Nullable<Text>, _>(query.band.victim_status.map(|v| v.as_str()))
        .bind::<Nullable<Array<Text>>, _>(
            query
                .band
                .languages
                .as_ref()
                .map(|ls| ls.iter().map(|l| l.as_str().to_owned()).collect::<Vec<_>>()),
        )
        .bind::<Nullable<Array<Text>>, _>(
            query
                .band
                .documents
                .as_ref()
                .map(|ds| ds.iter().map(|d| d.as_str()).collect::<Vec<_>>()),
        )
        .bind::<Nullable<Array<Text>>, _>(wards)
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.code,
                Reach {
                    nearest_in_person_m: row.nearest_m,
                    remote: row.remote,
                },
            )
        })
        .collect())
}

/// The wards whose boundary reaches into a tile, by code.
pub async fn wards_in_tile(conn: &mut DbConn, tile: Tile) -> Result<Vec<String>, DbError> {
    #[derive(QueryableByName)]
    struct Code {
        #[diesel(sql_type = Text)]
        code: String,
    }
    let rows: Vec<Code> = sql_query(
        "SELECT code FROM wards \
         WHERE boundary_mercator && ST_TileEnvelope($1, $2, $3) ORDER BY code",
    )
    .bind::<Integer, _>(i32::from(tile.z()))
    .bind::<Integer, _>(i32::try_from(tile.x()).unwrap_or(i32::MAX))
    .bind::<Integer, _>(i32::try_from(tile.y()).unwrap_or(i32::MAX))
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|row| row.code).collect())
}

/// One ward's result as a coverage tile carries it.
#[derive(Debug, Clone)]
pub struct TileWard {
    pub code: String,
    pub band: &'static str,
    pub in_person_within_radius: bool,
    pub remote: bool,
    pub served: bool,
}

/// A Mapbox Vector Tile with one layer, `coverage`: the wards' boundaries
/// (clipped to the tile and simplified to its pixel, as the public map's
/// `wards` layer) with their results as properties. Empty when no ward is
/// in it.
pub async fn tile(conn: &mut DbConn, tile: Tile, wards: &[TileWard]) -> Result<Vec<u8>, DbError> {
    let codes: Vec<&str> = wards.iter().map(|w| w.code.as_str()).collect();
    let bands: Vec<&str> = wards.iter().map(|w| w.band).collect();
    let within: Vec<bool> = wards.iter().map(|w| w.in_person_within_radius).collect();
    let remote: Vec<bool> = wards.iter().map(|w| w.remote).collect();
    let served: Vec<bool> = wards.iter().map(|w| w.served).collect();
    #[derive(QueryableByName)]
    struct Bytes {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        tile: Vec<u8>,
    }
    let found: Bytes = sql_query(concat!(
        "WITH t AS (SELECT ST_TileEnvelope($1, $2, $3) AS envelope, $4::float8 AS pixel_m),
         r AS (SELECT * FROM unnest($5::text[], $6::text[], $7::bool[], $8::bool[], $9::bool[])
               AS r(code, band, in_person_within_radius, remote, served)),
         f AS MATERIALIZED (
             SELECT ",
        boundary_in_tile!("w.boundary_mercator", "t"),
        " AS geom,
                    w.code, w.code::int AS ward_id, r.band, r.in_person_within_radius,
                    r.remote, r.served
             FROM r JOIN wards w ON w.code = r.code, t
             ORDER BY w.code)
         SELECT coalesce((SELECT ST_AsMVT(f, 'coverage', 4096, 'geom') FROM f
                          WHERE geom IS NOT NULL), ''::bytea) AS tile"
    ))
    .bind::<Integer, _>(i32::from(tile.z()))
    .bind::<Integer, _>(i32::try_from(tile.x()).unwrap_or(i32::MAX))
    .bind::<Integer, _>(i32::try_from(tile.y()).unwrap_or(i32::MAX))
    .bind::<Double, _>(super::public_map::pixel_m(tile))
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Text>, _>(&bands)
    .bind::<Array<diesel::sql_types::Bool>, _>(&within)
    .bind::<Array<diesel::sql_types::Bool>, _>(&remote)
    .bind::<Array<diesel::sql_types::Bool>, _>(&served)
    .get_result(conn)
    .await?;
    Ok(found.tile)
}
