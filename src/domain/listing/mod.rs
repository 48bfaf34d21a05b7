//! What an agency writes: a service or a location as one document, and the
//! rules every document must pass before it reaches the database.
//!
//! A document is the whole writable state of a resource (`PUT` replaces it,
//! `PATCH` merges into it, an import compares it), so that "did anything
//! change" is a plain comparison and the audit trail can store it as is.
//! [`Validated`] can only be built by `validate`, so the database layer
//! never writes an unchecked document.

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveTime, Timelike};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::{ValidateEmail, ValidateUrl};

use super::Invalid;
use super::category::Category;
use super::ids::{LocationId, OrganizationId};
use super::province::ProvinceCode;
use super::service::{
    CountryCode, DeliveryMode, DocumentType, Gender, LanguageCode, PhoneType, ServiceStatus,
    VictimStatus, Weekday,
};
use super::ward::WardCode;

mod extent;
mod text;
mod validate;

pub use extent::*;
pub use text::*;
pub use validate::*;

/// Longest name, in characters.
pub const NAME_MAX: usize = 300;
/// Longest description.
pub const DESCRIPTION_MAX: usize = 10_000;
/// Longest short text (addresses, fees, units…).
pub const SHORT_TEXT_MAX: usize = 1_000;
/// Most phones, schedules or service areas in one document.
pub const PARTS_MAX: usize = 50;
/// Most positions in all of a service's polygons together.
pub const POLYGON_POSITIONS_MAX: usize = 100_000;
/// Vietnam's extent, islands included, with a margin: latitude and
/// longitude ranges a location must fall in.
pub const VIETNAM_LATITUDE: (f64, f64) = (6.0, 24.0);
pub const VIETNAM_LONGITUDE: (f64, f64) = (101.5, 118.0);

fn yes() -> bool {
    true
}

fn active() -> ServiceStatus {
    ServiceStatus::Active
}

/// A service as an agency writes it: everything but its id, organisation
/// details, locations' contents (referenced by id), verification and
/// timestamps, which the server keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDocument {
    /// The organisation running the service. An agency key may leave it
    /// out (its own organisation) and cannot name another; it cannot
    /// change once the service exists.
    #[serde(default)]
    pub organization_id: Option<OrganizationId>,
    /// Name in Vietnamese, 1 to 300 characters.
    #[schema(schema_with = schemas::name)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_name)]
    pub name_en: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::description)]
    pub description: String,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_description)]
    pub description_en: Option<String>,
    /// An `http(s)` URL.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// `DELETE` archives (sets `inactive`); this field can set any status.
    #[serde(default = "active")]
    pub status: ServiceStatus,
    /// At least one.
    #[schema(min_items = 1)]
    pub categories: Vec<Category>,
    /// At least one; `in_person` needs at least one of `location_ids`.
    #[schema(min_items = 1)]
    pub delivery: Vec<DeliveryMode>,
    #[serde(default = "yes")]
    pub accepting_referrals: bool,
    #[serde(default)]
    pub eligibility: EligibilityDocument,
    /// ISO 639 codes of the languages the service works in.
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub interpretation_available: bool,
    #[serde(default = "yes")]
    pub free: bool,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub fees_description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub fees_description_en: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub application_process: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub application_process_en: Option<String>,
    /// Places offered and left; `PUT /v1/services/{id}/capacity` changes
    /// only this.
    #[serde(default)]
    pub capacity: Option<CapacityDocument>,
    /// Where the service is offered in person: locations of the same
    /// organisation.
    #[serde(default)]
    pub location_ids: Vec<LocationId>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub phones: Vec<PhoneDocument>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub schedules: Vec<ScheduleDocument>,
    /// Where the service serves people; none means everywhere.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub service_areas: Vec<ServiceAreaDocument>,
}

/// Who the service admits; a rule left out (or `null`) admits anyone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityDocument {
    /// Inclusive, whole years, 0 to 130.
    #[serde(default)]
    #[schema(maximum = 130)]
    pub min_age: Option<u8>,
    /// Inclusive, whole years, 0 to 130, not below `min_age`.
    #[serde(default)]
    #[schema(maximum = 130)]
    pub max_age: Option<u8>,
    #[serde(default)]
    pub genders: Option<Vec<Gender>>,
    #[serde(default)]
    pub victim_statuses: Option<Vec<VictimStatus>>,
    /// ISO 3166-1 alpha-2 codes.
    #[serde(default)]
    pub nationalities: Option<Vec<String>>,
    /// Province codes (see `GET /v1/provinces`).
    #[serde(default)]
    pub residence_provinces: Option<Vec<String>>,
    #[serde(default)]
    pub required_documents: Vec<DocumentType>,
}

/// Places offered and left.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacityDocument {
    /// Places free now, 0 to 1,000,000, at most `maximum`.
    #[serde(default)]
    #[schema(maximum = 1000000)]
    pub available: Option<u32>,
    #[serde(default)]
    #[schema(maximum = 1000000)]
    pub maximum: Option<u32>,
    /// What is counted: `beds`, `places`…
    #[serde(default)]
    #[schema(schema_with = schemas::optional_unit)]
    pub unit: Option<String>,
}

/// A phone number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneDocument {
    /// Digits, spaces, `.`, `-`, `(`, `)`, an optional leading `+`; 3 to 20
    /// digits.
    #[schema(
        example = "+84 214 555 0101",
        pattern = r"^\+?[0-9][ .()-]*([0-9][ .()-]*){2,19}$",
        max_length = 32
    )]
    pub number: String,
    #[serde(default)]
    #[schema(pattern = r"^[0-9]{1,10}$")]
    pub extension: Option<String>,
    #[serde(rename = "type", default = "voice")]
    pub phone_type: PhoneType,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub description_en: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub languages: Vec<String>,
}

fn voice() -> PhoneType {
    PhoneType::Voice
}

/// Weekly opening hours for some days, local time (UTC+7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDocument {
    #[schema(min_items = 1)]
    pub byday: Vec<Weekday>,
    /// `HH:MM[:SS]`; with `closes_at`, or both left out for all day.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "07:30:00")]
    pub opens_at: Option<NaiveTime>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "11:30:00")]
    pub closes_at: Option<NaiveTime>,
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    #[serde(default)]
    pub valid_to: Option<NaiveDate>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub description_en: Option<String>,
}

/// A whole province, or a GeoJSON polygon: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAreaDocument {
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub description_en: Option<String>,
    #[serde(default)]
    #[schema(schema_with = super::province::optional_schema)]
    pub province_code: Option<String>,
    /// A ward or commune served whole (a commune health station, a VBSP
    /// transaction point): its five-digit code (see `GET /v1/wards`). It
    /// covers a person whose point lies in the ward, or who is given by
    /// its code.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{5}$", example = "02647")]
    pub ward_code: Option<String>,
    /// A GeoJSON (RFC 7946) `Polygon` or `MultiPolygon`, longitude first:
    /// closed rings of at least 4 positions, no self-intersection.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub extent: Option<serde_json::Value>,
}

/// A location as an agency writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationDocument {
    /// The organisation receiving people there; as for services.
    #[serde(default)]
    pub organization_id: Option<OrganizationId>,
    #[schema(schema_with = schemas::name)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_name)]
    pub name_en: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_description)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_description)]
    pub description_en: Option<String>,
    /// Street address; ward and province are given by their codes.
    #[serde(default)]
    #[schema(schema_with = schemas::optional_short_text)]
    pub address: Option<String>,
    /// A ward of `province_code` (its wards: `GET /v1/provinces/{code}`).
    #[serde(default)]
    #[schema(pattern = r"^[0-9]{5}$")]
    pub ward_code: Option<String>,
    #[schema(schema_with = super::province::schema)]
    pub province_code: String,
    /// WGS84, inside Vietnam and the province.
    #[schema(minimum = 6.0, maximum = 24.0)]
    pub latitude: f64,
    #[schema(minimum = 101.5, maximum = 118.0)]
    pub longitude: f64,
    /// A shelter: the public never sees its address or exact point.
    #[serde(default)]
    pub confidential: bool,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub phones: Vec<PhoneDocument>,
    /// A public location within 1 km of a confidential location of the
    /// same organisation (or the other way round) is refused
    /// (`near_confidential`): its public point would locate the shelter.
    /// `true` writes it anyway, knowingly; the audit trail records it.
    /// Not stored: each write that leaves the two close says it again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub acknowledge_near_confidential: bool,
}

/// An organisation, as an admin writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationDocument {
    #[schema(schema_with = schemas::name)]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_name)]
    pub name_en: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schemas::description)]
    pub description: String,
    #[serde(default)]
    #[schema(schema_with = schemas::optional_description)]
    pub description_en: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// An `http(s)` URL.
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub phones: Vec<PhoneDocument>,
}

/// A document that passed every rule of [`validate`]-style checking.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated<T, V = ()> {
    document: T,
    values: V,
}

impl<T, V> Validated<T, V> {
    pub fn get(&self) -> &T {
        &self.document
    }

    /// What validation parsed, for the writer not to parse it again.
    pub fn values(&self) -> &V {
        &self.values
    }

    pub fn into_inner(self) -> T {
        self.document
    }
}

/// A service's values that validation parses: its codes and polygons as
/// the types the writer stores.
#[derive(Debug, Clone)]
pub struct ServiceValues {
    pub residence_provinces: Option<Vec<ProvinceCode>>,
    /// One per service area, in order.
    pub areas: Vec<AreaValue>,
}

/// A service area as parsed: a province, a ward, or a polygon.
#[derive(Debug, Clone)]
pub enum AreaValue {
    Province(ProvinceCode),
    Ward(WardCode),
    Extent(geo::MultiPolygon<f64>),
}

/// A location's values that validation parses.
#[derive(Debug, Clone, Copy)]
pub struct LocationValues {
    pub province: ProvinceCode,
}

/// Field errors, by JSON path.
#[derive(Debug, Default)]
pub struct Problems(Vec<(String, Invalid)>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, rule: &'static str, message: impl Into<String>) {
        self.0.push((path.into(), Invalid::new(rule, message)));
    }

    fn check<T>(&mut self, path: impl Into<String>, result: Result<T, Invalid>) -> Option<T> {
        result
            .map_err(|invalid| self.0.push((path.into(), invalid)))
            .ok()
    }

    fn text(&mut self, path: &str, value: &str, min: usize, max: usize) {
        let length = value.chars().count();
        if length < min || length > max {
            self.push(
                path,
                "length",
                format!("must be {min} to {max} characters long"),
            );
        } else if value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            self.push(path, "format", "must not contain control characters");
        }
    }

    /// A name: text that must show something, and read in the order it is
    /// written.
    fn name(&mut self, path: &str, value: &str) {
        let before = self.0.len();
        self.text(path, value, 1, NAME_MAX);
        if self.0.len() > before {
            return;
        }
        if value.chars().any(bidi_control) {
            self.push(
                path,
                "format",
                "must not contain bidirectional override or isolate controls (U+202A to U+202E, U+2066 to U+2069)",
            );
        } else if value.chars().all(|c| c.is_whitespace() || invisible(c)) {
            self.push(
                path,
                "blank",
                "must show something: not only spaces or invisible characters",
            );
        }
    }

    /// An organisation's or a service's names and descriptions, in
    /// Vietnamese and in English: a name is required, a description may
    /// be empty.
    fn titles(
        &mut self,
        name: &str,
        name_en: &Option<String>,
        description: &str,
        description_en: &Option<String>,
    ) {
        self.name("name", name);
        self.optional_name("name_en", name_en);
        self.text("description", description, 0, DESCRIPTION_MAX);
        self.optional_text("description_en", description_en, DESCRIPTION_MAX);
    }

    fn optional_name(&mut self, path: &str, value: &Option<String>) {
        if let Some(value) = value {
            self.name(path, value);
        }
    }

    fn optional_text(&mut self, path: &str, value: &Option<String>, max: usize) {
        if let Some(value) = value {
            self.text(path, value, 1, max);
        }
    }

    fn languages(&mut self, path: &str, codes: &[String]) {
        for (i, code) in codes.iter().enumerate() {
            self.check(format!("{path}[{i}]"), LanguageCode::parse(code));
        }
        if codes.len() > PARTS_MAX {
            self.push(path, "length", format!("at most {PARTS_MAX} items"));
        }
    }

    fn finish<T>(self, document: T) -> Result<Validated<T>, Vec<(String, Invalid)>> {
        self.finish_with(document, ())
    }

    /// The document with what was parsed of it, if nothing broke a rule;
    /// `values` is only read then, so it may be partial otherwise.
    fn finish_with<T, V>(
        self,
        document: T,
        values: V,
    ) -> Result<Validated<T, V>, Vec<(String, Invalid)>> {
        if self.0.is_empty() {
            Ok(Validated { document, values })
        } else {
            Err(self.0)
        }
    }
}

/// The top-level fields whose values differ between two documents (as
/// JSON), for the history.
pub fn changed_fields(before: &serde_json::Value, after: &serde_json::Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let keys: HashSet<&String> = before.keys().chain(after.keys()).collect();
    let mut changed: Vec<String> = keys
        .into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .cloned()
        .collect();
    changed.sort();
    changed
}

#[cfg(test)]
mod tests {

    /// The patterns the API's description states and the rules agree on
    /// every character of the Basic Multilingual Plane, alone, after a
    /// letter and doubled.
    #[test]
    fn the_text_patterns_are_the_rules() {
        let name = regex::Regex::new(NAME_PATTERN).unwrap();
        let text = regex::Regex::new(TEXT_PATTERN).unwrap();
        let name_ok = |value: &str| {
            let mut problems = Problems::default();
            problems.name("name", value);
            problems.0.is_empty()
        };
        let text_ok = |value: &str| {
            let mut problems = Problems::default();
            problems.text("text", value, 0, usize::MAX);
            problems.0.is_empty()
        };
        for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
            for value in [c.to_string(), format!("a{c}"), format!("{c}{c}")] {
                assert_eq!(name.is_match(&value), name_ok(&value), "name {:?}", value);
                assert_eq!(text.is_match(&value), text_ok(&value), "text {:?}", value);
            }
        }
    }

    use super::*;
    use serde_json::json;

    fn service() -> ServiceDocument {
        serde_json::from_value(json!({
            "name": "Trợ giúp pháp lý",
            "categories": ["legal_aid"],
            "delivery": ["remote"],
        }))
        .unwrap()
    }

    fn fields(
        result: Result<Validated<ServiceDocument, ServiceValues>, Vec<(String, Invalid)>>,
    ) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|(path, invalid)| format!("{path}:{}", invalid.rule))
            .collect()
    }

    #[test]
    fn a_minimal_service_is_valid() {
        assert!(service().validate().is_ok());
    }

    #[test]
    fn reports_every_broken_rule_with_its_path() {
        let mut document = service();
        document.name = String::new();
        document.delivery = vec![DeliveryMode::InPerson];
        document.eligibility.min_age = Some(30);
        document.eligibility.max_age = Some(20);
        document.eligibility.residence_provinces = Some(vec!["99".into()]);
        document.url = Some("javascript:alert(1)".into());
        document.phones.push(PhoneDocument {
            number: "call me".into(),
            extension: None,
            phone_type: PhoneType::Voice,
            description: None,
            description_en: None,
            languages: vec!["VI".into()],
        });
        let found = fields(document.validate());
        for expected in [
            "name:length",
            "location_ids:required",
            "eligibility.max_age:ordered",
            "eligibility.residence_provinces[0]:known_province",
            "url:url",
            "phones[0].number:format",
            "phones[0].languages[0]:format",
        ] {
            assert!(
                found.iter().any(|f| f == expected),
                "{expected} in {found:?}"
            );
        }
    }

    #[test]
    fn polygons_must_be_closed_and_simple() {
        let open = json!({"type": "Polygon", "coordinates": [[[105.0, 21.0], [106.0, 21.0], [106.0, 22.0], [105.5, 22.5]]]});
        assert_eq!(parse_extent(&open).unwrap_err().rule, "closed_ring");
        let bowtie = json!({"type": "Polygon", "coordinates": [[[105.0, 21.0], [106.0, 22.0], [106.0, 21.0], [105.0, 22.0], [105.0, 21.0]]]});
        assert_eq!(parse_extent(&bowtie).unwrap_err().rule, "valid_polygon");
        let point = json!({"type": "Point", "coordinates": [105.0, 21.0]});
        assert_eq!(parse_extent(&point).unwrap_err().rule, "geojson_type");
        let square = json!({"type": "Polygon", "coordinates": [[[105.0, 21.0], [106.0, 21.0], [106.0, 22.0], [105.0, 22.0], [105.0, 21.0]]]});
        assert!(parse_extent(&square).is_ok());
    }

    #[test]
    fn edges_must_not_wrap_the_globe_or_join_antipodes() {
        for coordinates in [
            json!([[[0, 0], [180, 0], [90, 45], [0, 0]]]),
            json!([[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]),
            json!([[[0, -90], [0, 90], [10, 0], [0, -90]]]),
            json!([[[179, 10], [-179, 10], [-179, 11], [179, 10]]]),
        ] {
            let polygon = json!({"type": "Polygon", "coordinates": coordinates});
            assert_eq!(
                parse_extent(&polygon).unwrap_err().rule,
                "edge_span",
                "{polygon}"
            );
        }
        let wide =
            json!({"type": "Polygon", "coordinates": [[[0, 0], [179.5, 0], [179.5, 10], [0, 0]]]});
        assert!(parse_extent(&wide).is_ok());
        let polar =
            json!({"type": "Polygon", "coordinates": [[[0, 80], [90, 90], [0, 90], [0, 80]]]});
        assert!(
            parse_extent(&polar).is_ok(),
            "one pole is a position like any other"
        );
    }

    #[test]
    fn a_polygon_and_its_multipolygon_are_the_same_area() {
        let mut a = service();
        a.service_areas.push(ServiceAreaDocument {
            description: None,
            description_en: None,
            province_code: None,
            ward_code: None,
            extent: Some(json!({"type": "Polygon", "coordinates": [[[105, 21], [106, 21], [106, 22], [105, 21]]]})),
        });
        let mut b = service();
        b.service_areas.push(ServiceAreaDocument {
            extent: Some(json!({"type": "MultiPolygon", "coordinates": [[[[105.0, 21.0], [106.0, 21.0], [106.0, 22.0], [105.0, 21.0]]]]})),
            ..a.service_areas[0].clone()
        });
        assert_eq!(a.normalized(), b.normalized());
    }

    #[test]
    fn normalizing_makes_order_irrelevant() {
        let mut a = service();
        a.categories = vec![Category::Shelter, Category::LegalAid, Category::Shelter];
        let mut b = service();
        b.categories = vec![Category::LegalAid, Category::Shelter];
        assert_eq!(a.normalized(), b.normalized());
    }

    #[test]
    fn locations_must_be_in_vietnam() {
        let location: LocationDocument = serde_json::from_value(json!({
            "name": "X", "province_code": "01", "latitude": 48.85, "longitude": 2.35
        }))
        .unwrap();
        let problems = location.validate().unwrap_err();
        assert!(
            problems
                .iter()
                .any(|(path, i)| path == "latitude" && i.rule == "in_vietnam")
        );
        assert!(
            problems
                .iter()
                .any(|(path, i)| path == "longitude" && i.rule == "in_vietnam")
        );
    }

    #[test]
    fn lists_which_fields_changed() {
        let before = json!({"name": "a", "phones": [], "url": null});
        let after = json!({"name": "b", "phones": [], "url": "https://x.vn"});
        assert_eq!(changed_fields(&before, &after), vec!["name", "url"]);
    }
}
