//! The HTTP API: route registration, the OpenAPI document built from it,
//! and one module per resource. Handlers stay small: parse, call the db
//! layer, shape the answer.

pub mod extract;
pub mod health;
pub mod matches;
pub mod organizations;
pub mod problem;
pub mod reference;
pub mod services;
pub mod views;

use actix_web::App;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::{DbConn, Pool};
use problem::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
}

impl AppState {
    pub async fn conn(&self) -> Result<DbConn, ApiError> {
        Ok(self.pool.get().await?)
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
        (name = "directory", description = "Organisations and services, public read-only view"),
        (name = "reference", description = "Categories and provinces"),
        (name = "operations", description = "Health and readiness probes"),
    ),
    components(schemas(problem::Problem, problem::FieldError))
)]
pub struct ApiDoc;

/// Registers every route; the OpenAPI paths come from the same calls.
pub fn configure(config: &mut ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(
            utoipa_actix_web::scope("/v1")
                .service(reference::list_categories)
                .service(reference::list_provinces)
                .service(organizations::list_organizations)
                .service(organizations::get_organization)
                .service(services::list_services)
                .service(services::get_service)
                .service(matches::create_match),
        );
}

/// The OpenAPI document of the registered routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts();
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
