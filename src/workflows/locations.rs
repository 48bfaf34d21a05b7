//! Locations: written through the shared sequence of [`super::listings`].

use chrono::{DateTime, Utc};

use super::listings::Listing;
use super::{WorkflowError, audit_value};
use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::locations::{self, LocationRecord};
use crate::db::models::writes::{self, LocationWrite, location_document};
use crate::domain::access::Refusal;
use crate::domain::ids::{LocationId, OrganizationId};
use crate::domain::listing::LocationDocument;

/// A stored location and when it was archived, if it is.
pub type StoredLocation = (LocationRecord, Option<DateTime<Utc>>);

/// Locations, for the shared write sequence of [`super::listings`]. The
/// services offered at a location see each change at once (matches
/// included).
pub struct Locations;

impl Listing for Locations {
    type Id = LocationId;
    type Document = LocationDocument;
    type Stored = StoredLocation;
    const KIND: &'static str = "location";
    const STAYS: &'static str = "a location stays with its organisation";

    fn new_id() -> LocationId {
        LocationId(uuid::Uuid::new_v4())
    }

    fn uuid(id: LocationId) -> uuid::Uuid {
        id.0
    }

    fn organization(document: &mut LocationDocument) -> &mut Option<OrganizationId> {
        &mut document.organization_id
    }

    async fn lock(conn: &mut DbConn, id: LocationId) -> Result<Option<OrganizationId>, DbError> {
        Ok(writes::lock_location(conn, id)
            .await?
            .map(|(organization, _)| organization))
    }

    async fn load(
        conn: &mut DbConn,
        id: LocationId,
    ) -> Result<(StoredLocation, LocationDocument), WorkflowError> {
        let stored = locations::get(conn, id)
            .await?
            .ok_or(WorkflowError::Refused(Refusal::NotFound("location")))?;
        let document = location_document(&stored.0);
        Ok((stored, document))
    }

    async fn write(
        conn: &mut DbConn,
        id: LocationId,
        organization_id: OrganizationId,
        document: LocationDocument,
    ) -> Result<serde_json::Value, WorkflowError> {
        let validated = document.validate().map_err(WorkflowError::Invalid)?;
        let write = LocationWrite {
            id,
            organization_id,
            document: &validated,
        };
        let services = writes::write_locations(conn, &[write]).await?;
        writes::refresh(conn, &services).await?;
        audit_value(validated.get())
    }

    async fn set_archived(
        conn: &mut DbConn,
        id: LocationId,
        archived: bool,
    ) -> Result<(), DbError> {
        writes::set_location_archived(conn, id, archived).await
    }

    /// The location itself is unchanged: the audit records the flag.
    fn archive_audit(
        archived: bool,
        before: &LocationDocument,
        _: &LocationDocument,
    ) -> Result<(serde_json::Value, serde_json::Value), WorkflowError> {
        let location = audit_value(before)?;
        Ok((
            serde_json::json!({"archived": !archived, "location": location}),
            serde_json::json!({"archived": archived, "location": location}),
        ))
    }
}
