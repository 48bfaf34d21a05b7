//! `GET /v1/coverage` (JSON), `/v1/coverage.csv` and `/v1/coverage.geojson`:
//! where eligible help is out of reach, ward by ward, with totals by
//! province and for the whole review. Anyone may ask; caseworkers and
//! admins get distances in metres, everyone else bands measured from the
//! public points (workflows::coverage says why).

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::extract::ApiQuery;
use super::params::FieldErrors;
use super::problem::{ApiError, FieldError, responses};
use super::reference::PointView;
use crate::domain::access::Audience;
use crate::domain::category::Category;
use crate::domain::coverage::{
    BAND_EDGES_KM, Band, CoverageQuery, HORIZON_M, ProfileBand, RadiusKm, Reach, Totals,
};
use crate::domain::province::ProvinceCode;
use crate::domain::service::{DocumentType, Gender, LanguageCode, VictimStatus};
use crate::workflows::coverage::{self as workflow, CoverageReport, WardCoverage};

/// What to review, and for whom.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CoverageParams {
    /// Categories, comma-separated, each reviewed on its own; default all
    /// twelve.
    #[param(value_type = Option<super::params::CategoryList>, inline)]
    pub category: Option<String>,
    /// Province codes, comma-separated; default the whole country.
    #[param(pattern = r"^[0-9]{2}(,[0-9]{2})*$", example = "15,08")]
    pub province: Option<String>,
    /// How far a person can travel to an in-person service, in kilometres:
    /// 1 to 100 for caseworkers and admins; for everyone else one of the
    /// bands' edges, 5, 15, 30 or 60. Default 30.
    #[param(minimum = 1, maximum = 100, default = 30)]
    pub radius_km: Option<u32>,
    /// The youngest age of the group, whole years; a service must admit
    /// every age from `min_age` to `max_age`.
    #[param(minimum = 0, maximum = 130)]
    pub min_age: Option<u32>,
    /// The oldest age of the group (e.g. 17 for children).
    #[param(minimum = 0, maximum = 130)]
    pub max_age: Option<u32>,
    /// The group's gender: a service restricted to other genders does not
    /// count.
    #[param(inline)]
    pub gender: Option<Gender>,
    /// The group's victim status: a service restricted to other statuses
    /// does not count.
    #[param(inline)]
    pub victim_status: Option<VictimStatus>,
    /// Languages the group speaks, ISO 639 codes, comma-separated.
    #[param(pattern = r"^[a-z]{2,3}(,[a-z]{2,3})*$", example = "hnj")]
    pub languages: Option<String>,
    /// Documents the group holds, comma-separated (empty: none).
    #[param(example = "national_id")]
    pub documents: Option<String>,
}

impl CoverageParams {
    fn parse(self, exact: bool) -> Result<CoverageQuery, ApiError> {
        let mut errors = FieldErrors::default();
        let categories = errors.categories("category", self.category.as_deref());
        let provinces = self
            .province
            .as_deref()
            .map(|value| errors.list("province", value, ProvinceCode::parse))
            .unwrap_or_default();
        let radius = match self.radius_km {
            None => Some(RadiusKm::DEFAULT),
            Some(km) => errors.take("radius_km", RadiusKm::new(km, exact)),
        };
        let age = |errors: &mut FieldErrors, field: &str, value: Option<u32>| {
            value.and_then(|age| {
                let age = u8::try_from(age).ok().filter(|age| *age <= 130);
                if age.is_none() {
                    errors.push(FieldError::new(field, "range", "an age between 0 and 130"));
                }
                age
            })
        };
        let min_age = age(&mut errors, "min_age", self.min_age);
        let max_age = age(&mut errors, "max_age", self.max_age);
        if let (Some(min), Some(max)) = (min_age, max_age)
            && min > max
        {
            errors.push(FieldError::new(
                "max_age",
                "ordered",
                "max_age must not be below min_age",
            ));
        }
        let languages = self
            .languages
            .as_deref()
            .map(|value| errors.list("languages", value, LanguageCode::parse));
        let documents = self.documents.as_deref().map(|value| {
            value
                .split(',')
                .filter(|item| !item.is_empty())
                .filter_map(|item| errors.take("documents", DocumentType::parse(item)))
                .collect()
        });
        let query = radius.map(|radius| CoverageQuery {
            categories,
            provinces,
            band: ProfileBand {
                min_age,
                max_age,
                gender: self.gender,
                victim_status: self.victim_status,
                languages,
                documents,
            },
            radius,
        });
        errors
            .finish(query)?
            .ok_or_else(|| ApiError::InvalidRequest(Vec::new()))
    }
}

/// One category's totals for an area.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryTotals {
    pub category: Category,
    #[serde(flatten)]
    pub totals: Totals,
}

/// A province's totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvinceCoverageView {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub categories: Vec<CategoryTotals>,
}

/// One ward's result for one category.
#[derive(Debug, Serialize, ToSchema)]
pub struct WardReachView {
    pub category: Category,
    /// Metres from the ward's reference point to the nearest eligible
    /// in-person location; null when none is within 100 km. Given to
    /// caseworkers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest_in_person_m: Option<Option<f64>>,
    /// The same distance as a band (for everyone but caseworkers and
    /// admins, measured to the public point of each location).
    pub nearest_in_person_band: Band,
    /// Whether an eligible in-person service is within the radius.
    pub in_person_within_radius: bool,
    /// Whether an eligible remote service covers the ward.
    pub remote: bool,
    /// Whether any eligible service can take a person there.
    pub served: bool,
}

/// One ward and its results.
#[derive(Debug, Serialize, ToSchema)]
pub struct WardCoverageView {
    pub code: String,
    pub full_name: String,
    pub full_name_en: String,
    pub province_code: String,
    pub population: Option<i32>,
    /// Where distances are measured from.
    pub reference_point: Option<PointView>,
    pub categories: Vec<WardReachView>,
}

/// How distances are given.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// In metres, to the exact points (caseworkers, admins).
    Exact,
    /// In bands only, to the public points (everyone else).
    Banded,
}

/// The review's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverageView {
    pub categories: Vec<Category>,
    pub radius_km: u32,
    pub distances: Precision,
    /// The bands' upper edges, in kilometres.
    pub band_edges_km: Vec<u32>,
    /// How far the nearest in-person service is looked for.
    pub horizon_km: u32,
    /// Every reviewed ward together.
    pub total: Vec<CategoryTotals>,
    pub provinces: Vec<ProvinceCoverageView>,
    pub wards: Vec<WardCoverageView>,
}

fn reach_view(category: Category, reach: &Reach, report: &CoverageReport) -> WardReachView {
    let radius = report.query.radius;
    WardReachView {
        category,
        nearest_in_person_m: (report.distances == Audience::Full)
            .then(|| reach.nearest_in_person_m.map(|m| (m * 10.0).round() / 10.0)),
        nearest_in_person_band: Band::of(reach.nearest_in_person_m),
        in_person_within_radius: reach.in_person(radius),
        remote: reach.remote,
        served: reach.served(radius),
    }
}

fn ward_view(ward: &WardCoverage, report: &CoverageReport) -> WardCoverageView {
    WardCoverageView {
        code: ward.ward.code.clone(),
        full_name: ward.ward.full_name.clone(),
        full_name_en: ward.ward.full_name_en.clone(),
        province_code: ward.ward.province_code.clone(),
        population: ward.ward.population,
        reference_point: ward.ward.reference_point().map(|point| PointView {
            lat: point.lat(),
            lon: point.lon(),
        }),
        categories: report
            .query
            .categories
            .iter()
            .zip(&ward.reach)
            .map(|(category, reach)| reach_view(*category, reach, report))
            .collect(),
    }
}

fn totals(categories: &[Category], totals: &[Totals]) -> Vec<CategoryTotals> {
    categories
        .iter()
        .zip(totals)
        .map(|(category, totals)| CategoryTotals {
            category: *category,
            totals: *totals,
        })
        .collect()
}

fn view(report: &CoverageReport) -> CoverageView {
    let categories = &report.query.categories;
    CoverageView {
        categories: categories.clone(),
        radius_km: report.query.radius.km(),
        distances: match report.distances {
            Audience::Full => Precision::Exact,
            Audience::Public => Precision::Banded,
        },
        band_edges_km: BAND_EDGES_KM.to_vec(),
        horizon_km: (HORIZON_M / 1000.0) as u32,
        total: totals(categories, &report.total),
        provinces: report
            .provinces
            .iter()
            .map(|p| ProvinceCoverageView {
                code: p.code.clone(),
                name: p.name.clone(),
                name_en: p.name_en.clone(),
                categories: totals(categories, &p.totals),
            })
            .collect(),
        wards: report.wards.iter().map(|w| ward_view(w, report)).collect(),
    }
}

async fn review(
    state: &AppState,
    caller: &Caller,
    params: CoverageParams,
) -> Result<CoverageReport, ApiError> {
    let exact = caller.visibility().distances() == Audience::Full;
    let query = params.parse(exact)?;
    let mut conn = state.reader(caller).await?;
    Ok(workflow::run(&mut conn, caller, query).await?)
}

/// Where eligible help is out of reach: for each category asked and every
/// ward of the chosen provinces, the nearest eligible in-person service
/// (from the ward's reference point) and whether an eligible remote
/// service covers the ward; per province and in total, the wards and the
/// population with no eligible in-person service within the radius, and
/// with no eligible service at all. A service is eligible when it is
/// active, accepts referrals, admits every person of the group (an age
/// band needs every age admitted) and its area covers the ward.
/// Caseworkers and admins get metres; everyone else bands (≤ 5, ≤ 15,
/// ≤ 30, ≤ 60, > 60 km) measured to each location's public point, and a
/// radius that is a band edge.
#[utoipa::path(
    tag = "coverage",
    params(CoverageParams),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The review", body = CoverageView),
        responses::ListProblems,
    )
)]
#[get("/coverage")]
pub async fn coverage_json(
    state: web::Data<AppState>,
    caller: Caller,
    params: ApiQuery<CoverageParams>,
) -> Result<web::Json<CoverageView>, ApiError> {
    let report = review(&state, &caller, params.0).await?;
    Ok(web::Json(view(&report)))
}

/// The same review as a spreadsheet: one row per ward and category, UTF-8
/// with a byte order mark so that Excel reads the Vietnamese names right.
/// `nearest_in_person_km` (to the metre) is empty for readers given bands.
#[utoipa::path(
    tag = "coverage",
    params(CoverageParams),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One row per ward and category",
         content_type = "text/csv; charset=utf-8", body = String),
        responses::ListProblems,
    )
)]
#[get("/coverage.csv")]
pub async fn coverage_csv(
    state: web::Data<AppState>,
    caller: Caller,
    params: ApiQuery<CoverageParams>,
) -> Result<HttpResponse, ApiError> {
    let report = review(&state, &caller, params.0).await?;
    let mut writer = csv::Writer::from_writer(Vec::from("\u{feff}".as_bytes()));
    let write = |writer: &mut csv::Writer<Vec<u8>>, record: &[String]| {
        writer
            .write_record(record)
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("csv: {error}")))
    };
    write(
        &mut writer,
        &[
            "ward_code",
            "ward",
            "ward_en",
            "province_code",
            "province",
            "population",
            "category",
            "nearest_in_person_km",
            "nearest_in_person_band",
            "in_person_within_radius",
            "remote",
            "served",
        ]
        .map(String::from),
    )?;
    let provinces: std::collections::HashMap<&str, &str> = report
        .provinces
        .iter()
        .map(|p| (p.code.as_str(), p.name.as_str()))
        .collect();
    for ward in &report.wards {
        for (category, reach) in report.query.categories.iter().zip(&ward.reach) {
            let seen = reach_view(*category, reach, &report);
            let km = seen
                .nearest_in_person_m
                .flatten()
                .map(|m| format!("{:.3}", m / 1000.0))
                .unwrap_or_default();
            write(
                &mut writer,
                &[
                    ward.ward.code.clone(),
                    ward.ward.full_name.clone(),
                    ward.ward.full_name_en.clone(),
                    ward.ward.province_code.clone(),
                    provinces
                        .get(ward.ward.province_code.as_str())
                        .copied()
                        .unwrap_or_default()
                        .to_owned(),
                    ward.ward
                        .population
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    category.as_str().to_owned(),
                    km,
                    seen.nearest_in_person_band.label().to_owned(),
                    seen.in_person_within_radius.to_string(),
                    seen.remote.to_string(),
                    seen.served.to_string(),
                ],
            )?;
        }
    }
    let body = writer
        .into_inner()
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("csv: {error}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"ketnoi-coverage.csv\"",
        ))
        .body(body))
}

/// The same review as GeoJSON for a map: one feature per ward, its boundary
/// as geometry, and per category `<category>_band`, `<category>_served`,
/// `<category>_remote` (and `<category>_nearest_m` for caseworkers and
/// admins) as properties.
#[utoipa::path(
    tag = "coverage",
    params(CoverageParams),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "A FeatureCollection of wards",
         content_type = "application/geo+json", body = Object),
        responses::ListProblems,
    )
)]
#[get("/coverage.geojson")]
pub async fn coverage_geojson(
    state: web::Data<AppState>,
    caller: Caller,
    params: ApiQuery<CoverageParams>,
) -> Result<HttpResponse, ApiError> {
    let report = review(&state, &caller, params.0).await?;
    let mut conn = state.reader(&caller).await?;
    let codes: Vec<&str> = report.wards.iter().map(|w| w.ward.code.as_str()).collect();
    let shapes = crate::db::models::reference::boundaries_geojson(&mut conn, &codes).await?;
    let mut features = Vec::with_capacity(report.wards.len());
    for ward in &report.wards {
        let mut properties = serde_json::Map::new();
        properties.insert("code".into(), ward.ward.code.clone().into());
        properties.insert("name".into(), ward.ward.full_name.clone().into());
        properties.insert("name_en".into(), ward.ward.full_name_en.clone().into());
        properties.insert(
            "province_code".into(),
            ward.ward.province_code.clone().into(),
        );
        properties.insert("population".into(), ward.ward.population.into());
        for (category, reach) in report.query.categories.iter().zip(&ward.reach) {
            let seen = reach_view(*category, reach, &report);
            let key = category.as_str();
            properties.insert(
                format!("{key}_band"),
                seen.nearest_in_person_band.as_str().into(),
            );
            properties.insert(format!("{key}_served"), seen.served.into());
            properties.insert(format!("{key}_remote"), seen.remote.into());
            if let Some(metres) = seen.nearest_in_person_m {
                properties.insert(format!("{key}_nearest_m"), metres.into());
            }
        }
        let geometry: serde_json::Value = shapes
            .get(&ward.ward.code)
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(serde_json::Value::Null);
        features.push(serde_json::json!({
            "type": "Feature",
            "id": ward.ward.code,
            "geometry": geometry,
            "properties": properties,
        }));
    }
    let body = serde_json::json!({"type": "FeatureCollection", "features": features});
    Ok(HttpResponse::Ok()
        .content_type("application/geo+json")
        .body(body.to_string()))
}

/// The review as vector tiles for the public map: one layer, `coverage`,
/// from zoom 7: the wards reaching into the tile, their boundaries clipped
/// and simplified as the map's `wards` layer, with `code`, `ward_id` (the
/// code as a number), `band`, `in_person_within_radius`, `remote` and
/// `served` for the one `category` asked (required here). Always in bands
/// from the public points, whoever asks, so `radius_km` is a band edge. A
/// tile with no ward (or below zoom 7) is a `204`. Cacheable like the map's
/// tiles (`ETag`, `Cache-Control`, `304`); open to any origin, limited per
/// client without a key.
#[utoipa::path(
    tag = "coverage",
    params(
        ("z" = u32, Path, description = "Zoom, 0 to 22", minimum = 0, maximum = 22),
        ("x" = u32, Path, description = "Column from the west; a column at or beyond 2^z is a 404"),
        ("y" = u32, Path, description = "Row from the north; a row at or beyond 2^z is a 404"),
        CoverageParams,
    ),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The tile", body = super::public::VectorTile,
            content_type = "application/vnd.mapbox-vector-tile",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 204, description = "No ward in this tile",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`",
            headers(("ETag" = String), ("Cache-Control" = String))),
        responses::ListProblems,
        (status = 404, description = "No such tile: `x` or `y` beyond its zoom's grid",
            body = super::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/coverage/{z}/{x}/{y}.mvt")]
pub async fn coverage_tile(
    state: web::Data<AppState>,
    _caller: Caller,
    path: web::Path<(String, String, String)>,
    params: ApiQuery<CoverageParams>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let (tile, off_grid) = super::public::tile_of_path(path.into_inner(), &mut errors);
    let one_category = params.0.category.is_some();
    let query = params.0.parse(false);
    if !one_category {
        errors.push(FieldError::new(
            "category",
            "required",
            "a coverage tile shows one category",
        ));
    }
    let query = match query {
        Ok(query) => Some(query),
        Err(ApiError::InvalidRequest(problems)) => {
            for problem in problems {
                errors.push(problem);
            }
            None
        }
        Err(other) => return Err(other),
    };
    if let Some(query) = &query
        && one_category
        && query.categories.len() > 1
    {
        errors.push(FieldError::new(
            "category",
            "one",
            "a coverage tile shows one category",
        ));
    }
    if off_grid && errors.is_empty() {
        return Err(ApiError::NotFound("tile"));
    }
    errors.finish(())?;
    let (Some(tile), Some(query)) = (tile, query) else {
        return Err(ApiError::NotFound("tile"));
    };
    let category = query.categories[0];
    let mut conn = state.anonymous_reader().await?;
    let bytes = workflow::tile(&mut conn, &query, category, tile).await?;
    Ok(super::etag::cacheable(
        "application/vnd.mapbox-vector-tile",
        super::public::CACHE_CONTROL,
        bytes,
    ))
}
