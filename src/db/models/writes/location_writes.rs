//! Writing locations in batches, after the checks that need the reference
//! tables (province, ward) and the neighbours (a shelter next door).

use super::*;
use crate::db::postgis::make_point;

/// One location to write.
pub struct LocationWrite<'a> {
    pub id: LocationId,
    pub organization_id: OrganizationId,
    pub document: &'a Validated<LocationDocument, LocationValues>,
}

/// Checks what needs the reference tables: each point near its province,
/// each ward in its province and containing the point. A ward left out is
/// derived from the point by the database (migration 10).
pub(super) async fn check_places(
    conn: &mut DbConn,
    writes: &[LocationWrite<'_>],
) -> Result<(), WriteError> {
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
    // The points go province by province (a sorted outer side, a lateral
    // lookup): PostGIS then prepares each boundary once and reuses it for
    // the next points, instead of casting and preparing a polygon of
    // thousands of vertices for every point (seven times faster).
    let outside: Vec<Ordinal> = diesel::sql_query(concat!(
        "SELECT t.ordinal FROM (SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[]) \
             WITH ORDINALITY AS u(code, lon, lat, ordinal) ORDER BY code) t \
         CROSS JOIN LATERAL (SELECT boundary FROM provinces WHERE code = t.code) p \
         CROSS JOIN LATERAL (SELECT ",
        make_point!("t.lon", "t.lat"),
        " AS point) g \
         WHERE CASE WHEN ST_Covers(p.boundary::geometry, g.point) THEN false \
                    ELSE NOT ST_DWithin(p.boundary, g.point::geography, $4) END"
    ))
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Double>, _>(&lons)
    .bind::<Array<Double>, _>(&lats)
    .bind::<Double, _>(PROVINCE_TOLERANCE_M)
    .load(conn)
    .await?;
    // A ward of another province (or none) is unknown; a known ward whose
    // boundary is farther than WARD_TOLERANCE_M from the point does not
    // contain it.
    let wrong_wards: Vec<Ordinal> = diesel::sql_query(
        "SELECT t.ordinal FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(ward, code, ordinal) \
         LEFT JOIN wards w ON w.code = t.ward AND w.province_code = t.code \
         WHERE t.ward IS NOT NULL AND w.code IS NULL",
    )
    .bind::<Array<Nullable<Text>>, _>(&wards)
    .bind::<Array<Text>, _>(&codes)
    .load(conn)
    .await?;
    let outside_ward: Vec<Ordinal> = diesel::sql_query(concat!(
        "SELECT t.ordinal FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) \
             WITH ORDINALITY AS t(ward, code, lon, lat, ordinal) \
         JOIN wards w ON w.code = t.ward AND w.province_code = t.code \
         WHERE w.boundary IS NOT NULL AND NOT ST_DWithin(w.boundary, ",
        make_point!("t.lon", "t.lat"),
        "::geography, $5)"
    ))
    .bind::<Array<Nullable<Text>>, _>(&wards)
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Double>, _>(&lons)
    .bind::<Array<Double>, _>(&lats)
    .bind::<Double, _>(WARD_TOLERANCE_M)
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
        .chain(wrong_wards.iter().map(|o| {
            (
                index(o),
                "ward_code".to_owned(),
                Invalid::new(
                    "known_ward",
                    "not a ward of the province (its wards: GET /v1/provinces/{province_code}, \
                     or GET /v1/wards?province={province_code})",
                ),
            )
        }))
        .chain(outside_ward.iter().map(|o| {
            (
                index(o),
                "ward_code".to_owned(),
                Invalid::new(
                    "in_ward",
                    "the point is not inside this ward; set ward_code to null (or leave it out \
                     of a whole document) to have it derived from the point, or find the ward \
                     containing it with POST /v1/wards/search {\"at\": \"lat,lon\"}",
                ),
            )
        }))
        .collect();
    problems.sort_by_key(|(i, _, _)| *i);
    WriteError::unless_any(problems)
}

/// Refuses written locations that leave a public location of their
/// organisation next to one of its confidential ones (either way round),
/// unless the document acknowledges it. Runs after the rows are written, so
/// pairs within the batch are seen too; the caller's transaction undoes it.
pub(super) async fn check_near_confidential(
    conn: &mut DbConn,
    writes: &[LocationWrite<'_>],
    ids: &[Uuid],
) -> Result<(), WriteError> {
    use crate::domain::geo::{NEAR_CONFIDENTIAL_M, near_confidential};
    let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut problems = Vec::new();
    // One statement for the whole batch: one pass over the organisations'
    // locations instead of one per few thousand written.
    for neighbour in
        crate::db::models::locations::neighbours_of_other_kind(conn, ids, NEAR_CONFIDENTIAL_M)
            .await?
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
    problems.sort_by_key(|(i, _, _)| *i);
    WriteError::unless_any(problems)
}

/// Writes locations as given (inserting new ones, replacing existing ones
/// and their phones); returns the services offered there, which the caller
/// should refresh.
pub async fn write_locations(
    conn: &mut DbConn,
    writes: &[LocationWrite<'_>],
) -> Result<Vec<ServiceId>, WriteError> {
    check_places(conn, writes).await?;
    let rows: Vec<NewLocation<'_>> = writes
        .iter()
        .map(|write| {
            let d = write.document.get();
            NewLocation {
                id: write.id,
                organization_id: write.organization_id,
                name: &d.name,
                name_en: d.name_en.as_deref(),
                description: d.description.as_deref(),
                description_en: d.description_en.as_deref(),
                address: d.address.as_deref(),
                ward_code: d.ward_code.as_deref(),
                province_code: write.document.values().province.as_str(),
                point: point(d.longitude, d.latitude),
                confidential: d.confidential,
            }
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        diesel::insert_into(locations::table)
            .values(chunk)
            .on_conflict(locations::id)
            .do_update()
            .set(replaced!(
                locations:
                    name, name_en, description, description_en, address, ward_code, province_code,
                    point, confidential))
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
    insert_all!(conn, phones::table, phone_rows_, CHUNK);
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
