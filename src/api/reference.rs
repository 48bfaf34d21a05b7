//! The reference vocabularies: categories and provinces.

use actix_web::{get, web};
use serde::Serialize;
use utoipa::IntoParams;
use utoipa::ToSchema;

use super::AppState;
use super::problem::{ApiError, FieldError, responses};
use crate::db::models::reference;

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
    let wards = reference::list_wards(&mut conn, &code).await?;
    Ok(web::Json(ProvinceWardsView {
        province: province.into(),
        wards: wards
            .into_iter()
            .map(|row| WardView {
                code: row.code,
                name: row.name,
                name_en: row.name_en,
                full_name: row.full_name,
                full_name_en: row.full_name_en,
            })
            .collect(),
    }))
}
