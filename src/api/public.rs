//! The public map API (`/v1/public/...`): GeoJSON of the services in a box
//! and Mapbox Vector Tiles, for map widgets on other sites. Read-only, the
//! same for every caller, cacheable (`ETag`, `Cache-Control`, `304`), open
//! to any origin (CORS) and rate-limited per client (see `startup`).
//!
//! A confidential location (a shelter) appears only at its public point,
//! snapped to 0.1° (about 11 km), with `approximate: true`, its name and
//! province, and no address, ward, description or phones of its own; the
//! queries read a view that does not even hold the exact point.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::etag;
use super::extract::ApiQuery;
use super::params::FieldErrors;
use super::problem::{ApiError, FieldError, Problem, responses};
use super::tile_cache::TileRequest;
use super::views::LocationView;
use crate::db::models::public_map::{self, Layers, MapFilter};
use crate::db::models::reference;
use crate::db::models::services::{ServiceRecord, load_records};
use crate::domain::access::Audience;
use crate::domain::category::Category;
use crate::domain::ids::{LocationId, ServiceId};
use crate::domain::map::{Bbox, Lang, Tile};
use crate::domain::province::ProvinceCode;

/// How long a browser or proxy may reuse a map answer without asking
/// again; after that it revalidates with `If-None-Match`. Five minutes: an
/// agency's change shows on public maps within that.
pub(super) const CACHE_CONTROL: &str = "public, max-age=300";

/// Features per GeoJSON page, unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 500;
/// The most features one GeoJSON page holds; more come with `next`.
pub const MAX_LIMIT: u32 = 1000;

/// What the map shows.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MapQuery {
    /// The box shown, `minLon,minLat,maxLon,maxLat` (WGS84, RFC 7946
    /// order); default the whole world. Services are placed at their
    /// public point: a confidential location appears in the box of its
    /// rounded point, not of its exact one.
    #[param(value_type = Option<super::params::Bbox>, inline)]
    pub bbox: Option<String>,
    /// One category code (see `GET /v1/categories`).
    #[param(value_type = Option<super::params::OneCategory>, inline)]
    pub category: Option<String>,
    /// One province code: services at locations in that province.
    #[param(value_type = Option<super::params::Province>, inline)]
    pub province: Option<String>,
    /// The language of names and labels; English falls back to Vietnamese
    /// where a name has no English form.
    #[param(inline)]
    pub lang: Option<Lang>,
    /// Features per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 500)]
    pub limit: Option<u32>,
    /// Continue after this feature id (`service_id/location_id`), as given
    /// in the previous page's `next`.
    #[param(
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
}

/// The vector tile's options.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TileQuery {
    /// The language of names.
    #[param(inline)]
    pub lang: Option<Lang>,
    /// Only services of this category in the `services` layer.
    #[param(value_type = Option<super::params::OneCategory>, inline)]
    pub category: Option<String>,
    /// The layers wanted, comma-separated, among `services`, `provinces`
    /// and `wards` (which brings `wards` and `ward_labels`); default
    /// `services` and `provinces`. A base map of boundaries only asks for
    /// `provinces,wards`.
    #[param(value_type = Option<super::params::Layers>, inline)]
    pub layers: Option<String>,
}

fn parse_layers(value: Option<&str>) -> Result<Layers, FieldError> {
    let Some(value) = value else {
        return Ok(Layers {
            services: true,
            provinces: true,
            wards: false,
        });
    };
    let mut layers = Layers {
        services: false,
        provinces: false,
        wards: false,
    };
    for name in value.split(',') {
        match name {
            "services" => layers.services = true,
            "provinces" => layers.provinces = true,
            "wards" => layers.wards = true,
            _ => {
                return Err(FieldError::new(
                    "layers",
                    "one_of",
                    "expected layer names among: services, provinces, wards",
                ));
            }
        }
    }
    Ok(layers)
}

/// The tile a path names, its problems collected in `errors`, and whether
/// it lies off its zoom's grid. A zoom beyond the document's range is a bad
/// request; a column or row beyond its zoom's grid names a tile that does
/// not exist, a 404 (the document cannot state a bound that depends on
/// `z`).
pub(super) fn tile_of_path(
    (z, x, y): (String, String, String),
    errors: &mut FieldErrors,
) -> (Option<Tile>, bool) {
    let mut number = |value: &str, field| {
        tile_number(value, field)
            .map_err(|error| errors.push(error))
            .ok()
    };
    let (z, x, y) = (number(&z, "z"), number(&x, "x"), number(&y, "y"));
    let mut off_grid = false;
    let found = match (z, x, y) {
        (Some(z), Some(x), Some(y)) => Tile::new(z, x, y)
            .map_err(|(field, invalid)| {
                if field == "z" {
                    errors.push(FieldError::invalid(field, invalid));
                } else {
                    off_grid = true;
                }
            })
            .ok(),
        _ => None,
    };
    (found, off_grid)
}

/// A tile coordinate from the path: plain decimal digits, no sign or
/// leading zero, so that one tile has one URL (and one cache entry).
fn tile_number(value: &str, field: &'static str) -> Result<u32, FieldError> {
    let plain = !value.is_empty()
        && value.len() <= 10
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    plain
        .then(|| value.parse::<u32>().ok())
        .flatten()
        .ok_or_else(|| {
            FieldError::new(
                field,
                "format",
                format!("{field} must be a whole number written plainly (0, 1, 2 …)"),
            )
        })
}

/// An RFC 7946 FeatureCollection: one feature per active service at one
/// of its locations.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeatureCollection {
    #[schema(value_type = String, example = "FeatureCollection")]
    r#type: &'static str,
    features: Vec<Feature>,
    /// The next page (path and query), or null on the last page. A
    /// foreign member, as RFC 7946 allows; also sent as a `Link` header.
    #[schema(example = "/v1/public/services.geojson?bbox=103.5,22,104.5,23&after=…")]
    next: Option<String>,
}

/// A Mapbox Vector Tile (protocol buffers, version 2.1).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct VectorTile(
    #[expect(
        dead_code,
        reason = "only describes the response in the OpenAPI document"
    )]
    Vec<u8>,
);

/// One service at one location.
#[derive(Debug, Serialize, ToSchema)]
pub struct Feature {
    #[schema(value_type = String, example = "Feature")]
    r#type: &'static str,
    /// `service_id/location_id`.
    id: String,
    geometry: PointGeometry,
    properties: MapProperties,
}

/// A GeoJSON point.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointGeometry {
    #[schema(value_type = String, example = "Point")]
    r#type: &'static str,
    /// Longitude, latitude (WGS84); a confidential location's public point,
    /// rounded to 0.1°.
    #[schema(example = json!([103.97, 22.4856]))]
    coordinates: [f64; 2],
}

/// What a popup shows, in the language asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct MapProperties {
    service_id: ServiceId,
    location_id: LocationId,
    name: String,
    description: Option<String>,
    organization: String,
    categories: Vec<CategoryLabel>,
    location_name: String,
    /// Null for a confidential location.
    address: Option<String>,
    province: ProvinceLabel,
    /// True for a confidential location (a shelter): the point is only its
    /// exact point snapped to the 0.1° grid (about 11 km), the address is
    /// given by phone.
    approximate: bool,
    in_person: bool,
    remote: bool,
    /// The service's phones, then the location's (none for a confidential
    /// location).
    phones: Vec<MapPhone>,
    email: Option<String>,
    url: Option<String>,
    /// Weekly opening hours, in Vietnam's time (UTC+7). Empty: not listed.
    opening_hours: Vec<OpeningHours>,
    is_free: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryLabel {
    #[schema(example = "legal_aid")]
    code: &'static str,
    #[schema(example = "Trợ giúp pháp lý")]
    label: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProvinceLabel {
    #[schema(example = "15")]
    code: String,
    #[schema(example = "Lào Cai")]
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MapPhone {
    #[schema(example = "0214 3840 111")]
    number: String,
    /// HSDS phone type (`voice`, `fax`, `text`, `cell`, `video`, `pager`,
    /// `textphone`).
    #[schema(example = "voice")]
    r#type: &'static str,
    description: Option<String>,
}

/// Open on these days between these times (closing time excluded); no
/// times: all day.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpeningHours {
    /// HSDS day codes, `MO` to `SU`.
    #[schema(example = json!(["MO", "TU", "WE", "TH", "FR"]))]
    days: Vec<&'static str>,
    #[schema(example = "07:30")]
    opens: Option<String>,
    #[schema(example = "17:00")]
    closes: Option<String>,
    /// First day these hours apply (inclusive).
    valid_from: Option<chrono::NaiveDate>,
    /// Last day these hours apply (inclusive).
    valid_to: Option<chrono::NaiveDate>,
    description: Option<String>,
}

/// A query's parts, parsed.
struct MapRequest {
    filter: MapFilter,
    lang: Lang,
    limit: u32,
    after: Option<(ServiceId, LocationId)>,
}

impl MapQuery {
    fn parse(self) -> Result<MapRequest, ApiError> {
        let mut errors = FieldErrors::default();
        let bbox = errors
            .parse("bbox", self.bbox.as_deref(), Bbox::parse)
            .unwrap_or_else(Bbox::world);
        let category = errors.parse("category", trimmed(&self.category), Category::parse);
        let province = errors.parse("province", trimmed(&self.province), ProvinceCode::parse);
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                "range",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = self.after.as_deref().and_then(|value| {
            let pair = value.split_once('/').and_then(|(service, location)| {
                Some((
                    ServiceId(uuid::Uuid::parse_str(service).ok()?),
                    LocationId(uuid::Uuid::parse_str(location).ok()?),
                ))
            });
            if pair.is_none() {
                errors.push(FieldError::new(
                    "after",
                    "format",
                    "expected a feature id, `service_id/location_id`",
                ));
            }
            pair
        });
        errors.finish(MapRequest {
            filter: MapFilter {
                bbox,
                category,
                province,
            },
            lang: self.lang.unwrap_or_default(),
            limit,
            after,
        })
    }
}

/// A parameter without the spaces around it.
fn trimmed(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim)
}

/// Services on a map, as GeoJSON.
///
/// Active services at their locations in a box, one feature per service at
/// a location, with what a popup needs in the language asked. Paged: at
/// most `limit` features, and `next` (also a `Link: rel="next"` header)
/// while more remain. Confidential locations appear only at their rounded
/// public point, with `approximate: true` and no address. Cacheable:
/// `ETag`, `Cache-Control`, and `304` to `If-None-Match`. Open to any
/// origin (CORS); without a key, limited per client (`429`).
#[utoipa::path(
    tag = "public",
    params(MapQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The services in the box", body = FeatureCollection,
            content_type = "application/geo+json",
            headers(("ETag" = String), ("Cache-Control" = String), ("Link" = String))),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`",
            headers(("ETag" = String), ("Cache-Control" = String))),
        responses::ListProblems,
    )
)]
#[get("/services.geojson")]
pub async fn services_geojson(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    request: HttpRequest,
    query: ApiQuery<MapQuery>,
) -> Result<HttpResponse, ApiError> {
    let asked = query.0.parse()?;
    let mut conn = state.anonymous_reader().await?;
    let mut pairs = public_map::points(
        &mut conn,
        &asked.filter,
        asked.after,
        i64::from(asked.limit) + 1,
    )
    .await?;
    let more = pairs.len() > asked.limit as usize;
    pairs.truncate(asked.limit as usize);

    let mut service_ids: Vec<ServiceId> = pairs.iter().map(|(service, _)| *service).collect();
    service_ids.dedup();
    let records = load_records(&conn, &service_ids).await?;
    let categories = reference::list_categories(&mut conn).await?;
    let provinces = reference::list_provinces(&mut conn).await?;
    let labels = Labels {
        lang: asked.lang,
        categories: categories
            .into_iter()
            .map(|row| {
                let label = asked
                    .lang
                    .pick(&row.label_vi, Some(&row.label_en))
                    .to_owned();
                (row.code, label)
            })
            .collect(),
        provinces: provinces
            .into_iter()
            .map(|row| {
                let name = asked.lang.pick(&row.name, Some(&row.name_en)).to_owned();
                (row.code, name)
            })
            .collect(),
    };
    let features = pairs
        .iter()
        .filter_map(|(service, location)| {
            // A service archived between the two queries is left out.
            feature(records.get(service)?, *location, &labels)
        })
        .collect();
    let next = match (more, pairs.last()) {
        (true, Some((service, location))) => Some(next_page(&request, *service, *location)),
        _ => None,
    };
    let collection = FeatureCollection {
        r#type: "FeatureCollection",
        features,
        next,
    };
    let body = serde_json::to_vec(&collection).map_err(|error| ApiError::Internal(error.into()))?;
    let mut response = etag::cacheable("application/geo+json", CACHE_CONTROL, body);
    if let Some(next) = &collection.next {
        let link = format!("<{next}>; rel=\"next\"");
        response
            .headers_mut()
            .insert(actix_web::http::header::LINK, etag::header_value(&link)?);
    }
    Ok(response)
}

/// Labels in the language asked.
struct Labels {
    lang: Lang,
    categories: HashMap<String, String>,
    provinces: HashMap<String, String>,
}

fn feature(record: &ServiceRecord, location: LocationId, labels: &Labels) -> Option<Feature> {
    let lang = labels.lang;
    let place = record
        .locations
        .iter()
        .find(|candidate| candidate.row.id == location)?;
    // What the public sees of it, as the access rule decides.
    let public = LocationView::new(place.clone(), Audience::Public);
    let row = &record.row;
    let phones = record
        .phones
        .iter()
        .chain(if public.redacted {
            &[][..]
        } else {
            &place.phones[..]
        })
        .map(|phone| MapPhone {
            number: phone.number.clone(),
            r#type: phone.phone_type.as_str(),
            description: pick_optional(lang, &phone.description, &phone.description_en),
        })
        .collect();
    let opening_hours = record
        .schedules
        .iter()
        .map(|schedule| OpeningHours {
            days: schedule
                .hours
                .byday
                .iter()
                .map(|day| day.as_str())
                .collect(),
            opens: schedule
                .hours
                .opens_at
                .map(|t| t.format("%H:%M").to_string()),
            closes: schedule
                .hours
                .closes_at
                .map(|t| t.format("%H:%M").to_string()),
            valid_from: schedule.hours.valid_from,
            valid_to: schedule.hours.valid_to,
            description: pick_optional(lang, &schedule.description, &schedule.description_en),
        })
        .collect();
    let organization = &record.organization.row;
    Some(Feature {
        r#type: "Feature",
        id: format!("{}/{}", row.id, location),
        geometry: PointGeometry {
            r#type: "Point",
            coordinates: [public.longitude, public.latitude],
        },
        properties: MapProperties {
            service_id: row.id,
            location_id: location,
            name: lang.pick(&row.name, row.name_en.as_deref()).to_owned(),
            description: Some(
                lang.pick(&row.description, row.description_en.as_deref())
                    .to_owned(),
            )
            .filter(|text| !text.trim().is_empty()),
            organization: lang
                .pick(&organization.name, organization.name_en.as_deref())
                .to_owned(),
            categories: record
                .categories
                .iter()
                .map(|category| CategoryLabel {
                    code: category.as_str(),
                    label: labels
                        .categories
                        .get(category.as_str())
                        .cloned()
                        .unwrap_or_else(|| category.as_str().to_owned()),
                })
                .collect(),
            location_name: lang
                .pick(&public.name, public.name_en.as_deref())
                .to_owned(),
            address: public.address.clone(),
            province: ProvinceLabel {
                name: labels
                    .provinces
                    .get(&public.province_code)
                    .cloned()
                    .unwrap_or_else(|| public.province_name.clone()),
                code: public.province_code.clone(),
            },
            approximate: public.redacted,
            in_person: row.delivery_in_person,
            remote: row.delivery_remote,
            phones,
            email: row.email.clone(),
            url: row.url.clone(),
            opening_hours,
            is_free: row.is_free,
        },
    })
}

fn pick_optional(lang: Lang, vi: &Option<String>, en: &Option<String>) -> Option<String> {
    vi.as_deref()
        .map(|vi| lang.pick(vi, en.as_deref()).to_owned())
}

/// This request's path and query, with `after` set to the last feature.
fn next_page(request: &HttpRequest, service: ServiceId, location: LocationId) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(request.query_string().as_bytes()) {
        if key != "after" {
            query.append_pair(&key, &value);
        }
    }
    query.append_pair("after", &format!("{service}/{location}"));
    format!("{}?{}", request.path(), query.finish())
}

/// A Mapbox Vector Tile of the public map.
///
/// Layers: `services` (from zoom 12: a point per active service at a
/// location, at its public point: a confidential location only at its
/// point snapped to the 0.1° grid; properties `service_id`, `location_id`,
/// `name`, `organization`, `categories` (codes, comma-separated),
/// `approximate`), or below zoom 12, for the same `layers=services`,
/// `clusters` (the services at a location counted per cell of a sixteenth
/// of the tile, over the whole directory: `count`, and one property per
/// need category code with its count; placed at the mean of the public
/// points counted, so never at a confidential location's exact point),
/// `provinces` (boundaries, simplified to the tile's
/// pixel; `code`, `name`) and, when asked for, from zoom 7, `wards` (ward
/// and commune boundaries, likewise; `code`, `name`) with `ward_labels` (a
/// point per ward at its reference point; `code`, `name`). XYZ numbering (`y` from the north), zoom 0 to
/// 22, extent 4096. A tile with nothing in it is a `204`. Cacheable: `ETag`, `Cache-Control`, and `304`
/// to `If-None-Match`. Open to any origin (CORS); without a key, limited
/// per client (`429`).
#[utoipa::path(
    tag = "public",
    params(
        ("z" = u32, Path, description = "Zoom, 0 to 22", minimum = 0, maximum = 22),
        ("x" = u32, Path, description = "Column from the west; a column at or beyond 2^z is a 404"),
        ("y" = u32, Path, description = "Row from the north; a row at or beyond 2^z is a 404"),
        TileQuery,
    ),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The tile", body = VectorTile,
            content_type = "application/vnd.mapbox-vector-tile",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 204, description = "Nothing in this tile",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`",
            headers(("ETag" = String), ("Cache-Control" = String))),
        responses::ListProblems,
        (status = 404, description = "No such tile: `x` or `y` beyond its zoom's grid",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/tiles/{z}/{x}/{y}.mvt")]
pub async fn tile(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    path: web::Path<(String, String, String)>,
    query: ApiQuery<TileQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let (tile, off_grid) = tile_of_path(path.into_inner(), &mut errors);
    let category = errors.parse("category", trimmed(&query.0.category), Category::parse);
    let layers = parse_layers(query.0.layers.as_deref())
        .map_err(|error| errors.push(error))
        .ok();
    if off_grid && errors.is_empty() {
        return Err(ApiError::NotFound("tile"));
    }
    errors.finish(())?;
    // Each part missing here was reported above, or was off the grid.
    let (Some(tile), Some(layers)) = (tile, layers) else {
        return Err(ApiError::NotFound("tile"));
    };
    let request = TileRequest {
        tile,
        layers,
        lang: query.0.lang.unwrap_or_default(),
        category,
    };
    // A connection only if the tile is drawn: a kept one is answered
    // without the database.
    let drawn = state
        .tiles
        .get(
            || state.db.read(),
            request,
            async |conn| public_map::tile(conn, tile, layers, request.lang, category).await,
        )
        .await?;
    Ok(etag::cacheable_tagged(
        "application/vnd.mapbox-vector-tile",
        CACHE_CONTROL,
        drawn.body.clone(),
        drawn.etag.clone(),
    ))
}
