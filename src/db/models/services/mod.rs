//! Services: the listing itself, its eligibility rules, and the search
//! behind `GET /v1/services`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::min;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use itertools::Itertools;

use super::locations::{LocationRecord, load_for_services};
use super::organizations::{OrganizationRecord, load_many};
use super::parts::{
    PhoneOwners, PhoneRecord, ScheduleRecord, ServiceAreaRow, load_phones, load_schedules,
    load_service_areas,
};
use super::{DbError, parse_stored, parse_stored_list, search};
use crate::db::DbConn;
use crate::db::postgis::{SPHERE_SPHEROID_RATIO, point, sphere_distance, st_distance, st_dwithin};
use crate::db::schema::{
    categories, locations, service_areas, service_at_location, service_categories, service_search,
    services,
};
use crate::domain::category::Category;
use crate::domain::geo::{Coordinates, RadiusM};
use crate::domain::ids::{LocationId, OrganizationId, ServiceAtLocationId, ServiceId};
use crate::domain::page::{PageRequest, Total};
use crate::domain::province::ProvinceCode;
use crate::domain::service::{
    Capacity, CountryCode, DeliveryMode, DocumentType, Eligibility, Gender, LanguageCode,
    ServiceStatus, VictimStatus,
};

mod filter;
mod ranked;

pub use filter::*;
pub use ranked::RANKED_AT_ONCE;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = services)]
pub struct ServiceRow {
    pub id: ServiceId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub name_en: Option<String>,
    pub description: String,
    pub description_en: Option<String>,
    pub url: Option<String>,
    pub email: Option<String>,
    pub status: String,
    pub delivery_in_person: bool,
    pub delivery_remote: bool,
    pub accepting_referrals: bool,
    pub min_age: Option<i16>,
    pub max_age: Option<i16>,
    pub genders: Option<Vec<String>>,
    pub victim_statuses: Option<Vec<String>>,
    pub nationalities: Option<Vec<String>>,
    pub residence_provinces: Option<Vec<String>>,
    pub required_documents: Vec<String>,
    pub languages: Vec<String>,
    pub interpretation_available: bool,
    pub is_free: bool,
    pub fees_description: Option<String>,
    pub fees_description_en: Option<String>,
    pub application_process: Option<String>,
    pub application_process_en: Option<String>,
    pub capacity_available: Option<i32>,
    pub capacity_maximum: Option<i32>,
    pub capacity_unit: Option<String>,
    pub capacity_updated: Option<DateTime<Utc>>,
    pub assured_date: Option<NaiveDate>,
    pub last_modified: DateTime<Utc>,
    /// When what the public sees of it last changed: changes to what its
    /// confidential locations withhold do not move it.
    pub public_last_modified: DateTime<Utc>,
}

impl ServiceRow {
    /// How the service is delivered, as its two stored flags say.
    pub fn delivery(&self) -> Vec<DeliveryMode> {
        [
            (self.delivery_in_person, DeliveryMode::InPerson),
            (self.delivery_remote, DeliveryMode::Remote),
        ]
        .into_iter()
        .filter_map(|(offered, mode)| offered.then_some(mode))
        .collect()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = services)]
pub struct NewService<'a> {
    pub id: ServiceId,
    pub organization_id: OrganizationId,
    pub name: &'a str,
    pub name_en: Option<&'a str>,
    pub description: &'a str,
    pub description_en: Option<&'a str>,
    pub url: Option<&'a str>,
    pub email: Option<&'a str>,
    pub status: &'static str,
    pub delivery_in_person: bool,
    pub delivery_remote: bool,
    pub accepting_referrals: bool,
    pub min_age: Option<i16>,
    pub max_age: Option<i16>,
    pub genders: Option<Vec<&'static str>>,
    pub victim_statuses: Option<Vec<&'static str>>,
    pub nationalities: Option<Vec<&'a str>>,
    pub residence_provinces: Option<Vec<&'static str>>,
    pub required_documents: Vec<&'static str>,
    pub languages: Vec<&'a str>,
    pub interpretation_available: bool,
    pub is_free: bool,
    pub fees_description: Option<&'a str>,
    pub fees_description_en: Option<&'a str>,
    pub application_process: Option<&'a str>,
    pub application_process_en: Option<&'a str>,
    pub capacity_available: Option<i32>,
    pub capacity_maximum: Option<i32>,
    pub capacity_unit: Option<&'a str>,
    pub capacity_updated: Option<DateTime<Utc>>,
    pub assured_date: Option<NaiveDate>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = service_categories)]
pub struct NewServiceCategory {
    pub service_id: ServiceId,
    pub category_code: &'static str,
}

/// A service with everything it is listed with, its codes parsed.
#[derive(Debug, Clone)]
pub struct ServiceRecord {
    pub row: ServiceRow,
    pub status: ServiceStatus,
    pub eligibility: Eligibility,
    pub languages: Vec<LanguageCode>,
    pub capacity: Option<Capacity>,
    pub categories: Vec<Category>,
    pub organization: OrganizationRecord,
    pub locations: Vec<LocationRecord>,
    pub phones: Vec<PhoneRecord>,
    pub schedules: Vec<ScheduleRecord>,
    pub service_areas: Vec<ServiceAreaRow>,
    /// Metres to the nearest (public) location, when the search was by
    /// distance.
    pub distance_m: Option<f64>,
}

/// A stored list that may be absent (no restriction), parsed.
fn optional_list<T>(
    column: &'static str,
    values: Option<&[String]>,
    parse: impl Fn(&str) -> Result<T, crate::domain::Invalid>,
) -> Result<Option<Vec<T>>, DbError> {
    values
        .map(|values| parse_stored_list(column, values, parse))
        .transpose()
}

fn eligibility_of(row: &ServiceRow) -> Result<Eligibility, DbError> {
    let age = |column: &'static str, value: Option<i16>| -> Result<Option<u8>, DbError> {
        value
            .map(|v| {
                u8::try_from(v).map_err(|_| DbError::Corrupt {
                    column,
                    source: crate::domain::Invalid::new("range", "age out of range"),
                })
            })
            .transpose()
    };
    Ok(Eligibility {
        min_age: age("services.min_age", row.min_age)?,
        max_age: age("services.max_age", row.max_age)?,
        genders: optional_list("services.genders", row.genders.as_deref(), Gender::parse)?,
        victim_statuses: optional_list(
            "services.victim_statuses",
            row.victim_statuses.as_deref(),
            VictimStatus::parse,
        )?,
        nationalities: optional_list(
            "services.nationalities",
            row.nationalities.as_deref(),
            CountryCode::parse,
        )?,
        residence_provinces: optional_list(
            "services.residence_provinces",
            row.residence_provinces.as_deref(),
            ProvinceCode::parse,
        )?,
        required_documents: parse_stored_list(
            "services.required_documents",
            &row.required_documents,
            DocumentType::parse,
        )?,
    })
}

fn capacity_of(row: &ServiceRow) -> Option<Capacity> {
    if row.capacity_available.is_none() && row.capacity_maximum.is_none() {
        return None;
    }
    Some(Capacity {
        available: row.capacity_available.and_then(|v| u32::try_from(v).ok()),
        maximum: row.capacity_maximum.and_then(|v| u32::try_from(v).ok()),
        unit: row.capacity_unit.clone(),
    })
}

use crate::domain::access::{LISTED_STATUSES, Visibility, point_column};

pub async fn get(conn: &mut DbConn, id: ServiceId) -> Result<Option<ServiceRecord>, DbError> {
    let row = services::table
        .find(id)
        .select(ServiceRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        Some(row) => assemble(conn, vec![row]).await?.pop(),
        None => None,
    })
}

/// A service in brief, for an organisation's listing.
#[derive(Debug, Clone)]
pub struct ServiceBrief {
    pub id: ServiceId,
    pub name: String,
    pub name_en: Option<String>,
    pub status: ServiceStatus,
    pub categories: Vec<Category>,
}

/// The organisation and verification date of each of these services that
/// exists.
pub async fn owners_and_dates(
    conn: &mut DbConn,
    ids: &[ServiceId],
) -> Result<HashMap<ServiceId, (OrganizationId, Option<chrono::NaiveDate>)>, DbError> {
    let found: Vec<(ServiceId, OrganizationId, Option<chrono::NaiveDate>)> = services::table
        .filter(services::id.eq_any(ids.iter().map(|id| id.0)))
        .select((
            services::id,
            services::organization_id,
            services::assured_date,
        ))
        .load(conn)
        .await?;
    Ok(found
        .into_iter()
        .map(|(id, organization, date)| (id, (organization, date)))
        .collect())
}

/// An organisation's services in brief, by name.
pub async fn of_organization(
    conn: &mut DbConn,
    organization: OrganizationId,
) -> Result<Vec<ServiceBrief>, DbError> {
    let rows: Vec<(ServiceId, String, Option<String>, String)> = services::table
        .filter(services::organization_id.eq(organization))
        .order((services::name, services::id))
        .select((
            services::id,
            services::name,
            services::name_en,
            services::status,
        ))
        .load(conn)
        .await?;
    let ids: Vec<ServiceId> = rows.iter().map(|row| row.0).collect();
    let mut categories = load_categories(conn, &ids).await?;
    rows.into_iter()
        .map(|(id, name, name_en, status)| {
            Ok(ServiceBrief {
                status: parse_stored("services.status", &status, ServiceStatus::parse)?,
                categories: categories.remove(&id).unwrap_or_default(),
                id,
                name,
                name_en,
            })
        })
        .collect()
}

async fn load_categories(
    mut conn: &AsyncPgConnection,
    ids: &[ServiceId],
) -> Result<HashMap<ServiceId, Vec<Category>>, DbError> {
    let pairs: Vec<(ServiceId, String)> = service_categories::table
        .inner_join(categories::table)
        .filter(service_categories::service_id.eq_any(ids.iter().map(|id| id.0)))
        .order(categories::position)
        .select((
            service_categories::service_id,
            service_categories::category_code,
        ))
        .load(&mut conn)
        .await?;
    let categories = pairs
        .into_iter()
        .map(|(service_id, code)| {
            let category =
                parse_stored("service_categories.category_code", &code, Category::parse)?;
            Ok((service_id, category))
        })
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok(categories.into_iter().into_group_map())
}

/// The given services with everything nested, by id.
pub async fn load_records(
    mut conn: &AsyncPgConnection,
    ids: &[ServiceId],
) -> Result<HashMap<ServiceId, ServiceRecord>, DbError> {
    let rows = services::table
        .filter(services::id.eq_any(ids.iter().map(|id| id.0)))
        .select(ServiceRow::as_select())
        .load(&mut conn)
        .await?;
    Ok(assemble(conn, rows)
        .await?
        .into_iter()
        .map(|record| (record.row.id, record))
        .collect())
}

/// Loads everything nested in the given services, a few queries for the
/// whole batch, and keeps their order.
async fn assemble(
    conn: &AsyncPgConnection,
    rows: Vec<ServiceRow>,
) -> Result<Vec<ServiceRecord>, DbError> {
    let ids: Vec<ServiceId> = rows.iter().map(|row| row.id).collect();
    let organization_ids: Vec<OrganizationId> =
        rows.iter().map(|row| row.organization_id).collect();
    // Independent queries, pipelined on the one connection.
    let (organizations, mut categories, mut locations, mut phones, mut schedules, mut areas) = futures_util::try_join!(
        load_many(conn, &organization_ids),
        load_categories(conn, &ids),
        load_for_services(conn, &ids),
        load_phones(conn, PhoneOwners::Services(&ids)),
        load_schedules(conn, &ids),
        load_service_areas(conn, &ids),
    )?;

    rows.into_iter()
        .map(|row| {
            let organization = organizations
                .get(&row.organization_id)
                .cloned()
                .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
            Ok(ServiceRecord {
                status: parse_stored("services.status", &row.status, ServiceStatus::parse)?,
                eligibility: eligibility_of(&row)?,
                languages: parse_stored_list(
                    "services.languages",
                    &row.languages,
                    LanguageCode::parse,
                )?,
                capacity: capacity_of(&row),
                categories: categories.remove(&row.id).unwrap_or_default(),
                organization,
                locations: locations.remove(&row.id).unwrap_or_default(),
                phones: phones.remove(&row.id.0).unwrap_or_default(),
                schedules: schedules.remove(&row.id).unwrap_or_default(),
                service_areas: areas.remove(&row.id).unwrap_or_default(),
                distance_m: None,
                row,
            })
        })
        .collect()
}

/// The query for a service's organisation; locked by
/// [`crate::db::models::writes::lock_service`].
pub fn owner(
    id: ServiceId,
) -> diesel::dsl::Select<diesel::dsl::Find<services::table, ServiceId>, services::organization_id> {
    services::table.find(id).select(services::organization_id)
}

/// The organisation of a service, if it exists.
pub async fn organization_of(
    conn: &mut DbConn,
    id: ServiceId,
) -> Result<Option<OrganizationId>, DbError> {
    Ok(owner(id).first(conn).await.optional()?)
}
