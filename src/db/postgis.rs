//! PostGIS, declared once: the SRID, the SQL functions the queries use, and
//! conversions between GeoJSON-shaped geometry (`geo_types`) and the
//! postgis_diesel types that travel over the wire.

use diesel::sql_types::Double;
use postgis_diesel::sql_types::Geography;
use postgis_diesel::types::{MultiPolygon, Point, Polygon};

/// WGS84 longitude/latitude: the only spatial reference system we store.
/// A macro, so that SQL text can be built with it at compile time
/// (`concat!`); [`SRID`] is the same number as a value.
macro_rules! srid {
    () => {
        4326
    };
}
pub(crate) use srid;

pub const SRID: u32 = srid!();

/// SQL for the point (a geometry in our SRID) at the longitude and
/// latitude of two SQL expressions, e.g. `make_point!("$1", "$2")`.
macro_rules! make_point {
    ($lon:literal, $lat:literal) => {
        concat!(
            "ST_SetSRID(ST_MakePoint(",
            $lon,
            ", ",
            $lat,
            "), ",
            $crate::db::postgis::srid!(),
            ")"
        )
    };
}
pub(crate) use make_point;

diesel::define_sql_function! {
    /// Geodesic distance in metres on the WGS84 spheroid.
    #[sql_name = "ST_Distance"]
    fn st_distance(left: Geography, right: Geography) -> Double;
}

diesel::define_sql_function! {
    /// True when the two are within `distance` metres (inclusive, spheroid);
    /// uses the GiST index.
    #[sql_name = "ST_DWithin"]
    fn st_dwithin(left: Geography, right: Geography, distance: Double) -> Bool;
}

// Distance in metres on the sphere (`<->`): what the GiST index walks in
// order (nearest first), not what is reported ([`st_distance`]); the two
// differ by less than [`SPHERE_SPHEROID_RATIO`].
diesel::infix_operator!(SphereDistance, " <-> ", Double, backend: diesel::pg::Pg);

/// Sphere distance between two geographies, the second a bound value.
pub fn sphere_distance<L, R>(left: L, right: R) -> SphereDistance<L, R::Expression>
where
    R: diesel::expression::AsExpression<Geography>,
{
    SphereDistance::new(left, right.as_expression())
}

/// A bound on how far the sphere's distance (`<->`) and the spheroid's
/// (`ST_Distance`) between two points may differ, as a ratio: the
/// flattening of WGS84 makes it about 0.56 %; 1 % leaves room.
pub const SPHERE_SPHEROID_RATIO: f64 = 0.01;

/// A point from longitude and latitude, in our SRID.
pub fn point(lon: f64, lat: f64) -> Point {
    Point {
        x: lon,
        y: lat,
        srid: Some(SRID),
    }
}

/// postgis_diesel's multipolygon from a `geo_types` one.
pub fn to_postgis(multi: &geo::MultiPolygon<f64>) -> MultiPolygon<Point> {
    let ring = |line: &geo::LineString<f64>| -> Vec<Point> {
        line.coords().map(|c| point(c.x, c.y)).collect()
    };
    MultiPolygon {
        polygons: multi
            .iter()
            .map(|polygon| Polygon {
                rings: std::iter::once(polygon.exterior())
                    .chain(polygon.interiors())
                    .map(ring)
                    .collect(),
                srid: Some(SRID),
            })
            .collect(),
        srid: Some(SRID),
    }
}

/// A `geo_types` multipolygon from postgis_diesel's.
pub fn to_geo(multi: &MultiPolygon<Point>) -> geo::MultiPolygon<f64> {
    geo::MultiPolygon::new(
        multi
            .polygons
            .iter()
            .filter_map(|polygon| {
                let mut rings = polygon.rings.iter().map(|ring| {
                    geo::LineString::from(ring.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>())
                });
                let exterior = rings.next()?;
                Some(geo::Polygon::new(exterior, rings.collect()))
            })
            .collect(),
    )
}

/// GeoJSON-style coordinates (`[polygon][ring][position][lon, lat]`) of a
/// postgis_diesel multipolygon.
pub fn multipolygon_coordinates(multi: &MultiPolygon<Point>) -> Vec<Vec<Vec<[f64; 2]>>> {
    multi
        .polygons
        .iter()
        .map(|polygon| {
            polygon
                .rings
                .iter()
                .map(|ring| ring.iter().map(|p| [p.x, p.y]).collect())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_polygons_with_holes_both_ways() {
        let exterior = geo::LineString::from(vec![(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 0.0)]);
        let hole = geo::LineString::from(vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 1.0)]);
        let multi = geo::MultiPolygon::new(vec![geo::Polygon::new(exterior, vec![hole])]);
        let converted = to_postgis(&multi);
        assert_eq!(converted.srid, Some(SRID));
        let coordinates = multipolygon_coordinates(&converted);
        assert_eq!(coordinates.len(), 1);
        assert_eq!(coordinates[0].len(), 2);
        assert_eq!(coordinates[0][0][1], [4.0, 0.0]);
        assert_eq!(coordinates[0][1][2], [2.0, 2.0]);
    }
}
