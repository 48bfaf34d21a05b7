//! Open Referral HSDS 3.0, the exchange format: services with everything
//! nested (organisation, locations, phones, schedules, service areas), as
//! served under `/hsds`, exported by `ketnoi export` and imported by
//! `POST /v1/import` and `ketnoi import`.
//!
//! Where HSDS has the concept we use its field; where Kết Nối needs more
//! (categories, structured eligibility, delivery, confidential locations,
//! province codes, English texts) the extension fields sit beside HSDS's,
//! with our API's names, as the Kết Nối profile (`openapi/hsds-profile/`)
//! declares. Service capacity uses HSDS 3.1's `capacities`. Import reads
//! the extension fields and falls back to HSDS's own where an extension is
//! absent (categories from the taxonomy terms, for instance).
//!
//! HSDS types every field without `null`, so absent values are left out,
//! never written as `null`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::models::locations::LocationRecord;
use crate::db::models::organizations::OrganizationRecord;
use crate::db::models::parts::PhoneRecord;
use crate::db::models::reference::CategoryRow;
use crate::db::models::services::ServiceRecord;
use crate::db::models::writes::service_document;
use crate::domain::Invalid;
use crate::domain::access::{Audience, seen_location};
use crate::domain::category::Category;
use crate::domain::ids::{LocationId, OrganizationId, ServiceId, part_id, service_at_location_id};
use crate::domain::listing::{
    CapacityDocument, EligibilityDocument, LocationDocument, OrganizationDocument, PhoneDocument,
    ScheduleDocument, ServiceAreaDocument, ServiceDocument,
};
use crate::domain::service::{
    DeliveryMode, DocumentType, Gender, PhoneType, ServiceStatus, VictimStatus, Weekday,
};

/// The HSDS version served.
pub const VERSION: &str = "3.0";
/// The name of the taxonomy our categories form.
pub const CATEGORY_TAXONOMY: &str = "ketnoi-categories";

/// A service's one-to-one fields and its organisation: the items of
/// `GET /hsds/services` (`compiled/service_list.json`).
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsServiceSummary)]
pub struct ServiceSummary {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = Uuid)]
    pub organization_id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub url: Option<String>,
    pub email: Option<String>,
    pub status: ServiceStatus,
    /// Set when interpreters can be arranged.
    pub interpretation_services: Option<String>,
    pub application_process: Option<String>,
    pub fees_description: Option<String>,
    pub minimum_age: Option<f64>,
    pub maximum_age: Option<f64>,
    pub assured_date: Option<NaiveDate>,
    pub last_modified: Option<DateTime<Utc>>,
    pub organization: Option<Organization>,

    // Kết Nối extensions.
    pub name_en: Option<String>,
    pub description_en: Option<String>,
    pub fees_description_en: Option<String>,
    pub application_process_en: Option<String>,
    /// Our categories (also given as taxonomy terms in `attributes`).
    pub categories: Option<Vec<Category>>,
    pub delivery: Option<Vec<DeliveryMode>>,
    pub accepting_referrals: Option<bool>,
    pub eligibility: Option<Eligibility>,
    pub interpretation_available: Option<bool>,
    pub free: Option<bool>,
}

/// A service's one-to-many parts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsServiceParts)]
pub struct ServiceParts {
    #[serde(default)]
    pub phones: Vec<Phone>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    #[serde(default)]
    pub service_areas: Vec<ServiceArea>,
    #[serde(default)]
    pub languages: Vec<Language>,
    #[serde(default)]
    pub required_documents: Vec<RequiredDocument>,
    /// The service's categories, as terms of the `ketnoi-categories`
    /// taxonomy.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// HSDS 3.1 service capacity (at most one here).
    #[serde(default)]
    pub capacities: Vec<ServiceCapacity>,
    /// The capacity as exported before HSDS 3.1's `capacities`; read on
    /// import only.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub capacity: Option<Capacity>,
}

/// A fully nested service (`compiled/service.json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsService)]
pub struct Service {
    #[serde(flatten)]
    pub summary: ServiceSummary,
    #[serde(flatten)]
    pub parts: ServiceParts,
    #[serde(default)]
    pub service_at_locations: Vec<ServiceAtLocation>,
}

/// A service nested in its service-at-location: everything but the other
/// places it is offered at.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsServiceDetail)]
pub struct ServiceDetail {
    #[serde(flatten)]
    pub summary: ServiceSummary,
    #[serde(flatten)]
    pub parts: ServiceParts,
}

/// A service's identity and last change, for `minimal=true`; `name` and
/// `status` are kept so that the item still satisfies HSDS's schema.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsServiceMinimal)]
pub struct ServiceMinimal {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub status: ServiceStatus,
    pub last_modified: DateTime<Utc>,
}

/// A service as one of the shapes HSDS lists ask for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceItem {
    Full(Box<Service>),
    Detail(Box<ServiceDetail>),
    Summary(Box<ServiceSummary>),
    Minimal(ServiceMinimal),
}

/// Written by hand: derived, an untagged enum is a `oneOf`, but the shapes
/// nest (a fuller service is also a valid briefer one), so an item matches
/// several of them and `oneOf` would reject every one. It is an `anyOf`.
impl utoipa::PartialSchema for ServiceItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, Ref};
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(<Service as ToSchema>::name()))
            .item(Ref::from_schema_name(<ServiceDetail as ToSchema>::name()))
            .item(Ref::from_schema_name(<ServiceSummary as ToSchema>::name()))
            .item(Ref::from_schema_name(<ServiceMinimal as ToSchema>::name()))
            .description(Some(
                "A service as one of the shapes HSDS lists ask for: full, detail, summary or \
                 minimal. The shapes nest, so an item may match more than one.",
            ))
            .into()
    }
}

impl ToSchema for ServiceItem {
    fn name() -> std::borrow::Cow<'static, str> {
        "HsdsServiceItem".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((<Service as ToSchema>::name().into(), Service::schema()));
        <Service as ToSchema>::schemas(schemas);
        schemas.push((
            <ServiceDetail as ToSchema>::name().into(),
            ServiceDetail::schema(),
        ));
        <ServiceDetail as ToSchema>::schemas(schemas);
        schemas.push((
            <ServiceSummary as ToSchema>::name().into(),
            ServiceSummary::schema(),
        ));
        <ServiceSummary as ToSchema>::schemas(schemas);
        schemas.push((
            <ServiceMinimal as ToSchema>::name().into(),
            ServiceMinimal::schema(),
        ));
        <ServiceMinimal as ToSchema>::schemas(schemas);
    }
}

/// The eligibility rules HSDS has no field for.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HsdsEligibility)]
pub struct Eligibility {
    pub genders: Option<Vec<Gender>>,
    pub victim_statuses: Option<Vec<VictimStatus>>,
    pub nationalities: Option<Vec<String>>,
    pub residence_provinces: Option<Vec<String>>,
}

/// HSDS 3.1 `service_capacity`.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsServiceCapacity)]
pub struct ServiceCapacity {
    pub id: Option<String>,
    pub service_id: Option<String>,
    pub unit: Option<Unit>,
    pub available: Option<u32>,
    pub maximum: Option<u32>,
    pub description: Option<String>,
    #[serde(default, skip_deserializing)]
    pub updated: Option<DateTime<Utc>>,
}

/// HSDS 3.1 `unit` of a capacity.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsUnit)]
pub struct Unit {
    pub id: Option<String>,
    pub name: String,
}

/// Capacity as exported before HSDS 3.1's `capacities` (import only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capacity {
    pub available: Option<u32>,
    pub maximum: Option<u32>,
    pub unit: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsOrganization)]
pub struct Organization {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub email: Option<String>,
    pub website: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Phone>,
    pub name_en: Option<String>,
    pub description_en: Option<String>,
    /// In `GET /hsds/organizations/{id}`: its locations.
    pub locations: Option<Vec<Location>>,
    /// In `GET /hsds/organizations/{id}`: its services, in brief or (with
    /// `full_service=true`) fully nested.
    #[schema(no_recursion)]
    pub services: Option<Vec<ServiceItem>>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsPhone)]
pub struct Phone {
    pub id: Option<String>,
    pub number: String,
    /// HSDS types the extension as a number; text is accepted on import.
    #[schema(value_type = Option<f64>)]
    pub extension: Option<serde_json::Value>,
    #[serde(rename = "type", default)]
    pub phone_type: Option<PhoneType>,
    pub description: Option<String>,
    #[serde(default)]
    pub languages: Vec<Language>,
    pub description_en: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsLanguage)]
pub struct Language {
    pub id: Option<String>,
    pub code: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsRequiredDocument)]
pub struct RequiredDocument {
    pub id: Option<String>,
    pub document: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsAttribute)]
pub struct Attribute {
    pub id: Option<String>,
    pub taxonomy_term_id: Option<String>,
    pub taxonomy_term: Option<TaxonomyTerm>,
}

/// A term of a taxonomy: here, one of our categories, named in Vietnamese
/// (`language` `vi`) with the English beside it.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsTaxonomyTerm)]
pub struct TaxonomyTerm {
    pub id: Option<String>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// The taxonomy's name.
    pub taxonomy: Option<String>,
    pub taxonomy_id: Option<String>,
    pub language: Option<String>,
    pub name_en: Option<String>,
    pub description_en: Option<String>,
}

/// A taxonomy: here only `ketnoi-categories`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsTaxonomy)]
pub struct Taxonomy {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: String,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsSchedule)]
pub struct Schedule {
    pub id: Option<String>,
    pub freq: Option<String>,
    /// Days, comma-separated (`MO,TU`).
    pub byday: Option<String>,
    #[schema(value_type = Option<String>, example = "08:00:00")]
    pub opens_at: Option<NaiveTime>,
    #[schema(value_type = Option<String>, example = "17:00:00")]
    pub closes_at: Option<NaiveTime>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub description: Option<String>,
    pub description_en: Option<String>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsServiceArea)]
pub struct ServiceArea {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GeoJSON text, with `extent_type` `geojson`.
    pub extent: Option<String>,
    pub extent_type: Option<String>,
    pub province_code: Option<String>,
    pub description_en: Option<String>,
}

/// A service offered at a location (`compiled/service_at_location.json`).
/// Nested in a service, it carries the location; listed on its own, the
/// service too.
#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsServiceAtLocation)]
pub struct ServiceAtLocation {
    pub id: Option<String>,
    pub service_id: Option<String>,
    pub location_id: Option<String>,
    pub location: Option<Location>,
    #[schema(no_recursion)]
    pub service: Option<ServiceItem>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsLocation)]
pub struct Location {
    #[schema(format = Uuid)]
    pub id: String,
    /// `physical`; `redacted` (the Kết Nối profile, after HSDS's draft)
    /// when a confidential location is shown to the public: no address, no
    /// description, no phones, the point rounded to 0.1°.
    pub location_type: String,
    pub organization_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Phone>,
    pub name_en: Option<String>,
    pub description_en: Option<String>,
    /// The street part of the address.
    pub address: Option<String>,
    pub ward_code: Option<String>,
    pub province_code: Option<String>,
    pub confidential: Option<bool>,
    /// On import only, never exported: `true` writes a public location
    /// within 1 km of a confidential one of the same organisation (or the
    /// reverse) knowingly; see the location document's field of that name.
    pub acknowledge_near_confidential: Option<bool>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = HsdsAddress)]
pub struct Address {
    pub id: Option<String>,
    pub location_id: Option<String>,
    pub address_1: Option<String>,
    pub city: Option<String>,
    pub state_province: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub address_type: Option<String>,
}

fn phone(record: &PhoneRecord) -> Phone {
    Phone {
        id: Some(record.id.to_string()),
        number: record.number.clone(),
        // HSDS's extension is a number; ours are 1 to 10 digits (a leading
        // zero is lost).
        extension: record
            .extension
            .as_ref()
            .and_then(|extension| extension.parse::<u64>().ok())
            .map(serde_json::Value::from),
        phone_type: Some(record.phone_type),
        description: record.description.clone(),
        languages: record
            .languages
            .iter()
            .enumerate()
            .map(|(i, code)| Language {
                id: Some(part_id(record.id.0, "language", i).to_string()),
                code: Some(code.clone()),
            })
            .collect(),
        description_en: record.description_en.clone(),
    }
}

/// An organisation's own fields and phones.
pub fn organization(record: &OrganizationRecord) -> Organization {
    let row = &record.row;
    Organization {
        id: row.id.to_string(),
        name: row.name.clone(),
        description: row.description.clone(),
        email: row.email.clone(),
        website: row.website.clone(),
        phones: record.phones.iter().map(phone).collect(),
        name_en: row.name_en.clone(),
        description_en: row.description_en.clone(),
        locations: None,
        services: None,
    }
}

/// A location as `audience` may see it; `nested` adds its addresses and
/// phones (HSDS lists carry only one-to-one fields).
pub fn location(record: &LocationRecord, audience: Audience, nested: bool) -> Location {
    let row = &record.row;
    let seen = seen_location(record.stored(), audience);
    let addresses = if seen.redacted || !nested {
        Vec::new()
    } else {
        vec![Address {
            id: Some(part_id(row.id.0, "address", 0).to_string()),
            location_id: Some(row.id.to_string()),
            address_1: Some(seen.address.unwrap_or_default().to_owned()),
            city: Some(seen.ward_name.unwrap_or_default().to_owned()),
            state_province: Some(record.province_name.clone()),
            postal_code: Some(String::new()),
            country: Some("VN".into()),
            address_type: Some("physical".into()),
        }]
    };
    let owned = |value: Option<&str>| value.map(str::to_owned);
    Location {
        id: row.id.to_string(),
        location_type: if seen.redacted {
            "redacted"
        } else {
            "physical"
        }
        .into(),
        organization_id: Some(row.organization_id.to_string()),
        name: Some(row.name.clone()),
        description: owned(seen.description),
        latitude: Some(seen.latitude),
        longitude: Some(seen.longitude),
        addresses,
        phones: if nested {
            seen.phones.iter().map(phone).collect()
        } else {
            Vec::new()
        },
        name_en: row.name_en.clone(),
        description_en: owned(seen.description_en),
        address: owned(seen.address),
        ward_code: owned(seen.ward_code),
        province_code: Some(row.province_code.clone()),
        confidential: Some(row.confidential),
        acknowledge_near_confidential: None,
    }
}

/// The one-to-one fields of a stored service, with its organisation, as
/// `audience` may see it.
pub fn summary(record: &ServiceRecord, audience: Audience) -> ServiceSummary {
    let document = service_document(record, Vec::new());
    let row = &record.row;
    let eligibility = document.eligibility;
    ServiceSummary {
        id: row.id.to_string(),
        organization_id: Some(row.organization_id.to_string()),
        organization: Some(organization(&record.organization)),
        name: document.name,
        description: Some(document.description),
        url: document.url,
        email: document.email,
        status: document.status,
        interpretation_services: document
            .interpretation_available
            .then(|| "Interpreters can be arranged".to_owned()),
        application_process: document.application_process,
        fees_description: document.fees_description,
        minimum_age: eligibility.min_age.map(f64::from),
        maximum_age: eligibility.max_age.map(f64::from),
        assured_date: row.assured_date,
        last_modified: Some(audience.last_modified(row.last_modified, row.public_last_modified)),
        name_en: document.name_en,
        description_en: document.description_en,
        fees_description_en: document.fees_description_en,
        application_process_en: document.application_process_en,
        categories: Some(document.categories),
        delivery: Some(document.delivery),
        accepting_referrals: Some(document.accepting_referrals),
        eligibility: Some(Eligibility {
            genders: eligibility.genders,
            victim_statuses: eligibility.victim_statuses,
            nationalities: eligibility.nationalities,
            residence_provinces: eligibility.residence_provinces,
        }),
        interpretation_available: Some(document.interpretation_available),
        free: Some(document.free),
    }
}

/// A category as a term of our taxonomy.
pub fn taxonomy_term(row: &CategoryRow) -> TaxonomyTerm {
    let id = Category::parse(&row.code)
        .map(category_term_id)
        .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_URL, row.code.as_bytes()));
    TaxonomyTerm {
        id: Some(id.to_string()),
        code: Some(row.code.clone()),
        name: Some(row.label_vi.clone()),
        description: Some(row.description_vi.clone()),
        taxonomy: Some(CATEGORY_TAXONOMY.into()),
        taxonomy_id: Some(category_taxonomy_id().to_string()),
        language: Some("vi".into()),
        name_en: Some(row.label_en.clone()),
        description_en: Some(row.description_en.clone()),
    }
}

/// Our one taxonomy.
pub fn category_taxonomy() -> Taxonomy {
    Taxonomy {
        id: category_taxonomy_id().to_string(),
        name: CATEGORY_TAXONOMY.into(),
        description: "Kết Nối's service categories: the needs a person returning from \
                      trafficking is entitled to have met (health care, counselling, legal \
                      aid, shelter, …); see GET /v1/categories"
            .into(),
        version: "1".into(),
    }
}

/// A stored service's one-to-many parts, as `categories` name them.
fn parts(record: &ServiceRecord, categories: &HashMap<String, CategoryRow>) -> ServiceParts {
    let document = service_document(record, Vec::new());
    let id = record.row.id;
    ServiceParts {
        phones: record.phones.iter().map(phone).collect(),
        schedules: record
            .schedules
            .iter()
            .map(|schedule| Schedule {
                id: Some(schedule.id.to_string()),
                freq: Some("WEEKLY".into()),
                byday: Some(
                    schedule
                        .hours
                        .byday
                        .iter()
                        .map(|day| day.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                opens_at: schedule.hours.opens_at,
                closes_at: schedule.hours.closes_at,
                valid_from: schedule.hours.valid_from,
                valid_to: schedule.hours.valid_to,
                description: schedule.description.clone(),
                description_en: schedule.description_en.clone(),
            })
            .collect(),
        service_areas: record
            .service_areas
            .iter()
            .zip(document.service_areas)
            .map(|(row, area)| ServiceArea {
                id: Some(row.id.to_string()),
                name: area.province_code.clone(),
                description: area.description,
                extent_type: area.extent.is_some().then(|| "geojson".to_owned()),
                extent: area.extent.map(|extent| extent.to_string()),
                province_code: area.province_code,
                description_en: area.description_en,
            })
            .collect(),
        languages: document
            .languages
            .iter()
            .enumerate()
            .map(|(i, code)| Language {
                id: Some(part_id(id.0, "language", i).to_string()),
                code: Some(code.clone()),
            })
            .collect(),
        required_documents: document
            .eligibility
            .required_documents
            .iter()
            .map(|document| RequiredDocument {
                id: Some(part_id(id.0, document.as_str(), 0).to_string()),
                document: Some(document.as_str().to_owned()),
            })
            .collect(),
        attributes: document
            .categories
            .iter()
            .map(|category| {
                let term = categories
                    .get(category.as_str())
                    .map(taxonomy_term)
                    .unwrap_or_else(|| TaxonomyTerm {
                        id: Some(category_term_id(*category).to_string()),
                        code: Some(category.as_str().to_owned()),
                        name: Some(category.as_str().to_owned()),
                        description: Some(String::new()),
                        taxonomy: Some(CATEGORY_TAXONOMY.into()),
                        taxonomy_id: Some(category_taxonomy_id().to_string()),
                        language: None,
                        name_en: None,
                        description_en: None,
                    });
                Attribute {
                    id: Some(part_id(id.0, category.as_str(), 0).to_string()),
                    taxonomy_term_id: term.id.clone(),
                    taxonomy_term: Some(term),
                }
            })
            .collect(),
        capacities: document
            .capacity
            .map(|capacity| ServiceCapacity {
                id: Some(part_id(id.0, "capacity", 0).to_string()),
                service_id: Some(id.to_string()),
                unit: capacity.unit.map(|name| Unit {
                    id: Some(part_id(id.0, "capacity-unit", 0).to_string()),
                    name,
                }),
                available: capacity.available,
                maximum: capacity.maximum,
                description: None,
                updated: record.row.capacity_updated,
            })
            .into_iter()
            .collect(),
        capacity: None,
    }
}

/// A service-at-location's id and location, as nested in its service.
fn service_at_location(
    service: ServiceId,
    place: &LocationRecord,
    audience: Audience,
    nested: bool,
) -> ServiceAtLocation {
    ServiceAtLocation {
        id: Some(service_at_location_id(service, place.row.id).to_string()),
        service_id: Some(service.to_string()),
        location_id: Some(place.row.id.to_string()),
        location: Some(location(place, audience, nested)),
        service: None,
    }
}

/// A stored service in HSDS, fully nested, as `audience` may see it.
pub fn service(
    record: &ServiceRecord,
    audience: Audience,
    categories: &HashMap<String, CategoryRow>,
) -> Service {
    Service {
        summary: summary(record, audience),
        parts: parts(record, categories),
        service_at_locations: record
            .locations
            .iter()
            .map(|place| service_at_location(record.row.id, place, audience, true))
            .collect(),
    }
}

/// The service-at-locations of a stored service, each carrying the
/// service: in brief (lists) or with its parts (`full`).
pub fn service_at_locations(
    record: &ServiceRecord,
    audience: Audience,
    categories: &HashMap<String, CategoryRow>,
    full: bool,
) -> Vec<ServiceAtLocation> {
    let service = if full {
        ServiceItem::Detail(Box::new(ServiceDetail {
            summary: summary(record, audience),
            parts: parts(record, categories),
        }))
    } else {
        ServiceItem::Summary(Box::new(summary(record, audience)))
    };
    record
        .locations
        .iter()
        .map(|place| ServiceAtLocation {
            service: Some(service.clone()),
            ..service_at_location(record.row.id, place, audience, full)
        })
        .collect()
}

/// The shape `minimal`/`full` ask for.
pub fn service_item(
    record: &ServiceRecord,
    audience: Audience,
    categories: &HashMap<String, CategoryRow>,
    shape: ServiceShape,
) -> ServiceItem {
    match shape {
        ServiceShape::Minimal => ServiceItem::Minimal(ServiceMinimal {
            id: record.row.id.to_string(),
            name: record.row.name.clone(),
            status: record.status,
            last_modified: audience
                .last_modified(record.row.last_modified, record.row.public_last_modified),
        }),
        ServiceShape::Summary => ServiceItem::Summary(Box::new(summary(record, audience))),
        ServiceShape::Full => ServiceItem::Full(Box::new(service(record, audience, categories))),
    }
}

/// How much of each service a list gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceShape {
    Minimal,
    Summary,
    Full,
}

/// The stable id of a category's taxonomy term.
pub fn category_term_id(category: Category) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:ketnoi:category:{}", category.as_str()).as_bytes(),
    )
}

/// The stable id of the category taxonomy.
pub fn category_taxonomy_id() -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        b"urn:ketnoi:taxonomy:ketnoi-categories",
    )
}

/// What one imported HSDS service asks to write.
#[derive(Debug, Clone)]
pub struct Record {
    pub service_id: ServiceId,
    pub organization_id: Option<OrganizationId>,
    /// The nested organisation, if the record carries one.
    pub organization: Option<OrganizationDocument>,
    pub locations: Vec<(LocationId, LocationDocument)>,
    pub service: ServiceDocument,
    pub assured_date: Option<NaiveDate>,
}

/// Field problems of one record, by path inside it.
pub type Problems = Vec<(String, Invalid)>;

fn parse_id(value: &str, path: &str, problems: &mut Problems) -> Option<Uuid> {
    Uuid::parse_str(value)
        .map_err(|_| problems.push((path.to_owned(), Invalid::new("uuid", "ids are UUIDs"))))
        .ok()
}

fn phone_document(phone: &Phone, path: &str, problems: &mut Problems) -> PhoneDocument {
    let extension = match &phone.extension {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push((
                format!("{path}.extension"),
                Invalid::new("type", "an extension is a number or text"),
            ));
            None
        }
    };
    PhoneDocument {
        number: phone.number.clone(),
        extension,
        phone_type: phone.phone_type.unwrap_or(PhoneType::Voice),
        description: phone.description.clone(),
        description_en: phone.description_en.clone(),
        languages: phone
            .languages
            .iter()
            .filter_map(|l| l.code.clone())
            .collect(),
    }
}

fn age(value: Option<f64>, path: &str, problems: &mut Problems) -> Option<u8> {
    let value = value?;
    if value.fract() == 0.0 && (0.0..=130.0).contains(&value) {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked range"
        )]
        Some(value as u8)
    } else {
        problems.push((
            path.to_owned(),
            Invalid::new("range", "ages are whole years, 0 to 130"),
        ));
        None
    }
}

/// Turns one HSDS service into the documents to write, or says what is
/// wrong with it.
pub fn record(service: Service) -> Result<Record, Problems> {
    let Service {
        summary: service,
        parts,
        service_at_locations,
    } = service;
    let mut problems = Problems::new();
    let service_id = parse_id(&service.id, "id", &mut problems).map(ServiceId);
    let mut organization_id = service
        .organization_id
        .as_deref()
        .and_then(|id| parse_id(id, "organization_id", &mut problems))
        .map(OrganizationId);
    let organization = match &service.organization {
        Some(organization) => {
            let id =
                parse_id(&organization.id, "organization.id", &mut problems).map(OrganizationId);
            if organization_id.is_some() && id.is_some() && organization_id != id {
                problems.push((
                    "organization.id".into(),
                    Invalid::new("consistent", "differs from organization_id"),
                ));
            }
            organization_id = organization_id.or(id);
            Some(OrganizationDocument {
                name: organization.name.clone(),
                name_en: organization.name_en.clone(),
                description: organization.description.clone(),
                description_en: organization.description_en.clone(),
                email: organization.email.clone(),
                website: organization.website.clone(),
                phones: organization
                    .phones
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        phone_document(p, &format!("organization.phones[{i}]"), &mut problems)
                    })
                    .collect(),
            })
        }
        None => None,
    };

    let mut locations = Vec::new();
    for (i, at) in service_at_locations.iter().enumerate() {
        let path = format!("service_at_locations[{i}].location");
        let Some(place) = &at.location else {
            problems.push((
                path,
                Invalid::new("required", "each service_at_location carries its location"),
            ));
            continue;
        };
        if place.location_type == "redacted" {
            problems.push((
                format!("{path}.location_type"),
                Invalid::new(
                    "not_redacted",
                    "a redacted location has no exact point; import a full export instead",
                ),
            ));
            continue;
        }
        let id = parse_id(&place.id, &format!("{path}.id"), &mut problems).map(LocationId);
        let (Some(latitude), Some(longitude)) = (place.latitude, place.longitude) else {
            problems.push((
                format!("{path}.latitude"),
                Invalid::new("required", "a location needs latitude and longitude"),
            ));
            continue;
        };
        let Some(province_code) = place.province_code.clone() else {
            problems.push((
                format!("{path}.province_code"),
                Invalid::new("required", "a location needs its province code"),
            ));
            continue;
        };
        let address = place.address.clone().or_else(|| {
            place
                .addresses
                .first()
                .and_then(|a| a.address_1.clone())
                .filter(|a| !a.is_empty())
        });
        let document = LocationDocument {
            organization_id,
            name: place.name.clone().unwrap_or_default(),
            name_en: place.name_en.clone(),
            description: place.description.clone(),
            description_en: place.description_en.clone(),
            address,
            ward_code: place.ward_code.clone(),
            province_code,
            latitude,
            longitude,
            confidential: place.confidential.unwrap_or(false),
            phones: place
                .phones
                .iter()
                .enumerate()
                .map(|(j, p)| phone_document(p, &format!("{path}.phones[{j}]"), &mut problems))
                .collect(),
            acknowledge_near_confidential: place.acknowledge_near_confidential.unwrap_or(false),
        };
        match document.clone().validate() {
            Ok(_) => {}
            Err(found) => problems.extend(
                found
                    .into_iter()
                    .map(|(field, invalid)| (format!("{path}.{field}"), invalid)),
            ),
        }
        if let Some(id) = id {
            locations.push((id, document));
        }
    }

    let categories = service.categories.clone().unwrap_or_else(|| {
        parts
            .attributes
            .iter()
            .filter_map(|a| a.taxonomy_term.as_ref())
            .filter(|t| t.taxonomy.as_deref() == Some(CATEGORY_TAXONOMY))
            .filter_map(|t| t.code.as_deref().and_then(|c| Category::parse(c).ok()))
            .collect()
    });
    let delivery = service.delivery.clone().unwrap_or_else(|| {
        if locations.is_empty() {
            vec![DeliveryMode::Remote]
        } else {
            vec![DeliveryMode::InPerson]
        }
    });
    let mut required_documents = Vec::new();
    for (i, document) in parts.required_documents.iter().enumerate() {
        match document.document.as_deref().map(DocumentType::parse) {
            Some(Ok(found)) => required_documents.push(found),
            Some(Err(invalid)) => {
                problems.push((format!("required_documents[{i}].document"), invalid))
            }
            None => problems.push((
                format!("required_documents[{i}].document"),
                Invalid::new("required", "a required document names its type"),
            )),
        }
    }
    let mut schedules = Vec::new();
    for (i, schedule) in parts.schedules.iter().enumerate() {
        let byday = schedule
            .byday
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|day| !day.is_empty())
            .filter_map(|day| {
                Weekday::parse(day)
                    .map_err(|invalid| problems.push((format!("schedules[{i}].byday"), invalid)))
                    .ok()
            })
            .collect();
        if schedule
            .freq
            .as_deref()
            .is_some_and(|freq| freq != "WEEKLY")
        {
            problems.push((
                format!("schedules[{i}].freq"),
                Invalid::new("one_of", "only WEEKLY schedules are supported"),
            ));
        }
        schedules.push(ScheduleDocument {
            byday,
            opens_at: schedule.opens_at,
            closes_at: schedule.closes_at,
            valid_from: schedule.valid_from,
            valid_to: schedule.valid_to,
            description: schedule.description.clone(),
            description_en: schedule.description_en.clone(),
        });
    }
    let mut service_areas = Vec::new();
    for (i, area) in parts.service_areas.iter().enumerate() {
        let extent = match (&area.extent, area.extent_type.as_deref()) {
            (None, _) => None,
            (Some(text), None | Some("geojson")) => match serde_json::from_str(text) {
                Ok(value) => Some(value),
                Err(_) => {
                    problems.push((
                        format!("service_areas[{i}].extent"),
                        Invalid::new("geojson", "extent is not GeoJSON text"),
                    ));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push((
                    format!("service_areas[{i}].extent_type"),
                    Invalid::new("one_of", "only geojson extents are supported"),
                ));
                None
            }
        };
        service_areas.push(ServiceAreaDocument {
            description: area.description.clone(),
            description_en: area.description_en.clone(),
            province_code: area.province_code.clone(),
            extent,
        });
    }
    let extension = service.eligibility.clone().unwrap_or_default();
    let document = ServiceDocument {
        organization_id,
        name: service.name.clone(),
        name_en: service.name_en.clone(),
        description: service.description.clone().unwrap_or_default(),
        description_en: service.description_en.clone(),
        url: service.url.clone(),
        email: service.email.clone(),
        status: service.status,
        categories,
        delivery,
        accepting_referrals: service.accepting_referrals.unwrap_or(true),
        eligibility: EligibilityDocument {
            min_age: age(service.minimum_age, "minimum_age", &mut problems),
            max_age: age(service.maximum_age, "maximum_age", &mut problems),
            genders: extension.genders,
            victim_statuses: extension.victim_statuses,
            nationalities: extension.nationalities,
            residence_provinces: extension.residence_provinces,
            required_documents,
        },
        languages: parts
            .languages
            .iter()
            .filter_map(|l| l.code.clone())
            .collect(),
        interpretation_available: service
            .interpretation_available
            .unwrap_or(service.interpretation_services.is_some()),
        free: service.free.unwrap_or(true),
        fees_description: service.fees_description.clone(),
        fees_description_en: service.fees_description_en.clone(),
        application_process: service.application_process.clone(),
        application_process_en: service.application_process_en.clone(),
        capacity: match (parts.capacities.first(), &parts.capacity) {
            (Some(capacity), _) => Some(CapacityDocument {
                available: capacity.available,
                maximum: capacity.maximum,
                unit: capacity.unit.as_ref().map(|unit| unit.name.clone()),
            }),
            (None, Some(capacity)) => Some(CapacityDocument {
                available: capacity.available,
                maximum: capacity.maximum,
                unit: capacity.unit.clone(),
            }),
            (None, None) => None,
        },
        location_ids: locations.iter().map(|(id, _)| *id).collect(),
        phones: parts
            .phones
            .iter()
            .enumerate()
            .map(|(i, p)| phone_document(p, &format!("phones[{i}]"), &mut problems))
            .collect(),
        schedules,
        service_areas,
    };
    if let Err(found) = document.clone().validate() {
        problems.extend(found);
    }
    if let Some(Err(invalid)) = service
        .assured_date
        .map(crate::domain::listing::plausible_date)
    {
        problems.push(("assured_date".into(), invalid));
    }
    if let Some(organization) = &organization
        && let Err(found) = organization.clone().validate()
    {
        problems.extend(
            found
                .into_iter()
                .map(|(field, invalid)| (format!("organization.{field}"), invalid)),
        );
    }
    match service_id {
        Some(service_id) if problems.is_empty() => Ok(Record {
            service_id,
            organization_id,
            organization,
            locations,
            service: document.normalized(),
            assured_date: service.assured_date,
        }),
        _ => Err(problems),
    }
}
