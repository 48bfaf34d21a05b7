//! The coverage review: for every ward, whether an eligible service can take
//! a person there, and where help is out of reach, by ward, province and
//! for the country. Without SQL: the bands, the rules that turn a ward's
//! nearest distance and remote reach into "served", and the totals.
//!
//! A person of the profile band lives at the ward's reference point. A
//! service is eligible when it is active, accepting referrals, of the
//! category, admits every person of the band (an age band `[min, max]`
//! needs a service whose ages include all of it; a rule on a field the band
//! leaves out does not exclude, as in the matcher) and its service area
//! covers the ward. The ward is served in person when the nearest eligible
//! in-person location is within the radius, and served at all when it is
//! served in person or an eligible remote service covers it.

use serde::Serialize;
use utoipa::ToSchema;

use super::Invalid;
use super::category::Category;
use super::province::ProvinceCode;
use super::service::{DocumentType, Gender, LanguageCode, VictimStatus};

/// How far the nearest in-person service is looked for: beyond it, a ward
/// has none (`nearest_in_person_m` null, band `gt_60km`).
pub const HORIZON_M: f64 = 100_000.0;

/// The distance bands readers without exact places are given, by their
/// upper bound in kilometres.
pub const BAND_EDGES_KM: [u32; 4] = [5, 15, 30, 60];

/// A distance band: what the public and agencies see instead of metres.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
pub enum Band {
    /// Within 5 km.
    #[serde(rename = "le_5km")]
    Le5km,
    /// Over 5, within 15 km.
    #[serde(rename = "le_15km")]
    Le15km,
    /// Over 15, within 30 km.
    #[serde(rename = "le_30km")]
    Le30km,
    /// Over 30, within 60 km.
    #[serde(rename = "le_60km")]
    Le60km,
    /// Over 60 km, or none within the horizon.
    #[serde(rename = "gt_60km")]
    Gt60km,
}

impl Band {
    /// The band of a distance; `None` (nothing within the horizon) is the
    /// last band.
    pub fn of(distance_m: Option<f64>) -> Self {
        match distance_m {
            Some(d) if d <= 5_000.0 => Self::Le5km,
            Some(d) if d <= 15_000.0 => Self::Le15km,
            Some(d) if d <= 30_000.0 => Self::Le30km,
            Some(d) if d <= 60_000.0 => Self::Le60km,
            _ => Self::Gt60km,
        }
    }

    /// Its upper bound in metres (`None` for the last).
    pub fn upper_m(self) -> Option<f64> {
        match self {
            Self::Le5km => Some(5_000.0),
            Self::Le15km => Some(15_000.0),
            Self::Le30km => Some(30_000.0),
            Self::Le60km => Some(60_000.0),
            Self::Gt60km => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Le5km => "le_5km",
            Self::Le15km => "le_15km",
            Self::Le30km => "le_30km",
            Self::Le60km => "le_60km",
            Self::Gt60km => "gt_60km",
        }
    }

    /// For a legend or a spreadsheet (the same in both languages).
    pub fn label(self) -> &'static str {
        match self {
            Self::Le5km => "≤ 5 km",
            Self::Le15km => "≤ 15 km",
            Self::Le30km => "≤ 30 km",
            Self::Le60km => "≤ 60 km",
            Self::Gt60km => "> 60 km",
        }
    }
}

/// The coverage radius in whole kilometres. Readers given bands may only
/// ask for a band's edge, so that every figure they see is a function of
/// the bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RadiusKm(u32);

impl RadiusKm {
    pub const DEFAULT: RadiusKm = RadiusKm(30);
    pub const MAX: u32 = 100;

    pub fn new(km: u32, exact: bool) -> Result<Self, Invalid> {
        if exact {
            if (1..=Self::MAX).contains(&km) {
                Ok(Self(km))
            } else {
                Err(Invalid::new("range", "radius_km must be between 1 and 100"))
            }
        } else if BAND_EDGES_KM.contains(&km) {
            Ok(Self(km))
        } else {
            Err(Invalid::new(
                "band",
                "radius_km must be 5, 15, 30 or 60: distances are published in those bands",
            ))
        }
    }

    pub fn km(self) -> u32 {
        self.0
    }

    pub fn metres(self) -> f64 {
        f64::from(self.0) * 1000.0
    }
}

/// Who the review is for: every rule a service states on a field given
/// here must admit every such person; a field left out does not exclude.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileBand {
    /// Inclusive age band, whole years.
    pub min_age: Option<u8>,
    pub max_age: Option<u8>,
    pub gender: Option<Gender>,
    pub victim_status: Option<VictimStatus>,
    pub languages: Option<Vec<LanguageCode>>,
    pub documents: Option<Vec<DocumentType>>,
}

impl ProfileBand {
    /// The band's ages, both ends inclusive; one end alone bounds one side
    /// (the other is 0 or 130).
    pub fn ages(&self) -> (Option<u8>, Option<u8>) {
        match (self.min_age, self.max_age) {
            (None, None) => (None, None),
            (min, max) => (Some(min.unwrap_or(0)), Some(max.unwrap_or(130))),
        }
    }
}

/// What a planner asks.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageQuery {
    /// Categories reviewed, each on its own; all twelve by default.
    pub categories: Vec<Category>,
    /// Provinces reviewed; empty: the whole country.
    pub provinces: Vec<ProvinceCode>,
    pub band: ProfileBand,
    pub radius: RadiusKm,
}

/// One ward's result for one category, as measured (exact metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// Metres from the ward's reference point to the nearest eligible
    /// in-person location, `None` when none is within [`HORIZON_M`].
    pub nearest_in_person_m: Option<f64>,
    /// Whether an eligible remote service covers the ward.
    pub remote: bool,
}

impl Reach {
    /// Whether an eligible in-person service is within the radius.
    pub fn in_person(&self, radius: RadiusKm) -> bool {
        self.nearest_in_person_m
            .is_some_and(|d| d <= radius.metres())
    }

    /// Whether an eligible service can take a person there at all.
    pub fn served(&self, radius: RadiusKm) -> bool {
        self.in_person(radius) || self.remote
    }
}

/// Wards and the people in them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Count {
    pub wards: u32,
    /// The sum of the wards' published populations (a ward without one
    /// counts 0).
    pub population: u64,
}

impl Count {
    fn add(&mut self, population: Option<i32>) {
        self.wards += 1;
        self.population += population.and_then(|p| u64::try_from(p).ok()).unwrap_or(0);
    }
}

/// The totals of an area (a province, the country) for one category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Totals {
    /// Every ward reviewed.
    pub all: Count,
    /// Wards with no eligible in-person service within the radius.
    pub no_in_person_within_radius: Count,
    /// Wards with no eligible service at all: none in person within the
    /// radius, and no remote one covering them.
    pub no_service: Count,
}

impl Totals {
    pub fn add(&mut self, reach: &Reach, population: Option<i32>, radius: RadiusKm) {
        self.all.add(population);
        if !reach.in_person(radius) {
            self.no_in_person_within_radius.add(population);
        }
        if !reach.served(radius) {
            self.no_service.add(population);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_closed_above() {
        assert_eq!(Band::of(Some(0.0)), Band::Le5km);
        assert_eq!(Band::of(Some(5_000.0)), Band::Le5km);
        assert_eq!(Band::of(Some(5_000.1)), Band::Le15km);
        assert_eq!(Band::of(Some(60_000.0)), Band::Le60km);
        assert_eq!(Band::of(Some(60_000.1)), Band::Gt60km);
        assert_eq!(Band::of(None), Band::Gt60km);
        for edge in BAND_EDGES_KM {
            let metres = f64::from(edge) * 1000.0;
            assert_eq!(Band::of(Some(metres)).upper_m(), Some(metres));
        }
    }

    #[test]
    fn banded_readers_ask_only_for_band_edges() {
        assert!(RadiusKm::new(30, false).is_ok());
        assert_eq!(RadiusKm::new(31, false).unwrap_err().rule, "band");
        assert!(RadiusKm::new(31, true).is_ok());
        assert_eq!(RadiusKm::new(0, true).unwrap_err().rule, "range");
        assert_eq!(RadiusKm::new(101, true).unwrap_err().rule, "range");
    }

    #[test]
    fn a_ward_is_served_in_person_within_the_radius_or_remotely() {
        let radius = RadiusKm::new(30, true).unwrap();
        let mut totals = Totals::default();
        let near = Reach {
            nearest_in_person_m: Some(30_000.0),
            remote: false,
        };
        let far_but_remote = Reach {
            nearest_in_person_m: Some(30_000.5),
            remote: true,
        };
        let nothing = Reach {
            nearest_in_person_m: None,
            remote: false,
        };
        totals.add(&near, Some(100), radius);
        totals.add(&far_but_remote, Some(20), radius);
        totals.add(&nothing, None, radius);
        assert_eq!(
            totals.all,
            Count {
                wards: 3,
                population: 120
            }
        );
        assert_eq!(
            totals.no_in_person_within_radius,
            Count {
                wards: 2,
                population: 20
            }
        );
        assert_eq!(
            totals.no_service,
            Count {
                wards: 1,
                population: 0
            }
        );
    }

    #[test]
    fn an_age_band_with_one_end_is_bounded_on_that_side() {
        let under_18 = ProfileBand {
            max_age: Some(17),
            ..ProfileBand::default()
        };
        assert_eq!(under_18.ages(), (Some(0), Some(17)));
        assert_eq!(ProfileBand::default().ages(), (None, None));
    }
}
