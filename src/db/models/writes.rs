//! Writing listings: services, locations and organisations replaced as
//! whole documents, in batches (one write through the API is a batch of
//! one, an import is a batch of thousands), and the audit trail.
//!
//! Callers run these inside one transaction, after [`defer_refresh`]; the
//! derived matcher tables are rebuilt once per touched service by
//! [`refresh`] at the end instead of once per row by the triggers.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Uuid as SqlUuid};
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::DbError;
use super::locations::{LocationRecord, NewServiceAtLocation};
use super::organizations::OrganizationRecord;
use super::parts::{NewPhone, NewSchedule, NewServiceArea, PhoneRecord};
use super::services::{NewServiceCategory, ServiceRecord};
use crate::db::DbConn;
use crate::db::postgis::{point, to_postgis};
use crate::db::schema::{
    audit_log, locations, organizations, phones, schedules, service_areas, service_at_location,
    service_categories, services,
};
use crate::domain::Invalid;
use crate::domain::ids::{
    KeyId, LocationId, OrganizationId, PhoneId, ScheduleId, ServiceAreaId, ServiceId, part_id,
    service_at_location_id,
};
use crate::domain::listing::{
    CapacityDocument, EligibilityDocument, LocationDocument, OrganizationDocument, PhoneDocument,
    ScheduleDocument, ServiceAreaDocument, ServiceDocument, Validated, extent_json, parse_extent,
};
use crate::domain::province::ProvinceCode;
use crate::domain::service::DeliveryMode;

/// Rows per INSERT: well under PostgreSQL's 65,535 bind parameters.
const CHUNK: usize = 500;

/// How far (metres) a location may lie outside its province's boundary;
/// the shipped boundaries are simplified to about 100 m.
pub const PROVINCE_TOLERANCE_M: f64 = 5_000.0;

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Rules that need the database (locations of the right organisation,
    /// wards of the right province…), by record index and field path.
    #[error("{} invalid fields", .0.len())]
    Invalid(Vec<(usize, String, Invalid)>),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for WriteError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// Makes the matcher triggers skip their per-row rebuilds for the rest of
/// the transaction; call [`refresh`] before committing.
pub async fn defer_refresh(conn: &mut DbConn) -> Result<(), DbError> {
    diesel::sql_query("SET LOCAL ketnoi.defer_refresh = 'on'")
        .execute(conn)
        .await?;
    Ok(())
}

/// Rebuilds the matcher's derived rows of these services.
pub async fn refresh(conn: &mut DbConn, ids: &[ServiceId]) -> Result<(), DbError> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    for chunk in ids.chunks(CHUNK) {
        diesel::sql_query("SELECT ketnoi_refresh_match_many($1::uuid[])")
            .bind::<Array<SqlUuid>, _>(chunk)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// The document a stored service would be written as.
pub fn service_document(record: &ServiceRecord, location_ids: Vec<LocationId>) -> ServiceDocument {
    let row = &record.row;
    let eligibility = &record.eligibility;
    let mut delivery = Vec::new();
    if row.delivery_in_person {
        delivery.push(DeliveryMode::InPerson);
    }
    if row.delivery_remote {
        delivery.push(DeliveryMode::Remote);
    }
    ServiceDocument {
        organization_id: Some(row.organization_id),
        name: row.name.clone(),
        name_en: row.name_en.clone(),
        description: row.description.clone(),
        description_en: row.description_en.clone(),
        url: row.url.clone(),
        email: row.email.clone(),
        status: record.status,
        categories: record.categories.clone(),
        delivery,
        accepting_referrals: row.accepting_referrals,
        eligibility: EligibilityDocument {
            min_age: eligibility.min_age,
            max_age: eligibility.max_age,
            genders: eligibility.genders.clone(),
            victim_statuses: eligibility.victim_statuses.clone(),
            nationalities: eligibility
                .nationalities
                .as_ref()
                .map(|codes| codes.iter().map(|c| c.as_str().to_owned()).collect()),
            residence_provinces: eligibility
                .residence_provinces
                .as_ref()
                .map(|codes| codes.iter().map(|c| c.as_str().to_owned()).collect()),
            required_documents: eligibility.required_documents.clone(),
        },
        languages: row.languages.clone(),
        interpretation_available: row.interpretation_available,
        free: row.is_free,
        fees_description: row.fees_description.clone(),
        fees_description_en: row.fees_description_en.clone(),
        application_process: row.application_process.clone(),
        application_process_en: row.application_process_en.clone(),
        capacity: record.capacity.as_ref().map(|capacity| CapacityDocument {
            available: capacity.available,
            maximum: capacity.maximum,
            unit: capacity.unit.clone(),
        }),
        location_ids,
        phones: record.phones.iter().map(phone_document).collect(),
        schedules: record
            .schedules
            .iter()
            .map(|schedule| ScheduleDocument {
                byday: schedule.hours.byday.clone(),
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
            .map(|area| ServiceAreaDocument {
                description: area.description.clone(),
                description_en: area.description_en.clone(),
                province_code: area.province_code.clone(),
                extent: area
                    .extent
                    .as_ref()
                    .map(|extent| extent_json(&crate::db::postgis::to_geo(extent))),
            })
            .collect(),
    }
    .normalized()
}

/// A stored phone as it would be written.
pub fn phone_document(phone: &PhoneRecord) -> PhoneDocument {
    PhoneDocument {
        number: phone.number.clone(),
        extension: phone.extension.clone(),
        phone_type: phone.phone_type,
        description: phone.description.clone(),
        description_en: phone.description_en.clone(),
        languages: phone.languages.clone(),
    }
}

/// A stored location as it would be written.
pub fn location_document(record: &LocationRecord) -> LocationDocument {
    let row = &record.row;
    LocationDocument {
        organization_id: Some(row.organization_id),
        name: row.name.clone(),
        name_en: row.name_en.clone(),
        description: row.description.clone(),
        description_en: row.description_en.clone(),
        address: row.address.clone(),
        ward_code: row.ward_code.clone(),
        province_code: row.province_code.clone(),
        latitude: row.point.y,
        longitude: row.point.x,
        confidential: row.confidential,
        phones: record.phones.iter().map(phone_document).collect(),
        acknowledge_near_confidential: false,
    }
}

/// A stored organisation as it would be written.
pub fn organization_document(record: &OrganizationRecord) -> OrganizationDocument {
    let row = &record.row;
    OrganizationDocument {
        name: row.name.clone(),
        name_en: row.name_en.clone(),
        description: row.description.clone(),
        description_en: row.description_en.clone(),
        email: row.email.clone(),
        website: row.website.clone(),
        phones: record.phones.iter().map(phone_document).collect(),
    }
}

/// Every location linked to each service, archived ones included (they
/// stay linked, to come back on restore).
pub async fn linked_locations(
    conn: &mut DbConn,
    ids: &[ServiceId],
) -> Result<HashMap<ServiceId, Vec<LocationId>>, DbError> {
    let pairs: Vec<(ServiceId, LocationId)> = service_at_location::table
        .filter(service_at_location::service_id.eq_any(ids.iter().map(|id| id.0)))
        .select((
            service_at_location::service_id,
            service_at_location::location_id,
        ))
        .load(conn)
        .await?;
    let mut grouped: HashMap<ServiceId, Vec<LocationId>> = HashMap::new();
    for (service, location) in pairs {
        grouped.entry(service).or_default().push(location);
    }
    Ok(grouped)
}

/// The current documents of these services, with their organisations.
pub async fn service_documents(
    conn: &mut DbConn,
    ids: &[ServiceId],
) -> Result<HashMap<ServiceId, ServiceDocument>, DbError> {
    let records = super::services::load_records(conn, ids).await?;
    let mut links = linked_locations(conn, ids).await?;
    Ok(records
        .into_iter()
        .map(|(id, record)| {
            let document = service_document(&record, links.remove(&id).unwrap_or_default());
            (id, document)
        })
        .collect())
}

/// One service to write.
pub struct ServiceWrite<'a> {
    pub id: ServiceId,
    pub organization_id: OrganizationId,
    pub document: &'a Validated<ServiceDocument>,
    /// Verification date to set (admins only); `None` keeps the stored one.
    pub assured_date: Option<Option<NaiveDate>>,
}

fn phone_rows<'a>(
    owner: (
        Option<OrganizationId>,
        Option<ServiceId>,
        Option<LocationId>,
    ),
    owner_id: Uuid,
    documents: &'a [PhoneDocument],
    rows: &mut Vec<NewPhone<'a>>,
) -> Result<(), DbError> {
    for (position, phone) in documents.iter().enumerate() {
        rows.push(NewPhone {
            id: PhoneId(part_id(owner_id, "phone", position)),
            organization_id: owner.0,
            service_id: owner.1,
            location_id: owner.2,
            position: small(position)?,
            number: &phone.number,
            extension: phone.extension.as_deref(),
            phone_type: phone.phone_type.as_str(),
            description: phone.description.as_deref(),
            description_en: phone.description_en.as_deref(),
            languages: phone.languages.iter().map(String::as_str).collect(),
        });
    }
    Ok(())
}

fn small(position: usize) -> Result<i16, DbError> {
    i16::try_from(position).map_err(|_| DbError::Corrupt {
        column: "position",
        source: Invalid::new("range", "too many parts"),
    })
}

fn province(code: &str) -> Result<&'static str, DbError> {
    ProvinceCode::parse(code)
        .map(ProvinceCode::as_str)
        .map_err(|source| DbError::Corrupt {
            column: "province_code",
            source,
        })
}

/// Checks that every linked location belongs to the service's organisation.
/// An unknown id and another organisation's get the same answer, so that
/// nothing leaks. Archived locations may stay linked (a document read back
/// lists them): they are left out of listings and matches until restored.
async fn check_location_links(
    conn: &mut DbConn,
    writes: &[ServiceWrite<'_>],
) -> Result<(), WriteError> {
    let wanted: Vec<Uuid> = writes
        .iter()
        .flat_map(|w| w.document.get().location_ids.iter().map(|id| id.0))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut owners: HashMap<LocationId, OrganizationId> = HashMap::new();
    for chunk in wanted.chunks(CHUNK * 10) {
        let found: Vec<(LocationId, OrganizationId)> = locations::table
            .filter(locations::id.eq_any(chunk))
            .select((locations::id, locations::organization_id))
            .load(conn)
            .await?;
        owners.extend(found);
    }
    let mut problems = Vec::new();
    for (index, write) in writes.iter().enumerate() {
        for (i, location) in write.document.get().location_ids.iter().enumerate() {
            if owners.get(location) != Some(&write.organization_id) {
                problems.push((
                    index,
                    format!("location_ids[{i}]"),
                    Invalid::new(
                        "own_location",
                        "not a location of the service's organisation",
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(WriteError::Invalid(problems))
    }
}

#[derive(QueryableByName)]
struct ExtentProblem {
    #[diesel(sql_type = BigInt)]
    ordinal: i64,
    #[diesel(sql_type = BigInt)]
    position: i64,
    #[diesel(sql_type = Text)]
    problem: String,
}

/// Asks PostGIS whether it can store and measure every polygon area, one
/// by one and each service's together, before anything is written: what
/// the domain's rules let through but PostGIS still refuses becomes a 422
/// naming the area, not a failed statement (a 500).
async fn check_extents(conn: &mut DbConn, writes: &[ServiceWrite<'_>]) -> Result<(), WriteError> {
    let (mut ordinals, mut positions, mut extents) = (Vec::new(), Vec::new(), Vec::new());
    for (index, write) in writes.iter().enumerate() {
        for (position, area) in write.document.get().service_areas.iter().enumerate() {
            if let Some(extent) = &area.extent {
                let multi = parse_extent(extent).map_err(|source| DbError::Corrupt {
                    column: "service_areas.extent",
                    source,
                })?;
                ordinals.push(i64::try_from(index + 1).unwrap_or(i64::MAX));
                positions.push(i64::try_from(position).unwrap_or(i64::MAX));
                extents.push(extent_json(&multi).to_string());
            }
        }
    }
    if extents.is_empty() {
        return Ok(());
    }
    let mut found: Vec<ExtentProblem> = diesel::sql_query(
        "SELECT ordinal, position, problem FROM ( \
             SELECT t.ordinal, t.position, ketnoi_extent_problem(t.geojson) AS problem \
             FROM unnest($1::int8[], $2::int8[], $3::text[]) AS t(ordinal, position, geojson)) c \
         WHERE problem IS NOT NULL",
    )
    .bind::<Array<BigInt>, _>(&ordinals)
    .bind::<Array<BigInt>, _>(&positions)
    .bind::<Array<Text>, _>(&extents)
    .load(conn)
    .await?;
    if found.is_empty() {
        found = diesel::sql_query(
            "SELECT ordinal, -1::int8 AS position, problem FROM ( \
                 SELECT t.ordinal, ketnoi_extents_problem(array_agg(t.geojson)) AS problem \
                 FROM unnest($1::int8[], $2::text[]) AS t(ordinal, geojson) \
                 GROUP BY t.ordinal HAVING count(*) > 1) c \
             WHERE problem IS NOT NULL",
        )
        .bind::<Array<BigInt>, _>(&ordinals)
        .bind::<Array<Text>, _>(&extents)
        .load(conn)
        .await?;
    }
    if found.is_empty() {
        return Ok(());
    }
    let problems = found
        .into_iter()
        .map(|found| {
            tracing::info!(problem = %found.problem, "PostGIS refused a service area");
            let index = usize::try_from(found.ordinal - 1).unwrap_or_default();
            match usize::try_from(found.position) {
                Ok(position) => (
                    index,
                    format!("service_areas[{position}].extent"),
                    Invalid::new(
                        "geography",
                        "PostGIS cannot build a geography from this polygon: make its edges \
                         shorter and keep it away from the poles and the antimeridian",
                    ),
                ),
                Err(_) => (
                    index,
                    "service_areas".to_owned(),
                    Invalid::new(
                        "geography",
                        "PostGIS cannot combine these areas into one geography: make their \
                         edges shorter and keep them away from the poles and the antimeridian",
                    ),
                ),
            }
        })
        .collect();
    Err(WriteError::Invalid(problems))
}

/// Writes services as given (inserting new ones, replacing the parts of
/// existing ones). The caller has checked ownership and locked what it
/// compares against.
pub async fn write_services(
    conn: &mut DbConn,
    writes: &[ServiceWrite<'_>],
) -> Result<(), WriteError> {
    check_location_links(conn, writes).await?;
    check_extents(conn, writes).await?;
    let ids: Vec<Uuid> = writes.iter().map(|w| w.id.0).collect();

    let mut rows = Vec::with_capacity(writes.len());
    for write in writes {
        let d = write.document.get();
        let eligibility = &d.eligibility;
        let capacity = d.capacity.clone().unwrap_or_default();
        let capacity_number = |value: Option<u32>| value.and_then(|v| i32::try_from(v).ok());
        rows.push((
            services::id.eq(write.id),
            services::organization_id.eq(write.organization_id),
            services::name.eq(&d.name),
            services::name_en.eq(&d.name_en),
            services::description.eq(&d.description),
            services::description_en.eq(&d.description_en),
            services::url.eq(&d.url),
            services::email.eq(&d.email),
            services::status.eq(d.status.as_str()),
            services::delivery_in_person.eq(d.delivery.contains(&DeliveryMode::InPerson)),
            services::delivery_remote.eq(d.delivery.contains(&DeliveryMode::Remote)),
            services::accepting_referrals.eq(d.accepting_referrals),
            services::min_age.eq(eligibility.min_age.map(i16::from)),
            services::max_age.eq(eligibility.max_age.map(i16::from)),
            (
                services::genders.eq(eligibility
                    .genders
                    .as_ref()
                    .map(|v| v.iter().map(|g| g.as_str()).collect::<Vec<_>>())),
                services::victim_statuses.eq(eligibility
                    .victim_statuses
                    .as_ref()
                    .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>())),
                services::nationalities.eq(&eligibility.nationalities),
                services::residence_provinces.eq(&eligibility.residence_provinces),
                services::required_documents.eq(eligibility
                    .required_documents
                    .iter()
                    .map(|d| d.as_str())
                    .collect::<Vec<_>>()),
                services::languages.eq(&d.languages),
                services::interpretation_available.eq(d.interpretation_available),
                services::is_free.eq(d.free),
                services::fees_description.eq(&d.fees_description),
                services::fees_description_en.eq(&d.fees_description_en),
                services::application_process.eq(&d.application_process),
                services::application_process_en.eq(&d.application_process_en),
                services::capacity_available.eq(capacity_number(capacity.available)),
                services::capacity_maximum.eq(capacity_number(capacity.maximum)),
                services::capacity_unit.eq(capacity.unit),
                services::capacity_updated.eq(d.capacity.is_some().then(chrono::Utc::now)),
            ),
        ));
    }
    for chunk in rows.chunks(CHUNK) {
        diesel::insert_into(services::table)
            .values(chunk)
            .on_conflict(services::id)
            .do_update()
            .set((
                services::name.eq(excluded(services::name)),
                services::name_en.eq(excluded(services::name_en)),
                services::description.eq(excluded(services::description)),
                services::description_en.eq(excluded(services::description_en)),
                services::url.eq(excluded(services::url)),
                services::email.eq(excluded(services::email)),
                services::status.eq(excluded(services::status)),
                services::delivery_in_person.eq(excluded(services::delivery_in_person)),
                services::delivery_remote.eq(excluded(services::delivery_remote)),
                services::accepting_referrals.eq(excluded(services::accepting_referrals)),
                services::min_age.eq(excluded(services::min_age)),
                services::max_age.eq(excluded(services::max_age)),
                services::genders.eq(excluded(services::genders)),
                services::victim_statuses.eq(excluded(services::victim_statuses)),
                services::nationalities.eq(excluded(services::nationalities)),
                services::residence_provinces.eq(excluded(services::residence_provinces)),
                services::required_documents.eq(excluded(services::required_documents)),
                services::languages.eq(excluded(services::languages)),
                services::interpretation_available.eq(excluded(services::interpretation_available)),
                services::is_free.eq(excluded(services::is_free)),
                services::fees_description.eq(excluded(services::fees_description)),
                services::fees_description_en.eq(excluded(services::fees_description_en)),
                services::application_process.eq(excluded(services::application_process)),
                services::application_process_en.eq(excluded(services::application_process_en)),
                services::capacity_available.eq(excluded(services::capacity_available)),
                services::capacity_maximum.eq(excluded(services::capacity_maximum)),
                services::capacity_unit.eq(excluded(services::capacity_unit)),
                // Places changed: now; else when they last did.
                services::capacity_updated.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
                >(
                    "CASE WHEN (services.capacity_available, services.capacity_maximum, \
                     services.capacity_unit) IS DISTINCT FROM (excluded.capacity_available, \
                     excluded.capacity_maximum, excluded.capacity_unit) THEN now() \
                     ELSE services.capacity_updated END",
                )),
            ))
            .execute(conn)
            .await?;
    }
    // The upsert never moves a service to another organisation; if one of
    // the ids was another organisation's (created meanwhile by a concurrent
    // write), refuse, and the caller's transaction takes it all back.
    let organizations: Vec<Uuid> = writes.iter().map(|w| w.organization_id.0).collect();
    check_owners(conn, "services", &ids, &organizations, "own_service").await?;
    let (verified, dates): (Vec<Uuid>, Vec<Option<NaiveDate>>) = writes
        .iter()
        .filter_map(|w| w.assured_date.map(|date| (w.id.0, date)))
        .unzip();
    for (ids, dates) in verified.chunks(CHUNK * 10).zip(dates.chunks(CHUNK * 10)) {
        diesel::sql_query(
            "UPDATE services s SET assured_date = t.date \
             FROM unnest($1::uuid[], $2::date[]) AS t(id, date) \
             WHERE s.id = t.id AND s.assured_date IS DISTINCT FROM t.date",
        )
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Nullable<diesel::sql_types::Date>>, _>(dates)
        .execute(conn)
        .await?;
    }

    // Parts are replaced wholesale; their ids derive from the service id
    // and position, so rewriting the same document gives the same ids.
    for chunk in ids.chunks(CHUNK * 10) {
        diesel::delete(
            service_categories::table.filter(service_categories::service_id.eq_any(chunk)),
        )
        .execute(conn)
        .await?;
        diesel::delete(
            service_at_location::table.filter(service_at_location::service_id.eq_any(chunk)),
        )
        .execute(conn)
        .await?;
        diesel::delete(phones::table.filter(phones::service_id.eq_any(chunk)))
            .execute(conn)
            .await?;
        diesel::delete(schedules::table.filter(schedules::service_id.eq_any(chunk)))
            .execute(conn)
            .await?;
        diesel::delete(service_areas::table.filter(service_areas::service_id.eq_any(chunk)))
            .execute(conn)
            .await?;
    }

    let mut categories = Vec::new();
    let mut links = Vec::new();
    let mut phone_rows_ = Vec::new();
    let mut schedule_rows = Vec::new();
    let mut area_rows = Vec::new();
    for write in writes {
        let d = write.document.get();
        let service_id = write.id;
        categories.extend(d.categories.iter().map(|category| NewServiceCategory {
            service_id,
            category_code: category.as_str(),
        }));
        links.extend(d.location_ids.iter().map(|location| NewServiceAtLocation {
            id: service_at_location_id(service_id, *location),
            service_id,
            location_id: *location,
        }));
        phone_rows(
            (None, Some(service_id), None),
            service_id.0,
            &d.phones,
            &mut phone_rows_,
        )?;
        for (position, schedule) in d.schedules.iter().enumerate() {
            schedule_rows.push(NewSchedule {
                id: ScheduleId(part_id(service_id.0, "schedule", position)),
                service_id,
                position: small(position)?,
                byday: schedule.byday.iter().map(|day| day.as_str()).collect(),
                opens_at: schedule.opens_at,
                closes_at: schedule.closes_at,
                valid_from: schedule.valid_from,
                valid_to: schedule.valid_to,
                description: schedule.description.as_deref(),
                description_en: schedule.description_en.as_deref(),
            });
        }
        for (position, area) in d.service_areas.iter().enumerate() {
            let extent = area
                .extent
                .as_ref()
                .map(|extent| {
                    parse_extent(extent)
                        .map(|multi| to_postgis(&multi))
                        .map_err(|source| DbError::Corrupt {
                            column: "service_areas.extent",
                            source,
                        })
                })
                .transpose()?;
            area_rows.push(NewServiceArea {
                id: ServiceAreaId(part_id(service_id.0, "service_area", position)),
                service_id,
                position: small(position)?,
                description: area.description.as_deref(),
                description_en: area.description_en.as_deref(),
                province_code: area.province_code.as_deref().map(province).transpose()?,
                extent,
            });
        }
    }
    for chunk in categories.chunks(CHUNK) {
        diesel::insert_into(service_categories::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    for chunk in links.chunks(CHUNK) {
        diesel::insert_into(service_at_location::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    for chunk in phone_rows_.chunks(CHUNK) {
        diesel::insert_into(phones::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    for chunk in schedule_rows.chunks(CHUNK) {
        diesel::insert_into(schedules::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    // Polygons can be large: fewer per statement.
    for chunk in area_rows.chunks(50) {
        diesel::insert_into(service_areas::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Refuses a batch in which a row of `table` (`services` or `locations`)
/// belongs to another organisation than the one it was written for.
async fn check_owners(
    conn: &mut DbConn,
    table: &'static str,
    ids: &[Uuid],
    organizations: &[Uuid],
    rule: &'static str,
) -> Result<(), WriteError> {
    let foreign: Vec<Ordinal> = diesel::sql_query(format!(
        "SELECT t.ordinal FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS t(id, owner, ordinal) \
         JOIN {table} r ON r.id = t.id WHERE r.organization_id <> t.owner"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<SqlUuid>, _>(organizations)
    .load(conn)
    .await?;
    if foreign.is_empty() {
        return Ok(());
    }
    Err(WriteError::Invalid(
        foreign
            .iter()
            .map(|o| {
                (
                    usize::try_from(o.ordinal - 1).unwrap_or_default(),
                    "id".to_owned(),
                    Invalid::new(
                        rule,
                        "this id is used by a record your organisation cannot change",
                    ),
                )
            })
            .collect(),
    ))
}

#[derive(QueryableByName)]
struct Ordinal {
    #[diesel(sql_type = BigInt)]
    ordinal: i64,
}

/// One location to write.
pub struct LocationWrite<'a> {
    pub id: LocationId,
    pub organization_id: OrganizationId,
    pub document: &'a Validated<LocationDocument>,
}

/// Checks what needs the reference tables: each point near its province,
/// each ward in its province.
async fn check_places(conn: &mut DbConn, writes: &[LocationWrite<'_>]) -> Result<(), WriteError> {
    let codes: Vec<&str> = writes
        .iter()
        .map(|w| w.document.get().province_code.as_str())
        .collect();
    let lons: Vec<f64> = writes.iter().map(|w| w.document.get().longitude).collect();
    let lats: Vec<f64> = writes.iter().map(|w| w.document.get().latitude).collect();
    let wards: Vec<Option<&str>> = writes
        .iter()
        .map(|w| w.document.get().ward_code.as_deref())
        .collect();
    let outside: Vec<Ordinal> = diesel::sql_query(
        "SELECT t.ordinal FROM unnest($1::text[], $2::float8[], $3::float8[]) \
             WITH ORDINALITY AS t(code, lon, lat, ordinal) \
         JOIN provinces p ON p.code = t.code \
         CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326) AS point) g \
         WHERE CASE WHEN ST_Covers(p.boundary::geometry, g.point) THEN false \
                    ELSE NOT ST_DWithin(p.boundary, g.point::geography, $4) END",
    )
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Double>, _>(&lons)
    .bind::<Array<Double>, _>(&lats)
    .bind::<Double, _>(PROVINCE_TOLERANCE_M)
    .load(conn)
    .await?;
    let unknown_wards: Vec<Ordinal> = diesel::sql_query(
        "SELECT t.ordinal FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(ward, code, ordinal) \
         LEFT JOIN wards w ON w.code = t.ward AND w.province_code = t.code \
         WHERE t.ward IS NOT NULL AND w.code IS NULL",
    )
    .bind::<Array<Nullable<Text>>, _>(&wards)
    .bind::<Array<Text>, _>(&codes)
    .load(conn)
    .await?;
    let index = |o: &Ordinal| usize::try_from(o.ordinal - 1).unwrap_or_default();
    let mut problems: Vec<(usize, String, Invalid)> = outside
        .iter()
        .map(|o| {
            (
                index(o),
                "latitude".to_owned(),
                Invalid::new(
                    "in_province",
                    "the point is not inside the province given by province_code",
                ),
            )
        })
        .chain(unknown_wards.iter().map(|o| {
            (
                index(o),
                "ward_code".to_owned(),
                Invalid::new(
                    "known_ward",
                    "not a ward of the province (its wards: GET /v1/provinces/{province_code})",
                ),
            )
        }))
        .collect();
    problems.sort_by_key(|(i, _, _)| *i);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(WriteError::Invalid(problems))
    }
}

/// Refuses written locations that leave a public location of their
/// organisation next to one of its confidential ones (either way round),
/// unless the document acknowledges it. Runs after the rows are written, so
/// pairs within the batch are seen too; the caller's transaction undoes it.
async fn check_near_confidential(
    conn: &mut DbConn,
    writes: &[LocationWrite<'_>],
    ids: &[Uuid],
) -> Result<(), WriteError> {
    use crate::domain::geo::{NEAR_CONFIDENTIAL_M, near_confidential};
    let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut problems = Vec::new();
    for chunk in ids.chunks(CHUNK * 10) {
        for neighbour in
            super::locations::neighbours_of_other_kind(conn, chunk, NEAR_CONFIDENTIAL_M).await?
        {
            let Some(&i) = index.get(&neighbour.written) else {
                continue;
            };
            let acknowledged = writes
                .get(i)
                .is_some_and(|w| w.document.get().acknowledge_near_confidential);
            if let Some(invalid) = near_confidential(&neighbour, acknowledged) {
                problems.push((i, "latitude".to_owned(), invalid));
            }
        }
    }
    problems.sort_by_key(|(i, _, _)| *i);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(WriteError::Invalid(problems))
    }
}

/// Writes locations as given (inserting new ones, replacing existing ones
/// and their phones); returns the services offered there, which the caller
/// should refresh.
pub async fn write_locations(
    conn: &mut DbConn,
    writes: &[LocationWrite<'_>],
) -> Result<Vec<ServiceId>, WriteError> {
    check_places(conn, writes).await?;
    let mut rows = Vec::with_capacity(writes.len());
    for write in writes {
        let d = write.document.get();
        rows.push((
            locations::id.eq(write.id),
            locations::organization_id.eq(write.organization_id),
            locations::name.eq(&d.name),
            locations::name_en.eq(&d.name_en),
            locations::description.eq(&d.description),
            locations::description_en.eq(&d.description_en),
            locations::address.eq(&d.address),
            locations::ward_code.eq(&d.ward_code),
            locations::province_code.eq(province(&d.province_code)?),
            locations::point.eq(point(d.longitude, d.latitude)),
            locations::confidential.eq(d.confidential),
        ));
    }
    for chunk in rows.chunks(CHUNK) {
        diesel::insert_into(locations::table)
            .values(chunk)
            .on_conflict(locations::id)
            .do_update()
            .set((
                locations::name.eq(excluded(locations::name)),
                locations::name_en.eq(excluded(locations::name_en)),
                locations::description.eq(excluded(locations::description)),
                locations::description_en.eq(excluded(locations::description_en)),
                locations::address.eq(excluded(locations::address)),
                locations::ward_code.eq(excluded(locations::ward_code)),
                locations::province_code.eq(excluded(locations::province_code)),
                locations::point.eq(excluded(locations::point)),
                locations::confidential.eq(excluded(locations::confidential)),
            ))
            .execute(conn)
            .await?;
    }
    let ids: Vec<Uuid> = writes.iter().map(|w| w.id.0).collect();
    let organizations: Vec<Uuid> = writes.iter().map(|w| w.organization_id.0).collect();
    check_owners(conn, "locations", &ids, &organizations, "own_location").await?;
    check_near_confidential(conn, writes, &ids).await?;
    let mut phone_rows_ = Vec::new();
    for write in writes {
        phone_rows(
            (None, None, Some(write.id)),
            write.id.0,
            &write.document.get().phones,
            &mut phone_rows_,
        )?;
    }
    for chunk in ids.chunks(CHUNK * 10) {
        diesel::delete(phones::table.filter(phones::location_id.eq_any(chunk)))
            .execute(conn)
            .await?;
    }
    for chunk in phone_rows_.chunks(CHUNK) {
        diesel::insert_into(phones::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    let mut services = Vec::new();
    for chunk in ids.chunks(CHUNK * 10) {
        let found: Vec<ServiceId> = service_at_location::table
            .filter(service_at_location::location_id.eq_any(chunk))
            .select(service_at_location::service_id)
            .distinct()
            .load(conn)
            .await?;
        services.extend(found);
    }
    Ok(services)
}

/// Writes one organisation (insert or replace, phones included).
pub async fn write_organization(
    conn: &mut DbConn,
    id: OrganizationId,
    document: &Validated<OrganizationDocument>,
) -> Result<(), DbError> {
    let d = document.get();
    let row = (
        organizations::id.eq(id),
        organizations::name.eq(&d.name),
        organizations::name_en.eq(&d.name_en),
        organizations::description.eq(&d.description),
        organizations::description_en.eq(&d.description_en),
        organizations::email.eq(&d.email),
        organizations::website.eq(&d.website),
    );
    diesel::insert_into(organizations::table)
        .values(row)
        .on_conflict(organizations::id)
        .do_update()
        .set((
            organizations::name.eq(excluded(organizations::name)),
            organizations::name_en.eq(excluded(organizations::name_en)),
            organizations::description.eq(excluded(organizations::description)),
            organizations::description_en.eq(excluded(organizations::description_en)),
            organizations::email.eq(excluded(organizations::email)),
            organizations::website.eq(excluded(organizations::website)),
        ))
        .execute(conn)
        .await?;
    diesel::delete(phones::table.filter(phones::organization_id.eq(id)))
        .execute(conn)
        .await?;
    let mut rows = Vec::new();
    phone_rows((Some(id), None, None), id.0, &d.phones, &mut rows)?;
    diesel::insert_into(phones::table)
        .values(&rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// What an audit row says was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Archive,
    Restore,
    Capacity,
    Verify,
    Import,
    Revoke,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Archive => "archive",
            Self::Restore => "restore",
            Self::Capacity => "capacity",
            Self::Verify => "verify",
            Self::Import => "import",
            Self::Revoke => "revoke",
        }
    }
}

/// One change, for the audit trail.
pub struct AuditEntry {
    pub key_id: Option<KeyId>,
    pub action: Action,
    pub resource_type: &'static str,
    pub resource_id: Uuid,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Records one change made with `key_id` (none: the command line).
pub async fn audit_one(
    conn: &mut DbConn,
    key_id: Option<KeyId>,
    action: Action,
    resource_type: &'static str,
    resource_id: Uuid,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), DbError> {
    audit(
        conn,
        &[AuditEntry {
            key_id,
            action,
            resource_type,
            resource_id,
            before,
            after,
        }],
    )
    .await
}

pub async fn audit(conn: &mut DbConn, entries: &[AuditEntry]) -> Result<(), DbError> {
    let rows: Vec<_> = entries
        .iter()
        .map(|entry| {
            (
                audit_log::key_id.eq(entry.key_id),
                audit_log::action.eq(entry.action.as_str()),
                audit_log::resource_type.eq(entry.resource_type),
                audit_log::resource_id.eq(entry.resource_id),
                audit_log::before.eq(&entry.before),
                audit_log::after.eq(&entry.after),
            )
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        diesel::insert_into(audit_log::table)
            .values(chunk)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// One row of a resource's history.
#[derive(Debug, Queryable)]
pub struct AuditRow {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub key_id: Option<KeyId>,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// A resource's changes, oldest first.
pub async fn history(
    conn: &mut DbConn,
    resource_type: &'static str,
    id: Uuid,
    page: crate::domain::page::PageRequest,
) -> Result<(Vec<AuditRow>, i64), DbError> {
    let filter = audit_log::resource_type
        .eq(resource_type)
        .and(audit_log::resource_id.eq(id));
    let total = audit_log::table
        .filter(filter)
        .count()
        .get_result(conn)
        .await?;
    let rows = audit_log::table
        .filter(filter)
        .order(audit_log::id)
        .limit(page.limit())
        .offset(page.offset())
        .select((
            audit_log::id,
            audit_log::at,
            audit_log::key_id,
            audit_log::action,
            audit_log::before,
            audit_log::after,
        ))
        .load(conn)
        .await?;
    Ok((rows, total))
}

/// Locks a service for the rest of the transaction; its organisation, if
/// it exists.
pub async fn lock_service(
    conn: &mut DbConn,
    id: ServiceId,
) -> Result<Option<OrganizationId>, DbError> {
    Ok(services::table
        .find(id)
        .select(services::organization_id)
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?)
}

/// Locks a location; its organisation and whether it is archived.
pub async fn lock_location(
    conn: &mut DbConn,
    id: LocationId,
) -> Result<Option<(OrganizationId, bool)>, DbError> {
    let found: Option<(OrganizationId, Option<chrono::DateTime<chrono::Utc>>)> = locations::table
        .find(id)
        .select((locations::organization_id, locations::archived_at))
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?;
    Ok(found.map(|(organization, archived_at)| (organization, archived_at.is_some())))
}

pub async fn set_service_status(
    conn: &mut DbConn,
    id: ServiceId,
    status: crate::domain::service::ServiceStatus,
) -> Result<(), DbError> {
    diesel::update(services::table.find(id))
        .set(services::status.eq(status.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_location_archived(
    conn: &mut DbConn,
    id: LocationId,
    archived: bool,
) -> Result<(), DbError> {
    let at = archived.then(chrono::Utc::now);
    diesel::update(locations::table.find(id))
        .set(locations::archived_at.eq(at))
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a service's capacity and when it was updated.
pub async fn set_capacity(
    conn: &mut DbConn,
    id: ServiceId,
    capacity: &Validated<CapacityDocument>,
) -> Result<(), DbError> {
    let c = capacity.get();
    let number = |value: Option<u32>| value.and_then(|v| i32::try_from(v).ok());
    diesel::update(services::table.find(id))
        .set((
            services::capacity_available.eq(number(c.available)),
            services::capacity_maximum.eq(number(c.maximum)),
            services::capacity_unit.eq(&c.unit),
            services::capacity_updated.eq(Some(chrono::Utc::now())),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_assured_date(
    conn: &mut DbConn,
    id: ServiceId,
    date: Option<NaiveDate>,
) -> Result<(), DbError> {
    diesel::update(services::table.find(id))
        .set(services::assured_date.eq(date))
        .execute(conn)
        .await?;
    Ok(())
}
