//! Locations: create, replace, merge-patch, archive and restore. The
//! services offered at a location see each change at once (matches
//! included).

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;

use super::services::Change;
use super::{Precondition, WorkflowError, audit_value, require_writer};
use crate::db::DbConn;
use crate::db::models::locations::{self, LocationRecord};
use crate::db::models::organizations;
use crate::db::models::writes::{self, Action, LocationWrite, location_document};
use crate::domain::Invalid;
use crate::domain::access::{Actor, Refusal};
use crate::domain::ids::{LocationId, OrganizationId};
use crate::domain::listing::LocationDocument;

/// A stored location and when it was archived, if it is.
pub type StoredLocation = (LocationRecord, Option<DateTime<Utc>>);

fn not_found() -> WorkflowError {
    Refusal::NotFound("location").into()
}

/// Creates a location (an agency: for its own organisation; an admin: for
/// the one named).
pub async fn create(
    conn: &mut DbConn,
    actor: &Actor,
    document: LocationDocument,
) -> Result<StoredLocation, WorkflowError> {
    require_writer(actor)?;
    let organization_id = actor
        .organization_for(document.organization_id)
        .map_err(|invalid| WorkflowError::field("organization_id", invalid))?;
    let id = LocationId(uuid::Uuid::new_v4());
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

/// Replaces or patches a location the actor may change, if `precondition`
/// holds for its current version.
pub async fn update(
    conn: &mut DbConn,
    actor: &Actor,
    id: LocationId,
    precondition: &impl Precondition<StoredLocation>,
    change: Change<LocationDocument>,
) -> Result<StoredLocation, WorkflowError> {
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

/// Archives a location (it leaves listings and matches; its services stay,
/// offered at their other locations) or restores it.
pub async fn set_archived(
    conn: &mut DbConn,
    actor: &Actor,
    id: LocationId,
    precondition: &impl Precondition<StoredLocation>,
    archived: bool,
) -> Result<StoredLocation, WorkflowError> {
    require_writer(actor)?;
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        let (_, document) = lock(conn, actor, id, precondition).await?;
        writes::set_location_archived(conn, id, archived).await?;
        let value = audit_value(&document)?;
        let action = if archived {
            Action::Archive
        } else {
            Action::Restore
        };
        writes::audit_one(
            conn,
            actor.key_id(),
            action,
            "location",
            id.0,
            Some(serde_json::json!({"archived": !archived, "location": value})),
            Some(serde_json::json!({"archived": archived, "location": value})),
        )
        .await?;
        stored(conn, id).await
    })
    .await
}

async fn stored(conn: &mut DbConn, id: LocationId) -> Result<StoredLocation, WorkflowError> {
    locations::get(conn, id).await?.ok_or_else(not_found)
}

/// Locks a location the actor may change and checks the precondition.
async fn lock(
    conn: &mut DbConn,
    actor: &Actor,
    id: LocationId,
    precondition: &impl Precondition<StoredLocation>,
) -> Result<(OrganizationId, LocationDocument), WorkflowError> {
    let (organization, _) = writes::lock_location(conn, id)
        .await?
        .ok_or_else(not_found)?;
    actor.require_owner(organization, "location")?;
    let current = stored(conn, id).await?;
    let document = location_document(&current.0);
    precondition.check(&current)?;
    Ok((organization, document))
}

async fn save(
    conn: &mut DbConn,
    actor: &Actor,
    id: LocationId,
    organization_id: OrganizationId,
    before: Option<LocationDocument>,
    mut document: LocationDocument,
    action: Action,
) -> Result<StoredLocation, WorkflowError> {
    if document
        .organization_id
        .is_some_and(|named| named != organization_id)
    {
        return Err(WorkflowError::field(
            "organization_id",
            Invalid::new("immutable", "a location stays with its organisation"),
        ));
    }
    document.organization_id = Some(organization_id);
    let validated = document.validate().map_err(WorkflowError::Invalid)?;
    writes::defer_refresh(conn).await?;
    let services = writes::write_locations(
        conn,
        &[LocationWrite {
            id,
            organization_id,
            document: &validated,
        }],
    )
    .await?;
    writes::refresh(conn, &services).await?;
    writes::audit_one(
        conn,
        actor.key_id(),
        action,
        "location",
        id.0,
        before.as_ref().map(audit_value).transpose()?,
        Some(audit_value(validated.get())?),
    )
    .await?;
    stored(conn, id).await
}
