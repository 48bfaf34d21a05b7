//! The coverage review: for every ward of the chosen provinces and each
//! category, whether an eligible service can take a person there, with
//! totals by province and for the country (domain::coverage has the rules).
//!
//! Who sees what (domain::access): caseworkers and admins get distances in
//! metres to the exact points; everyone else gets them measured to the
//! public points (a shelter's 0.1° cell) and published only in bands, with
//! the radius one of the bands' edges, so that no output of the review can
//! narrow a shelter below its public cell. Nothing is cached: each request
//! reads the matcher's tables, which every write keeps current.

use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::coverage;
use crate::db::models::reference::{self, WardRecord};
use crate::domain::access::{Actor, Audience};
use crate::domain::coverage::{CoverageQuery, Reach, Totals};

/// One ward's results, one per category in the order asked.
#[derive(Debug, Clone)]
pub struct WardCoverage {
    pub ward: WardRecord,
    pub reach: Vec<Reach>,
}

/// One province's totals, one per category.
#[derive(Debug, Clone)]
pub struct ProvinceCoverage {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub totals: Vec<Totals>,
}

#[derive(Debug, Clone)]
pub struct CoverageReport {
    pub query: CoverageQuery,
    /// `Full`: exact metres; `Public`: bands from the public points.
    pub distances: Audience,
    pub wards: Vec<WardCoverage>,
    pub provinces: Vec<ProvinceCoverage>,
    /// Every reviewed ward together, one per category.
    pub total: Vec<Totals>,
}

pub async fn run(
    conn: &mut DbConn,
    actor: &Actor,
    query: CoverageQuery,
) -> Result<CoverageReport, DbError> {
    let distances = actor.visibility().distances();
    let wards = reference::wards_of(conn, &query.provinces).await?;
    let mut reach: Vec<Vec<Reach>> = vec![Vec::with_capacity(query.categories.len()); wards.len()];
    for category in &query.categories {
        let found = coverage::reach(conn, &query, *category, distances, None).await?;
        let by_code: std::collections::HashMap<String, Reach> = found.into_iter().collect();
        for (ward, results) in wards.iter().zip(reach.iter_mut()) {
            results.push(by_code.get(&ward.code).copied().unwrap_or(Reach {
                nearest_in_person_m: None,
                remote: false,
            }));
        }
    }
    let mut total = vec![Totals::default(); query.categories.len()];
    let mut provinces: std::collections::BTreeMap<String, ProvinceCoverage> =
        std::collections::BTreeMap::new();
    for (ward, results) in wards.iter().zip(&reach) {
        let province = provinces
            .entry(ward.province_code.clone())
            .or_insert_with(|| ProvinceCoverage {
                code: ward.province_code.clone(),
                name: ward.province_name.clone(),
                name_en: ward.province_name_en.clone(),
                totals: vec![Totals::default(); query.categories.len()],
            });
        for (i, result) in results.iter().enumerate() {
            total[i].add(result, ward.population, query.radius);
            province.totals[i].add(result, ward.population, query.radius);
        }
    }
    Ok(CoverageReport {
        distances,
        wards: wards
            .into_iter()
            .zip(reach)
            .map(|(ward, reach)| WardCoverage { ward, reach })
            .collect(),
        provinces: provinces.into_values().collect(),
        total,
        query,
    })
}

/// A vector tile of the review for the public map: one category, the wards
/// in the tile, always in bands from the public points (whoever asks: a
/// public map is the same for every caller). Empty below the zoom from
/// which the map shows wards.
pub async fn tile(
    conn: &mut DbConn,
    query: &CoverageQuery,
    category: crate::domain::category::Category,
    tile: crate::domain::map::Tile,
) -> Result<Vec<u8>, DbError> {
    use crate::domain::coverage::Band;
    if tile.z() < crate::db::models::public_map::WARDS_MIN_ZOOM {
        return Ok(Vec::new());
    }
    let codes = coverage::wards_in_tile(conn, tile).await?;
    if codes.is_empty() {
        return Ok(Vec::new());
    }
    let found = coverage::reach(conn, query, category, Audience::Public, Some(&codes)).await?;
    let wards: Vec<coverage::TileWard> = found
        .into_iter()
        .map(|(code, reach)| coverage::TileWard {
            code,
            band: Band::of(reach.nearest_in_person_m).as_str(),
            in_person_within_radius: reach.in_person(query.radius),
            remote: reach.remote,
            served: reach.served(query.radius),
        })
        .collect();
    coverage::tile(conn, tile, &wards).await
}
