//! Service areas drawn as polygons: GeoJSON read into a checked
//! multipolygon, and written back.

use super::*;

/// The rings of a GeoJSON polygon, as `[longitude, latitude]` positions.
pub(super) type Rings = Vec<Vec<[f64; 2]>>;

#[derive(Deserialize)]
#[serde(tag = "type", content = "coordinates")]
pub(super) enum PolygonGeometry {
    Polygon(Vec<Vec<Vec<f64>>>),
    MultiPolygon(Vec<Vec<Vec<Vec<f64>>>>),
}

pub(super) fn positions(ring: Vec<Vec<f64>>) -> Result<Vec<[f64; 2]>, Invalid> {
    ring.into_iter()
        .map(|position| match *position.as_slice() {
            [lon, lat]
                if lon.is_finite()
                    && lat.is_finite()
                    && (-180.0..=180.0).contains(&lon)
                    && (-90.0..=90.0).contains(&lat) =>
            {
                Ok([lon, lat])
            }
            [_, _] => Err(Invalid::new(
                "range",
                "positions must be longitude in [-180, 180] and latitude in [-90, 90]",
            )),
            _ => Err(Invalid::new(
                "position",
                "a position is [longitude, latitude]",
            )),
        })
        .collect()
}

/// Whether an edge means the same on a plane of longitude/latitude (how
/// GeoJSON and the matcher read it) and on the sphere (how PostGIS stores a
/// geography): an edge across 180° or more of longitude would be taken the
/// other way round the globe, and an edge between antipodes (pole to pole,
/// or 180° apart on the equator) has no one shortest path at all, which
/// PostGIS refuses.
pub(super) fn plain_edge([lon_a, lat_a]: [f64; 2], [lon_b, lat_b]: [f64; 2]) -> bool {
    let pole_to_pole = lat_a.abs() == 90.0 && lat_b == -lat_a;
    (lon_a - lon_b).abs() < 180.0 && !pole_to_pole
}

/// Checks a GeoJSON `Polygon` or `MultiPolygon` (closed rings of at least
/// 4 positions, within range, not crossing themselves) and converts it.
pub fn parse_extent(value: &serde_json::Value) -> Result<geo::MultiPolygon<f64>, Invalid> {
    use geo::Validation;

    let kind = value.get("type").and_then(serde_json::Value::as_str);
    if kind.is_some_and(|kind| kind != "Polygon" && kind != "MultiPolygon") {
        return Err(Invalid::new(
            "geojson_type",
            "a service area must be a Polygon or a MultiPolygon",
        ));
    }
    let geometry: PolygonGeometry = serde_json::from_value(value.clone()).map_err(|_| {
        Invalid::new(
            "geojson",
            "must be a GeoJSON Polygon or MultiPolygon: `type` and `coordinates` as nested \
             arrays of [longitude, latitude]",
        )
    })?;
    let polygons = match geometry {
        PolygonGeometry::Polygon(rings) => vec![rings],
        PolygonGeometry::MultiPolygon(polygons) => polygons,
    };
    let count: usize = polygons.iter().flatten().map(Vec::len).sum();
    if count > POLYGON_POSITIONS_MAX {
        return Err(Invalid::new(
            "size",
            format!("at most {POLYGON_POSITIONS_MAX} positions in a service area"),
        ));
    }
    if polygons.is_empty() || polygons.iter().any(Vec::is_empty) {
        return Err(Invalid::new("geojson", "a polygon needs at least one ring"));
    }
    let mut converted = Vec::with_capacity(polygons.len());
    for polygon in polygons {
        let rings: Rings = polygon
            .into_iter()
            .map(positions)
            .collect::<Result<_, _>>()?;
        for ring in &rings {
            if ring.len() < 4 {
                return Err(Invalid::new(
                    "ring",
                    "every ring needs at least 4 positions",
                ));
            }
            if ring.first() != ring.last() {
                return Err(Invalid::new(
                    "closed_ring",
                    "every ring must end at the position it starts from",
                ));
            }
            if ring.windows(2).any(|edge| !plain_edge(edge[0], edge[1])) {
                return Err(Invalid::new(
                    "edge_span",
                    "every edge must span less than 180° of longitude (split an area at the \
                     antimeridian, as RFC 7946 asks) and must not join the two poles",
                ));
            }
        }
        let mut rings = rings.into_iter().map(|ring| {
            geo::LineString::from(ring.into_iter().map(|[x, y]| (x, y)).collect::<Vec<_>>())
        });
        let Some(exterior) = rings.next() else {
            return Err(Invalid::new("geojson", "a polygon needs at least one ring"));
        };
        converted.push(geo::Polygon::new(exterior, rings.collect()));
    }
    let multi = geo::MultiPolygon::new(converted);
    if multi.is_valid() {
        Ok(multi)
    } else {
        Err(Invalid::new(
            "valid_polygon",
            "the polygon is not valid: rings must not cross themselves or each other, and \
             holes must lie inside their polygon",
        ))
    }
}

/// A service area as it is stored and read back: a GeoJSON MultiPolygon of
/// floating-point positions (a Polygon, or integer coordinates, sent in
/// describe the same area).
pub fn extent_json(multi: &geo::MultiPolygon<f64>) -> serde_json::Value {
    let ring = |line: &geo::LineString<f64>| -> Vec<[f64; 2]> {
        line.coords().map(|c| [c.x, c.y]).collect()
    };
    let coordinates: Vec<Vec<Vec<[f64; 2]>>> = multi
        .iter()
        .map(|polygon| {
            std::iter::once(polygon.exterior())
                .chain(polygon.interiors())
                .map(ring)
                .collect()
        })
        .collect();
    serde_json::json!({"type": "MultiPolygon", "coordinates": coordinates})
}
