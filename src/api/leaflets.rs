//! A commune's printed leaflet, as a PDF for anyone.

use std::sync::{Arc, OnceLock};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use tokio::sync::Semaphore;
use utoipa::IntoParams;

use super::AppState;
use super::extract::ApiQuery;
use super::params::FieldErrors;
use super::problem::{ApiError, responses};
use super::reference::WardPath;
use crate::domain::leaflet::Lang;
use crate::workflows::leaflets::{self as workflow, LeafletError, LeafletRequest};

/// What the leaflet prints.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LeafletQuery {
    /// `vi` (default) or `en`.
    #[param(inline)]
    pub lang: Option<Lang>,
    /// The need categories printed, comma-separated, in this order;
    /// default all twelve.
    #[param(value_type = Option<super::params::CategoryList>, inline)]
    pub categories: Option<String>,
}

/// A PDF document, one A4 page.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PdfDocument(
    #[expect(
        dead_code,
        reason = "only describes the response in the OpenAPI document"
    )]
    Vec<u8>,
);

/// A leaflet's answer may be kept an hour by anyone (the date it prints
/// changes daily, its `ETag` with it).
const CACHE_CONTROL: &str = "public, max-age=3600";

/// Typesetting is CPU work: at most one leaflet per core at a time, so
/// that a burst of them queues instead of starving the other requests.
fn typesetters() -> Arc<Semaphore> {
    static TYPESETTERS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    TYPESETTERS
        .get_or_init(|| {
            Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ))
        })
        .clone()
}

impl From<LeafletError> for ApiError {
    fn from(error: LeafletError) -> Self {
        match error {
            LeafletError::UnknownWard => ApiError::NotFound("ward"),
            LeafletError::Db(error) => error.into(),
            LeafletError::Print(error) => ApiError::Internal(error.into()),
        }
    }
}

/// The commune's leaflet: one A4 page to print in black and white, with the
/// national hotlines, and for each need the nearest 1 to 3 active services
/// that serve the commune (in person within 50 km of its reference point,
/// else remotely), as the public sees them: a confidential location has no
/// address, ward, point or distance, only a number to call. With a QR code
/// to the map around the commune. `ETag` changes when anything printed
/// does; `If-None-Match` gets a `304` without typesetting.
#[utoipa::path(
    tag = "reference",
    params(WardPath, LeafletQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The leaflet", content_type = "application/pdf",
            body = PdfDocument,
            headers(("ETag" = String), ("Cache-Control" = String), ("Content-Disposition" = String))),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`",
            headers(("ETag" = String), ("Cache-Control" = String))),
        responses::ReadProblems,
    )
)]
#[get("/wards/{code}/leaflet.pdf")]
pub async fn ward_leaflet(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    request: HttpRequest,
    path: web::Path<WardPath>,
    query: ApiQuery<LeafletQuery>,
) -> Result<HttpResponse, ApiError> {
    let ward = path.into_inner().parse()?;
    let query = query.0;
    let mut errors = FieldErrors::default();
    let categories = errors.categories("categories", query.categories.as_deref());
    let categories = errors.finish(categories)?;
    let leaflet = LeafletRequest {
        ward,
        lang: query.lang.unwrap_or(Lang::Vi),
        categories,
        public_url: super::links::base(&request, state.public_url.as_ref()),
    };
    let mut conn = state.anonymous_reader().await?;
    let prepared = workflow::prepare(&mut conn, &leaflet, chrono::Utc::now()).await?;
    drop(conn);
    let etag = prepared.etag.clone();
    if super::etag::none_match_fails(request.headers(), &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
            .finish());
    }
    let permit = typesetters()
        .acquire_owned()
        .await
        .map_err(|error| ApiError::Internal(error.into()))?;
    // The permit goes with the work: a client that hangs up does not free
    // its core while the typesetting goes on.
    let pdf = web::block(move || {
        let pdf = workflow::render(&prepared);
        drop(permit);
        pdf
    })
    .await
    .map_err(|error| ApiError::Internal(error.into()))??;
    let filename = format!("{}-{}.pdf", leaflet.ward.as_str(), leaflet.lang.as_str());
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{filename}\""),
        ))
        .body(pdf))
}
