//! Organisations: read by anyone, written by admins.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiQuery, parse_uuid};
use super::params::FieldErrors;
use super::problem::{ApiError, responses};
use super::views::{OrganizationView, Page};
use crate::db::models::organizations;
use crate::db::models::search::Words;
use crate::domain::access::Role;
use crate::domain::category::Category;
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::listing::OrganizationDocument;
use crate::domain::page::PageRequest;
use crate::domain::service::ServiceStatus;
use crate::workflows::organizations::{self as organizations_workflow, OrganizationState};

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
        let mut errors = FieldErrors::default();
        let page = errors.page(self.page, self.per_page);
        errors.finish(page)
    }
}

/// Organisation search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrganizationListQuery {
    /// Search words, in Vietnamese or English, with or without diacritics,
    /// forgiving small typos: names and descriptions, most relevant first.
    /// At most 200 characters.
    #[param(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub q: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// Organisations by name, or by relevance to search words.
#[utoipa::path(
    tag = "directory",
    params(OrganizationListQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of organisations", body = Page<OrganizationView>),
        responses::ListProblems,
    )
)]
#[get("/organizations")]
pub async fn list_organizations(
    state: web::Data<AppState>,
    caller: Caller,
    query: ApiQuery<OrganizationListQuery>,
) -> Result<web::Json<Page<OrganizationView>>, ApiError> {
    let query = query.0;
    let mut errors = FieldErrors::default();
    let words = errors.words("q", query.q.as_deref());
    let page = errors.page(query.page, query.per_page);
    errors.finish(())?;
    let mut conn = state.reader(&caller).await?;
    let (records, total) =
        organizations::list(&mut conn, words.map(Words::new).as_ref(), page).await?;
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

/// One organisation, with its services in brief (archived ones only for
/// keys that may see them).
#[utoipa::path(
    tag = "directory",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The organisation", body = OrganizationDetail,
            headers(("ETag" = String, description = "Version of this representation"))),
        responses::ReadProblems,
    )
)]
#[get("/organizations/{id}")]
pub async fn get_organization(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = OrganizationId(parse_uuid(&id, "id")?);
    let mut conn = state.reader(&caller).await?;
    let found = organizations_workflow::read(&mut conn, &caller, id).await?;
    etag::json_with_etag(StatusCode::OK, &organization_detail(&found))
}

/// An organisation as a reader sees it (its `ETag` is the tag of this).
fn organization_detail(state: &OrganizationState) -> OrganizationDetail {
    OrganizationDetail {
        organization: state.record.clone().into(),
        services: state
            .services
            .iter()
            .map(|brief| ServiceSummary {
                id: brief.id,
                name: brief.name.clone(),
                name_en: brief.name_en.clone(),
                status: brief.status,
                categories: brief.categories.clone(),
            })
            .collect(),
    }
}

/// Add an organisation (admins only). Agencies then get keys bound to it.
#[utoipa::path(
    tag = "writes",
    request_body = OrganizationDocument,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The organisation created", body = OrganizationDetail,
            headers(("ETag" = String), ("Location" = String))),
        responses::CreateProblems,
    )
)]
#[post("/organizations")]
pub async fn create_organization(
    state: web::Data<AppState>,
    caller: Caller,
    body: ApiJson<OrganizationDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.parse()?;
    let mut conn = state.primary().await?;
    let created = organizations_workflow::create(&mut conn, &caller, body).await?;
    etag::created(
        &organization_detail(&created),
        &format!("/v1/organizations/{}", created.record.row.id),
    )
}

/// Replace an organisation's details (admins only); `If-Match` must carry
/// its current `ETag`.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being replaced")),
    request_body = OrganizationDocument,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The organisation as now stored", body = OrganizationDetail,
            headers(("ETag" = String))),
        responses::UpdateProblems,
    )
)]
#[put("/organizations/{id}")]
pub async fn replace_organization(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<OrganizationDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.parse()?;
    let id = OrganizationId(parse_uuid(&id, "id")?);
    let mut conn = state.primary().await?;
    let precondition = if_match.required(organization_detail);
    let replaced =
        organizations_workflow::replace(&mut conn, &caller, id, &precondition, body).await?;
    etag::json_with_etag(StatusCode::OK, &organization_detail(&replaced))
}
