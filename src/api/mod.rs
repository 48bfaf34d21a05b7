//! The HTTP API: route registration, the OpenAPI document built from it,
//! and one module per resource. Handlers stay small: parse, call the db
//! layer, shape the answer.

pub mod auth;
pub mod clusters;
pub mod coverage;
pub mod etag;
pub mod extract;
pub mod health;
pub mod hsds;
pub mod import;
pub mod indicators;
pub mod keys;
pub mod leaflets;
pub mod links;
pub mod locations;
pub mod matches;
pub mod organizations;
pub mod params;
pub mod problem;
pub mod public;
pub mod ratelimit;
pub mod reference;
pub mod referrals;
pub mod services;
pub mod tile_cache;
pub mod views;
pub mod webhooks;
pub mod widget;
mod writes;

use actix_web::App;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use std::sync::Arc;

use crate::db::DbConn;
use crate::db::routing::Pools;
use crate::metrics::Metrics;
use problem::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Pools>,
    pub metrics: Arc<Metrics>,
    /// What `GET /metrics` requires as its bearer token; `None`: it is off.
    pub metrics_token: Option<secrecy::SecretString>,
    /// Failed key attempts per client, to slow down guessing.
    pub failed_auth: Arc<auth::FailedAttempts>,
    /// How a client's address is found (the peer, or a trusted proxy's
    /// header), for the per-client limits.
    pub clients: ratelimit::ClientAddress,
    /// The map widget's base map.
    pub widget: widget::WidgetSettings,
    /// Where the API's own links point (`KETNOI_PUBLIC_URL`).
    pub public_url: Option<links::PublicUrl>,
    /// Vector tiles drawn since the map last changed.
    pub tiles: Arc<tile_cache::TileCache>,
}

impl AppState {
    /// A primary connection: for writes, key checks, and everything that
    /// must see the latest write.
    pub async fn primary(&self) -> Result<DbConn, ApiError> {
        Ok(self.db.primary().await?)
    }

    /// A connection for a read by `caller`. Callers who write (agencies,
    /// admins) read from the primary, so that what they just wrote (and
    /// its ETag) is what they read next; everyone else reads from a
    /// replica when one serves.
    pub async fn reader(&self, caller: &auth::Caller) -> Result<DbConn, ApiError> {
        if caller.writes() {
            self.primary().await
        } else {
            self.anonymous_reader().await
        }
    }

    /// A connection for a read that is the same for everyone (reference
    /// data): a replica when one serves.
    pub async fn anonymous_reader(&self) -> Result<DbConn, ApiError> {
        Ok(self.db.read().await?)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Kết Nối",
        description = "Referral-network service directory for people returning from human \
            trafficking in Vietnam: providers, their locations, service areas and eligibility \
            rules.\n\nEvery error is an RFC 9457 `application/problem+json` document; see the \
            `Problem` schema.",
        license(name = "MIT"),
    ),
    tags(
        (name = "matcher", description = "Nearest eligible services for one person, need by need"),
        (name = "directory", description = "Organisations, services and locations. Without a key \
            you read as the public: active listings, confidential locations redacted"),
        (name = "writes", description = "Agencies keep their own listings; admins everything. \
            Updates need `If-Match` with the `ETag` read; every write is audited"),
        (name = "keys", description = "API keys and roles, for admins"),
        (name = "referrals", description = "Referrals (chuyển tuyến) from match to completion, \
            without the person's data: the hand-off travels sealed to the receiving \
            organisation's key; signed webhooks announce each change"),
        (name = "reference", description = "Categories, provinces, and wards with their geography"),
        (name = "coverage", description = "Where eligible help is out of reach, ward by ward"),
        (name = "public", description = "The public map, for widgets on other sites: GeoJSON and \
            vector tiles, the same for every caller, cacheable, open to any origin (CORS), \
            limited per client. Confidential locations only at their rounded point, never their \
            address"),
        (name = "hsds", description = "The directory in Open Referral HSDS 3.0, with the Kết Nối \
            profile (`/hsds/profile`). Same keys and role rules as `/v1`"),
        (name = "operations", description = "Health and readiness probes, and metrics"),
    ),
    components(schemas(problem::Problem, problem::FieldError)),
    modifiers(&BearerKeys)
)]
pub struct ApiDoc;

/// Declares the `api_key` security scheme the operations refer to.
struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`kn_…`), from `ketnoi keys create` or `POST /v1/keys`: \
                         `Authorization: Bearer <key>`. Roles: admin, agency (one \
                         organisation), caseworker (optionally for one organisation), steward \
                         (one province's referral indicators).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator's metrics token (`KETNOI_METRICS_TOKEN`), for \
                         Prometheus: `Authorization: Bearer <token>`. Not an API key.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Registers every route; the OpenAPI paths come from the same calls.
pub fn configure(config: &mut ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        // Before `/v1`, whose scope would otherwise take these paths.
        .service(
            utoipa_actix_web::scope("/v1/public")
                .service(public::services_geojson)
                .service(clusters::clusters_geojson)
                .service(public::tile)
                .service(coverage::coverage_tile),
        )
        .service(
            utoipa_actix_web::scope("/v1")
                .service(reference::list_categories)
                .service(reference::list_provinces)
                .service(reference::get_province)
                .service(reference::list_wards)
                .service(reference::search_wards)
                .map(|scope| scope.service(services::search_other_methods("/wards/search")))
                .service(reference::get_ward)
                .service(leaflets::ward_leaflet)
                .service(coverage::coverage_json)
                .service(coverage::coverage_csv)
                .service(coverage::coverage_geojson)
                .service(organizations::list_organizations)
                .service(organizations::get_organization)
                .service(organizations::create_organization)
                .service(organizations::replace_organization)
                .service(services::list_services)
                .service(services::search_services)
                .map(|scope| scope.service(services::search_other_methods("/services/search")))
                .service(services::get_service)
                .service(services::create_service)
                .service(services::replace_service)
                .service(services::patch_service)
                .service(services::archive_service)
                .service(services::restore_service)
                .service(services::set_capacity)
                .service(services::verify_service)
                .service(services::service_history)
                .service(locations::get_location)
                .service(locations::create_location)
                .service(locations::replace_location)
                .service(locations::patch_location)
                .service(locations::archive_location)
                .service(locations::restore_location)
                .service(keys::create_key)
                .service(keys::list_keys)
                .service(keys::change_key)
                .service(keys::revoke_key)
                .service(import::import_services)
                .service(matches::create_match)
                .service(referrals::get_endpoint)
                .service(referrals::put_endpoint)
                .service(referrals::create_referral)
                .service(referrals::list_referrals)
                .service(referrals::get_referral)
                .service(referrals::change_status)
                .service(indicators::indicators_json)
                .service(indicators::indicators_csv)
                .service(webhooks::list_deliveries)
                .service(webhooks::get_delivery)
                .service(webhooks::replay_delivery),
        )
        .service(
            utoipa_actix_web::scope("/hsds")
                .wrap(actix_web::middleware::from_fn(hsds::vary_accept))
                .service(hsds::hsds_meta)
                .service(hsds::hsds_profile)
                .service(hsds::hsds_profile_schema)
                .service(hsds::hsds_services)
                .service(hsds::hsds_services_search)
                .service(hsds::hsds_service)
                .service(hsds::hsds_service_at_locations)
                .service(hsds::hsds_service_at_locations_search)
                .service(hsds::hsds_service_at_location)
                .service(hsds::hsds_organizations)
                .service(hsds::hsds_organizations_search)
                .service(hsds::hsds_organization)
                .service(hsds::hsds_taxonomies)
                .service(hsds::hsds_taxonomy)
                .service(hsds::hsds_taxonomy_terms)
                .service(hsds::hsds_taxonomy_term),
        );
}

/// The OpenAPI document of the registered routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts();
    with_conditional_reads(api)
}

/// Documents the `304 Not Modified` that every `GET` answering JSON gives
/// to a current `If-None-Match` (`etag::revalidate`, a middleware, so the
/// operations do not declare it themselves).
pub fn with_conditional_reads(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::ResponseBuilder;
    use utoipa::openapi::header::HeaderBuilder;
    for (path, item) in api.paths.paths.iter_mut() {
        if matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
            continue;
        }
        let Some(get) = item.get.as_mut() else {
            continue;
        };
        get.responses
            .responses
            .entry("304".to_owned())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(
                        "Not modified: the `ETag` sent in `If-None-Match` is still current; \
                         no body",
                    )
                    .header("ETag", HeaderBuilder::new().build())
                    .header("Cache-Control", HeaderBuilder::new().build())
                    .build()
                    .into()
            });
    }
    api
}

/// The document as committed in openapi/openapi.json: pretty, keys sorted,
/// so that diffs are readable.
pub fn openapi_json() -> anyhow::Result<String> {
    let value = serde_json::to_value(openapi())?;
    Ok(serde_json::to_string_pretty(&sort_keys(value))? + "\n")
}

fn sort_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sort_keys(value)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}
