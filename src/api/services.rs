//! Services: search and read (`GET`), and the writes of agencies and
//! admins: create, replace, merge-patch, archive, restore, capacity,
//! verification, and the history of changes.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiQuery, parse_uuid};
use super::organizations::PageQuery;
use super::params::FieldErrors;
use super::problem::{ApiError, responses};
use super::views::{HistoryEntry, Page, ServiceView};
use super::writes::{self, OwnerView};
use crate::db::DbConn;
use crate::db::models::search::Words;
use crate::db::models::services::{self, ServiceFilter, ServiceRecord};
use crate::domain::Invalid;
use crate::domain::access::Audience;
use crate::domain::access::Role;
use crate::domain::access::Visibility;
use crate::domain::category::Category;
use crate::domain::geo::{Coordinates, RadiusM};
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::listing::{CapacityDocument, ServiceDocument, changed_fields};
use crate::domain::page::{PageRequest, storable_instant};
use crate::domain::province::ProvinceCode;
use crate::domain::service::ServiceStatus;
use crate::domain::ward::WardCode;
use crate::workflows::WRITERS;
use crate::workflows::listings::Change;
use crate::workflows::services::{self as services_workflow, Services};

/// Search parameters. Every filter given narrows the result.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceListQuery {
    /// Category codes, comma-separated; a service carrying any of them
    /// matches (see `GET /v1/categories`).
    #[param(value_type = Option<super::params::CategoryList>, inline)]
    #[schema(schema_with = super::params::category_list_or_null)]
    pub category: Option<String>,
    /// Only this organisation's services.
    pub organization: Option<uuid::Uuid>,
    /// Province code: services with a location in the province or a service
    /// area naming it.
    #[param(value_type = Option<super::params::Province>, inline)]
    #[schema(schema_with = super::params::province_or_null)]
    pub province: Option<String>,
    /// Statuses, comma-separated, among `active`, `inactive`, `defunct`,
    /// `temporarily closed`; default `active`, or every status with
    /// `modified_after` or `cursor`. Archived services (`inactive`, `defunct`) are
    /// shown only to keys that may see them: admins, caseworkers and the
    /// owning agency.
    #[param(value_type = Option<super::params::StatusList>, inline)]
    #[schema(schema_with = super::params::status_list_or_null)]
    pub status: Option<String>,
    /// `lat,lon` (WGS84 decimal degrees): only services with a location
    /// within `radius_m`, nearest first, each with `distance_m`.
    #[param(value_type = Option<super::params::Near>, inline)]
    #[schema(schema_with = super::params::near_or_null)]
    pub near: Option<String>,
    /// Instead of `near`, a ward or commune (five digits, see
    /// `GET /v1/wards`): distances are measured from its reference point,
    /// and so are approximate. A code that names no ward is a 400.
    #[param(pattern = "^[0-9]{5}$", example = "02647")]
    #[schema(pattern = "^[0-9]{5}$", example = "02647")]
    pub ward_code: Option<String>,
    /// Search radius around `near` (or `ward_code`) in metres, 1 to 500000;
    /// default 50000. Without either there is nothing to measure from, and
    /// it is ignored.
    #[param(minimum = 1, maximum = 500000, default = 50000)]
    #[schema(minimum = 1, maximum = 500000, default = 50000)]
    pub radius_m: Option<u32>,
    /// Only services changed after this instant (RFC 3339, e.g.
    /// `2026-01-31T00:00:00Z`; encode `+` as `%2B`): a change feed, oldest
    /// change first, archived services included with their status. A
    /// change to what a reader is not shown of a confidential location
    /// (the public, another agency: its address, ward, phones, exact
    /// point) is not a change for that reader.
    pub modified_after: Option<DateTime<Utc>>,
    /// The change feed after a position: the `next_cursor` of the previous
    /// page (opaque). Following it skips no change, even when thousands
    /// share one instant (an import). Like `modified_after`, it makes this
    /// a change feed; with both, only changes after both count.
    #[param(
        pattern = r"^[A-Za-z0-9_-]{32}$",
        example = "AAYqaJ2VgABkBwTkQ6VV4p9HqsTaP1gk"
    )]
    #[schema(
        pattern = r"^[A-Za-z0-9_-]{32}$",
        example = "AAYqaJ2VgABkBwTkQ6VV4p9HqsTaP1gk"
    )]
    pub cursor: Option<String>,
    /// Search words, in Vietnamese or English, with or without diacritics
    /// (`tro giup phap ly` finds `Trợ giúp pháp lý`), forgiving small typos:
    /// names, descriptions and category labels. Most relevant first (with
    /// `near`, the nearest among equally relevant), except in a change feed
    /// (`modified_after`), which keeps its order. Quotes make a phrase,
    /// `-word` excludes. At most 200 characters.
    #[param(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub q: Option<String>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    #[schema(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[schema(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// A parsed search: the filter, the page, and the ward to search around
/// (its reference point still to be looked up) with the radius.
pub type ServiceSearch = (ServiceFilter, PageRequest, Option<(WardCode, RadiusM)>);

impl ServiceListQuery {
    /// The filter and page this query asks for, and the ward to search
    /// around (whose reference point the caller looks up), or every problem
    /// with it.
    pub fn parse(self, visibility: Visibility) -> Result<ServiceSearch, ApiError> {
        let mut errors = FieldErrors::default();
        let categories = self
            .category
            .as_deref()
            .map(|v| errors.list("category", v, Category::parse))
            .unwrap_or_default();
        let statuses = match self.status.as_deref() {
            Some(v) => errors.list("status", v, ServiceStatus::parse),
            None if self.modified_after.is_some() || self.cursor.is_some() => Vec::new(),
            None => vec![ServiceStatus::Active],
        };
        let province = errors.parse("province", self.province.as_deref(), ProvinceCode::parse);
        let radius = self
            .radius_m
            .and_then(|radius| errors.take("radius_m", RadiusM::new(radius)));
        let near = errors
            .parse("near", self.near.as_deref(), Coordinates::parse_lat_lon)
            .map(|centre| (centre, radius.unwrap_or(RadiusM::DEFAULT)));
        let ward = errors
            .parse("ward_code", self.ward_code.as_deref(), WardCode::parse)
            .map(|code| (code, radius.unwrap_or(RadiusM::DEFAULT)));
        if self.near.is_some() && self.ward_code.is_some() {
            errors.push(super::problem::FieldError::new(
                "ward_code",
                "one_of",
                "give near or ward_code, not both",
            ));
        }
        let modified_after = errors.since("modified_after", self.modified_after);
        let search = errors.words("q", self.q.as_deref());
        let cursor = errors.parse("cursor", self.cursor.as_deref(), FeedCursor::parse);
        // Both narrow: changes after `modified_after` and after the
        // cursor's position, whichever is later.
        let (modified_after, after_id) = match (modified_after, cursor) {
            (Some(instant), Some(cursor)) if instant >= cursor.last_modified => {
                (Some(instant), None)
            }
            (_, Some(cursor)) => (Some(cursor.last_modified), Some(cursor.id)),
            (instant, None) => (instant, None),
        };
        let page = errors.page(self.page, self.per_page);
        errors.finish((
            ServiceFilter {
                categories,
                organization: self.organization.map(OrganizationId),
                province,
                statuses,
                near,
                modified_after,
                after_id: after_id.map(ServiceId),
                search: search.map(Words::new),
                visibility,
            },
            page,
            ward,
        ))
    }
}

/// A position in the change feed: the `last_modified` and id of the last
/// change seen, as 32 characters of base64url (microseconds since 1970 as
/// eight bytes, then the id's sixteen). Any 32 such characters are a
/// position: one before or after every change is just an empty page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedCursor {
    pub last_modified: DateTime<Utc>,
    pub id: uuid::Uuid,
}

impl FeedCursor {
    pub fn new(last_modified: DateTime<Utc>, id: uuid::Uuid) -> Self {
        Self { last_modified, id }
    }

    pub fn encode(self) -> String {
        use base64::Engine;
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&self.last_modified.timestamp_micros().to_be_bytes());
        bytes[8..].copy_from_slice(self.id.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        use base64::Engine;
        let invalid = || {
            Invalid::new(
                "format",
                "cursor must be a next_cursor given by a previous page (32 characters of base64url)",
            )
        };
        if value.len() != 32 {
            return Err(invalid());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| invalid())?;
        let (instant, id) = bytes.split_at_checked(8).ok_or_else(invalid)?;
        let micros = i64::from_be_bytes(instant.try_into().map_err(|_| invalid())?);
        let id = uuid::Uuid::from_slice(id).map_err(|_| invalid())?;
        // A position beyond PostgreSQL's timestamps is one before or after
        // every change.
        let last_modified = DateTime::<Utc>::from_timestamp_micros(micros).map_or_else(
            || {
                storable_instant(if micros < 0 {
                    DateTime::<Utc>::MIN_UTC
                } else {
                    DateTime::<Utc>::MAX_UTC
                })
            },
            storable_instant,
        );
        Ok(Self { last_modified, id })
    }
}

/// Search services: by words (`q`, Vietnamese-aware), category,
/// organisation, province, status, distance and modification time. Oldest
/// change first with `modified_after` or `cursor` (a change feed, followed
/// by each page's `next_cursor`); else most relevant first with `q`;
/// else nearest first with `near`; else by name. Confidential locations are redacted
/// for the public and agencies, and distances to them measured to their
/// rounded point; caseworkers and admins see them, and distances to them,
/// exactly.
#[utoipa::path(
    tag = "directory",
    params(ServiceListQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of services", body = Page<ServiceView>),
        responses::ListProblems,
    )
)]
#[get("/services")]
pub async fn list_services(
    state: web::Data<AppState>,
    caller: Caller,
    query: ApiQuery<ServiceListQuery>,
) -> Result<web::Json<Page<ServiceView>>, ApiError> {
    services_of(state, caller, query.0).await
}

/// Search services with the parameters of `GET /v1/services` as a JSON
/// body: a client locating a person sends `near` here, never in a URL,
/// which proxies and caches log. The same answer as the `GET`.
#[utoipa::path(
    tag = "directory",
    request_body = ServiceListQuery,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of services", body = Page<ServiceView>),
        responses::BodySearchProblems,
    )
)]
#[post("/services/search")]
pub async fn search_services(
    state: web::Data<AppState>,
    caller: Caller,
    body: ApiJson<ServiceListQuery>,
) -> Result<web::Json<Page<ServiceView>>, ApiError> {
    services_of(state, caller, body.parse()?)
        .await
        .map_err(ApiError::in_body)
}

/// A search by `POST` body (`/services/search`, `/wards/search`) answers
/// any other method with a 405, not as a read or write of a record whose
/// id or code is `search`.
pub fn search_other_methods(path: &'static str) -> actix_web::Resource {
    web::resource(path)
        .guard(actix_web::guard::Not(actix_web::guard::Post()))
        .to(|| async {
            let mut response =
                actix_web::ResponseError::error_response(&ApiError::MethodNotAllowed);
            response.headers_mut().insert(
                actix_web::http::header::ALLOW,
                actix_web::http::header::HeaderValue::from_static("POST"),
            );
            response
        })
}

async fn services_of(
    state: web::Data<AppState>,
    caller: Caller,
    query: ServiceListQuery,
) -> Result<web::Json<Page<ServiceView>>, ApiError> {
    let (mut filter, page, ward) = query.parse(caller.visibility())?;
    let mut conn = state.reader(&caller).await?;
    if let Some((code, radius)) = ward {
        filter.near = Some((super::params::ward_point(&mut conn, &code).await?, radius));
    }
    let (records, total) = services::search(&mut conn, &filter, page).await?;
    let next_cursor = records
        .last()
        .filter(|_| filter.modified_after.is_some())
        .map(|record| {
            // The time the feed is ordered by, for this caller.
            let audience = caller.audience_for(record.row.organization_id);
            let modified =
                audience.last_modified(record.row.last_modified, record.row.public_last_modified);
            FeedCursor::new(modified, record.row.id.0).encode()
        });
    let contents = records
        .into_iter()
        .map(|record| {
            let audience = caller.audience_for(record.row.organization_id);
            ServiceView::new(record, audience)
        })
        .collect();
    Ok(web::Json(Page {
        next_cursor,
        ..Page::new(contents, total, page)
    }))
}

/// A service as this caller may see it, or 404.
async fn visible_service(
    conn: &mut DbConn,
    caller: &Caller,
    id: ServiceId,
) -> Result<ServiceView, ApiError> {
    let record = services_workflow::visible(conn, caller, id).await?;
    let audience = caller.audience_for(record.row.organization_id);
    Ok(ServiceView::new(record, audience))
}

/// One service with everything nested: organisation, locations, phones,
/// opening hours, eligibility, service areas (GeoJSON). The `ETag` is the
/// version to send back in `If-Match` when changing it.
#[utoipa::path(
    tag = "directory",
    params(("id" = uuid::Uuid, Path, description = "The service's id")),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The service", body = ServiceView,
            headers(("ETag" = String, description = "Version of this representation"))),
        responses::ReadProblems,
    )
)]
#[get("/services/{id}")]
pub async fn get_service(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ServiceId(parse_uuid(&id, "id")?);
    let mut conn = state.reader(&caller).await?;
    let view = visible_service(&mut conn, &caller, id).await?;
    etag::json_with_etag(StatusCode::OK, &view)
}

/// A stored service as its owner sees it, with its `ETag`.
fn owner_answer(status: StatusCode, record: ServiceRecord) -> Result<HttpResponse, ApiError> {
    etag::json_with_etag(status, &Services::owner_view(&record))
}

impl OwnerView for Services {
    type View = ServiceView;

    fn owner_view(record: &ServiceRecord) -> ServiceView {
        ServiceView::new(record.clone(), Audience::Full)
    }

    fn path(record: &ServiceRecord) -> String {
        format!("/v1/services/{}", record.row.id)
    }
}

fn service_id(raw: &str) -> Result<ServiceId, ApiError> {
    Ok(ServiceId(parse_uuid(raw, "id")?))
}

/// Create a service (agency: for its own organisation; admin: for the
/// organisation named). Answers 201 with the service, its `Location` and
/// `ETag`.
#[utoipa::path(
    tag = "writes",
    request_body = ServiceDocument,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The service created", body = ServiceView,
            headers(("ETag" = String), ("Location" = String))),
        responses::CreateProblems,
    )
)]
#[post("/services")]
pub async fn create_service(
    state: web::Data<AppState>,
    caller: Caller,
    body: ApiJson<ServiceDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    writes::create::<Services>(&state, caller, body.parse()?).await
}

/// Replace a service with the document sent (the owning agency or an
/// admin). `If-Match` must carry the service's current `ETag`.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The service's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being replaced")),
    request_body = ServiceDocument,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The service as now stored", body = ServiceView,
            headers(("ETag" = String))),
        responses::UpdateProblems,
    )
)]
#[put("/services/{id}")]
pub async fn replace_service(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<ServiceDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let change = Change::Replace(body.parse()?);
    writes::change::<Services>(&state, caller, service_id(&id)?, if_match, change).await
}

/// Change some fields of a service: a JSON Merge Patch (RFC 7396) of its
/// document (`null` removes a field; lists are replaced whole).
/// `If-Match` must carry the current `ETag`.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The service's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being changed")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "Fields of `ServiceDocument` to change"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The service as now stored", body = ServiceView,
            headers(("ETag" = String))),
        responses::UpdateProblems,
    )
)]
#[patch("/services/{id}")]
pub async fn patch_service(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let change = Change::MergePatch(body.parse()?);
    writes::change::<Services>(&state, caller, service_id(&id)?, if_match, change).await
}

/// Archive a service: its status becomes `inactive`, it leaves public
/// listings and match results, and its history stays. Nothing is erased;
/// `POST /v1/services/{id}/restore` brings it back.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The service's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being archived")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The service, archived", body = ServiceView,
            headers(("ETag" = String))),
        responses::StateProblems,
    )
)]
#[delete("/services/{id}")]
pub async fn archive_service(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let id = service_id(&id)?;
    caller.require(WRITERS)?;
    writes::change::<Services>(&state, caller, id, if_match, Change::Archive).await
}

/// Restore an archived service: its status becomes `active` again.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The service's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being restored")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The service, active", body = ServiceView,
            headers(("ETag" = String))),
        responses::StateProblems,
    )
)]
#[post("/services/{id}/restore")]
pub async fn restore_service(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let id = service_id(&id)?;
    caller.require(WRITERS)?;
    writes::change::<Services>(&state, caller, id, if_match, Change::Restore).await
}

/// Update a service's capacity in one call (a shelter's free beds):
/// `If-Match` is optional here, and checked when sent. `updated` is set
/// by the server.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The service's id"),
        ("If-Match" = Option<String>, Header, description = "Optional: the ETag the change is based on")),
    request_body = CapacityDocument,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The service with its new capacity", body = ServiceView,
            headers(("ETag" = String))),
        responses::NotFound,
        responses::BodyProblems,
        responses::AuthProblems,
        (status = 412, description = "`If-Match` was sent and is stale", body = super::problem::Problem,
            content_type = "application/problem+json"),
        responses::ServerProblems,
    )
)]
#[put("/services/{id}/capacity")]
pub async fn set_capacity(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<CapacityDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let body = body.parse()?;
    let id = service_id(&id)?;
    let mut conn = state.primary().await?;
    let precondition = if_match.optional(Services::owner_view);
    let record =
        services_workflow::set_capacity(&mut conn, &caller, id, &precondition, body).await?;
    owner_answer(StatusCode::OK, record)
}

/// When a listing was verified.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// The day the listing was checked; `null` clears it. Not in the future.
    pub assured_date: Option<chrono::NaiveDate>,
}

/// Record that a listing was verified (admins only): sets `assured_date`.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The service's id"),
        ("If-Match" = String, Header, description = "The ETag of the version verified")),
    request_body = Verification,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The service, verified", body = ServiceView,
            headers(("ETag" = String))),
        responses::UpdateProblems,
    )
)]
#[put("/services/{id}/verification")]
pub async fn verify_service(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<Verification>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.parse()?;
    let id = service_id(&id)?;
    let mut conn = state.primary().await?;
    let precondition = if_match.required(Services::owner_view);
    let record =
        services_workflow::verify(&mut conn, &caller, id, &precondition, body.assured_date).await?;
    owner_answer(StatusCode::OK, record)
}

/// The changes to a service, oldest first: who (key id), when, what
/// (before and after, and the fields that changed). For the owning agency
/// and admins.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The service's id"), PageQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One page of changes", body = Page<HistoryEntry>),
        responses::BadRequest,
        responses::NotFound,
        responses::AuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/services/{id}/history")]
pub async fn service_history(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<HistoryEntry>>, ApiError> {
    caller.require(WRITERS)?;
    let id = service_id(&id)?;
    let page = query.0.page_request()?;
    let mut conn = state.reader(&caller).await?;
    let (rows, total) = services_workflow::history(&mut conn, &caller, id, page).await?;
    let contents = rows
        .into_iter()
        .map(|row| HistoryEntry {
            changed: match (&row.before, &row.after) {
                (Some(before), Some(after)) => changed_fields(before, after),
                (None, Some(after)) => changed_fields(&serde_json::Value::Null, after),
                _ => Vec::new(),
            },
            id: row.id,
            at: row.at,
            key_id: row.key_id,
            action: row.action,
            before: row.before,
            after: row.after,
        })
        .collect();
    Ok(web::Json(Page::new(contents, total, page)))
}
