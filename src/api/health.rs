//! Probes for orchestrators (the process is up; the database answers) and
//! the metrics for Prometheus.

use actix_web::{HttpResponse, get, web};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::problem::{ApiError, Problem, responses};
use crate::db::routing::ReplicaStatus;

/// Probe result.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// With read replicas configured (`DATABASE_READ_URLS`), what is known
    /// of each: reads go only to those `up`, else to the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<ReplicaStatus>>,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        replicas: None,
    })
}

/// Readiness: the primary database answers a query. Read replicas do not
/// decide readiness (without them reads go to the primary); their state is
/// reported.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        responses::ServerProblems,
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.primary().await?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map_err(|error| ApiError::Unavailable(error.into()))?;
    let replicas = state.db.replica_statuses();
    Ok(HttpResponse::Ok().json(Health {
        status: "ready",
        replicas: (!replicas.is_empty()).then_some(replicas),
    }))
}

/// Metrics in Prometheus' text format: requests and latency by route
/// template and status, match needs by category, database pools, reads by
/// pool, and each read replica's lag and whether it takes reads. No labels
/// carry request content. Needs the bearer token set in
/// `KETNOI_METRICS_TOKEN` (not an API key); without one configured, the
/// endpoint is off and no token is right (401), so that a caller cannot
/// tell whether metrics are on without the token.
#[utoipa::path(
    tag = "operations",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "Missing or wrong metrics token", body = Problem,
            content_type = "application/problem+json"),
        responses::ServerProblems,
    )
)]
#[get("/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    const NEEDED: &str =
        "metrics need the token set in KETNOI_METRICS_TOKEN: Authorization: Bearer <token>";
    let Some(token) = &state.metrics_token else {
        return Err(ApiError::Unauthorized(NEEDED));
    };
    let presented = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(super::auth::bearer_token)
        .unwrap_or_default();
    let expected = token.expose_secret().as_bytes();
    if !bool::from(presented.as_bytes().ct_eq(expected)) {
        return Err(ApiError::Unauthorized(NEEDED));
    }
    state.db.refresh_pool_gauges();
    let body = state.metrics.render().map_err(ApiError::Internal)?;
    Ok(HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(body))
}
