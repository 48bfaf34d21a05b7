//! An organisation's webhook delivery log: what was announced to it, how
//! each attempt went, and replays. For its own agency's keys and admins;
//! another agency finds nothing. A delivery's `id` is the `webhook-id` its
//! receiver got (the same on every attempt and replay): receivers
//! de-duplicate by it, since delivery is at-least-once.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::extract::ApiQuery;
use super::params::{self, FieldErrors};
use super::problem::{ApiError, FieldError, responses};
use crate::db::models::webhooks::{AttemptRow, DeliveryRow, DeliveryState};
use crate::domain::access::Role;
use crate::domain::ids::{DeliveryId, OrganizationId, ReferralId};
use crate::workflows::webhooks as workflow;

/// One delivery: an announcement to the organisation and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// The `webhook-id` the receiver gets, the same on every attempt and
    /// replay.
    pub id: DeliveryId,
    pub referral_id: ReferralId,
    /// `referral.created` or `referral.status_changed`.
    #[schema(example = "referral.created")]
    pub event: String,
    pub state: DeliveryState,
    /// Attempts since it was queued or last replayed.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    /// When it is next tried (while `pending`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When a receiver last answered 2xx (while `delivered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One attempt: the receiver's status, or why there was none.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status (2xx delivers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    /// With no answer: `timeout`, `connect`, `tls`, `other`, or
    /// `no_webhook_url` (the organisation removed its URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// One delivery, the exact body sent and every attempt, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The body sent, as sent (what the signature covers): the Standard
    /// Webhooks envelope with the referral's id, status and time only.
    pub payload: String,
    pub attempt_log: Vec<AttemptView>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub contents: Vec<DeliveryView>,
    /// The `cursor` of the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

fn view(row: &DeliveryRow) -> Result<DeliveryView, ApiError> {
    let state = row.state()?;
    Ok(DeliveryView {
        id: row.id,
        referral_id: row.referral_id,
        event: row.event.clone(),
        state,
        attempts: row.attempts,
        created_at: row.created_at,
        next_attempt_at: (state == DeliveryState::Pending).then_some(row.next_attempt_at),
        delivered_at: row.delivered_at,
    })
}

fn detail(row: &DeliveryRow, attempts: &[AttemptRow]) -> Result<DeliveryDetail, ApiError> {
    Ok(DeliveryDetail {
        delivery: view(row)?,
        payload: row.payload.clone(),
        attempt_log: attempts
            .iter()
            .map(|attempt| AttemptView {
                at: attempt.at,
                status_code: attempt.status_code,
                error: attempt.error.clone(),
                duration_ms: attempt.duration_ms,
            })
            .collect(),
    })
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// Only deliveries in this state.
    #[param(value_type = Option<DeliveryState>)]
    pub state: Option<String>,
    /// Where the previous page ended (its `next`).
    #[param(max_length = 100)]
    pub cursor: Option<String>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// The webhooks sent (or to be sent) to an organisation, newest first, by
/// cursor: its own agency's keys and admins.
#[utoipa::path(
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id"), DeliveryListQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        responses::NotFound,
        responses::KeyedListProblems,
    )
)]
#[get("/organizations/{id}/webhook-deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: ApiQuery<DeliveryListQuery>,
) -> Result<HttpResponse, ApiError> {
    // Who may read a delivery log is known before its parameters are read.
    caller.require(&[Role::Admin, Role::Agency])?;
    let query = query.0;
    let mut errors = FieldErrors::default();
    let organization = errors.uuid("id", Some(id.as_str())).map(OrganizationId);
    let wanted = errors.parse("state", query.state.as_deref(), DeliveryState::parse);
    let after = errors
        .parse("cursor", query.cursor.as_deref(), params::decode_cursor)
        .map(|(at, id)| (at, DeliveryId(id)));
    let per_page = query.per_page.unwrap_or(20);
    if !(1..=100).contains(&per_page) {
        errors.push(FieldError::new("per_page", "range", "between 1 and 100"));
    }
    let Some(organization) = errors.finish(organization)? else {
        return Err(bad_id("id"));
    };
    caller.require_owner(organization, "organization")?;
    let mut conn = state.primary().await?;
    let page = workflow::list(
        &mut conn,
        &caller,
        organization,
        wanted,
        after,
        per_page as usize,
    )
    .await?;
    let contents = page.rows.iter().map(view).collect::<Result<_, _>>()?;
    let next = page.next.map(|(at, id)| params::encode_cursor(at, id.0));
    Ok(HttpResponse::Ok().json(DeliveryPage { contents, next }))
}

/// A path parameter that is not a UUID (reported by `FieldErrors::uuid`
/// already; this is its fallback).
fn bad_id(field: &str) -> ApiError {
    ApiError::InvalidRequest(vec![FieldError::new(field, "format", "expected a UUID")])
}

fn ids(path: &(String, String)) -> Result<(OrganizationId, DeliveryId), ApiError> {
    let mut errors = FieldErrors::default();
    let organization = errors.uuid("id", Some(&path.0));
    let delivery = errors.uuid("delivery_id", Some(&path.1));
    match errors.finish((organization, delivery))? {
        (Some(organization), Some(delivery)) => {
            Ok((OrganizationId(organization), DeliveryId(delivery)))
        }
        (None, _) => Err(bad_id("id")),
        (_, None) => Err(bad_id("delivery_id")),
    }
}

/// One delivery: the body sent and every attempt, with the receiver's
/// status or why there was none.
#[utoipa::path(
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id"),
        ("delivery_id" = uuid::Uuid, Path, description = "The delivery's id (its `webhook-id`)")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The delivery", body = DeliveryDetail),
        responses::KeyedReadProblems,
    )
)]
#[get("/organizations/{id}/webhook-deliveries/{delivery_id}")]
pub async fn get_delivery(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (organization, id) = ids(&path)?;
    caller.require_owner(organization, "organization")?;
    let mut conn = state.primary().await?;
    let (row, attempts) = workflow::read(&mut conn, &caller, organization, id).await?;
    Ok(HttpResponse::Ok().json(detail(&row, &attempts)?))
}

/// Send a delivery again now, whatever its state, under the same
/// `webhook-id` (so a receiver that had it can tell), its retries counted
/// afresh.
#[utoipa::path(
    tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id"),
        ("delivery_id" = uuid::Uuid, Path, description = "The delivery's id (its `webhook-id`)")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued to be sent again at once", body = DeliveryDetail),
        responses::KeyedReadProblems,
    )
)]
#[post("/organizations/{id}/webhook-deliveries/{delivery_id}/replay")]
pub async fn replay_delivery(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (organization, id) = ids(&path)?;
    caller.require_owner(organization, "organization")?;
    let mut conn = state.primary().await?;
    let (row, attempts) = workflow::replay(&mut conn, &caller, organization, id).await?;
    Ok(HttpResponse::Accepted().json(detail(&row, &attempts)?))
}
