//! The JSON shapes the API returns for listings, built from the db records.
//!
//! These types are the API contract; they change only on purpose, whatever
//! the columns do. What of a confidential location a reader sees is
//! decided by [`crate::domain::access::seen_location`]; [`LocationView`]
//! only shows it.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::locations::LocationRecord;
use crate::db::models::organizations::OrganizationRecord;
use crate::db::models::parts::{PhoneRecord, ScheduleRecord, ServiceAreaRow};
use crate::db::models::services::ServiceRecord;
use crate::db::postgis::multipolygon_coordinates;
use crate::domain::access::{Audience, seen_location};
use crate::domain::category::Category;
use crate::domain::ids::{
    LocationId, OrganizationId, PhoneId, ScheduleId, ServiceAreaId, ServiceId,
};
use crate::domain::service::{
    DeliveryMode, DocumentType, Gender, PhoneType, ServiceStatus, VictimStatus, Weekday,
};

/// A phone number.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PhoneView {
    pub id: PhoneId,
    #[schema(example = "+84 214 555 0101")]
    pub number: String,
    pub extension: Option<String>,
    #[serde(rename = "type")]
    pub phone_type: PhoneType,
    pub description: Option<String>,
    pub description_en: Option<String>,
    /// Languages spoken on this line (ISO 639 codes).
    pub languages: Vec<String>,
}

impl From<PhoneRecord> for PhoneView {
    fn from(phone: PhoneRecord) -> Self {
        Self {
            id: phone.id,
            number: phone.number,
            extension: phone.extension,
            phone_type: phone.phone_type,
            description: phone.description,
            description_en: phone.description_en,
            languages: phone.languages,
        }
    }
}

fn phones(records: Vec<PhoneRecord>) -> Vec<PhoneView> {
    records.into_iter().map(PhoneView::from).collect()
}

/// A place where an organisation receives people.
///
/// A confidential location (a shelter) is shown to the public with
/// `redacted: true`: its name and province only, with no address, ward,
/// description or phones, and a point rounded to 0.1° (about 11 km).
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationView {
    pub id: LocationId,
    pub name: String,
    pub name_en: Option<String>,
    pub description: Option<String>,
    pub description_en: Option<String>,
    /// Street address (the ward and province are given by their codes);
    /// null when redacted.
    pub address: Option<String>,
    /// Official ward/commune code; null when redacted.
    pub ward_code: Option<String>,
    pub ward_name: Option<String>,
    pub province_code: String,
    pub province_name: String,
    /// WGS84 latitude; rounded to 0.1° when redacted.
    pub latitude: f64,
    /// WGS84 longitude; rounded to 0.1° when redacted.
    pub longitude: f64,
    /// Whether the location is confidential (a shelter).
    pub confidential: bool,
    /// Whether the address and exact point were withheld from this reader.
    pub redacted: bool,
    pub phones: Vec<PhoneView>,
}

impl LocationView {
    pub fn new(record: LocationRecord, audience: Audience) -> Self {
        let seen = seen_location(record.stored(), audience);
        let shown = seen.shown();
        let owned = |value: Option<&str>| value.map(str::to_owned);
        Self {
            id: record.row.id,
            name: record.row.name.clone(),
            name_en: record.row.name_en.clone(),
            description: owned(shown.description),
            description_en: owned(shown.description_en),
            address: owned(shown.address),
            ward_code: owned(shown.ward_code),
            ward_name: owned(shown.ward_name),
            province_code: record.row.province_code.clone(),
            province_name: record.province_name.clone(),
            latitude: seen.latitude,
            longitude: seen.longitude,
            confidential: record.row.confidential,
            redacted: seen.redacted(),
            phones: shown.phones.iter().cloned().map(PhoneView::from).collect(),
        }
    }
}

/// Weekly opening hours for some days (HSDS `schedule`, `freq=WEEKLY`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    pub id: ScheduleId,
    /// The days these hours apply to.
    pub byday: Vec<Weekday>,
    /// Opening time, local (Asia/Ho_Chi_Minh); null with `closes_at` null
    /// means open all day.
    #[schema(value_type = Option<String>, example = "07:30:00")]
    pub opens_at: Option<NaiveTime>,
    #[schema(value_type = Option<String>, example = "11:30:00")]
    pub closes_at: Option<NaiveTime>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub description: Option<String>,
    pub description_en: Option<String>,
}

impl From<ScheduleRecord> for ScheduleView {
    fn from(schedule: ScheduleRecord) -> Self {
        Self {
            id: schedule.id,
            byday: schedule.hours.byday,
            opens_at: schedule.hours.opens_at,
            closes_at: schedule.hours.closes_at,
            valid_from: schedule.hours.valid_from,
            valid_to: schedule.hours.valid_to,
            description: schedule.description,
            description_en: schedule.description_en,
        }
    }
}

/// The GeoJSON geometry type tag.
#[derive(Debug, Serialize, ToSchema)]
pub enum MultiPolygonType {
    MultiPolygon,
}

/// A GeoJSON (RFC 7946) MultiPolygon, longitude before latitude.
#[derive(Debug, Serialize, ToSchema)]
pub struct GeoJsonMultiPolygon {
    #[serde(rename = "type")]
    pub geometry_type: MultiPolygonType,
    /// Polygons, each a list of rings (exterior first), each a list of
    /// `[longitude, latitude]` positions.
    pub coordinates: Vec<Vec<Vec<[f64; 2]>>>,
}

/// Where a service serves people: a whole province, a whole ward or
/// commune, or a polygon.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAreaView {
    pub id: ServiceAreaId,
    pub description: Option<String>,
    pub description_en: Option<String>,
    /// The province served, when the area is a province.
    pub province_code: Option<String>,
    /// The ward or commune served, when the area is a ward.
    pub ward_code: Option<String>,
    /// The polygon served, when the area is a polygon.
    pub extent: Option<GeoJsonMultiPolygon>,
}

impl From<ServiceAreaRow> for ServiceAreaView {
    fn from(area: ServiceAreaRow) -> Self {
        Self {
            id: area.id,
            description: area.description,
            description_en: area.description_en,
            province_code: area.province_code,
            ward_code: area.ward_code,
            extent: area.extent.as_ref().map(|extent| GeoJsonMultiPolygon {
                geometry_type: MultiPolygonType::MultiPolygon,
                coordinates: multipolygon_coordinates(extent),
            }),
        }
    }
}

/// Who a service admits. `null` means the rule does not restrict anyone.
#[derive(Debug, Serialize, ToSchema)]
pub struct EligibilityView {
    /// Inclusive lower age bound, whole years.
    pub min_age: Option<u8>,
    /// Inclusive upper age bound, whole years.
    pub max_age: Option<u8>,
    pub genders: Option<Vec<Gender>>,
    pub victim_statuses: Option<Vec<VictimStatus>>,
    /// ISO 3166-1 alpha-2 codes.
    pub nationalities: Option<Vec<String>>,
    /// Province codes the person must live in.
    pub residence_provinces: Option<Vec<String>>,
    /// Documents the person must hold, all of them.
    pub required_documents: Vec<DocumentType>,
}

/// Places offered and left (HSDS 3.1 `service_capacity`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CapacityView {
    pub available: Option<u32>,
    pub maximum: Option<u32>,
    /// What is counted (`beds`, `places`…).
    pub unit: Option<String>,
    pub updated: Option<DateTime<Utc>>,
}

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: OrganizationId,
    pub name: String,
    pub name_en: Option<String>,
    pub description: String,
    pub description_en: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    pub phones: Vec<PhoneView>,
    pub last_modified: DateTime<Utc>,
}

impl From<OrganizationRecord> for OrganizationView {
    fn from(record: OrganizationRecord) -> Self {
        let row = record.row;
        Self {
            id: row.id,
            name: row.name,
            name_en: row.name_en,
            description: row.description,
            description_en: row.description_en,
            email: row.email,
            website: row.website,
            phones: phones(record.phones),
            last_modified: row.last_modified,
        }
    }
}

/// A service with everything it is listed with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub id: ServiceId,
    pub name: String,
    pub name_en: Option<String>,
    pub description: String,
    pub description_en: Option<String>,
    pub url: Option<String>,
    pub email: Option<String>,
    pub status: ServiceStatus,
    pub categories: Vec<Category>,
    /// `in_person` (at one of `locations`), `remote` (by phone or online,
    /// to everyone inside the service areas), or both.
    pub delivery: Vec<DeliveryMode>,
    pub accepting_referrals: bool,
    pub eligibility: EligibilityView,
    /// Languages the service works in (ISO 639 codes).
    pub languages: Vec<String>,
    /// Whether an interpreter can be arranged for other languages.
    pub interpretation_available: bool,
    /// Whether the service is free of charge.
    pub free: bool,
    pub fees_description: Option<String>,
    pub fees_description_en: Option<String>,
    pub application_process: Option<String>,
    pub application_process_en: Option<String>,
    pub capacity: Option<CapacityView>,
    pub organization: OrganizationView,
    pub locations: Vec<LocationView>,
    pub phones: Vec<PhoneView>,
    pub schedules: Vec<ScheduleView>,
    /// Where the service serves people; empty means everywhere.
    pub service_areas: Vec<ServiceAreaView>,
    /// When the listing was last verified.
    pub assured_date: Option<NaiveDate>,
    /// When anything shown here last changed; for a reader shown a
    /// confidential location redacted, when anything it is shown changed.
    pub last_modified: DateTime<Utc>,
    /// Metres (WGS84 spheroid) from the `near` point to the nearest
    /// location; present only when searching with `near`. For a redacted
    /// location it is measured to the rounded point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

impl ServiceView {
    pub fn new(record: ServiceRecord, audience: Audience) -> Self {
        let row = record.row;
        let eligibility = record.eligibility;
        let delivery = row.delivery();
        Self {
            id: row.id,
            name: row.name,
            name_en: row.name_en,
            description: row.description,
            description_en: row.description_en,
            url: row.url,
            email: row.email,
            status: record.status,
            categories: record.categories,
            delivery,
            accepting_referrals: row.accepting_referrals,
            eligibility: EligibilityView {
                min_age: eligibility.min_age,
                max_age: eligibility.max_age,
                genders: eligibility.genders,
                victim_statuses: eligibility.victim_statuses,
                nationalities: eligibility
                    .nationalities
                    .map(|codes| codes.iter().map(|c| c.as_str().to_owned()).collect()),
                residence_provinces: eligibility
                    .residence_provinces
                    .map(|codes| codes.iter().map(|c| c.as_str().to_owned()).collect()),
                required_documents: eligibility.required_documents,
            },
            languages: row.languages,
            interpretation_available: row.interpretation_available,
            free: row.is_free,
            fees_description: row.fees_description,
            fees_description_en: row.fees_description_en,
            application_process: row.application_process,
            application_process_en: row.application_process_en,
            capacity: record.capacity.map(|capacity| CapacityView {
                available: capacity.available,
                maximum: capacity.maximum,
                unit: capacity.unit,
                updated: row.capacity_updated,
            }),
            organization: record.organization.into(),
            locations: record
                .locations
                .into_iter()
                .map(|location| LocationView::new(location, audience))
                .collect(),
            phones: phones(record.phones),
            schedules: record.schedules.into_iter().map(Into::into).collect(),
            service_areas: record.service_areas.into_iter().map(Into::into).collect(),
            assured_date: row.assured_date,
            last_modified: audience.last_modified(row.last_modified, row.public_last_modified),
            distance_m: record.distance_m.map(|d| (d * 10.0).round() / 10.0),
        }
    }
}

/// One page of a list, in the HSDS `Page` shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// Items in all pages. Exact, unless `total_items_capped` says that
    /// counting stopped at the cap.
    pub total_items: i64,
    /// Present and true when counting stopped at a cap (broad searches and
    /// `near` listings): there are more than `total_items` items,
    /// `total_pages` counts the pages up to `total_items`, and `last_page`
    /// is false; the pages after `total_pages` can still be asked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub total_items_capped: bool,
    /// Number of pages (0 when there are no items).
    pub total_pages: i64,
    /// This page's number, from 1.
    pub page_number: i64,
    /// Items in this page.
    pub size: i64,
    pub first_page: bool,
    pub last_page: bool,
    /// Whether this page has no items.
    pub empty: bool,
    pub contents: Vec<T>,
    /// In the change feed (`GET /v1/services` with `modified_after` or
    /// `cursor`): pass it as `cursor` for the changes after this page's
    /// last one. Absent elsewhere, and when the page is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new(
        contents: Vec<T>,
        total: impl Into<crate::domain::page::Total>,
        page: crate::domain::page::PageRequest,
    ) -> Self {
        let crate::domain::page::Total {
            count: total_items,
            capped,
        } = total.into();
        let per_page = page.limit();
        let total_pages = (total_items + per_page - 1) / per_page;
        let page_number = i64::from(page.page());
        let size = i64::try_from(contents.len()).unwrap_or(i64::MAX);
        Self {
            total_items,
            total_items_capped: capped,
            total_pages,
            page_number,
            size,
            first_page: page_number == 1,
            last_page: !capped && page_number >= total_pages,
            empty: contents.is_empty(),
            contents,
            next_cursor: None,
        }
    }
}

/// One change in a resource's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// Order of the change (increasing).
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The key that made the change; null for the command line.
    pub key_id: Option<crate::domain::ids::KeyId>,
    /// `create`, `update`, `archive`, `restore`, `capacity`, `verify`,
    /// `import`.
    pub action: String,
    /// Top-level fields whose value changed.
    pub changed: Vec<String>,
    /// The document before the change (null on creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The document after the change.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}
