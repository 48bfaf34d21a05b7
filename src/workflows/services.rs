//! Services: create, replace, merge-patch, archive and restore, capacity,
//! verification, and their history.

use chrono::{NaiveDate, Utc};
use diesel_async::AsyncConnection;

use super::listings::{Listing, lock, not_found};
use super::{Precondition, WorkflowError, audit_value, require_writer};
use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::services::{self, ServiceRecord};
use crate::db::models::writes::{self, Action, AuditRow, ServiceWrite};
use crate::domain::access::{Actor, Role};
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::listing::{CapacityDocument, ServiceDocument, verification_date};
use crate::domain::page::PageRequest;
use crate::domain::service::ServiceStatus;

/// Services, for the shared write sequence of [`super::listings`].
pub struct Services;

impl Listing for Services {
    type Id = ServiceId;
    type Document = ServiceDocument;
    type Stored = ServiceRecord;
    const KIND: &'static str = "service";
    const STAYS: &'static str = "a service stays with its organisation; create a new one instead";

    fn new_id() -> ServiceId {
        ServiceId(uuid::Uuid::new_v4())
    }

    fn uuid(id: ServiceId) -> uuid::Uuid {
        id.0
    }

    fn organization(document: &mut ServiceDocument) -> &mut Option<OrganizationId> {
        &mut document.organization_id
    }

    async fn lock(conn: &mut DbConn, id: ServiceId) -> Result<Option<OrganizationId>, DbError> {
        writes::lock_service(conn, id).await
    }

    async fn load(
        conn: &mut DbConn,
        id: ServiceId,
    ) -> Result<(ServiceRecord, ServiceDocument), WorkflowError> {
        let record = stored(conn, id).await?;
        let links = writes::linked_locations(conn, &[id]).await?.remove(&id);
        let document = writes::service_document(&record, links.unwrap_or_default());
        Ok((record, document))
    }

    async fn write(
        conn: &mut DbConn,
        id: ServiceId,
        organization_id: OrganizationId,
        document: ServiceDocument,
    ) -> Result<serde_json::Value, WorkflowError> {
        let validated = document.validate().map_err(WorkflowError::Invalid)?;
        let write = ServiceWrite {
            id,
            organization_id,
            document: &validated,
            assured_date: None,
        };
        writes::write_services(conn, &[write]).await?;
        writes::refresh(conn, &[id]).await?;
        audit_value(validated.get())
    }

    async fn set_archived(conn: &mut DbConn, id: ServiceId, archived: bool) -> Result<(), DbError> {
        let status = if archived {
            ServiceStatus::Inactive
        } else {
            ServiceStatus::Active
        };
        writes::set_service_status(conn, id, status).await
    }

    fn archive_audit(
        _: bool,
        before: &ServiceDocument,
        after: &ServiceDocument,
    ) -> Result<(serde_json::Value, serde_json::Value), WorkflowError> {
        Ok((audit_value(before)?, audit_value(after)?))
    }
}

/// Sets a service's capacity (a shelter's free beds) and when it was
/// updated.
pub async fn set_capacity(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    precondition: &impl Precondition<ServiceRecord>,
    capacity: CapacityDocument,
) -> Result<ServiceRecord, WorkflowError> {
    require_writer(actor)?;
    let capacity = capacity.validate().map_err(WorkflowError::Invalid)?;
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        let (_, before) = lock::<Services>(conn, actor, id, precondition).await?;
        writes::set_capacity(conn, id, &capacity).await?;
        let (record, after) = Services::load(conn, id).await?;
        let (before, after) = (audit_value(&before)?, audit_value(&after)?);
        writes::audit_one(
            conn,
            actor.key_id(),
            Action::Capacity,
            "service",
            id.0,
            Some(before),
            Some(after),
        )
        .await?;
        Ok(record)
    })
    .await
}

/// Records that a listing was verified on `date` (admins only); `None`
/// clears it.
pub async fn verify(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    precondition: &impl Precondition<ServiceRecord>,
    date: Option<NaiveDate>,
) -> Result<ServiceRecord, WorkflowError> {
    actor.require(&[Role::Admin])?;
    if let Some(date) = date {
        verification_date(date, Utc::now().date_naive())
            .map_err(|invalid| WorkflowError::field("assured_date", invalid))?;
    }
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        lock::<Services>(conn, actor, id, precondition).await?;
        let before = stored(conn, id).await?.row.assured_date;
        writes::set_assured_date(conn, id, date).await?;
        writes::audit_one(
            conn,
            actor.key_id(),
            Action::Verify,
            "service",
            id.0,
            Some(serde_json::json!({"assured_date": before})),
            Some(serde_json::json!({"assured_date": date})),
        )
        .await?;
        stored(conn, id).await
    })
    .await
}

/// A service's changes, oldest first (its owner and admins), and how many
/// there are.
pub async fn history(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    page: PageRequest,
) -> Result<(Vec<AuditRow>, i64), WorkflowError> {
    require_writer(actor)?;
    let organization = services::organization_of(conn, id)
        .await?
        .ok_or_else(not_found::<Services>)?;
    actor.require_owner(organization, "service")?;
    Ok(writes::history(conn, "service", id.0, page).await?)
}

/// A stored service this actor may see.
pub async fn visible(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
) -> Result<ServiceRecord, WorkflowError> {
    services::get(conn, id)
        .await?
        .filter(|record| {
            actor
                .visibility()
                .allows(record.row.organization_id, record.status)
        })
        .ok_or_else(not_found::<Services>)
}

async fn stored(conn: &mut DbConn, id: ServiceId) -> Result<ServiceRecord, WorkflowError> {
    services::get(conn, id)
        .await?
        .ok_or_else(not_found::<Services>)
}
