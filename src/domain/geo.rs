//! Coordinates and distances. Points are WGS84 (SRID 4326); distances are
//! metres on the spheroid, as PostGIS computes them for `geography`.

use super::Invalid;

/// A valid WGS84 position: finite, latitude in [-90, 90], longitude in
/// [-180, 180].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

impl Coordinates {
    pub fn new(lat: f64, lon: f64) -> Result<Self, Invalid> {
        const LAT: &str = "latitude must be a number between -90 and 90";
        const LON: &str = "longitude must be a number between -180 and 180";
        let lat_ok = lat.is_finite() && (-90.0..=90.0).contains(&lat);
        let lon_ok = lon.is_finite() && (-180.0..=180.0).contains(&lon);
        match (lat_ok, lon_ok) {
            (true, true) => Ok(Self { lat, lon }),
            (false, true) => Err(Invalid::new("range", LAT)),
            (true, false) => Err(Invalid::new("range", LON)),
            // Both wrong: say both, so that one fix is enough.
            (false, false) => Err(Invalid::new("range", format!("{LAT}, and {LON}"))),
        }
    }

    /// Parses `"lat,lon"` (the order people say it in), e.g. `"22.48,103.97"`:
    /// exactly the strings [`lat_lon_pattern`] matches.
    pub fn parse_lat_lon(value: &str) -> Result<Self, Invalid> {
        let format = || Invalid::new("format", "expected `lat,lon` in decimal degrees");
        let (lat, lon) = value.split_once(',').ok_or_else(format)?;
        Self::new(
            degrees(lat).ok_or_else(format)?,
            degrees(lon).ok_or_else(format)?,
        )
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }
}

/// A number of degrees as a query writes it: an optional minus, no leading
/// zero, an optional fraction (`22.48`, `-0.5`; not `+1`, `1e1`, `022`).
const DEGREES: &str = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?";
/// The latitudes [`Coordinates::new`] takes, -90 to 90, written as
/// [`DEGREES`].
const LATITUDE: &str = r"-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)";
/// The longitudes, -180 to 180.
const LONGITUDE: &str = r"-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)";

/// The value of a degree written as [`DEGREES`], or `None`.
pub fn degrees(value: &str) -> Option<f64> {
    // A constant pattern: it compiles (a test reads every string through
    // it), and if it did not, no degree would be taken rather than a panic.
    static PATTERN: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(&format!("^{DEGREES}$")).ok());
    PATTERN
        .as_ref()
        .filter(|pattern| pattern.is_match(value))
        .and_then(|_| value.parse().ok())
}

/// What [`Coordinates::parse_lat_lon`] takes, as a pattern (ECMA-262 and
/// Rust's `regex` read it alike) for the API's description.
pub fn lat_lon_pattern() -> String {
    format!("^{LATITUDE},{LONGITUDE}$")
}

/// What [`super::map::Bbox::parse`] takes: `minLon,minLat,maxLon,maxLat`.
pub fn bbox_pattern() -> String {
    format!("^{LONGITUDE},{LATITUDE},{LONGITUDE},{LATITUDE}$")
}

/// One part of a service area: a whole province, or a polygon in
/// longitude/latitude.
#[derive(Debug, Clone, PartialEq)]
pub enum AreaPart {
    Province(String),
    Ward(String),
    Polygon(geo::MultiPolygon<f64>),
}

/// Where a person is, as the service areas see it: the ward containing
/// their point (or given by its code, its reference point then being the
/// point) and that ward's province. Both `None` outside every ward.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Place<'a> {
    pub province: Option<&'a str>,
    pub ward: Option<&'a str>,
}

/// Whether a service area covers a point. No parts means no restriction;
/// a province part covers the point when it is the province containing it
/// and a ward part when it is the ward (`place`, found from the ward
/// boundaries, or given); a polygon covers the points inside it or on its
/// edge, edges being straight in longitude/latitude as GeoJSON (RFC 7946)
/// defines them. A point inside no province is covered only by services
/// without an area (DESIGN.md).
pub fn area_covers(parts: &[AreaPart], point: Coordinates, place: Place<'_>) -> bool {
    use geo::Intersects;
    parts.is_empty()
        || place.province.is_some()
            && parts.iter().any(|part| match part {
                AreaPart::Province(code) => Some(code.as_str()) == place.province,
                AreaPart::Ward(code) => Some(code.as_str()) == place.ward,
                AreaPart::Polygon(polygon) => {
                    polygon.intersects(&geo::Point::new(point.lon(), point.lat()))
                }
            })
}

/// A search radius in whole metres, 1 m to 500 km.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RadiusM(u32);

impl RadiusM {
    pub const MAX: u32 = 500_000;
    pub const DEFAULT: RadiusM = RadiusM(50_000);

    pub fn new(metres: u32) -> Result<Self, Invalid> {
        if (1..=Self::MAX).contains(&metres) {
            Ok(Self(metres))
        } else {
            Err(Invalid::new(
                "range",
                format!("radius must be between 1 and {} metres", Self::MAX),
            ))
        }
    }

    pub const fn metres(self) -> u32 {
        self.0
    }
}

/// How close (metres, geodesic) a public location of an organisation may
/// stand to one of its confidential locations: nearer, the public point
/// of the one locates the other.
pub const NEAR_CONFIDENTIAL_M: f64 = 1_000.0;

/// A location of the same organisation standing near a written one, as
/// the database found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub written: uuid::Uuid,
    pub written_confidential: bool,
    pub other: uuid::Uuid,
    pub other_confidential: bool,
    pub distance_m: f64,
}

/// Whether writing a location next to this neighbour gives a shelter
/// away: one of the two is public, the other confidential, they stand
/// within [`NEAR_CONFIDENTIAL_M`], and the document did not acknowledge it.
/// `Some` names both locations and the rule.
pub fn near_confidential(neighbour: &Neighbour, acknowledged: bool) -> Option<Invalid> {
    if acknowledged
        || neighbour.written_confidential == neighbour.other_confidential
        || neighbour.distance_m.is_nan()
        || neighbour.distance_m >= NEAR_CONFIDENTIAL_M
    {
        return None;
    }
    let (public, confidential) = if neighbour.written_confidential {
        (neighbour.other, neighbour.written)
    } else {
        (neighbour.written, neighbour.other)
    };
    Some(Invalid::new(
        "near_confidential",
        format!(
            "the public location {public} would stand within 1 km of the confidential \
             location {confidential} of the same organisation, and its public point would \
             locate the shelter; move one of them, or set \
             \"acknowledge_near_confidential\": true to write it anyway"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_corners_of_the_world() {
        assert!(Coordinates::new(90.0, 180.0).is_ok());
        assert!(Coordinates::new(-90.0, -180.0).is_ok());
    }

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        for (lat, lon) in [
            (90.01, 0.0),
            (-90.01, 0.0),
            (0.0, 180.01),
            (0.0, -180.01),
            (f64::NAN, 0.0),
            (0.0, f64::INFINITY),
        ] {
            let error = Coordinates::new(lat, lon).unwrap_err();
            assert_eq!(error.rule, "range", "{lat},{lon}");
        }
    }

    #[test]
    fn parses_lat_lon_pairs() {
        let point = Coordinates::parse_lat_lon("22.48,103.97").unwrap();
        assert_eq!((point.lat(), point.lon()), (22.48, 103.97));
        for bad in [
            "",
            "22.48",
            "22.48,",
            "a,b",
            "22.48;103.97",
            "1,2,3",
            "22.48, 103.97",
            "+1,2",
            "1e1,2",
            "01,2",
        ] {
            assert!(Coordinates::parse_lat_lon(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Coordinates::parse_lat_lon("NaN,1").unwrap_err().rule,
            "format"
        );
        let both = Coordinates::parse_lat_lon("91,200").unwrap_err().message;
        assert!(
            both.contains("latitude") && both.contains("longitude"),
            "{both}"
        );
    }

    #[test]
    fn areas_cover_by_province_or_polygon() {
        let square = geo::MultiPolygon::new(vec![geo::Polygon::new(
            geo::LineString::from(vec![
                (103.0, 22.0),
                (104.0, 22.0),
                (104.0, 23.0),
                (103.0, 23.0),
                (103.0, 22.0),
            ]),
            vec![],
        )]);
        let inside = Coordinates::new(22.5, 103.5).unwrap();
        let on_edge = Coordinates::new(22.0, 103.5).unwrap();
        let outside = Coordinates::new(21.9, 103.5).unwrap();
        let parts = [AreaPart::Polygon(square), AreaPart::Province("01".into())];
        let place = |province| Place {
            province,
            ward: None,
        };
        assert!(area_covers(&parts, inside, place(Some("15"))));
        assert!(area_covers(&parts, on_edge, place(Some("15"))));
        assert!(
            !area_covers(&parts, inside, place(None)),
            "outside every province"
        );
        assert!(!area_covers(&parts, outside, place(Some("15"))));
        assert!(area_covers(&parts, outside, place(Some("01"))));
        assert!(
            area_covers(&[], outside, place(None)),
            "no area serves everyone"
        );
        assert!(!area_covers(
            &[AreaPart::Province("01".into())],
            outside,
            place(None)
        ));
        let ward = [AreaPart::Ward("02647".into())];
        let in_ward = Place {
            province: Some("15"),
            ward: Some("02647"),
        };
        assert!(
            area_covers(&ward, outside, in_ward),
            "by code, wherever the point"
        );
        assert!(!area_covers(&ward, inside, place(Some("15"))));
    }

    #[test]
    fn bounds_the_radius() {
        assert!(RadiusM::new(0).is_err());
        assert!(RadiusM::new(1).is_ok());
        assert!(RadiusM::new(500_000).is_ok());
        assert!(RadiusM::new(500_001).is_err());
    }

    proptest::proptest! {
        /// The pattern the API's description states for `near` and the
        /// parser agree on every string.
        #[test]
        fn the_lat_lon_pattern_is_the_parser(
            value in r"[-+]?(0|[1-9]|0[0-9]|1[0-9]{1,2}|[2-9][0-9])(\.[0-9]{0,3}|\.0{0,3})?(,[-+ ]?(0|[1-9]|1[0-9]{1,2}|[2-9][0-9]|18[01])(\.0{0,2}[0-9]?)?)?"
        ) {
            let pattern = regex::Regex::new(&lat_lon_pattern()).unwrap();
            proptest::prop_assert_eq!(
                pattern.is_match(&value),
                Coordinates::parse_lat_lon(&value).is_ok(),
                "{}",
                value
            );
        }
    }

    fn neighbour(
        written_confidential: bool,
        other_confidential: bool,
        distance_m: f64,
    ) -> Neighbour {
        Neighbour {
            written: uuid::Uuid::from_u128(1),
            written_confidential,
            other: uuid::Uuid::from_u128(2),
            other_confidential,
            distance_m,
        }
    }

    #[test]
    fn a_public_location_near_a_shelter_is_refused_either_way_round() {
        let office = near_confidential(&neighbour(false, true, 22.0), false).unwrap();
        assert_eq!(office.rule, "near_confidential");
        assert!(office.message.contains(
            "public location 00000000-0000-0000-0000-000000000001 would stand within 1 km of the confidential location 00000000-0000-0000-0000-000000000002"
        ));
        let shelter = near_confidential(&neighbour(true, false, 999.9), false).unwrap();
        assert!(shelter.message.contains(
            "public location 00000000-0000-0000-0000-000000000002 would stand within 1 km of the confidential location 00000000-0000-0000-0000-000000000001"
        ));
    }

    #[test]
    fn far_enough_same_kind_or_acknowledged_passes() {
        assert_eq!(
            near_confidential(&neighbour(false, true, 1_000.0), false),
            None
        );
        assert_eq!(
            near_confidential(&neighbour(false, false, 1.0), false),
            None
        );
        assert_eq!(near_confidential(&neighbour(true, true, 1.0), false), None);
        assert_eq!(near_confidential(&neighbour(false, true, 1.0), true), None);
        assert_eq!(near_confidential(&neighbour(true, false, 1.0), true), None);
    }
}
