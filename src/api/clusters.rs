//! The public map's clusters as GeoJSON: what a zoomed-out map shows
//! instead of every service, counted over the whole directory, for maps
//! that draw GeoJSON rather than vector tiles. The same clusters as the
//! tiles' `clusters` layer (the same cells and the same SQL).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::etag;
use super::extract::ApiQuery;
use super::params::FieldErrors;
use super::problem::{ApiError, FieldError, responses};
use super::public::CACHE_CONTROL;
use crate::db::models::public_map;
use crate::domain::category::Category;
use crate::domain::map::{Bbox, ClusterCells, SERVICES_MIN_ZOOM};

/// Which clusters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClustersQuery {
    /// The map's zoom, 0 to 11 (from 12 a map shows each service: `GET
    /// /v1/public/services.geojson`). Clusters are cells of a sixteenth of
    /// a tile at this zoom.
    #[param(required = true, minimum = 0, maximum = 11)]
    pub zoom: Option<u8>,
    /// The box shown, `minLon,minLat,maxLon,maxLat` (WGS84, RFC 7946
    /// order); default the whole world. Every cell the box touches is
    /// counted whole.
    #[param(value_type = Option<super::params::Bbox>, inline)]
    pub bbox: Option<String>,
    /// Only services of this category (see `GET /v1/categories`).
    #[param(value_type = Option<super::params::OneCategory>, inline)]
    pub category: Option<String>,
}

/// Clusters, as an RFC 7946 FeatureCollection.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterCollection {
    #[schema(value_type = String, example = "FeatureCollection")]
    r#type: &'static str,
    features: Vec<ClusterFeature>,
}

/// One cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterFeature {
    #[schema(value_type = String, example = "Feature")]
    r#type: &'static str,
    /// `zoom/column/row` of its cell.
    #[schema(example = "8/3251/1799")]
    id: String,
    geometry: ClusterPoint,
    properties: ClusterProperties,
}

/// Where a cluster is shown: the mean of the public points it counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterPoint {
    #[schema(value_type = String, example = "Point")]
    r#type: &'static str,
    /// Longitude, latitude (WGS84).
    #[schema(example = json!([105.8412, 21.0245]))]
    coordinates: [f64; 2],
}

/// What a cluster counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterProperties {
    /// Active services at a location in the cell (a service at two
    /// locations counts twice), over the whole directory.
    #[schema(example = 14)]
    count: i32,
    /// The same, per need category code (a service in two categories counts
    /// in both); categories with none are left out.
    #[schema(example = json!({"legal_aid": 3, "health": 9, "shelter": 1}))]
    categories: BTreeMap<String, i32>,
}

/// Clusters of services on a map, as GeoJSON.
///
/// What a map shows below zoom 12 instead of each service: the services at
/// their public points counted per cell of a sixteenth of a tile, over the
/// whole directory (not a page), with their counts per category. A cluster
/// is placed at the mean of the public points it counts, so never at a
/// confidential location's exact point. The same clusters as the vector
/// tiles' `clusters` layer. Cacheable: `ETag`, `Cache-Control`, and `304`
/// to `If-None-Match`. Open to any origin (CORS); without a key, limited
/// per client (`429`).
#[utoipa::path(
    tag = "public",
    params(ClustersQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The clusters in the box", body = ClusterCollection,
            content_type = "application/geo+json",
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified since the `ETag` sent in `If-None-Match`",
            headers(("ETag" = String), ("Cache-Control" = String))),
        responses::ListProblems,
    )
)]
#[get("/clusters.geojson")]
pub async fn clusters_geojson(
    state: web::Data<AppState>,
    _caller: super::auth::Caller,
    query: ApiQuery<ClustersQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let mut errors = FieldErrors::default();
    let bbox = errors
        .parse("bbox", query.bbox.as_deref(), Bbox::parse)
        .unwrap_or_else(Bbox::world);
    let category = errors.parse(
        "category",
        query.category.as_deref().map(str::trim),
        Category::parse,
    );
    let zoom = query.zoom.unwrap_or_default();
    if query.zoom.is_none() {
        errors.push(FieldError::new("zoom", "required", "zoom is required"));
    } else if zoom >= SERVICES_MIN_ZOOM {
        errors.push(FieldError::new(
            "zoom",
            "range",
            format!(
                "zoom must be between 0 and {}; from {SERVICES_MIN_ZOOM} a map shows each \
                 service (services.geojson)",
                SERVICES_MIN_ZOOM - 1
            ),
        ));
    }
    errors.finish(())?;
    let cells = ClusterCells::covering(bbox, zoom);
    let mut conn = state.anonymous_reader().await?;
    let rows = public_map::clusters(&mut conn, &cells, category).await?;
    let features = rows
        .into_iter()
        .map(|row| {
            let categories = serde_json::from_str(&row.categories)
                .map_err(|error| ApiError::Internal(error.into()))?;
            Ok(ClusterFeature {
                r#type: "Feature",
                id: format!("{zoom}/{}/{}", row.cx, row.cy),
                geometry: ClusterPoint {
                    r#type: "Point",
                    coordinates: [row.lon, row.lat],
                },
                properties: ClusterProperties {
                    count: row.count,
                    categories,
                },
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let collection = ClusterCollection {
        r#type: "FeatureCollection",
        features,
    };
    let body = serde_json::to_vec(&collection).map_err(|error| ApiError::Internal(error.into()))?;
    Ok(etag::cacheable("application/geo+json", CACHE_CONTROL, body))
}
