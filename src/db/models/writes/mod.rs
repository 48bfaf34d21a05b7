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
use super::locations::NewLocation;
use super::locations::{LocationRecord, NewServiceAtLocation};
use super::organizations::{NewOrganization, OrganizationRecord};
use super::parts::{NewPhone, NewSchedule, NewServiceArea, PhoneRecord};
use super::services::{NewService, NewServiceCategory, ServiceRecord};
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
    AreaValue, CapacityDocument, EligibilityDocument, LocationDocument, LocationValues,
    OrganizationDocument, PhoneDocument, ScheduleDocument, ServiceAreaDocument, ServiceDocument,
    ServiceValues, Validated, extent_json,
};
use crate::domain::service::DeliveryMode;

/// Inserts `rows` into `table`, `size` rows to a statement (well under
/// PostgreSQL's 65,535 bind parameters).
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr, $size:expr) => {
        for chunk in $rows.chunks($size) {
            diesel::insert_into($table)
                .values(chunk)
                .execute(&mut *$conn)
                .await?;
        }
    };
}

/// `SET column = excluded.column` for each column: the update half of an
/// upsert that replaces a stored row with the one inserted.
macro_rules! replaced {
    ($table:ident: $($column:ident),+ $(,)?) => {
        ($($table::$column.eq(excluded($table::$column)),)+)
    };
}

mod audit;
mod documents;
mod location_writes;
mod service_writes;

pub use audit::*;
pub use documents::*;
pub use location_writes::*;
pub use service_writes::*;

/// Rows per INSERT: well under PostgreSQL's 65,535 bind parameters.
const CHUNK: usize = 500;

/// How far (metres) a location may lie outside its province's boundary;
/// the shipped boundaries are simplified to about 100 m.
pub const PROVINCE_TOLERANCE_M: f64 = 5_000.0;

/// How far (metres) a location may lie outside the ward it names: the ward
/// boundaries are simplified to about 0.001° (110 m).
pub const WARD_TOLERANCE_M: f64 = 150.0;

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

impl WriteError {
    /// Nothing to refuse, or every problem found, at once.
    pub(crate) fn unless_any(problems: Vec<(usize, String, Invalid)>) -> Result<(), Self> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Self::Invalid(problems))
        }
    }
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

/// Rebuilds the matcher's derived rows of these services, in one
/// statement however many there are: the rebuild joins the services' parts
/// set-wise, and in batches it read whole part tables once per batch (an
/// import of 100,000 services spent 24 s rebuilding 500 at a time).
pub async fn refresh(conn: &mut DbConn, ids: &[ServiceId]) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    diesel::sql_query("SELECT ketnoi_refresh_match_many($1::uuid[])")
        .bind::<Array<SqlUuid>, _>(&ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whose a phone is: an organisation's, a service's or a location's.
pub type PhoneOwner = (
    Option<OrganizationId>,
    Option<ServiceId>,
    Option<LocationId>,
);

/// The rows of an owner's phones, in order; their ids derive from the
/// owner's id and position.
pub(crate) fn phone_rows<'a>(
    owner: PhoneOwner,
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

pub(super) fn small(position: usize) -> Result<i16, DbError> {
    i16::try_from(position).map_err(|_| DbError::Corrupt {
        column: "position",
        source: Invalid::new("range", "too many parts"),
    })
}

/// Refuses a batch in which a row of `table` (`services` or `locations`)
/// belongs to another organisation than the one it was written for.
pub(super) async fn check_owners(
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
pub(super) struct Ordinal {
    #[diesel(sql_type = BigInt)]
    pub(super) ordinal: i64,
}

#[derive(QueryableByName)]
struct OwnedRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Which of these service ids, and which of these location ids, are of
/// records of `organization`: one statement for both.
pub async fn owned(
    conn: &mut DbConn,
    organization: OrganizationId,
    services: &[Uuid],
    locations: &[Uuid],
) -> Result<(HashSet<Uuid>, HashSet<Uuid>), DbError> {
    let rows: Vec<OwnedRow> = diesel::sql_query(
        "SELECT 'service' AS kind, id FROM services \
          WHERE id = ANY($1) AND organization_id = $3 \
         UNION ALL \
         SELECT 'location', id FROM locations \
          WHERE id = ANY($2) AND organization_id = $3",
    )
    .bind::<Array<SqlUuid>, _>(services)
    .bind::<Array<SqlUuid>, _>(locations)
    .bind::<SqlUuid, _>(organization.0)
    .load(conn)
    .await?;
    let (services, locations): (Vec<OwnedRow>, Vec<OwnedRow>) =
        rows.into_iter().partition(|row| row.kind == "service");
    Ok((
        services.into_iter().map(|row| row.id).collect(),
        locations.into_iter().map(|row| row.id).collect(),
    ))
}

/// Writes one organisation (insert or replace, phones included).
pub async fn write_organization(
    conn: &mut DbConn,
    id: OrganizationId,
    document: &Validated<OrganizationDocument>,
) -> Result<(), DbError> {
    write_organizations(conn, &[(id, document)]).await
}

/// Writes organisations (insert or replace, phones included), a few
/// statements for the whole batch: an import may describe thousands.
pub async fn write_organizations(
    conn: &mut DbConn,
    writes: &[(OrganizationId, &Validated<OrganizationDocument>)],
) -> Result<(), DbError> {
    let rows: Vec<NewOrganization<'_>> = writes
        .iter()
        .map(|(id, document)| {
            let d = document.get();
            NewOrganization {
                id: *id,
                name: &d.name,
                name_en: d.name_en.as_deref(),
                description: &d.description,
                description_en: d.description_en.as_deref(),
                email: d.email.as_deref(),
                website: d.website.as_deref(),
            }
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        diesel::insert_into(organizations::table)
            .values(chunk)
            .on_conflict(organizations::id)
            .do_update()
            .set(replaced!(organizations: name, name_en, description, description_en, email, website))
            .execute(&mut *conn)
            .await?;
    }
    let ids: Vec<OrganizationId> = writes.iter().map(|(id, _)| *id).collect();
    for chunk in ids.chunks(CHUNK * 10) {
        diesel::delete(phones::table.filter(phones::organization_id.eq_any(chunk)))
            .execute(&mut *conn)
            .await?;
    }
    let mut rows = Vec::new();
    for (id, document) in writes {
        phone_rows(
            (Some(*id), None, None),
            id.0,
            &document.get().phones,
            &mut rows,
        )?;
    }
    insert_all!(conn, phones::table, rows, CHUNK);
    Ok(())
}

/// Locks a service for the rest of the transaction; its organisation, if
/// it exists.
pub async fn lock_service(
    conn: &mut DbConn,
    id: ServiceId,
) -> Result<Option<OrganizationId>, DbError> {
    Ok(super::services::owner(id)
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
