//! Loads the illustrative sample directory (seed-data/directory/, compiled
//! into the binary).
//!
//! Records in the files have slugs, not ids; each id is a UUID v5 of the
//! slug (a part's id derives from its owner's and its position, as for
//! writes through the API), so a second load finds every row already there. Loading inserts
//! what is missing and never overwrites: an agency's later edit to a seeded
//! listing survives `ketnoi seed`.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context, anyhow, bail};
use chrono::{NaiveDate, NaiveTime};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use geo::Validation;
use serde::Deserialize;
use uuid::Uuid;

use super::models::locations::{NewLocation, NewServiceAtLocation};
use super::models::organizations::NewOrganization;
use super::models::parts::{NewPhone, NewSchedule, NewServiceArea};
use super::models::services::{NewService, NewServiceCategory};
use super::postgis::{point, to_postgis};
use super::schema::{
    ketnoi_meta, locations, organizations, phones, schedules, service_areas, service_at_location,
    service_categories, services,
};
use crate::domain::category::Category;
use crate::domain::geo::Coordinates;
use crate::domain::ids::{
    LocationId, OrganizationId, ScheduleId, ServiceAreaId, ServiceId, part_id,
    service_at_location_id,
};
use crate::domain::province::ProvinceCode;
use crate::domain::service::{
    CountryCode, DeliveryMode, DocumentType, Gender, LanguageCode, ServiceStatus, VictimStatus,
    Weekday,
};

/// `(file name, contents)` of every file in seed-data/directory/.
pub const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/seed_files.rs"));

/// The key in `ketnoi_meta` recording that the sample was loaded.
pub const SEEDED_KEY: &str = "sample_directory_seeded_at";

/// Namespace of the UUID v5 ids derived from seed slugs.
const NAMESPACE: Uuid = Uuid::from_u128(0x4b65_744e_6f69_5365_6564_0000_0000_0001);

fn id(kind: &str, key: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{kind}:{key}").as_bytes())
}

/// The id the sample gives the record of `kind` (`organization`,
/// `location`, `service`) with this slug.
pub fn sample_id(kind: &str, key: &str) -> Uuid {
    id(kind, key)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    organizations: Vec<SeedOrganization>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedOrganization {
    key: String,
    name: String,
    name_en: Option<String>,
    #[serde(default)]
    description: String,
    description_en: Option<String>,
    email: Option<String>,
    website: Option<String>,
    #[serde(default)]
    phones: Vec<SeedPhone>,
    #[serde(default)]
    locations: Vec<SeedLocation>,
    #[serde(default)]
    services: Vec<SeedService>,
}

/// A phone, as any document gives it.
type SeedPhone = crate::domain::listing::PhoneDocument;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedLocation {
    key: String,
    name: String,
    name_en: Option<String>,
    description: Option<String>,
    description_en: Option<String>,
    address: Option<String>,
    ward_code: Option<String>,
    province_code: String,
    lat: f64,
    lon: f64,
    #[serde(default)]
    confidential: bool,
    #[serde(default)]
    phones: Vec<SeedPhone>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedEligibility {
    min_age: Option<u8>,
    max_age: Option<u8>,
    genders: Option<Vec<Gender>>,
    victim_statuses: Option<Vec<VictimStatus>>,
    nationalities: Option<Vec<String>>,
    residence_provinces: Option<Vec<String>>,
    required_documents: Option<Vec<DocumentType>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedCapacity {
    available: Option<u32>,
    maximum: Option<u32>,
    unit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedSchedule {
    byday: Vec<Weekday>,
    opens_at: Option<String>,
    closes_at: Option<String>,
    description: Option<String>,
    description_en: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedServiceArea {
    description: Option<String>,
    description_en: Option<String>,
    province_code: Option<String>,
    ward_code: Option<String>,
    extent: Option<geojson::Geometry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedService {
    key: String,
    name: String,
    name_en: Option<String>,
    #[serde(default)]
    description: String,
    description_en: Option<String>,
    url: Option<String>,
    email: Option<String>,
    status: ServiceStatus,
    categories: Vec<Category>,
    delivery: Vec<DeliveryMode>,
    #[serde(default)]
    locations: Vec<String>,
    #[serde(default = "yes")]
    accepting_referrals: bool,
    #[serde(default)]
    eligibility: SeedEligibility,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    interpretation_available: bool,
    #[serde(default = "yes")]
    free: bool,
    fees_description: Option<String>,
    fees_description_en: Option<String>,
    application_process: Option<String>,
    application_process_en: Option<String>,
    capacity: Option<SeedCapacity>,
    #[serde(default)]
    schedules: Vec<SeedSchedule>,
    #[serde(default)]
    service_areas: Vec<SeedServiceArea>,
    #[serde(default)]
    phones: Vec<SeedPhone>,
    assured_date: Option<NaiveDate>,
}

fn yes() -> bool {
    true
}

/// Every row the sample directory holds, ready to insert.
#[derive(Default)]
struct Rows<'a> {
    organizations: Vec<NewOrganization<'a>>,
    locations: Vec<NewLocation<'a>>,
    services: Vec<NewService<'a>>,
    categories: Vec<NewServiceCategory>,
    service_at_location: Vec<NewServiceAtLocation>,
    phones: Vec<NewPhone<'a>>,
    schedules: Vec<NewSchedule<'a>>,
    service_areas: Vec<NewServiceArea<'a>>,
}

/// How many rows of each kind a load inserted (0 everywhere on a second
/// load).
pub type SeedReport = BTreeMap<&'static str, usize>;

fn province(code: &str) -> anyhow::Result<&'static str> {
    Ok(ProvinceCode::parse(code)
        .with_context(|| format!("province code `{code}`"))?
        .as_str())
}

fn languages(codes: &[String]) -> anyhow::Result<Vec<&str>> {
    codes
        .iter()
        .map(|code| {
            LanguageCode::parse(code).with_context(|| format!("language `{code}`"))?;
            Ok(code.as_str())
        })
        .collect()
}

fn time(value: &Option<String>) -> anyhow::Result<Option<NaiveTime>> {
    value
        .as_deref()
        .map(|v| NaiveTime::parse_from_str(v, "%H:%M").with_context(|| format!("time `{v}`")))
        .transpose()
}

/// The rows of `phones` for their owner, written as every write writes
/// them, once their languages are checked.
fn phone_rows<'a>(
    phones: &'a [SeedPhone],
    owner_id: Uuid,
    owner: super::models::writes::PhoneOwner,
    rows: &mut Vec<NewPhone<'a>>,
) -> anyhow::Result<()> {
    for phone in phones {
        languages(&phone.languages)?;
    }
    Ok(super::models::writes::phone_rows(
        owner, owner_id, phones, rows,
    )?)
}

fn extent(geometry: &geojson::Geometry) -> anyhow::Result<geo::MultiPolygon<f64>> {
    let shape: geo::Geometry<f64> = geometry.clone().try_into()?;
    let multi = match shape {
        geo::Geometry::Polygon(polygon) => geo::MultiPolygon::new(vec![polygon]),
        geo::Geometry::MultiPolygon(multi) => multi,
        _ => bail!("a service area extent must be a Polygon or MultiPolygon"),
    };
    if let Err(problems) = multi.check_validation() {
        bail!("invalid polygon: {problems}");
    }
    Ok(multi)
}

fn service_rows<'a>(
    organization: &'a SeedOrganization,
    service: &'a SeedService,
    location_ids: &HashMap<&str, LocationId>,
    rows: &mut Rows<'a>,
) -> anyhow::Result<()> {
    let service_id = ServiceId(id("service", &service.key));
    let eligibility = &service.eligibility;
    let nationalities = eligibility
        .nationalities
        .as_ref()
        .map(|codes| {
            codes
                .iter()
                .map(|code| {
                    CountryCode::parse(code).with_context(|| format!("nationality `{code}`"))?;
                    Ok(code.as_str())
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .transpose()?;
    let residence_provinces = eligibility
        .residence_provinces
        .as_ref()
        .map(|codes| {
            codes
                .iter()
                .map(|c| province(c))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .transpose()?;
    if service.categories.is_empty() {
        bail!("a service needs at least one category");
    }
    let in_person = service.delivery.contains(&DeliveryMode::InPerson);
    if in_person && service.locations.is_empty() {
        bail!("an in-person service needs at least one location");
    }
    let capacity = service.capacity.as_ref();
    let stored_count = |count: Option<u32>| count.map(i32::try_from).transpose();
    rows.services.push(NewService {
        id: service_id,
        organization_id: OrganizationId(id("organization", &organization.key)),
        name: &service.name,
        name_en: service.name_en.as_deref(),
        description: &service.description,
        description_en: service.description_en.as_deref(),
        url: service.url.as_deref(),
        email: service.email.as_deref(),
        status: service.status.as_str(),
        delivery_in_person: in_person,
        delivery_remote: service.delivery.contains(&DeliveryMode::Remote),
        accepting_referrals: service.accepting_referrals,
        min_age: eligibility.min_age.map(i16::from),
        max_age: eligibility.max_age.map(i16::from),
        genders: eligibility
            .genders
            .as_ref()
            .map(|v| v.iter().map(|g| g.as_str()).collect()),
        victim_statuses: eligibility
            .victim_statuses
            .as_ref()
            .map(|v| v.iter().map(|s| s.as_str()).collect()),
        nationalities,
        residence_provinces,
        required_documents: eligibility
            .required_documents
            .iter()
            .flatten()
            .map(|d| d.as_str())
            .collect(),
        languages: languages(&service.languages)?,
        interpretation_available: service.interpretation_available,
        is_free: service.free,
        fees_description: service.fees_description.as_deref(),
        fees_description_en: service.fees_description_en.as_deref(),
        application_process: service.application_process.as_deref(),
        application_process_en: service.application_process_en.as_deref(),
        capacity_available: stored_count(capacity.and_then(|c| c.available))?,
        capacity_maximum: stored_count(capacity.and_then(|c| c.maximum))?,
        capacity_unit: capacity.and_then(|c| c.unit.as_deref()),
        capacity_updated: None,
        assured_date: service.assured_date,
    });
    for category in &service.categories {
        rows.categories.push(NewServiceCategory {
            service_id,
            category_code: category.as_str(),
        });
    }
    for key in &service.locations {
        let location_id = *location_ids
            .get(key.as_str())
            .ok_or_else(|| anyhow!("location `{key}` is not one of the organization's"))?;
        rows.service_at_location.push(NewServiceAtLocation {
            id: service_at_location_id(service_id, location_id),
            service_id,
            location_id,
        });
    }
    phone_rows(
        &service.phones,
        service_id.0,
        (None, Some(service_id), None),
        &mut rows.phones,
    )?;
    for (position, schedule) in service.schedules.iter().enumerate() {
        rows.schedules.push(NewSchedule {
            id: ScheduleId(part_id(service_id.0, "schedule", position)),
            service_id,
            position: i16::try_from(position)?,
            byday: schedule.byday.iter().map(|d| d.as_str()).collect(),
            opens_at: time(&schedule.opens_at)?,
            closes_at: time(&schedule.closes_at)?,
            valid_from: None,
            valid_to: None,
            description: schedule.description.as_deref(),
            description_en: schedule.description_en.as_deref(),
        });
    }
    for (position, area) in service.service_areas.iter().enumerate() {
        let extent = area
            .extent
            .as_ref()
            .map(|geometry| extent(geometry).map(|multi| to_postgis(&multi)))
            .transpose()?;
        rows.service_areas.push(NewServiceArea {
            id: ServiceAreaId(part_id(service_id.0, "service_area", position)),
            service_id,
            position: i16::try_from(position)?,
            description: area.description.as_deref(),
            description_en: area.description_en.as_deref(),
            province_code: area.province_code.as_deref().map(province).transpose()?,
            ward_code: area.ward_code.as_deref(),
            extent,
        });
    }
    Ok(())
}

fn organization_rows<'a>(
    organization: &'a SeedOrganization,
    rows: &mut Rows<'a>,
) -> anyhow::Result<()> {
    let organization_id = OrganizationId(id("organization", &organization.key));
    rows.organizations.push(NewOrganization {
        id: organization_id,
        name: &organization.name,
        name_en: organization.name_en.as_deref(),
        description: &organization.description,
        description_en: organization.description_en.as_deref(),
        email: organization.email.as_deref(),
        website: organization.website.as_deref(),
    });
    phone_rows(
        &organization.phones,
        organization_id.0,
        (Some(organization_id), None, None),
        &mut rows.phones,
    )?;
    let mut location_ids = HashMap::new();
    for location in &organization.locations {
        let location_id = LocationId(id("location", &location.key));
        let at = Coordinates::new(location.lat, location.lon)
            .with_context(|| format!("location `{}`", location.key))?;
        rows.locations.push(NewLocation {
            id: location_id,
            organization_id,
            name: &location.name,
            name_en: location.name_en.as_deref(),
            description: location.description.as_deref(),
            description_en: location.description_en.as_deref(),
            address: location.address.as_deref(),
            ward_code: location.ward_code.as_deref(),
            province_code: province(&location.province_code)?,
            point: point(at.lon(), at.lat()),
            confidential: location.confidential,
        });
        phone_rows(
            &location.phones,
            location_id.0,
            (None, None, Some(location_id)),
            &mut rows.phones,
        )?;
        location_ids.insert(location.key.as_str(), location_id);
    }
    for service in &organization.services {
        service_rows(organization, service, &location_ids, rows)
            .with_context(|| format!("service `{}`", service.key))?;
    }
    Ok(())
}

fn parse_files() -> anyhow::Result<Vec<SeedFile>> {
    FILES
        .iter()
        .map(|(name, text)| {
            serde_json::from_str(text).with_context(|| format!("seed-data/directory/{name}"))
        })
        .collect()
}

fn build_rows(files: &[SeedFile]) -> anyhow::Result<Rows<'_>> {
    let mut rows = Rows::default();
    let mut keys = HashSet::new();
    for organization in files.iter().flat_map(|file| &file.organizations) {
        let slugs = std::iter::once(format!("organization:{}", organization.key))
            .chain(
                organization
                    .locations
                    .iter()
                    .map(|l| format!("location:{}", l.key)),
            )
            .chain(
                organization
                    .services
                    .iter()
                    .map(|s| format!("service:{}", s.key)),
            );
        for slug in slugs {
            if !keys.insert(slug.clone()) {
                bail!("duplicate key {slug}");
            }
        }
        organization_rows(organization, &mut rows)
            .with_context(|| format!("organization `{}`", organization.key))?;
    }
    Ok(rows)
}

/// Checks the sample directory without a database: every file parses, every
/// code is known, every reference resolves.
pub fn check() -> anyhow::Result<()> {
    let files = parse_files()?;
    build_rows(&files).map(|_| ())
}

/// Inserts what is missing of the sample directory, in one transaction, and
/// records that it was loaded.
pub async fn load(conn: &mut AsyncPgConnection) -> anyhow::Result<SeedReport> {
    let files = parse_files()?;
    let rows = build_rows(&files)?;
    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        let mut report = SeedReport::new();
        macro_rules! insert_all {
            ($table:ident, $values:expr) => {{
                let mut inserted = 0;
                for chunk in $values.chunks(500) {
                    inserted += diesel::insert_into($table::table)
                        .values(chunk)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await
                        .context(concat!("inserting ", stringify!($table)))?;
                }
                report.insert(stringify!($table), inserted);
            }};
        }
        insert_all!(organizations, rows.organizations);
        insert_all!(locations, rows.locations);
        insert_all!(services, rows.services);
        insert_all!(service_categories, rows.categories);
        insert_all!(service_at_location, rows.service_at_location);
        insert_all!(phones, rows.phones);
        insert_all!(schedules, rows.schedules);
        insert_all!(service_areas, rows.service_areas);
        diesel::insert_into(ketnoi_meta::table)
            .values((
                ketnoi_meta::key.eq(SEEDED_KEY),
                ketnoi_meta::value.eq(chrono::Utc::now().to_rfc3339()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(report)
    })
    .await
}

/// Whether the sample directory was ever loaded into this database.
pub async fn was_loaded(conn: &mut AsyncPgConnection) -> anyhow::Result<bool> {
    let found: Option<String> = ketnoi_meta::table
        .find(SEEDED_KEY)
        .select(ketnoi_meta::value)
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_directory_is_consistent() {
        check().unwrap();
    }

    #[test]
    fn ids_are_stable() {
        assert_eq!(id("service", "a"), id("service", "a"));
        assert_ne!(id("service", "a"), id("location", "a"));
    }
}
