//! The write sequence services and locations share: create, replace or
//! patch, archive and restore, each in one transaction — lock the row,
//! check who may change it and the caller's precondition, validate, write,
//! rebuild the matcher's rows, audit — over a [`Listing`] that says how
//! each kind is locked, loaded, written and archived.

use std::future::Future;

use diesel_async::AsyncConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Precondition, WorkflowError, audit_value, require_writer};
use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::organizations;
use crate::db::models::writes::{self, Action};
use crate::domain::Invalid;
use crate::domain::access::{Actor, Refusal};
use crate::domain::ids::OrganizationId;
use crate::exchange::json::{self, JsonError};

/// A change to a stored listing: a whole new document, a JSON Merge Patch
/// (RFC 7396) of the stored one, or archiving (it leaves listings and
/// matches; its history stays) and restoring it.
pub enum Change<D> {
    Replace(D),
    MergePatch(serde_json::Value),
    Archive,
    Restore,
}

/// The document a merge patch makes of `before`.
fn merged<D: Serialize + DeserializeOwned>(
    before: &D,
    patch: &serde_json::Value,
) -> Result<D, WorkflowError> {
    json::merge_patch(before, patch).map_err(|error| match error {
        JsonError::Invalid(problems) => WorkflowError::Invalid(problems),
        JsonError::Malformed(reason) => WorkflowError::Internal(anyhow::anyhow!(reason)),
    })
}

/// A kind of listing an organisation owns and writes as a document.
pub trait Listing {
    type Id: Copy + Send + Sync;
    type Document: Serialize + DeserializeOwned + Send + Sync;
    /// The stored record, as the caller renders it.
    type Stored: Send;
    /// The resource's name, in the audit trail and in "not found".
    const KIND: &'static str;
    /// Why a document may not name another organisation than its own.
    const STAYS: &'static str;

    fn new_id() -> Self::Id;
    fn uuid(id: Self::Id) -> uuid::Uuid;
    /// The organisation a document names, and setting it.
    fn organization(document: &mut Self::Document) -> &mut Option<OrganizationId>;

    /// Locks the row for the transaction; its organisation, if it exists.
    fn lock(
        conn: &mut DbConn,
        id: Self::Id,
    ) -> impl Future<Output = Result<Option<OrganizationId>, DbError>> + Send;
    /// The stored record and its document.
    fn load(
        conn: &mut DbConn,
        id: Self::Id,
    ) -> impl Future<Output = Result<(Self::Stored, Self::Document), WorkflowError>> + Send;
    /// Validates and writes a document for `organization`, refreshing the
    /// matcher's rows it touches; the document as the audit records it.
    fn write(
        conn: &mut DbConn,
        id: Self::Id,
        organization: OrganizationId,
        document: Self::Document,
    ) -> impl Future<Output = Result<serde_json::Value, WorkflowError>> + Send;
    /// Archives or restores it.
    fn set_archived(
        conn: &mut DbConn,
        id: Self::Id,
        archived: bool,
    ) -> impl Future<Output = Result<(), DbError>> + Send;
    /// What the audit records of archiving (`archived`) or restoring, from
    /// the documents before and after.
    fn archive_audit(
        archived: bool,
        before: &Self::Document,
        after: &Self::Document,
    ) -> Result<(serde_json::Value, serde_json::Value), WorkflowError>;
}

pub(super) fn not_found<L: Listing>() -> WorkflowError {
    Refusal::NotFound(L::KIND).into()
}

/// Creates a listing (an agency: for its own organisation; an admin: for
/// the one named, which must exist).
pub async fn create<L: Listing>(
    conn: &mut DbConn,
    actor: &Actor,
    mut document: L::Document,
) -> Result<L::Stored, WorkflowError> {
    require_writer(actor)?;
    let organization_id = actor
        .organization_for(*L::organization(&mut document))
        .map_err(|invalid| WorkflowError::field("organization_id", invalid))?;
    let id = L::new_id();
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        if !organizations::exists(conn, organization_id).await? {
            return Err(WorkflowError::field(
                "organization_id",
                Invalid::new("exists", "no organisation has this id"),
            ));
        }
        save::<L>(
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

/// Changes a listing the actor may change, if `precondition` holds for
/// its current version.
pub async fn update<L: Listing>(
    conn: &mut DbConn,
    actor: &Actor,
    id: L::Id,
    precondition: &impl Precondition<L::Stored>,
    change: Change<L::Document>,
) -> Result<L::Stored, WorkflowError> {
    require_writer(actor)?;
    conn.transaction::<_, WorkflowError, _>(async move |conn| {
        let (organization, before) = lock::<L>(conn, actor, id, precondition).await?;
        let document = match change {
            Change::Replace(document) => document,
            Change::MergePatch(patch) => merged(&before, &patch)?,
            Change::Archive => return archive::<L>(conn, actor, id, true, &before).await,
            Change::Restore => return archive::<L>(conn, actor, id, false, &before).await,
        };
        let (before, action) = (Some(before), Action::Update);
        save::<L>(conn, actor, id, organization, before, document, action).await
    })
    .await
}

/// Archives or restores a locked listing, with its audit row.
async fn archive<L: Listing>(
    conn: &mut DbConn,
    actor: &Actor,
    id: L::Id,
    archived: bool,
    document: &L::Document,
) -> Result<L::Stored, WorkflowError> {
    L::set_archived(conn, id, archived).await?;
    let (stored, after) = L::load(conn, id).await?;
    let (before, after) = L::archive_audit(archived, document, &after)?;
    let action = if archived {
        Action::Archive
    } else {
        Action::Restore
    };
    let (kind, uuid) = (L::KIND, L::uuid(id));
    let (key, before, after) = (actor.key_id(), Some(before), Some(after));
    writes::audit_one(conn, key, action, kind, uuid, before, after).await?;
    Ok(stored)
}

/// Locks a listing the actor may change and checks the precondition
/// against it; its organisation and its document as stored.
pub(super) async fn lock<L: Listing>(
    conn: &mut DbConn,
    actor: &Actor,
    id: L::Id,
    precondition: &impl Precondition<L::Stored>,
) -> Result<(OrganizationId, L::Document), WorkflowError> {
    let organization = L::lock(conn, id).await?.ok_or_else(not_found::<L>)?;
    actor.require_owner(organization, L::KIND)?;
    let (current, document) = L::load(conn, id).await?;
    precondition.check(&current)?;
    Ok((organization, document))
}

/// Validates and writes one document and records it in the audit trail;
/// the stored listing.
async fn save<L: Listing>(
    conn: &mut DbConn,
    actor: &Actor,
    id: L::Id,
    organization_id: OrganizationId,
    before: Option<L::Document>,
    mut document: L::Document,
    action: Action,
) -> Result<L::Stored, WorkflowError> {
    let named = L::organization(&mut document);
    if named.is_some_and(|named| named != organization_id) {
        return Err(WorkflowError::field(
            "organization_id",
            Invalid::new("immutable", L::STAYS),
        ));
    }
    *named = Some(organization_id);
    writes::defer_refresh(conn).await?;
    let after = L::write(conn, id, organization_id, document).await?;
    let before = before.as_ref().map(audit_value).transpose()?;
    let (kind, uuid) = (L::KIND, L::uuid(id));
    writes::audit_one(
        conn,
        actor.key_id(),
        action,
        kind,
        uuid,
        before,
        Some(after),
    )
    .await?;
    Ok(L::load(conn, id).await?.0)
}
