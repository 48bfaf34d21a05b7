//! What the write handlers of the listings (services and locations)
//! share: a creation, and a change checked against `If-Match`, each
//! answered with the view the owner sees, whose tag is the listing's
//! version. Each handler has refused a caller who may not write before
//! reading anything else.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use super::etag::{self, IfMatch};
use super::problem::ApiError;
use crate::workflows::listings::{self, Change, Listing};

/// A listing as its owner sees it: the full view, whose `ETag` is the
/// version `If-Match` names.
pub(super) trait OwnerView: Listing {
    type View: Serialize;

    fn owner_view(stored: &Self::Stored) -> Self::View;

    /// Where the listing is read (a created one's `Location`).
    fn path(stored: &Self::Stored) -> String;
}

/// Creates a listing; answers 201 with the owner's view, its `ETag` and
/// its `Location`.
pub(super) async fn create<L: OwnerView>(
    state: &AppState,
    caller: Caller,
    document: L::Document,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.primary().await?;
    let stored = listings::create::<L>(&mut conn, &caller, document).await?;
    etag::created(&L::owner_view(&stored), &L::path(&stored))
}

/// Replaces, patches, archives or restores a listing, if `If-Match` names
/// its current version; answers with the owner's view and its `ETag`.
pub(super) async fn change<L: OwnerView>(
    state: &AppState,
    caller: Caller,
    id: L::Id,
    if_match: IfMatch,
    change: Change<L::Document>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.primary().await?;
    let precondition = if_match.required(L::owner_view);
    let stored = listings::update::<L>(&mut conn, &caller, id, &precondition, change).await?;
    etag::json_with_etag(StatusCode::OK, &L::owner_view(&stored))
}
