//! Organisations: read with their services, created and replaced by
//! admins.

use diesel_async::AsyncConnection;

use super::{Precondition, WorkflowError, audit_value};
use crate::db::DbConn;
use crate::db::models::organizations::{self, OrganizationRecord};
use crate::db::models::services::{self, ServiceBrief};
use crate::db::models::writes::{self, Action};
use crate::domain::access::{Actor, Refusal, Role};
use crate::domain::ids::OrganizationId;
use crate::domain::listing::OrganizationDocument;

/// An organisation and the services of it the reader may see, by name.
pub struct OrganizationState {
    pub record: OrganizationRecord,
    pub services: Vec<ServiceBrief>,
}

fn not_found() -> WorkflowError {
    Refusal::NotFound("organization").into()
}

/// An organisation as `actor` sees it: archived services only for those
/// who may see them.
pub async fn read(
    conn: &mut DbConn,
    actor: &Actor,
    id: OrganizationId,
) -> Result<OrganizationState, WorkflowError> {
    let visibility = actor.visibility();
    let record = organizations::get(conn, id).await?.ok_or_else(not_found)?;
    let services = services::of_organization(conn, id)
        .await?
        .into_iter()
        .filter(|brief| visibility.allows(id, brief.status))
        .collect();
    Ok(OrganizationState { record, services })
}

/// Creates an organisation (admins only).
pub async fn create(
    conn: &mut DbConn,
    actor: &Actor,
    document: OrganizationDocument,
) -> Result<OrganizationState, WorkflowError> {
    actor.require(&[Role::Admin])?;
    let document = document.validate().map_err(WorkflowError::Invalid)?;
    let id = OrganizationId(uuid::Uuid::new_v4());
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        writes::write_organization(conn, id, &document).await?;
        writes::audit_one(
            conn,
            actor.key_id(),
            Action::Create,
            "organization",
            id.0,
            None,
            Some(audit_value(document.get())?),
        )
        .await?;
        read(conn, actor, id).await
    })
    .await
}

/// Replaces an organisation's details (admins only), if `precondition`
/// holds for its current version.
pub async fn replace(
    conn: &mut DbConn,
    actor: &Actor,
    id: OrganizationId,
    precondition: &impl Precondition<OrganizationState>,
    document: OrganizationDocument,
) -> Result<OrganizationState, WorkflowError> {
    actor.require(&[Role::Admin])?;
    let document = document.validate().map_err(WorkflowError::Invalid)?;
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        if !organizations::lock(conn, id).await? {
            return Err(not_found());
        }
        let current = read(conn, actor, id).await?;
        precondition.check(&current)?;
        let before = writes::organization_document(&current.record);
        writes::write_organization(conn, id, &document).await?;
        writes::audit_one(
            conn,
            actor.key_id(),
            Action::Update,
            "organization",
            id.0,
            Some(audit_value(&before)?),
            Some(audit_value(document.get())?),
        )
        .await?;
        read(conn, actor, id).await
    })
    .await
}
