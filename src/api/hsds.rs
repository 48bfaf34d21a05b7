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
use super::organizations::search_words;
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
use crate::domain::page::{PageRequest, feed_bound};
use crate::domain::search::SearchText;
use crate::exchange::hsds::{self, ServiceShape};
use crate::workflows::services::visible as visible_record;

/// The profile's schema patches, served at `/hsds/profile/schema/{name}`.
pub const PROFILE_SCHEMAS: [(&str, &str); 9] = [
    (
        "location.json",
        include_str!("../../openapi/hsds-profile/schema/location.json"),
    ),
    (
        "organization.json",
        include_str!("../../openapi/hsds-profile/schema/organization.json"),
    ),
    (
        "phone.json",
        include_str!("../../openapi/hsds-profile/schema/phone.json"),
    ),
    (
        "schedule.json",
        include_str!("../../openapi/hsds-profile/schema/schedule.json"),
    ),
    (
        "service.json",
        include_str!("../../openapi/hsds-profile/schema/service.json"),
    ),
    (
        "service_area.json",
        include_str!("../../openapi/hsds-profile/schema/service_area.json"),
    ),
    (
        "service_capacity.json",
        include_str!("../../openapi/hsds-profile/schema/service_capacity.json"),
    ),
    (
        "taxonomy_term.json",
        include_str!("../../openapi/hsds-profile/schema/taxonomy_term.json"),
    ),
    (
        "unit.json",
        include_str!("../../openapi/hsds-profile/schema/unit.json"),
    ),
];

const PROFILE_DOCUMENT: &str = include_str!("../../openapi/hsds-profile/README.md");

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
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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

/// The filters HSDS defines for services and services at locations.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsServiceQuery {
    /// Search words, Vietnamese-aware: with or without diacritics
    /// (`tro giup phap ly` finds `Trợ giúp pháp lý`), forgiving small
    /// typos, over names, descriptions and category labels; most relevant
    /// first. At most 200 characters.
    #[param(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    #[schema(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[schema(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
    /// Set from `Accept`, not from the query.
    #[serde(skip)]
    #[param(ignore)]
    #[schema(ignore)]
    pub format: Option<Format>,
    /// Only services with this taxonomy term (a category's term id, see
    /// `/hsds/taxonomy_terms`).
    #[param(value_type = Option<uuid::Uuid>)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub taxonomy_term_id: Option<String>,
    /// Only services with a term of this taxonomy.
    #[param(value_type = Option<uuid::Uuid>)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub taxonomy_id: Option<String>,
    /// Only this organisation's services.
    #[param(value_type = Option<uuid::Uuid>)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub organization_id: Option<String>,
    /// Only services modified on or after this instant (RFC 3339; encode
    /// `+` as `%2B`).
    pub modified_after: Option<DateTime<Utc>>,
    /// Each item is just `id`, `name`, `status` and `last_modified`
    /// (services only: services at locations ignore it); `full` wins over
    /// it.
    pub minimal: Option<bool>,
    /// Fully nested items (phones, schedules, service areas, locations…).
    pub full: Option<bool>,
    /// Latitude (WGS84) of a point to search around, -90 to 90; with
    /// `lon` (either one alone is no point, and does not filter).
    #[param(example = 21.0285, minimum = -90, maximum = 90)]
    #[schema(example = 21.0285, minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Longitude (WGS84) of a point to search around, -180 to 180; with
    /// `lat`.
    #[param(example = 105.8542, minimum = -180, maximum = 180)]
    #[schema(example = 105.8542, minimum = -180, maximum = 180)]
    pub lon: Option<f64>,
    /// With `lat` and `lon`: only services with a location within this many
    /// metres (1 to 500000, default 50000), nearest first; ignored without
    /// them.
    #[param(minimum = 1, maximum = 500000, default = 50000)]
    #[schema(minimum = 1, maximum = 500000, default = 50000)]
    pub proximity: Option<u32>,
    /// Not supported (Vietnam's listings carry no postcodes): a 400 that
    /// says to use `lat`, `lon` and `proximity`. Not in the description,
    /// since no value of it is valid.
    #[param(ignore)]
    #[schema(ignore)]
    pub postcode: Option<String>,
}

/// A parsed list request.
struct Listing {
    filter: ServiceFilter,
    page: PageRequest,
    ndjson: bool,
    /// A taxonomy or term id that names nothing we have: no service
    /// matches, whatever else is asked.
    nothing: bool,
}

/// The category a taxonomy term id names, if any.
fn category_of_term(id: uuid::Uuid) -> Option<Category> {
    Category::VARIANTS
        .iter()
        .copied()
        .find(|category| hsds::category_term_id(*category) == id)
}

/// The value, or `None` with its field problems added to `errors`.
fn gather<T>(result: Result<T, ApiError>, errors: &mut Vec<FieldError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(ApiError::InvalidRequest(found)) => {
            errors.extend(found);
            None
        }
        Err(other) => {
            errors.push(FieldError::new("query", "invalid", other.to_string()));
            None
        }
    }
}

fn uuid_param(
    value: Option<&str>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<uuid::Uuid> {
    gather(parse_uuid(value?, field), errors)
}

fn page_of(
    page: Option<u32>,
    per_page: Option<u32>,
    ndjson: bool,
    errors: &mut Vec<FieldError>,
) -> PageRequest {
    if ndjson {
        for (field, given) in [("page", page.is_some()), ("per_page", per_page.is_some())] {
            if given {
                errors.push(FieldError::new(
                    field,
                    "conflict",
                    format!("{field} does not apply to NDJSON (Accept: application/x-ndjson), which streams every item"),
                ));
            }
        }
    }
    PageRequest::new(page, per_page).unwrap_or_else(|page_errors| {
        errors.extend(
            page_errors
                .into_iter()
                .map(|(field, invalid)| FieldError::invalid(field, invalid)),
        );
        PageRequest::default()
    })
}

/// What every HSDS list takes: the page, whether to stream NDJSON, and the
/// search words; problems are added to `errors`.
fn list_basics(
    search: Option<&str>,
    page: Option<u32>,
    per_page: Option<u32>,
    format: Option<Format>,
    errors: &mut Vec<FieldError>,
) -> (PageRequest, bool, Option<SearchText>) {
    let ndjson = format == Some(Format::Ndjson);
    let page = page_of(page, per_page, ndjson, errors);
    let words = gather(search_words(search, "search"), errors).flatten();
    (page, ndjson, words)
}

impl HsdsServiceQuery {
    fn shape(&self) -> ServiceShape {
        if self.full == Some(true) {
            ServiceShape::Full
        } else if self.minimal == Some(true) {
            ServiceShape::Minimal
        } else {
            ServiceShape::Summary
        }
    }

    fn parse(&self, caller: &Caller) -> Result<Listing, ApiError> {
        let mut errors = Vec::new();
        let (page, ndjson, search) = list_basics(
            self.search.as_deref(),
            self.page,
            self.per_page,
            self.format,
            &mut errors,
        );
        let mut nothing = false;
        let mut categories = Vec::new();
        if let Some(term) = uuid_param(
            self.taxonomy_term_id.as_deref(),
            "taxonomy_term_id",
            &mut errors,
        ) {
            match category_of_term(term) {
                Some(category) => categories.push(category),
                None => nothing = true,
            }
        }
        if let Some(taxonomy) = uuid_param(self.taxonomy_id.as_deref(), "taxonomy_id", &mut errors)
        {
            // Every service carries at least one category term.
            nothing |= taxonomy != hsds::category_taxonomy_id();
        }
        let organization = uuid_param(
            self.organization_id.as_deref(),
            "organization_id",
            &mut errors,
        )
        .map(OrganizationId);
        // Each coordinate checked on its own, to name the bad one, also
        // when the other is missing.
        let lat = self.lat.filter(|lat| {
            Coordinates::new(*lat, 0.0)
                .map_err(|invalid| errors.push(FieldError::invalid("lat", invalid)))
                .is_ok()
        });
        let lon = self.lon.filter(|lon| {
            Coordinates::new(0.0, *lon)
                .map_err(|invalid| errors.push(FieldError::invalid("lon", invalid)))
                .is_ok()
        });
        let radius = self
            .proximity
            .map(RadiusM::new)
            .transpose()
            .map_err(|invalid| errors.push(FieldError::invalid("proximity", invalid)))
            .ok()
            .flatten()
            .unwrap_or(RadiusM::DEFAULT);
        // Half a point, or a distance from no point, is no place: nothing
        // to search around.
        let near = match (lat, lon) {
            (Some(lat), Some(lon)) => Coordinates::new(lat, lon)
                .ok()
                .map(|centre| (centre, radius)),
            _ => None,
        };
        let modified_after = self.modified_after.and_then(|instant| {
            feed_bound(instant)
                .map_err(|invalid| errors.push(FieldError::invalid("modified_after", invalid)))
                .ok()
        });
        if self.postcode.is_some() {
            errors.push(FieldError::new(
                "postcode",
                "unsupported",
                "Kết Nối's listings carry no postcodes; search around a point with lat, lon and \
                 proximity",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::InvalidRequest(errors));
        }
        Ok(Listing {
            filter: ServiceFilter {
                categories,
                organization,
                near,
                modified_after,
                // HSDS's modified_after includes the instant itself: every
                // id is greater than the nil UUID.
                after_id: self.modified_after.map(|_| ServiceId(uuid::Uuid::nil())),
                search: search.map(Words::new),
                ..ServiceFilter::visible(caller.visibility())
            },
            page,
            ndjson,
            nothing,
        })
    }
}

/// Category rows by code, for taxonomy terms.
async fn category_rows(conn: &mut DbConn) -> Result<HashMap<String, CategoryRow>, ApiError> {
    Ok(reference::list_categories(conn)
        .await?
        .into_iter()
        .map(|row| (row.code.clone(), row))
        .collect())
}

/// Appends `item` and a line break to an NDJSON body.
fn ndjson_line(body: &mut Vec<u8>, item: &impl Serialize) -> Result<(), ApiError> {
    serde_json::to_writer(&mut *body, item).map_err(|error| ApiError::Internal(error.into()))?;
    body.push(b'\n');
    Ok(())
}

/// One step of an NDJSON walk: the next chunk and the walk's state, or
/// `None` at the end.
type Step<S> = Result<Option<(web::Bytes, S)>, ApiError>;

/// Serves an NDJSON stream of the chunks `next` gives. The first chunk is
/// fetched before the answer starts, so that a failure there is still a
/// problem document; a later failure can only cut the stream short (and
/// is logged).
async fn ndjson_stream<S, F, Fut>(walk: S, next: F) -> Result<HttpResponse, ApiError>
where
    S: 'static,
    F: Fn(S) -> Fut + 'static,
    Fut: std::future::Future<Output = Step<S>> + 'static,
{
    let Some((first, walk)) = next(walk).await? else {
        return Ok(HttpResponse::Ok()
            .content_type("application/x-ndjson")
            .body(""));
    };
    let next = std::rc::Rc::new(next);
    let rest = stream::try_unfold(walk, move |walk| {
        let next = next.clone();
        async move {
            next(walk).await.map_err(|error| {
                tracing::error!(%error, "an NDJSON stream stopped early");
                std::io::Error::other("the stream stopped early")
            })
        }
    });
    let body = stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body))
}

/// Where a keyset walk is: the key of the last row sent, and whether the
/// last batch was short (the end).
struct Cursor<K> {
    after: Option<K>,
    done: bool,
}

impl<K: Copy> Cursor<K> {
    fn start() -> Self {
        Self {
            after: None,
            done: false,
        }
    }

    /// Records a batch of `count` rows, of `batch` asked for, ending at
    /// `last`.
    fn advance(&mut self, count: usize, batch: i64, last: Option<K>) {
        self.done = i64::try_from(count).unwrap_or(0) < batch;
        self.after = last.or(self.after);
    }
}

/// Writes what one service gives to an NDJSON body.
type Render =
    dyn Fn(&ServiceRecord, &HashMap<String, CategoryRow>, &mut Vec<u8>) -> Result<(), ApiError>;

/// A walk through every service passing a filter, in id order.
struct ServiceWalk {
    state: web::Data<AppState>,
    caller: Caller,
    filter: ServiceFilter,
    cursor: Cursor<ServiceId>,
    categories: std::rc::Rc<HashMap<String, CategoryRow>>,
    render: std::rc::Rc<Render>,
}

async fn next_services(mut walk: ServiceWalk) -> Step<ServiceWalk> {
    if walk.cursor.done {
        return Ok(None);
    }
    let mut conn = walk.state.reader(&walk.caller).await?;
    let ids = services::ids_after(&mut conn, &walk.filter, walk.cursor.after, STREAM_BATCH).await?;
    let mut records = services::load_records(&mut conn, &ids).await?;
    drop(conn);
    let mut body = Vec::new();
    for id in &ids {
        if let Some(record) = records.remove(id) {
            (walk.render)(&record, &walk.categories, &mut body)?;
        }
    }
    walk.cursor
        .advance(ids.len(), STREAM_BATCH, ids.last().copied());
    Ok(Some((web::Bytes::from(body), walk)))
}

/// Streams every service passing `filter` as `render` writes it.
async fn stream_services(
    state: web::Data<AppState>,
    caller: Caller,
    filter: ServiceFilter,
    render: std::rc::Rc<Render>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.reader(&caller).await?;
    // Settled once for the whole walk.
    let filter = services::settled(&mut conn, &filter).await?;
    let categories = std::rc::Rc::new(category_rows(&mut conn).await?);
    drop(conn);
    let walk = ServiceWalk {
        state,
        caller,
        filter,
        cursor: Cursor::start(),
        categories,
        render,
    };
    ndjson_stream(walk, next_services).await
}

fn ndjson_empty() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body("")
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
        responses::BadRequest,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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
        responses::BodyProblems,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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
    mut query: HsdsServiceQuery,
) -> Result<HttpResponse, ApiError> {
    query.format = Format::negotiated(&request);
    let listing = query.parse(&caller)?;
    let shape = query.shape();
    let reader = caller.clone();
    let render = move |record: &ServiceRecord, categories: &HashMap<String, CategoryRow>| {
        let audience = caller.audience_for(record.row.organization_id);
        hsds::service_item(record, audience, categories, shape)
    };
    if listing.ndjson {
        if listing.nothing {
            return Ok(ndjson_empty());
        }
        let render: std::rc::Rc<Render> = std::rc::Rc::new(move |record, categories, body| {
            ndjson_line(body, &render(record, categories))
        });
        return stream_services(state, reader, listing.filter, render).await;
    }
    if listing.nothing {
        return Ok(HttpResponse::Ok().json(Page::<hsds::ServiceItem>::new(
            Vec::new(),
            0,
            listing.page,
        )));
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
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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
    let record = visible_record(&mut conn, &caller, id).await?;
    let categories = category_rows(&mut conn).await?;
    let audience = caller.audience_for(record.row.organization_id);
    etag::json_with_etag(
        StatusCode::OK,
        &hsds::service(&record, audience, &categories),
    )
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
        responses::BadRequest,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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
        responses::BodyProblems,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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
    mut query: HsdsServiceQuery,
) -> Result<HttpResponse, ApiError> {
    query.format = Format::negotiated(&request);
    let listing = query.parse(&caller)?;
    let full = query.full == Some(true);
    if listing.ndjson {
        if listing.nothing {
            return Ok(ndjson_empty());
        }
        let mut conn = state.reader(&caller).await?;
        let filter = services::settled(&mut conn, &listing.filter).await?;
        let categories = std::rc::Rc::new(category_rows(&mut conn).await?);
        drop(conn);
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
    if listing.nothing {
        return Ok(
            HttpResponse::Ok().json(Page::<hsds::ServiceAtLocation>::new(
                Vec::new(),
                0,
                listing.page,
            )),
        );
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

/// A walk through every service-at-location passing a filter, in id order.
struct PairWalk {
    state: web::Data<AppState>,
    filter: ServiceFilter,
    cursor: Cursor<ServiceAtLocationId>,
    categories: std::rc::Rc<HashMap<String, CategoryRow>>,
    caller: Caller,
    full: bool,
}

async fn next_pairs(mut walk: PairWalk) -> Step<PairWalk> {
    if walk.cursor.done {
        return Ok(None);
    }
    let mut conn = walk.state.reader(&walk.caller).await?;
    let (pairs, _) = services::search_pairs(
        &mut conn,
        &walk.filter,
        services::PairWindow::After(walk.cursor.after, STREAM_BATCH),
    )
    .await?;
    let items = render_pairs(&mut conn, &pairs, &walk.caller, &walk.categories, walk.full).await?;
    drop(conn);
    let mut body = Vec::new();
    for item in &items {
        ndjson_line(&mut body, item)?;
    }
    let last = pairs
        .last()
        .map(|(service, location)| crate::domain::ids::service_at_location_id(*service, *location));
    walk.cursor.advance(pairs.len(), STREAM_BATCH, last);
    Ok(Some((web::Bytes::from(body), walk)))
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
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
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
    let record = visible_record(&mut conn, &caller, service)
        .await
        .map_err(|error| match ApiError::from(error) {
            ApiError::NotFound(_) => ApiError::NotFound("service at location"),
            other => other,
        })?;
    let categories = category_rows(&mut conn).await?;
    let audience = caller.audience_for(record.row.organization_id);
    let found = hsds::service_at_locations(&record, audience, &categories, true)
        .into_iter()
        .find(|at| at.location_id.as_deref() == Some(&location.to_string()))
        .ok_or(ApiError::NotFound("service at location"))?;
    etag::json_with_etag(StatusCode::OK, &found)
}

/// The filters HSDS defines for organisations.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsOrganizationQuery {
    /// Search words, Vietnamese-aware (see `/hsds/services`), over names and
    /// descriptions; most relevant first.
    #[param(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Services fully nested instead of in brief (implies `full=true`).
    pub full_service: Option<bool>,
    /// Each organisation with its phones, locations and services.
    pub full: Option<bool>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    #[schema(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[schema(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
    /// Set from `Accept`, not from the query.
    #[serde(skip)]
    #[param(ignore)]
    #[schema(ignore)]
    pub format: Option<Format>,
}

/// An organisation with its locations and the services the caller may see.
async fn organization_full(
    conn: &mut DbConn,
    caller: &Caller,
    record: &organizations::OrganizationRecord,
    full_service: bool,
    categories: &HashMap<String, CategoryRow>,
) -> Result<hsds::Organization, ApiError> {
    let id = record.row.id;
    let audience = caller.audience_for(id);
    let filter = ServiceFilter {
        organization: Some(id),
        ..ServiceFilter::visible(caller.visibility())
    };
    let mut ids = Vec::new();
    loop {
        let batch = services::ids_after(conn, &filter, ids.last().copied(), 1000).await?;
        let last = batch.len() < 1000;
        ids.extend(batch);
        if last {
            break;
        }
    }
    let mut records: Vec<ServiceRecord> = services::load_records(conn, &ids)
        .await?
        .into_values()
        .collect();
    records.sort_by(|a, b| (&a.row.name, a.row.id).cmp(&(&b.row.name, b.row.id)));
    let shape = if full_service {
        ServiceShape::Full
    } else {
        ServiceShape::Summary
    };
    // Those who see the organisation's listings exactly see all its places;
    // anyone else only the places of the services they can see, as /v1
    // shows them (a shelter whose service is archived stays unlisted).
    let places = if audience == Audience::Full {
        locations::of_organization(conn, id).await?
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut places: Vec<_> = records
            .iter()
            .flat_map(|service| service.locations.iter())
            .filter(|place| seen.insert(place.row.id))
            .cloned()
            .collect();
        places.sort_by(|a, b| (&a.row.name, a.row.id).cmp(&(&b.row.name, b.row.id)));
        places
    };
    Ok(hsds::Organization {
        locations: Some(
            places
                .iter()
                .map(|place| hsds::location(place, audience, true))
                .collect(),
        ),
        services: Some(
            records
                .iter()
                .map(|service| hsds::service_item(service, audience, categories, shape))
                .collect(),
        ),
        ..hsds::organization(record)
    })
}

/// An organisation's one-to-one fields only, as HSDS lists give them.
fn organization_brief(record: &organizations::OrganizationRecord) -> hsds::Organization {
    hsds::Organization {
        phones: Vec::new(),
        ..hsds::organization(record)
    }
}

/// HSDS organisations: one-to-one fields, or with `full=true` their
/// phones, locations and services. By name, or most relevant first with
/// `search`.
#[utoipa::path(
    tag = "hsds",
    params(HsdsOrganizationQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of organisations \
            (`compiled/organization_list.json` items), or to `Accept: application/x-ndjson` every one, one \
            per line",
            content(
                (Page<hsds::Organization> = "application/json"),
                (hsds::Organization = "application/x-ndjson"),
            )),
        responses::BadRequest,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/organizations")]
pub async fn hsds_organizations(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: ApiQuery<HsdsOrganizationQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_organizations_of(state, caller, request, query.0).await
}

/// HSDS organisations, searched by `POST` (HSDS 3.1). The same search as a JSON body (the fields of the `GET` query): a client
/// locating a person sends the point here, never in a URL, which proxies and
/// caches log.
#[utoipa::path(
    tag = "hsds",
    request_body = HsdsOrganizationQuery,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of organisations \
            (`compiled/organization_list.json` items), or to `Accept: application/x-ndjson` every one, one \
            per line",
            content(
                (Page<hsds::Organization> = "application/json"),
                (hsds::Organization = "application/x-ndjson"),
            )),
        responses::BodyProblems,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[post("/organizations")]
pub async fn hsds_organizations_search(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: ApiJson<HsdsOrganizationQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_organizations_of(state, caller, request, body.parse()?)
        .await
        .map_err(ApiError::in_body)
}

async fn hsds_organizations_of(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    mut query: HsdsOrganizationQuery,
) -> Result<HttpResponse, ApiError> {
    query.format = Format::negotiated(&request);
    let mut errors = Vec::new();
    let (page, ndjson, words) = list_basics(
        query.search.as_deref(),
        query.page,
        query.per_page,
        query.format,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::InvalidRequest(errors));
    }
    // HSDS: full_service asks for fully nested organisations too.
    let full_service = query.full_service == Some(true);
    let full = query.full == Some(true) || full_service;
    let mut conn = state.reader(&caller).await?;
    let categories = category_rows(&mut conn).await?;
    let words = match words {
        Some(words) => Some(
            Words::new(words)
                .settle_for_organizations(&mut conn)
                .await?,
        ),
        None => None,
    };
    if ndjson {
        drop(conn);
        let walk = OrganizationWalk {
            state,
            words,
            cursor: Cursor::start(),
            categories: std::rc::Rc::new(categories),
            caller,
            full,
            full_service,
        };
        return ndjson_stream(walk, next_organizations).await;
    }
    let (records, total) = organizations::list(&mut conn, words.as_ref(), page).await?;
    let mut contents = Vec::with_capacity(records.len());
    for record in &records {
        contents.push(if full {
            organization_full(&mut conn, &caller, record, full_service, &categories).await?
        } else {
            organization_brief(record)
        });
    }
    Ok(HttpResponse::Ok().json(Page::new(contents, total, page)))
}

/// Organisations streamed per database round trip (each may nest many
/// services).
const ORGANIZATION_BATCH: i64 = 20;

/// A walk through every organisation (matching the words), in id order.
struct OrganizationWalk {
    state: web::Data<AppState>,
    words: Option<Words>,
    cursor: Cursor<OrganizationId>,
    categories: std::rc::Rc<HashMap<String, CategoryRow>>,
    caller: Caller,
    full: bool,
    full_service: bool,
}

async fn next_organizations(mut walk: OrganizationWalk) -> Step<OrganizationWalk> {
    if walk.cursor.done {
        return Ok(None);
    }
    let mut conn = walk.state.reader(&walk.caller).await?;
    let records = organizations::after(
        &mut conn,
        walk.words.as_ref(),
        walk.cursor.after,
        ORGANIZATION_BATCH,
    )
    .await?;
    let mut body = Vec::new();
    for record in &records {
        let item = if walk.full {
            organization_full(
                &mut conn,
                &walk.caller,
                record,
                walk.full_service,
                &walk.categories,
            )
            .await?
        } else {
            organization_brief(record)
        };
        ndjson_line(&mut body, &item)?;
    }
    let last = records.last().map(|record| record.row.id);
    walk.cursor.advance(records.len(), ORGANIZATION_BATCH, last);
    Ok(Some((web::Bytes::from(body), walk)))
}

/// Whether services are nested in full.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FullServiceQuery {
    /// Services fully nested instead of in brief.
    pub full_service: Option<bool>,
}

/// One organisation with its phones, locations and the services the caller
/// may see (`compiled/organization.json`).
#[utoipa::path(
    tag = "hsds",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id"), FullServiceQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The organisation", body = hsds::Organization,
            headers(("ETag" = String, description = "Version of this representation"))),
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/organizations/{id}")]
pub async fn hsds_organization(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: ApiQuery<FullServiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = OrganizationId(parse_uuid(&id, "id")?);
    let mut conn = state.reader(&caller).await?;
    let record = organizations::get(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    let categories = category_rows(&mut conn).await?;
    let organization = organization_full(
        &mut conn,
        &caller,
        &record,
        query.0.full_service == Some(true),
        &categories,
    )
    .await?;
    etag::json_with_etag(StatusCode::OK, &organization)
}

/// Search and pages, for taxonomies.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsTaxonomyQuery {
    /// Search words (Vietnamese-aware) over names and descriptions.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
    /// Set from `Accept`, not from the query.
    #[serde(skip)]
    #[param(ignore)]
    pub format: Option<Format>,
}

/// Search and pages, for taxonomy terms.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsTermQuery {
    /// Search words (Vietnamese-aware) over labels and descriptions, in
    /// both languages.
    #[param(
        example = "phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
    /// Set from `Accept`, not from the query.
    #[serde(skip)]
    #[param(ignore)]
    pub format: Option<Format>,
    /// Only terms of this taxonomy.
    #[param(value_type = Option<uuid::Uuid>)]
    pub taxonomy_id: Option<String>,
    /// Only terms without children: ours are a flat list, so every term.
    pub top_only: Option<bool>,
    /// Only children of this term: ours have none.
    #[param(value_type = Option<uuid::Uuid>)]
    pub parent_id: Option<String>,
}

/// A list answer: a page, or every item as NDJSON.
fn list_answer<T: Serialize>(
    items: Vec<T>,
    page: PageRequest,
    ndjson: bool,
) -> Result<HttpResponse, ApiError> {
    if ndjson {
        let mut body = Vec::new();
        for item in &items {
            ndjson_line(&mut body, item)?;
        }
        return Ok(HttpResponse::Ok()
            .content_type("application/x-ndjson")
            .body(body));
    }
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let contents: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(usize::try_from(page.limit()).unwrap_or(0))
        .collect();
    Ok(HttpResponse::Ok().json(Page::new(contents, total, page)))
}

/// HSDS taxonomies: ours is `ketnoi-categories`.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(HsdsTaxonomyQuery),
    responses(
        (status = 200, description = "One page of taxonomies, or every one as NDJSON",
            content(
                (Page<hsds::Taxonomy> = "application/json"),
                (hsds::Taxonomy = "application/x-ndjson"),
            )),
        responses::BadRequest,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/taxonomies")]
pub async fn hsds_taxonomies(
    _caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: ApiQuery<HsdsTaxonomyQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.0;
    query.format = Format::negotiated(&request);
    let mut errors = Vec::new();
    let (page, ndjson, words) = list_basics(
        query.search.as_deref(),
        query.page,
        query.per_page,
        query.format,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::InvalidRequest(errors));
    }
    let taxonomy = hsds::category_taxonomy();
    let keep = match &words {
        None => true,
        Some(words) => {
            let mut conn = state.anonymous_reader().await?;
            reference::text_matches(
                &mut conn,
                &format!("{} {}", taxonomy.name, taxonomy.description),
                words,
            )
            .await?
        }
    };
    list_answer(if keep { vec![taxonomy] } else { Vec::new() }, page, ndjson)
}

/// One taxonomy.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(("id" = uuid::Uuid, Path, description = "The taxonomy's id")),
    responses(
        (status = 200, description = "The taxonomy", body = hsds::Taxonomy),
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/taxonomies/{id}")]
pub async fn hsds_taxonomy(
    _caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<hsds::Taxonomy>, ApiError> {
    let id = parse_uuid(&id, "id")?;
    if id == hsds::category_taxonomy_id() {
        Ok(web::Json(hsds::category_taxonomy()))
    } else {
        Err(ApiError::NotFound("taxonomy"))
    }
}

/// HSDS taxonomy terms: our categories, in their order.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(HsdsTermQuery),
    responses(
        (status = 200, description = "One page of taxonomy terms, or every one as NDJSON",
            content(
                (Page<hsds::TaxonomyTerm> = "application/json"),
                (hsds::TaxonomyTerm = "application/x-ndjson"),
            )),
        responses::BadRequest,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/taxonomy_terms")]
pub async fn hsds_taxonomy_terms(
    _caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: ApiQuery<HsdsTermQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut query = query.0;
    query.format = Format::negotiated(&request);
    let mut errors = Vec::new();
    let (page, ndjson, words) = list_basics(
        query.search.as_deref(),
        query.page,
        query.per_page,
        query.format,
        &mut errors,
    );
    let taxonomy = uuid_param(query.taxonomy_id.as_deref(), "taxonomy_id", &mut errors);
    let parent = uuid_param(query.parent_id.as_deref(), "parent_id", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::InvalidRequest(errors));
    }
    let other_taxonomy = taxonomy.is_some_and(|id| id != hsds::category_taxonomy_id());
    if other_taxonomy || parent.is_some() {
        return list_answer(Vec::<hsds::TaxonomyTerm>::new(), page, ndjson);
    }
    let mut conn = state.anonymous_reader().await?;
    let rows = match &words {
        None => reference::list_categories(&mut conn).await?,
        Some(words) => reference::search_categories(&mut conn, words).await?,
    };
    list_answer(rows.iter().map(hsds::taxonomy_term).collect(), page, ndjson)
}

/// One taxonomy term.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(("id" = uuid::Uuid, Path, description = "The term's id")),
    responses(
        (status = 200, description = "The taxonomy term", body = hsds::TaxonomyTerm),
        responses::BadRequest,
        responses::NotFound,
        responses::OptionalAuthProblems,
        responses::ServerProblems,
    )
)]
#[get("/taxonomy_terms/{id}")]
pub async fn hsds_taxonomy_term(
    _caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<hsds::TaxonomyTerm>, ApiError> {
    let id = parse_uuid(&id, "id")?;
    let category = category_of_term(id).ok_or(ApiError::NotFound("taxonomy term"))?;
    let mut conn = state.anonymous_reader().await?;
    let rows = category_rows(&mut conn).await?;
    rows.get(category.as_str())
        .map(|row| web::Json(hsds::taxonomy_term(row)))
        .ok_or(ApiError::NotFound("taxonomy term"))
}
