//! `GET /v1/organizations` and `GET /v1/organizations/{id}`.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{ApiQuery, parse_uuid};
use super::problem::{ApiError, FieldError, responses};
use super::views::{OrganizationView, Page};
use crate::db::models::{organizations, services};
use crate::domain::category::Category;
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::page::PageRequest;
use crate::domain::service::ServiceStatus;

/// Pagination parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

impl PageQuery {
    pub fn page_request(&self) -> Result<PageRequest, ApiError> {
        PageRequest::new(self.page, self.per_page).map_err(|errors| {
            ApiError::InvalidRequest(
                errors
                    .into_iter()
                    .map(|(field, invalid)| FieldError::invalid(field, invalid))
                    .collect(),
            )
        })
    }
}

/// Organisations by name.
#[utoipa::path(
    tag = "directory",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of organisations", body = Page<OrganizationView>),
        responses::BadRequest,
        responses::ServerProblems,
    )
)]
#[get("/organizations")]
pub async fn list_organizations(
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<OrganizationView>>, ApiError> {
    let page = query.0.page_request()?;
    let mut conn = state.conn().await?;
    let (records, total) = organizations::list(&mut conn, page).await?;
    let contents = records.into_iter().map(OrganizationView::from).collect();
    Ok(web::Json(Page::new(contents, total, page)))
}

/// A service of an organisation, in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceSummary {
    pub id: ServiceId,
    pub name: String,
    pub name_en: Option<String>,
    pub status: ServiceStatus,
    pub categories: Vec<Category>,
}

/// An organisation and its services.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationDetail {
    #[serde(flatten)]
    pub organization: OrganizationView,
    /// Its services, by name (fetch each for the details).
    pub services: Vec<ServiceSummary>,
}

/// One organisation, with its services in brief.
#[utoipa::path(
    tag = "directory",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    responses(
        (status = 200, description = "The organisation", body = OrganizationDetail),
        responses::BadRequest,
        responses::NotFound,
        responses::ServerProblems,
    )
)]
#[get("/organizations/{id}")]
pub async fn get_organization(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<OrganizationDetail>, ApiError> {
    let id = OrganizationId(parse_uuid(&id, "id")?);
    let mut conn = state.conn().await?;
    let record = organizations::get(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    let services = services::of_organization(&mut conn, id)
        .await?
        .into_iter()
        .map(|brief| ServiceSummary {
            id: brief.id,
            name: brief.name,
            name_en: brief.name_en,
            status: brief.status,
            categories: brief.categories,
        })
        .collect();
    Ok(web::Json(OrganizationDetail {
        organization: record.into(),
        services,
    }))
}
