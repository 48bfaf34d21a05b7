//! What the write handlers of the listings (services and locations)
//! share: a change checked against `If-Match` and answered with the view
//! the owner sees, whose tag is the listing's version.

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
}

/// Replaces, patches, archives or restores a listing, if `If-Match` names
/// its current version; answers with the owner's view and its `ETag`. Each
/// handler has refused a caller who may not write before reading anything
/// else.
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
