//! Locations: where an organisation receives people. The exact `point` and
//! the public `public_point` (rounded for confidential locations by a
//! generated column) are both read; [`crate::domain::access::seen_location`]
//! decides which one a reader sees.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use itertools::Itertools;
use postgis_diesel::types::Point;

use super::DbError;
use super::parts::{PhoneOwners, PhoneRecord, load_phones};
use crate::db::schema::{locations, provinces, service_at_location, wards};
use crate::domain::access::{Details, StoredLocation};
use crate::domain::ids::{LocationId, OrganizationId, ServiceAtLocationId, ServiceId};
use diesel_async::AsyncPgConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = locations)]
pub struct LocationRow {
    pub id: LocationId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub name_en: Option<String>,
    pub description: Option<String>,
    pub description_en: Option<String>,
    pub address: Option<String>,
    pub ward_code: Option<String>,
    pub province_code: String,
    pub point: Point,
    pub confidential: bool,
    pub public_point: Point,
    pub last_modified: DateTime<Utc>,
    /// When what the public sees of it last changed: a confidential
    /// location's hidden fields (address, ward, phones, exact point inside
    /// its rounded cell) do not move it.
    pub public_last_modified: DateTime<Utc>,
}

/// A location with the names of its ward and province and its phones.
#[derive(Debug, Clone)]
pub struct LocationRecord {
    pub row: LocationRow,
    pub ward_name: Option<String>,
    pub province_name: String,
    pub phones: Vec<PhoneRecord>,
}

impl LocationRecord {
    /// The stored facts [`crate::domain::access::seen_location`] decides
    /// on: what of this location an audience sees.
    pub fn stored(&self) -> StoredLocation<'_, PhoneRecord> {
        let row = &self.row;
        StoredLocation {
            confidential: row.confidential,
            point: (row.point.x, row.point.y),
            public_point: (row.public_point.x, row.public_point.y),
            details: Details {
                address: row.address.as_deref(),
                ward_code: row.ward_code.as_deref(),
                ward_name: self.ward_name.as_deref(),
                description: row.description.as_deref(),
                description_en: row.description_en.as_deref(),
                phones: &self.phones,
            },
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = locations)]
pub struct NewLocation<'a> {
    pub id: LocationId,
    pub organization_id: OrganizationId,
    pub name: &'a str,
    pub name_en: Option<&'a str>,
    pub description: Option<&'a str>,
    pub description_en: Option<&'a str>,
    pub address: Option<&'a str>,
    pub ward_code: Option<&'a str>,
    pub province_code: &'static str,
    pub point: Point,
    pub confidential: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = service_at_location)]
pub struct NewServiceAtLocation {
    pub id: ServiceAtLocationId,
    pub service_id: ServiceId,
    pub location_id: LocationId,
}

/// One location, archived or not, with when it was archived.
pub async fn get(
    conn: &mut crate::db::DbConn,
    id: LocationId,
) -> Result<Option<(LocationRecord, Option<DateTime<Utc>>)>, DbError> {
    type Found = (LocationRow, Option<DateTime<Utc>>, Option<String>, String);
    let found: Option<Found> = locations::table
        .inner_join(provinces::table)
        .left_join(wards::table.on(locations::ward_code.eq(wards::code.nullable())))
        .filter(locations::id.eq(id))
        .select((
            LocationRow::as_select(),
            locations::archived_at,
            wards::name.nullable(),
            provinces::name,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((row, archived_at, ward_name, province_name)) = found else {
        return Ok(None);
    };
    let mut phones = load_phones(conn, PhoneOwners::Locations(&[row.id])).await?;
    Ok(Some((
        LocationRecord {
            phones: phones.remove(&row.id.0).unwrap_or_default(),
            row,
            ward_name,
            province_name,
        },
        archived_at,
    )))
}

/// An organisation's locations that are not archived, by name.
pub async fn of_organization(
    conn: &mut crate::db::DbConn,
    organization: OrganizationId,
) -> Result<Vec<LocationRecord>, DbError> {
    let ids: Vec<LocationId> = locations::table
        .filter(locations::organization_id.eq(organization))
        .filter(locations::archived_at.is_null())
        .order((locations::name, locations::id))
        .select(locations::id)
        .load(conn)
        .await?;
    let mut found = load_many(conn, &ids).await?;
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

/// Many locations by id, archived ones included.
pub async fn load_many(
    mut conn: &AsyncPgConnection,
    ids: &[LocationId],
) -> Result<HashMap<LocationId, LocationRecord>, DbError> {
    let rows: Vec<(LocationRow, Option<String>, String)> = locations::table
        .inner_join(provinces::table)
        .left_join(wards::table.on(locations::ward_code.eq(wards::code.nullable())))
        .filter(locations::id.eq_any(ids.iter().map(|id| id.0)))
        .select((
            LocationRow::as_select(),
            wards::name.nullable(),
            provinces::name,
        ))
        .load(&mut conn)
        .await?;
    let found: Vec<LocationId> = rows.iter().map(|(row, _, _)| row.id).collect();
    let mut phones = load_phones(conn, PhoneOwners::Locations(&found)).await?;
    Ok(rows
        .into_iter()
        .map(|(row, ward_name, province_name)| {
            (
                row.id,
                LocationRecord {
                    phones: phones.remove(&row.id.0).unwrap_or_default(),
                    row,
                    ward_name,
                    province_name,
                },
            )
        })
        .collect())
}

/// The locations of many services at once, grouped by service; archived
/// locations are left out.
pub async fn load_for_services(
    mut conn: &AsyncPgConnection,
    services: &[ServiceId],
) -> Result<HashMap<ServiceId, Vec<LocationRecord>>, DbError> {
    let rows: Vec<(ServiceId, LocationRow, Option<String>, String)> = service_at_location::table
        .inner_join(locations::table.inner_join(provinces::table))
        .left_join(wards::table.on(locations::ward_code.eq(wards::code.nullable())))
        .filter(service_at_location::service_id.eq_any(services.iter().map(|id| id.0)))
        .filter(locations::archived_at.is_null())
        .order((locations::name, locations::id))
        .select((
            service_at_location::service_id,
            LocationRow::as_select(),
            wards::name.nullable(),
            provinces::name,
        ))
        .load(&mut conn)
        .await?;
    let location_ids: Vec<LocationId> = rows.iter().map(|(_, row, _, _)| row.id).collect();
    let phones = load_phones(conn, PhoneOwners::Locations(&location_ids)).await?;
    Ok(rows
        .into_iter()
        .map(|(service_id, row, ward_name, province_name)| {
            // A location shared by several services keeps its phones in each.
            let location_phones = phones.get(&row.id.0).cloned().unwrap_or_default();
            let record = LocationRecord {
                row,
                ward_name,
                province_name,
                phones: location_phones,
            };
            (service_id, record)
        })
        .into_group_map())
}

#[derive(QueryableByName)]
struct NeighbourRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    written: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    written_confidential: bool,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    other: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    other_confidential: bool,
    #[diesel(sql_type = diesel::sql_types::Double)]
    distance_m: f64,
}

/// For locations just written (in this transaction), the unarchived
/// locations of the same organisation of the other kind (public next to
/// confidential, or the reverse) within `within_m` metres, geodesic.
pub async fn neighbours_of_other_kind(
    conn: &mut AsyncPgConnection,
    ids: &[uuid::Uuid],
    within_m: f64,
) -> Result<Vec<crate::domain::geo::Neighbour>, DbError> {
    // An organisation has a handful of locations: pair them first, then
    // measure. Left to itself the planner also probed the spatial index
    // for every written location (about 100 µs each: 9.5 s of an import
    // of 100,000 services) although the organisation's index finds the
    // few candidates alone.
    let rows: Vec<NeighbourRow> = diesel::sql_query(
        "WITH pairs AS MATERIALIZED ( \
             SELECT w.id AS written, w.confidential AS written_confidential, w.point AS w_point, \
                    o.id AS other, o.confidential AS other_confidential, o.point AS o_point \
             FROM locations w \
             JOIN locations o ON o.organization_id = w.organization_id AND o.id <> w.id \
                  AND o.confidential <> w.confidential AND o.archived_at IS NULL \
             WHERE w.id = ANY($1) AND w.archived_at IS NULL) \
         SELECT written, written_confidential, other, other_confidential, \
                ST_Distance(w_point, o_point) AS distance_m \
         FROM pairs WHERE ST_DWithin(w_point, o_point, $2) \
         ORDER BY written, other",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<diesel::sql_types::Double, _>(within_m)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| crate::domain::geo::Neighbour {
            written: r.written,
            written_confidential: r.written_confidential,
            other: r.other,
            other_confidential: r.other_confidential,
            distance_m: r.distance_m,
        })
        .collect())
}
