//! `POST /v1/import`: bulk import for agencies and admins.

use actix_web::http::header;
use actix_web::{HttpRequest, post, web};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::extract::ApiQuery;
use super::problem::{ApiError, responses};
use crate::domain::access::Role;
use crate::exchange::import::{Format, parse};
use crate::workflows::import::{Report, run};

/// The largest import body, in bytes (about 25,000 services of the
/// synthetic benchmark directory, 2.55 KB each in HSDS JSON).
pub const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

/// How to import.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Check everything and report what would change, writing nothing.
    #[param(default = false)]
    pub dry_run: Option<bool>,
    /// `hsds-json`, `ndjson` or `csv`; by default taken from the
    /// `Content-Type` (`application/json`, `application/x-ndjson`,
    /// `text/csv`).
    pub format: Option<Format>,
}

/// An import in JSON: an array of HSDS services, or an HSDS page whose
/// `contents` are the services. Only described here; the importer reads it.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum JsonImport {
    Services(Vec<serde_json::Map<String, serde_json::Value>>),
    Page(ImportPage),
}

/// An HSDS page of services.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
struct ImportPage {
    contents: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Import services with their locations: HSDS 3.0 JSON (an array, or an
/// HSDS page), NDJSON, or the CSV template. All or nothing: one bad record
/// rejects the file, and the 422 names every bad record (`records[i]`,
/// with `line` for NDJSON and CSV) and field. Records are matched by id,
/// and unchanged ones are left alone, so importing a file twice changes
/// nothing the second time. An agency key imports only into its own
/// organisation; an admin key may also create the organisations the file
/// describes.
#[utoipa::path(
    tag = "writes",
    params(ImportQuery),
    request_body(description = "The file", content(
        (JsonImport = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/csv"),
    )),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "What was (or, for a dry run, would be) written", body = Report),
        responses::BadRequest,
        responses::BodyProblems,
        responses::AuthProblems,
        responses::ServerProblems,
    )
)]
#[post("/import")]
pub async fn import_services(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: ApiQuery<ImportQuery>,
    mut payload: web::Payload,
) -> Result<web::Json<Report>, ApiError> {
    caller.require(&[Role::Admin, Role::Agency])?;
    let format = match query.0.format {
        Some(format) => format,
        None => {
            let media_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(';').next())
                .map(|essence| essence.trim().to_ascii_lowercase());
            media_type
                .as_deref()
                .and_then(Format::from_media_type)
                .ok_or_else(|| {
                    ApiError::UnsupportedMediaType(
                        "application/json, application/x-ndjson or text/csv".into(),
                    )
                })?
        }
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::MalformedBody("the body could not be read".into()))?;
        if body.len() + chunk.len() > IMPORT_LIMIT {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    // Parsing and checking tens of megabytes is CPU work: off the server's
    // worker thread.
    let agency = caller.agency_of();
    let entries = web::block(move || parse(format, &body, agency))
        .await
        .map_err(|error| ApiError::Internal(error.into()))??;
    let mut conn = state.primary().await?;
    let report = run(
        &mut conn,
        &caller,
        entries,
        query.0.dry_run.unwrap_or(false),
    )
    .await?;
    Ok(web::Json(report))
}
