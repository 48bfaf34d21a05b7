//! The reference vocabularies: categories and provinces.

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::problem::{ApiError, responses};
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
        rows.into_iter()
            .map(|row| ProvinceView {
                code: row.code,
                name: row.name,
                name_en: row.name_en,
                full_name: row.full_name,
                full_name_en: row.full_name_en,
            })
            .collect(),
    ))
}
