//! Locations: read by anyone (redacted when confidential), written by the
//! owning agency or an admin, archived rather than deleted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, merge_patch, parse_uuid};
use super::problem::{ApiError, FieldError, responses};
use super::views::LocationView;
use crate::db::DbConn;
use crate::db::models::locations::{self, LocationRecord};
use crate::db::models::organizations;
use crate::db::models::writes::{self, Action, LocationWrite, location_document};
use crate::domain::access::Audience;
use crate::domain::ids::{LocationId, OrganizationId};
use crate::domain::keys::Role;
use crate::domain::listing::LocationDocument;

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
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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

async fn owner_detail(
    conn: &mut DbConn,
    id: LocationId,
) -> Result<(LocationDetail, LocationDocument, String), ApiError> {
    let (record, archived_at) = locations::get(conn, id)
        .await?
        .ok_or(ApiError::NotFound("location"))?;
    let document = location_document(&record);
    let view = detail(record, archived_at, Audience::Full);
    let tag = etag::of(&view)?;
    Ok((view, document, tag))
}

fn audit_value(document: &LocationDocument) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(document).map_err(|error| ApiError::Internal(error.into()))
}

async fn save_location(
    conn: &mut DbConn,
    caller: &Caller,
    id: LocationId,
    organization_id: OrganizationId,
    before: Option<LocationDocument>,
    document: LocationDocument,
    action: Action,
) -> Result<LocationDetail, ApiError> {
    if document
        .organization_id
        .is_some_and(|named| named != organization_id)
    {
        return Err(ApiError::Unprocessable(vec![FieldError::new(
            "organization_id",
            "immutable",
            "a location stays with its organisation",
        )]));
    }
    let mut document = document;
    document.organization_id = Some(organization_id);
    let validated = document.validate().map_err(ApiError::invalid_document)?;
    writes::defer_refresh(conn).await?;
    let services = writes::write_locations(
        conn,
        &[LocationWrite {
            id,
            organization_id,
            document: &validated,
        }],
    )
    .await?;
    writes::refresh(conn, &services).await?;
    writes::audit_one(
        conn,
        caller.key_id(),
        action,
        "location",
        id.0,
        before.as_ref().map(audit_value).transpose()?,
        Some(audit_value(validated.get())?),
    )
    .await?;
    Ok(owner_detail(conn, id).await?.0)
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
        responses::BodyProblems,
        responses::AuthProblems,
        responses::ServerProblems,
    )
)]
#[post("/locations")]
pub async fn create_location(
    state: web::Data<AppState>,
    caller: Caller,
    body: ApiJson<LocationDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Agency])?;
    let body = body.parse()?;
    let organization_id = super::services::organization_for(&caller, body.organization_id)?;
    let id = LocationId(uuid::Uuid::new_v4());
    let mut conn = state.primary().await?;
    let view = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            if !organizations::exists(conn, organization_id).await? {
                return Err(ApiError::Unprocessable(vec![FieldError::new(
                    "organization_id",
                    "exists",
                    "no organisation has this id",
                )]));
            }
            save_location(
                conn,
                &caller,
                id,
                organization_id,
                None,
                body,
                Action::Create,
            )
            .await
        })
        .await?;
    etag::created(&view, &format!("/v1/locations/{id}"))
}

/// Locks a location the caller may change and checks `If-Match`.
async fn lock_for_update(
    conn: &mut DbConn,
    caller: &Caller,
    id: LocationId,
    if_match: &IfMatch,
) -> Result<(OrganizationId, LocationDocument), ApiError> {
    let (organization, _) = writes::lock_location(conn, id)
        .await?
        .ok_or(ApiError::NotFound("location"))?;
    caller.require_owner(organization, "location")?;
    let (_, document, current) = owner_detail(conn, id).await?;
    if_match.require(&current)?;
    Ok((organization, document))
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
        responses::NotFound,
        responses::BodyProblems,
        responses::AuthProblems,
        responses::PreconditionProblems,
        responses::ServerProblems,
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
    caller.require(&[Role::Admin, Role::Agency])?;
    let body = body.parse()?;
    let id = location_id(&id)?;
    let mut conn = state.primary().await?;
    let view = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (organization, before) = lock_for_update(conn, &caller, id, &if_match).await?;
            save_location(
                conn,
                &caller,
                id,
                organization,
                Some(before),
                body,
                Action::Update,
            )
            .await
        })
        .await?;
    etag::json_with_etag(StatusCode::OK, &view)
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
        responses::NotFound,
        responses::BodyProblems,
        responses::AuthProblems,
        responses::PreconditionProblems,
        responses::ServerProblems,
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
    caller.require(&[Role::Admin, Role::Agency])?;
    let body = body.parse()?;
    let id = location_id(&id)?;
    let mut conn = state.primary().await?;
    let view = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (organization, before) = lock_for_update(conn, &caller, id, &if_match).await?;
            let document = merge_patch(&before, &body)?;
            save_location(
                conn,
                &caller,
                id,
                organization,
                Some(before),
                document,
                Action::Update,
            )
            .await
        })
        .await?;
    etag::json_with_etag(StatusCode::OK, &view)
}

async fn set_archived(
    state: &AppState,
    caller: Caller,
    id: LocationId,
    if_match: IfMatch,
    archived: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Agency])?;
    let mut conn = state.primary().await?;
    let view = conn
        .transaction::<_, ApiError, _>(async move |conn| {
            let (_, document) = lock_for_update(conn, &caller, id, &if_match).await?;
            writes::set_location_archived(conn, id, archived).await?;
            let value = audit_value(&document)?;
            let action = if archived {
                Action::Archive
            } else {
                Action::Restore
            };
            writes::audit_one(
                conn,
                caller.key_id(),
                action,
                "location",
                id.0,
                Some(serde_json::json!({"archived": !archived, "location": value})),
                Some(serde_json::json!({"archived": archived, "location": value})),
            )
            .await?;
            Ok::<_, ApiError>(owner_detail(conn, id).await?.0)
        })
        .await?;
    etag::json_with_etag(StatusCode::OK, &view)
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
        responses::BadRequest,
        responses::NotFound,
        responses::AuthProblems,
        responses::PreconditionProblems,
        responses::ServerProblems,
    )
)]
#[delete("/locations/{id}")]
pub async fn archive_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    set_archived(&state, caller, location_id(&id)?, if_match, true).await
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
        responses::BadRequest,
        responses::NotFound,
        responses::AuthProblems,
        responses::PreconditionProblems,
        responses::ServerProblems,
    )
)]
#[post("/locations/{id}/restore")]
pub async fn restore_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    set_archived(&state, caller, location_id(&id)?, if_match, false).await
}
