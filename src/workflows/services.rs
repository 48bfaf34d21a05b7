//! Services: create, replace, merge-patch, archive and restore, capacity,
//! verification, and their history.

use chrono::{NaiveDate, Utc};
use diesel_async::AsyncConnection;

use super::{Precondition, WorkflowError, audit_value, require_writer};
use crate::db::DbConn;
use crate::db::models::organizations;
use crate::db::models::services::{self, ServiceRecord};
use crate::db::models::writes::{self, Action, AuditRow, ServiceWrite};
use crate::domain::Invalid;
use crate::domain::access::{Actor, Refusal, Role};
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::listing::{CapacityDocument, ServiceDocument, verification_date};
use crate::domain::page::PageRequest;
use crate::domain::service::ServiceStatus;
use crate::exchange::json::{self, JsonError};

/// A change to a stored document: a whole new one, or a JSON Merge Patch
/// (RFC 7396) of the stored one.
pub enum Change<D> {
    Replace(D),
    MergePatch(serde_json::Value),
}

impl<D: serde::Serialize + serde::de::DeserializeOwned> Change<D> {
    /// The document this change makes of `before`.
    pub(super) fn apply(self, before: &D) -> Result<D, WorkflowError> {
        match self {
            Self::Replace(document) => Ok(document),
            Self::MergePatch(patch) => {
                json::merge_patch(before, &patch).map_err(|error| match error {
                    JsonError::Invalid(problems) => WorkflowError::Invalid(problems),
                    JsonError::Malformed(reason) => {
                        WorkflowError::Internal(anyhow::anyhow!(reason))
                    }
                })
            }
        }
    }
}

fn not_found() -> WorkflowError {
    Refusal::NotFound("service").into()
}

/// Creates a service (an agency: for its own organisation; an admin: for
/// the organisation named); the stored service.
pub async fn create(
    conn: &mut DbConn,
    actor: &Actor,
    document: ServiceDocument,
) -> Result<ServiceRecord, WorkflowError> {
    require_writer(actor)?;
    let organization_id = actor
        .organization_for(document.organization_id)
        .map_err(|invalid| WorkflowError::field("organization_id", invalid))?;
    let id = ServiceId(uuid::Uuid::new_v4());
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        if !organizations::exists(conn, organization_id).await? {
            return Err(WorkflowError::field(
                "organization_id",
                Invalid::new("exists", "no organisation has this id"),
            ));
        }
        save(
            conn,
            actor,
            id,
            organization_id,
            None,
            document,
            Action::Create,
        )
        .await
    })
    .await
}

/// Replaces or patches a service the actor may change, if `precondition`
/// holds for its current version.
pub async fn update(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    precondition: &impl Precondition<ServiceRecord>,
    change: Change<ServiceDocument>,
) -> Result<ServiceRecord, WorkflowError> {
    require_writer(actor)?;
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        let (organization, before) = lock(conn, actor, id, precondition).await?;
        let document = change.apply(&before)?;
        save(
            conn,
            actor,
            id,
            organization,
            Some(before),
            document,
            Action::Update,
        )
        .await
    })
    .await
}

/// Archives (`inactive`: out of listings and matches, history kept) or
/// restores (`active`) a service.
pub async fn set_archived(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    precondition: &impl Precondition<ServiceRecord>,
    archived: bool,
) -> Result<ServiceRecord, WorkflowError> {
    let (status, action) = if archived {
        (ServiceStatus::Inactive, Action::Archive)
    } else {
        (ServiceStatus::Active, Action::Restore)
    };
    require_writer(actor)?;
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        let (_, before) = lock(conn, actor, id, precondition).await?;
        writes::set_service_status(conn, id, status).await?;
        audit_change(conn, actor, id, action, &before).await
    })
    .await
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
        let (_, before) = lock(conn, actor, id, precondition).await?;
        writes::set_capacity(conn, id, &capacity).await?;
        audit_change(conn, actor, id, Action::Capacity, &before).await
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
        lock(conn, actor, id, precondition).await?;
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
        .ok_or_else(not_found)?;
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
        .ok_or_else(not_found)
}

/// Locks a service the actor may change and checks the precondition
/// against it; its organisation and its document as stored.
async fn lock(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    precondition: &impl Precondition<ServiceRecord>,
) -> Result<(OrganizationId, ServiceDocument), WorkflowError> {
    let organization = writes::lock_service(conn, id)
        .await?
        .ok_or_else(not_found)?;
    actor.require_owner(organization, "service")?;
    let record = stored(conn, id).await?;
    let links = writes::linked_locations(conn, &[id]).await?.remove(&id);
    let before = writes::service_document(&record, links.unwrap_or_default());
    precondition.check(&record)?;
    Ok((organization, before))
}

async fn stored(conn: &mut DbConn, id: ServiceId) -> Result<ServiceRecord, WorkflowError> {
    services::get(conn, id).await?.ok_or_else(not_found)
}

/// Records a change of state made by `action` (the document before and
/// after) and answers with the stored service.
async fn audit_change(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    action: Action,
    before: &ServiceDocument,
) -> Result<ServiceRecord, WorkflowError> {
    let after = writes::service_documents(conn, &[id])
        .await?
        .remove(&id)
        .ok_or_else(not_found)?;
    writes::audit_one(
        conn,
        actor.key_id(),
        action,
        "service",
        id.0,
        Some(audit_value(before)?),
        Some(audit_value(&after)?),
    )
    .await?;
    stored(conn, id).await
}

/// Validates and writes one service document and records it in the audit
/// trail; the stored service.
async fn save(
    conn: &mut DbConn,
    actor: &Actor,
    id: ServiceId,
    organization_id: OrganizationId,
    before: Option<ServiceDocument>,
    mut document: ServiceDocument,
    action: Action,
) -> Result<ServiceRecord, WorkflowError> {
    if document
        .organization_id
        .is_some_and(|named| named != organization_id)
    {
        return Err(WorkflowError::field(
            "organization_id",
            Invalid::new(
                "immutable",
                "a service stays with its organisation; create a new one instead",
            ),
        ));
    }
    document.organization_id = Some(organization_id);
    let validated = document.validate().map_err(WorkflowError::Invalid)?;
    writes::defer_refresh(conn).await?;
    writes::write_services(
        conn,
        &[ServiceWrite {
            id,
            organization_id,
            document: &validated,
            assured_date: None,
        }],
    )
    .await?;
    writes::refresh(conn, &[id]).await?;
    writes::audit_one(
        conn,
        actor.key_id(),
        action,
        "service",
        id.0,
        before.as_ref().map(audit_value).transpose()?,
        Some(audit_value(validated.get())?),
    )
    .await?;
    stored(conn, id).await
}
