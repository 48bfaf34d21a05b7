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

/// Half the Earth's circumference at the equator, in Web Mercator metres:
/// the grid runs from minus this to plus this on both axes.
pub const HALF_WORLD_M: f64 = 20_037_508.342_789_244;

/// Web Mercator's northern and southern limit, in degrees.
const MAX_MERCATOR_LAT: f64 = 85.051_128_779_806_59;

/// The shallowest zoom at which the map shows a point per service; below
/// it a tile covers a province or more (a zoom-11 tile is about 20 km wide,
/// a zoom-8 one 150 km), and the map shows clusters instead.
pub const SERVICES_MIN_ZOOM: u8 = 12;

/// Cluster cells per tile side: a cell is a sixteenth of a tile, 32 pixels
/// of a 512-pixel tile, so a tile holds at most 256 clusters.
pub const CLUSTER_CELLS_PER_TILE: u32 = 16;

/// The cells of the cluster grid at one zoom: Web Mercator cut into
/// squares of a sixteenth of a tile, numbered like tiles (`x` from the
/// west, `y` from the north). A tile's clusters and the clusters GeoJSON
/// use the same cells, so they give the same clusters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterCells {
    pub zoom: u8,
    /// The side of a cell, in Web Mercator metres.
    pub cell_m: f64,
    /// The first and last cell columns and rows, inclusive.
    pub min_x: u32,
    pub max_x: u32,
    pub min_y: u32,
    pub max_y: u32,
}

impl ClusterCells {
    /// The side of a cell at `zoom`, in Web Mercator metres.
    pub fn cell_m(zoom: u8) -> f64 {
        2.0 * HALF_WORLD_M / f64::from(1u32 << zoom) / f64::from(CLUSTER_CELLS_PER_TILE)
    }

    /// The cells of one tile.
    pub fn of_tile(tile: Tile) -> Self {
        let n = CLUSTER_CELLS_PER_TILE;
        Self {
            zoom: tile.z,
            cell_m: Self::cell_m(tile.z),
            min_x: tile.x * n,
            max_x: tile.x * n + n - 1,
            min_y: tile.y * n,
            max_y: tile.y * n + n - 1,
        }
    }

    /// The cells a box touches at `zoom` (whole cells: a cluster is never
    /// cut by the box's edge).
    pub fn covering(bbox: Bbox, zoom: u8) -> Self {
        let cell_m = Self::cell_m(zoom);
        let last = (1u32 << zoom) * CLUSTER_CELLS_PER_TILE - 1;
        let column = |lon: f64| {
            let x = lon.to_radians() * HALF_WORLD_M / std::f64::consts::PI;
            cell_index((x + HALF_WORLD_M) / cell_m, last)
        };
        let row = |lat: f64| {
            let lat = lat.clamp(-MAX_MERCATOR_LAT, MAX_MERCATOR_LAT).to_radians();
            let y = (std::f64::consts::FRAC_PI_4 + lat / 2.0).tan().ln() * HALF_WORLD_M
                / std::f64::consts::PI;
            cell_index((HALF_WORLD_M - y) / cell_m, last)
        };
        Self {
            zoom,
            cell_m,
            min_x: column(bbox.min_lon),
            max_x: column(bbox.max_lon),
            min_y: row(bbox.max_lat),
            max_y: row(bbox.min_lat),
        }
    }

    /// The cells' extent in Web Mercator metres: west, south, east, north.
    pub fn envelope_m(&self) -> [f64; 4] {
        [
            f64::from(self.min_x) * self.cell_m - HALF_WORLD_M,
            HALF_WORLD_M - f64::from(self.max_y + 1) * self.cell_m,
            f64::from(self.max_x + 1) * self.cell_m - HALF_WORLD_M,
            HALF_WORLD_M - f64::from(self.min_y) * self.cell_m,
        ]
    }
}

/// A cell number from a position in cells, within the grid.
fn cell_index(cells: f64, last: u32) -> u32 {
    // In range after the clamp; `as` saturates anyway.
    cells.floor().clamp(0.0, f64::from(last)) as u32
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
    fn cluster_cells_cover_whole_cells_on_the_tile_grid() {
        // A tile's cells are the sixteen columns and rows under it.
        let tile = Tile::new(8, 203, 112).unwrap();
        let cells = ClusterCells::of_tile(tile);
        assert_eq!((cells.min_x, cells.max_x), (203 * 16, 203 * 16 + 15));
        assert_eq!((cells.min_y, cells.max_y), (112 * 16, 112 * 16 + 15));
        // A box inside that tile is covered by cells of that tile, and the
        // cells' envelope holds the box.
        let bbox = Bbox::parse("105.6,20.9,105.9,21.1").unwrap();
        let covering = ClusterCells::covering(bbox, 8);
        assert!(covering.min_x >= cells.min_x && covering.max_x <= cells.max_x);
        assert!(covering.min_y >= cells.min_y && covering.max_y <= cells.max_y);
        let [west, south, east, north] = covering.envelope_m();
        let x = |lon: f64| lon.to_radians() * HALF_WORLD_M / std::f64::consts::PI;
        assert!(west <= x(105.6) && east >= x(105.9) && south < north);
        // The whole world at zoom 0: all 16 x 16 cells, poles clamped.
        let world = ClusterCells::covering(Bbox::world(), 0);
        assert_eq!(
            (world.min_x, world.max_x, world.min_y, world.max_y),
            (0, 15, 0, 15)
        );
        let [west, south, east, north] = world.envelope_m();
        assert_eq!(
            (west, south, east, north),
            (-HALF_WORLD_M, -HALF_WORLD_M, HALF_WORLD_M, HALF_WORLD_M)
        );
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
