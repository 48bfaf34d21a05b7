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
use super::problem::{ApiError, responses};
use crate::db::models::keys::{self, KeyRecord};
use crate::domain::access::Role;
use crate::domain::ids::{KeyId, OrganizationId};
use crate::workflows::keys::{self as keys_workflow, KeyEdit, KeyRequest};

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: KeyId,
    /// The start of the key, to recognise it.
    #[schema(example = "kn_3q2Lx9aBc")]
    pub prefix: String,
    pub role: Role,
    /// The organisation an agency key writes for (or a caseworker key
    /// refers for).
    pub organization_id: Option<OrganizationId>,
    /// The province a steward key reads.
    #[schema(example = "15")]
    pub province_code: Option<String>,
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
            province_code: key.province.map(|code| code.as_str().to_owned()),
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

/// Create a key (admins only). The answer carries the secret, once.
#[utoipa::path(
    tag = "keys",
    request_body = KeyRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The key, with its secret", body = NewKeyView),
        responses::CreateProblems,
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
    let (key, token) = keys_workflow::create(&mut conn, &caller, body).await?;
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
    let mut conn = state.primary().await?;
    let key = keys_workflow::edit(&mut conn, &caller, id, KeyEdit::Expiry(body.expires_at)).await?;
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
    let key = keys_workflow::edit(&mut conn, &caller, id, KeyEdit::Revoke).await?;
    Ok(web::Json(key.into()))
}
