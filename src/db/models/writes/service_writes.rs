//! Writing services: the row, its categories, locations, phones, opening
//! hours and service areas, in batches.

use super::*;
use crate::db::schema::wards;

/// One service to write.
pub struct ServiceWrite<'a> {
    pub id: ServiceId,
    pub organization_id: OrganizationId,
    pub document: &'a Validated<ServiceDocument, ServiceValues>,
    /// Verification date to set (admins only); `None` keeps the stored one.
    pub assured_date: Option<Option<NaiveDate>>,
}

/// Checks that every linked location belongs to the service's organisation.
/// An unknown id and another organisation's get the same answer, so that
/// nothing leaks. Archived locations may stay linked (a document read back
/// lists them): they are left out of listings and matches until restored.
pub(super) async fn check_location_links(
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
    WriteError::unless_any(problems)
}

#[derive(QueryableByName)]
pub(super) struct ExtentProblem {
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
pub(super) async fn check_extents(
    conn: &mut DbConn,
    writes: &[ServiceWrite<'_>],
) -> Result<(), WriteError> {
    let (mut ordinals, mut positions, mut extents) = (Vec::new(), Vec::new(), Vec::new());
    for (index, write) in writes.iter().enumerate() {
        for (position, area) in write.document.values().areas.iter().enumerate() {
            if let AreaValue::Extent(multi) = area {
                ordinals.push(i64::try_from(index + 1).unwrap_or(i64::MAX));
                positions.push(i64::try_from(position).unwrap_or(i64::MAX));
                extents.push(extent_json(multi).to_string());
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

/// Refuses ward areas naming no ward: a 422 on the area, not a foreign key
/// violation.
pub(super) async fn check_area_wards(
    conn: &mut DbConn,
    writes: &[ServiceWrite<'_>],
) -> Result<(), WriteError> {
    let mut named: Vec<(usize, usize, &str)> = Vec::new();
    for (index, write) in writes.iter().enumerate() {
        for (position, area) in write.document.values().areas.iter().enumerate() {
            if let AreaValue::Ward(code) = area {
                named.push((index, position, code.as_str()));
            }
        }
    }
    if named.is_empty() {
        return Ok(());
    }
    let codes: Vec<&str> = named.iter().map(|(_, _, code)| *code).collect();
    let known: HashSet<String> = wards::table
        .filter(wards::code.eq_any(&codes))
        .select(wards::code)
        .load::<String>(conn)
        .await?
        .into_iter()
        .collect();
    let problems: Vec<(usize, String, Invalid)> = named
        .into_iter()
        .filter(|(_, _, code)| !known.contains(*code))
        .map(|(index, position, _)| {
            (
                index,
                format!("service_areas[{position}].ward_code"),
                crate::domain::ward::unknown(),
            )
        })
        .collect();
    WriteError::unless_any(problems)
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
    check_area_wards(conn, writes).await?;
    let ids: Vec<Uuid> = writes.iter().map(|w| w.id.0).collect();

    let now = chrono::Utc::now();
    let rows: Vec<NewService<'_>> = writes.iter().map(|write| new_service(write, now)).collect();
    for chunk in rows.chunks(CHUNK) {
        diesel::insert_into(services::table)
            .values(chunk)
            .on_conflict(services::id)
            .do_update()
            .set((
                replaced!(
                    services:
                        name, name_en, description, description_en, url, email, status,
                        delivery_in_person, delivery_remote, accepting_referrals, min_age, max_age,
                        genders, victim_statuses, nationalities, residence_provinces,
                        required_documents, languages, interpretation_available, is_free,
                        fees_description, fees_description_en, application_process,
                        application_process_en, capacity_available, capacity_maximum, capacity_unit
                ),
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
        let areas = d.service_areas.iter().zip(&write.document.values().areas);
        for (position, (area, value)) in areas.enumerate() {
            let (province_code, ward_code, extent) = match value {
                AreaValue::Province(code) => (Some(code.as_str()), None, None),
                AreaValue::Ward(code) => (None, Some(code.as_str()), None),
                AreaValue::Extent(multi) => (None, None, Some(to_postgis(multi))),
            };
            area_rows.push(NewServiceArea {
                id: ServiceAreaId(part_id(service_id.0, "service_area", position)),
                service_id,
                position: small(position)?,
                description: area.description.as_deref(),
                description_en: area.description_en.as_deref(),
                province_code,
                ward_code,
                extent,
            });
        }
    }
    insert_all!(conn, service_categories::table, categories, CHUNK);
    insert_all!(conn, service_at_location::table, links, CHUNK);
    insert_all!(conn, phones::table, phone_rows_, CHUNK);
    insert_all!(conn, schedules::table, schedule_rows, CHUNK);
    // Polygons can be large: fewer per statement.
    insert_all!(conn, service_areas::table, area_rows, 50);
    Ok(())
}

/// The row of one service, as its document and what validation parsed of
/// it say; `now` is when its capacity was updated, if it has one.
fn new_service<'a>(
    write: &'a ServiceWrite<'a>,
    now: chrono::DateTime<chrono::Utc>,
) -> NewService<'a> {
    let d = write.document.get();
    let values = write.document.values();
    let eligibility = &d.eligibility;
    let capacity = d.capacity.as_ref();
    let number = |value: Option<u32>| value.and_then(|v| i32::try_from(v).ok());
    NewService {
        id: write.id,
        organization_id: write.organization_id,
        name: &d.name,
        name_en: d.name_en.as_deref(),
        description: &d.description,
        description_en: d.description_en.as_deref(),
        url: d.url.as_deref(),
        email: d.email.as_deref(),
        status: d.status.as_str(),
        delivery_in_person: d.delivery.contains(&DeliveryMode::InPerson),
        delivery_remote: d.delivery.contains(&DeliveryMode::Remote),
        accepting_referrals: d.accepting_referrals,
        min_age: eligibility.min_age.map(i16::from),
        max_age: eligibility.max_age.map(i16::from),
        genders: eligibility
            .genders
            .as_ref()
            .map(|genders| genders.iter().map(|g| g.as_str()).collect()),
        victim_statuses: eligibility
            .victim_statuses
            .as_ref()
            .map(|statuses| statuses.iter().map(|s| s.as_str()).collect()),
        nationalities: eligibility
            .nationalities
            .as_ref()
            .map(|codes| codes.iter().map(String::as_str).collect()),
        residence_provinces: values
            .residence_provinces
            .as_ref()
            .map(|codes| codes.iter().map(|code| code.as_str()).collect()),
        required_documents: eligibility
            .required_documents
            .iter()
            .map(|document| document.as_str())
            .collect(),
        languages: d.languages.iter().map(String::as_str).collect(),
        interpretation_available: d.interpretation_available,
        is_free: d.free,
        fees_description: d.fees_description.as_deref(),
        fees_description_en: d.fees_description_en.as_deref(),
        application_process: d.application_process.as_deref(),
        application_process_en: d.application_process_en.as_deref(),
        capacity_available: number(capacity.and_then(|c| c.available)),
        capacity_maximum: number(capacity.and_then(|c| c.maximum)),
        capacity_unit: capacity.and_then(|c| c.unit.as_deref()),
        capacity_updated: capacity.map(|_| now),
        assured_date: write.assured_date.flatten(),
    }
}
