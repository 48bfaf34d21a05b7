//! The reference vocabularies: categories, provinces, wards.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use postgis_diesel::types::{MultiPolygon, Point};

use super::{DbError, search};
use crate::db::DbConn;
use crate::db::postgis::make_point;
use crate::db::schema::{categories, provinces, wards};
use crate::domain::geo::Coordinates;
use crate::domain::page::PageRequest;
use crate::domain::province::ProvinceCode;
use crate::domain::search::SearchText;
use crate::domain::ward::WardCode;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = categories)]
pub struct CategoryRow {
    pub code: String,
    pub label_vi: String,
    pub label_en: String,
    pub description_vi: String,
    pub description_en: String,
}

pub async fn list_categories(conn: &mut DbConn) -> Result<Vec<CategoryRow>, DbError> {
    Ok(categories::table
        .order(categories::position)
        .select(CategoryRow::as_select())
        .load(conn)
        .await?)
}

/// Categories matching search words, most relevant first.
pub async fn search_categories(
    conn: &mut DbConn,
    words: &SearchText,
) -> Result<Vec<CategoryRow>, DbError> {
    Ok(categories::table
        .filter(search::category_matches(words))
        .order((
            search::category_relevance(words).desc(),
            categories::position,
        ))
        .select(CategoryRow::as_select())
        .load(conn)
        .await?)
}

/// Whether a constant text of ours matches search words.
pub async fn text_matches(
    conn: &mut DbConn,
    text: &str,
    words: &SearchText,
) -> Result<bool, DbError> {
    Ok(diesel::select(search::text_matches(text, words))
        .get_result(conn)
        .await?)
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = provinces)]
pub struct ProvinceRow {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub full_name: String,
    pub full_name_en: String,
}

pub async fn list_provinces(conn: &mut DbConn) -> Result<Vec<ProvinceRow>, DbError> {
    Ok(provinces::table
        .order(provinces::code)
        .select(ProvinceRow::as_select())
        .load(conn)
        .await?)
}

pub async fn find_province(conn: &mut DbConn, code: &str) -> Result<Option<ProvinceRow>, DbError> {
    Ok(provinces::table
        .find(code)
        .select(ProvinceRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// A province's wards and communes, by code.
pub async fn province_wards(conn: &mut DbConn, province: &str) -> Result<Vec<WardRecord>, DbError> {
    Ok(diesel::sql_query(format!(
        "SELECT {WARD_COLUMNS} FROM wards w JOIN provinces p ON p.code = w.province_code \
         WHERE w.province_code = $1 ORDER BY w.code"
    ))
    .bind::<Text, _>(province)
    .load(conn)
    .await?)
}

/// A ward with what a reader may want of it: its province's names, its
/// population, area and reference point.
#[derive(Debug, Clone, QueryableByName)]
pub struct WardRecord {
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = Text)]
    pub province_code: String,
    #[diesel(sql_type = Text)]
    pub province_name: String,
    #[diesel(sql_type = Text)]
    pub province_name_en: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub name_en: String,
    #[diesel(sql_type = Text)]
    pub full_name: String,
    #[diesel(sql_type = Text)]
    pub full_name_en: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub population: Option<i32>,
    #[diesel(sql_type = Nullable<Double>)]
    pub area_km2: Option<f64>,
    /// The reference point, `None` only before the boundaries are loaded.
    #[diesel(sql_type = Nullable<Double>)]
    pub lat: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub lon: Option<f64>,
}

impl WardRecord {
    /// Where distances are measured from for a person given by this ward.
    pub fn reference_point(&self) -> Option<Coordinates> {
        Coordinates::new(self.lat?, self.lon?).ok()
    }
}

/// The columns of [`WardRecord`], over `wards w JOIN provinces p`.
const WARD_COLUMNS: &str = "w.code, w.province_code, p.name AS province_name, \
    p.name_en AS province_name_en, w.name, w.name_en, w.full_name, w.full_name_en, \
    w.population, w.area_km2, ST_Y(w.reference_point::geometry) AS lat, \
    ST_X(w.reference_point::geometry) AS lon";

#[derive(QueryableByName)]
struct CountedWard {
    #[diesel(embed)]
    ward: WardRecord,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

pub async fn find_ward(
    mut conn: &AsyncPgConnection,
    code: &WardCode,
) -> Result<Option<WardRecord>, DbError> {
    Ok(diesel::sql_query(format!(
        "SELECT {WARD_COLUMNS} FROM wards w JOIN provinces p ON p.code = w.province_code \
         WHERE w.code = $1"
    ))
    .bind::<Text, _>(code.as_str())
    .get_result(&mut conn)
    .await
    .optional()?)
}

/// A ward's boundary.
pub async fn ward_boundary(
    conn: &mut DbConn,
    code: &WardCode,
) -> Result<Option<MultiPolygon<Point>>, DbError> {
    Ok(wards::table
        .find(code.as_str())
        .select(wards::boundary)
        .first::<Option<MultiPolygon<Point>>>(conn)
        .await
        .optional()?
        .flatten())
}

/// What a ward list asks for; every filter given narrows it.
#[derive(Debug, Clone, Default)]
pub struct WardFilter {
    pub province: Option<ProvinceCode>,
    /// Words that must all begin a word of the names, diacritics and case
    /// aside.
    pub words: Vec<String>,
    /// Only the ward containing this point (the lowest code on an edge).
    pub at: Option<Coordinates>,
}

/// Wards by filter, a page of them and how many match: with words, an
/// exact name first, then names starting with them, then by code.
pub async fn search_wards(
    conn: &mut DbConn,
    filter: &WardFilter,
    page: PageRequest,
) -> Result<(Vec<WardRecord>, i64), DbError> {
    let rows: Vec<CountedWard> = diesel::sql_query(format!(
        "WITH q AS (SELECT ketnoi_fold(array_to_string($2::text[], ' ')) AS phrase) \
         SELECT {WARD_COLUMNS}, count(*) OVER () AS total \
         FROM wards w JOIN provinces p ON p.code = w.province_code CROSS JOIN q \
         WHERE ($1::text IS NULL OR w.province_code = $1) \
           AND (SELECT bool_and(strpos(' ' || w.folded_names, ' ' || ketnoi_fold(word)) > 0) \
                FROM unnest($2::text[]) AS word) IS NOT FALSE \
           AND ($3::float8 IS NULL OR w.code = ketnoi_ward_at({point})) \
         ORDER BY ketnoi_fold(w.name) = q.phrase DESC, \
                  starts_with(ketnoi_fold(w.name), q.phrase) DESC, w.code \
         LIMIT $5 OFFSET $6",
        point = make_point!("$4", "$3"),
    ))
    .bind::<Nullable<Text>, _>(filter.province.map(|p| p.as_str()))
    .bind::<Array<Text>, _>(&filter.words)
    .bind::<Nullable<Double>, _>(filter.at.map(|c| c.lat()))
    .bind::<Nullable<Double>, _>(filter.at.map(|c| c.lon()))
    .bind::<BigInt, _>(page.limit())
    .bind::<BigInt, _>(page.offset())
    .load(conn)
    .await?;
    let total = match <[CountedWard]>::first(&rows) {
        Some(row) => row.total,
        // Past the last page: count without it.
        None if page.offset() > 0 => {
            let first = PageRequest::new(Some(1), Some(1)).unwrap_or(page);
            Box::pin(search_wards(conn, filter, first)).await?.1
        }
        None => 0,
    };
    Ok((rows.into_iter().map(|row| row.ward).collect(), total))
}

/// The wards of some provinces (all of them for none), by code.
pub async fn wards_of(
    conn: &mut DbConn,
    provinces: &[ProvinceCode],
) -> Result<Vec<WardRecord>, DbError> {
    let codes: Option<Vec<&str>> =
        (!provinces.is_empty()).then(|| provinces.iter().map(|p| p.as_str()).collect());
    Ok(diesel::sql_query(format!(
        "SELECT {WARD_COLUMNS} FROM wards w JOIN provinces p ON p.code = w.province_code \
         WHERE $1::text[] IS NULL OR w.province_code = ANY ($1::text[]) ORDER BY w.code"
    ))
    .bind::<Nullable<Array<Text>>, _>(codes)
    .load(conn)
    .await?)
}

/// The boundaries of some wards as GeoJSON text, by code.
pub async fn boundaries_geojson(
    conn: &mut DbConn,
    codes: &[&str],
) -> Result<std::collections::HashMap<String, String>, DbError> {
    #[derive(QueryableByName)]
    struct Shape {
        #[diesel(sql_type = Text)]
        code: String,
        #[diesel(sql_type = Text)]
        geojson: String,
    }
    let shapes: Vec<Shape> = diesel::sql_query(
        "SELECT code, ST_AsGeoJSON(boundary, 5) AS geojson FROM wards \
         WHERE code = ANY ($1::text[]) AND boundary IS NOT NULL",
    )
    .bind::<Array<Text>, _>(codes)
    .load(conn)
    .await?;
    Ok(shapes.into_iter().map(|s| (s.code, s.geojson)).collect())
}
