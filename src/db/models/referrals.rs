//! Referrals, their sealed hand-offs and status events, and the
//! organisations' referral endpoints (public key, webhook URL).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{DbError, parse_stored};
use crate::db::DbConn;
use crate::db::schema::{referral_endpoints, referral_events, referral_handoffs, referrals};
use crate::domain::access::ReferralParty as Party;
use crate::domain::category::Category;
use crate::domain::ids::{KeyId, LocationId, OrganizationId, ReferralId, ServiceId};
use crate::domain::referral::{ReferralReason, ReferralStatus};

/// How an organisation receives referrals.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = referral_endpoints)]
pub struct EndpointRow {
    pub organization_id: OrganizationId,
    pub public_key: Vec<u8>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<Vec<u8>>,
    pub updated_at: DateTime<Utc>,
}

pub async fn endpoint(
    conn: &mut DbConn,
    organization: OrganizationId,
) -> Result<Option<EndpointRow>, DbError> {
    Ok(referral_endpoints::table
        .find(organization)
        .select(EndpointRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Sets an organisation's endpoint; a `None` secret keeps the stored one
/// when the URL is kept, and clears it with the URL.
pub async fn set_endpoint(
    conn: &mut DbConn,
    organization: OrganizationId,
    public_key: &[u8],
    webhook_url: Option<&str>,
    webhook_secret: Option<&[u8]>,
) -> Result<EndpointRow, DbError> {
    Ok(diesel::insert_into(referral_endpoints::table)
        .values((
            referral_endpoints::organization_id.eq(organization),
            referral_endpoints::public_key.eq(public_key),
            referral_endpoints::webhook_url.eq(webhook_url),
            referral_endpoints::webhook_secret.eq(webhook_secret),
        ))
        .on_conflict(referral_endpoints::organization_id)
        .do_update()
        .set((
            referral_endpoints::public_key.eq(public_key),
            referral_endpoints::webhook_url.eq(webhook_url),
            referral_endpoints::webhook_secret.eq(webhook_secret),
            referral_endpoints::updated_at.eq(diesel::dsl::now),
        ))
        .returning(EndpointRow::as_returning())
        .get_result(conn)
        .await?)
}

/// What a new referral needs to know of its service (and of the location
/// named, if one was).
#[derive(Debug, QueryableByName)]
pub struct Target {
    #[diesel(sql_type = SqlUuid)]
    pub organization_id: OrganizationId,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Bool)]
    pub accepting_referrals: bool,
    #[diesel(sql_type = Bool)]
    pub offers_need: bool,
    /// Whether the named location is one where the service is offered
    /// (true when none was named).
    #[diesel(sql_type = Bool)]
    pub location_matches: bool,
    /// The location counted by the indicators: the named one, else the
    /// service's first.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub location_id: Option<LocationId>,
    #[diesel(sql_type = Nullable<Text>)]
    pub province_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub ward_code: Option<String>,
}

/// The service a referral is for, if it exists.
pub async fn target(
    conn: &mut DbConn,
    service: ServiceId,
    need: Category,
    location: Option<LocationId>,
) -> Result<Option<Target>, DbError> {
    Ok(diesel::sql_query(
        "SELECT s.organization_id, s.status, s.accepting_referrals,
                EXISTS (SELECT 1 FROM service_categories c
                        WHERE c.service_id = s.id AND c.category_code = $2) AS offers_need,
                ($3::uuid IS NULL OR l.id IS NOT NULL) AS location_matches,
                l.id AS location_id,
                coalesce(l.province_code, (
                    SELECT CASE WHEN count(DISTINCT a.province_code) = 1
                                THEN min(a.province_code) END
                    FROM service_areas a WHERE a.service_id = s.id)) AS province_code,
                l.ward_code
         FROM services s
         LEFT JOIN LATERAL (
             SELECT l.id, l.province_code, l.ward_code
             FROM service_at_location sal
             JOIN locations l ON l.id = sal.location_id
             WHERE sal.service_id = s.id AND l.archived_at IS NULL
               AND ($3::uuid IS NULL OR l.id = $3)
             ORDER BY l.id LIMIT 1) l ON true
         WHERE s.id = $1",
    )
    .bind::<SqlUuid, _>(service)
    .bind::<Text, _>(need.as_str())
    .bind::<Nullable<SqlUuid>, _>(location)
    .get_result(conn)
    .await
    .optional()?)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = referrals)]
pub struct ReferralRow {
    pub id: ReferralId,
    pub service_id: ServiceId,
    pub need: String,
    pub location_id: Option<LocationId>,
    pub receiving_organization_id: OrganizationId,
    pub referring_key_id: Option<KeyId>,
    pub referring_organization_id: Option<OrganizationId>,
    pub province_code: Option<String>,
    pub ward_code: Option<String>,
    pub consent: bool,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub in_service_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

/// A referral with its codes parsed.
#[derive(Debug, Clone)]
pub struct ReferralRecord {
    pub row: ReferralRow,
    pub need: Category,
    pub status: ReferralStatus,
    pub reason: Option<ReferralReason>,
    /// The sealed hand-off, while there is one and the reader may see it.
    pub handoff: Option<Vec<u8>>,
}

impl TryFrom<ReferralRow> for ReferralRecord {
    type Error = DbError;

    fn try_from(row: ReferralRow) -> Result<Self, DbError> {
        Ok(Self {
            need: parse_stored("referrals.need", &row.need, Category::parse)?,
            status: parse_stored("referrals.status", &row.status, ReferralStatus::parse)?,
            reason: row
                .reason
                .as_deref()
                .map(|reason| parse_stored("referrals.reason", reason, ReferralReason::parse))
                .transpose()?,
            handoff: None,
            row,
        })
    }
}

pub async fn insert(
    conn: &mut DbConn,
    row: &ReferralRow,
    handoff: Option<&[u8]>,
) -> Result<(), DbError> {
    diesel::insert_into(referrals::table)
        .values(row)
        .execute(conn)
        .await?;
    if let Some(ciphertext) = handoff {
        diesel::insert_into(referral_handoffs::table)
            .values((
                referral_handoffs::referral_id.eq(row.id),
                referral_handoffs::ciphertext.eq(ciphertext),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// A referral, locked for a change when `lock`.
pub async fn get(
    conn: &mut DbConn,
    id: ReferralId,
    lock: bool,
) -> Result<Option<ReferralRecord>, DbError> {
    let query = referrals::table.find(id).select(ReferralRow::as_select());
    let row = if lock {
        query.for_update().first(conn).await.optional()?
    } else {
        query.first(conn).await.optional()?
    };
    row.map(ReferralRecord::try_from).transpose()
}

pub async fn handoff(conn: &mut DbConn, id: ReferralId) -> Result<Option<Vec<u8>>, DbError> {
    Ok(referral_handoffs::table
        .find(id)
        .select(referral_handoffs::ciphertext)
        .first(conn)
        .await
        .optional()?)
}

/// Records a change of status of `record` in one statement (the row's
/// times follow it), deletes the hand-off unless `keep_handoff`, and
/// appends the event.
pub async fn set_status(
    conn: &mut DbConn,
    record: &ReferralRecord,
    to: ReferralStatus,
    reason: Option<ReferralReason>,
    key: Option<KeyId>,
    keep_handoff: bool,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let row = &record.row;
    let stamp = |status: ReferralStatus, current: Option<DateTime<Utc>>| {
        if to == status { Some(at) } else { current }
    };
    let closed_at = if crate::domain::referral::is_final(to) {
        Some(at)
    } else {
        row.closed_at
    };
    diesel::update(referrals::table.find(row.id))
        .set((
            referrals::status.eq(to.as_str()),
            referrals::reason.eq(reason.map(ReferralReason::as_str)),
            referrals::accepted_at.eq(stamp(ReferralStatus::Accepted, row.accepted_at)),
            referrals::in_service_at.eq(stamp(ReferralStatus::InService, row.in_service_at)),
            referrals::closed_at.eq(closed_at),
            referrals::updated_at.eq(at),
            referrals::version.eq(referrals::version + 1),
        ))
        .execute(conn)
        .await?;
    if !keep_handoff {
        diesel::delete(referral_handoffs::table.find(row.id))
            .execute(conn)
            .await?;
    }
    record_event(conn, row.id, Some(record.status), to, reason, key, at).await
}

pub async fn record_event(
    conn: &mut DbConn,
    id: ReferralId,
    from: Option<ReferralStatus>,
    to: ReferralStatus,
    reason: Option<ReferralReason>,
    key: Option<KeyId>,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(referral_events::table)
        .values((
            referral_events::referral_id.eq(id),
            referral_events::at.eq(at),
            referral_events::key_id.eq(key),
            referral_events::from_status.eq(from.map(ReferralStatus::as_str)),
            referral_events::to_status.eq(to.as_str()),
            referral_events::reason.eq(reason.map(ReferralReason::as_str)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// One status change of a referral.
#[derive(Debug, Clone, Queryable)]
pub struct EventRow {
    pub at: DateTime<Utc>,
    pub key_id: Option<KeyId>,
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
}

pub async fn events(conn: &mut DbConn, id: ReferralId) -> Result<Vec<EventRow>, DbError> {
    Ok(referral_events::table
        .filter(referral_events::referral_id.eq(id))
        .order(referral_events::id)
        .select((
            referral_events::at,
            referral_events::key_id,
            referral_events::from_status,
            referral_events::to_status,
            referral_events::reason,
        ))
        .load(conn)
        .await?)
}

/// A page of referrals, newest first, after the keyset `after`
/// (created_at, id); one more than `limit` tells whether there is more.
pub async fn list(
    conn: &mut DbConn,
    party: Party,
    status: Option<ReferralStatus>,
    after: Option<(DateTime<Utc>, ReferralId)>,
    limit: i64,
) -> Result<Vec<ReferralRecord>, DbError> {
    let mut query = referrals::table
        .select(ReferralRow::as_select())
        .order((referrals::created_at.desc(), referrals::id.desc()))
        .limit(limit)
        .into_boxed();
    query = match party {
        Party::Receiver(org) => query.filter(referrals::receiving_organization_id.eq(org)),
        Party::ReferringOrganization(org) => {
            query.filter(referrals::referring_organization_id.eq(org))
        }
        Party::ReferringKey(key) => query.filter(referrals::referring_key_id.eq(key)),
        Party::Anyone => query,
    };
    if let Some(status) = status {
        query = query.filter(referrals::status.eq(status.as_str()));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            referrals::created_at
                .lt(at)
                .or(referrals::created_at.eq(at).and(referrals::id.lt(id))),
        );
    }
    query
        .load(conn)
        .await?
        .into_iter()
        .map(ReferralRecord::try_from)
        .collect()
}

/// Referrals still `sent` whose deadline has passed, locked, at most
/// `limit`.
pub async fn due(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ReferralRecord>, DbError> {
    referrals::table
        .filter(referrals::status.eq(ReferralStatus::Sent.as_str()))
        .filter(referrals::expires_at.le(now))
        .order(referrals::expires_at)
        .limit(limit)
        .select(ReferralRow::as_select())
        .for_update()
        .skip_locked()
        .load(conn)
        .await?
        .into_iter()
        .map(ReferralRecord::try_from)
        .collect()
}

/// How many referrals to each service were declined for lack of capacity
/// since `since`.
pub async fn no_capacity_declines(
    mut conn: &AsyncPgConnection,
    services: &[ServiceId],
    since: DateTime<Utc>,
) -> Result<Vec<(ServiceId, i64)>, DbError> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    Ok(referrals::table
        .filter(referrals::service_id.eq_any(services))
        .filter(referrals::reason.eq(ReferralReason::NoCapacity.as_str()))
        .filter(referrals::closed_at.ge(since))
        .group_by(referrals::service_id)
        .select((referrals::service_id, diesel::dsl::count_star()))
        .load(&mut conn)
        .await?)
}

/// The facts the indicators are counted from: one per referral, with no
/// more than period, place, need, status and durations.
#[derive(Debug, Queryable)]
pub struct FactRow {
    pub created_at: DateTime<Utc>,
    pub province_code: Option<String>,
    pub ward_code: Option<String>,
    pub need: String,
    pub status: String,
    pub reason: Option<String>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub in_service_at: Option<DateTime<Utc>>,
}

pub async fn facts(conn: &mut DbConn) -> Result<Vec<FactRow>, DbError> {
    Ok(referrals::table
        .select((
            referrals::created_at,
            referrals::province_code,
            referrals::ward_code,
            referrals::need,
            referrals::status,
            referrals::reason,
            referrals::accepted_at,
            referrals::in_service_at,
        ))
        .load(conn)
        .await?)
}
