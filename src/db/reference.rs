//! Keeps the provinces and wards tables in step with the reference files in
//! seed-data/reference/, which are compiled into the binary. Runs after the
//! migrations on every start; a digest stored in `ketnoi_meta` makes it a
//! no-op when nothing changed.
//!
//! The ward boundaries are authoritative (migration 10): every province's
//! boundary is the union of its wards', so a point's ward and province
//! always agree.

use std::hash::{Hash, Hasher};

use anyhow::Context;
use diesel::prelude::*;
use diesel::sql_types::{Array, Double, Nullable, Text};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;

use crate::db::postgis::{make_point, srid};
use crate::db::schema::{ketnoi_meta, provinces, wards};

pub const PROVINCES_JSON: &str = include_str!("../../seed-data/reference/provinces.json");
pub const WARDS_JSON: &str = include_str!("../../seed-data/reference/wards.json");
/// The wards' boundaries, population, area and reference points.
pub const WARDS_GEOJSON: &str = include_str!("../../seed-data/reference/wards.geojson");

const DIGEST_KEY: &str = "reference_data_digest";

#[derive(Debug, Deserialize, Insertable)]
#[diesel(table_name = provinces)]
struct Province {
    code: String,
    name: String,
    name_en: String,
    full_name: String,
    full_name_en: String,
}

#[derive(Debug, Deserialize, Insertable)]
#[diesel(table_name = wards)]
pub struct Ward {
    pub code: String,
    pub province_code: String,
    pub name: String,
    pub name_en: String,
    pub full_name: String,
    pub full_name_en: String,
}

/// What the boundary file says of one ward.
#[derive(Debug, Deserialize)]
pub struct WardShapeProperties {
    pub code: String,
    pub province_code: String,
    pub population: Option<i32>,
    pub area_km2: f64,
    /// `[lon, lat]`, inside the ward.
    pub point_on_surface: [f64; 2],
}

/// One ward of the boundary file.
#[derive(Debug, Deserialize)]
pub struct WardShape {
    pub properties: WardShapeProperties,
    pub geometry: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct WardShapes {
    features: Vec<WardShape>,
}

/// The wards of the boundary file, in its order.
pub fn ward_shapes() -> anyhow::Result<Vec<WardShape>> {
    let shapes: WardShapes =
        serde_json::from_str(WARDS_GEOJSON).context("wards.geojson is malformed")?;
    Ok(shapes.features)
}

fn digest() -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    PROVINCES_JSON.hash(&mut hasher);
    WARDS_JSON.hash(&mut hasher);
    WARDS_GEOJSON.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Loads or refreshes provinces and wards; returns whether anything was
/// written.
pub async fn sync(conn: &mut AsyncPgConnection) -> anyhow::Result<bool> {
    let digest = digest();
    let stored: Option<String> = ketnoi_meta::table
        .find(DIGEST_KEY)
        .select(ketnoi_meta::value)
        .first(conn)
        .await
        .optional()?;
    if stored.as_deref() == Some(digest.as_str()) {
        return Ok(false);
    }
    let provinces: Vec<Province> =
        serde_json::from_str(PROVINCES_JSON).context("provinces.json is malformed")?;
    let wards: Vec<Ward> = serde_json::from_str(WARDS_JSON).context("wards.json is malformed")?;
    let shapes = ward_shapes()?;

    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        for province in &provinces {
            // A new province starts empty; its wards give it its boundary.
            diesel::insert_into(provinces::table)
                .values((
                    province,
                    provinces::boundary.eq(
                        diesel::dsl::sql::<postgis_diesel::sql_types::Geography>(
                            "'MULTIPOLYGON EMPTY'::geography",
                        ),
                    ),
                ))
                .on_conflict(provinces::code)
                .do_update()
                .set((
                    provinces::name.eq(excluded(provinces::name)),
                    provinces::name_en.eq(excluded(provinces::name_en)),
                    provinces::full_name.eq(excluded(provinces::full_name)),
                    provinces::full_name_en.eq(excluded(provinces::full_name_en)),
                ))
                .execute(conn)
                .await?;
        }
        for chunk in wards.chunks(1000) {
            diesel::insert_into(wards::table)
                .values(chunk)
                .on_conflict(wards::code)
                .do_update()
                .set((
                    wards::province_code.eq(excluded(wards::province_code)),
                    wards::name.eq(excluded(wards::name)),
                    wards::name_en.eq(excluded(wards::name_en)),
                    wards::full_name.eq(excluded(wards::full_name)),
                    wards::full_name_en.eq(excluded(wards::full_name_en)),
                ))
                .execute(conn)
                .await?;
        }
        for chunk in shapes.chunks(500) {
            let codes: Vec<&str> = chunk.iter().map(|s| s.properties.code.as_str()).collect();
            let geometries: Vec<String> = chunk.iter().map(|s| s.geometry.to_string()).collect();
            let populations: Vec<Option<i32>> =
                chunk.iter().map(|s| s.properties.population).collect();
            let areas: Vec<f64> = chunk.iter().map(|s| s.properties.area_km2).collect();
            let lons: Vec<f64> = chunk
                .iter()
                .map(|s| s.properties.point_on_surface[0])
                .collect();
            let lats: Vec<f64> = chunk
                .iter()
                .map(|s| s.properties.point_on_surface[1])
                .collect();
            diesel::sql_query(concat!(
                "UPDATE wards w SET boundary = \
                 ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(t.geometry), ",
                srid!(),
                "))::geography, population = t.population, area_km2 = t.area_km2, \
                 reference_point = ",
                make_point!("t.lon", "t.lat"),
                "::geography \
                 FROM unnest($1::text[], $2::text[], $3::int4[], $4::float8[], $5::float8[], \
                             $6::float8[]) AS t(code, geometry, population, area_km2, lon, lat) \
                 WHERE w.code = t.code"
            ))
            .bind::<Array<Text>, _>(&codes)
            .bind::<Array<Text>, _>(&geometries)
            .bind::<Array<Nullable<diesel::sql_types::Integer>>, _>(&populations)
            .bind::<Array<Double>, _>(&areas)
            .bind::<Array<Double>, _>(&lons)
            .bind::<Array<Double>, _>(&lats)
            .execute(conn)
            .await?;
        }
        // The wards are authoritative: each province is their union.
        diesel::sql_query(
            "UPDATE provinces p SET boundary = u.boundary \
             FROM (SELECT province_code, \
                          ST_Multi(ST_Union(boundary::geometry))::geography AS boundary \
                   FROM wards WHERE boundary IS NOT NULL GROUP BY province_code) u \
             WHERE p.code = u.province_code",
        )
        .execute(conn)
        .await?;
        // Locations written before the wards had boundaries get theirs, and
        // so do those whose ward does not contain them (written before the
        // rule): the same test as a write's (WARD_TOLERANCE_M).
        diesel::sql_query(
            "UPDATE locations l SET ward_code = ketnoi_location_ward(l.point, l.province_code) \
             WHERE l.ward_code IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM wards w WHERE w.code = l.ward_code \
                 AND (w.boundary IS NULL OR ST_DWithin(w.boundary, l.point, $1)))",
        )
        .bind::<Double, _>(crate::db::models::writes::WARD_TOLERANCE_M)
        .execute(conn)
        .await?;
        // Provinces' and wards' areas rank remote matches; keep the sums in
        // step.
        diesel::sql_query(
            "SELECT ketnoi_refresh_match(service_id) FROM \
             (SELECT DISTINCT service_id FROM service_areas \
              WHERE province_code IS NOT NULL OR ward_code IS NOT NULL) s",
        )
        .execute(conn)
        .await?;
        diesel::insert_into(ketnoi_meta::table)
            .values((
                ketnoi_meta::key.eq(DIGEST_KEY),
                ketnoi_meta::value.eq(&digest),
            ))
            .on_conflict(ketnoi_meta::key)
            .do_update()
            .set((
                ketnoi_meta::value.eq(excluded(ketnoi_meta::value)),
                ketnoi_meta::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::province::PROVINCE_CODES;

    #[test]
    fn the_reference_file_has_the_34_official_provinces() {
        let provinces: Vec<Province> = serde_json::from_str(PROVINCES_JSON).unwrap();
        let codes: Vec<&str> = provinces.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, PROVINCE_CODES);
    }

    #[test]
    fn every_ward_belongs_to_a_known_province() {
        let wards: Vec<Ward> = serde_json::from_str(WARDS_JSON).unwrap();
        assert_eq!(wards.len(), 3321);
        assert!(
            wards
                .iter()
                .all(|w| PROVINCE_CODES.contains(&w.province_code.as_str()))
        );
    }

    #[test]
    fn every_ward_has_a_boundary_in_its_own_province() {
        let wards: Vec<Ward> = serde_json::from_str(WARDS_JSON).unwrap();
        let province_of: std::collections::HashMap<&str, &str> = wards
            .iter()
            .map(|w| (w.code.as_str(), w.province_code.as_str()))
            .collect();
        let shapes = ward_shapes().unwrap();
        assert_eq!(shapes.len(), wards.len());
        for shape in &shapes {
            let p = &shape.properties;
            assert_eq!(
                province_of.get(p.code.as_str()),
                Some(&p.province_code.as_str())
            );
            assert_eq!(shape.geometry["type"], "MultiPolygon", "{}", p.code);
        }
    }
}
