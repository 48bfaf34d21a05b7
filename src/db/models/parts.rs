//! The parts of a listing that belong to one owner: phones, weekly
//! schedules and service areas.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use itertools::Itertools;
use postgis_diesel::types::{MultiPolygon, Point};
use uuid::Uuid;

use super::{DbError, parse_stored, parse_stored_list};
use crate::db::schema::{phones, schedules, service_areas};
use crate::domain::ids::{
    LocationId, OrganizationId, PhoneId, ScheduleId, ServiceAreaId, ServiceId,
};
use crate::domain::schedule::WeeklyHours;
use crate::domain::service::{PhoneType, Weekday};
use diesel_async::AsyncPgConnection;

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = phones)]
pub struct PhoneRow {
    pub id: PhoneId,
    pub organization_id: Option<OrganizationId>,
    pub service_id: Option<ServiceId>,
    pub location_id: Option<LocationId>,
    pub number: String,
    pub extension: Option<String>,
    pub phone_type: String,
    pub description: Option<String>,
    pub description_en: Option<String>,
    pub languages: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PhoneRecord {
    pub id: PhoneId,
    pub number: String,
    pub extension: Option<String>,
    pub phone_type: PhoneType,
    pub description: Option<String>,
    pub description_en: Option<String>,
    pub languages: Vec<String>,
}

impl TryFrom<PhoneRow> for PhoneRecord {
    type Error = DbError;

    fn try_from(row: PhoneRow) -> Result<Self, DbError> {
        Ok(Self {
            id: row.id,
            phone_type: parse_stored("phones.type", &row.phone_type, PhoneType::parse)?,
            number: row.number,
            extension: row.extension,
            description: row.description,
            description_en: row.description_en,
            languages: row.languages,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = phones)]
pub struct NewPhone<'a> {
    pub id: PhoneId,
    pub organization_id: Option<OrganizationId>,
    pub service_id: Option<ServiceId>,
    pub location_id: Option<LocationId>,
    pub position: i16,
    pub number: &'a str,
    pub extension: Option<&'a str>,
    pub phone_type: &'static str,
    pub description: Option<&'a str>,
    pub description_en: Option<&'a str>,
    pub languages: Vec<&'a str>,
}

/// Whose phones to load.
pub enum PhoneOwners<'a> {
    Organizations(&'a [OrganizationId]),
    Services(&'a [ServiceId]),
    Locations(&'a [LocationId]),
}

/// The phones of many owners at once, grouped by owner id, in their
/// listed order.
pub async fn load_phones(
    mut conn: &AsyncPgConnection,
    owners: PhoneOwners<'_>,
) -> Result<HashMap<Uuid, Vec<PhoneRecord>>, DbError> {
    let query = phones::table
        .select(PhoneRow::as_select())
        .order((phones::position, phones::id))
        .into_boxed();
    let query = match owners {
        PhoneOwners::Organizations(ids) => {
            query.filter(phones::organization_id.eq_any(ids.iter().map(|id| id.0)))
        }
        PhoneOwners::Services(ids) => {
            query.filter(phones::service_id.eq_any(ids.iter().map(|id| id.0)))
        }
        PhoneOwners::Locations(ids) => {
            query.filter(phones::location_id.eq_any(ids.iter().map(|id| id.0)))
        }
    };
    let mut grouped: HashMap<Uuid, Vec<PhoneRecord>> = HashMap::new();
    for row in query.load(&mut conn).await? {
        let owner = row
            .organization_id
            .map(|id| id.0)
            .or(row.service_id.map(|id| id.0))
            .or(row.location_id.map(|id| id.0));
        if let Some(owner) = owner {
            grouped.entry(owner).or_default().push(row.try_into()?);
        }
    }
    Ok(grouped)
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = schedules)]
pub struct ScheduleRow {
    pub id: ScheduleId,
    pub service_id: ServiceId,
    pub byday: Vec<String>,
    pub opens_at: Option<NaiveTime>,
    pub closes_at: Option<NaiveTime>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub description: Option<String>,
    pub description_en: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ScheduleRecord {
    pub id: ScheduleId,
    pub hours: WeeklyHours,
    pub description: Option<String>,
    pub description_en: Option<String>,
}

impl TryFrom<ScheduleRow> for ScheduleRecord {
    type Error = DbError;

    fn try_from(row: ScheduleRow) -> Result<Self, DbError> {
        Ok(Self {
            id: row.id,
            hours: WeeklyHours {
                byday: parse_stored_list("schedules.byday", &row.byday, Weekday::parse)?,
                opens_at: row.opens_at,
                closes_at: row.closes_at,
                valid_from: row.valid_from,
                valid_to: row.valid_to,
            },
            description: row.description,
            description_en: row.description_en,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = schedules)]
pub struct NewSchedule<'a> {
    pub id: ScheduleId,
    pub service_id: ServiceId,
    pub position: i16,
    pub byday: Vec<&'static str>,
    pub opens_at: Option<NaiveTime>,
    pub closes_at: Option<NaiveTime>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub description: Option<&'a str>,
    pub description_en: Option<&'a str>,
}

pub async fn load_schedules(
    mut conn: &AsyncPgConnection,
    services: &[ServiceId],
) -> Result<HashMap<ServiceId, Vec<ScheduleRecord>>, DbError> {
    let rows: Vec<ScheduleRow> = schedules::table
        .filter(schedules::service_id.eq_any(services.iter().map(|id| id.0)))
        .order((schedules::position, schedules::id))
        .select(ScheduleRow::as_select())
        .load(&mut conn)
        .await?;
    let records = rows
        .into_iter()
        .map(|row| Ok((row.service_id, ScheduleRecord::try_from(row)?)))
        .collect::<Result<Vec<_>, DbError>>()?;
    Ok(records.into_iter().into_group_map())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = service_areas)]
pub struct ServiceAreaRow {
    pub id: ServiceAreaId,
    pub service_id: ServiceId,
    pub description: Option<String>,
    pub description_en: Option<String>,
    pub province_code: Option<String>,
    pub extent: Option<MultiPolygon<Point>>,
    pub ward_code: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = service_areas)]
pub struct NewServiceArea<'a> {
    pub id: ServiceAreaId,
    pub service_id: ServiceId,
    pub position: i16,
    pub description: Option<&'a str>,
    pub description_en: Option<&'a str>,
    pub province_code: Option<&'static str>,
    pub extent: Option<MultiPolygon<Point>>,
    pub ward_code: Option<&'a str>,
}

pub async fn load_service_areas(
    mut conn: &AsyncPgConnection,
    services: &[ServiceId],
) -> Result<HashMap<ServiceId, Vec<ServiceAreaRow>>, DbError> {
    let rows: Vec<ServiceAreaRow> = service_areas::table
        .filter(service_areas::service_id.eq_any(services.iter().map(|id| id.0)))
        .order((service_areas::position, service_areas::id))
        .select(ServiceAreaRow::as_select())
        .load(&mut conn)
        .await?;
    Ok(rows.into_iter().into_group_map_by(|row| row.service_id))
}
