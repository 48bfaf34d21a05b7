//! Referrals: made by caseworkers, answered by the receiving organisation,
//! expired by the server; the organisations' referral endpoints; the
//! indicators counted from them. Each change runs in one transaction with
//! its status event and its webhook rows (the outbox), so that an
//! announcement is sent exactly when the change is committed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use super::{Precondition, WorkflowError};
use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::referrals::{self, EndpointRow, EventRow, ReferralRecord, ReferralRow};
use crate::db::models::webhooks::{self, WebhookEvent};
use crate::db::models::writes::{self, Action};
use crate::domain::Invalid;
use crate::domain::access::{Actor, Refusal, Role};
use crate::domain::category::Category;
use crate::domain::ids::{LocationId, OrganizationId, ReferralId, ServiceId};
use crate::domain::indicators::{self, Cube, Fact};
use crate::domain::province::ProvinceCode;
use crate::domain::referral::{
    self, ReferralReason, ReferralStatus, Side, Transition, TransitionError, check_webhook_url,
};
use crate::domain::service::ServiceStatus;

/// The Standard Webhooks form of a signing secret.
const SECRET_PREFIX: &str = "whsec_";

/// How an organisation receives referrals, as set.
pub struct EndpointSettings {
    /// The X25519 public key hand-offs are sealed to.
    pub public_key: [u8; 32],
    pub webhook_url: Option<String>,
    /// Make a new signing secret even if the URL is kept.
    pub rotate_secret: bool,
}

/// An endpoint as stored, and the signing secret when one was just made
/// (shown this once).
pub struct EndpointState {
    pub row: EndpointRow,
    pub new_secret: Option<String>,
}

fn no_organization() -> WorkflowError {
    Refusal::NotFound("organization").into()
}

/// An organisation's endpoint: its key for caseworkers and admins (to seal
/// to), everything but the secret for its own agency.
pub async fn read_endpoint(
    conn: &mut DbConn,
    actor: &Actor,
    organization: OrganizationId,
) -> Result<EndpointRow, WorkflowError> {
    actor.require(&[Role::Admin, Role::Agency, Role::Caseworker])?;
    if actor.role() == Some(Role::Agency) && !actor.owns(organization) {
        return Err(no_organization());
    }
    referrals::endpoint(conn, organization)
        .await?
        .ok_or(WorkflowError::Refused(Refusal::NotFound(
            "referral endpoint for an organisation",
        )))
}

/// Sets where and how an organisation receives referrals (its agency or
/// an admin), audited; a new webhook URL gets a new secret.
pub async fn set_endpoint(
    conn: &mut DbConn,
    actor: &Actor,
    organization: OrganizationId,
    settings: EndpointSettings,
) -> Result<EndpointState, WorkflowError> {
    actor.require_owner(organization, "organization")?;
    let url = settings
        .webhook_url
        .as_deref()
        .map(check_webhook_url)
        .transpose()
        .map_err(|invalid| WorkflowError::field("webhook_url", invalid))?
        .map(String::from);
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        if !crate::db::models::organizations::lock(conn, organization).await? {
            return Err(no_organization());
        }
        let before = referrals::endpoint(conn, organization).await?;
        let kept_secret = before
            .as_ref()
            .filter(|old| old.webhook_url == url && !settings.rotate_secret)
            .and_then(|old| old.webhook_secret.clone());
        let (secret, new_secret) = match (&url, kept_secret) {
            (None, _) => (None, None),
            (Some(_), Some(kept)) => (Some(kept), None),
            (Some(_), None) => {
                let bytes: [u8; 24] = rand::random();
                let shown = format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes));
                (Some(bytes.to_vec()), Some(shown))
            }
        };
        let row = referrals::set_endpoint(
            conn,
            organization,
            &settings.public_key,
            url.as_deref(),
            secret.as_deref(),
        )
        .await?;
        writes::audit_one(
            conn,
            actor.key_id(),
            if before.is_some() {
                Action::Update
            } else {
                Action::Create
            },
            "referral_endpoint",
            organization.0,
            before.as_ref().map(endpoint_audit),
            Some(endpoint_audit(&row)),
        )
        .await?;
        Ok(EndpointState { row, new_secret })
    })
    .await
}

/// What the audit trail keeps of an endpoint: never the secret.
fn endpoint_audit(row: &EndpointRow) -> serde_json::Value {
    serde_json::json!({
        "public_key": STANDARD.encode(&row.public_key),
        "webhook_url": row.webhook_url,
    })
}

/// A referral asked for.
pub struct NewReferral {
    pub service_id: ServiceId,
    pub need: Category,
    pub location_id: Option<LocationId>,
    /// The person agreed to the hand-off.
    pub consent: bool,
    /// The contact details and note, sealed to the receiving
    /// organisation's key (checked for size only: the server cannot read
    /// it).
    pub handoff: Option<Vec<u8>>,
    pub expires_in_days: Option<i64>,
}

/// A referral as one reader sees it.
pub struct ReferralState {
    pub record: ReferralRecord,
    pub side: Side,
    pub events: Vec<EventRow>,
}

fn no_referral() -> WorkflowError {
    Refusal::NotFound("referral").into()
}

fn invalid(field: &str, rule: &'static str, message: &str) -> WorkflowError {
    WorkflowError::field(field, Invalid::new(rule, message))
}

/// Makes a referral (caseworkers and admins) to a service that is active,
/// accepts referrals, offers the need and whose organisation has a key to
/// seal the hand-off to.
pub async fn create(
    conn: &mut DbConn,
    actor: &Actor,
    request: NewReferral,
) -> Result<ReferralState, WorkflowError> {
    actor.require(&[Role::Admin, Role::Caseworker])?;
    let now = Utc::now();
    let expires_at = referral::expires_at(now, request.expires_in_days)
        .map_err(|invalid| WorkflowError::field("expires_in_days", invalid))?;
    if let Some(handoff) = &request.handoff {
        referral::check_handoff(handoff)
            .map_err(|invalid| WorkflowError::field("handoff", invalid))?;
        if !request.consent {
            return Err(invalid(
                "consent",
                "consent",
                "a person's contact details are handed on only with their consent",
            ));
        }
    }
    let target = referrals::target(conn, request.service_id, request.need, request.location_id)
        .await?
        .ok_or_else(|| invalid("service_id", "exists", "no service has this id"))?;
    if target.status != ServiceStatus::Active.as_str() {
        return Err(invalid(
            "service_id",
            "active",
            "this service is not active",
        ));
    }
    if !target.accepting_referrals {
        return Err(invalid(
            "service_id",
            "accepting_referrals",
            "this service does not accept referrals at the moment",
        ));
    }
    if !target.offers_need {
        return Err(invalid(
            "need",
            "offered",
            "this service does not offer this need",
        ));
    }
    if !target.location_matches {
        return Err(invalid(
            "location_id",
            "offered_at",
            "this service is not offered at this location",
        ));
    }
    if referrals::endpoint(conn, target.organization_id)
        .await?
        .is_none()
    {
        return Err(invalid(
            "service_id",
            "receives_referrals",
            "this service's organisation has registered no key for referrals, so a hand-off \
             could not be sealed to it; nothing was sent (ask it to register one)",
        ));
    }
    let row = ReferralRow {
        id: ReferralId(uuid::Uuid::new_v4()),
        service_id: request.service_id,
        need: request.need.as_str().to_owned(),
        location_id: target.location_id,
        receiving_organization_id: target.organization_id,
        referring_key_id: actor.key_id(),
        referring_organization_id: actor.organization(),
        province_code: target.province_code,
        ward_code: target.ward_code,
        consent: request.consent,
        status: ReferralStatus::Sent.as_str().to_owned(),
        reason: None,
        created_at: now,
        expires_at,
        accepted_at: None,
        in_service_at: None,
        closed_at: None,
        updated_at: now,
        version: 1,
    };
    let id = row.id;
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        referrals::insert(conn, &row, request.handoff.as_deref()).await?;
        referrals::record_event(
            conn,
            id,
            None,
            ReferralStatus::Sent,
            None,
            actor.key_id(),
            now,
        )
        .await?;
        webhooks::enqueue(
            conn,
            row.receiving_organization_id,
            id,
            WebhookEvent::Created,
            ReferralStatus::Sent,
            now,
        )
        .await?;
        read(conn, actor, id).await
    })
    .await
}

/// A referral as `actor` sees it: the hand-off only for the receiving
/// organisation, and only while `sent`.
pub async fn read(
    conn: &mut DbConn,
    actor: &Actor,
    id: ReferralId,
) -> Result<ReferralState, WorkflowError> {
    actor.require(&[Role::Admin, Role::Agency, Role::Caseworker])?;
    let mut record = referrals::get(conn, id, false)
        .await?
        .ok_or_else(no_referral)?;
    let side = side_of(actor, &record).ok_or_else(no_referral)?;
    if side == Side::Receiver && referral::keeps_handoff(record.status) {
        record.handoff = referrals::handoff(conn, id).await?;
    }
    let events = referrals::events(conn, id).await?;
    Ok(ReferralState {
        record,
        side,
        events,
    })
}

fn side_of(actor: &Actor, record: &ReferralRecord) -> Option<Side> {
    actor.referral_side(
        record.row.receiving_organization_id,
        record.row.referring_key_id,
        record.row.referring_organization_id,
    )
}

/// Moves a referral to a new status, if `actor`'s side may and
/// `precondition` holds; leaving `sent` deletes the hand-off.
pub async fn transition(
    conn: &mut DbConn,
    actor: &Actor,
    id: ReferralId,
    precondition: &impl Precondition<ReferralState>,
    transition: Transition,
) -> Result<ReferralState, WorkflowError> {
    actor.require(&[Role::Admin, Role::Agency, Role::Caseworker])?;
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        let locked = referrals::get(conn, id, true)
            .await?
            .ok_or_else(no_referral)?;
        let side = side_of(actor, &locked).ok_or_else(no_referral)?;
        let current = read(conn, actor, id).await?;
        precondition.check(&current)?;
        let from = locked.status;
        // A passed deadline wins, even before the server has expired it.
        if from == ReferralStatus::Sent && locked.row.expires_at <= Utc::now() {
            return Err(WorkflowError::Conflict(
                "this referral's deadline has passed: it is `expired` and allows no change".into(),
            ));
        }
        referral::check(from, side, transition).map_err(|error| match error {
            TransitionError::NotAllowed { from, allowed } => {
                WorkflowError::Conflict(if allowed.is_empty() {
                    format!(
                        "a referral in `{}` allows no change (by you)",
                        from.as_str()
                    )
                } else {
                    format!(
                        "a referral in `{}` may become: {}",
                        from.as_str(),
                        allowed
                            .iter()
                            .map(|status| format!("`{}`", status.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            }
            TransitionError::NotYours { allowed_sides } => Refusal::Forbidden(allowed_sides).into(),
            TransitionError::Reason(invalid) => WorkflowError::field("reason", invalid),
        })?;
        apply(conn, &locked, transition, actor.key_id()).await?;
        read(conn, actor, id).await
    })
    .await
}

fn expiry() -> Transition {
    Transition {
        to: ReferralStatus::Expired,
        reason: None,
    }
}

/// Writes a checked change, its event and its webhooks (to the receiving
/// organisation and, if another, the referring one).
async fn apply(
    conn: &mut DbConn,
    record: &ReferralRecord,
    transition: Transition,
    key: Option<crate::domain::ids::KeyId>,
) -> Result<(), WorkflowError> {
    let now = Utc::now();
    let id = record.row.id;
    referrals::set_status(
        conn,
        record,
        transition.to,
        transition.reason,
        key,
        referral::keeps_handoff(transition.to),
        now,
    )
    .await?;
    let mut told = vec![record.row.receiving_organization_id];
    told.extend(record.row.referring_organization_id);
    told.dedup();
    for organization in told {
        webhooks::enqueue(
            conn,
            organization,
            id,
            WebhookEvent::StatusChanged,
            transition.to,
            now,
        )
        .await?;
    }
    Ok(())
}

/// Expires the referrals whose deadline has passed while `sent`, deleting
/// their hand-offs; how many. The server runs this every few seconds; it
/// is safe to run anywhere at once.
pub async fn expire_due(conn: &mut DbConn) -> Result<usize, WorkflowError> {
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        let due = referrals::due(conn, Utc::now(), 500).await?;
        for record in &due {
            apply(conn, record, expiry(), None).await?;
        }
        Ok(due.len())
    })
    .await
}

/// One page of the referrals `actor` may list, newest first.
pub async fn list(
    conn: &mut DbConn,
    actor: &Actor,
    status: Option<ReferralStatus>,
    after: Option<(DateTime<Utc>, ReferralId)>,
    limit: i64,
) -> Result<Vec<ReferralRecord>, WorkflowError> {
    let party = actor.referral_party()?;
    Ok(referrals::list(conn, party, status, after, limit).await?)
}

/// How many referrals to each of `services` were declined for lack of
/// capacity in the 30 days before `now` (what caseworkers see beside
/// capacity). On a shared connection: the matcher pipelines it with the
/// loading of the same services.
pub async fn recent_no_capacity(
    conn: &AsyncPgConnection,
    services: &[ServiceId],
    now: DateTime<Utc>,
) -> Result<Vec<(ServiceId, i64)>, DbError> {
    referrals::no_capacity_declines(conn, services, now - Duration::days(30)).await
}

/// The indicators' cube, from every referral (so that what a request
/// filters out cannot be recovered by combining requests), and the one
/// province `actor` may read, if it is limited to one (stewards).
pub async fn indicators(
    conn: &mut DbConn,
    actor: &Actor,
) -> Result<(Cube, Option<ProvinceCode>), WorkflowError> {
    let scope = actor.indicator_scope()?;
    let days = |from: DateTime<Utc>, to: Option<DateTime<Utc>>| {
        to.map(|to| (to - from).num_seconds() as f64 / 86_400.0)
    };
    let facts = referrals::facts(conn)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Fact {
                created: row.created_at.date_naive(),
                province: row.province_code,
                ward: row.ward_code,
                need: Category::parse(&row.need).map_err(stored("referrals.need"))?,
                status: ReferralStatus::parse(&row.status).map_err(stored("referrals.status"))?,
                reason: row
                    .reason
                    .as_deref()
                    .map(ReferralReason::parse)
                    .transpose()
                    .map_err(stored("referrals.reason"))?,
                days_to_acceptance: days(row.created_at, row.accepted_at),
                days_to_service: days(row.created_at, row.in_service_at),
            })
        })
        .collect::<Result<Vec<_>, WorkflowError>>()?;
    Ok((indicators::tabulate(&facts), scope))
}

fn stored(column: &'static str) -> impl Fn(Invalid) -> WorkflowError {
    move |source| crate::db::models::DbError::Corrupt { column, source }.into()
}
