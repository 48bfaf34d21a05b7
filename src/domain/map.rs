//! What the public map asks for: a box of longitude/latitude, a tile of the
//! Web Mercator grid, and the language of the labels.

use super::Invalid;

/// A box in WGS84 longitude/latitude, west to east and south to north
/// (`minLon,minLat,maxLon,maxLat`, the RFC 7946 `bbox` order). A box never
/// crosses the antimeridian: Vietnam is far from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bbox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl Bbox {
    /// Parses `minLon,minLat,maxLon,maxLat`: exactly the strings
    /// [`super::geo::bbox_pattern`] matches. Corners given the other way
    /// round are taken as the same box (it never crosses the antimeridian).
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let format = || {
            Invalid::new(
                "format",
                "expected `minLon,minLat,maxLon,maxLat` in decimal degrees",
            )
        };
        let numbers: Vec<f64> = value
            .split(',')
            .map(|part| super::geo::degrees(part).ok_or_else(format))
            .collect::<Result<_, _>>()?;
        let [lon_a, lat_a, lon_b, lat_b] = numbers[..] else {
            return Err(format());
        };
        for lon in [lon_a, lon_b] {
            if !(-180.0..=180.0).contains(&lon) {
                return Err(Invalid::new(
                    "range",
                    "longitudes must be numbers between -180 and 180",
                ));
            }
        }
        for lat in [lat_a, lat_b] {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(Invalid::new(
                    "range",
                    "latitudes must be numbers between -90 and 90",
                ));
            }
        }
        let (min_lon, max_lon) = (lon_a.min(lon_b), lon_a.max(lon_b));
        let (min_lat, max_lat) = (lat_a.min(lat_b), lat_a.max(lat_b));
        Ok(Self {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }

    /// The whole world.
    pub fn world() -> Self {
        Self {
            min_lon: -180.0,
            min_lat: -90.0,
            max_lon: 180.0,
            max_lat: 90.0,
        }
    }
}

/// The deepest zoom a tile may be asked for: at 22 a tile is about 10 m
/// wide at the equator, finer than any location is known.
pub const MAX_ZOOM: u8 = 22;

/// A tile of the Web Mercator (EPSG:3857) grid, XYZ numbering: `x` from the
/// west, `y` from the north, both below 2^z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    z: u8,
    x: u32,
    y: u32,
}

impl Tile {
    /// The tile, or which of `z`, `x`, `y` is out of range and why.
    pub fn new(z: u32, x: u32, y: u32) -> Result<Self, (&'static str, Invalid)> {
        let z = u8::try_from(z)
            .ok()
            .filter(|z| *z <= MAX_ZOOM)
            .ok_or_else(|| {
                (
                    "z",
                    Invalid::new("range", format!("zoom must be between 0 and {MAX_ZOOM}")),
                )
            })?;
        let size = 1u32 << z;
        for (name, value) in [("x", x), ("y", y)] {
            if value >= size {
                return Err((
                    name,
                    Invalid::new(
                        "range",
                        format!("{name} must be below 2^z ({size} at zoom {z})"),
                    ),
                ));
            }
        }
        Ok(Self { z, x, y })
    }

    pub fn z(self) -> u8 {
        self.z
    }

    pub fn x(self) -> u32 {
        self.x
    }

    pub fn y(self) -> u32 {
        self.y
    }
}

/// The language of names and labels on the map.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// Vietnamese, the default.
    #[default]
    Vi,
    /// English; a name without an English form is given in Vietnamese.
    En,
}

impl Lang {
    /// The English form when asked for and present, else the Vietnamese.
    pub fn pick<'a>(self, vi: &'a str, en: Option<&'a str>) -> &'a str {
        match (self, en) {
            (Self::En, Some(en)) if !en.trim().is_empty() => en,
            _ => vi,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vi => "vi",
            Self::En => "en",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_box_in_rfc_7946_order() {
        let bbox = Bbox::parse("103.5,22.0,104.5,23").unwrap();
        assert_eq!(
            bbox,
            Bbox {
                min_lon: 103.5,
                min_lat: 22.0,
                max_lon: 104.5,
                max_lat: 23.0
            }
        );
        assert_eq!(Bbox::parse("1,2,3").unwrap_err().rule, "format");
        assert_eq!(Bbox::parse("1,2,3,4,5").unwrap_err().rule, "format");
        assert_eq!(Bbox::parse("a,2,3,4").unwrap_err().rule, "format");
        assert_eq!(Bbox::parse("1, 2,3,4").unwrap_err().rule, "format");
        assert_eq!(Bbox::parse("NaN,2,3,4").unwrap_err().rule, "format");
        assert_eq!(Bbox::parse("1,2,inf,4").unwrap_err().rule, "format");
        assert_eq!(Bbox::parse("1e1,2,3,4").unwrap_err().rule, "format");
        assert_eq!(Bbox::parse("1,-91,3,4").unwrap_err().rule, "range");
        assert_eq!(Bbox::parse("181,2,3,4").unwrap_err().rule, "range");
        // Corners the other way round: the same box.
        assert_eq!(Bbox::parse("104.5,23,103.5,22").unwrap(), bbox);
        // A point is a box too.
        assert!(Bbox::parse("105,21,105,21").is_ok());
    }

    #[test]
    fn tiles_stay_on_the_grid() {
        assert!(Tile::new(0, 0, 0).is_ok());
        assert!(Tile::new(14, 16383, 16383).is_ok());
        assert_eq!(Tile::new(1, 2, 0).unwrap_err().0, "x");
        assert_eq!(Tile::new(1, 0, 2).unwrap_err().0, "y");
        assert_eq!(Tile::new(23, 0, 0).unwrap_err().0, "z");
        assert_eq!(Tile::new(300, 0, 0).unwrap_err().0, "z");
        assert!(Tile::new(22, (1 << 22) - 1, 0).is_ok());
    }

    #[test]
    fn english_falls_back_to_vietnamese() {
        assert_eq!(Lang::En.pick("Hà Nội", Some("Hanoi")), "Hanoi");
        assert_eq!(Lang::En.pick("Hà Nội", None), "Hà Nội");
        assert_eq!(Lang::En.pick("Hà Nội", Some(" ")), "Hà Nội");
        assert_eq!(Lang::Vi.pick("Hà Nội", Some("Hanoi")), "Hà Nội");
    }

    proptest::proptest! {
        /// The pattern the API's description states and the parser agree on
        /// every string, so a client that checks one is never refused by
        /// the other.
        #[test]
        fn the_box_pattern_is_the_parser(
            value in r"-?(0|[1-9]|1[0-9]{1,2}|0[0-9]|[2-9][0-9])(\.[0-9]{0,3})?(,-?(0|[1-9]|1[0-9]{1,2}|[2-9][0-9])(\.0{0,2}[0-9]?)?){2,4}"
        ) {
            let pattern = regex::Regex::new(&crate::domain::geo::bbox_pattern()).unwrap();
            proptest::prop_assert_eq!(pattern.is_match(&value), Bbox::parse(&value).is_ok(), "{}", value);
        }
    }
}
