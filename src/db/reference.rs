//! Keeps the provinces and wards tables in step with the reference files in
//! seed-data/reference/, which are compiled into the binary. Runs after the
//! migrations on every start; a digest stored in `ketnoi_meta` makes it a
//! no-op when nothing changed.

use std::hash::{Hash, Hasher};

use anyhow::{Context, anyhow};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;

use crate::db::postgis::to_postgis;
use crate::db::schema::{ketnoi_meta, provinces, wards};

pub const PROVINCES_GEOJSON: &str = include_str!("../../seed-data/reference/provinces.geojson");
pub const WARDS_JSON: &str = include_str!("../../seed-data/reference/wards.json");

const DIGEST_KEY: &str = "reference_data_digest";

#[derive(Debug, Deserialize)]
struct ProvinceProperties {
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

#[derive(Insertable)]
#[diesel(table_name = provinces)]
struct NewProvince {
    code: String,
    name: String,
    name_en: String,
    full_name: String,
    full_name_en: String,
    boundary: postgis_diesel::types::MultiPolygon<postgis_diesel::types::Point>,
}

fn digest() -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    PROVINCES_GEOJSON.hash(&mut hasher);
    WARDS_JSON.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn parse_provinces() -> anyhow::Result<Vec<NewProvince>> {
    let collection: geojson::FeatureCollection = PROVINCES_GEOJSON
        .parse::<geojson::GeoJson>()?
        .try_into()
        .context("provinces.geojson is not a FeatureCollection")?;
    collection
        .features
        .into_iter()
        .map(|feature| {
            let properties: ProvinceProperties = serde_json::from_value(
                serde_json::Value::Object(feature.properties.clone().unwrap_or_default()),
            )?;
            let geometry = feature
                .geometry
                .ok_or_else(|| anyhow!("province {} has no boundary", properties.code))?;
            let boundary: geo::MultiPolygon<f64> = geometry
                .try_into()
                .with_context(|| format!("province {} is not a MultiPolygon", properties.code))?;
            Ok(NewProvince {
                boundary: to_postgis(&boundary),
                code: properties.code,
                name: properties.name,
                name_en: properties.name_en,
                full_name: properties.full_name,
                full_name_en: properties.full_name_en,
            })
        })
        .collect()
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
    let provinces = parse_provinces()?;
    let wards: Vec<Ward> = serde_json::from_str(WARDS_JSON).context("wards.json is malformed")?;

    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        for province in &provinces {
            diesel::insert_into(provinces::table)
                .values(province)
                .on_conflict(provinces::code)
                .do_update()
                .set((
                    provinces::name.eq(excluded(provinces::name)),
                    provinces::name_en.eq(excluded(provinces::name_en)),
                    provinces::full_name.eq(excluded(provinces::full_name)),
                    provinces::full_name_en.eq(excluded(provinces::full_name_en)),
                    provinces::boundary.eq(excluded(provinces::boundary)),
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
        // Provinces' areas rank remote matches; keep the sums in step.
        diesel::sql_query(
            "SELECT ketnoi_refresh_match(service_id) FROM \
             (SELECT DISTINCT service_id FROM service_areas WHERE province_code IS NOT NULL) s",
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
        let provinces = parse_provinces().unwrap();
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
}
