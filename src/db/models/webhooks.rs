//! The webhook outbox: a row per announcement, written in the transaction
//! of the change it announces, and its delivery log.

use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{DbError, parse_stored};
use crate::db::DbConn;
use crate::db::schema::{referral_endpoints, webhook_attempts, webhook_deliveries};
use crate::domain::ids::{DeliveryId, OrganizationId, ReferralId};
use crate::domain::referral::ReferralStatus;

/// What a webhook announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A referral was sent to the organisation.
    Created,
    /// A referral to or from the organisation changed status.
    StatusChanged,
}

impl WebhookEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "referral.created",
            Self::StatusChanged => "referral.status_changed",
        }
    }
}

/// The body sent: the Standard Webhooks envelope (`type`, `timestamp`,
/// `data`) carrying only the referral's id, status and the time of the
/// change.
pub fn payload(
    event: WebhookEvent,
    referral: ReferralId,
    status: ReferralStatus,
    at: DateTime<Utc>,
) -> String {
    let at = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    serde_json::json!({
        "type": event.as_str(),
        "timestamp": at,
        "data": {"referral_id": referral, "status": status, "at": at},
    })
    .to_string()
}

/// Queues an announcement for `organization`, if it has a webhook URL.
/// Returns the delivery's id when one was queued.
pub async fn enqueue(
    conn: &mut DbConn,
    organization: OrganizationId,
    referral: ReferralId,
    event: WebhookEvent,
    status: ReferralStatus,
    at: DateTime<Utc>,
) -> Result<Option<DeliveryId>, DbError> {
    let has_url: Option<Option<String>> = referral_endpoints::table
        .find(organization)
        .select(referral_endpoints::webhook_url)
        .first(conn)
        .await
        .optional()?;
    if !matches!(has_url, Some(Some(_))) {
        return Ok(None);
    }
    let id = DeliveryId(uuid::Uuid::new_v4());
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(id),
            webhook_deliveries::organization_id.eq(organization),
            webhook_deliveries::referral_id.eq(referral),
            webhook_deliveries::event.eq(event.as_str()),
            webhook_deliveries::payload.eq(payload(event, referral, status, at)),
        ))
        .execute(conn)
        .await?;
    Ok(Some(id))
}

crate::domain::vocabulary!(
    /// Where a delivery stands: `pending` (queued, or waiting for its next
    /// attempt), `delivered` (the receiver answered 2xx), `failed` (the
    /// attempts ran out, or the organisation removed its webhook URL).
    DeliveryState, "delivery state" {
        Pending,
        Delivered,
        Failed,
    }
);

/// A delivery claimed for one attempt, with where and how to send it (the
/// organisation's endpoint as it is now). Not `Debug`: it holds the
/// signing secret.
#[derive(QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    pub id: DeliveryId,
    #[diesel(sql_type = Text)]
    pub payload: String,
    /// Attempts since it was queued or last replayed, this one included.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// When the claim lapses (the delivery is then due again); it also
    /// names the claim, so that only its holder records the outcome.
    #[diesel(sql_type = Timestamptz)]
    pub lease: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub webhook_url: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub webhook_secret: Option<Vec<u8>>,
}

/// Claims up to `limit` due deliveries for one attempt each, in one
/// statement: each is leased (not due again) for `lease` and its attempts
/// counted. Rows another server is claiming at the same moment are skipped,
/// so that replicas never send the same delivery at once; a claim whose
/// holder dies lapses with its lease, and the delivery is sent again.
pub async fn claim(
    conn: &mut DbConn,
    limit: i64,
    lease: std::time::Duration,
) -> Result<Vec<Claimed>, DbError> {
    Ok(diesel::sql_query(
        "WITH claimed AS (
             UPDATE webhook_deliveries
             SET next_attempt_at = now() + $2 * interval '1 second',
                 attempts = attempts + 1
             WHERE id IN (SELECT id FROM webhook_deliveries
                          WHERE state = 'pending' AND next_attempt_at <= now()
                          ORDER BY next_attempt_at
                          LIMIT $1
                          FOR UPDATE SKIP LOCKED)
             RETURNING id, organization_id, payload, attempts, next_attempt_at)
         SELECT c.id, c.payload, c.attempts, c.next_attempt_at AS lease,
                e.webhook_url, e.webhook_secret
         FROM claimed c
         LEFT JOIN referral_endpoints e ON e.organization_id = c.organization_id",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .bind::<Double, _>(lease.as_secs_f64())
    .load(conn)
    .await?)
}

/// What became of one attempt: the receiver's HTTP status, or the class of
/// failure when there was no answer (`timeout`, `connect`, `tls`,
/// `other`, or `no_webhook_url` when nothing could be sent). Never the
/// response's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub status_code: Option<u16>,
    pub error: Option<&'static str>,
    pub duration: std::time::Duration,
}

/// What a delivery does after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Pending, due again after this long.
    RetryIn(std::time::Duration),
    Failed,
}

/// Records an attempt of a claimed delivery and what follows it, in one
/// transaction. The attempt is always recorded; the delivery changes only
/// if the claim still holds (not replayed, nor lapsed and claimed again
/// meanwhile). Whether it changed.
pub async fn record(
    conn: &mut DbConn,
    claimed: &Claimed,
    attempt: &Attempt,
    next: Next,
) -> Result<bool, DbError> {
    let id = claimed.id;
    let lease = claimed.lease;
    let attempt = attempt.clone();
    let (state, delay) = match next {
        Next::Delivered => (DeliveryState::Delivered, 0.0),
        Next::RetryIn(delay) => (DeliveryState::Pending, delay.as_secs_f64()),
        Next::Failed => (DeliveryState::Failed, 0.0),
    };
    conn.transaction::<_, DbError, _>(async |conn| {
        diesel::insert_into(webhook_attempts::table)
            .values((
                webhook_attempts::delivery_id.eq(id),
                webhook_attempts::status_code.eq(attempt.status_code.map(i32::from)),
                webhook_attempts::error.eq(attempt.error),
                webhook_attempts::duration_ms
                    .eq(i32::try_from(attempt.duration.as_millis()).unwrap_or(i32::MAX)),
            ))
            .execute(conn)
            .await?;
        let changed = diesel::sql_query(
            "UPDATE webhook_deliveries
             SET state = $3,
                 delivered_at = CASE WHEN $3 = 'delivered' THEN clock_timestamp() END,
                 next_attempt_at = CASE WHEN $3 = 'pending'
                     THEN clock_timestamp() + $4 * interval '1 second'
                     ELSE next_attempt_at END
             WHERE id = $1 AND state = 'pending' AND next_attempt_at = $2",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<Timestamptz, _>(lease)
        .bind::<Text, _>(state.as_str())
        .bind::<Double, _>(delay)
        .execute(conn)
        .await?;
        Ok(changed == 1)
    })
    .await
}

/// A delivery as its log shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: DeliveryId,
    pub organization_id: OrganizationId,
    pub referral_id: ReferralId,
    pub event: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl DeliveryRow {
    pub fn state(&self) -> Result<DeliveryState, DbError> {
        parse_stored(
            "webhook_deliveries.state",
            &self.state,
            DeliveryState::parse,
        )
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
pub struct AttemptRow {
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// An organisation's deliveries, newest first, after `after` (the
/// `created_at` and id where the previous page ended), at most `limit`.
pub async fn list(
    conn: &mut DbConn,
    organization: OrganizationId,
    state: Option<DeliveryState>,
    after: Option<(DateTime<Utc>, DeliveryId)>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    let mut query = webhook_deliveries::table
        .filter(webhook_deliveries::organization_id.eq(organization))
        .select(DeliveryRow::as_select())
        .order((
            webhook_deliveries::created_at.desc(),
            webhook_deliveries::id.desc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Some(state) = state {
        query = query.filter(webhook_deliveries::state.eq(state.as_str()));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            webhook_deliveries::created_at
                .lt(at)
                .or(webhook_deliveries::created_at
                    .eq(at)
                    .and(webhook_deliveries::id.lt(id))),
        );
    }
    Ok(query.load(conn).await?)
}

/// One delivery of an organisation, and its attempts, oldest first.
pub async fn get(
    conn: &mut DbConn,
    organization: OrganizationId,
    id: DeliveryId,
) -> Result<Option<(DeliveryRow, Vec<AttemptRow>)>, DbError> {
    let Some(row) = webhook_deliveries::table
        .filter(webhook_deliveries::id.eq(id))
        .filter(webhook_deliveries::organization_id.eq(organization))
        .select(DeliveryRow::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let attempts = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq(id))
        .order(webhook_attempts::id)
        .select(AttemptRow::as_select())
        .load(conn)
        .await?;
    Ok(Some((row, attempts)))
}

/// Sends a delivery of an organisation again: pending and due now, under
/// the same id, its retries counted afresh (its attempts so far stay in
/// the log). A claim in flight no longer holds. Whether it exists.
pub async fn replay(
    conn: &mut DbConn,
    organization: OrganizationId,
    id: DeliveryId,
) -> Result<bool, DbError> {
    let changed = diesel::sql_query(
        "UPDATE webhook_deliveries
         SET state = 'pending', next_attempt_at = clock_timestamp(), attempts = 0,
             delivered_at = NULL
         WHERE id = $1 AND organization_id = $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(organization)
    .execute(conn)
    .await?;
    Ok(changed == 1)
}
