//! `POST /v1/matches`: the nearest services that take one person, need by
//! need, with the reasons.
//!
//! The request describes a person. It is parsed, used and forgotten: nothing
//! of it is stored, logged, or repeated in an error message.

use actix_web::{post, web};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::extract::ApiJson;
use super::problem::{ApiError, FieldError, responses};
use super::views::{CapacityView, LocationView, PhoneView, ScheduleView};
use crate::db::models::services::ServiceRecord;
use crate::domain::access::Audience;
use crate::domain::access::Role;
use crate::domain::category::Category;
use crate::domain::eligibility::{Profile, Rule};
use crate::domain::geo::{Coordinates, RadiusM};
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::matching::{Exclusion, MatchQuery, Origin};
use crate::domain::province::ProvinceCode;
use crate::domain::service::{
    CountryCode, DeliveryMode, DocumentType, Gender, LanguageCode, VictimStatus,
};
use crate::domain::ward::WardCode;
use crate::workflows::matching::{self as matcher, MatchError, Matched, NearMiss, NeedOutcome};

/// One person and their needs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "lat": 22.3363, "lon": 103.8438,
    "needs": ["health", "legal_aid", "vocational_training"],
    "profile": {"age": 16, "gender": "female", "victim_status": "identified", "languages": ["hnj"]},
    "radius_m": 50000, "limit_per_need": 3, "include_remote": true
}))]
pub struct MatchRequest {
    /// Where the person is: WGS84 latitude, -90 to 90. Give `lat` and
    /// `lon`, or `ward_code`.
    #[schema(minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// WGS84 longitude, -180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub lon: Option<f64>,
    /// Instead of `lat`/`lon`, the person's ward or commune (five digits,
    /// see `GET /v1/wards?q=name`): distances are then measured from the
    /// ward's reference point and are approximate; the ward fixes the
    /// province, and every other rule applies unchanged.
    #[schema(pattern = "^[0-9]{5}$", example = "02647")]
    pub ward_code: Option<String>,
    /// What they need, 1 to 12 distinct categories, in the order to answer.
    #[schema(schema_with = needs_schema)]
    pub needs: Vec<Category>,
    /// What is known about them; leave out what is not known. `null`, as
    /// leaving it out, means nothing is known.
    #[serde(default)]
    pub profile: Option<ProfileInput>,
    /// How far to look for in-person services, in metres: 1 to 500000;
    /// default 50000.
    #[schema(minimum = 1, maximum = 500000, default = 50000)]
    pub radius_m: Option<u32>,
    /// Matches per need (in-person and remote together): 1 to 20; default 3.
    #[schema(minimum = 1, maximum = 20, default = 3)]
    pub limit_per_need: Option<u32>,
    /// Whether remote (phone, online) services count; default true.
    #[schema(default = true)]
    pub include_remote: Option<bool>,
}

/// The person, as far as known. A service rule on a field left out does not
/// exclude the service; it is listed as `unverified`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// Age in whole years, 0 to 130.
    #[schema(minimum = 0, maximum = 130)]
    pub age: Option<u32>,
    pub gender: Option<Gender>,
    pub victim_status: Option<VictimStatus>,
    /// ISO 3166-1 alpha-2, e.g. `VN`.
    #[schema(pattern = r"^[A-Z]{2}$")]
    pub nationality: Option<String>,
    /// Province code of residence (see `GET /v1/provinces`).
    #[schema(schema_with = crate::domain::province::optional_schema)]
    pub residence_province: Option<String>,
    /// Languages spoken, ISO 639 codes (`vi`, `hnj`…), at least one.
    #[schema(schema_with = languages_schema)]
    pub languages: Option<Vec<String>>,
    /// Documents held (an empty list: none).
    pub documents: Option<Vec<DocumentType>>,
}

/// At least one ISO 639 code, as [`LanguageCode::parse`] takes them.
fn languages_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(LanguageCode::PATTERN)),
        )
        .min_items(Some(1))
        .build()
}

/// 1 to 12 distinct categories.
fn needs_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name("Category"))
        .min_items(Some(1))
        .max_items(Some(MAX_NEEDS))
        .unique_items(true)
        .build()
}

const MAX_NEEDS: usize = 12;
const MAX_AGE: u32 = 130;

impl MatchRequest {
    /// The validated query, or every problem with the request. Messages name
    /// the field and the rule, never the value.
    pub fn parse(self) -> Result<MatchQuery, ApiError> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, rule: &str, message: &str| {
            errors.push(FieldError::new(field, rule, message));
        };
        let origin = match (self.lat, self.lon, self.ward_code.as_deref()) {
            (None, None, Some(code)) => WardCode::parse(code)
                .map_err(|invalid| fail("ward_code", invalid.rule, &invalid.message))
                .ok()
                .map(Origin::Ward),
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                fail(
                    "ward_code",
                    "one_of",
                    "give either lat and lon, or ward_code, not both",
                );
                None
            }
            (lat, lon, None) => {
                if lat.is_none() {
                    fail("lat", "required", "give lat and lon, or ward_code");
                }
                if lon.is_none() {
                    fail("lon", "required", "give lat and lon, or ward_code");
                }
                if lat.is_some_and(|lat| !lat.is_finite() || !(-90.0..=90.0).contains(&lat)) {
                    fail("lat", "range", "latitude must be between -90 and 90");
                }
                if lon.is_some_and(|lon| !lon.is_finite() || !(-180.0..=180.0).contains(&lon)) {
                    fail("lon", "range", "longitude must be between -180 and 180");
                }
                lat.zip(lon)
                    .and_then(|(lat, lon)| Coordinates::new(lat, lon).ok())
                    .map(Origin::Point)
            }
        };
        if self.needs.is_empty() || self.needs.len() > MAX_NEEDS {
            fail("needs", "length", "between 1 and 12 needs");
        }
        for (index, need) in self.needs.iter().enumerate() {
            if self.needs[..index].contains(need) {
                fail(
                    &format!("needs[{index}]"),
                    "unique",
                    "a need is listed twice",
                );
            }
        }
        let radius = match self.radius_m {
            None => Some(RadiusM::DEFAULT),
            Some(metres) => RadiusM::new(metres).ok().or_else(|| {
                fail("radius_m", "range", "radius_m must be between 1 and 500000");
                None
            }),
        };
        let limit = match self.limit_per_need {
            None => Some(MatchQuery::DEFAULT_LIMIT),
            Some(limit) => u8::try_from(limit)
                .ok()
                .filter(|limit| (1..=MatchQuery::MAX_LIMIT).contains(limit))
                .or_else(|| {
                    fail(
                        "limit_per_need",
                        "range",
                        "limit_per_need must be between 1 and 20",
                    );
                    None
                }),
        };

        let input = self.profile.unwrap_or_default();
        let age = input.age.and_then(|age| {
            u8::try_from(age)
                .ok()
                .filter(|age| u32::from(*age) <= MAX_AGE)
                .or_else(|| {
                    fail("profile.age", "range", "age must be between 0 and 130");
                    None
                })
        });
        let nationality = input.nationality.as_deref().and_then(|code| {
            CountryCode::parse(code)
                .map_err(|invalid| fail("profile.nationality", invalid.rule, &invalid.message))
                .ok()
        });
        let residence_province = input.residence_province.as_deref().and_then(|code| {
            ProvinceCode::parse(code)
                .map_err(|invalid| {
                    fail("profile.residence_province", invalid.rule, &invalid.message)
                })
                .ok()
        });
        let languages = input.languages.as_ref().map(|codes| {
            if codes.is_empty() {
                fail(
                    "profile.languages",
                    "length",
                    "at least one language, or leave it out",
                );
            }
            codes
                .iter()
                .enumerate()
                .filter_map(|(index, code)| {
                    LanguageCode::parse(code)
                        .map_err(|invalid| {
                            fail(
                                &format!("profile.languages[{index}]"),
                                invalid.rule,
                                &invalid.message,
                            )
                        })
                        .ok()
                })
                .collect::<Vec<_>>()
        });

        match (origin, radius, limit) {
            (Some(origin), Some(radius), Some(limit_per_need)) if errors.is_empty() => {
                Ok(MatchQuery {
                    origin,
                    needs: self.needs,
                    profile: Profile {
                        age,
                        gender: input.gender,
                        victim_status: input.victim_status,
                        nationality,
                        residence_province,
                        languages,
                        documents: input.documents,
                    },
                    radius,
                    limit_per_need,
                    include_remote: self.include_remote.unwrap_or(true),
                })
            }
            _ => Err(ApiError::Unprocessable(errors)),
        }
    }
}

/// A service, as a match or near miss shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchedServiceView {
    pub id: ServiceId,
    pub name: String,
    pub name_en: Option<String>,
    pub description: String,
    pub description_en: Option<String>,
    pub categories: Vec<Category>,
    pub url: Option<String>,
    pub email: Option<String>,
    /// Languages the service works in.
    pub languages: Vec<String>,
    pub interpretation_available: bool,
    pub free: bool,
    pub fees_description: Option<String>,
    pub application_process: Option<String>,
    pub application_process_en: Option<String>,
    /// When the listing was last verified.
    pub assured_date: Option<NaiveDate>,
}

/// The organisation running a service.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationBrief {
    pub id: OrganizationId,
    pub name: String,
    pub name_en: Option<String>,
}

/// Why a match fits: the service's rules the person meets, and those that
/// could not be checked because the profile leaves the field out.
#[derive(Debug, Serialize, ToSchema)]
pub struct Explanation {
    pub satisfied: Vec<Rule>,
    pub unverified: Vec<Rule>,
}

/// A service that takes the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchView {
    pub service: MatchedServiceView,
    pub organization: OrganizationBrief,
    /// How it reaches the person: `in_person` at `location`, or `remote`.
    pub delivery: DeliveryMode,
    /// The location `distance_m` is measured to; null for a remote match.
    pub location: Option<LocationView>,
    /// Geodesic metres (WGS84 spheroid) to `location`; null for a remote
    /// match.
    pub distance_m: Option<f64>,
    /// The service's phones, then the location's, then the organisation's.
    pub phones: Vec<PhoneView>,
    pub schedules: Vec<ScheduleView>,
    /// Whether it is open at `evaluated_at`; null when it lists no hours.
    pub open_now: Option<bool>,
    pub capacity: Option<CapacityView>,
    /// Referrals to this service declined for `no_capacity` in the last
    /// 30 days: read beside `capacity`, a sign that it is fuller than it
    /// says.
    pub no_capacity_declines_30d: i64,
    pub explanation: Explanation,
}

/// One reason a service does not take the person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExclusionView {
    pub reason: Exclusion,
    /// The reason in a sentence.
    pub detail: String,
}

/// A service of the needed category that does not take the person, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct NearMissView {
    pub service: MatchedServiceView,
    pub organization: OrganizationBrief,
    /// Its nearest location; null when it lists none.
    pub location: Option<LocationView>,
    pub distance_m: Option<f64>,
    /// Every rule that excludes it.
    pub excluded_by: Vec<ExclusionView>,
}

/// The answer for one need.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeedResult {
    pub need: Category,
    /// Whether any service takes the person for this need.
    pub met: bool,
    /// In-person matches nearest first, then remote ones most local first.
    pub matches: Vec<MatchView>,
    /// For an unmet need, up to three nearest services of the category with
    /// what excludes each; empty for a met need.
    pub near_misses: Vec<NearMissView>,
}

/// The province whose boundary contains the location.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvinceRef {
    pub code: String,
}

/// Where distances were measured from.
#[derive(Debug, Serialize, ToSchema)]
pub struct OriginView {
    pub lat: f64,
    pub lon: f64,
    /// `point`: the `lat`/`lon` given; `ward_reference_point`: the
    /// reference point of the `ward_code` given.
    pub source: OriginSource,
    /// True when the person was given by their ward: every distance is
    /// then from the ward's reference point, not from where they are.
    pub distances_approximate: bool,
}

/// Where the origin came from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OriginSource {
    Point,
    WardReferencePoint,
}

/// The person's ward or commune.
#[derive(Debug, Serialize, ToSchema)]
pub struct WardRef {
    #[schema(example = "02647")]
    pub code: String,
    #[schema(example = "Phường Lào Cai")]
    pub full_name: String,
    #[schema(example = "Lao Cai Ward")]
    pub full_name_en: String,
}

/// The matcher's answer, one result per need in the order asked.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchResponse {
    /// When "open now" was evaluated, in Vietnam's time (UTC+7).
    #[schema(value_type = String, format = DateTime)]
    pub evaluated_at: DateTime<FixedOffset>,
    /// The point distances were measured from, and whether they are
    /// approximate.
    pub origin: OriginView,
    /// The ward given, or the one containing the location (null outside
    /// every ward): ward-coded service areas are checked against it.
    pub ward: Option<WardRef>,
    /// The province containing the location (null outside every province):
    /// province-coded service areas are checked against it.
    pub province: Option<ProvinceRef>,
    pub results: Vec<NeedResult>,
}

fn round(distance: f64) -> f64 {
    (distance * 10.0).round() / 10.0
}

fn service_view(record: &ServiceRecord) -> MatchedServiceView {
    let row = &record.row;
    MatchedServiceView {
        id: row.id,
        name: row.name.clone(),
        name_en: row.name_en.clone(),
        description: row.description.clone(),
        description_en: row.description_en.clone(),
        categories: record.categories.clone(),
        url: row.url.clone(),
        email: row.email.clone(),
        languages: row.languages.clone(),
        interpretation_available: row.interpretation_available,
        free: row.is_free,
        fees_description: row.fees_description.clone(),
        application_process: row.application_process.clone(),
        application_process_en: row.application_process_en.clone(),
        assured_date: row.assured_date,
    }
}

fn organization_brief(record: &ServiceRecord) -> OrganizationBrief {
    let organization = &record.organization.row;
    OrganizationBrief {
        id: organization.id,
        name: organization.name.clone(),
        name_en: organization.name_en.clone(),
    }
}

/// Recent `no_capacity` declines, by service.
type Declines = std::collections::HashMap<crate::domain::ids::ServiceId, i64>;

fn match_view(matched: Matched, audience: Audience, declines: &Declines) -> MatchView {
    let record = matched.record;
    let location = matched
        .location
        .map(|location| LocationView::new(location, audience));
    let mut phones: Vec<PhoneView> = record.phones.iter().cloned().map(PhoneView::from).collect();
    if let Some(location) = &location {
        phones.extend(location.phones.iter().cloned());
    }
    phones.extend(
        record
            .organization
            .phones
            .iter()
            .cloned()
            .map(PhoneView::from),
    );
    let mut numbers = std::collections::HashSet::new();
    phones.retain(|phone| numbers.insert(phone.number.clone()));
    MatchView {
        service: service_view(&record),
        organization: organization_brief(&record),
        delivery: matched.mode,
        distance_m: matched.distance_m.map(round),
        location,
        phones,
        schedules: record
            .schedules
            .iter()
            .cloned()
            .map(ScheduleView::from)
            .collect(),
        open_now: matched.open_now,
        capacity: record.capacity.as_ref().map(|capacity| CapacityView {
            available: capacity.available,
            maximum: capacity.maximum,
            unit: capacity.unit.clone(),
            updated: record.row.capacity_updated,
        }),
        no_capacity_declines_30d: declines.get(&record.row.id).copied().unwrap_or(0),
        explanation: Explanation {
            satisfied: matched.evaluation.satisfied,
            unverified: matched.evaluation.unverified,
        },
    }
}

fn near_miss_view(miss: NearMiss, audience: Audience) -> NearMissView {
    NearMissView {
        service: service_view(&miss.record),
        organization: organization_brief(&miss.record),
        location: miss
            .location
            .map(|location| LocationView::new(location, audience)),
        distance_m: miss.distance_m.map(round),
        excluded_by: miss
            .reasons
            .into_iter()
            .map(|excluded| ExclusionView {
                reason: excluded.reason,
                detail: excluded.detail,
            })
            .collect(),
    }
}

fn need_result(outcome: NeedOutcome, audience: Audience, declines: &Declines) -> NeedResult {
    NeedResult {
        need: outcome.need,
        met: !outcome.matches.is_empty(),
        matches: outcome
            .matches
            .into_iter()
            .map(|matched| match_view(matched, audience, declines))
            .collect(),
        near_misses: outcome
            .near_misses
            .into_iter()
            .map(|miss| near_miss_view(miss, audience))
            .collect(),
    }
}

/// For each need, the nearest services that will take this person: active,
/// accepting referrals, admitting them under every eligibility rule,
/// covering their location, within the radius in person, then (if asked)
/// remote. Each match says why it fits; an unmet need lists the nearest
/// near misses and what excludes each. Nothing about the person is stored
/// or logged.
#[utoipa::path(
    tag = "matcher",
    request_body = MatchRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One result per need, in the order asked", body = MatchResponse),
        responses::CreateProblems,
    )
)]
#[post("/matches")]
pub async fn create_match(
    state: web::Data<AppState>,
    caller: super::auth::Caller,
    request: ApiJson<MatchRequest>,
) -> Result<web::Json<MatchResponse>, ApiError> {
    caller.require(&[Role::Caseworker, Role::Admin])?;
    let request = request.parse()?;
    let query = request.parse()?;
    // Caseworkers and admins see confidential locations exactly, so
    // distances are measured to the exact points.
    let audience = Audience::Full;
    let mut conn = state.reader(&caller).await?;
    let outcome = matcher::run(&mut conn, &query, Audience::Full, Utc::now())
        .await
        .map_err(|error| match error {
            MatchError::UnknownWard => ApiError::Unprocessable(vec![FieldError::invalid(
                "ward_code",
                crate::domain::ward::unknown(),
            )]),
            MatchError::Db(error) => ApiError::from_private_query(error),
        })?;
    let declines = &outcome.no_capacity_declines;
    // Counted by category and outcome only: nothing of the person.
    for need in &outcome.needs {
        state
            .metrics
            .observe_need(need.need.as_str(), !need.matches.is_empty());
    }
    Ok(web::Json(MatchResponse {
        evaluated_at: outcome.evaluated_at,
        origin: OriginView {
            lat: outcome.point.lat(),
            lon: outcome.point.lon(),
            source: if outcome.by_ward {
                OriginSource::WardReferencePoint
            } else {
                OriginSource::Point
            },
            distances_approximate: outcome.by_ward,
        },
        ward: outcome.ward.map(|ward| WardRef {
            code: ward.code,
            full_name: ward.full_name,
            full_name_en: ward.full_name_en,
        }),
        province: outcome.province.map(|code| ProvinceRef { code }),
        results: outcome
            .needs
            .into_iter()
            .map(|need| need_result(need, audience, declines))
            .collect(),
    }))
}
