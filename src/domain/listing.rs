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

impl OrganizationDocument {
    pub fn validate(self) -> Result<Validated<Self>, Vec<(String, Invalid)>> {
        let mut problems = Problems::default();
        problems.name("name", &self.name);
        problems.optional_name("name_en", &self.name_en);
        problems.text("description", &self.description, 0, DESCRIPTION_MAX);
        problems.optional_text("description_en", &self.description_en, DESCRIPTION_MAX);
        check_url(&mut problems, "website", &self.website);
        check_email(&mut problems, "email", &self.email);
        check_phones(&mut problems, "phones", &self.phones);
        problems.finish(self)
    }
}

/// Bidirectional embedding, override and isolate controls: in a name they
/// reorder what follows, so a listing can show another name than it holds.
fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that render as nothing, of the Basic Multilingual Plane:
/// the format characters (soft hyphen, zero-width space and joiners,
/// direction marks, word joiner, invisible operators, byte-order mark…),
/// the combining grapheme joiner, variation selectors and the blank
/// fillers of Hangul, Khmer, Mongolian and Braille. [`NAME_PATTERN`]
/// states the same list.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

fn invisible(c: char) -> bool {
    INVISIBLE
        .iter()
        .any(|(from, to)| (*from..=*to).contains(&c))
}

/// What a name may be, as a pattern (ECMA-262 and Rust's `regex` read it
/// alike) for the API's description: no control character but a line
/// break or a tab, no bidirectional control, and at least one character
/// that is neither a space nor [`INVISIBLE`]. Tested against the rule.
pub const NAME_PATTERN: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*[^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u00AD\u034F\u0600-\u0605\u061C\u06DD\u070F\u115F-\u1160\u17B4-\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB][^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$";

/// What any other text may be: no control character but a line break or a
/// tab.
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$";

/// The schemas of texts, for `#[schema(schema_with = …)]`: the rules above
/// and their lengths, stated once.
pub mod schemas {
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

    fn text(pattern: &str, min: usize, max: usize, nullable: bool) -> Object {
        let kind = if nullable {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::Type(Type::String)
        };
        ObjectBuilder::new()
            .schema_type(kind)
            .pattern(Some(pattern))
            .min_length((min > 0).then_some(min))
            .max_length(Some(max))
            .build()
    }

    /// A name, 1 to 300 characters.
    pub fn name() -> Object {
        text(super::NAME_PATTERN, 1, super::NAME_MAX, false)
    }

    /// A name that may be left out.
    pub fn optional_name() -> Object {
        text(super::NAME_PATTERN, 1, super::NAME_MAX, true)
    }

    /// A description, possibly empty.
    pub fn description() -> Object {
        text(super::TEXT_PATTERN, 0, super::DESCRIPTION_MAX, false)
    }

    /// A description that may be left out, but not empty.
    pub fn optional_description() -> Object {
        text(super::TEXT_PATTERN, 1, super::DESCRIPTION_MAX, true)
    }

    /// A short text (fees, an address…) that may be left out.
    pub fn optional_short_text() -> Object {
        text(super::TEXT_PATTERN, 1, super::SHORT_TEXT_MAX, true)
    }

    /// What a capacity counts, 1 to 50 characters.
    pub fn optional_unit() -> Object {
        text(super::TEXT_PATTERN, 1, 50, true)
    }
}

/// Whether a text holds a control character other than a line break or a
/// tab (PostgreSQL refuses NUL outright).
fn has_control(value: &str) -> bool {
    value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Dates PostgreSQL stores: years 1 to 9999.
pub fn plausible_date(date: NaiveDate) -> Result<(), Invalid> {
    use chrono::Datelike;
    if (1..=9999).contains(&date.year()) {
        Ok(())
    } else {
        Err(Invalid::new(
            "range",
            "dates fall between the years 1 and 9999",
        ))
    }
}

/// The day a listing is recorded as verified: a plausible date, and not in
/// the future (a day's grace for time zones).
pub fn verification_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, Invalid> {
    plausible_date(date)?;
    if date > today + chrono::Days::new(1) {
        return Err(Invalid::new(
            "not_future",
            "a listing cannot be verified in the future",
        ));
    }
    Ok(date)
}

fn check_url(problems: &mut Problems, path: &str, url: &Option<String>) {
    if let Some(url) = url
        && (url.len() > 2048
            || has_control(url)
            || !(url.starts_with("http://") || url.starts_with("https://"))
            || !url.validate_url())
    {
        problems.push(path, "url", "must be an http or https URL");
    }
}

fn check_email(problems: &mut Problems, path: &str, email: &Option<String>) {
    if let Some(email) = email
        && (email.len() > 254 || has_control(email) || !email.validate_email())
    {
        problems.push(path, "email", "must be an email address");
    }
}

/// A document that passed every rule of [`validate`]-style checking.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated<T>(T);

impl<T> Validated<T> {
    pub fn get(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
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
        if self.0.is_empty() {
            Ok(Validated(document))
        } else {
            Err(self.0)
        }
    }
}

fn sorted_unique<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values.dedup();
    values
}

fn phone_number(number: &str) -> Result<(), Invalid> {
    let body = number.strip_prefix('+').unwrap_or(number);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let allowed = body
        .bytes()
        .all(|b| b.is_ascii_digit() || b" .()-".contains(&b));
    if allowed
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && (3..=20).contains(&digits)
        && body.len() <= 31
    {
        Ok(())
    } else {
        Err(Invalid::new(
            "format",
            "a phone number is 3 to 20 digits, optionally with a leading +, spaces, dots, \
             dashes or parentheses",
        ))
    }
}

fn check_phones(problems: &mut Problems, path: &str, phones: &[PhoneDocument]) {
    if phones.len() > PARTS_MAX {
        problems.push(path, "length", format!("at most {PARTS_MAX} phones"));
    }
    for (i, phone) in phones.iter().enumerate() {
        let at = format!("{path}[{i}]");
        problems.check(format!("{at}.number"), phone_number(&phone.number));
        if let Some(extension) = &phone.extension
            && (extension.is_empty()
                || extension.len() > 10
                || !extension.bytes().all(|b| b.is_ascii_digit()))
        {
            problems.push(
                format!("{at}.extension"),
                "format",
                "an extension is 1 to 10 digits",
            );
        }
        problems.optional_text(
            &format!("{at}.description"),
            &phone.description,
            SHORT_TEXT_MAX,
        );
        problems.optional_text(
            &format!("{at}.description_en"),
            &phone.description_en,
            SHORT_TEXT_MAX,
        );
        problems.languages(&format!("{at}.languages"), &phone.languages);
    }
}

/// The rings of a GeoJSON polygon, as `[longitude, latitude]` positions.
type Rings = Vec<Vec<[f64; 2]>>;

#[derive(Deserialize)]
#[serde(tag = "type", content = "coordinates")]
enum PolygonGeometry {
    Polygon(Vec<Vec<Vec<f64>>>),
    MultiPolygon(Vec<Vec<Vec<Vec<f64>>>>),
}

fn positions(ring: Vec<Vec<f64>>) -> Result<Vec<[f64; 2]>, Invalid> {
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
fn plain_edge([lon_a, lat_a]: [f64; 2], [lon_b, lat_b]: [f64; 2]) -> bool {
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

impl ServiceDocument {
    /// Puts lists whose order means nothing in one order, so that equal
    /// documents compare equal.
    pub fn normalized(mut self) -> Self {
        self.categories = sorted_unique(self.categories);
        self.delivery = sorted_unique(self.delivery);
        self.location_ids = sorted_unique(self.location_ids);
        let eligibility = &mut self.eligibility;
        eligibility.genders = eligibility.genders.take().map(sorted_unique);
        eligibility.victim_statuses = eligibility.victim_statuses.take().map(sorted_unique);
        eligibility.nationalities = eligibility.nationalities.take().map(sorted_unique);
        eligibility.residence_provinces = eligibility.residence_provinces.take().map(sorted_unique);
        eligibility.required_documents =
            sorted_unique(std::mem::take(&mut eligibility.required_documents));
        for area in &mut self.service_areas {
            if let Some(extent) = area.extent.as_mut()
                && let Ok(multi) = parse_extent(extent)
            {
                *extent = extent_json(&multi);
            }
        }
        self
    }

    /// Checks every rule that needs no database; reports every problem.
    pub fn validate(self) -> Result<Validated<Self>, Vec<(String, Invalid)>> {
        let document = self.normalized();
        let mut problems = Problems::default();
        problems.name("name", &document.name);
        problems.optional_name("name_en", &document.name_en);
        problems.text("description", &document.description, 0, DESCRIPTION_MAX);
        problems.optional_text("description_en", &document.description_en, DESCRIPTION_MAX);
        check_url(&mut problems, "url", &document.url);
        check_email(&mut problems, "email", &document.email);
        if document.categories.is_empty() {
            problems.push("categories", "required", "at least one category");
        }
        if document.delivery.is_empty() {
            problems.push("delivery", "required", "at least one delivery mode");
        }
        if document.delivery.contains(&DeliveryMode::InPerson) && document.location_ids.is_empty() {
            problems.push(
                "location_ids",
                "required",
                "an in-person service needs at least one location",
            );
        }
        if document.location_ids.len() > PARTS_MAX {
            problems.push("location_ids", "length", format!("at most {PARTS_MAX}"));
        }
        let eligibility = &document.eligibility;
        for (field, age) in [
            ("min_age", eligibility.min_age),
            ("max_age", eligibility.max_age),
        ] {
            if age.is_some_and(|age| age > 130) {
                problems.push(
                    format!("eligibility.{field}"),
                    "range",
                    "ages are 0 to 130 years",
                );
            }
        }
        if let (Some(min), Some(max)) = (eligibility.min_age, eligibility.max_age)
            && min > max
        {
            problems.push(
                "eligibility.max_age",
                "ordered",
                "max_age must not be below min_age",
            );
        }
        for (field, empty) in [
            ("genders", eligibility.genders.as_ref().map(Vec::is_empty)),
            (
                "victim_statuses",
                eligibility.victim_statuses.as_ref().map(Vec::is_empty),
            ),
            (
                "nationalities",
                eligibility.nationalities.as_ref().map(Vec::is_empty),
            ),
            (
                "residence_provinces",
                eligibility.residence_provinces.as_ref().map(Vec::is_empty),
            ),
        ] {
            if empty == Some(true) {
                problems.push(
                    format!("eligibility.{field}"),
                    "non_empty",
                    "an empty list would admit nobody; leave the rule out to admit anyone",
                );
            }
        }
        for (i, code) in eligibility.nationalities.iter().flatten().enumerate() {
            problems.check(
                format!("eligibility.nationalities[{i}]"),
                CountryCode::parse(code),
            );
        }
        for (i, code) in eligibility.residence_provinces.iter().flatten().enumerate() {
            problems.check(
                format!("eligibility.residence_provinces[{i}]"),
                ProvinceCode::parse(code),
            );
        }
        problems.languages("languages", &document.languages);
        for (field, value) in [
            ("fees_description", &document.fees_description),
            ("fees_description_en", &document.fees_description_en),
            ("application_process", &document.application_process),
            ("application_process_en", &document.application_process_en),
        ] {
            problems.optional_text(field, value, SHORT_TEXT_MAX);
        }
        if let Some(capacity) = &document.capacity {
            check_capacity(&mut problems, "capacity", capacity);
        }
        check_phones(&mut problems, "phones", &document.phones);
        if document.schedules.len() > PARTS_MAX {
            problems.push("schedules", "length", format!("at most {PARTS_MAX}"));
        }
        for (i, schedule) in document.schedules.iter().enumerate() {
            let at = format!("schedules[{i}]");
            if schedule.byday.is_empty() {
                problems.push(format!("{at}.byday"), "required", "at least one day");
            }
            for (field, time) in [
                ("opens_at", schedule.opens_at),
                ("closes_at", schedule.closes_at),
            ] {
                // chrono reads `08:00:60` as a leap second, which PostgreSQL
                // would store as 08:01: a clock time has seconds 00–59.
                if time.is_some_and(|time| time.nanosecond() >= 1_000_000_000) {
                    problems.push(
                        format!("{at}.{field}"),
                        "time",
                        "a time of day is HH:MM or HH:MM:SS, seconds from 00 to 59",
                    );
                }
            }
            match (schedule.opens_at, schedule.closes_at) {
                (Some(opens), Some(closes)) if closes <= opens => problems.push(
                    format!("{at}.closes_at"),
                    "ordered",
                    "closes_at must be after opens_at",
                ),
                (Some(_), None) | (None, Some(_)) => problems.push(
                    format!("{at}.closes_at"),
                    "both_or_neither",
                    "give opens_at and closes_at together, or neither for all day",
                ),
                _ => {}
            }
            for (field, date) in [
                ("valid_from", schedule.valid_from),
                ("valid_to", schedule.valid_to),
            ] {
                if let Some(date) = date {
                    problems.check(format!("{at}.{field}"), plausible_date(date));
                }
            }
            if let (Some(from), Some(to)) = (schedule.valid_from, schedule.valid_to)
                && to < from
            {
                problems.push(
                    format!("{at}.valid_to"),
                    "ordered",
                    "valid_to must not be before valid_from",
                );
            }
            problems.optional_text(
                &format!("{at}.description"),
                &schedule.description,
                SHORT_TEXT_MAX,
            );
            problems.optional_text(
                &format!("{at}.description_en"),
                &schedule.description_en,
                SHORT_TEXT_MAX,
            );
        }
        if document.service_areas.len() > PARTS_MAX {
            problems.push("service_areas", "length", format!("at most {PARTS_MAX}"));
        }
        let mut positions = 0;
        for (i, area) in document.service_areas.iter().enumerate() {
            let at = format!("service_areas[{i}]");
            match (&area.province_code, &area.extent) {
                (Some(code), None) => {
                    problems.check(format!("{at}.province_code"), ProvinceCode::parse(code));
                }
                (None, Some(extent)) => {
                    if let Some(multi) =
                        problems.check(format!("{at}.extent"), parse_extent(extent))
                    {
                        positions += multi.iter().map(|p| p.exterior().0.len()).sum::<usize>();
                    }
                }
                _ => problems.push(at.clone(), "one_of", "give either province_code or extent"),
            }
            problems.optional_text(
                &format!("{at}.description"),
                &area.description,
                SHORT_TEXT_MAX,
            );
            problems.optional_text(
                &format!("{at}.description_en"),
                &area.description_en,
                SHORT_TEXT_MAX,
            );
        }
        if positions > POLYGON_POSITIONS_MAX {
            problems.push(
                "service_areas",
                "size",
                format!("at most {POLYGON_POSITIONS_MAX} positions in all areas together"),
            );
        }
        problems.finish(document)
    }
}

fn check_capacity(problems: &mut Problems, path: &str, capacity: &CapacityDocument) {
    for (field, value) in [
        ("available", capacity.available),
        ("maximum", capacity.maximum),
    ] {
        if value.is_some_and(|v| v > 1_000_000) {
            problems.push(format!("{path}.{field}"), "range", "0 to 1000000");
        }
    }
    if let (Some(available), Some(maximum)) = (capacity.available, capacity.maximum)
        && available > maximum
    {
        problems.push(
            format!("{path}.available"),
            "within_maximum",
            "available must not exceed maximum",
        );
    }
    if let Some(unit) = &capacity.unit {
        problems.text(&format!("{path}.unit"), unit, 1, 50);
    }
}

impl CapacityDocument {
    pub fn validate(self) -> Result<Validated<Self>, Vec<(String, Invalid)>> {
        let mut problems = Problems::default();
        check_capacity(&mut problems, "", &self);
        // Paths were built for a nested field; here the body is the capacity.
        for (path, _) in &mut problems.0 {
            *path = path.trim_start_matches('.').to_owned();
        }
        problems.finish(self)
    }
}

impl LocationDocument {
    pub fn validate(self) -> Result<Validated<Self>, Vec<(String, Invalid)>> {
        let mut problems = Problems::default();
        problems.name("name", &self.name);
        problems.optional_name("name_en", &self.name_en);
        problems.optional_text("description", &self.description, DESCRIPTION_MAX);
        problems.optional_text("description_en", &self.description_en, DESCRIPTION_MAX);
        problems.optional_text("address", &self.address, SHORT_TEXT_MAX);
        problems.check("province_code", ProvinceCode::parse(&self.province_code));
        if let Some(ward) = &self.ward_code
            && !(ward.len() == 5 && ward.bytes().all(|b| b.is_ascii_digit()))
        {
            problems.push("ward_code", "format", "a ward code is 5 digits");
        }
        if problems
            .check("latitude", super::geo::Coordinates::new(self.latitude, 0.0))
            .is_some()
            && !(VIETNAM_LATITUDE.0..=VIETNAM_LATITUDE.1).contains(&self.latitude)
        {
            problems.push("latitude", "in_vietnam", "the location must be in Vietnam");
        }
        if problems
            .check(
                "longitude",
                super::geo::Coordinates::new(0.0, self.longitude),
            )
            .is_some()
            && !(VIETNAM_LONGITUDE.0..=VIETNAM_LONGITUDE.1).contains(&self.longitude)
        {
            problems.push("longitude", "in_vietnam", "the location must be in Vietnam");
        }
        check_phones(&mut problems, "phones", &self.phones);
        problems.finish(self)
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

    fn fields(result: Result<Validated<ServiceDocument>, Vec<(String, Invalid)>>) -> Vec<String> {
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
