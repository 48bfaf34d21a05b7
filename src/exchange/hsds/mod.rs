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

mod inbound;
mod outbound;

pub use inbound::*;
pub use outbound::*;

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
    pub ward_code: Option<String>,
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
