//! The Open Referral HSDS 3.0 read API under `/hsds`: services,
//! organisations, services at locations and our category taxonomy, in the
//! shapes of HSDS's compiled schemas, with Kết Nối's profile
//! (`openapi/hsds-profile/`) for what HSDS lacks. Keys and role rules are
//! those of `/v1`: the public sees listed services only, with confidential
//! locations redacted (`location_type: "redacted"`).
//!
//! Lists use HSDS's `Page`; NDJSON (`Accept: application/x-ndjson`) streams every match instead,
//! one JSON document per line, in id order, fetched in batches.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use strum::VariantArray;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::etag;
use super::extract::{ApiJson, ApiQuery, parse_uuid};
use super::params::FieldErrors;
use super::problem::{ApiError, FieldError, responses};
use super::views::Page;
use crate::db::DbConn;
use crate::db::models::reference::{self, CategoryRow};
use crate::db::models::search::Words;
use crate::db::models::services::{self, ServiceFilter, ServiceRecord};
use crate::db::models::{locations, organizations};
use crate::domain::access::Audience;
use crate::domain::category::Category;
use crate::domain::geo::{Coordinates, RadiusM};
use crate::domain::ids::{OrganizationId, ServiceAtLocationId, ServiceId};
use crate::domain::page::PageRequest;
use crate::domain::search::SearchText;
use crate::exchange::hsds::{self, ServiceShape};
use crate::workflows::services::visible as visible_record;

mod ndjson;
mod organization;
mod query;
mod taxonomies;

use ndjson::*;
pub use organization::*;
pub use query::*;
pub use taxonomies::*;

/// The profile's schema patches, served at `/hsds/profile/schema/{name}`.
pub const PROFILE_SCHEMAS: [(&str, &str); 9] = [
    (
        "location.json",
        include_str!("../../../openapi/hsds-profile/schema/location.json"),
    ),
    (
        "organization.json",
        include_str!("../../../openapi/hsds-profile/schema/organization.json"),
    ),
    (
        "phone.json",
        include_str!("../../../openapi/hsds-profile/schema/phone.json"),
    ),
    (
        "schedule.json",
        include_str!("../../../openapi/hsds-profile/schema/schedule.json"),
    ),
    (
        "service.json",
        include_str!("../../../openapi/hsds-profile/schema/service.json"),
    ),
    (
        "service_area.json",
        include_str!("../../../openapi/hsds-profile/schema/service_area.json"),
    ),
    (
        "service_capacity.json",
        include_str!("../../../openapi/hsds-profile/schema/service_capacity.json"),
    ),
    (
        "taxonomy_term.json",
        include_str!("../../../openapi/hsds-profile/schema/taxonomy_term.json"),
    ),
    (
        "unit.json",
        include_str!("../../../openapi/hsds-profile/schema/unit.json"),
    ),
];

const PROFILE_DOCUMENT: &str = include_str!("../../../openapi/hsds-profile/README.md");

/// Services streamed per database round trip as NDJSON.
const STREAM_BATCH: i64 = 200;

/// What this HSDS API is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HsdsMeta {
    /// The HSDS version served.
    #[schema(example = "3.0")]
    pub version: String,
    /// The Kết Nối profile's URL (its description and schema patches).
    pub profile: String,
    /// The OpenAPI document describing this API, `/hsds` included.
    pub openapi_url: String,
}

/// HSDS version, profile and OpenAPI document.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "About this HSDS API", body = HsdsMeta),
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/")]
pub async fn hsds_meta(
    state: web::Data<AppState>,
    _caller: Caller,
    request: HttpRequest,
) -> web::Json<HsdsMeta> {
    let base = super::links::base(&request, state.public_url.as_ref());
    web::Json(HsdsMeta {
        version: hsds::VERSION.into(),
        profile: format!("{base}/hsds/profile"),
        openapi_url: format!("{base}/openapi.json"),
    })
}

/// The Kết Nối HSDS profile.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    #[schema(example = "ketnoi")]
    pub name: String,
    /// The HSDS version the profile modifies.
    pub hsds_version: String,
    /// Each schema patch (JSON Merge Patch onto the HSDS schema of the same
    /// name; new objects in full), by file name, with its URL.
    pub schemas: std::collections::BTreeMap<String, String>,
    /// What each extension is and why (Markdown).
    pub documentation: String,
}

/// The Kết Nối HSDS profile: its extensions explained, and the URL of each
/// schema patch.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The profile", body = Profile),
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/profile")]
pub async fn hsds_profile(
    state: web::Data<AppState>,
    _caller: Caller,
    request: HttpRequest,
) -> web::Json<Profile> {
    let base = super::links::base(&request, state.public_url.as_ref());
    web::Json(Profile {
        name: "ketnoi".into(),
        hsds_version: hsds::VERSION.into(),
        schemas: PROFILE_SCHEMAS
            .iter()
            .map(|(name, _)| {
                (
                    (*name).to_owned(),
                    format!("{base}/hsds/profile/schema/{name}"),
                )
            })
            .collect(),
        documentation: PROFILE_DOCUMENT.into(),
    })
}

/// One schema patch of the profile.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(("name" = String, Path, description = "File name, e.g. `location.json`")),
    responses(
        (status = 200, description = "The JSON Merge Patch (or new schema)", body = Object,
            content_type = "application/json"),
        responses::ReadProblems,
    )
)]
#[get("/profile/schema/{name}")]
pub async fn hsds_profile_schema(
    _caller: Caller,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, text) = PROFILE_SCHEMAS
        .iter()
        .find(|(file, _)| *file == name.as_str())
        .ok_or(ApiError::NotFound("profile schema"))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(*text))
}

/// A list's representation, negotiated by `Accept`: a page of JSON, or,
/// to `Accept: application/x-ndjson`, every match as NDJSON (one JSON
/// document a line, unpaginated). Not a query parameter, so that the
/// document need not say that `page` and `per_page` do not apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Json,
    Ndjson,
}

/// The media type of the NDJSON representation.
pub const NDJSON: &str = "application/x-ndjson";

impl Format {
    /// NDJSON when `Accept` names it with a quality above 0 and above that
    /// of JSON (named, or through `application/*` or `*/*`; a tie goes to
    /// the type named), else JSON.
    pub fn negotiated(request: &HttpRequest) -> Option<Self> {
        let (mut ndjson, mut json, mut json_named) = (0.0f32, 0.0f32, false);
        for range in request
            .headers()
            .get_all(actix_web::http::header::ACCEPT)
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
        {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let quality = parts
                .find_map(|parameter| parameter.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok())
                .unwrap_or(0.0);
            match media.as_str() {
                NDJSON => ndjson = ndjson.max(quality),
                "application/json" => {
                    json = json.max(quality);
                    json_named = true;
                }
                "application/*" | "*/*" => json = json.max(quality),
                _ => {}
            }
        }
        let wins = ndjson > 0.0 && (ndjson > json || (ndjson >= json && !json_named));
        wins.then_some(Self::Ndjson)
    }
}

/// Lists answer by `Accept`, so caches must key them by it too.
pub async fn vary_accept(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let list = matches!(
        request.path(),
        "/hsds/services"
            | "/hsds/service_at_locations"
            | "/hsds/organizations"
            | "/hsds/taxonomies"
            | "/hsds/taxonomy_terms"
    );
    let mut response = next.call(request).await?;
    if list {
        super::etag::add_vary(response.headers_mut(), "Accept");
    }
    Ok(response)
}

/// Category rows by code, for taxonomy terms.
async fn category_rows(conn: &mut DbConn) -> Result<HashMap<String, CategoryRow>, ApiError> {
    Ok(reference::list_categories(conn)
        .await?
        .into_iter()
        .map(|row| (row.code.clone(), row))
        .collect())
}

/// HSDS services: one-to-one fields and organisation by default, fully
/// nested with `full=true`, `minimal=true` for a sync. Filters combine
/// (AND). Oldest change first with `modified_after`; else most relevant
/// first with `search` (nearest first among equals with `lat`/`lon`); else
/// nearest first with `lat`/`lon`; else by name. To `Accept: application/x-ndjson`: every
/// match, in id order.
#[utoipa::path(
    tag = "hsds",
    params(HsdsServiceQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of services (`compiled/service_list.json` \
            items), or to `Accept: application/x-ndjson` every service, one per line",
            content(
                (Page<hsds::ServiceItem> = "application/json"),
                (hsds::ServiceItem = "application/x-ndjson"),
            )),
        responses::ListProblems,
    )
)]
#[get("/services")]
pub async fn hsds_services(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: ApiQuery<HsdsServiceQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_services_of(state, caller, request, query.0).await
}

/// HSDS services, searched by `POST` (HSDS 3.1). The same search as a JSON body (the fields of the `GET` query): a client
/// locating a person sends the point here, never in a URL, which proxies and
/// caches log.
#[utoipa::path(
    tag = "hsds",
    request_body = HsdsServiceQuery,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of services (`compiled/service_list.json` \
            items), or to `Accept: application/x-ndjson` every service, one per line",
            content(
                (Page<hsds::ServiceItem> = "application/json"),
                (hsds::ServiceItem = "application/x-ndjson"),
            )),
        responses::BodySearchProblems,
    )
)]
#[post("/services")]
pub async fn hsds_services_search(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: ApiJson<HsdsServiceQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_services_of(state, caller, request, body.parse()?)
        .await
        .map_err(ApiError::in_body)
}

async fn hsds_services_of(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: HsdsServiceQuery,
) -> Result<HttpResponse, ApiError> {
    let listing = query.listing(&request, &state, &caller).await?;
    let shape = query.shape();
    let reader = caller;
    let render = move |record: &ServiceRecord, categories: &HashMap<String, CategoryRow>| {
        let audience = caller.audience_for(record.row.organization_id);
        hsds::service_item(record, audience, categories, shape)
    };
    if let Some(empty) = listing.nothing_answer::<hsds::ServiceItem>() {
        return Ok(empty);
    }
    if listing.ndjson {
        let render: std::rc::Rc<Render> = std::rc::Rc::new(move |record, categories, body| {
            ndjson_line(body, &render(record, categories))
        });
        return stream_services(state, reader, listing.filter, render).await;
    }
    let mut conn = state.reader(&reader).await?;
    let (records, total) = services::search(&mut conn, &listing.filter, listing.page).await?;
    let categories = category_rows(&mut conn).await?;
    let contents = records
        .iter()
        .map(|record| render(record, &categories))
        .collect();
    Ok(HttpResponse::Ok().json(Page::new(contents, total, listing.page)))
}

/// One service, fully nested (`compiled/service.json`).
#[utoipa::path(
    tag = "hsds",
    params(("id" = uuid::Uuid, Path, description = "The service's id")),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The service", body = hsds::Service,
            headers(("ETag" = String, description = "Version of this representation"))),
        responses::ReadProblems,
    )
)]
#[get("/services/{id}")]
pub async fn hsds_service(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ServiceId(parse_uuid(&id, "id")?);
    let mut conn = state.reader(&caller).await?;
    let (record, audience, categories) = seen_service(&mut conn, &caller, id).await?;
    etag::json_with_etag(
        StatusCode::OK,
        &hsds::service(&record, audience, &categories),
    )
}

/// A service the caller may see (else not found), with what its HSDS
/// rendering needs: the caller's audience for it, and the categories.
async fn seen_service(
    conn: &mut DbConn,
    caller: &Caller,
    id: ServiceId,
) -> Result<(ServiceRecord, Audience, HashMap<String, CategoryRow>), ApiError> {
    let record = visible_record(conn, caller, id).await?;
    let categories = category_rows(conn).await?;
    let audience = caller.audience_for(record.row.organization_id);
    Ok((record, audience, categories))
}

/// HSDS services at locations: one item per service and location (not
/// archived), carrying the location and the service in brief, or both
/// fully nested with `full=true`. Same filters as `/hsds/services`;
/// `lat`/`lon`/`proximity` measure to each location.
#[utoipa::path(
    tag = "hsds",
    params(HsdsServiceQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of services at locations \
            (`compiled/service_at_location_list.json` items), or to `Accept: application/x-ndjson` every one, \
            one per line",
            content(
                (Page<hsds::ServiceAtLocation> = "application/json"),
                (hsds::ServiceAtLocation = "application/x-ndjson"),
            )),
        responses::ListProblems,
    )
)]
#[get("/service_at_locations")]
pub async fn hsds_service_at_locations(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: ApiQuery<HsdsServiceQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_service_at_locations_of(state, caller, request, query.0).await
}

/// HSDS services at locations, searched by `POST` (HSDS 3.1). The same search as a JSON body (the fields of the `GET` query): a client
/// locating a person sends the point here, never in a URL, which proxies and
/// caches log.
#[utoipa::path(
    tag = "hsds",
    request_body = HsdsServiceQuery,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of services at locations \
            (`compiled/service_at_location_list.json` items), or to `Accept: application/x-ndjson` every one, \
            one per line",
            content(
                (Page<hsds::ServiceAtLocation> = "application/json"),
                (hsds::ServiceAtLocation = "application/x-ndjson"),
            )),
        responses::BodySearchProblems,
    )
)]
#[post("/service_at_locations")]
pub async fn hsds_service_at_locations_search(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: ApiJson<HsdsServiceQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_service_at_locations_of(state, caller, request, body.parse()?)
        .await
        .map_err(ApiError::in_body)
}

async fn hsds_service_at_locations_of(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: HsdsServiceQuery,
) -> Result<HttpResponse, ApiError> {
    let listing = query.listing(&request, &state, &caller).await?;
    let full = query.full == Some(true);
    if let Some(empty) = listing.nothing_answer::<hsds::ServiceAtLocation>() {
        return Ok(empty);
    }
    if listing.ndjson {
        let (filter, categories) = walk_start(&state, &caller, &listing.filter).await?;
        let walk = PairWalk {
            state,
            filter,
            cursor: Cursor::start(),
            categories,
            caller,
            full,
        };
        return ndjson_stream(walk, next_pairs).await;
    }
    let mut conn = state.reader(&caller).await?;
    let (pairs, total) = services::search_pairs(
        &mut conn,
        &listing.filter,
        services::PairWindow::Page(listing.page),
    )
    .await?;
    let categories = category_rows(&mut conn).await?;
    let contents = render_pairs(&mut conn, &pairs, &caller, &categories, full).await?;
    Ok(HttpResponse::Ok().json(Page::new(contents, total.unwrap_or_default(), listing.page)))
}

/// The services at locations of `pairs`, in their order: each service
/// loaded and rendered once, however many of its locations are listed.
async fn render_pairs(
    conn: &mut DbConn,
    pairs: &[(ServiceId, crate::domain::ids::LocationId)],
    caller: &Caller,
    categories: &HashMap<String, CategoryRow>,
    full: bool,
) -> Result<Vec<hsds::ServiceAtLocation>, ApiError> {
    let ids: Vec<ServiceId> = pairs.iter().map(|(service, _)| *service).collect();
    let records = services::load_records(conn, &ids).await?;
    let mut rendered: HashMap<(ServiceId, String), hsds::ServiceAtLocation> = HashMap::new();
    for record in records.values() {
        let audience = caller.audience_for(record.row.organization_id);
        for at in hsds::service_at_locations(record, audience, categories, full) {
            if let Some(location) = at.location_id.clone() {
                rendered.insert((record.row.id, location), at);
            }
        }
    }
    Ok(pairs
        .iter()
        .filter_map(|(service, location)| rendered.remove(&(*service, location.to_string())))
        .collect())
}

/// One service at one location, both fully nested
/// (`compiled/service_at_location.json`).
#[utoipa::path(
    tag = "hsds",
    params(("id" = uuid::Uuid, Path, description = "The service-at-location's id")),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The service at the location", body = hsds::ServiceAtLocation,
            headers(("ETag" = String, description = "Version of this representation"))),
        responses::ReadProblems,
    )
)]
#[get("/service_at_locations/{id}")]
pub async fn hsds_service_at_location(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = ServiceAtLocationId(parse_uuid(&id, "id")?);
    let mut conn = state.reader(&caller).await?;
    let (service, location) = services::pair(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("service at location"))?;
    let (record, audience, categories) =
        seen_service(&mut conn, &caller, service)
            .await
            .map_err(|error| match error {
                ApiError::NotFound(_) => ApiError::NotFound("service at location"),
                other => other,
            })?;
    let found = hsds::service_at_locations(&record, audience, &categories, true)
        .into_iter()
        .find(|at| at.location_id.as_deref() == Some(&location.to_string()))
        .ok_or(ApiError::NotFound("service at location"))?;
    etag::json_with_etag(StatusCode::OK, &found)
}
