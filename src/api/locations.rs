//! Locations: read by anyone (redacted when confidential), written by the
//! owning agency or an admin, archived rather than deleted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, parse_uuid};
use super::problem::{ApiError, responses};
use super::views::LocationView;
use super::writes::{self, OwnerView};
use crate::db::models::locations::{self, LocationRecord};
use crate::domain::access::Audience;
use crate::domain::ids::{LocationId, OrganizationId};
use crate::domain::listing::LocationDocument;
use crate::workflows::WRITERS;
use crate::workflows::listings::Change;
use crate::workflows::locations::{Locations, StoredLocation};

/// A location on its own, with its organisation and state.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationDetail {
    #[serde(flatten)]
    pub location: LocationView,
    pub organization_id: OrganizationId,
    /// When it was archived (`DELETE`); archived locations are left out of
    /// listings and matches.
    pub archived_at: Option<DateTime<Utc>>,
    /// When it last changed; when redacted, when what is shown changed
    /// (a new address or exact point is not a change to the public).
    pub last_modified: DateTime<Utc>,
}

fn detail(
    record: LocationRecord,
    archived_at: Option<DateTime<Utc>>,
    audience: Audience,
) -> LocationDetail {
    let organization_id = record.row.organization_id;
    let last_modified =
        audience.last_modified(record.row.last_modified, record.row.public_last_modified);
    LocationDetail {
        location: LocationView::new(record, audience),
        organization_id,
        archived_at,
        last_modified,
    }
}

fn location_id(raw: &str) -> Result<LocationId, ApiError> {
    Ok(LocationId(parse_uuid(raw, "id")?))
}

/// One location. Confidential ones are redacted for the public and for
/// other agencies; archived ones are shown only to their owner, admins
/// and caseworkers.
#[utoipa::path(
    tag = "directory",
    params(("id" = uuid::Uuid, Path, description = "The location's id")),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The location", body = LocationDetail,
            headers(("ETag" = String, description = "Version of this representation"))),
        responses::ReadProblems,
    )
)]
#[get("/locations/{id}")]
pub async fn get_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = location_id(&id)?;
    let mut conn = state.reader(&caller).await?;
    let (record, archived_at) = locations::get(&mut conn, id)
        .await?
        .filter(|(record, archived_at)| {
            caller
                .visibility()
                .allows_location(record.row.organization_id, archived_at.is_some())
        })
        .ok_or(ApiError::NotFound("location"))?;
    let audience = caller.audience_for(record.row.organization_id);
    etag::json_with_etag(StatusCode::OK, &detail(record, archived_at, audience))
}

impl OwnerView for Locations {
    type View = LocationDetail;

    fn owner_view((record, archived_at): &StoredLocation) -> LocationDetail {
        detail(record.clone(), *archived_at, Audience::Full)
    }

    fn path((record, _): &StoredLocation) -> String {
        format!("/v1/locations/{}", record.row.id)
    }
}

/// Add a location (agency: for its own organisation; admin: for the one
/// named). Services then list it in `location_ids`.
#[utoipa::path(
    tag = "writes",
    request_body = LocationDocument,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The location created", body = LocationDetail,
            headers(("ETag" = String), ("Location" = String))),
        responses::CreateProblems,
    )
)]
#[post("/locations")]
pub async fn create_location(
    state: web::Data<AppState>,
    caller: Caller,
    body: ApiJson<LocationDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    writes::create::<Locations>(&state, caller, body.parse()?).await
}

/// Replace a location; `If-Match` must carry its current `ETag`. The
/// services offered there see the change at once (matches included).
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The location's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being replaced")),
    request_body = LocationDocument,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The location as now stored", body = LocationDetail,
            headers(("ETag" = String))),
        responses::UpdateProblems,
    )
)]
#[put("/locations/{id}")]
pub async fn replace_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<LocationDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let change = Change::Replace(body.parse()?);
    writes::change::<Locations>(&state, caller, location_id(&id)?, if_match, change).await
}

/// Change some fields of a location: a JSON Merge Patch (RFC 7396) of its
/// document. `If-Match` must carry the current `ETag`.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The location's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being changed")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "Fields of `LocationDocument` to change"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The location as now stored", body = LocationDetail,
            headers(("ETag" = String))),
        responses::UpdateProblems,
    )
)]
#[patch("/locations/{id}")]
pub async fn patch_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(WRITERS)?;
    let change = Change::MergePatch(body.parse()?);
    writes::change::<Locations>(&state, caller, location_id(&id)?, if_match, change).await
}

/// Archive a location: it leaves listings and matches (its services stay,
/// offered at their other locations), and can be restored.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The location's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being archived")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The location, archived", body = LocationDetail,
            headers(("ETag" = String))),
        responses::StateProblems,
    )
)]
#[delete("/locations/{id}")]
pub async fn archive_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let id = location_id(&id)?;
    caller.require(WRITERS)?;
    writes::change::<Locations>(&state, caller, id, if_match, Change::Archive).await
}

/// Restore an archived location.
#[utoipa::path(
    tag = "writes",
    params(("id" = uuid::Uuid, Path, description = "The location's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being restored")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The location, restored", body = LocationDetail,
            headers(("ETag" = String))),
        responses::StateProblems,
    )
)]
#[post("/locations/{id}/restore")]
pub async fn restore_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let id = location_id(&id)?;
    caller.require(WRITERS)?;
    writes::change::<Locations>(&state, caller, id, if_match, Change::Restore).await
}
