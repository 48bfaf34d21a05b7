//! Referrals: made by caseworkers, answered by the receiving organisation,
//! and each organisation's referral endpoint (the key hand-offs are sealed
//! to, the webhook URL). Nothing in a request or response identifies the
//! person: the hand-off travels as ciphertext only the receiving
//! organisation can open (docs/referrals.md).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, put, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::etag::{self, IfMatch};
use super::extract::{ApiJson, ApiQuery, parse_uuid};
use super::params::{self, FieldErrors};
use super::problem::{ApiError, FieldError, responses};
use crate::db::models::referrals::EndpointRow;
use crate::domain::category::Category;
use crate::domain::ids::{KeyId, LocationId, OrganizationId, ReferralId, ServiceId};
use crate::domain::referral::{ReferralReason, ReferralStatus, Side, Transition};
use crate::exchange::sealed;
use crate::workflows::referrals::{
    self as workflow, EndpointSettings, EndpointState, NewReferral, ReferralState,
};

/// How an organisation receives referrals.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// The organisation's X25519 public key (32 bytes, standard base64):
    /// hand-offs are sealed to it (libsodium `crypto_box_seal`). Make a
    /// pair with `ketnoi referral keygen`; the secret key never leaves
    /// the organisation.
    #[schema(example = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=")]
    pub public_key: String,
    /// Where to send signed webhooks on a new referral and on every change
    /// of status: `https`, or `http` to localhost. Leave out for none.
    #[serde(default)]
    #[schema(example = "https://ngo.example.vn/hooks/ketnoi")]
    pub webhook_url: Option<String>,
    /// Make a new signing secret even though the URL is unchanged.
    #[serde(default)]
    pub rotate_secret: bool,
}

/// An organisation's referral endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub organization_id: OrganizationId,
    /// Seal hand-offs to this key (standard base64).
    pub public_key: String,
    /// Only for the organisation's own keys and admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The signing secret (`whsec_…`, Standard Webhooks), shown only in
    /// the answer that made it: keep it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    pub updated_at: DateTime<Utc>,
}

fn endpoint_view(row: EndpointRow, caller: &Caller, secret: Option<String>) -> EndpointView {
    EndpointView {
        organization_id: row.organization_id,
        public_key: STANDARD.encode(&row.public_key),
        webhook_url: row.webhook_url.filter(|_| caller.owns(row.organization_id)),
        webhook_secret: secret,
        updated_at: row.updated_at,
    }
}

/// An organisation's referral endpoint: its public key (caseworkers need
/// it to seal a hand-off), and its webhook URL for its own keys.
#[utoipa::path(
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        responses::KeyedReadProblems,
    )
)]
#[get("/organizations/{id}/referral-endpoint")]
pub async fn get_endpoint(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = OrganizationId(parse_uuid(&id, "id")?);
    let mut conn = state.primary().await?;
    let row = workflow::read_endpoint(&mut conn, &caller, id).await?;
    etag::json_with_etag(StatusCode::OK, &endpoint_view(row, &caller, None))
}

/// Register (or change) how an organisation receives referrals: its
/// agency's key or an admin. A new webhook URL gets a new signing secret,
/// shown once in this answer.
#[utoipa::path(
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id")),
    request_body = EndpointRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The endpoint as now stored", body = EndpointView),
        responses::NotFound,
        responses::CreateProblems,
    )
)]
#[put("/organizations/{id}/referral-endpoint")]
pub async fn put_endpoint(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: ApiJson<EndpointRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = OrganizationId(parse_uuid(&id, "id")?);
    caller.require_owner(id, "organization")?;
    let body = body.parse()?;
    let public_key = sealed::parse_public_key(&body.public_key)
        .map_err(|invalid| ApiError::invalid_document(vec![("public_key".into(), invalid)]))?;
    let settings = EndpointSettings {
        public_key,
        webhook_url: body.webhook_url,
        rotate_secret: body.rotate_secret,
    };
    let mut conn = state.primary().await?;
    let EndpointState { row, new_secret } =
        workflow::set_endpoint(&mut conn, &caller, id, settings).await?;
    // Keyed answers under /v1/organizations are stored nowhere (etag::cache_policy).
    etag::json_with_etag(StatusCode::OK, &endpoint_view(row, &caller, new_secret))
}

/// A referral to make: one service, one need.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralRequest {
    pub service_id: ServiceId,
    /// The need (category) the person is referred for; the service must
    /// offer it.
    pub need: Category,
    /// One of the service's locations, if the person goes to a particular
    /// one.
    #[serde(default)]
    pub location_id: Option<LocationId>,
    /// Whether the person agreed to the hand-off; required for `handoff`.
    pub consent: bool,
    /// The person's contact details and a note, sealed to the receiving
    /// organisation's `public_key` (libsodium `crypto_box_seal`, standard
    /// base64, 49 to 8,240 bytes once decoded). Never send them in clear:
    /// use `ketnoi referral seal` or your libsodium binding.
    #[serde(default)]
    pub handoff: Option<String>,
    /// Days the receiving organisation has to answer: 1 to 90, default 30.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90)]
    pub expires_in_days: Option<i64>,
}

/// One change of a referral's status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralEventView {
    pub at: DateTime<Utc>,
    pub from: Option<ReferralStatus>,
    pub to: ReferralStatus,
    pub reason: Option<ReferralReason>,
    /// The key that made it; none when the server did (expiry).
    pub key_id: Option<KeyId>,
}

/// A referral: who referred whom to what, and how it stands — never who
/// the person is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralView {
    pub id: ReferralId,
    pub service_id: ServiceId,
    pub need: Category,
    pub location_id: Option<LocationId>,
    pub receiving_organization_id: OrganizationId,
    pub referring_organization_id: Option<OrganizationId>,
    pub referring_key_id: Option<KeyId>,
    pub consent: bool,
    pub status: ReferralStatus,
    /// A decline's reason or a completion's outcome.
    pub reason: Option<ReferralReason>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub in_service_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The sealed hand-off: only to the receiving organisation, and only
    /// while `sent` (it is deleted when the referral leaves `sent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<String>,
    /// What the reader may change it to now.
    pub allowed_transitions: Vec<ReferralStatus>,
    /// Its history, oldest first (in a single referral's view).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ReferralEventView>,
}

fn referral_view(state: &ReferralState) -> ReferralView {
    let mut view = brief(&state.record, Some(state.side));
    view.handoff = state
        .record
        .handoff
        .as_deref()
        .map(|bytes| STANDARD.encode(bytes));
    view.events = state
        .events
        .iter()
        .map(|event| ReferralEventView {
            at: event.at,
            from: event
                .from_status
                .as_deref()
                .and_then(|s| ReferralStatus::parse(s).ok()),
            to: ReferralStatus::parse(&event.to_status).unwrap_or(ReferralStatus::Sent),
            reason: event
                .reason
                .as_deref()
                .and_then(|s| ReferralReason::parse(s).ok()),
            key_id: event.key_id,
        })
        .collect();
    view
}

fn brief(
    record: &crate::db::models::referrals::ReferralRecord,
    side: Option<Side>,
) -> ReferralView {
    let row = &record.row;
    ReferralView {
        id: row.id,
        service_id: row.service_id,
        need: record.need,
        location_id: row.location_id,
        receiving_organization_id: row.receiving_organization_id,
        referring_organization_id: row.referring_organization_id,
        referring_key_id: row.referring_key_id,
        consent: row.consent,
        status: record.status,
        reason: record.reason,
        created_at: row.created_at,
        expires_at: row.expires_at,
        accepted_at: row.accepted_at,
        in_service_at: row.in_service_at,
        closed_at: row.closed_at,
        handoff: None,
        allowed_transitions: side
            .map(|side| crate::domain::referral::allowed(record.status, side))
            .unwrap_or_default()
            .into_iter()
            .filter(|to| *to != ReferralStatus::Expired)
            .collect(),
        events: Vec::new(),
    }
}

fn decode_handoff(value: Option<&str>) -> Result<Option<Vec<u8>>, ApiError> {
    value
        .map(sealed::decode_handoff)
        .transpose()
        .map_err(|invalid| ApiError::invalid_document(vec![("handoff".into(), invalid)]))
}

/// Refer a person to a service for one need (caseworkers and admins). The
/// service must be active, accept referrals, offer the need, and its
/// organisation must have registered a key: a hand-off is never sent in
/// clear.
#[utoipa::path(
    tag = "referrals",
    request_body = ReferralRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The referral made", body = ReferralView,
            headers(("ETag" = String), ("Location" = String))),
        responses::CreateProblems,
    )
)]
#[post("/referrals")]
pub async fn create_referral(
    state: web::Data<AppState>,
    caller: Caller,
    body: ApiJson<ReferralRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[
        crate::domain::access::Role::Admin,
        crate::domain::access::Role::Caseworker,
    ])?;
    let body = body.parse()?;
    let request = NewReferral {
        service_id: body.service_id,
        need: body.need,
        location_id: body.location_id,
        consent: body.consent,
        handoff: decode_handoff(body.handoff.as_deref())?,
        expires_in_days: body.expires_in_days,
    };
    let mut conn = state.primary().await?;
    let made = workflow::create(&mut conn, &caller, request).await?;
    let view = referral_view(&made);
    etag::created(&view, &format!("/v1/referrals/{}", view.id))
}

/// One referral, for either side of it (or an admin); `ETag` names its
/// version for `If-Match`.
#[utoipa::path(
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The referral's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The referral", body = ReferralView,
            headers(("ETag" = String))),
        responses::KeyedReadProblems,
    )
)]
#[get("/referrals/{id}")]
pub async fn get_referral(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ReferralId(parse_uuid(&id, "id")?);
    let mut conn = state.primary().await?;
    let found = workflow::read(&mut conn, &caller, id).await?;
    etag::json_with_etag(StatusCode::OK, &referral_view(&found))
}

/// A change of status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// `accepted`, `declined`, `in_service`, `completed` (the receiving
    /// organisation) or `withdrawn` (the referrer).
    pub status: ReferralStatus,
    /// Required for `declined` (no_capacity, not_eligible,
    /// could_not_contact, person_declined, duplicate, other) and
    /// `completed` (service_received, person_withdrew, lost_contact).
    #[serde(default)]
    pub reason: Option<ReferralReason>,
}

/// Move a referral on: the receiving organisation accepts, declines (with
/// a reason), starts and completes it (with an outcome); the referrer may
/// withdraw it. `If-Match` must carry its current `ETag`. A change its
/// status does not allow is a 409 naming the statuses it may take.
#[utoipa::path(
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The referral's id"),
        ("If-Match" = String, Header, description = "The ETag of the version being changed")),
    request_body = StatusRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The referral as now stored", body = ReferralView,
            headers(("ETag" = String))),
        responses::TransitionProblems,
    )
)]
#[post("/referrals/{id}/status")]
pub async fn change_status(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    if_match: IfMatch,
    body: ApiJson<StatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = ReferralId(parse_uuid(&id, "id")?);
    let body = body.parse()?;
    let transition = Transition {
        to: body.status,
        reason: body.reason,
    };
    let mut conn = state.primary().await?;
    let precondition = if_match.required(referral_view);
    let changed = workflow::transition(&mut conn, &caller, id, &precondition, transition).await?;
    etag::json_with_etag(StatusCode::OK, &referral_view(&changed))
}

/// Which referrals to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReferralListQuery {
    /// Only referrals in this status (`sent` for an agency's inbox).
    #[param(value_type = Option<ReferralStatus>)]
    pub status: Option<String>,
    /// Where the previous page ended (its `next`).
    #[param(max_length = 100)]
    pub cursor: Option<String>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// A page of referrals, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralPage {
    pub contents: Vec<ReferralView>,
    /// The `cursor` of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The referrals the key may see: an agency its inbox (sent to its
/// organisation), a caseworker those it or its organisation made, an
/// admin all. Newest first, by cursor.
#[utoipa::path(
    tag = "referrals",
    params(ReferralListQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page of referrals", body = ReferralPage),
        responses::KeyedListProblems,
    )
)]
#[get("/referrals")]
pub async fn list_referrals(
    state: web::Data<AppState>,
    caller: Caller,
    query: ApiQuery<ReferralListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.referral_party()?;
    let query = query.0;
    let mut errors = FieldErrors::default();
    let status = errors.parse("status", query.status.as_deref(), ReferralStatus::parse);
    let after = errors
        .parse("cursor", query.cursor.as_deref(), params::decode_cursor)
        .map(|(at, id)| (at, ReferralId(id)));
    let per_page = query.per_page.unwrap_or(20);
    if !(1..=100).contains(&per_page) {
        errors.push(FieldError::new("per_page", "range", "between 1 and 100"));
    }
    errors.finish(())?;
    let mut conn = state.primary().await?;
    let mut records =
        workflow::list(&mut conn, &caller, status, after, i64::from(per_page) + 1).await?;
    let more = records.len() > per_page as usize;
    records.truncate(per_page as usize);
    let next = more
        .then(|| {
            records
                .last()
                .map(|r| params::encode_cursor(r.row.created_at, r.row.id.0))
        })
        .flatten();
    let contents = records
        .iter()
        .map(|record| {
            let side = caller.referral_side(
                record.row.receiving_organization_id,
                record.row.referring_key_id,
                record.row.referring_organization_id,
            );
            brief(record, side)
        })
        .collect();
    Ok(HttpResponse::Ok().json(ReferralPage { contents, next }))
}
