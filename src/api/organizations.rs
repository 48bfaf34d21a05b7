//! Organisations: read by anyone, written by admins.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, put, web};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiQuery, parse_uuid};
use super::problem::{ApiError, FieldError, responses};
use super::views::{OrganizationView, Page};
use crate::db::models::search::Words;
use crate::db::models::writes::{self, Action};
use crate::db::models::{organizations, services};
use crate::domain::category::Category;
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::keys::Role;
use crate::domain::listing::OrganizationDocument;
use crate::domain::page::PageRequest;
use crate::domain::search::SearchText;
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

/// Parses optional search words, naming `field` when they break a rule.
pub fn search_words(value: Option<&str>, field: &str) -> Result<Option<SearchText>, ApiError> {
    value
        .map(|words| {
            SearchText::parse(words).map_err(|invalid| {
                ApiError::InvalidRequest(vec![FieldError::invalid(field, invalid)])
            })
        })
        .transpose()
}

/// Organisations by name, or by relevance to search words.
#[utoipa::path(
    tag = "directory",
    params(OrganizationListQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of organisations", body = Page<OrganizationView>),
        responses::BadRequest,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/organizations")]
pub async fn list_organizations(
    state: web::Data<AppState>,
    caller: Caller,
    query: ApiQuery<OrganizationListQuery>,
) -> Result<web::Json<Page<OrganizationView>>, ApiError> {
    let query = query.0;
    let words = search_words(query.q.as_deref(), "q")?;
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .page_request()?;
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
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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
    let detail = organization_detail(&mut conn, &caller, id).await?;
    etag::json_with_etag(StatusCode::OK, &detail)
}

async fn organization_detail(
    conn: &mut crate::db::DbConn,
    caller: &Caller,
    id: OrganizationId,
) -> Result<OrganizationDetail, ApiError> {
    let visibility = caller.visibility();
    let record = organizations::get(conn, id)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    let services = services::of_organization(conn, id)
        .await?
        .into_iter()
        .filter(|brief| visibility.allows(id, brief.status))
        .map(|brief| ServiceSummary {
            id: brief.id,
            name: brief.name,
            name_en: brief.name_en,
            status: brief.status,
            categories: brief.categories,
        })
        .collect();
    Ok(OrganizationDetail {
        organization: record.into(),
        services,
    })
}

fn audit_value(document: &OrganizationDocument) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(document).map_err(|error| ApiError::Internal(error.into()))
}

/// Add an organisation (admins only). Agencies then get keys bound to it.
#[utoipa::path(
    tag = "writes",
    request_body = OrganizationDocument,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The organisation created", body = OrganizationDetail,
            headers(("ETag" = String), ("Location" = String))),
        responses::BodyProblems,
        responses::AuthProblems,
        responses::ServerProblems,
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
    let document = body.validate().map_err(ApiError::invalid_document)?;
    let id = OrganizationId(uuid::Uuid::new_v4());
    let mut conn = state.primary().await?;
    let detail = conn
        .transaction::<_, ApiError, _>(async |conn| {
            writes::write_organization(conn, id, &document).await?;
            writes::audit_one(
                conn,
                caller.key_id(),
                Action::Create,
                "organization",
                id.0,
                None,
                Some(audit_value(document.get())?),
            )
            .await?;
            organization_detail(conn, &caller, id).await
        })
        .await?;
    etag::created(&detail, &format!("/v1/organizations/{id}"))
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
        responses::NotFound,
        responses::BodyProblems,
        responses::AuthProblems,
        responses::PreconditionProblems,
        responses::ServerProblems,
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
    let document = body.validate().map_err(ApiError::invalid_document)?;
    let mut conn = state.primary().await?;
    let detail = conn
        .transaction::<_, ApiError, _>(async |conn| {
            organizations::lock(conn, id)
                .await?
                .then_some(())
                .ok_or(ApiError::NotFound("organization"))?;
            let current = organization_detail(conn, &caller, id).await?;
            if_match.require(&etag::of(&current)?)?;
            let before = organizations::get(conn, id)
                .await?
                .map(|record| writes::organization_document(&record))
                .ok_or(ApiError::NotFound("organization"))?;
            writes::write_organization(conn, id, &document).await?;
            writes::audit_one(
                conn,
                caller.key_id(),
                Action::Update,
                "organization",
                id.0,
                Some(audit_value(&before)?),
                Some(audit_value(document.get())?),
            )
            .await?;
            organization_detail(conn, &caller, id).await
        })
        .await?;
    etag::json_with_etag(StatusCode::OK, &detail)
}
