//! Finding services: the filter of `GET /v1/services` and `/hsds`, its
//! ids in order (by relevance, distance, change or name), and the pairs of
//! a service and a location for HSDS.

use super::ranked::relevant;
use super::*;

/// What `GET /v1/services` can filter on; every filter narrows the result.
#[derive(Debug, Clone)]
pub struct ServiceFilter {
    /// Services carrying any of these categories (none: any category).
    pub categories: Vec<Category>,
    pub organization: Option<OrganizationId>,
    /// Services with a location in the province or a service area naming it.
    pub province: Option<ProvinceCode>,
    /// Services in any of these statuses (none: any status).
    pub statuses: Vec<ServiceStatus>,
    /// Services with a location within the radius of the point.
    pub near: Option<(Coordinates, RadiusM)>,
    pub modified_after: Option<DateTime<Utc>>,
    /// With `modified_after`: services changed at exactly that instant
    /// with a greater id count as after it too (a keyset cursor).
    pub after_id: Option<ServiceId>,
    /// Services matching these words (`q`, HSDS `search`), most relevant
    /// first. The queries below settle themselves whether they are matched
    /// exactly or by similarity.
    pub search: Option<search::Words>,
    /// What the reader may see.
    pub visibility: Visibility,
}

impl ServiceFilter {
    /// Every service `visibility` lets the reader see, in any status.
    pub fn visible(visibility: Visibility) -> Self {
        Self {
            categories: Vec::new(),
            organization: None,
            province: None,
            statuses: Vec::new(),
            near: None,
            modified_after: None,
            after_id: None,
            search: None,
            visibility,
        }
    }

    /// The location column distances are measured to: the exact point for
    /// readers who see every shelter exactly (caseworkers, admins), else
    /// the public one, so that distances from several places cannot locate
    /// a shelter.
    fn point_column(&self) -> diesel::expression::SqlLiteral<postgis_diesel::sql_types::Geography> {
        diesel::dsl::sql(&format!(
            "locations.{}",
            point_column(self.visibility.distances())
        ))
    }

    /// The time a change feed follows: the `last_modified` the reader is
    /// shown, which is `public_last_modified` for the services it does not
    /// see exactly ([`Visibility::exact_for`]), so that a change hidden from
    /// it does not move a service in its feed either.
    fn modified_column(&self) -> diesel::expression::SqlLiteral<Timestamptz> {
        let column = match self.visibility {
            Visibility::Everything => "services.last_modified".to_owned(),
            Visibility::Listed => "services.public_last_modified".to_owned(),
            // A uuid's text is hex digits and dashes: nothing to escape.
            Visibility::ListedOr(own) => format!(
                "CASE WHEN services.organization_id = '{}' \
                 THEN services.last_modified ELSE services.public_last_modified END",
                own.0
            ),
        };
        diesel::dsl::sql(&column)
    }
}

pub(super) type ServiceIdQuery = services::BoxedQuery<'static, Pg, diesel::sql_types::Uuid>;

/// The ids of the services that pass every filter, as a subquery.
pub(super) fn filtered_ids(filter: &ServiceFilter) -> ServiceIdQuery {
    let mut query = services::table.select(services::id).into_boxed();
    let listed: Vec<&'static str> = LISTED_STATUSES.iter().map(|s| s.as_str()).collect();
    query = match filter.visibility {
        Visibility::Everything => query,
        Visibility::Listed => query.filter(services::status.eq_any(listed)),
        Visibility::ListedOr(own) => query.filter(
            services::status
                .eq_any(listed)
                .or(services::organization_id.eq(own)),
        ),
    };
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query = query.filter(services::status.eq_any(statuses));
    }
    if !filter.categories.is_empty() {
        let codes: Vec<&'static str> = filter.categories.iter().map(|c| c.as_str()).collect();
        query = query.filter(
            services::id.eq_any(
                service_categories::table
                    .filter(service_categories::category_code.eq_any(codes))
                    .select(service_categories::service_id),
            ),
        );
    }
    if let Some(organization) = filter.organization {
        query = query.filter(services::organization_id.eq(organization));
    }
    if let Some(province) = filter.province {
        let code = province.as_str();
        query = query.filter(
            services::id
                .eq_any(
                    service_at_location::table
                        .inner_join(locations::table)
                        .filter(locations::archived_at.is_null())
                        .filter(locations::province_code.eq(code))
                        .select(service_at_location::service_id),
                )
                .or(services::id.eq_any(
                    service_areas::table
                        .filter(service_areas::province_code.eq(code))
                        .select(service_areas::service_id),
                )),
        );
    }
    if let Some((centre, radius)) = filter.near {
        query = query.filter(
            services::id.eq_any(
                service_at_location::table
                    .inner_join(locations::table)
                    .filter(locations::archived_at.is_null())
                    .filter(st_dwithin(
                        filter.point_column(),
                        point(centre.lon(), centre.lat()),
                        f64::from(radius.metres()),
                    ))
                    .select(service_at_location::service_id),
            ),
        );
    }
    if let Some(words) = &filter.search {
        query = query.filter(search::service_matches(words));
    }
    if let Some(after) = filter.modified_after {
        let modified = filter.modified_column();
        query = match filter.after_id {
            None => query.filter(modified.gt(after)),
            Some(id) => query.filter(
                modified
                    .clone()
                    .gt(after)
                    .or(modified.eq(after).and(services::id.gt(id))),
            ),
        };
    }
    query
}

/// `filter` with its search words settled: exact, or by similarity when no
/// service holds them all. Settle once before a walk of many batches.
pub async fn settled(conn: &mut DbConn, filter: &ServiceFilter) -> Result<ServiceFilter, DbError> {
    let mut filter = filter.clone();
    if let Some(words) = filter.search.take() {
        filter.search = Some(words.settle_for_services(conn).await?);
    }
    Ok(filter)
}

/// How many services a listing counts before it stops and says "more":
/// the default of the database setting `ketnoi.count_cap` (`ALTER
/// DATABASE … SET ketnoi.count_cap = …`; tests set a small one). Counting
/// (and, for words, taking candidates) costs a few microseconds a service.
pub const COUNT_CAP: i64 = 500;

/// The count cap in force on this connection (at least 1).
async fn count_cap(conn: &mut DbConn) -> Result<i64, DbError> {
    let cap: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "coalesce(nullif(current_setting('ketnoi.count_cap', true), '')::int8, {COUNT_CAP})"
    )))
    .get_result(conn)
    .await?;
    Ok(cap.max(1))
}

/// The services passing `filter`, counted up to `limit` (then "more").
async fn count_up_to(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    limit: i64,
) -> Result<Total, DbError> {
    let found: Vec<ServiceId> = filtered_ids(filter)
        .limit(limit.saturating_add(1))
        .load(conn)
        .await?;
    Ok(Total::counted(found.len(), limit))
}

/// The rows of `ids`, in that order.
async fn rows_in_order(conn: &mut DbConn, ids: &[ServiceId]) -> Result<Vec<ServiceRow>, DbError> {
    let mut by_id: HashMap<ServiceId, ServiceRow> = services::table
        .filter(services::id.eq_any(ids.iter().map(|id| id.0)))
        .select(ServiceRow::as_select())
        .load(conn)
        .await?
        .into_iter()
        .map(|row: ServiceRow| (row.id, row))
        .collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// One page of the rows passing `filter`, without a point to measure
/// from: in a change feed (`modified_after`) oldest change first, so that
/// a client can resume from the last `last_modified` it saw; else by name.
async fn feed_or_by_name(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    page: PageRequest,
) -> Result<Vec<ServiceRow>, DbError> {
    let query = services::table
        .filter(services::id.eq_any(filtered_ids(filter)))
        .limit(page.limit())
        .offset(page.offset())
        .select(ServiceRow::as_select())
        .into_boxed();
    let query = if filter.modified_after.is_some() {
        query.order((filter.modified_column(), services::id))
    } else {
        query.order((services::name, services::id))
    };
    Ok(query.load(conn).await?)
}

/// One page of the services passing `filter`, and the total, counted up to
/// the cap ([`COUNT_CAP`]) or the end of the page, whichever is further.
/// Oldest change first in a change feed (`modified_after`); else nearest
/// first with `near` (most relevant first, then nearest, with search words
/// too); else most relevant first with search words; else by name.
pub async fn search(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    page: PageRequest,
) -> Result<(Vec<ServiceRecord>, Total), DbError> {
    let cap = count_cap(conn).await?;
    let limit = cap.max(page.offset() + page.limit());
    // Words settle themselves here, by trying them exactly first: whether
    // any service holds them is only worth asking when none found does.
    let unsettled = filter.search.as_ref().filter(|words| words.fuzzy.is_none());
    let filter = &match unsettled {
        Some(words) if filter.near.is_none() && filter.modified_after.is_none() => {
            let exact = search::Words {
                fuzzy: Some(false),
                ..words.clone()
            };
            let (ids, total) = relevant(conn, filter, &exact, page, limit, cap).await?;
            if total.count > 0 {
                return found(conn, &ids, HashMap::new(), total).await;
            }
            settled(conn, filter).await?
        }
        _ => settled(conn, filter).await?,
    };

    let (rows, distances, total) = match (filter.near, &filter.search) {
        (Some((centre, radius)), None) => {
            let (ids, distances, total) =
                nearest(conn, filter, (centre, radius), page, limit).await?;
            (rows_in_order(conn, &ids).await?, distances, total)
        }
        (Some((centre, radius)), Some(words)) => {
            let total = count_up_to(conn, filter, limit).await?;
            let (ids, distances) =
                near_and_relevant(conn, filter, words, (centre, radius), page).await?;
            (rows_in_order(conn, &ids).await?, distances, total)
        }
        (None, Some(words)) if filter.modified_after.is_none() => {
            let (ids, total) = relevant(conn, filter, words, page, limit, cap).await?;
            (rows_in_order(conn, &ids).await?, HashMap::new(), total)
        }
        (None, _) => {
            let total = count_up_to(conn, filter, limit).await?;
            (
                feed_or_by_name(conn, filter, page).await?,
                HashMap::new(),
                total,
            )
        }
    };
    records_of(conn, rows, distances, total).await
}

/// The records of `ids`, in order, with their distances.
async fn found(
    conn: &mut DbConn,
    ids: &[ServiceId],
    distances: HashMap<ServiceId, f64>,
    total: Total,
) -> Result<(Vec<ServiceRecord>, Total), DbError> {
    let rows = rows_in_order(conn, ids).await?;
    records_of(conn, rows, distances, total).await
}

/// The records of `rows`, in order, with their distances.
async fn records_of(
    conn: &mut DbConn,
    rows: Vec<ServiceRow>,
    distances: HashMap<ServiceId, f64>,
    total: Total,
) -> Result<(Vec<ServiceRecord>, Total), DbError> {
    let mut records = assemble(conn, rows).await?;
    for record in &mut records {
        record.distance_m = distances.get(&record.row.id).copied();
    }
    Ok((records, total))
}

/// A page of the services passing `filter` with a location within the
/// radius, nearest first (on the spheroid, then by id), each once at its
/// nearest location, and their total counted up to `limit`: by walking the
/// locations' GiST index in order of distance on the sphere (`<->`), as far
/// as the page and the count need, instead of measuring every location in
/// the radius. The two distances differ by less than
/// [`SPHERE_SPHEROID_RATIO`], so a service whose spheroid distance is below
/// the last sphere distance walked, less that margin, is in its final place.
async fn nearest(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    (centre, radius): (Coordinates, RadiusM),
    page: PageRequest,
    limit: i64,
) -> Result<(Vec<ServiceId>, HashMap<ServiceId, f64>, Total), DbError> {
    let others = ServiceFilter {
        near: None,
        ..filter.clone()
    };
    let centre = point(centre.lon(), centre.lat());
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let end = offset.saturating_add(usize::try_from(page.limit()).unwrap_or(usize::MAX));
    // One more than the count goes to, to know whether there are more.
    let counted = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut walk = i64::try_from(counted.max(end))
        .unwrap_or(i64::MAX)
        .saturating_add(64);
    loop {
        let rows: Vec<(ServiceId, f64, f64)> = service_at_location::table
            .inner_join(locations::table)
            .filter(locations::archived_at.is_null())
            .filter(service_at_location::service_id.eq_any(filtered_ids(&others)))
            .filter(st_dwithin(
                filter.point_column(),
                centre,
                f64::from(radius.metres()),
            ))
            .order(sphere_distance(filter.point_column(), centre))
            .select((
                service_at_location::service_id,
                sphere_distance(filter.point_column(), centre),
                st_distance(filter.point_column(), centre),
            ))
            .limit(walk)
            .load(conn)
            .await?;
        let whole = i64::try_from(rows.len()).unwrap_or(i64::MAX) < walk;
        let mut nearest: HashMap<ServiceId, f64> = HashMap::new();
        for (id, _, distance) in &rows {
            let at = nearest.entry(*id).or_insert(*distance);
            *at = at.min(*distance);
        }
        // Every service not yet seen, or seen only so far, is at least this
        // far (on the spheroid).
        let horizon = match rows.last() {
            Some((_, sphere, _)) if !whole => sphere * (1.0 - SPHERE_SPHEROID_RATIO),
            _ => f64::INFINITY,
        };
        let mut placed: Vec<(f64, ServiceId)> = nearest
            .iter()
            .filter(|(_, distance)| **distance < horizon)
            .map(|(id, distance)| (*distance, *id))
            .collect();
        if whole || (placed.len() >= end && nearest.len() >= counted) {
            placed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let total = Total::counted(nearest.len(), limit);
            let ids: Vec<ServiceId> = placed
                .iter()
                .skip(offset)
                .take(end - offset)
                .map(|(_, id)| *id)
                .collect();
            let distances = ids
                .iter()
                .filter_map(|id| nearest.get(id).map(|d| (*id, *d)))
                .collect();
            return Ok((ids, distances, total));
        }
        walk = walk.saturating_mul(4);
    }
}

/// A page of the services matching `words` with a location within the
/// radius: most relevant first, the nearest among equals (the words narrow
/// the radius, so every match there is ranked).
async fn near_and_relevant(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    words: &search::Words,
    (centre, radius): (Coordinates, RadiusM),
    page: PageRequest,
) -> Result<(Vec<ServiceId>, HashMap<ServiceId, f64>), DbError> {
    let centre = point(centre.lon(), centre.lat());
    // Distance to the nearest location within the radius, to the points
    // this reader may see.
    let nearest = min(st_distance(filter.point_column(), centre));
    let ranked: Vec<(ServiceId, Option<f64>)> = service_at_location::table
        .inner_join(locations::table)
        .filter(locations::archived_at.is_null())
        .filter(service_at_location::service_id.eq_any(filtered_ids(filter)))
        .filter(st_dwithin(
            filter.point_column(),
            centre,
            f64::from(radius.metres()),
        ))
        .group_by(service_at_location::service_id)
        .select((service_at_location::service_id, nearest.clone()))
        .order_by(search::service_relevance_of(words, "service_at_location.service_id").desc())
        .then_order_by((nearest, service_at_location::service_id))
        .limit(page.limit())
        .offset(page.offset())
        .load(conn)
        .await?;
    let ids = ranked.iter().map(|(id, _)| *id).collect();
    let distances = ranked
        .into_iter()
        .filter_map(|(id, distance)| distance.map(|d| (id, d)))
        .collect();
    Ok((ids, distances))
}

/// The next `limit` ids passing `filter` after `after`, in id order: a
/// keyset walk through every match, for streams and exports.
pub async fn ids_after(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    after: Option<ServiceId>,
    limit: i64,
) -> Result<Vec<ServiceId>, DbError> {
    let filter = &settled(conn, filter).await?;
    // The keyset bound on the filtered query itself, so that each batch
    // starts where the last ended (the primary key's order).
    let mut query = filtered_ids(filter).order(services::id).limit(limit);
    if let Some(after) = after {
        query = query.filter(services::id.gt(after));
    }
    Ok(query.load(conn).await?)
}

/// Which pairs [`search_pairs`] gives.
#[derive(Debug, Clone, Copy)]
pub enum PairWindow {
    /// One page, in the order of [`search`], with the total (counted up
    /// to the cap, like [`search`]'s).
    Page(PageRequest),
    /// The next pairs after this service-at-location id, in id order (a
    /// keyset walk, for streams); no count.
    After(Option<ServiceAtLocationId>, i64),
}

/// The (service, location) pairs of the services passing `filter`, at
/// locations that are not archived (and within the radius with `near`, by
/// each pair's own distance), as `window` asks; with the total for a page.
pub async fn search_pairs(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    window: PairWindow,
) -> Result<(Vec<(ServiceId, LocationId)>, Option<Total>), DbError> {
    let filter = &settled(conn, filter).await?;
    let pairs = || {
        let mut query = service_at_location::table
            .inner_join(locations::table)
            .inner_join(services::table)
            .left_join(service_search::table.on(service_search::service_id.eq(services::id)))
            .filter(locations::archived_at.is_null())
            .filter(service_at_location::service_id.eq_any(filtered_ids(filter)))
            .into_boxed();
        if let Some((centre, radius)) = filter.near {
            query = query.filter(st_dwithin(
                filter.point_column(),
                point(centre.lon(), centre.lat()),
                f64::from(radius.metres()),
            ));
        }
        query
    };
    let page = match window {
        PairWindow::Page(page) => page,
        PairWindow::After(after, limit) => {
            let mut query = pairs().order(service_at_location::id).limit(limit).select((
                service_at_location::service_id,
                service_at_location::location_id,
            ));
            if let Some(after) = after {
                query = query.filter(service_at_location::id.gt(after));
            }
            return Ok((query.load(conn).await?, None));
        }
    };
    let limit = count_cap(conn).await?.max(page.offset() + page.limit());
    let counted: Vec<ServiceAtLocationId> = pairs()
        .select(service_at_location::id)
        .limit(limit.saturating_add(1))
        .load(conn)
        .await?;
    let total = Total::counted(counted.len(), limit);
    // The order of `search`: a change feed's; else relevance, then
    // distance; else distance; else by name.
    let mut query = pairs();
    if filter.modified_after.is_some() {
        query = query.order(filter.modified_column());
    } else if let Some(words) = &filter.search {
        query = query.order(search::service_relevance(words).desc().nulls_last());
    }
    if let Some((centre, _)) = filter.near {
        let centre = point(centre.lon(), centre.lat());
        if filter.modified_after.is_none() && filter.search.is_none() {
            // Nearest first: the page lies within the spheroid distance of
            // the page's last pair on the sphere, plus the margin between
            // the two; the GiST index finds that pair walking nearest
            // first, and only the pairs within it are sorted.
            let end = page.offset() + page.limit();
            let walked: Vec<f64> = pairs()
                .order(sphere_distance(filter.point_column(), centre))
                .select(sphere_distance(filter.point_column(), centre))
                .limit(end)
                .load(conn)
                .await?;
            if let Some(last) = walked.last().filter(|_| walked.len() as i64 == end) {
                query = query.filter(st_dwithin(
                    filter.point_column(),
                    centre,
                    last * (1.0 + SPHERE_SPHEROID_RATIO),
                ));
            }
        }
        query = query.then_order_by(st_distance(filter.point_column(), centre));
    }
    let found = query
        .then_order_by((services::name, services::id, locations::id))
        .limit(page.limit())
        .offset(page.offset())
        .select((
            service_at_location::service_id,
            service_at_location::location_id,
        ))
        .load(conn)
        .await?;
    Ok((found, Some(total)))
}

/// The (service, location) pair a service-at-location id names, unless the
/// location is archived.
pub async fn pair(
    conn: &mut DbConn,
    id: ServiceAtLocationId,
) -> Result<Option<(ServiceId, LocationId)>, DbError> {
    Ok(service_at_location::table
        .inner_join(locations::table)
        .filter(service_at_location::id.eq(id))
        .filter(locations::archived_at.is_null())
        .select((
            service_at_location::service_id,
            service_at_location::location_id,
        ))
        .first(conn)
        .await
        .optional()?)
}
