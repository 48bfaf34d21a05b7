//! API keys, managed by admins: create (the secret is shown once), list,
//! change expiry, revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, parse_uuid};
use super::problem::{ApiError, FieldError, responses};
use crate::db::models::keys::{self, KeyRecord, KeySpec};
use crate::db::models::organizations;
use crate::domain::ids::{KeyId, OrganizationId};
use crate::domain::keys::Role;

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: KeyId,
    /// The start of the key, to recognise it.
    #[schema(example = "kn_3q2Lx9aBc")]
    pub prefix: String,
    pub role: Role,
    /// The organisation an agency key writes for.
    pub organization_id: Option<OrganizationId>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether the key works now (neither expired nor revoked).
    pub live: bool,
}

impl From<KeyRecord> for KeyView {
    fn from(key: KeyRecord) -> Self {
        Self {
            live: key.is_live(Utc::now()),
            id: key.id,
            prefix: key.prefix,
            role: key.role,
            organization_id: key.organization_id,
            label: key.label,
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// A new key, with its secret: store it now, it is never shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKeyView {
    /// The secret, for `Authorization: Bearer <key>`.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyView,
}

/// What a new key is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    pub role: Role,
    /// Required for `agency`, refused otherwise.
    #[serde(default)]
    pub organization_id: Option<OrganizationId>,
    /// Who holds it, up to 200 characters.
    #[serde(default)]
    pub label: String,
    /// When it stops working; never, if left out.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Instants PostgreSQL stores: years 1 to 9999.
fn check_instant(field: &str, at: DateTime<Utc>, errors: &mut Vec<FieldError>) {
    use chrono::Datelike;
    if !(1..=9999).contains(&at.year()) {
        errors.push(FieldError::new(
            field,
            "range",
            "instants fall between the years 1 and 9999",
        ));
    }
}

/// Checks a key request against the rules every path (API and command
/// line) shares.
pub async fn check_request(
    conn: &mut crate::db::DbConn,
    request: KeyRequest,
) -> Result<KeySpec, ApiError> {
    let mut errors = Vec::new();
    match (request.role, request.organization_id) {
        (Role::Agency, None) => errors.push(FieldError::new(
            "organization_id",
            "required",
            "an agency key is bound to one organisation",
        )),
        (Role::Agency, Some(id)) => {
            if !organizations::exists(conn, id).await? {
                errors.push(FieldError::new(
                    "organization_id",
                    "exists",
                    "no organisation has this id",
                ));
            }
        }
        (_, Some(_)) => errors.push(FieldError::new(
            "organization_id",
            "agency_only",
            "only agency keys are bound to an organisation",
        )),
        (_, None) => {}
    }
    if request.label.chars().count() > 200 {
        errors.push(FieldError::new("label", "length", "at most 200 characters"));
    }
    if request.label.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "label",
            "format",
            "must not contain control characters",
        ));
    }
    if let Some(at) = request.expires_at {
        check_instant("expires_at", at, &mut errors);
    }
    if request.expires_at.is_some_and(|at| at <= Utc::now()) {
        errors.push(FieldError::new(
            "expires_at",
            "future",
            "a new key must expire in the future",
        ));
    }
    if errors.is_empty() {
        Ok(KeySpec {
            role: request.role,
            organization_id: request.organization_id,
            label: request.label,
            expires_at: request.expires_at,
        })
    } else {
        Err(ApiError::Unprocessable(errors))
    }
}

/// Create a key (admins only). The answer carries the secret, once.
#[utoipa::path(
    tag = "keys",
    request_body = KeyRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The key, with its secret", body = NewKeyView),
        responses::BodyProblems,
        responses::AuthProblems,
        responses::ServerProblems,
    )
)]
#[post("/keys")]
pub async fn create_key(
    state: web::Data<AppState>,
    caller: Caller,
    body: ApiJson<KeyRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.parse()?;
    let mut conn = state.primary().await?;
    let spec = check_request(&mut conn, body).await?;
    let (key, token) = keys::create_audited(&mut conn, &spec, caller.key_id()).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Cache-Control", "no-store"))
        .json(NewKeyView {
            key: token,
            details: key.into(),
        }))
}

/// Every key, oldest first, without secrets (admins only).
#[utoipa::path(
    tag = "keys",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The keys", body = Vec<KeyView>),
        responses::AuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/keys")]
pub async fn list_keys(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<web::Json<Vec<KeyView>>, ApiError> {
    caller.require(&[Role::Admin])?;
    let mut conn = state.primary().await?;
    Ok(web::Json(
        keys::list(&mut conn)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// A change to a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyChange {
    /// When the key stops working (a past instant expires it now); `null`
    /// for never. Required: leaving it out does not clear it.
    #[serde(deserialize_with = "required_nullable")]
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A field that must be present but may be `null` (serde would otherwise
/// read a missing `Option` as `null`).
fn required_nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    Option::deserialize(deserializer)
}

/// Set when a key expires (admins only).
#[utoipa::path(
    tag = "keys",
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    request_body = KeyChange,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The key", body = KeyView),
        responses::NotFound,
        responses::BodyProblems,
        responses::AuthProblems,
        responses::ServerProblems,
    )
)]
#[patch("/keys/{id}")]
pub async fn change_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: ApiJson<KeyChange>,
) -> Result<web::Json<KeyView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.parse()?;
    let id = KeyId(parse_uuid(&id, "id")?);
    let mut errors = Vec::new();
    if let Some(at) = body.expires_at {
        check_instant("expires_at", at, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ApiError::Unprocessable(errors));
    }
    let mut conn = state.primary().await?;
    let key = keys::set_expiry_audited(&mut conn, id, body.expires_at, caller.key_id())
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    Ok(web::Json(key.into()))
}

/// Revoke a key at once and for good (admins only).
#[utoipa::path(
    tag = "keys",
    params(("id" = uuid::Uuid, Path, description = "The key's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The key, revoked", body = KeyView),
        responses::BadRequest,
        responses::NotFound,
        responses::AuthProblems,
        responses::ServerProblems,
    )
)]
#[delete("/keys/{id}")]
pub async fn revoke_key(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<KeyView>, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = KeyId(parse_uuid(&id, "id")?);
    let mut conn = state.primary().await?;
    let key = keys::revoke_audited(&mut conn, id, caller.key_id())
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    Ok(web::Json(key.into()))
}
