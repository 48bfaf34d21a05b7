//! The reference vocabularies: categories, provinces, and wards with their
//! geography.

use actix_web::{get, post, web};
use serde::Serialize;
use utoipa::IntoParams;
use utoipa::ToSchema;

use super::AppState;
use super::extract::ApiQuery;
use super::params::FieldErrors;
use super::problem::{ApiError, FieldError, responses};
use super::views::{GeoJsonMultiPolygon, MultiPolygonType, Page};
use crate::db::models::reference;
use crate::db::postgis::multipolygon_coordinates;
use crate::domain::geo::Coordinates;
use crate::domain::province::ProvinceCode;
use crate::domain::ward::WardCode;

/// A category of help, with Vietnamese and English labels.
#[derive(Serialize, ToSchema)]
pub struct CategoryView {
    #[schema(example = "legal_aid")]
    pub code: String,
    #[schema(example = "Trợ giúp pháp lý")]
    pub label_vi: String,
    #[schema(example = "Legal aid")]
    pub label_en: String,
    pub description_vi: String,
    pub description_en: String,
}

/// The fixed category taxonomy, in display order.
#[utoipa::path(
    tag = "reference",
    security((), ("api_key" = [])),
    responses(
        responses::OptionalAuthProblems,
        (status = 200, description = "All categories", body = Vec<CategoryView>),
        responses::ServerProblems,
    )
)]
#[get("/categories")]
pub async fn list_categories(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
) -> Result<web::Json<Vec<CategoryView>>, ApiError> {
    let mut conn = state.anonymous_reader().await?;
    let rows = reference::list_categories(&mut conn).await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|row| CategoryView {
                code: row.code,
                label_vi: row.label_vi,
                label_en: row.label_en,
                description_vi: row.description_vi,
                description_en: row.description_en,
            })
            .collect(),
    ))
}

/// A province (provincial-level unit since 1 July 2025).
#[derive(Serialize, ToSchema)]
pub struct ProvinceView {
    /// Official two-digit code.
    #[schema(example = "15")]
    pub code: String,
    #[schema(example = "Lào Cai")]
    pub name: String,
    #[schema(example = "Lao Cai")]
    pub name_en: String,
    #[schema(example = "Tỉnh Lào Cai")]
    pub full_name: String,
    #[schema(example = "Lao Cai Province")]
    pub full_name_en: String,
}

/// The 34 provinces, by code.
#[utoipa::path(
    tag = "reference",
    security((), ("api_key" = [])),
    responses(
        responses::OptionalAuthProblems,
        (status = 200, description = "All provinces", body = Vec<ProvinceView>),
        responses::ServerProblems,
    )
)]
#[get("/provinces")]
pub async fn list_provinces(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
) -> Result<web::Json<Vec<ProvinceView>>, ApiError> {
    let mut conn = state.anonymous_reader().await?;
    let rows = reference::list_provinces(&mut conn).await?;
    Ok(web::Json(
        rows.into_iter().map(ProvinceView::from).collect(),
    ))
}

impl From<reference::ProvinceRow> for ProvinceView {
    fn from(row: reference::ProvinceRow) -> Self {
        Self {
            code: row.code,
            name: row.name,
            name_en: row.name_en,
            full_name: row.full_name,
            full_name_en: row.full_name_en,
        }
    }
}

/// A ward or commune (xã, phường, đặc khu) since 1 July 2025.
#[derive(Serialize, ToSchema)]
pub struct WardView {
    /// Official five-digit code: what a location's `ward_code` takes.
    #[schema(example = "02647")]
    pub code: String,
    #[schema(example = "Lào Cai")]
    pub name: String,
    #[schema(example = "Lao Cai")]
    pub name_en: String,
    #[schema(example = "Phường Lào Cai")]
    pub full_name: String,
    #[schema(example = "Lao Cai Ward")]
    pub full_name_en: String,
    /// Its province's two-digit code.
    #[schema(example = "15")]
    pub province_code: String,
    /// Persons, as published on the national reference map; null where
    /// none was published.
    #[schema(example = 38571)]
    pub population: Option<i32>,
}

impl From<reference::WardRecord> for WardView {
    fn from(row: reference::WardRecord) -> Self {
        Self {
            code: row.code,
            name: row.name,
            name_en: row.name_en,
            full_name: row.full_name,
            full_name_en: row.full_name_en,
            province_code: row.province_code,
            population: row.population,
        }
    }
}

/// A province with its wards and communes.
#[derive(Serialize, ToSchema)]
pub struct ProvinceWardsView {
    #[serde(flatten)]
    pub province: ProvinceView,
    /// Its wards and communes, by code.
    pub wards: Vec<WardView>,
}

#[derive(serde::Deserialize, IntoParams)]
#[into_params(names("code"), parameter_in = Path)]
pub struct ProvincePath(
    /// Official two-digit code.
    #[param(example = "15", pattern = "^[0-9]{2}$")]
    String,
);

/// One province with its wards and communes: where a location's
/// `ward_code` comes from. A code that is not two digits is a 400; one
/// that names no province, a 404.
#[utoipa::path(
    tag = "reference",
    security((), ("api_key" = [])),
    params(ProvincePath),
    responses(
        responses::ReadProblems,
        (status = 200, description = "The province and its wards", body = ProvinceWardsView),
    )
)]
#[get("/provinces/{code}")]
pub async fn get_province(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    path: web::Path<ProvincePath>,
) -> Result<web::Json<ProvinceWardsView>, ApiError> {
    let code = path.into_inner().0;
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::InvalidRequest(vec![FieldError::new(
            "code",
            "format",
            "a province code is two digits, such as 15",
        )]));
    }
    let mut conn = state.anonymous_reader().await?;
    let province = reference::find_province(&mut conn, &code)
        .await?
        .ok_or(ApiError::NotFound("province"))?;
    let wards = reference::province_wards(&mut conn, &province.code).await?;
    Ok(web::Json(ProvinceWardsView {
        province: province.into(),
        wards: wards.into_iter().map(WardView::from).collect(),
    }))
}

/// A point, WGS84 decimal degrees.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointView {
    #[schema(example = 22.4856)]
    pub lat: f64,
    #[schema(example = 103.9707)]
    pub lon: f64,
}

/// A ward's province, by code and name.
#[derive(Serialize, ToSchema)]
pub struct ProvinceBrief {
    #[schema(example = "15")]
    pub code: String,
    #[schema(example = "Lào Cai")]
    pub name: String,
    #[schema(example = "Lao Cai")]
    pub name_en: String,
}

/// One ward or commune, with its geography.
#[derive(Serialize, ToSchema)]
pub struct WardDetailView {
    #[serde(flatten)]
    pub ward: WardView,
    pub province: ProvinceBrief,
    /// Square kilometres, as published.
    pub area_km2: Option<f64>,
    /// A point inside the ward: where distances are measured from when a
    /// person is given by their ward (`ward_code` in `POST /v1/matches` and
    /// the `near` searches).
    pub reference_point: Option<PointView>,
    /// The boundary (simplified to about 110 m), with `boundary=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boundary: Option<GeoJsonMultiPolygon>,
}

#[derive(serde::Deserialize, IntoParams)]
#[into_params(names("code"), parameter_in = Path)]
pub struct WardPath(
    /// Official five-digit code.
    #[param(example = "02647", pattern = "^[0-9]{5}$")]
    String,
);

impl WardPath {
    /// The code: a 400 when it is not five digits.
    pub fn parse(self) -> Result<WardCode, ApiError> {
        let mut errors = FieldErrors::default();
        let code = errors.parse("code", Some(self.0.as_str()), WardCode::parse);
        errors.finish(code)?.ok_or(ApiError::NotFound("ward"))
    }
}

/// What to include with a ward.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WardQuery {
    /// Include the boundary as a GeoJSON MultiPolygon; default false.
    pub boundary: Option<bool>,
}

/// One ward or commune: names, province, population, area, reference point
/// and, on request, its boundary. A code that is not five digits is a 400;
/// one that names no ward, a 404.
#[utoipa::path(
    tag = "reference",
    security((), ("api_key" = [])),
    params(WardPath, WardQuery),
    responses(
        responses::ReadProblems,
        (status = 200, description = "The ward", body = WardDetailView),
    )
)]
#[get("/wards/{code}")]
pub async fn get_ward(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    path: web::Path<WardPath>,
    query: ApiQuery<WardQuery>,
) -> Result<web::Json<WardDetailView>, ApiError> {
    let code = path.into_inner().parse()?;
    let mut conn = state.anonymous_reader().await?;
    let ward = reference::find_ward(&conn, &code)
        .await?
        .ok_or(ApiError::NotFound("ward"))?;
    let boundary = if query.0.boundary.unwrap_or(false) {
        reference::ward_boundary(&mut conn, &code)
            .await?
            .map(|multi| GeoJsonMultiPolygon {
                geometry_type: MultiPolygonType::MultiPolygon,
                coordinates: multipolygon_coordinates(&multi),
            })
    } else {
        None
    };
    Ok(web::Json(ward_detail(ward, boundary)))
}

fn ward_detail(
    ward: reference::WardRecord,
    boundary: Option<GeoJsonMultiPolygon>,
) -> WardDetailView {
    WardDetailView {
        province: ProvinceBrief {
            code: ward.province_code.clone(),
            name: ward.province_name.clone(),
            name_en: ward.province_name_en.clone(),
        },
        area_km2: ward.area_km2,
        reference_point: ward.reference_point().map(|point| PointView {
            lat: point.lat(),
            lon: point.lon(),
        }),
        boundary,
        ward: ward.into(),
    }
}

/// Ward search parameters; every filter given narrows the list.
#[derive(Debug, serde::Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WardListQuery {
    /// Only this province's wards.
    #[param(value_type = Option<super::params::Province>, inline)]
    #[schema(schema_with = super::params::province_or_null)]
    pub province: Option<String>,
    /// Words of the name, Vietnamese or English, with or without diacritics
    /// (`ban lau` finds `Bản Lầu`); each word must begin a word of the
    /// name. An exact name comes first, then names starting with the
    /// words, then by code.
    /// At most 200 characters.
    #[param(
        example = "ban lau",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(
        example = "ban lau",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub q: Option<String>,
    /// `lat,lon`: the ward containing this point (none at sea). On an edge
    /// two wards share, the lower code. A client looking up where a person
    /// is sends it in the body of `POST /v1/wards/search`, never in a URL.
    #[param(value_type = Option<super::params::Near>, inline)]
    #[schema(schema_with = super::params::near_or_null)]
    pub at: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    #[schema(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[schema(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// Wards and communes: by province, by name without diacritics, or the one
/// containing a point (`at`); by code otherwise.
#[utoipa::path(
    tag = "reference",
    security((), ("api_key" = [])),
    params(WardListQuery),
    responses(
        (status = 200, description = "One page of wards", body = Page<WardView>),
        responses::ListProblems,
    )
)]
#[get("/wards")]
pub async fn list_wards(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    query: ApiQuery<WardListQuery>,
) -> Result<web::Json<Page<WardView>>, ApiError> {
    wards_page(&state, query.0).await
}

/// The same search with its parameters as a JSON body: a client looking up
/// the ward a person is in sends `at` here, never in a URL, which proxies
/// and caches log. The same answer as the `GET`.
#[utoipa::path(
    tag = "reference",
    request_body = WardListQuery,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of wards", body = Page<WardView>),
        responses::BodySearchProblems,
    )
)]
#[post("/wards/search")]
pub async fn search_wards(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    body: super::extract::ApiJson<WardListQuery>,
) -> Result<web::Json<Page<WardView>>, ApiError> {
    wards_page(&state, body.parse()?)
        .await
        .map_err(ApiError::in_body)
}

async fn wards_page(
    state: &AppState,
    query: WardListQuery,
) -> Result<web::Json<Page<WardView>>, ApiError> {
    let mut errors = FieldErrors::default();
    let province = errors.parse("province", query.province.as_deref(), ProvinceCode::parse);
    let words = errors.words("q", query.q.as_deref());
    let at = errors.parse("at", query.at.as_deref(), Coordinates::parse_lat_lon);
    let page = errors.page(query.page, query.per_page);
    let filter = errors.finish(reference::WardFilter {
        province,
        words: words
            .map(|text| {
                text.as_str()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        at,
    })?;
    let mut conn = state.anonymous_reader().await?;
    let (wards, total) = reference::search_wards(&mut conn, &filter, page).await?;
    Ok(web::Json(Page::new(
        wards.into_iter().map(WardView::from).collect(),
        total,
        page,
    )))
}
