//! Builds the HTTP server from a listener and the database pools. The binary and the
//! tests both start the server through here, so tests exercise the real
//! stack on a real port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::dev::Service;
use actix_web::dev::{ResourceDef, Server, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, ResponseError, web};
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::problem::{ApiError, PROBLEM_JSON};
use crate::api::ratelimit::{self, ClientAddress, PublicRateLimit};
use crate::api::widget::{self, WidgetSettings};
use crate::api::{self, ApiDoc, AppState, extract};
use crate::db::routing::Pools;
use crate::metrics::Metrics;
use crate::telemetry::PrivateRootSpan;

use crate::api::problem::MAX_URI_BYTES;

/// Server tuning that operators may change.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Worker threads; `None` means one per CPU.
    pub workers: Option<usize>,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_s: u64,
    /// Failed key attempts a client address may make per minute before it
    /// is refused (429) for the rest of the minute.
    pub auth_failures_per_minute: u32,
    /// How often read replicas are checked (state and lag).
    pub replica_check_interval: std::time::Duration,
    /// The bearer token `GET /metrics` requires; `None`: it is off (401 to all).
    pub metrics_token: Option<secrecy::SecretString>,
    /// Requests per second a client without a key may make on average
    /// (0: no limit), and at once.
    pub public_rate_per_second: u32,
    pub public_rate_burst: u32,
    /// The header a trusted proxy puts the client's address in.
    pub client_ip_header: Option<header::HeaderName>,
    pub widget: WidgetSettings,
    /// Where the API's own links point; `None`: this server's own address.
    pub public_url: Option<crate::api::links::PublicUrl>,
    /// Bytes of vector tiles kept in memory; 0 keeps none.
    pub tile_cache_bytes: u64,
    /// How often the tile cache reads the map's version even without an
    /// announcement ([`crate::api::tile_cache::CHECK_INTERVAL`]). Not a
    /// flag: tests lengthen it, to see that a change reaches the kept tiles
    /// by its announcement.
    pub tile_version_check_interval: std::time::Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            workers: None,
            shutdown_timeout_s: 30,
            auth_failures_per_minute: 20,
            replica_check_interval: std::time::Duration::from_secs(1),
            metrics_token: None,
            public_rate_per_second: 20,
            public_rate_burst: 200,
            client_ip_header: None,
            widget: WidgetSettings::default(),
            public_url: None,
            tile_cache_bytes: 64 * 1024 * 1024,
            tile_version_check_interval: crate::api::tile_cache::CHECK_INTERVAL,
        }
    }
}

/// Turns any error response that is not yet a problem document (actix's own
/// 404/405/413…) into one, so every error has the same shape.
fn ensure_problem<B>(response: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value == PROBLEM_JSON);
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let refused_preflight = response.request().method() == Method::OPTIONS
        && response
            .request()
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let error = match status.as_u16() {
        400 if refused_preflight => {
            ApiError::InvalidRequest(vec![crate::api::problem::FieldError::new(
                "Origin",
                "cors",
                "other sites may only GET or HEAD the public paths (/v1/public/…, /v1/categories, \
             /v1/provinces, /widget/…), without credentials",
            )])
        }
        404 => ApiError::NoRoute,
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::PayloadTooLarge,
        _ => ApiError::Status(status),
    };
    let (request, _) = response.into_parts();
    let response = ServiceResponse::new(request, error.error_response()).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(response))
}

/// The registered paths and their methods, read from the OpenAPI document
/// (itself built from the route registration), so that a known path asked
/// with the wrong method is a 405 naming the allowed ones, not a 404.
struct KnownRoutes(Vec<(ResourceDef, Vec<&'static str>)>);

impl KnownRoutes {
    fn from_openapi(openapi: &utoipa::openapi::OpenApi) -> Self {
        let routes = openapi
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("HEAD", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self(routes)
    }

    fn allowed(&self, path: &str) -> Option<&[&'static str]> {
        self.0
            .iter()
            .find(|(pattern, _)| pattern.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }
}

async fn no_route(
    request: HttpRequest,
    routes: web::Data<KnownRoutes>,
) -> Result<HttpResponse, ApiError> {
    match routes.allowed(request.path()) {
        Some(methods) => {
            let mut response = ApiError::MethodNotAllowed.error_response();
            if let Ok(allow) = header::HeaderValue::from_str(&methods.join(", ")) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            Ok(response)
        }
        None => Err(ApiError::NoRoute),
    }
}

/// `/docs` without the slash would break Swagger UI's relative links.
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Counts the request in the metrics, logs one line for it (inside the
/// request's span, so with its id, method and route; never the path, query
/// or body) and sends the request id back as `X-Request-Id`.
fn observe<S, B>(
    request: ServiceRequest,
    service: &S,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| header::HeaderValue::from_str(&id.to_string()).ok());
    let method = request.method().clone();
    let started = Instant::now();
    let response = service.call(request);
    async move {
        let mut response = response.await?;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let route = response.request().match_pattern();
        metrics.observe_request(&method, route.as_deref(), status, elapsed);
        tracing::info!(
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request served"
        );
        if let Some(id) = request_id {
            response
                .headers_mut()
                .insert(header::HeaderName::from_static("x-request-id"), id);
        }
        Ok(response)
    }
}

/// The Content-Security-Policy of everything but `/docs`: the API serves
/// data, never a page, so a response opened in a browser may load and run
/// nothing, nor be framed.
const API_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// Swagger UI under `/docs`: its own scripts, styles and images from this
/// origin (styles set inline by its scripts, images as data: URIs), and
/// `/openapi.json` fetched from here.
const DOCS_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Headers on every response, unless a handler set them: no MIME sniffing,
/// no referrer, and a Content-Security-Policy that allows nothing except
/// what Swagger UI needs under `/docs`.
fn secure<S, B>(
    request: ServiceRequest,
    service: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let policy = if request.path().starts_with("/docs") {
        DOCS_POLICY
    } else {
        API_POLICY
    };
    let response = service.call(request);
    async move {
        let mut response = response.await?;
        let headers = response.headers_mut();
        for (name, value) in [
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, policy),
        ] {
            if !headers.contains_key(&name) {
                headers.insert(name, header::HeaderValue::from_static(value));
            }
        }
        Ok(response)
    }
}

/// Paths any web page may read (CORS): the public map API, the reference
/// lists a map's legend needs, and the widget's files. Only with GET and
/// HEAD, and never with credentials: a key cannot be sent from another
/// site's page, so keyed reads and all writes stay same-origin.
fn is_public_path(path: &str) -> bool {
    path.starts_with("/v1/public/")
        || path == "/v1/categories"
        || path == "/v1/provinces"
        || path.starts_with("/v1/provinces/")
        || path == "/widget"
        || path.starts_with("/widget/")
}

fn cors() -> actix_cors::Cors {
    actix_cors::Cors::default()
        .allowed_origin_fn(|_, request| is_public_path(request.uri.path()))
        .allowed_methods([Method::GET, Method::HEAD])
        .allowed_headers([header::IF_NONE_MATCH, header::ACCEPT])
        .expose_headers([header::ETAG, header::LINK, header::RETRY_AFTER])
        .max_age(86_400)
        // Other paths and origins are served as if CORS did not exist: no
        // CORS headers, so a browser keeps the answer from the other site.
        .block_on_origin_mismatch(false)
}

/// Starts serving on `listener`, watching the read replicas if there are
/// any and following the map's version for the tile cache (this needs a
/// Tokio runtime); the returned future runs until the server stops
/// (SIGINT/SIGTERM, or a handle's stop).
pub fn run(
    listener: TcpListener,
    pools: Pools,
    settings: &ServerSettings,
) -> anyhow::Result<Server> {
    let metrics = Arc::new(Metrics::new(&pools)?);
    let pools = Arc::new(pools);
    pools.watch(settings.replica_check_interval);
    let tiles = Arc::new(crate::api::tile_cache::TileCache::new(
        settings.tile_cache_bytes,
    )?);
    metrics.register(tiles.collectors())?;
    // On a connection of its own to the primary, so that kept tiles are
    // answered without the database; not when no tile is kept.
    tiles.follow(&pools, settings.tile_version_check_interval);
    // Sends the webhook outbox (and expires overdue referrals) while the
    // server's pools live; nothing in it needs a graceful stop.
    tokio::spawn(crate::workflows::webhooks::run(Arc::downgrade(&pools)));
    if !widget::vendor_installed() {
        tracing::warn!(
            "MapLibre GL JS is missing, so /widget shows no map: run `npm ci --prefix widget` \
             before building (scripts/serve and scripts/test do)"
        );
    }
    // Loads the fonts now, so that the first leaflet is not the one to wait.
    if let Err(error) = crate::print::typesetting_digest() {
        tracing::warn!("{error}: GET /v1/wards/{{code}}/leaflet.pdf answers 500");
    }
    let limits = PublicRateLimit::new(settings.public_rate_per_second, settings.public_rate_burst);
    if let Some(limits) = &limits {
        ratelimit::forget_idle_every_minute(limits);
    }
    let clients = ClientAddress::new(settings.client_ip_header.clone());
    let state = web::Data::new(AppState {
        db: pools,
        metrics,
        metrics_token: settings.metrics_token.clone(),
        failed_auth: Arc::new(crate::api::auth::FailedAttempts::new(
            settings.auth_failures_per_minute,
            std::time::Duration::from_secs(60),
        )),
        clients: clients.clone(),
        widget: settings.widget.clone(),
        public_url: settings.public_url.clone(),
        tiles,
    });
    let metrics = Arc::clone(&state.metrics);
    let mut server = HttpServer::new(move || {
        let metrics = Arc::clone(&metrics);
        let limits = limits.clone();
        let clients = clients.clone();
        let (app, openapi) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .app_data(state.clone())
            .app_data(extract::json_config())
            .app_data(extract::payload_config())
            .app_data(extract::path_config())
            .app_data(extract::query_config())
            .configure(api::configure)
            .split_for_parts();
        let openapi = api::with_conditional_reads(openapi);
        let routes = web::Data::new(KnownRoutes::from_openapi(&openapi));
        app.app_data(routes)
            .route("/docs", web::get().to(docs_redirect))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi))
            .service(widget::page)
            .service(widget::vendor_file)
            .service(widget::own_file)
            .default_service(web::to(no_route))
            .wrap_fn(crate::api::etag::revalidate)
            .wrap_fn(crate::api::etag::cache_policy)
            .wrap_fn(move |request, service| {
                ratelimit::limit(request, service, limits.clone(), clients.clone())
            })
            // A URI over the limit is a problem document; actix-http itself
            // answers a bare 431 only when the whole head passes 128 KiB.
            .wrap_fn(|request, service| {
                let too_long = request
                    .uri()
                    .path_and_query()
                    .is_some_and(|target| target.as_str().len() > MAX_URI_BYTES);
                let response = (!too_long).then(|| service.call(request));
                async move {
                    match response {
                        Some(response) => response.await,
                        None => Err(crate::api::problem::ApiError::UriTooLong.into()),
                    }
                }
            })
            // HEAD is GET without the body; actix-http drops the body of a
            // response to a HEAD request itself.
            .wrap_fn(|mut request, service| {
                if request.method() == Method::HEAD {
                    request.head_mut().method = Method::GET;
                }
                service.call(request)
            })
            .wrap(cors())
            // Outside CORS, so that its refusals (a preflight from where it
            // is not allowed) are problem documents too.
            .wrap(ErrorHandlers::new().default_handler(ensure_problem))
            .wrap_fn(secure)
            .wrap_fn(move |request, service| observe(request, service, Arc::clone(&metrics)))
            .wrap(TracingLogger::<PrivateRootSpan>::new())
    })
    .listen(listener)?
    // Set here rather than left to actix-web's defaults (the same values),
    // so that they are stated and documented (docs/operations.md, "Limits"):
    // a client has 5 s to send its request head (else 408), an idle
    // keep-alive connection closes after 5 s, and a closing connection gets
    // 1 s to drain.
    .client_request_timeout(std::time::Duration::from_secs(5))
    .keep_alive(std::time::Duration::from_secs(5))
    .client_disconnect_timeout(std::time::Duration::from_secs(1))
    .shutdown_timeout(settings.shutdown_timeout_s);
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    Ok(server.run())
}
